/* Memory traffic of a stream: which outputs go out with non-temporal
 * stores, and reading the next push's input ahead. Values never depend on
 * either: only where and when bytes move. */
#include <stdint.h>

#include "stream-private.h"

/* Outputs of a push larger than this go out with non-temporal stores, and
 * so do those of pushes that fill one array in order once it has grown
 * past it: twice what a core's L2 holds, so whatever reads them next reads
 * most of them from beyond it either way, and the stores need not read
 * every line in first (on these machines that read is a third of the
 * memory traffic). From 8 MB down to 2 MB changed no one-shot case (K1,
 * K3, K4, K7 within noise); streamed K5 rows then match one-shot. */
const double cts_nontemporal_default_bytes = 2.0 * 1024 * 1024;

static double out_bytes(const ct_stream *st, int64_t steps) {
  return (double)steps * (double)st->out_frame * (double)st->layer->params.out_channels *
         sizeof(float);
}

/* Whether the next rows output steps go out with non-temporal stores. */
void cts_choose_stores(ct_stream *st, int64_t rows) {
  st->nontemporal =
      !st->sink && st->out_filled + out_bytes(st, rows) > st->nontemporal_bytes;
}

/* Outputs up to j_end are written: counted, and into the fill in progress. */
void cts_outputs_done(ct_stream *st, int64_t j_end) {
  if (j_end <= st->n_out)
    return;
  st->out_filled += out_bytes(st, j_end - st->n_out);
  st->n_out = j_end;
}

/* Before a push or finish writing its first output at out: whether it goes
 * on filling the array the last one wrote. */
void cts_track_fill(ct_stream *st, const float *out, int64_t out_chan_stride) {
  if (!out || out != st->out_next || out_chan_stride != st->out_next_stride)
    st->out_filled = 0;
}

/* Before a push reading n_steps steps from in: whether it starts where the
 * last one ended (see in_ahead). */
void cts_track_input(ct_stream *st, const float *in, int64_t in_chan_stride,
                     int64_t n_steps) {
  int64_t floats;
  const float *end = in && n_steps >= 0 && ct_mul_i64(n_steps, st->push_frame, &floats)
                         ? cts_floats_on(in, floats)
                         : NULL;
  st->in_ahead =
      in && in == st->in_next && in_chan_stride == st->in_next_stride ? end : NULL;
  st->in_next = end;
  st->in_next_stride = in_chan_stride;
}

/* After it wrote `steps` output steps from out. */
void cts_end_fill(ct_stream *st, float *out, int64_t out_chan_stride, int64_t steps) {
  st->out_next = out ? out + steps * st->out_frame : NULL;
  st->out_next_stride = out_chan_stride;
}

/* Asks for channels [c_begin, c_end) of the next push's first n steps,
 * where the stream guesses it starts (see in_ahead), to be fetched into
 * L2. A 10 ms push of stereo audio from memory otherwise waits for its cold
 * input first thing (K1 on one thread: 2.4-2.8 ms streamed, 1.7-2.0 with
 * the input in cache, 1.7 one-shot). Larger pushes are left to the
 * hardware: a burst of prefetches that big would stall the computation. */
enum { PREFETCH_AHEAD_FLOATS = 1 << 13 };

void cts_prefetch_ahead(const ct_stream *st, int64_t c_begin, int64_t c_end, int64_t n) {
  const int64_t frame = st->push_frame, len = n * frame;
  if (!st->in_ahead || (double)len * (double)(c_end - c_begin) > PREFETCH_AHEAD_FLOATS)
    return;
  for (int64_t c = c_begin; c < c_end; c++) {
    const float *from = cts_floats_on(st->in_ahead, c * st->in_next_stride);
    for (int64_t i = 0; i < len; i += 64 / sizeof(float))
      __builtin_prefetch(cts_floats_on(from, i), 0, 2);
  }
}
