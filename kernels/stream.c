#include "stream.h"

#include "dsp.h"
#include "layer-private.h"
#include "pool.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sizes of the work units, in floats: one compute block of output steps, and
 * one fill of the input history (per push iteration, all channels). */
enum { COMPUTE_BLOCK_FLOATS = 1 << 14, FILL_FLOATS = 1 << 18 };
/* 1d pushes of at least this many input floats (steps x channels) read
 * their input in place (push_1d_direct): a whole signal is not copied.
 * Smaller ones cost less copied, as one run of outputs instead of a run
 * from the history then one from the push (10 ms of K3 or K4, 30-250 K
 * floats: 3-8% less time streamed, min of 40 runs). */
enum { DIRECT_1D_FLOATS = 1 << 18 };

/* Outputs of a push larger than this go out with non-temporal stores, and
 * so do those of pushes that fill one array in order once it has grown
 * past it: twice what a core's L2 holds, so whatever reads them next reads
 * most of them from beyond it either way, and the stores need not read
 * every line in first (on these machines that read is a third of the
 * memory traffic). From 8 MB down to 2 MB changed no one-shot case (K1,
 * K3, K4, K7 within noise); streamed K5 rows then match one-shot. */
#define STREAM_OUT_BYTES (2.0 * 1024 * 1024)

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
  float *sink_block;       /* [Cout][sink_steps][frame] with a sink, else NULL */
  const float **phases;    /* [s_run] */
  int64_t *starts;         /* [s_run] */
  /* The groups this thread computes: all of them, except in a push split
   * by groups (see push_by_groups). */
  int64_t g_begin, g_end;
  /* Tap mode, one-row pushes: the chunks of span i (see tap_span_task)
   * not yet taken, in scratch[i]: front (low 32 bits) to back. */
  _Alignas(64) _Atomic uint64_t tap_chunks;
} worker_scratch;

/* The matrix product of one phase combination (see dsp.h): product k reads
 * input channel chan[k] of the row offset0[k] before the output's phase
 * index on axis 0, at inner[k] floats from the run start on the others.
 * The indices take 32 bits: axis-0 offsets are at most CT_MAX_REACH,
 * channels below Cin or the taps, and the frame offsets are checked as the
 * plan is built (a stream that fits CT_STREAM_MAX_BYTES never nears 2^31). */
typedef struct run_plan {
  int64_t k;        /* taps x (Cin/g); 0 for a residue no tap reaches */
  float *a;         /* [Cout][k]: group g's rows start at g * (Cout/g) */
  int32_t *offset0; /* [k] */
  int32_t *chan;    /* [k] */
  int32_t *inner;   /* [k] */
  /* Stride 2 along the run, both residues reading the same inputs (set on
   * the residue-0 plan): rows (channel, residue) of every group, for
   * run_pairs, and their bias. NULL otherwise. */
  float *pair_a;
  float *pair_bias;
} run_plan;

struct ct_stream {
  const ct_layer *layer;
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
  int run_axis;    /* the last axis: outputs along it are contiguous */
  int64_t run_len; /* outputs along the run axis per run (rank >= 2) */

  /* Polyphase plans, one per combination of outer phases (axes before the
   * run axis, those with taps) and run-axis residue (all s of them). */
  int64_t n_outer[2]; /* phases with taps on axes 0 and 1 when outer */
  struct run_plan *plans;
  const ct_dsp *dsp;
  float *bias_runs; /* [Cout][acc_stride] of bias, for tap-less residues */
  float *zero_bias; /* [Cout] zeros when the layer has no bias */
  /* Stride 2 on axis 0 (2d/3d, stride 1 along the run): when the two
   * phases of axis 0 read the same input rows, steps j and j + 1 (j + p
   * even) are computed together, each input vector loaded once for both.
   * One per phase of axis 1 (3d), else one; NULL when not possible. */
  struct step_pair {
    float *a;    /* rows (phase, channel) of every group, packed */
    float *bias; /* [2 Cout] */
  } * step_pairs;
  int64_t step_pair_o0; /* axis-0 phase of residue 0 */

  /* Tap mode (2d, one output channel, many input channels): a
   * single-output-channel product gives the matrix kernels no reuse of what
   * they load. Instead every input row is first multiplied by all kernel
   * taps at once, P[tap][x] = sum_ci w[ci][tap] x[ci][x] (a well-shaped
   * matrix product: taps x Cin), and the history keeps P, one channel per
   * tap; an output is then the bias plus the P of its taps, a plan of
   * products with weight 1 (fused multiply-adds by 1 are exact additions).
   * Every output is still one fixed chain, so streaming stays bitwise. */
  bool tap_mode;
  int64_t hist_channels; /* channels of a history row: Cin, or taps */
  float *tap_a;          /* [taps][Cin] in tiles of CT_GEMM_MR rows */
  float *tap_zero;       /* [taps] zeros: P has no bias */

  /* Input history: the zero-extended input's rows (steps) of padded frames
   * from padded index hist_first on. 1d: channel-planar and contiguous
   * ([ci][row]), compacted when full, so runs along the signal are plain
   * arrays. 2d/3d: a ring of row slots ([slot][ci][frame]), never moved.
   * Frame borders are zero and stay zero: only interiors are written. */
  float *hist;
  bool ring;
  /* 2d/3d without frame borders: the rows of the push in progress are read
   * where the caller has them, [direct_first, direct_end) in padded rows. */
  bool direct_ok;
  const float *direct_in;
  int64_t direct_chan_stride, direct_first, direct_end;
  /* With ct_stream_retain_input: the previous push's rows that are still
   * needed, [prev_first, prev_end), read where the caller keeps them. The
   * ring's rows end where these begin. */
  bool retain_input;
  bool retain_wanted; /* the caller's choice, in effect where direct_ok */
  /* 1d: outputs whose inputs all belong to the push in progress read them
   * where the caller has them (channel c of padded row u at
   * direct1d + (u - direct1d_first) + c * direct1d_chan_stride); NULL
   * otherwise. */
  const float *direct1d;
  int64_t direct1d_first, direct1d_chan_stride;
  const float *prev_in;
  int64_t prev_chan_stride, prev_first, prev_end;
  int64_t max_k;    /* largest plan */
  int64_t hist_cap; /* rows per channel */
  int64_t hist_first;
  int64_t hist_rows;
  int64_t fill_rows; /* rows appended per iteration at most */

  int64_t block_rows; /* output steps per compute block */
  /* 1d: where the blocks of the computation in progress start counting:
   * its first output, so that a push of whole blocks' worth of steps (10 ms
   * of a stride-8 layer: 15 x 256) is all whole vector tiles, wherever the
   * last push stopped. */
  int64_t block_anchor;
  int64_t acc_stride;      /* floats per channel per residue in acc */
  int64_t acc_count;       /* floats of acc per thread */
  worker_scratch *scratch; /* one per thread */
  int n_scratch;
  ct_pool *pool; /* NULL: single-threaded */
  bool owns_pool;
  double macs_per_step; /* multiply-adds per output step, all channels */
  double parallel_macs; /* blocks smaller than this run on one thread */
  /* Pushes whose output is larger than this (bytes) write it with
   * non-temporal stores (ct_run_gemm.stream_out); stream_out: this one does.
   * Pushes that fill one array in order (each writing where the last one
   * stopped: out_next, same channel stride) count as one: out_filled bytes
   * so far. */
  double stream_out_bytes;
  bool stream_out;
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
  /* ct_stream_set_sink: outputs computed into each thread's sink_block,
   * blocks of sink_steps (1d: from the block anchor, like compute blocks;
   * 2d: on absolute boundaries shifted back by sink_phase, so that step
   * pairs stay whole), then handed over. */
  ct_stream_sink sink;
  void *sink_ctx;
  int64_t sink_steps, sink_phase;

  int64_t n_in, n_out;
  size_t plan_bytes;  /* of the plans, pairs and tap weights (ct_stream_plan_bytes) */
  bool plan_overflow; /* a plan index past 32 bits: the layer is refused */
};

static bool build_plans(ct_stream *st);
static bool build_tap_weights(ct_stream *st);
static void free_plans(ct_stream *st);
static void free_scratch(worker_scratch *scratch, int n);

static void set_msg(char *msg, size_t msg_size, const char *text) {
  if (msg && msg_size)
    snprintf(msg, msg_size, "%s", text);
}

size_t ct_stream_plan_bytes(const ct_stream *stream) {
  return stream->plan_bytes;
}

int64_t ct_stream_in_frame_size(const ct_stream *stream) {
  return stream->push_frame;
}

int64_t ct_stream_out_frame_size(const ct_stream *stream) {
  return stream->out_frame;
}

const int64_t *ct_stream_out_frame_shape(const ct_stream *stream) {
  return stream->out_frame_shape;
}

int64_t ct_stream_steps_in(const ct_stream *stream) {
  return stream->n_in;
}

int64_t ct_stream_steps_out(const ct_stream *stream) {
  return stream->n_out;
}

/* Padded row index of input step i. */
static int64_t padded_row(const ct_stream *st, int64_t i) {
  return i + st->pad_before[0];
}

/* History rows still needed once outputs before j are done. */
static int64_t first_needed_row(const ct_stream *st, int64_t j) {
  int64_t row = padded_row(st, ct_axis_first_input(st->axis[0], j));
  return row > 0 ? row : 0;
}

/* Largest number of rows the history holds after a push has computed what it
 * may: the transient at the start plus the steady-state window. */
static int64_t max_kept_rows(const ct_stream *st) {
  const ct_params *params = &st->layer->params;
  ct_axis a = st->axis[0];
  int64_t reach = a.d * (a.k - 1);
  int64_t horizon = (2 * a.p + reach + a.s) / a.s + 4;
  int64_t most = reach / a.s + 2;
  /* Past a point the walk below costs more than it saves: bound instead
   * (the memory limit then decides). */
  if (horizon > (1 << 16))
    return st->pad_before[0] + horizon + most + 1;
  for (int64_t n = 0; n <= horizon; n++) {
    int64_t kept = padded_row(st, n) - first_needed_row(st, ct_stream_emitted(params, n));
    if (kept > most)
      most = kept;
  }
  return most + 1;
}

/* The most bytes build_plans and build_tap_weights allocate, from the
 * phase tables alone, so that a stream too large is refused before any of
 * it is allocated. Every tap combination is in exactly one plan, so the
 * plans hold (Cin/g) x taps products (tap mode: taps) in all, each with
 * its column of packed weights and three 32-bit indices; pairs merge two
 * plans of equal length. */
static double plan_bytes_bound(const ct_stream *st) {
  const ct_layer *layer = st->layer;
  const ct_params *params = &layer->params;
  const int rank = params->rank;
  const double n0 = rank > 1 ? (double)layer->phases[0].n_phases : 1,
               n1 = rank > 2 ? (double)layer->phases[1].n_phases : 1,
               s_run = (double)st->axis[rank - 1].s, n_plans = n0 * n1 * s_run;
  const double products =
      (st->tap_mode ? 1.0 : (double)layer->in_per_group) * (double)layer->taps_per_pair;
  const double groups = (double)params->groups, cout = (double)params->out_channels;
  const double rows = (double)ct_gemm_packed_size(layer->out_per_group, 1),
               pair_rows = (double)ct_gemm_packed_size(2 * layer->out_per_group, 1);
  double floats = groups * rows * products, pairs = 0;
  if (s_run == 2)
    pairs = n_plans / 2; /* phase pairs */
  else if (rank > 1 && st->axis[0].s == 2 && s_run == 1)
    pairs = n1; /* step pairs */
  if (pairs > 0)
    floats += groups * pair_rows * products / 2 + pairs * 2 * cout;
  if (st->tap_mode) {
    const double taps = (double)layer->taps_per_pair;
    floats += (double)ct_gemm_packed_size(layer->taps_per_pair, 1) *
                  (double)params->in_channels +
              taps;
  }
  return floats * sizeof(float) + products * 3 * sizeof(int32_t) +
         n_plans * sizeof(run_plan) + n1 * sizeof(struct step_pair);
}

static ct_status alloc_floats(float **out, int64_t count) {
  size_t bytes;
  if (!ct_bytes_for(count, sizeof(float), &bytes))
    return CT_ERR_OVERFLOW;
  *out = calloc(bytes ? bytes : 1, 1);
  return *out ? CT_OK : CT_ERR_NOMEM;
}

/* Where channel c of padded row u lives. */
static float *stored_row(const ct_stream *st, int64_t u, int64_t c) {
  if (st->ring)
    return st->hist + ((u % st->hist_cap) * st->hist_channels + c) * st->padded_frame;
  return st->hist + c * st->hist_cap * st->padded_frame +
         (u - st->hist_first) * st->padded_frame;
}

static const float *row_ptr(const ct_stream *st, int64_t u, int64_t c) {
  if (u >= st->direct_first && u < st->direct_end)
    return st->direct_in + (u - st->direct_first) * st->push_frame +
           c * st->direct_chan_stride;
  if (u >= st->prev_first && u < st->prev_end)
    return st->prev_in + (u - st->prev_first) * st->push_frame + c * st->prev_chan_stride;
  return stored_row(st, u, c);
}

/* Appends count zero rows to the history (room must be there). */
static void zero_rows(ct_stream *st, int64_t count) {
  const int64_t channels = st->hist_channels;
  for (int64_t r = 0; r < count; r++)
    for (int64_t c = 0; c < channels; c++)
      memset(stored_row(st, st->hist_first + st->hist_rows + r, c), 0,
             (size_t)st->padded_frame * sizeof(float));
  st->hist_rows += count;
}

void ct_stream_reset(ct_stream *stream) {
  stream->n_in = 0;
  stream->n_out = 0;
  stream->hist_first = 0;
  stream->hist_rows = 0;
  stream->direct_first = stream->direct_end = 0;
  stream->prev_first = stream->prev_end = 0;
  zero_rows(stream, stream->pad_before[0]);
}

ct_stream *ct_stream_new(const ct_layer *layer, const int64_t *frame_shape, char *msg,
                         size_t msg_size) {
  const ct_params *params = &layer->params;
  ct_stream *st = calloc(1, sizeof *st);
  if (!st) {
    set_msg(msg, msg_size, "out of memory");
    return NULL;
  }
  st->layer = layer;
  st->in_frame = st->out_frame = st->padded_frame = 1;
  bool ok = true;
  for (int a = 0; a < CT_MAX_RANK; a++) {
    st->axis[a] = ct_params_axis(params, a);
    st->pad_before[a] = ct_axis_pad_before(st->axis[a]);
    if (a == 0)
      continue;
    int64_t in_len = a < params->rank ? frame_shape[a - 1] : 1, out_len;
    if (in_len < 1) {
      if (msg && msg_size)
        snprintf(msg, msg_size, "frame length %lld on axis %d must be at least 1",
                 (long long)in_len, a);
      free(st);
      return NULL;
    }
    if (ct_axis_output_length(st->axis[a], in_len, &out_len) != CT_OK) {
      set_msg(msg, msg_size, "frame output size overflows");
      free(st);
      return NULL;
    }
    if (out_len < 1) {
      if (msg && msg_size)
        snprintf(msg, msg_size,
                 "frame length %lld on axis %d gives output length %lld (< 1): the "
                 "frame is too small for this layer",
                 (long long)in_len, a, (long long)out_len);
      free(st);
      return NULL;
    }
    st->in_len[a] = in_len;
    st->out_len[a] = out_len;
    if (a < params->rank)
      st->out_frame_shape[a - 1] = out_len;
    int64_t padded = in_len + st->pad_before[a];
    ok = ok &&
         ct_add_i64(padded, ct_axis_pad_after(st->axis[a], in_len, out_len), &padded) &&
         ct_mul_i64(st->in_frame, in_len, &st->in_frame) &&
         ct_mul_i64(st->out_frame, out_len, &st->out_frame) &&
         ct_mul_i64(st->padded_frame, padded, &st->padded_frame);
    st->padded_len[a] = padded;
  }
  if (!ok) {
    set_msg(msg, msg_size, "frame size overflows");
    free(st);
    return NULL;
  }

  st->tap_mode = params->rank == 2 && params->groups == 1 && params->out_channels == 1 &&
                 params->in_channels >= 16 && layer->taps_per_pair >= 6 &&
                 layer->taps_per_pair <= 256;
  st->hist_channels = st->tap_mode ? layer->taps_per_pair : params->in_channels;
  int64_t channels = st->hist_channels;
  int64_t fill = FILL_FLOATS / channels / st->padded_frame;
  /* Tap mode: each fill is a parallel step followed by a wait for the
   * slowest thread; 16 rows of P (not the 4 the budget gives K7) halve the
   * time spent waiting. */
  if (st->tap_mode && fill < 16)
    fill = 16;
  st->fill_rows = fill > 0 ? fill : 1;
  st->ring = params->rank > 1;
  st->push_frame = st->in_frame;
  st->direct_ok = st->ring && st->padded_frame == st->in_frame && !st->tap_mode;
  st->hist_cap = max_kept_rows(st) + (st->direct_ok ? 1 : st->fill_rows);
  if (st->hist_cap < st->pad_before[0] + 1)
    st->hist_cap = st->pad_before[0] + 1;
  /* Roughly: each output sums (Cin/g) * prod(k) / prod(s) products. */
  int64_t strides = st->axis[0].s * st->axis[1].s * st->axis[2].s;
  st->macs_per_step = (double)params->out_channels * (double)st->out_frame *
                      ((double)(st->tap_mode ? 1 : layer->in_per_group) *
                           (double)layer->taps_per_pair / (double)strides +
                       1);
  st->parallel_macs = 1 << 17;
  st->stream_out_bytes = STREAM_OUT_BYTES;
  /* 1d runs cover a block of steps per residue; keep acc near the cache. */
  const int64_t cout = params->out_channels;
  const int64_t s_run = st->axis[params->rank - 1].s;
  int64_t block = COMPUTE_BLOCK_FLOATS / st->out_frame;
  if (params->rank == 1) {
    /* A multiple of stride x 32: every phase gets whole vector tiles; and
     * at least 256 positions per phase, so that a layer with megabytes of
     * weights uses each phase's over many columns before the next phase's
     * (K4, 256 channels: 58-70 -> 48-52 ms on one thread). */
    const int64_t unit = s_run * 32;
    block = (4 * COMPUTE_BLOCK_FLOATS) / cout / unit * unit;
    if (block < 8 * unit)
      block = 8 * unit;
  }
  st->block_rows = block > 0 ? block : 1;
  st->run_len = params->rank == 1 ? st->block_rows : st->out_len[params->rank - 1];
  st->acc_stride = ct_ceil_div(st->run_len, s_run) + 1;
  st->dsp = ct_dsp_default();

  int64_t hist_count = 0, acc_count = 0;
  ok = ct_mul_i64(st->hist_cap, st->padded_frame, &hist_count) &&
       ct_mul_i64(hist_count, channels, &hist_count) &&
       ct_mul_i64(s_run, cout, &acc_count) &&
       ct_mul_i64(acc_count, st->acc_stride, &acc_count);
  st->acc_count = acc_count;
  /* Refuse before allocating what no stream should hold (a padding or
   * dilation of billions keeps billions of steps; a frame of 10^12 values;
   * a stride of billions, as many plans). */
  const double products =
      (st->tap_mode ? 1.0 : (double)layer->in_per_group) * (double)layer->taps_per_pair;
  /* With one thread's scratch: a phase pointer and start per residue of the
   * run axis, two row pointers per product of the largest plan. */
  const double state_bytes = ((double)hist_count + (double)acc_count) * sizeof(float) +
                             (double)s_run * (sizeof(float *) + sizeof(int64_t)) +
                             products * 2 * sizeof(float *),
               plan_bytes = plan_bytes_bound(st);
  if (ok && state_bytes + plan_bytes > CT_STREAM_MAX_BYTES) {
    if (msg && msg_size)
      snprintf(msg, msg_size,
               "the stream would need %.0f MB of state (%lld steps of %lld values kept "
               "per channel) and %.0f MB of plans, over the limit of %d MB",
               state_bytes / 1e6, (long long)st->hist_cap, (long long)st->padded_frame,
               plan_bytes / 1e6, (int)(CT_STREAM_MAX_BYTES / 1000000));
    ct_stream_free(st);
    return NULL;
  }
  ct_status status = ok ? alloc_floats(&st->hist, hist_count) : CT_ERR_OVERFLOW;
  if (status == CT_OK)
    status = alloc_floats(&st->bias_runs, cout * st->acc_stride);
  if (status == CT_OK)
    status = alloc_floats(&st->zero_bias, cout);
  if (status == CT_OK) {
    for (int64_t co = 0; co < cout; co++)
      for (int64_t i = 0; i < st->acc_stride; i++)
        st->bias_runs[co * st->acc_stride + i] = layer->bias ? layer->bias[co] : 0.0f;
    if (!build_plans(st) || !build_tap_weights(st) ||
        ct_stream_set_threads(st, 1) != CT_OK)
      status = CT_ERR_NOMEM;
  }
  if (status == CT_ERR_NOMEM && st->plan_overflow)
    status = CT_ERR_OVERFLOW;
  if (status != CT_OK) {
    set_msg(msg, msg_size,
            status == CT_ERR_NOMEM ? "out of memory for the stream state"
                                   : "stream state size overflows");
    ct_stream_free(st);
    return NULL;
  }
  ct_stream_reset(st);
  return st;
}

void ct_stream_free(ct_stream *stream) {
  if (!stream)
    return;
  if (stream->owns_pool)
    ct_pool_free(stream->pool);
  free_scratch(stream->scratch, stream->n_scratch);
  free_plans(stream);
  free(stream->hist);
  free(stream->bias_runs);
  free(stream->tap_a);
  free(stream->tap_zero);
  free(stream->zero_bias);
  free(stream);
}

int64_t ct_stream_push_out_steps(const ct_stream *stream, int64_t n_steps) {
  int64_t total;
  if (n_steps < 0 || !ct_add_i64(stream->n_in, n_steps, &total))
    return -1;
  int64_t emitted = ct_stream_emitted(&stream->layer->params, total);
  return emitted < 0 ? -1 : emitted - stream->n_out;
}

/* Total outputs of the signal pushed so far, were it to end now. */
static int64_t final_length(const ct_stream *st) {
  int64_t len;
  if (st->n_in == 0 || ct_axis_output_length(st->axis[0], st->n_in, &len) != CT_OK ||
      len < st->n_out)
    return st->n_out;
  return len;
}

int64_t ct_stream_finish_out_steps(const ct_stream *stream) {
  return final_length(stream) - stream->n_out;
}

/* History offset of a padded index on each axis (axis 0 relative to
 * hist_first is added by the caller). */
static int64_t axis_step(const ct_stream *st, int axis) {
  return axis == 0 ? st->padded_frame : axis == 1 ? st->padded_len[2] : 1;
}

static const ct_phase *phase_of_residue(const ct_phase_table *table, int64_t residue) {
  for (int64_t i = 0; i < table->n_phases; i++)
    if (table->phases[i].residue == residue)
      return &table->phases[i];
  return NULL;
}

/* Zeroed plan memory of count items, counted in st->plan_bytes. */
static void *plan_alloc(ct_stream *st, int64_t count, size_t size) {
  size_t bytes;
  if (!ct_bytes_for(count, size, &bytes))
    return NULL;
  void *p = calloc(bytes ? bytes : 1, 1);
  if (p)
    st->plan_bytes += bytes;
  return p;
}

/* Floats of packed weights for `groups` groups of m rows and k products. */
static int64_t packed_floats(int64_t groups, int64_t m, int64_t k) {
  int64_t n;
  return ct_mul_i64(groups, ct_gemm_packed_size(m, k), &n) ? n : -1;
}

/* Weight of output channel co from input channel ci of its group, tap tap
 * (PyTorch's layout: [Cin][Cout/g][taps]). */
static float weight_of(const ct_layer *layer, int64_t co, int64_t ci, int64_t tap) {
  const int64_t g = co / layer->out_per_group, co_l = co % layer->out_per_group;
  return layer->weight[((g * layer->in_per_group + ci) * layer->out_per_group + co_l) *
                           layer->taps_per_pair +
                       tap];
}

/* Builds the plan of one phase combination: weights in (ci, t0, t1, t2)
 * order, and where each product reads relative to the run start. */
static bool build_plan(ct_stream *st, const ct_phase *const *phases, run_plan *plan) {
  const ct_layer *layer = st->layer;
  const int rank = layer->params.rank;
  int64_t taps = 1;
  for (int a = 0; a < rank; a++)
    taps *= phases[a] ? phases[a]->count : 0; /* <= CT_MAX_TAPS */
  const int64_t n_ci = st->tap_mode ? 1 : layer->in_per_group;
  plan->k = n_ci * taps; /* <= CT_MAX_WEIGHTS */
  if (plan->k == 0)
    return true;
  const int64_t cout = layer->params.out_channels;
  const int64_t out_g = layer->out_per_group,
                per_group = ct_gemm_packed_size(out_g, plan->k);
  plan->a =
      plan_alloc(st, packed_floats(layer->params.groups, out_g, plan->k), sizeof(float));
  plan->offset0 = plan_alloc(st, plan->k, sizeof(int32_t));
  plan->chan = plan_alloc(st, plan->k, sizeof(int32_t));
  plan->inner = plan_alloc(st, plan->k, sizeof(int32_t));
  if (!plan->a || !plan->offset0 || !plan->chan || !plan->inner)
    return false;
  if (plan->k > st->max_k)
    st->max_k = plan->k;
  const int64_t k1 = st->axis[1].k, k2 = st->axis[2].k;
  /* Taps on axis 0 outermost: in 2d/3d one input row serves a run of
   * products, and rows may live in different places. */
  int64_t k = 0;
  for (int64_t i0 = 0; i0 < phases[0]->count; i0++) {
    const ct_tap t0 = layer->phases[0].taps[phases[0]->first + i0];
    for (int64_t ci = 0; ci < n_ci; ci++) {
      const int64_t n1 = rank > 1 ? phases[1]->count : 1;
      for (int64_t i1 = 0; i1 < n1; i1++) {
        const ct_tap t1 =
            rank > 1 ? layer->phases[1].taps[phases[1]->first + i1] : (ct_tap){0, 0};
        const int64_t n2 = rank > 2 ? phases[2]->count : 1;
        for (int64_t i2 = 0; i2 < n2; i2++, k++) {
          const ct_tap t2 =
              rank > 2 ? layer->phases[2].taps[phases[2]->first + i2] : (ct_tap){0, 0};
          const int64_t tap = (t0.tap * k1 + t1.tap) * k2 + t2.tap;
          const int64_t inner =
              -t1.offset * axis_step(st, 1) - t2.offset * axis_step(st, 2);
          if (inner < INT32_MIN) { /* a frame past any limit: never wrap */
            st->plan_overflow = true;
            return false;
          }
          plan->offset0[k] = t0.offset;
          plan->chan[k] = (int32_t)(st->tap_mode ? tap : ci); /* tap mode: P's channel */
          plan->inner[k] = (int32_t)inner;
          /* Tiles of CT_GEMM_MR rows within each group (see dsp.h). */
          for (int64_t co = 0; co < cout; co++) {
            const int64_t g = co / out_g, r = co % out_g;
            plan->a[g * per_group + (r / CT_GEMM_MR * plan->k + k) * CT_GEMM_MR +
                    r % CT_GEMM_MR] = st->tap_mode ? 1.0f : weight_of(layer, co, ci, tap);
          }
        }
      }
    }
  }
  return true;
}

/* The weights of two plans that read the same inputs, as one product whose
 * rows are (channel, plan) when interleaved (phase pairs), else (plan,
 * channel) (step pairs), per group; and the bias of those rows. */
static bool merge_weights(ct_stream *st, const run_plan *const plans[2], bool interleaved,
                          float **a_out, float **bias_out) {
  const ct_layer *layer = st->layer;
  const int64_t out_g = layer->out_per_group, groups = layer->params.groups;
  const int64_t k = plans[0]->k, per_group = ct_gemm_packed_size(out_g, k),
                pair_group = ct_gemm_packed_size(2 * out_g, k);
  float *merged = *a_out =
      plan_alloc(st, packed_floats(groups, 2 * out_g, k), sizeof(float));
  float *bias = *bias_out = plan_alloc(st, 2 * layer->params.out_channels, sizeof(float));
  if (!merged || !bias)
    return false;
  for (int64_t g = 0; g < groups; g++)
    for (int64_t row = 0; row < 2 * out_g; row++) {
      const int64_t c = interleaved ? row / 2 : row % out_g;
      const float *a = plans[interleaved ? row % 2 : row / out_g]->a + g * per_group;
      float *pa = merged + g * pair_group;
      for (int64_t j = 0; j < k; j++)
        pa[(row / CT_GEMM_MR * k + j) * CT_GEMM_MR + row % CT_GEMM_MR] =
            a[(c / CT_GEMM_MR * k + j) * CT_GEMM_MR + c % CT_GEMM_MR];
      bias[2 * g * out_g + row] = layer->bias ? layer->bias[g * out_g + c] : 0.0f;
    }
  return true;
}

/* Whether two plans read the same inputs in the same order. */
static bool same_reads(const run_plan *p, const run_plan *q) {
  if (p->k == 0 || p->k != q->k)
    return false;
  for (int64_t i = 0; i < p->k; i++)
    if (p->offset0[i] != q->offset0[i] || p->chan[i] != q->chan[i] ||
        p->inner[i] != q->inner[i])
      return false;
  return true;
}

/* Merges the two residue plans of a stride-2 run when they read the same
 * inputs in the same order (kernel length even along the run, dilation 1):
 * then one pass computes both phases and writes them interleaved. */
static bool build_pair_plan(ct_stream *st, run_plan *p0, const run_plan *p1) {
  const int64_t k = p0->k;
  if (!same_reads(p0, p1) || k > CT_GEMM_KC)
    return true;
  const run_plan *plans[2] = {p0, p1};
  return merge_weights(st, plans, true, &p0->pair_a, &p0->pair_bias);
}

static int64_t plan_count(const ct_stream *st) {
  return st->n_outer[0] * st->n_outer[1] * st->axis[st->run_axis].s;
}

/* Plans for every combination; the run axis is indexed by residue. */
/* Tap mode's products: P[tap] = sum over ci of w[ci][tap] * x[ci]. */
static bool build_tap_weights(ct_stream *st) {
  if (!st->tap_mode)
    return true;
  const ct_layer *layer = st->layer;
  const int64_t taps = layer->taps_per_pair, cin = layer->params.in_channels;
  st->tap_a = plan_alloc(st, packed_floats(1, taps, cin), sizeof(float));
  st->tap_zero = plan_alloc(st, taps, sizeof(float));
  if (!st->tap_a || !st->tap_zero)
    return false;
  for (int64_t t = 0; t < taps; t++)
    for (int64_t ci = 0; ci < cin; ci++)
      st->tap_a[(t / CT_GEMM_MR * cin + ci) * CT_GEMM_MR + t % CT_GEMM_MR] =
          weight_of(layer, 0, ci, t);
  if (cin > st->max_k)
    st->max_k = cin;
  return true;
}

/* See step_pairs. */
static bool build_step_pairs(ct_stream *st) {
  const ct_layer *layer = st->layer;
  const ct_phase_table *ph = &layer->phases[0];
  if (layer->params.rank < 2 || st->axis[0].s != 2 || st->axis[st->run_axis].s != 1)
    return true;
  const ct_phase *phase0 = phase_of_residue(ph, 0), *phase1 = phase_of_residue(ph, 1);
  if (!phase0 || !phase1)
    return true;
  const int64_t o0a = phase0 - ph->phases, o0b = phase1 - ph->phases, n1 = st->n_outer[1];
  for (int64_t o1 = 0; o1 < n1; o1++)
    if (!same_reads(&st->plans[o0a * n1 + o1], &st->plans[o0b * n1 + o1]))
      return true;
  if (n1 < 1)
    return true;
  st->step_pairs = plan_alloc(st, n1, sizeof *st->step_pairs);
  if (!st->step_pairs)
    return false;
  st->step_pair_o0 = o0a;
  for (int64_t o1 = 0; o1 < n1; o1++) {
    const run_plan *plans[2] = {&st->plans[o0a * n1 + o1], &st->plans[o0b * n1 + o1]};
    if (!merge_weights(st, plans, false, &st->step_pairs[o1].a, &st->step_pairs[o1].bias))
      return false;
  }
  return true;
}

static bool build_plans(ct_stream *st) {
  const ct_phase_table *ph = st->layer->phases;
  const int rank = st->layer->params.rank;
  st->run_axis = rank - 1;
  st->n_outer[0] = rank > 1 ? ph[0].n_phases : 1;
  st->n_outer[1] = rank > 2 ? ph[1].n_phases : 1;
  const int64_t s_run = st->axis[st->run_axis].s;
  st->plans = plan_alloc(st, plan_count(st), sizeof(run_plan));
  if (!st->plans)
    return false;
  for (int64_t o0 = 0; o0 < st->n_outer[0]; o0++)
    for (int64_t o1 = 0; o1 < st->n_outer[1]; o1++)
      for (int64_t r = 0; r < s_run; r++) {
        const ct_phase *phases[CT_MAX_RANK] = {NULL, NULL, NULL};
        if (rank > 1)
          phases[0] = &ph[0].phases[o0];
        if (rank > 2)
          phases[1] = &ph[1].phases[o1];
        phases[st->run_axis] = phase_of_residue(&ph[st->run_axis], r);
        if (!build_plan(st, phases, &st->plans[(o0 * st->n_outer[1] + o1) * s_run + r]))
          return false;
      }
  for (int64_t i = 0; s_run == 2 && i < plan_count(st); i += 2)
    if (!build_pair_plan(st, &st->plans[i], &st->plans[i + 1]))
      return false;
  return build_step_pairs(st);
}

static void free_plans(ct_stream *st) {
  if (!st->plans)
    return;
  for (int64_t i = 0; i < plan_count(st); i++) {
    free(st->plans[i].a);
    free(st->plans[i].offset0);
    free(st->plans[i].chan);
    free(st->plans[i].inner);
    free(st->plans[i].pair_a);
    free(st->plans[i].pair_bias);
  }
  free(st->plans);
  st->plans = NULL;
  for (int64_t i = 0; st->step_pairs && i < st->n_outer[1]; i++) {
    free(st->step_pairs[i].a);
    free(st->step_pairs[i].bias);
  }
  free(st->step_pairs);
  st->step_pairs = NULL;
}

/* One run: the outputs along the run axis for fixed outer positions, every
 * residue computed into acc, then interleaved into each channel's output.
 * plans: the s_run plans of the outer phases; m0: the phase index on axis 0
 * (2d/3d); line: offset of the outer position on axis 1 (3d);
 * first_out/count: the outputs of the run (1d: the block's steps). */
/* Where each product of `plan` reads for the run at phase index mb of
 * group g's input channels (ci0 the first). */
static void set_rows(const ct_stream *st, const run_plan *plan, int64_t m0, int64_t line,
                     int64_t mb, int64_t ci0, const worker_scratch *ws) {
  const int64_t pad = st->pad_before[st->run_axis], pad0 = st->pad_before[0];
  if (st->layer->params.rank == 1) { /* channel-planar runs: plain offsets */
    const bool direct = st->direct1d != NULL;
    const float *base = direct ? st->direct1d + (mb + pad0 - st->direct1d_first)
                               : st->hist + (mb + pad0 - st->hist_first);
    const int64_t chan_stride = direct ? st->direct1d_chan_stride : st->hist_cap;
    for (int64_t k = 0; k < plan->k; k++)
      ws->rows[k] = base + (ci0 + plan->chan[k]) * chan_stride - plan->offset0[k];
  } else {
    /* Consecutive products mostly share a row (the inner taps): look each
     * row up once. */
    int64_t last_u = -1, last_c = -1;
    const float *row = NULL;
    for (int64_t k = 0; k < plan->k; k++) {
      const int64_t u = m0 - plan->offset0[k] + pad0, c = ci0 + plan->chan[k];
      if (u != last_u || c != last_c) {
        row = row_ptr(st, u, c);
        last_u = u;
        last_c = c;
      }
      ws->rows[k] = row + plan->inner[k] + line + mb + pad;
    }
  }
}

static void compute_run_phases(const ct_stream *st, const run_plan *plans, int64_t m0,
                               int64_t line, int64_t first_out, int64_t count, float *out,
                               int64_t out_chan_stride, const worker_scratch *ws);

/* Outputs [x_begin, x_end) of a run one at a time (the one or two at the
 * ends of a run a phase pair does not cover), written straight into out
 * (which holds output x_begin): same sums as every other path. */
static void compute_single_outputs(const ct_stream *st, const run_plan *plans, int64_t m0,
                                   int64_t line, int64_t x_begin, int64_t x_end,
                                   float *out, int64_t out_chan_stride,
                                   const worker_scratch *ws) {
  const ct_layer *layer = st->layer;
  const ct_axis a = st->axis[st->run_axis];
  const float *bias = layer->bias ? layer->bias : st->zero_bias;
  const int64_t out_g = layer->out_per_group;
  for (int64_t x = x_begin; x < x_end; x++) {
    const int64_t q = x + a.p, m = q / a.s;
    const run_plan *plan = &plans[q % a.s];
    float *dst = out + (x - x_begin);
    for (int64_t g = ws->g_begin; g < ws->g_end; g++) {
      if (plan->k == 0) {
        for (int64_t i = 0; i < out_g; i++)
          dst[(g * out_g + i) * out_chan_stride] = bias[g * out_g + i];
        continue;
      }
      set_rows(st, plan, m0, line, m, g * layer->in_per_group, ws);
      ct_run_gemm gemm = {
          .m = out_g,
          .k = plan->k,
          .n = 1,
          .a = plan->a + g * ct_gemm_packed_size(out_g, plan->k),
          .bias = bias + g * out_g,
          .rows = ws->rows,
          .dst = dst + g * out_g * out_chan_stride,
          .dst_stride = out_chan_stride,
      };
      st->dsp->run_gemm(&gemm);
    }
  }
}

/* One run: the outputs along the run axis for fixed outer positions.
 * plans: the s_run plans of the outer phases; m0: the phase index on axis 0
 * (2d/3d); line: offset of the outer position on axis 1 (3d);
 * first_out/count: the outputs of the run (1d: the block's steps).
 * Stride-2 runs whose phases read the same inputs are computed in pairs
 * and written once, in place; the other outputs (and the one or two at the
 * ends a pair does not cover) phase by phase. */
static void compute_run(const ct_stream *st, const run_plan *plans, int64_t m0,
                        int64_t line, int64_t first_out, int64_t count, float *out,
                        int64_t out_chan_stride, const worker_scratch *ws) {
  const ct_layer *layer = st->layer;
  const ct_axis a = st->axis[st->run_axis];
  if (a.s == 2 && plans[0].pair_a && count > 0) {
    /* Output x is phase (x + p) % 2 at index (x + p) / 2. Pairs (phase 0
     * at m, phase 1 at m) cover outputs 2m - p and 2m - p + 1; shifted pairs
     * (phase 1 at m, phase 0 at m + 1) start one output later. Of the two,
     * the one whose pairs start on even addresses, so that non-temporal
     * stores can start cache lines. Shifted pairs load each input twice,
     * once per phase: only worth it for those stores, in tiles of 6 rows
     * with registers to spare. */
    const int64_t q_begin = first_out + a.p, q_end = first_out + count + a.p;
    const int64_t m_lo = (q_begin + 1) / 2;
    const bool shifted = st->stream_out && st->dsp->fast_shifted_pairs &&
                         layer->out_per_group >= 3 &&
                         (((uintptr_t)(out + (2 * m_lo - a.p - first_out))) & 7) != 0;
    const int64_t m_first = shifted ? q_begin / 2 : m_lo;
    const int64_t m_end = shifted ? (q_end - 1) / 2 : q_end / 2;
    if (m_end > m_first) {
      const int64_t x_lo = 2 * m_first - a.p + shifted, x_hi = 2 * m_end - a.p + shifted;
      compute_single_outputs(st, plans, m0, line, first_out, x_lo, out, out_chan_stride,
                             ws);
      const int64_t out_g = layer->out_per_group;
      for (int64_t g = ws->g_begin; g < ws->g_end; g++) {
        set_rows(st, &plans[0], m0, line, m_first, g * layer->in_per_group, ws);
        ct_run_gemm gemm = {
            .m = 2 * out_g,
            .k = plans[0].k,
            .n = m_end - m_first,
            .a = plans[0].pair_a + g * ct_gemm_packed_size(2 * out_g, plans[0].k),
            .bias = plans[0].pair_bias + 2 * g * out_g,
            .rows = ws->rows,
            .dst = out + (x_lo - first_out) + g * out_g * out_chan_stride,
            .dst_stride = out_chan_stride,
            .stream_out = st->stream_out,
            .pairs_shifted = shifted,
        };
        st->dsp->run_pairs(&gemm);
      }
      compute_single_outputs(st, plans, m0, line, x_hi, first_out + count,
                             out + (x_hi - first_out), out_chan_stride, ws);
      return;
    }
  }
  compute_run_phases(st, plans, m0, line, first_out, count, out, out_chan_stride, ws);
}

/* compute_run, one phase at a time: every residue into acc, then
 * interleaved into each channel's output. */
static void compute_run_phases(const ct_stream *st, const run_plan *plans, int64_t m0,
                               int64_t line, int64_t first_out, int64_t count, float *out,
                               int64_t out_chan_stride, const worker_scratch *ws) {
  if (count <= 0)
    return;
  const ct_layer *layer = st->layer;
  const ct_axis a = st->axis[st->run_axis];
  const int64_t cout = layer->params.out_channels;
  const float *bias = layer->bias ? layer->bias : st->zero_bias;
  float *acc = ws->acc;
  for (int64_t r = 0; r < a.s; r++) {
    int64_t mb, me;
    ct_phase_output_range(a, r, first_out, first_out + count, &mb, &me);
    ws->starts[r] = mb;
    const run_plan *plan = &plans[r];
    if (plan->k == 0 || me == mb)
      continue;
    /* Stride 1 along the run: the phase is the output itself, no copy. */
    const bool in_place = a.s == 1;
    float *dst = in_place ? out : acc + r * cout * st->acc_stride;
    const int64_t dst_stride = in_place ? out_chan_stride : st->acc_stride;
    for (int64_t g = ws->g_begin; g < ws->g_end; g++) {
      const int64_t c0 = g * layer->out_per_group, ci0 = g * layer->in_per_group;
      set_rows(st, plan, m0, line, mb, ci0, ws);
      ct_run_gemm gemm = {
          .m = layer->out_per_group,
          .k = plan->k,
          .n = me - mb,
          .a = plan->a + g * ct_gemm_packed_size(layer->out_per_group, plan->k),
          .bias = bias + c0,
          .rows = ws->rows,
          .dst = dst + c0 * dst_stride,
          .dst_stride = dst_stride,
          .pack = ws->pack,
          .stream_out = in_place && st->stream_out,
      };
      st->dsp->run_gemm(&gemm);
    }
  }
  if (a.s == 1 && plans[0].k > 0)
    return;
  for (int64_t co = ws->g_begin * layer->out_per_group;
       co < ws->g_end * layer->out_per_group; co++) {
    /* Residues no tap reaches read a run of bias. */
    for (int64_t r = 0; r < a.s; r++)
      ws->phases[r] = plans[r].k ? acc + (r * cout + co) * st->acc_stride
                                 : st->bias_runs + co * st->acc_stride;
    ct_interleave il = {.n = count,
                        .s = a.s,
                        .first = first_out + a.p,
                        .phases = ws->phases,
                        .phase_start = ws->starts,
                        .out = out + co * out_chan_stride};
    st->dsp->interleave(&il);
  }
}

/* Steps j and j + 1 through step_pairs (see there), the part [part_begin,
 * part_end) of each: columns in 2d, lines in 3d. */
static void compute_step_pair(const ct_stream *st, int64_t j, int64_t part_begin,
                              int64_t part_end, float *out, int64_t out_chan_stride,
                              int64_t out_base, const worker_scratch *ws) {
  const ct_layer *layer = st->layer;
  const int rank = layer->params.rank;
  const ct_axis a1 = st->axis[1], ar = st->axis[st->run_axis];
  const ct_phase_table *ph = layer->phases;
  const int64_t m0 = (j + st->axis[0].p) / 2, out_g = layer->out_per_group;
  const int64_t n1 = st->n_outer[1];
  float *frames[2] = {out + (j - out_base) * st->out_frame,
                      out + (j + 1 - out_base) * st->out_frame};
  const float *bias = layer->bias ? layer->bias : st->zero_bias;
  const int64_t y_begin = rank == 3 ? part_begin : 0, y_end = rank == 3 ? part_end : 1;
  const int64_t x_begin = rank == 2 ? part_begin : 0,
                x_end = rank == 2 ? part_end : st->out_len[rank - 1];
  for (int64_t y = y_begin; y < y_end; y++) {
    int64_t o1 = 0, line = 0, line_out = 0;
    if (rank == 3) {
      const int64_t q1 = y + a1.p, r1 = q1 % a1.s, m1 = q1 / a1.s;
      line_out = y * st->out_len[2];
      o1 = -1;
      for (int64_t i = 0; i < ph[1].n_phases; i++)
        if (ph[1].phases[i].residue == r1)
          o1 = i;
      if (o1 < 0) { /* no tap reaches this line: bias only */
        for (int f = 0; f < 2; f++)
          for (int64_t co = 0; co < layer->params.out_channels; co++)
            for (int64_t x = 0; x < st->out_len[2]; x++)
              frames[f][co * out_chan_stride + line_out + x] = bias[co];
        continue;
      }
      line = (m1 + st->pad_before[1]) * st->padded_len[2];
    }
    const struct step_pair *sp = &st->step_pairs[o1];
    const run_plan *plan = &st->plans[st->step_pair_o0 * n1 + o1];
    int64_t mb, me;
    ct_phase_output_range(ar, 0, x_begin, x_end, &mb, &me);
    for (int64_t g = 0; g < layer->params.groups; g++) {
      set_rows(st, plan, m0, line, mb, g * layer->in_per_group, ws);
      for (int64_t row = 0; row < 2 * out_g; row++)
        ws->dst_rows[row] = frames[row / out_g] +
                            (g * out_g + row % out_g) * out_chan_stride + line_out +
                            x_begin;
      ct_run_gemm gemm = {
          .m = 2 * out_g,
          .k = plan->k,
          .n = me - mb,
          .a = sp->a + g * ct_gemm_packed_size(2 * out_g, plan->k),
          .bias = sp->bias + 2 * g * out_g,
          .rows = ws->rows,
          .dst_rows = ws->dst_rows,
          .pack = ws->pack,
          .stream_out = st->stream_out,
      };
      st->dsp->run_gemm(&gemm);
    }
  }
}

/* Outputs [jb, je) of the streamed axis, all channels; in 2d and 3d only
 * the part [part_begin, part_end) of each step: output columns in 2d, lines
 * in 3d. However the work is cut, every output is the same sum. */
/* Where the block of `len` steps that holds step j starts, blocks being
 * counted from `origin`. */
static int64_t block_start(int64_t j, int64_t origin, int64_t len) {
  return origin + ct_floor_div(j - origin, len) * len;
}

/* The origin of compute blocks, tasks and sink blocks: 1d, the first output
 * of the computation in progress (block_anchor); 2d/3d, step 0 shifted back
 * by `phase` (so that step pairs stay whole). */
static int64_t block_origin(const ct_stream *st, int64_t phase) {
  return st->layer->params.rank == 1 ? st->block_anchor : -phase;
}

static void compute_rows(const ct_stream *st, int64_t jb, int64_t je, int64_t part_begin,
                         int64_t part_end, float *out, int64_t out_chan_stride,
                         int64_t out_base, const worker_scratch *acc) {
  const int rank = st->layer->params.rank;
  const int64_t s_run = st->axis[st->run_axis].s;
  if (rank == 1) {
    /* Blocks on multiples of block_rows (a multiple of the stride times the
     * vector tile) from the anchor: runs of whole tiles. */
    for (int64_t j = jb; j < je;) {
      const int64_t aligned =
          block_start(j, st->block_anchor, st->block_rows) + st->block_rows;
      const int64_t stop = aligned < je ? aligned : je;
      compute_run(st, st->plans, 0, 0, j, stop - j, out + (j - out_base), out_chan_stride,
                  acc);
      j = stop;
    }
    return;
  }
  const ct_axis a0 = st->axis[0], a1 = st->axis[1];
  const ct_phase_table *ph = st->layer->phases;
  const int64_t cout = st->layer->params.out_channels;
  const float *bias = st->layer->bias ? st->layer->bias : st->zero_bias;
  for (int64_t j = jb; j < je; j++) {
    if (st->step_pairs && j + 1 < je && (j + a0.p) % 2 == 0) {
      compute_step_pair(st, j, part_begin, part_end, out, out_chan_stride, out_base, acc);
      j++;
      continue;
    }
    float *row = out + (j - out_base) * st->out_frame;
    const int64_t q0 = j + a0.p, r0 = q0 % a0.s, m0 = q0 / a0.s;
    int64_t o0 = -1;
    for (int64_t i = 0; i < ph[0].n_phases; i++)
      if (ph[0].phases[i].residue == r0)
        o0 = i;
    if (o0 < 0) { /* no tap reaches this row: bias only */
      const int64_t line = rank == 3 ? st->out_len[2] : 1;
      for (int64_t co = 0; co < cout; co++)
        for (int64_t x = part_begin * line; x < part_end * line; x++)
          row[co * out_chan_stride + x] = bias[co];
      continue;
    }
    if (rank == 2) {
      compute_run(st, st->plans + o0 * s_run, m0, 0, part_begin, part_end - part_begin,
                  row + part_begin, out_chan_stride, acc);
      continue;
    }
    for (int64_t y = part_begin; y < part_end; y++) {
      const int64_t q1 = y + a1.p, r1 = q1 % a1.s, m1 = q1 / a1.s;
      float *line = row + y * st->out_len[2];
      int64_t o1 = -1;
      for (int64_t i = 0; i < ph[1].n_phases; i++)
        if (ph[1].phases[i].residue == r1)
          o1 = i;
      if (o1 < 0) {
        for (int64_t co = 0; co < cout; co++)
          for (int64_t x = 0; x < st->out_len[2]; x++)
            line[co * out_chan_stride + x] = bias[co];
        continue;
      }
      compute_run(st, st->plans + (o0 * st->n_outer[1] + o1) * s_run, m0,
                  (m1 + st->pad_before[1]) * st->padded_len[2], 0, st->run_len, line,
                  out_chan_stride, acc);
    }
  }
}

/* Outputs [jb, je) in the thread's sink block, handed to the sink block by
 * block (see ct_stream_set_sink). */
static void compute_to_sink(const ct_stream *st, int64_t jb, int64_t je,
                            const worker_scratch *ws) {
  const int64_t steps = st->sink_steps, phase = st->sink_phase;
  const int64_t chan_stride = steps * st->out_frame;
  const int64_t part_total = st->layer->params.rank == 1 ? 1 : st->out_len[1];
  for (int64_t j = jb; j < je;) {
    int64_t stop = block_start(j, block_origin(st, phase), steps) + steps;
    if (stop > je)
      stop = je;
    compute_rows(st, j, stop, 0, part_total, ws->sink_block, chan_stride, j, ws);
    st->sink(st->sink_ctx, j, stop - j, ws->sink_block, chan_stride);
    j = stop;
  }
}

/* The outputs of one push cut into tasks: ranges of steps, or when there
 * are few steps, parts of each step (see compute_rows). */
typedef struct {
  const ct_stream *st;
  int64_t j_begin, j_end;
  /* parts == 1: task t covers steps from aligned_begin + t * task_units * unit
   * (1d: whole vector tile units from the block anchor, like blocks). */
  int64_t unit, aligned_begin, task_units;
  int64_t parts, part_len, part_total;
  float *out;
  int64_t out_chan_stride, out_base;
} block_job;

static void run_block_task(void *ctx, int task, int worker) {
  const block_job *job = ctx;
  const worker_scratch *ws = &job->st->scratch[worker];
  if (job->parts > 1) { /* every step, one part of each */
    const int64_t pb = task * job->part_len;
    const int64_t pe =
        pb + job->part_len < job->part_total ? pb + job->part_len : job->part_total;
    if (pb < pe)
      compute_rows(job->st, job->j_begin, job->j_end, pb, pe, job->out,
                   job->out_chan_stride, job->out_base, ws);
    return;
  }
  const int64_t span = job->task_units * job->unit;
  int64_t jb = job->aligned_begin + task * span, je = jb + span;
  if (jb < job->j_begin)
    jb = job->j_begin;
  if (je > job->j_end)
    je = job->j_end;
  if (jb < je && job->st->sink)
    compute_to_sink(job->st, jb, je, ws);
  else if (jb < je)
    compute_rows(job->st, jb, je, 0, job->part_total, job->out, job->out_chan_stride,
                 job->out_base, ws);
}

static double out_bytes(const ct_stream *st, int64_t steps) {
  return (double)steps * (double)st->out_frame * (double)st->layer->params.out_channels *
         sizeof(float);
}

/* Whether the next rows output steps go out with non-temporal stores. */
static void choose_stores(ct_stream *st, int64_t rows) {
  st->stream_out =
      !st->sink && st->out_filled + out_bytes(st, rows) > st->stream_out_bytes;
}

/* Outputs up to j_end are written: counted, and into the fill in progress. */
static void outputs_done(ct_stream *st, int64_t j_end) {
  if (j_end <= st->n_out)
    return;
  st->out_filled += out_bytes(st, j_end - st->n_out);
  st->n_out = j_end;
}

/* Before a push or finish writing its first output at out: whether it goes
 * on filling the array the last one wrote. */
static void track_fill(ct_stream *st, const float *out, int64_t out_chan_stride) {
  if (!out || out != st->out_next || out_chan_stride != st->out_next_stride)
    st->out_filled = 0;
}

/* p + n floats, where p + n may lie past the caller's array: only ever
 * prefetched, which never faults. */
static const float *floats_on(const float *p, int64_t n) {
  return (const float *)((uintptr_t)p + (uintptr_t)n * sizeof(float));
}

/* Before a push reading n_steps steps from in: whether it starts where the
 * last one ended (see in_ahead). */
static void track_input(ct_stream *st, const float *in, int64_t in_chan_stride,
                        int64_t n_steps) {
  int64_t floats;
  const float *end = in && n_steps >= 0 && ct_mul_i64(n_steps, st->push_frame, &floats)
                         ? floats_on(in, floats)
                         : NULL;
  st->in_ahead =
      in && in == st->in_next && in_chan_stride == st->in_next_stride ? end : NULL;
  st->in_next = end;
  st->in_next_stride = in_chan_stride;
}

/* After it wrote `steps` output steps from out. */
static void end_fill(ct_stream *st, float *out, int64_t out_chan_stride, int64_t steps) {
  st->out_next = out ? out + steps * st->out_frame : NULL;
  st->out_next_stride = out_chan_stride;
}

static void compute_outputs(ct_stream *st, int64_t j_end, float *out,
                            int64_t out_chan_stride, int64_t out_base) {
  if (j_end <= st->n_out)
    return;
  const int64_t rows = j_end - st->n_out;
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  choose_stores(st, rows);
  const int rank = st->layer->params.rank;
  const int64_t part_total = rank == 1 ? 1 : st->out_len[1];
  /* 1d: whole vector tile units; step pairs: tasks cut between pairs; 2d
   * with a sink: whole sink blocks. */
  const bool sink_units = st->sink && rank == 2;
  const int64_t unit = rank == 1        ? st->axis[0].s * 32
                       : sink_units     ? st->sink_steps
                       : st->step_pairs ? 2
                                        : 1;
  const int64_t unit_phase = sink_units       ? st->sink_phase
                             : st->step_pairs ? st->axis[0].p % 2
                                              : 0;
  st->block_anchor = st->n_out;
  block_job job = {.st = st,
                   .j_begin = st->n_out,
                   .j_end = j_end,
                   .unit = unit,
                   .aligned_begin =
                       block_start(st->n_out, block_origin(st, unit_phase), unit),
                   .parts = 1,
                   .part_len = part_total,
                   .part_total = part_total,
                   .out = out,
                   .out_chan_stride = out_chan_stride,
                   .out_base = out_base};
  const int64_t units = ct_ceil_div(j_end - job.aligned_begin, unit);
  int64_t tasks = 1;
  /* Frames split by columns or lines share only the input rows, so a
   * quarter of the work pays for the second thread (a 640-pixel RGB row
   * doubled; the two output rows of a tap-mode push, which the other
   * thread would otherwise wait out). */
  const double parallel_macs = rank >= 2 ? st->parallel_macs / 4 : st->parallel_macs;
  if (threads > 1 && (double)rows * st->macs_per_step >= parallel_macs) {
    /* A few tasks per thread balance uneven work; a small push gets one
     * task per thread, since each task costs a claim and cache traffic. */
    const int64_t want =
        (double)rows * st->macs_per_step >= 8 * st->parallel_macs ? 2 * threads : threads;
    if (units >= want || rank == 1 || st->sink) { /* a sink takes whole steps */
      job.task_units = ct_ceil_div(units, units < want ? units : want);
      tasks = ct_ceil_div(units, job.task_units);
    } else {
      /* Few steps: 2d steps split by columns (in units that keep every
       * phase in whole vector tiles), 3d steps by lines. */
      const int64_t part_unit = rank == 2 ? st->axis[1].s * 16 : 1;
      int64_t parts = want;
      const int64_t part_units = ct_ceil_div(part_total, part_unit);
      if (parts > part_units)
        parts = part_units;
      job.task_units = 1; /* one step per task when parts stays 1 */
      job.parts = parts;
      job.part_len = ct_ceil_div(ct_ceil_div(part_total, parts), part_unit) * part_unit;
      tasks = parts;
    }
  }
  if (tasks > 1)
    ct_pool_run(st->pool, (int)tasks, run_block_task, &job);
  else if (st->sink)
    compute_to_sink(st, st->n_out, j_end, &st->scratch[0]);
  else
    compute_rows(st, st->n_out, j_end, 0, part_total, out, out_chan_stride, out_base,
                 &st->scratch[0]);
  outputs_done(st, j_end);
}

static void free_scratch(worker_scratch *scratch, int n) {
  for (int i = 0; scratch && i < n; i++) {
    free(scratch[i].acc);
    free(scratch[i].phases);
    free(scratch[i].starts);
    free(scratch[i].rows);
    free(scratch[i].next_rows);
    free(scratch[i].dst_rows);
    free(scratch[i].pack);
    free(scratch[i].sink_block);
  }
  free(scratch);
}

/* Scratch of different threads never shares a cache line: a line written by
 * one thread and read by another in every inner loop costs more than the
 * work. */
static void *alloc_lines(size_t bytes) {
  const size_t line = 64;
  void *p = aligned_alloc(line, (bytes + line - 1) / line * line + line);
  return p;
}

static size_t sink_block_bytes(const ct_stream *st) {
  return (size_t)(st->sink_steps * st->out_frame * st->layer->params.out_channels) *
         sizeof(float);
}

static worker_scratch *new_scratch(const ct_stream *st, int n) {
  worker_scratch *scratch = alloc_lines((size_t)n * sizeof *scratch);
  if (scratch)
    memset(scratch, 0, (size_t)n * sizeof *scratch);
  const size_t s_run = (size_t)st->axis[st->run_axis].s;
  size_t acc_bytes;
  if (!ct_bytes_for(st->acc_count, sizeof(float), &acc_bytes)) {
    free(scratch);
    return NULL;
  }
  for (int i = 0; scratch && i < n; i++) {
    scratch[i].phases = alloc_lines(s_run * sizeof(float *));
    scratch[i].rows =
        alloc_lines((size_t)(st->max_k > 0 ? st->max_k : 1) * sizeof(float *));
    scratch[i].next_rows =
        alloc_lines((size_t)(st->max_k > 0 ? st->max_k : 1) * sizeof(float *));
    scratch[i].starts = alloc_lines(s_run * sizeof(int64_t));
    scratch[i].dst_rows =
        alloc_lines((size_t)(2 * st->layer->params.out_channels + st->hist_channels) *
                    sizeof(float *));
    scratch[i].acc = alloc_lines(acc_bytes);
    scratch[i].pack = alloc_lines(CT_GEMM_KC * CT_GEMM_NC * sizeof(float));
    scratch[i].g_begin = 0;
    scratch[i].g_end = st->layer->params.groups;
    if (st->sink && !(scratch[i].sink_block = alloc_lines(sink_block_bytes(st)))) {
      free_scratch(scratch, n);
      return NULL;
    }
    if (!scratch[i].acc || !scratch[i].pack || !scratch[i].phases || !scratch[i].starts ||
        !scratch[i].rows || !scratch[i].next_rows || !scratch[i].dst_rows) {
      free_scratch(scratch, n);
      return NULL;
    }
  }
  return scratch;
}

/* Gives the stream `pool` (NULL: none) with scratch for its threads. */
static ct_status attach_pool(ct_stream *stream, ct_pool *pool, bool owned) {
  const int n_threads = pool ? ct_pool_size(pool) : 1;
  worker_scratch *scratch = stream->scratch;
  if (n_threads != stream->n_scratch) {
    scratch = new_scratch(stream, n_threads);
    if (!scratch)
      return CT_ERR_NOMEM;
    free_scratch(stream->scratch, stream->n_scratch);
  }
  if (stream->owns_pool && stream->pool != pool)
    ct_pool_free(stream->pool);
  stream->pool = pool;
  stream->owns_pool = owned;
  stream->scratch = scratch;
  stream->n_scratch = n_threads;
  return CT_OK;
}

ct_status ct_stream_set_threads(ct_stream *stream, int n_threads) {
  if (n_threads < 1)
    return CT_ERR_INVALID;
  if (n_threads == stream->n_scratch && (stream->owns_pool || n_threads == 1))
    return CT_OK;
  ct_pool *pool = NULL;
  if (n_threads > 1 && !(pool = ct_pool_new(n_threads)))
    return CT_ERR_NOMEM;
  ct_status status = attach_pool(stream, pool, true);
  if (status != CT_OK)
    ct_pool_free(pool);
  return status;
}

ct_status ct_stream_use_pool(ct_stream *stream, ct_pool *pool) {
  return attach_pool(stream, pool, false);
}

void ct_stream_set_parallel_threshold(ct_stream *stream, double macs) {
  stream->parallel_macs = macs;
}

void ct_stream_set_stream_out_threshold(ct_stream *stream, double bytes) {
  stream->stream_out_bytes = bytes;
}

/* Blocks of about this many floats per sink call: an L2 cache holds them
 * with room for the caller's conversion. */
enum { SINK_BLOCK_FLOATS = 1 << 15 };

bool ct_stream_streamed_out(const ct_stream *stream) {
  return stream->stream_out;
}

ct_status ct_stream_set_sink(ct_stream *stream, ct_stream_sink sink, void *ctx) {
  const int rank = stream->layer->params.rank;
  if (rank > 2)
    return CT_ERR_INVALID;
  if (sink && !stream->sink_steps) {
    /* 1d: compute blocks (compute_rows' boundaries); 2d: a few rows, in
     * step pairs when the layer has them. */
    int64_t steps = stream->block_rows, phase = 0;
    if (rank == 2) {
      const int64_t unit = stream->step_pairs ? 2 : 1;
      const int64_t per_step = stream->out_frame * stream->layer->params.out_channels;
      steps = SINK_BLOCK_FLOATS / per_step / unit * unit;
      if (steps < unit)
        steps = unit;
      phase = stream->step_pairs ? stream->axis[0].p % 2 : 0;
    }
    if ((double)steps * (double)stream->out_frame *
            (double)stream->layer->params.out_channels * sizeof(float) >
        CT_STREAM_MAX_BYTES)
      return CT_ERR_OVERFLOW;
    stream->sink_steps = steps;
    stream->sink_phase = phase;
  }
  for (int i = 0; sink && i < stream->n_scratch; i++)
    if (!stream->scratch[i].sink_block &&
        !(stream->scratch[i].sink_block = alloc_lines(sink_block_bytes(stream))))
      return CT_ERR_NOMEM;
  stream->sink = sink;
  stream->sink_ctx = ctx;
  return CT_OK;
}

int ct_stream_threads(const ct_stream *stream) {
  return stream->n_scratch;
}

/* Drops history rows no output still needs. */
static void drop_unneeded_rows(ct_stream *st) {
  int64_t keep_from = first_needed_row(st, st->n_out);
  if (keep_from <= st->hist_first)
    return;
  int64_t drop = keep_from - st->hist_first;
  if (drop > st->hist_rows)
    drop = st->hist_rows;
  if (!st->ring) {
    const int64_t channels = st->hist_channels;
    for (int64_t c = 0; c < channels; c++) {
      float *base = st->hist + c * st->hist_cap * st->padded_frame;
      memmove(base, base + drop * st->padded_frame,
              (size_t)((st->hist_rows - drop) * st->padded_frame) * sizeof(float));
    }
  }
  st->hist_first += drop;
  st->hist_rows -= drop;
}

/* Makes room for at least one more row, growing the history only if the
 * layer's window was underestimated. */
static ct_status grow_history(ct_stream *st, int64_t new_cap);

static ct_status make_room(ct_stream *st) {
  if (st->hist_rows < st->hist_cap)
    return CT_OK;
  drop_unneeded_rows(st);
  if (st->hist_rows < st->hist_cap)
    return CT_OK;
  return grow_history(st, st->hist_cap * 2);
}

/* A larger history (the layer's window was underestimated, or a caller's
 * rows are kept in one piece), the rows it holds copied over. */
static ct_status grow_history(ct_stream *st, int64_t new_cap) {
  const int64_t channels = st->hist_channels;
  ct_stream grown = *st;
  int64_t count;
  grown.hist_cap = new_cap;
  if (!ct_mul_i64(grown.hist_cap, st->padded_frame, &count) ||
      !ct_mul_i64(count, channels, &count))
    return CT_ERR_OVERFLOW;
  ct_status status = alloc_floats(&grown.hist, count);
  if (status != CT_OK)
    return status;
  for (int64_t u = st->hist_first; u < st->hist_first + st->hist_rows; u++)
    for (int64_t c = 0; c < channels; c++)
      memcpy(stored_row(&grown, u, c), stored_row(st, u, c),
             (size_t)st->padded_frame * sizeof(float));
  free(st->hist);
  st->hist = grown.hist;
  st->hist_cap = grown.hist_cap;
  return CT_OK;
}

static void run_on_pool(const ct_stream *st, int n_tasks, ct_pool_task fn, void *ctx) {
  if (st->pool)
    ct_pool_run(st->pool, n_tasks, fn, ctx);
  else
    for (int t = 0; t < n_tasks; t++)
      fn(ctx, t, 0);
}

/* Asks for channels [c_begin, c_end) of the next push's first n steps,
 * where the stream guesses it starts (see in_ahead), to be fetched into
 * L2. A 10 ms push of stereo audio from memory otherwise waits for its cold
 * input first thing (K1 on one thread: 2.4-2.8 ms streamed, 1.7-2.0 with
 * the input in cache, 1.7 one-shot). Larger pushes are left to the
 * hardware: a burst of prefetches that big would stall the computation. */
enum { PREFETCH_AHEAD_FLOATS = 1 << 13 };
static void prefetch_ahead(const ct_stream *st, int64_t c_begin, int64_t c_end,
                           int64_t n) {
  const int64_t frame = st->push_frame, len = n * frame;
  if (!st->in_ahead || (double)len * (double)(c_end - c_begin) > PREFETCH_AHEAD_FLOATS)
    return;
  for (int64_t c = c_begin; c < c_end; c++) {
    const float *from = floats_on(st->in_ahead, c * st->in_next_stride);
    for (int64_t i = 0; i < len; i += 64 / sizeof(float))
      __builtin_prefetch(floats_on(from, i), 0, 2);
  }
}

/* 1d history appends: channel c's run of len floats in `pieces` parts. */
typedef struct {
  const ct_stream *st;
  const float *in;
  int64_t in_chan_stride, first_row, len, pieces;
} channel_copy_job;

static void run_channel_copy(void *ctx, int task, int worker) {
  (void)worker;
  const channel_copy_job *job = ctx;
  const int64_t c = task / job->pieces, piece = task % job->pieces;
  const int64_t part = ct_ceil_div(job->len, job->pieces);
  const int64_t begin = piece * part,
                end = begin + part < job->len ? begin + part : job->len;
  if (begin < end)
    memcpy(stored_row(job->st, job->first_row, c) + begin,
           job->in + c * job->in_chan_stride + begin,
           (size_t)(end - begin) * sizeof(float));
}

/* Tap mode: P of count input rows into the history, cut into tasks of
 * (row, columns) piece_len wide, or, for one row on several threads, into
 * spans of span_len (see tap_span_task). */
typedef struct {
  const ct_stream *st;
  const float *in;
  int64_t in_chan_stride, first_row, pieces, piece_len;
  int64_t spans, span_len;
  /* Rows worth prefetching from in on: the rest of the push, and the next
   * one's where the stream guesses it follows (in_ahead). */
  int64_t available;
} tap_job;

/* P of row r, columns [x0, x1), while columns [next_x0, next_x0 + next_n)
 * of row next_r are fetched (none if next_n is 0 or that row is not
 * available). */
static void tap_columns(const tap_job *job, const worker_scratch *ws, int64_t r,
                        int64_t x0, int64_t x1, int64_t next_r, int64_t next_x0,
                        int64_t next_n) {
  const ct_stream *st = job->st;
  const int64_t cin = st->layer->params.in_channels, taps = st->hist_channels;
  for (int64_t ci = 0; ci < cin; ci++)
    ws->rows[ci] = job->in + ci * job->in_chan_stride + r * st->in_frame + x0;
  const bool prefetch = next_r < job->available && next_n > 0;
  for (int64_t ci = 0; prefetch && ci < cin; ci++)
    ws->next_rows[ci] =
        floats_on(job->in, ci * job->in_chan_stride + next_r * st->in_frame + next_x0);
  for (int64_t t = 0; t < taps; t++)
    ws->dst_rows[t] = stored_row(st, job->first_row + r, t) + st->pad_before[1] + x0;
  ct_run_gemm gemm = {
      .m = taps,
      .k = cin,
      .n = x1 - x0,
      .a = st->tap_a,
      .bias = st->tap_zero,
      .rows = ws->rows,
      .dst_rows = ws->dst_rows,
      .pack = ws->pack,
      .next_rows = prefetch ? ws->next_rows : NULL,
      .next_n = next_n,
  };
  st->dsp->run_gemm(&gemm);
}

static int64_t min_i64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

static void run_tap_task(void *ctx, int task, int worker) {
  const tap_job *job = ctx;
  const ct_stream *st = job->st;
  const int64_t width = st->in_len[1];
  const int64_t r = task / job->pieces, x0 = task % job->pieces * job->piece_len;
  /* This row came from memory while the GEMM waited. The piece this thread
   * most likely takes next (threads take tasks in turn; past the fill, the
   * next fill's rows) is fetched while this one is packed: 26.3-26.6 ->
   * 24.2-24.4 ms on one thread, 13.6-15.9 -> 12.4-12.5 on two (K7
   * one-shot). */
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  const int64_t next = task + threads, next_x0 = next % job->pieces * job->piece_len;
  if (x0 < width)
    tap_columns(job, &st->scratch[worker], r, x0, min_i64(x0 + job->piece_len, width),
                next / job->pieces, next_x0,
                next_x0 < width ? min_i64(job->piece_len, width - next_x0) : 0);
}

/* Takes the chunk at the front (or back) of a span's range; -1 if none. */
static int64_t claim_chunk(_Atomic uint64_t *range, bool from_back) {
  uint64_t w = atomic_load_explicit(range, memory_order_relaxed);
  for (;;) {
    const uint64_t front = w & 0xffffffffu, back = w >> 32;
    if (front >= back)
      return -1;
    const uint64_t next = from_back ? (back - 1) << 32 | front : w + 1;
    if (atomic_compare_exchange_weak_explicit(range, &w, next, memory_order_relaxed,
                                              memory_order_relaxed))
      return (int64_t)(from_back ? back - 1 : front);
  }
}

/* One row on several threads (a stream's push). Task t owns span t of the
 * row and computes it chunk by chunk from the front; done with its own, it
 * takes chunks from the back of the other spans. Fixed halves left a
 * thread idle 5-25% of each K7 push, waiting for the other; chunks taken
 * this way balance to a chunk while each thread mostly reads the columns
 * it fetched. Each chunk fetches the same columns of the next row (the
 * next push's, when the stream guesses where it is), or else the owner's
 * next chunk. */
static void tap_span_task(void *ctx, int task, int worker) {
  const tap_job *job = ctx;
  const ct_stream *st = job->st;
  const int64_t width = st->in_len[1];
  for (int64_t i = 0; i < job->spans; i++) {
    const int64_t span = (task + i) % job->spans;
    const int64_t span_end = min_i64((span + 1) * job->span_len, width);
    int64_t c;
    while ((c = claim_chunk(&st->scratch[span].tap_chunks, i > 0)) >= 0) {
      const int64_t x0 = span * job->span_len + c * TAP_CHUNK_COLUMNS;
      const int64_t x1 = min_i64(x0 + TAP_CHUNK_COLUMNS, span_end);
      const bool next_row = job->available > 1;
      const int64_t next_x0 = next_row ? x0 : x1;
      const int64_t next_n = next_row ? x1 - x0
                             : i == 0 ? min_i64(TAP_CHUNK_COLUMNS, span_end - x1)
                                      : 0;
      tap_columns(job, &st->scratch[worker], 0, x0, x1, next_row ? 1 : 0, next_x0,
                  next_n);
    }
  }
}

static void tap_rows(ct_stream *st, const float *in, int64_t in_chan_stride,
                     int64_t count, int64_t available) {
  const int64_t width = st->in_len[1];
  tap_job job = {.st = st,
                 .in = in,
                 .in_chan_stride = in_chan_stride,
                 .first_row = st->hist_first + st->hist_rows,
                 .available = available,
                 .pieces = 1,
                 .piece_len = width};
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  const double macs = (double)count * (double)st->in_frame *
                      (double)st->layer->params.in_channels * (double)st->hist_channels;
  const bool parallel = threads > 1 && macs >= st->parallel_macs;
  /* (Chunk numbers are kept in 32 bits.) */
  if (parallel && count == 1 && width >= 2 * threads * TAP_CHUNK_COLUMNS &&
      width / TAP_CHUNK_COLUMNS < UINT32_MAX) {
    job.spans = threads;
    job.span_len =
        ct_ceil_div(ct_ceil_div(width, threads), TAP_CHUNK_COLUMNS) * TAP_CHUNK_COLUMNS;
    for (int64_t i = 0; i < job.spans; i++) {
      const int64_t columns = min_i64(job.span_len, width - i * job.span_len);
      const uint64_t chunks =
          columns > 0 ? (uint64_t)ct_ceil_div(columns, TAP_CHUNK_COLUMNS) : 0;
      atomic_store_explicit(&st->scratch[i].tap_chunks, chunks << 32,
                            memory_order_relaxed);
    }
    ct_pool_run(st->pool, threads, tap_span_task, &job);
    return;
  }
  if (parallel && count < 2 * threads) {
    /* Few rows: split each into column pieces of whole tiles. */
    job.pieces = ct_ceil_div(2 * threads, count);
    job.piece_len = ct_ceil_div(ct_ceil_div(width, job.pieces), 16) * 16;
    job.pieces = ct_ceil_div(width, job.piece_len);
  }
  const int64_t tasks = count * job.pieces;
  if (parallel && tasks > 1)
    ct_pool_run(st->pool, (int)tasks, run_tap_task, &job);
  else
    for (int64_t t = 0; t < tasks; t++)
      run_tap_task(&job, (int)t, 0);
}

/* 2d/3d: count rows of src (channel c of row r at src + c * src_chan_stride
 * + r * in_frame) into the ring from padded row first_row on, lines placed
 * inside the zero borders. One task per (row, channel), or per piece of one
 * when a few large frames without borders are copied. */
typedef struct {
  const ct_stream *st;
  const float *src;
  int64_t src_chan_stride, first_row, pieces, piece_len;
} ring_copy_job;

static void run_ring_copy(void *ctx, int task, int worker) {
  (void)worker;
  const ring_copy_job *job = ctx;
  const ct_stream *st = job->st;
  const int64_t channels = st->layer->params.in_channels;
  const int64_t rc = task / job->pieces, piece = task % job->pieces;
  const int64_t r = rc / channels, c = rc % channels;
  const float *src = job->src + c * job->src_chan_stride + r * st->push_frame;
  float *dst = stored_row(st, job->first_row + r, c);
  if (st->padded_frame == st->push_frame) { /* the caller's frames have borders */
    const int64_t begin = piece * job->piece_len;
    const int64_t end = begin + job->piece_len < st->padded_frame ? begin + job->piece_len
                                                                  : st->padded_frame;
    if (begin < end)
      memcpy(dst + begin, src + begin, (size_t)(end - begin) * sizeof(float));
    return;
  }
  /* A frame is lines along the last axis: one line of W in 2d, H lines in 3d. */
  const bool three_d = st->layer->params.rank == 3;
  const int64_t lines = three_d ? st->in_len[1] : 1;
  const int64_t line_len = three_d ? st->in_len[2] : st->in_len[1];
  const int64_t line_step = three_d ? st->padded_len[2] : 0;
  const int64_t line_start =
      three_d ? st->pad_before[1] * st->padded_len[2] + st->pad_before[2]
              : st->pad_before[1];
  for (int64_t y = 0; y < lines; y++)
    memcpy(dst + line_start + y * line_step, src + y * line_len,
           (size_t)line_len * sizeof(float));
}

static void copy_into_ring(ct_stream *st, const float *src, int64_t src_chan_stride,
                           int64_t first_row, int64_t count) {
  const int64_t copies = count * st->layer->params.in_channels;
  ring_copy_job job = {.st = st,
                       .src = src,
                       .src_chan_stride = src_chan_stride,
                       .first_row = first_row,
                       .pieces = 1,
                       .piece_len = st->push_frame};
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  /* Frames of video are megabytes: a copy that big goes faster on every
   * core. */
  const bool parallel = threads > 1 && (double)copies * st->in_frame >= (1 << 16);
  if (parallel && st->padded_frame == st->push_frame && copies < 2 * threads) {
    job.pieces = ct_ceil_div(2 * threads, copies);
    job.piece_len = ct_ceil_div(st->push_frame, job.pieces);
  }
  const int64_t tasks = copies * job.pieces;
  if (parallel && tasks > 1)
    run_on_pool(st, (int)tasks, run_ring_copy, &job);
  else
    for (int64_t t = 0; t < tasks; t++)
      run_ring_copy(&job, (int)t, 0);
}

/* Appends count input rows (channel-planar, in_chan_stride apart, of
 * `available` rows worth prefetching from in on) to the history: 2d/3d rows
 * (1d pushes go through push_1d_direct). */
static void copy_rows(ct_stream *st, const float *in, int64_t in_chan_stride,
                      int64_t count, int64_t available) {
  if (st->tap_mode)
    tap_rows(st, in, in_chan_stride, count, available);
  else
    copy_into_ring(st, in, in_chan_stride, st->hist_first + st->hist_rows, count);
  st->hist_rows += count;
}

/* Appends rows [from, end) of src (whose first row is padded row src_first)
 * to the ring, which ends at `from` or is empty. */
static ct_status keep_rows(ct_stream *st, const float *src, int64_t src_chan_stride,
                           int64_t src_first, int64_t from, int64_t end) {
  if (st->hist_rows == 0) /* nothing older is needed: the window moves on */
    st->hist_first = from < end ? from : end;
  /* Reserve the rows first (room may move or grow the ring), then copy. */
  for (int64_t u = from; u < end; u++) {
    ct_status status = make_room(st);
    if (status != CT_OK)
      return status;
    st->hist_rows++;
  }
  if (from < end)
    copy_into_ring(st, src + (from - src_first) * st->push_frame, src_chan_stride, from,
                   end - from);
  return CT_OK;
}

/* The retained previous input is let go: what is still needed is copied. */
static ct_status release_prev(ct_stream *st) {
  if (st->prev_end <= st->prev_first)
    return CT_OK;
  drop_unneeded_rows(st);
  int64_t from = first_needed_row(st, st->n_out);
  if (from < st->prev_first)
    from = st->prev_first;
  const int64_t prev_first = st->prev_first, prev_end = st->prev_end;
  st->prev_first = st->prev_end = 0;
  return keep_rows(st, st->prev_in, st->prev_chan_stride, prev_first, from, prev_end);
}

/* 2d/3d frames without borders: the push's rows are read in place, and only
 * those later outputs still need are copied into the ring afterwards (or,
 * retained, read in place again by the next push). */
static ct_status push_in_place(ct_stream *st, const float *in, int64_t in_chan_stride,
                               int64_t n_steps, float *out, int64_t out_chan_stride,
                               int64_t out_base) {
  st->direct_in = in;
  st->direct_chan_stride = in_chan_stride;
  st->direct_first =
      st->prev_end > st->prev_first ? st->prev_end : st->hist_first + st->hist_rows;
  st->direct_end = st->direct_first + n_steps;
  st->n_in += n_steps;
  compute_outputs(st, ct_stream_emitted(&st->layer->params, st->n_in), out,
                  out_chan_stride, out_base);
  const int64_t direct_first = st->direct_first, direct_end = st->direct_end;
  st->direct_first = st->direct_end = 0;
  ct_status status = release_prev(st);
  if (status != CT_OK)
    return status;
  drop_unneeded_rows(st);
  int64_t from = first_needed_row(st, st->n_out);
  if (from < direct_first)
    from = direct_first;
  if (!st->retain_input)
    return keep_rows(st, in, in_chan_stride, direct_first, from, direct_end);
  if (st->hist_rows == 0)
    st->hist_first = from < direct_end ? from : direct_end;
  st->prev_first = st->hist_first + st->hist_rows;
  st->prev_end = direct_end;
  st->prev_in = in + (st->prev_first - direct_first) * st->push_frame;
  st->prev_chan_stride = in_chan_stride;
  return CT_OK;
}

void ct_stream_retain_input(ct_stream *stream, bool retain) {
  if (!retain)
    release_prev(stream);
  stream->retain_wanted = retain;
  stream->retain_input = retain && stream->direct_ok;
}

ct_status ct_stream_take_padded_frames(ct_stream *stream, bool padded) {
  if (!stream->ring || stream->tap_mode || stream->n_in > 0)
    return CT_ERR_INVALID;
  if (stream->padded_frame == stream->in_frame)
    return CT_OK; /* no borders: both layouts are the same */
  stream->push_frame = padded ? stream->padded_frame : stream->in_frame;
  stream->direct_ok = padded;
  stream->retain_input = padded && stream->retain_wanted;
  return CT_OK;
}

void ct_stream_pushed_frame_layout(const ct_stream *stream, int64_t *shape,
                                   int64_t *offset) {
  const bool padded = stream->push_frame != stream->in_frame;
  for (int a = 1; a < stream->layer->params.rank; a++) {
    shape[a - 1] = padded ? stream->padded_len[a] : stream->in_len[a];
    offset[a - 1] = padded ? stream->pad_before[a] : 0;
  }
}

/* A small 1d push of a grouped layer (a stereo upsampler: one group per
 * channel), one task per range of groups: each thread appends its own
 * channels to the history and computes its own outputs, so the threads
 * share no data. Splitting such a push in time instead costs more than it
 * saves: both threads then read the rows the caller just copied. */
typedef struct {
  ct_stream *st;
  const float *in;
  int64_t in_chan_stride, first_row, count, j_end;
  float *out;
  int64_t out_chan_stride, out_base;
  int tasks;
} group_job;

static void run_group_task(void *ctx, int task, int worker) {
  const group_job *job = ctx;
  const ct_stream *st = job->st;
  const ct_layer *layer = st->layer;
  worker_scratch *ws = &st->scratch[worker];
  const int64_t groups = layer->params.groups;
  ws->g_begin = groups * task / job->tasks;
  ws->g_end = groups * (task + 1) / job->tasks;
  for (int64_t c = ws->g_begin * layer->in_per_group; c < ws->g_end * layer->in_per_group;
       c++)
    memcpy(stored_row(st, job->first_row, c), job->in + c * job->in_chan_stride,
           (size_t)job->count * sizeof(float));
  prefetch_ahead(st, ws->g_begin * layer->in_per_group, ws->g_end * layer->in_per_group,
                 job->count);
  compute_rows(st, st->n_out, job->j_end, 0, 1, job->out, job->out_chan_stride,
               job->out_base, ws);
  ws->g_begin = 0;
  ws->g_end = groups;
}

static bool push_by_groups(ct_stream *st, const float *in, int64_t in_chan_stride,
                           int64_t n_steps, float *out, int64_t out_chan_stride,
                           int64_t out_base) {
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  const int64_t groups = st->layer->params.groups;
  if (st->layer->params.rank != 1 || threads < 2 || groups < threads || st->tap_mode ||
      st->sink)
    return false;
  const int64_t j_end = ct_stream_emitted(&st->layer->params, st->n_in + n_steps);
  const double macs = (double)(j_end - st->n_out) * st->macs_per_step;
  if (st->parallel_macs <= 0) { /* tests force threads: both splits, in turn */
    if (st->n_in % 2)
      return false;
  } else if (macs < st->parallel_macs / 8 || macs >= 8 * st->parallel_macs) {
    return false;
  }
  if (st->hist_cap - st->hist_rows < n_steps)
    drop_unneeded_rows(st);
  if (st->hist_cap - st->hist_rows < n_steps)
    return false;
  group_job job = {.st = st,
                   .in = in,
                   .in_chan_stride = in_chan_stride,
                   .first_row = st->hist_first + st->hist_rows,
                   .count = n_steps,
                   .j_end = j_end,
                   .out = out,
                   .out_chan_stride = out_chan_stride,
                   .out_base = out_base,
                   .tasks = threads};
  st->hist_rows += n_steps;
  st->n_in += n_steps;
  choose_stores(st, j_end - st->n_out);
  st->block_anchor = st->n_out;
  ct_pool_run(st->pool, threads, run_group_task, &job);
  outputs_done(st, j_end);
  return true;
}

/* 1d: appends count rows of src (channel c at src + c * src_chan_stride)
 * to the history. */
static ct_status append_1d(ct_stream *st, const float *src, int64_t src_chan_stride,
                           int64_t count) {
  if (count <= 0)
    return CT_OK;
  if (st->hist_cap - st->hist_rows < count)
    drop_unneeded_rows(st);
  if (st->hist_cap - st->hist_rows < count) {
    int64_t cap = st->hist_cap * 2;
    if (cap < st->hist_rows + count)
      cap = st->hist_rows + count;
    ct_status status = grow_history(st, cap);
    if (status != CT_OK)
      return status;
  }
  const int64_t channels = st->layer->params.in_channels;
  channel_copy_job job = {.st = st,
                          .in = src,
                          .in_chan_stride = src_chan_stride,
                          .first_row = st->hist_first + st->hist_rows,
                          .len = count,
                          .pieces = 1};
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  if (threads > 1 && (double)count * channels >= (1 << 16)) {
    job.pieces = ct_ceil_div(2 * threads, channels);
    run_on_pool(st, (int)(channels * job.pieces), run_channel_copy, &job);
  } else {
    for (int c = 0; c < channels; c++)
      run_channel_copy(&job, c, 0);
  }
  st->hist_rows += count;
  return CT_OK;
}

/* 1d: the outputs whose inputs all belong to this push read them in place;
 * only the first few (which also read the history) and the rows later
 * outputs need are copied into the history. */
static ct_status push_1d_direct(ct_stream *st, const float *in, int64_t in_chan_stride,
                                int64_t n_steps, float *out, int64_t out_chan_stride,
                                int64_t out_base) {
  const int64_t first_new = st->hist_first + st->hist_rows, end_new = first_new + n_steps;
  st->n_in += n_steps;
  const int64_t j_end = ct_stream_emitted(&st->layer->params, st->n_in);
  /* The first output reading nothing older than this push. */
  int64_t lo = st->n_out, hi = j_end > st->n_out ? j_end : st->n_out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (first_needed_row(st, mid) >= first_new)
      hi = mid;
    else
      lo = mid + 1;
  }
  const int64_t j_split = lo;
  int64_t head = 0;
  if (j_split > st->n_out) {
    head = padded_row(st, ct_axis_last_input(st->axis[0], j_split - 1)) + 1 - first_new;
    head = head < 0 ? 0 : head > n_steps ? n_steps : head;
  }
  ct_status status = append_1d(st, in, in_chan_stride, head);
  if (status != CT_OK)
    return status;
  compute_outputs(st, j_split, out, out_chan_stride, out_base);
  st->direct1d = in;
  st->direct1d_first = first_new;
  st->direct1d_chan_stride = in_chan_stride;
  compute_outputs(st, j_end, out, out_chan_stride, out_base);
  st->direct1d = NULL;
  drop_unneeded_rows(st);
  int64_t from = first_needed_row(st, st->n_out);
  if (from < first_new + head)
    from = first_new + head;
  if (from > end_new)
    from = end_new;
  if (st->hist_rows == 0)
    st->hist_first = from;
  return append_1d(st, in + (from - first_new), in_chan_stride, end_new - from);
}

static ct_status push_steps(ct_stream *stream, const float *in, int64_t in_chan_stride,
                            int64_t n_steps, float *out, int64_t out_chan_stride,
                            int64_t *n_out) {
  *n_out = 0;
  if (n_steps < 0)
    return CT_ERR_INVALID;
  if (ct_stream_push_out_steps(stream, n_steps) < 0)
    return CT_ERR_OVERFLOW;
  const int64_t out_base = stream->n_out;
  if (n_steps == 0) /* the previous input need not outlive this push */
    return release_prev(stream);
  if (stream->direct_ok) {
    ct_status status = push_in_place(stream, in, in_chan_stride, n_steps, out,
                                     out_chan_stride, out_base);
    *n_out = stream->n_out - out_base;
    return status;
  }
  if (push_by_groups(stream, in, in_chan_stride, n_steps, out, out_chan_stride,
                     out_base)) {
    *n_out = stream->n_out - out_base;
    return CT_OK;
  }
  if (!stream->ring && !stream->tap_mode) {
    /* A short push is cheaper copied whole: then its outputs are one run,
     * not a run from the history and another from the push. */
    ct_status status = CT_OK;
    if ((double)n_steps * (double)stream->layer->params.in_channels >= DIRECT_1D_FLOATS) {
      status = push_1d_direct(stream, in, in_chan_stride, n_steps, out, out_chan_stride,
                              out_base);
    } else if ((status = append_1d(stream, in, in_chan_stride, n_steps)) == CT_OK) {
      prefetch_ahead(stream, 0, stream->layer->params.in_channels, n_steps);
      stream->n_in += n_steps;
      compute_outputs(stream, ct_stream_emitted(&stream->layer->params, stream->n_in),
                      out, out_chan_stride, out_base);
    }
    *n_out = stream->n_out - out_base;
    return status;
  }
  int64_t done = 0;
  while (done < n_steps) {
    ct_status status = make_room(stream);
    if (status != CT_OK)
      return status;
    int64_t count = stream->hist_cap - stream->hist_rows;
    if (count > n_steps - done)
      count = n_steps - done;
    if (count > stream->fill_rows)
      count = stream->fill_rows;
    copy_rows(stream, in + done * stream->push_frame, in_chan_stride, count,
              n_steps - done + (stream->in_ahead ? n_steps : 0));
    done += count;
    stream->n_in += count;
    compute_outputs(stream, ct_stream_emitted(&stream->layer->params, stream->n_in), out,
                    out_chan_stride, out_base);
  }
  *n_out = stream->n_out - out_base;
  return CT_OK;
}

ct_status ct_stream_push(ct_stream *stream, const float *in, int64_t in_chan_stride,
                         int64_t n_steps, float *out, int64_t out_chan_stride,
                         int64_t *n_out) {
  track_fill(stream, out, out_chan_stride);
  track_input(stream, in, in_chan_stride, n_steps);
  ct_status status =
      push_steps(stream, in, in_chan_stride, n_steps, out, out_chan_stride, n_out);
  stream->in_ahead = NULL;
  end_fill(stream, out, out_chan_stride, *n_out);
  return status;
}

ct_status ct_stream_finish(ct_stream *stream, float *out, int64_t out_chan_stride,
                           int64_t *n_out) {
  *n_out = 0;
  track_fill(stream, out, out_chan_stride);
  const int64_t out_base = stream->n_out, target = final_length(stream);
  ct_status status = release_prev(stream);
  if (status != CT_OK) {
    ct_stream_reset(stream);
    return status;
  }
  if (target > stream->n_out) {
    const ct_axis a = stream->axis[0];
    const int64_t last_row = padded_row(stream, ct_axis_last_input(a, target - 1));
    for (;;) {
      /* Outputs whose last input row is present can be computed. */
      int64_t rows_end = stream->hist_first + stream->hist_rows;
      int64_t ready = (rows_end - stream->pad_before[0]) * a.s - a.p;
      compute_outputs(stream, ready < target ? ready : target, out, out_chan_stride,
                      out_base);
      if (stream->n_out >= target)
        break;
      status = make_room(stream);
      if (status != CT_OK)
        break;
      int64_t count = stream->hist_cap - stream->hist_rows;
      if (count > last_row + 1 - rows_end)
        count = last_row + 1 - rows_end;
      zero_rows(stream, count);
    }
  }
  *n_out = stream->n_out - out_base;
  ct_stream_reset(stream);
  end_fill(stream, out, out_chan_stride, *n_out);
  return status;
}

ct_status ct_forward(const ct_layer *layer, const int64_t *in_shape, const float *in,
                     float *out, char *msg, size_t msg_size) {
  const ct_params *params = &layer->params;
  int64_t out_shape[CT_MAX_RANK];
  ct_status status = ct_output_shape(params, in_shape, out_shape, msg, msg_size);
  if (status != CT_OK)
    return status;
  ct_stream *stream = ct_stream_new(layer, in_shape + 1, msg, msg_size);
  if (!stream)
    return CT_ERR_INVALID;
  const int64_t in_stride = in_shape[0] * stream->in_frame;
  const int64_t out_stride = out_shape[0] * stream->out_frame;
  int64_t pushed, finished;
  status = ct_stream_push(stream, in, in_stride, in_shape[0], out, out_stride, &pushed);
  if (status == CT_OK)
    status =
        ct_stream_finish(stream, out + pushed * stream->out_frame, out_stride, &finished);
  ct_stream_free(stream);
  if (status != CT_OK)
    set_msg(msg, msg_size, "forward failed: out of memory or size overflow");
  return status;
}
