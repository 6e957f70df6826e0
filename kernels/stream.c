#include "stream.h"

#include "layer-private.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sizes of the work units, in floats: one compute block of output steps, and
 * one fill of the input history (per push iteration, all channels). */
enum { COMPUTE_BLOCK_FLOATS = 1 << 14, FILL_FLOATS = 1 << 18 };

struct ct_stream {
  const ct_layer *layer;
  ct_axis axis[CT_MAX_RANK];
  int64_t in_len[CT_MAX_RANK];  /* frame axes (index 0 unused) */
  int64_t out_len[CT_MAX_RANK]; /* frame axes (index 0 unused) */
  int64_t pad_before[CT_MAX_RANK];
  int64_t padded_len[CT_MAX_RANK]; /* frame axes, with zero borders */
  int64_t out_frame_shape[CT_MAX_RANK - 1];
  int64_t in_frame, out_frame, padded_frame;
  bool every_output_has_taps; /* else bias is written first */

  /* Input history: rows (steps) of padded frames, channel-planar, holding the
   * zero-extended input from padded index hist_first on. Frame borders are
   * zero and stay zero: only interiors are ever written. */
  float *hist;
  int64_t hist_cap; /* rows per channel */
  int64_t hist_first;
  int64_t hist_rows;
  int64_t fill_rows; /* rows appended per iteration at most */

  int64_t block_rows;   /* output steps per compute block */
  int64_t acc_count;    /* floats of one phase of one compute block */
  float *acc;           /* acc_count floats per thread */
  ct_pool *pool;        /* NULL: single-threaded */
  double macs_per_step; /* multiply-adds per output step, all channels */
  double parallel_macs; /* blocks smaller than this run on one thread */

  int64_t n_in, n_out;
};

static void set_msg(char *msg, size_t msg_size, const char *text) {
  if (msg && msg_size)
    snprintf(msg, msg_size, "%s", text);
}

int64_t ct_stream_in_frame_size(const ct_stream *stream) {
  return stream->in_frame;
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
  for (int64_t n = 0; n <= horizon; n++) {
    int64_t kept = padded_row(st, n) - first_needed_row(st, ct_stream_emitted(params, n));
    if (kept > most)
      most = kept;
  }
  return most + 1;
}

static ct_status alloc_floats(float **out, int64_t count) {
  size_t bytes;
  if (!ct_bytes_for(count, sizeof(float), &bytes))
    return CT_ERR_OVERFLOW;
  *out = calloc(bytes ? bytes : 1, 1);
  return *out ? CT_OK : CT_ERR_NOMEM;
}

static void zero_rows(ct_stream *st, int64_t row, int64_t count) {
  const int64_t channels = st->layer->params.in_channels;
  for (int64_t c = 0; c < channels; c++)
    memset(st->hist + c * st->hist_cap * st->padded_frame + row * st->padded_frame, 0,
           (size_t)(count * st->padded_frame) * sizeof(float));
}

void ct_stream_reset(ct_stream *stream) {
  stream->n_in = 0;
  stream->n_out = 0;
  stream->hist_first = 0;
  stream->hist_rows = stream->pad_before[0];
  zero_rows(stream, 0, stream->hist_rows);
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
  st->every_output_has_taps = true;
  bool ok = true;
  for (int a = 0; a < CT_MAX_RANK; a++) {
    st->axis[a] = ct_params_axis(params, a);
    st->pad_before[a] = ct_axis_pad_before(st->axis[a]);
    if (layer->phases[a].n_phases != st->axis[a].s)
      st->every_output_has_taps = false;
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

  int64_t channels = params->in_channels;
  int64_t fill = FILL_FLOATS / channels / st->padded_frame;
  st->fill_rows = fill > 0 ? fill : 1;
  st->hist_cap = max_kept_rows(st) + st->fill_rows;
  if (st->hist_cap < st->pad_before[0] + 1)
    st->hist_cap = st->pad_before[0] + 1;
  /* Roughly: each output sums (Cin/g) * prod(k) / prod(s) products. */
  int64_t strides = st->axis[0].s * st->axis[1].s * st->axis[2].s;
  st->macs_per_step =
      (double)params->out_channels * (double)st->out_frame *
      ((double)layer->in_per_group * (double)layer->taps_per_pair / (double)strides + 1);
  st->parallel_macs = 1 << 16;
  int64_t block = COMPUTE_BLOCK_FLOATS / st->out_frame;
  st->block_rows = block > 0 ? block : 1;

  int64_t hist_count, acc_count = 1;
  ok = ct_mul_i64(st->hist_cap, st->padded_frame, &hist_count) &&
       ct_mul_i64(hist_count, channels, &hist_count);
  for (int a = 0; ok && a < CT_MAX_RANK; a++) {
    int64_t span = a == 0 ? st->block_rows : st->out_len[a];
    ok = ct_mul_i64(acc_count, ct_ceil_div(span, st->axis[a].s) + 1, &acc_count);
  }
  ct_status status = ok ? alloc_floats(&st->hist, hist_count) : CT_ERR_OVERFLOW;
  st->acc_count = acc_count;
  if (status == CT_OK)
    status = alloc_floats(&st->acc, acc_count);
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
  ct_pool_free(stream->pool);
  free(stream->hist);
  free(stream->acc);
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

/* Output steps [j_begin, j_end) of output channel co, into out whose step 0
 * is output step out_base. */
static void compute_channel(const ct_stream *st, int64_t co, int64_t j_begin,
                            int64_t j_end, float *out, int64_t out_base, float *acc) {
  const ct_layer *layer = st->layer;
  const ct_phase_table *ph = layer->phases;
  const int64_t group = co / layer->out_per_group;
  const float bias = layer->bias ? layer->bias[co] : 0.0f;
  const int64_t k1 = st->axis[1].k, k2 = st->axis[2].k;
  const int64_t row_len = st->padded_len[2];
  const int64_t hist_stride = st->hist_cap * st->padded_frame;

  if (!st->every_output_has_taps) {
    float *dst = out + (j_begin - out_base) * st->out_frame;
    for (int64_t i = 0; i < (j_end - j_begin) * st->out_frame; i++)
      dst[i] = bias;
  }
  for (int64_t p0 = 0; p0 < ph[0].n_phases; p0++) {
    const ct_phase *phase0 = &ph[0].phases[p0];
    int64_t m0b, m0e;
    ct_phase_output_range(st->axis[0], phase0->residue, j_begin, j_end, &m0b, &m0e);
    if (m0b == m0e)
      continue;
    for (int64_t p1 = 0; p1 < ph[1].n_phases; p1++) {
      const ct_phase *phase1 = &ph[1].phases[p1];
      int64_t m1b, m1e;
      ct_phase_output_range(st->axis[1], phase1->residue, 0, st->out_len[1], &m1b, &m1e);
      if (m1b == m1e)
        continue;
      for (int64_t p2 = 0; p2 < ph[2].n_phases; p2++) {
        const ct_phase *phase2 = &ph[2].phases[p2];
        int64_t m2b, m2e;
        ct_phase_output_range(st->axis[2], phase2->residue, 0, st->out_len[2], &m2b,
                              &m2e);
        if (m2b == m2e)
          continue;
        const int64_t n0 = m0e - m0b, n1 = m1e - m1b, n2 = m2e - m2b;
        for (int64_t i = 0; i < n0 * n1 * n2; i++)
          acc[i] = bias;
        /* Each output sums bias, then input channels, then taps in order: the
         * same sequence whatever block or push it is computed in. */
        for (int64_t ci_l = 0; ci_l < layer->in_per_group; ci_l++) {
          const int64_t ci = group * layer->in_per_group + ci_l;
          const float *w =
              layer->packed + (co * layer->in_per_group + ci_l) * layer->taps_per_pair;
          const float *x = st->hist + ci * hist_stride;
          for (int64_t a = 0; a < phase0->count; a++) {
            const ct_tap tap0 = ph[0].taps[phase0->first + a];
            for (int64_t b = 0; b < phase1->count; b++) {
              const ct_tap tap1 = ph[1].taps[phase1->first + b];
              for (int64_t c = 0; c < phase2->count; c++) {
                const ct_tap tap2 = ph[2].taps[phase2->first + c];
                const float wv = w[(tap0.tap * k1 + tap1.tap) * k2 + tap2.tap];
                for (int64_t m0 = m0b; m0 < m0e; m0++) {
                  const int64_t row =
                      m0 - tap0.offset + st->pad_before[0] - st->hist_first;
                  for (int64_t m1 = m1b; m1 < m1e; m1++) {
                    const float *src = x + row * st->padded_frame +
                                       (m1 - tap1.offset + st->pad_before[1]) * row_len +
                                       (m2b - tap2.offset + st->pad_before[2]);
                    float *dst = acc + ((m0 - m0b) * n1 + (m1 - m1b)) * n2;
                    for (int64_t e = 0; e < n2; e++)
                      dst[e] += wv * src[e];
                  }
                }
              }
            }
          }
        }
        /* Scatter the phase into its output positions. */
        const ct_axis a0 = st->axis[0], a1 = st->axis[1], a2 = st->axis[2];
        for (int64_t m0 = m0b; m0 < m0e; m0++) {
          const int64_t j = m0 * a0.s + phase0->residue - a0.p;
          float *dst_row = out + (j - out_base) * st->out_frame;
          for (int64_t m1 = m1b; m1 < m1e; m1++) {
            const int64_t y = m1 * a1.s + phase1->residue - a1.p;
            float *dst =
                dst_row + y * st->out_len[2] + (m2b * a2.s + phase2->residue - a2.p);
            const float *src = acc + ((m0 - m0b) * n1 + (m1 - m1b)) * n2;
            for (int64_t e = 0; e < n2; e++)
              dst[e * a2.s] = src[e];
          }
        }
      }
    }
  }
}

/* One compute block split into tasks: output channels, and row ranges when
 * there are fewer channels than threads to keep busy. */
typedef struct {
  const ct_stream *st;
  int64_t j_begin, j_end, rows_per_task, row_tasks;
  float *out;
  int64_t out_chan_stride, out_base;
} block_job;

static void run_block_task(void *ctx, int task, int worker) {
  const block_job *job = ctx;
  const int64_t co = task / job->row_tasks, part = task % job->row_tasks;
  const int64_t jb = job->j_begin + part * job->rows_per_task;
  const int64_t je =
      jb + job->rows_per_task < job->j_end ? jb + job->rows_per_task : job->j_end;
  if (jb < je)
    compute_channel(job->st, co, jb, je, job->out + co * job->out_chan_stride,
                    job->out_base, job->st->acc + worker * job->st->acc_count);
}

static void compute_outputs(ct_stream *st, int64_t j_end, float *out,
                            int64_t out_chan_stride, int64_t out_base) {
  const int64_t channels = st->layer->params.out_channels;
  while (st->n_out < j_end) {
    int64_t stop = st->n_out + st->block_rows;
    if (stop > j_end)
      stop = j_end;
    block_job job = {.st = st,
                     .j_begin = st->n_out,
                     .j_end = stop,
                     .rows_per_task = stop - st->n_out,
                     .row_tasks = 1,
                     .out = out,
                     .out_chan_stride = out_chan_stride,
                     .out_base = out_base};
    int threads = st->pool ? ct_pool_size(st->pool) : 1;
    if (threads > 1 &&
        (double)(stop - st->n_out) * st->macs_per_step >= st->parallel_macs) {
      if (channels < 2 * threads) {
        int64_t want = ct_ceil_div(2 * threads, channels);
        job.rows_per_task = ct_ceil_div(stop - st->n_out, want);
        job.row_tasks = ct_ceil_div(stop - st->n_out, job.rows_per_task);
      }
      ct_pool_run(st->pool, (int)(channels * job.row_tasks), run_block_task, &job);
    } else {
      for (int64_t co = 0; co < channels; co++)
        compute_channel(st, co, st->n_out, stop, out + co * out_chan_stride, out_base,
                        st->acc);
    }
    st->n_out = stop;
  }
}

ct_status ct_stream_set_threads(ct_stream *stream, int n_threads) {
  if (n_threads < 1)
    return CT_ERR_INVALID;
  int current = stream->pool ? ct_pool_size(stream->pool) : 1;
  if (n_threads == current)
    return CT_OK;
  float *acc;
  ct_status status = alloc_floats(&acc, stream->acc_count * n_threads);
  if (status != CT_OK)
    return status;
  ct_pool *pool = NULL;
  if (n_threads > 1 && !(pool = ct_pool_new(n_threads))) {
    free(acc);
    return CT_ERR_NOMEM;
  }
  ct_pool_free(stream->pool);
  free(stream->acc);
  stream->pool = pool;
  stream->acc = acc;
  return CT_OK;
}

void ct_stream_set_parallel_threshold(ct_stream *stream, double macs) {
  stream->parallel_macs = macs;
}

int ct_stream_threads(const ct_stream *stream) {
  return stream->pool ? ct_pool_size(stream->pool) : 1;
}

/* Makes room for at least one more row: drops rows no output still needs,
 * and grows the history only if the layer's window was underestimated. */
static ct_status make_room(ct_stream *st) {
  if (st->hist_rows < st->hist_cap)
    return CT_OK;
  const int64_t channels = st->layer->params.in_channels;
  int64_t keep_from = first_needed_row(st, st->n_out);
  if (keep_from > st->hist_first) {
    int64_t drop = keep_from - st->hist_first;
    if (drop > st->hist_rows)
      drop = st->hist_rows;
    for (int64_t c = 0; c < channels; c++) {
      float *base = st->hist + c * st->hist_cap * st->padded_frame;
      memmove(base, base + drop * st->padded_frame,
              (size_t)((st->hist_rows - drop) * st->padded_frame) * sizeof(float));
    }
    st->hist_first += drop;
    st->hist_rows -= drop;
  }
  if (st->hist_rows < st->hist_cap)
    return CT_OK;
  int64_t new_cap = st->hist_cap * 2, count;
  float *grown;
  if (!ct_mul_i64(new_cap, st->padded_frame, &count) ||
      !ct_mul_i64(count, channels, &count))
    return CT_ERR_OVERFLOW;
  ct_status status = alloc_floats(&grown, count);
  if (status != CT_OK)
    return status;
  for (int64_t c = 0; c < channels; c++)
    memcpy(grown + c * new_cap * st->padded_frame,
           st->hist + c * st->hist_cap * st->padded_frame,
           (size_t)(st->hist_rows * st->padded_frame) * sizeof(float));
  free(st->hist);
  st->hist = grown;
  st->hist_cap = new_cap;
  return CT_OK;
}

static void copy_rows(ct_stream *st, const float *in, int64_t in_chan_stride,
                      int64_t count) {
  const int64_t channels = st->layer->params.in_channels;
  const int64_t lines = st->in_len[1], line_len = st->in_len[2];
  for (int64_t c = 0; c < channels; c++) {
    const float *src = in + c * in_chan_stride;
    float *dst =
        st->hist + c * st->hist_cap * st->padded_frame + st->hist_rows * st->padded_frame;
    if (st->padded_frame == st->in_frame) {
      memcpy(dst, src, (size_t)(count * st->in_frame) * sizeof(float));
      continue;
    }
    for (int64_t r = 0; r < count; r++)
      for (int64_t y = 0; y < lines; y++)
        memcpy(dst + r * st->padded_frame + (y + st->pad_before[1]) * st->padded_len[2] +
                   st->pad_before[2],
               src + r * st->in_frame + y * line_len, (size_t)line_len * sizeof(float));
  }
  st->hist_rows += count;
}

ct_status ct_stream_push(ct_stream *stream, const float *in, int64_t in_chan_stride,
                         int64_t n_steps, float *out, int64_t out_chan_stride,
                         int64_t *n_out) {
  *n_out = 0;
  if (n_steps < 0)
    return CT_ERR_INVALID;
  if (ct_stream_push_out_steps(stream, n_steps) < 0)
    return CT_ERR_OVERFLOW;
  const int64_t out_base = stream->n_out;
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
    copy_rows(stream, in + done * stream->in_frame, in_chan_stride, count);
    done += count;
    stream->n_in += count;
    compute_outputs(stream, ct_stream_emitted(&stream->layer->params, stream->n_in), out,
                    out_chan_stride, out_base);
  }
  *n_out = stream->n_out - out_base;
  return CT_OK;
}

ct_status ct_stream_finish(ct_stream *stream, float *out, int64_t out_chan_stride,
                           int64_t *n_out) {
  *n_out = 0;
  const int64_t out_base = stream->n_out, target = final_length(stream);
  ct_status status = CT_OK;
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
      zero_rows(stream, stream->hist_rows, count);
      stream->hist_rows += count;
    }
  }
  *n_out = stream->n_out - out_base;
  ct_stream_reset(stream);
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
