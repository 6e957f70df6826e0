/* Each thread's scratch, the thread pool a stream runs on, and the output
 * sink: the per-thread state of a stream, sized for its layer's plans and
 * frame shape. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stream-private.h"
#include "stream-testing.h"

void cts_free_scratch(worker_scratch *scratch, int n) {
  for (int i = 0; scratch && i < n; i++) {
    free(scratch[i].acc);
    free(scratch[i].phases);
    free(scratch[i].starts);
    free(scratch[i].rows);
    free(scratch[i].next_rows);
    free(scratch[i].dst_rows);
    free(scratch[i].pack);
    free(scratch[i].sink_batch);
  }
  free(scratch);
}

/* Scratch of different threads never shares a cache line: a line written by
 * one thread and read by another in every inner loop costs more than the
 * work. */
void *cts_alloc_lines(size_t bytes) {
  const size_t line = 64;
  void *p = aligned_alloc(line, (bytes + line - 1) / line * line + line);
  return p;
}

static size_t sink_batch_bytes(const ct_stream *st) {
  return (size_t)(st->sink_batch_steps * st->out_frame * st->layer->params.out_channels) *
         sizeof(float);
}

static worker_scratch *new_scratch(const ct_stream *st, int n) {
  worker_scratch *scratch = cts_alloc_lines((size_t)n * sizeof *scratch);
  if (scratch)
    memset(scratch, 0, (size_t)n * sizeof *scratch);
  const size_t s_run = (size_t)st->axis[st->plan->run_axis].s;
  size_t acc_bytes;
  if (!ct_bytes_for(st->acc_count, sizeof(float), &acc_bytes)) {
    free(scratch);
    return NULL;
  }
  for (int i = 0; scratch && i < n; i++) {
    scratch[i].phases = cts_alloc_lines(s_run * sizeof(float *));
    scratch[i].rows = cts_alloc_lines(
        (size_t)(st->plan->max_k > 0 ? st->plan->max_k : 1) * sizeof(float *));
    scratch[i].next_rows = cts_alloc_lines(
        (size_t)(st->plan->max_k > 0 ? st->plan->max_k : 1) * sizeof(float *));
    scratch[i].starts = cts_alloc_lines(s_run * sizeof(int64_t));
    scratch[i].dst_rows =
        cts_alloc_lines((size_t)(2 * st->layer->params.out_channels + st->hist_channels) *
                        sizeof(float *));
    scratch[i].acc = cts_alloc_lines(acc_bytes);
    scratch[i].pack = cts_alloc_lines(CT_GEMM_KC * CT_GEMM_NC * sizeof(float));
    scratch[i].g_begin = 0;
    scratch[i].g_end = st->layer->params.groups;
    if (st->sink && !(scratch[i].sink_batch = cts_alloc_lines(sink_batch_bytes(st)))) {
      cts_free_scratch(scratch, n);
      return NULL;
    }
    if (!scratch[i].acc || !scratch[i].pack || !scratch[i].phases || !scratch[i].starts ||
        !scratch[i].rows || !scratch[i].next_rows || !scratch[i].dst_rows) {
      cts_free_scratch(scratch, n);
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
    cts_free_scratch(stream->scratch, stream->n_scratch);
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

void ct_stream_set_nontemporal_threshold(ct_stream *stream, double bytes) {
  stream->nontemporal_bytes = bytes;
}

void ct_stream_set_outputs_read_soon(ct_stream *stream, bool soon) {
  stream->nontemporal_bytes = soon ? HUGE_VAL : cts_nontemporal_default_bytes;
}

/* Blocks of about this many floats per sink call: an L2 cache holds them
 * with room for the caller's conversion. */
enum { SINK_BATCH_FLOATS = 1 << 15 };

bool ct_stream_used_nontemporal(const ct_stream *stream) {
  return stream->nontemporal;
}

ct_status ct_stream_set_sink(ct_stream *stream, ct_stream_sink sink, void *ctx) {
  const int rank = stream->layer->params.rank;
  if (rank > 2)
    return CT_ERR_INVALID;
  if (sink && !stream->sink_batch_steps) {
    /* 1d: compute blocks (compute_rows' boundaries); 2d: a few rows, in
     * step pairs when the layer has them. */
    int64_t steps = stream->run_steps, phase = 0;
    if (rank == 2) {
      const int64_t unit = stream->plan->step_pairs ? 2 : 1;
      const int64_t per_step = stream->out_frame * stream->layer->params.out_channels;
      steps = SINK_BATCH_FLOATS / per_step / unit * unit;
      if (steps < unit)
        steps = unit;
      phase = stream->plan->step_pairs ? stream->axis[0].p % 2 : 0;
    }
    if ((double)steps * (double)stream->out_frame *
            (double)stream->layer->params.out_channels * sizeof(float) >
        CT_STREAM_MAX_BYTES)
      return CT_ERR_OVERFLOW;
    stream->sink_batch_steps = steps;
    stream->sink_batch_phase = phase;
  }
  for (int i = 0; sink && i < stream->n_scratch; i++)
    if (!stream->scratch[i].sink_batch &&
        !(stream->scratch[i].sink_batch = cts_alloc_lines(sink_batch_bytes(stream))))
      return CT_ERR_NOMEM;
  stream->sink = sink;
  stream->sink_ctx = ctx;
  return CT_OK;
}

int ct_stream_threads(const ct_stream *stream) {
  return stream->n_scratch;
}
