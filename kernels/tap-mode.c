/* Tap mode (plan.h): every input row is multiplied by all kernel taps at
 * once into the history, P[tap][x] = sum_ci w[ci][tap] x[ci][x], as one
 * well-shaped matrix product per fill; threads split rows into column
 * pieces, or, for a push of one row, into spans whose chunks they take
 * from each other. */
#include <stdatomic.h>
#include <stdint.h>

#include "stream-private.h"

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
    ws->next_rows[ci] = cts_floats_on(job->in, ci * job->in_chan_stride +
                                                   next_r * st->in_frame + next_x0);
  for (int64_t t = 0; t < taps; t++)
    ws->dst_rows[t] = cts_stored_row(st, job->first_row + r, t) + st->pad_before[1] + x0;
  ct_run_gemm gemm = {
      .m = taps,
      .k = cin,
      .n = x1 - x0,
      .a = st->plan->tap_a,
      .bias = st->plan->tap_zero,
      .rows = ws->rows,
      .dst_rows = ws->dst_rows,
      .pack = ws->pack,
      .next_rows = prefetch ? ws->next_rows : NULL,
      .next_n = next_n,
  };
  st->dsp->run_gemm(&gemm);
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

void cts_tap_rows(ct_stream *st, const float *in, int64_t in_chan_stride, int64_t count,
                  int64_t available) {
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
