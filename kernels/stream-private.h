/* The ConvTranspose stream's state, shared by the files that implement it:
 *
 *   stream.c     the API, sizing, and the one push structure
 *   history.c    the input rows kept between pushes (1d: a linear array,
 *                2d/3d: a ring of row slots) and the caller's rows read in
 *                place (the push's own, and a retained previous push's)
 *   compute.c    outputs from plans: runs, phase pairs, step pairs, sink
 *   work-split.c a push's outputs cut into tasks for the thread pool
 *   scratch.c    each thread's scratch, the pool, the output sink
 *   traffic.c    memory traffic: non-temporal stores, reading ahead
 *   tap-mode.c   tap mode's products of every input row
 *
 * Not for users of the library. */
#ifndef CT_STREAM_PRIVATE_H
#define CT_STREAM_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dsp.h"
#include "layer-private.h"
#include "pool.h"
#include "stage.h"
#include "stream.h"

/* Sizes of the work units, in floats: one 1d run of output steps, and
 * one fill of the input history (per push iteration, all channels). */
enum { COMPUTE_RUN_FLOATS = 1 << 14, FILL_FLOATS = 1 << 18 };

/* Tap mode, one-row pushes: the columns of a chunk (see tap_span_task).
 * K7 stream, 2 threads, variants alternating in one process (min of 40):
 * 15.3-15.8 ms with 64, 16.0-16.5 with 32, 21-22 with 48, 18.4 with 128,
 * one-shot 15.2-15.7. */
enum { TAP_CHUNK_COLUMNS = 64 };

/* What one thread computes in. */
typedef struct worker_scratch {
  /* Each thread's scratch on cache lines of its own: g_begin and g_end change
   * on every push. */
  _Alignas(64) float *acc; /* [residue][Cout][acc_stride] */
  const float **rows;      /* [max k] input runs of one product */
  const float **next_rows; /* [max k] those of the next one (tap mode) */
  float **dst_rows;        /* [2 Cout] output rows of a step pair */
  float *pack;             /* CT_GEMM_KC * CT_GEMM_NC floats */
  float *sink_batch;       /* [Cout][sink_batch_steps][frame] with a sink, else NULL */
  const float **phases;    /* [s_run] */
  int64_t *starts;         /* [s_run] */
  /* The groups this thread computes: all of them, except in a push split
   * by groups (see split_by_groups). */
  int64_t g_begin, g_end;
  /* Tap mode, one-row pushes: the chunks of span i (see tap_span_task)
   * not yet taken, in scratch[i]: front (low 32 bits) to back. */
  _Alignas(64) _Atomic uint64_t tap_chunks;
} worker_scratch;

/* Rows of a push copied into the history by the threads that compute from
 * them, each its own groups' channels (see split_by_groups); count 0: none
 * pending. */
typedef struct group_copy {
  const float *in;
  int64_t in_chan_stride, first_row, count;
} group_copy;

struct ct_stream {
  ct_stage stage; /* first: the stream is a stage (stage.h) */
  const ct_layer *layer;
  const ct_plan *plan; /* the layer's, shared */
  const ct_dsp *dsp;
  ct_axis axis[CT_MAX_RANK];
  int64_t in_len[CT_MAX_RANK];  /* frame axes (index 0 unused) */
  int64_t out_len[CT_MAX_RANK]; /* frame axes (index 0 unused) */
  int64_t pad_before[CT_MAX_RANK];
  int64_t padded_len[CT_MAX_RANK]; /* frame axes, with zero borders */
  int64_t out_frame_shape[CT_MAX_RANK - 1];
  int64_t in_frame, out_frame, padded_frame;
  /* Floats per step of the caller's input: in_frame, or padded_frame after
   * ct_stream_take_padded_frames. */
  int64_t push_frame;
  int64_t run_len; /* outputs along the run axis per run (rank >= 2) */
  /* 2d/3d: where each product of each plan reads on the frame axes, in
   * floats from the run start, for this stream's frame width
   * (ct_plan_inner_offset), looked up as it runs: run plan r's at
   * inner + inner_first[r]. The only per-stream part of the plans. */
  int32_t *inner;
  int64_t *inner_first;
  float *bias_runs; /* [Cout][acc_stride] of bias, for tap-less residues */

  /* Input history: the zero-extended input's rows (steps) of padded frames
   * from padded index hist_first on. 1d: channel-planar and contiguous
   * ([ci][row]), compacted when full, so runs along the signal are plain
   * arrays. 2d/3d: a ring of row slots ([slot][ci][frame]), never moved.
   * Frame borders are zero and stay zero: only interiors are written. In
   * tap mode a row holds the products of an input row with every tap. */
  float *hist;
  bool ring;
  int64_t hist_channels; /* channels of a history row: Cin, or taps */
  int64_t hist_cap;      /* rows per channel */
  int64_t hist_first;
  int64_t hist_rows;
  int64_t fill_rows; /* rows copied per piece of a push at most */
  /* The caller's rows read in place: those of the push in progress,
   * [window_first, window_end) in padded rows, row u of channel c at
   * window_in + (u - window_first) * push_frame + c * window_chan_stride.
   * 2d/3d frames without borders of their own to add (or bordered ones)
   * read every row there; 1d reads the window only for outputs all of
   * whose inputs are in it. */
  bool in_place_ok; /* 2d/3d: pushes are read in place */
  const float *window_in;
  int64_t window_chan_stride, window_first, window_end;
  /* With ct_stream_retain_input: the previous push's rows that are still
   * needed, [prev_first, prev_end), read where the caller keeps them. The
   * ring's rows end where these begin. */
  bool retain_input;
  bool retain_wanted; /* the caller's choice, in effect where in_place_ok */
  const float *prev_in;
  int64_t prev_chan_stride, prev_first, prev_end;
  group_copy pending_group_copy;

  int64_t run_steps; /* 1d: output steps per run */
  /* 1d: where the runs of the computation in progress start counting: its
   * first output, so that a push of whole runs' worth of steps (10 ms of a
   * stride-8 layer: 15 x 256) is all whole vector tiles, wherever the last
   * push stopped. */
  int64_t run_anchor;
  int64_t acc_stride;      /* floats per channel per residue in acc */
  int64_t acc_count;       /* floats of acc per thread */
  worker_scratch *scratch; /* one per thread */
  int n_scratch;
  ct_pool *pool; /* NULL: single-threaded */
  bool owns_pool;
  double macs_per_step; /* multiply-adds per output step, all channels */
  double parallel_macs; /* work smaller than this runs on one thread */
  /* Pushes whose output is larger than this (bytes) write it with
   * non-temporal stores (ct_run_gemm.nontemporal); nontemporal: this one
   * does. Pushes that fill one array in order (each writing where the last
   * one stopped: out_next, same channel stride) count as one: out_filled
   * bytes so far. */
  double nontemporal_bytes;
  bool nontemporal;
  const float *out_next;
  int64_t out_next_stride;
  double out_filled;
  /* Pushes that read one array in order (each starting where the last one
   * ended, same channel stride), as a caller walking a signal in memory
   * does: the next push most likely starts at in_ahead (NULL: no guess),
   * and small pushes fetch its rows while they compute, as the hardware
   * does for one call over the whole array. in_next: where the last push
   * (or the one in progress) ends. */
  const float *in_next;
  int64_t in_next_stride;
  const float *in_ahead;
  /* ct_stream_set_sink: outputs computed into each thread's sink_batch,
   * batches of sink_batch_steps (1d: from the run anchor, like runs; 2d: on
   * absolute boundaries shifted back by sink_batch_phase, so that step
   * pairs stay whole), then handed over. */
  ct_stream_sink sink;
  void *sink_ctx;
  int64_t sink_batch_steps, sink_batch_phase;

  int64_t n_in, n_out;
};

/* Functions shared between the stream's files: prefixed cts_. */

/* ---- history.c ---- */
int64_t cts_padded_row(const ct_stream *st, int64_t i);
int64_t cts_first_needed_row(const ct_stream *st, int64_t j);
int64_t cts_max_kept_rows(const ct_stream *st);
/* Where channel c of padded row u lives in the history; where it is read
 * from (the caller's input when it is read in place). Inline: called per
 * product and per tap in the inner loops. */
static inline float *cts_stored_row(const ct_stream *st, int64_t u, int64_t c) {
  if (st->ring)
    return st->hist + ((u % st->hist_cap) * st->hist_channels + c) * st->padded_frame;
  return st->hist + c * st->hist_cap * st->padded_frame +
         (u - st->hist_first) * st->padded_frame;
}
static inline const float *cts_row_ptr(const ct_stream *st, int64_t u, int64_t c) {
  if (u >= st->window_first && u < st->window_end)
    return st->window_in + (u - st->window_first) * st->push_frame +
           c * st->window_chan_stride;
  if (u >= st->prev_first && u < st->prev_end)
    return st->prev_in + (u - st->prev_first) * st->push_frame + c * st->prev_chan_stride;
  return cts_stored_row(st, u, c);
}
void cts_zero_rows(ct_stream *st, int64_t count);
void cts_drop_unneeded_rows(ct_stream *st);
ct_status cts_make_room(ct_stream *st);
ct_status cts_append_1d(ct_stream *st, const float *src, int64_t src_chan_stride,
                        int64_t count);
void cts_copy_into_ring(ct_stream *st, const float *src, int64_t src_chan_stride,
                        int64_t first_row, int64_t count);
ct_status cts_keep_rows(ct_stream *st, const float *src, int64_t src_chan_stride,
                        int64_t src_first, int64_t from, int64_t end);
ct_status cts_release_prev(ct_stream *st);
ct_status cts_alloc_floats(float **out, int64_t count);

/* ---- compute.c ---- */
int64_t cts_span_start(int64_t j, int64_t origin, int64_t len);
int64_t cts_span_origin(const ct_stream *st, int64_t phase);
void cts_compute_rows(const ct_stream *st, int64_t jb, int64_t je, int64_t part_begin,
                      int64_t part_end, float *out, int64_t out_chan_stride,
                      int64_t out_base, const worker_scratch *ws);
void cts_compute_to_sink(const ct_stream *st, int64_t jb, int64_t je,
                         const worker_scratch *ws);

/* ---- work-split.c ---- */
void cts_run_on_pool(const ct_stream *st, int n_tasks, ct_pool_task fn, void *ctx);
/* Whether a 1d push of n_steps is split by groups (each thread copying its
 * own channels: see pending_group_copy); makes room in the history for it. */
bool cts_split_by_groups_fits(ct_stream *st, int64_t n_steps);
void cts_compute_outputs(ct_stream *st, int64_t j_end, float *out,
                         int64_t out_chan_stride, int64_t out_base);

/* ---- scratch.c ---- */
void cts_free_scratch(worker_scratch *scratch, int n);
void *cts_alloc_lines(size_t bytes);

/* ---- traffic.c ---- */
extern const double cts_nontemporal_default_bytes;
void cts_choose_stores(ct_stream *st, int64_t rows);
void cts_outputs_done(ct_stream *st, int64_t j_end);
void cts_track_fill(ct_stream *st, const float *out, int64_t out_chan_stride);
void cts_track_input(ct_stream *st, const float *in, int64_t in_chan_stride,
                     int64_t n_steps);
void cts_end_fill(ct_stream *st, float *out, int64_t out_chan_stride, int64_t steps);
void cts_prefetch_ahead(const ct_stream *st, int64_t c_begin, int64_t c_end, int64_t n);
/* p + n floats, where p + n may lie past the caller's array: only ever
 * prefetched, which never faults. */
static inline const float *cts_floats_on(const float *p, int64_t n) {
  return (const float *)((uintptr_t)p + (uintptr_t)n * sizeof(float));
}

/* ---- tap-mode.c ---- */
void cts_tap_rows(ct_stream *st, const float *in, int64_t in_chan_stride, int64_t count,
                  int64_t available);

static inline int threads_of(const ct_stream *st) {
  return st->pool ? ct_pool_size(st->pool) : 1;
}

static inline int64_t min_i64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

#endif
