#include "layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_msg(char *msg, size_t msg_size, const char *text) {
  if (msg && msg_size)
    snprintf(msg, msg_size, "%s", text);
}

/* Input rows kept until the outputs made from them are out. */
typedef struct {
  float *data;
  int64_t cap, first, total, channels, frame;
} row_buf;

static bool rows_append(row_buf *b, const float *in, int64_t chan_stride, int64_t n) {
  const int64_t held = b->total - b->first;
  if (held + n > b->cap || !b->data) {
    int64_t cap = b->cap ? b->cap : 16, floats;
    while (cap < held + n)
      cap *= 2;
    size_t bytes;
    if (!ct_mul_i64(cap, b->frame, &floats) ||
        !ct_mul_i64(floats, b->channels, &floats) ||
        !ct_bytes_for(floats, sizeof(float), &bytes))
      return false;
    float *grown = malloc(bytes ? bytes : 1);
    if (!grown)
      return false;
    for (int64_t c = 0; held > 0 && c < b->channels; c++)
      memcpy(grown + c * cap * b->frame, b->data + c * b->cap * b->frame,
             (size_t)(held * b->frame) * sizeof(float));
    free(b->data);
    b->data = grown;
    b->cap = cap;
  }
  for (int64_t c = 0; n > 0 && c < b->channels; c++)
    memcpy(b->data + (c * b->cap + held) * b->frame, in + c * chan_stride,
           (size_t)(n * b->frame) * sizeof(float));
  b->total += n;
  return true;
}

static const float *rows_at(const row_buf *b, int64_t row, int64_t c) {
  return b->data + (c * b->cap + row - b->first) * b->frame;
}

static void rows_drop_before(row_buf *b, int64_t row) {
  if (row > b->total)
    row = b->total;
  const int64_t drop = row - b->first, held = b->total - row;
  if (drop <= 0)
    return;
  for (int64_t c = 0; held > 0 && c < b->channels; c++)
    memmove(b->data + c * b->cap * b->frame, b->data + (c * b->cap + drop) * b->frame,
            (size_t)(held * b->frame) * sizeof(float));
  b->first = row;
}

/* ---- Pad ------------------------------------------------------------------------ */

typedef struct {
  ct_stage stage;
  row_buf rows;
  int64_t in_channels;
  int64_t chan_before;             /* channel pad (negative: crop) */
  int64_t lead, skip, hold, trail; /* streamed axis: see ct_pad_new */
  int64_t in_lines, in_cols, out_lines, out_cols, line_before, col_before;
  float value;
  int64_t n_in, n_out;
} pad_stage;

static int64_t pad_emitted(const ct_stage *stage, int64_t n) {
  const pad_stage *p = (const pad_stage *)stage;
  if (n < 1)
    return 0;
  const int64_t rows = n - p->skip - p->hold;
  return p->lead + (rows > 0 ? rows : 0);
}

static int64_t pad_length(const ct_stage *stage, int64_t n) {
  const pad_stage *p = (const pad_stage *)stage;
  return n < 1 ? 0 : pad_emitted(stage, n) + p->trail;
}

/* Output row o of the signal, channel co, into dst. */
static void pad_row(const pad_stage *p, int64_t o, int64_t co, float *dst) {
  const int64_t ci = co - p->chan_before;
  const int64_t row = o - p->lead + p->skip; /* the input row it copies */
  const bool constant =
      o < p->lead || row >= p->n_in - p->hold || ci < 0 || ci >= p->in_channels;
  for (int64_t y = 0; y < p->out_lines; y++)
    for (int64_t x = 0; x < p->out_cols; x++) {
      const int64_t iy = y - p->line_before, ix = x - p->col_before;
      dst[y * p->out_cols + x] =
          constant || iy < 0 || iy >= p->in_lines || ix < 0 || ix >= p->in_cols
              ? p->value
              : rows_at(&p->rows, row, ci)[iy * p->in_cols + ix];
    }
}

static void pad_rows(pad_stage *p, int64_t end, float *out, int64_t out_chan_stride) {
  for (int64_t o = p->n_out; o < end; o++)
    for (int64_t co = 0; co < p->stage.out_channels; co++)
      pad_row(p, o, co, out + co * out_chan_stride + (o - p->n_out) * p->stage.out_frame);
  if (end > p->n_out)
    p->n_out = end;
  /* The next output copies input row n_out - lead + skip at the earliest. */
  rows_drop_before(&p->rows, p->n_out - p->lead + p->skip);
}

static ct_status pad_push(ct_stage *stage, const float *in, int64_t in_chan_stride,
                          int64_t n_steps, float *out, int64_t out_chan_stride,
                          int64_t *n_out) {
  pad_stage *p = (pad_stage *)stage;
  *n_out = 0;
  if (n_steps < 0)
    return CT_ERR_INVALID;
  if (!rows_append(&p->rows, in, in_chan_stride, n_steps))
    return CT_ERR_NOMEM;
  p->n_in += n_steps;
  const int64_t start = p->n_out;
  pad_rows(p, pad_emitted(stage, p->n_in), out, out_chan_stride);
  *n_out = p->n_out - start;
  return CT_OK;
}

static void pad_reset(ct_stage *stage) {
  pad_stage *p = (pad_stage *)stage;
  p->n_in = p->n_out = p->rows.first = p->rows.total = 0;
}

static ct_status pad_finish(ct_stage *stage, float *out, int64_t out_chan_stride,
                            int64_t *n_out) {
  pad_stage *p = (pad_stage *)stage;
  const int64_t start = p->n_out;
  pad_rows(p, pad_length(stage, p->n_in), out, out_chan_stride);
  *n_out = p->n_out - start;
  pad_reset(stage);
  return CT_OK;
}

static int64_t pad_push_out_steps(const ct_stage *stage, int64_t n) {
  const pad_stage *p = (const pad_stage *)stage;
  return n < 0 ? -1 : pad_emitted(stage, p->n_in + n) - p->n_out;
}

static int64_t pad_finish_out_steps(const ct_stage *stage) {
  const pad_stage *p = (const pad_stage *)stage;
  return pad_length(stage, p->n_in) - p->n_out;
}

static ct_status no_threads(ct_stage *stage, ct_pool *pool) {
  (void)stage;
  (void)pool; /* copies: one thread */
  return CT_OK;
}

static void pad_destroy(ct_stage *stage) {
  pad_stage *p = (pad_stage *)stage;
  free(p->rows.data);
  free(p);
}

static const ct_stage_ops pad_ops = {
    .kind = "pad",
    .push = pad_push,
    .finish = pad_finish,
    .reset = pad_reset,
    .push_out_steps = pad_push_out_steps,
    .finish_out_steps = pad_finish_out_steps,
    .emitted = pad_emitted,
    .length = pad_length,
    .use_pool = no_threads,
    .destroy = pad_destroy,
};

static void set_frames(ct_stage *s, int rank, int64_t in_lines, int64_t in_cols,
                       int64_t out_lines, int64_t out_cols) {
  if (rank == 2) {
    s->in_frame_shape[0] = in_cols;
    s->out_frame_shape[0] = out_cols;
  } else if (rank == 3) {
    s->in_frame_shape[0] = in_lines;
    s->in_frame_shape[1] = in_cols;
    s->out_frame_shape[0] = out_lines;
    s->out_frame_shape[1] = out_cols;
  }
  s->in_frame = in_lines * in_cols;
  s->out_frame = out_lines * out_cols;
}

ct_stage *ct_pad_new(int rank, int64_t channels, const int64_t *frame_shape,
                     const int64_t *before, const int64_t *after, float value, char *msg,
                     size_t msg_size) {
  pad_stage *p = calloc(1, sizeof *p);
  if (!p) {
    set_msg(msg, msg_size, "out of memory");
    return NULL;
  }
  p->in_channels = channels;
  p->chan_before = before[0];
  p->lead = before[1] > 0 ? before[1] : 0;
  p->skip = before[1] < 0 ? -before[1] : 0;
  p->trail = after[1] > 0 ? after[1] : 0;
  p->hold = after[1] < 0 ? -after[1] : 0;
  p->in_lines = rank == 3 ? frame_shape[0] : 1;
  p->in_cols = rank >= 2 ? frame_shape[rank - 2] : 1;
  p->line_before = rank == 3 ? before[2] : 0;
  p->col_before = rank >= 2 ? before[rank] : 0;
  p->out_lines = rank == 3 ? p->in_lines + before[2] + after[2] : 1;
  p->out_cols = rank >= 2 ? p->in_cols + before[rank] + after[rank] : 1;
  const int64_t out_channels = channels + before[0] + after[0];
  if (out_channels < 1 || p->out_lines < 1 || p->out_cols < 1) {
    set_msg(msg, msg_size, "the padding crops a whole axis away");
    free(p);
    return NULL;
  }
  p->value = value;
  p->rows.channels = channels;
  p->rows.frame = p->in_lines * p->in_cols;
  ct_stage *s = &p->stage;
  s->ops = &pad_ops;
  s->rank = rank;
  s->in_channels = channels;
  s->out_channels = out_channels;
  set_frames(s, rank, p->in_lines, p->in_cols, p->out_lines, p->out_cols);
  s->rate_up = s->rate_down = 1;
  s->latency_in_steps = s->latency_out_steps = p->hold;
  return s;
}

/* ---- DepthToSpace ------------------------------------------------------------------ */

typedef struct {
  ct_stage stage;
  int64_t block, in_cols;
  ct_d2s_mode mode;
  int64_t n_in;
} d2s_stage;

static int64_t d2s_emitted(const ct_stage *stage, int64_t n) {
  return n * ((const d2s_stage *)stage)->block;
}

static ct_status d2s_push(ct_stage *stage, const float *in, int64_t in_chan_stride,
                          int64_t n_steps, float *out, int64_t out_chan_stride,
                          int64_t *n_out) {
  d2s_stage *d = (d2s_stage *)stage;
  const int64_t b = d->block, w = d->in_cols, c_out = stage->out_channels;
  for (int64_t r = 0; r < n_steps; r++)
    for (int64_t c = 0; c < c_out; c++)
      for (int64_t i = 0; i < b; i++) {
        float *dst = out + c * out_chan_stride + (r * b + i) * stage->out_frame;
        for (int64_t j = 0; j < b; j++) {
          const int64_t ci =
              d->mode == CT_D2S_DCR ? (i * b + j) * c_out + c : (c * b + i) * b + j;
          const float *src = in + ci * in_chan_stride + r * w;
          for (int64_t x = 0; x < w; x++)
            dst[x * b + j] = src[x];
        }
      }
  d->n_in += n_steps;
  *n_out = n_steps * b;
  return n_steps < 0 ? CT_ERR_INVALID : CT_OK;
}

static ct_status d2s_finish(ct_stage *stage, float *out, int64_t out_chan_stride,
                            int64_t *n_out) {
  (void)out;
  (void)out_chan_stride;
  ((d2s_stage *)stage)->n_in = 0;
  *n_out = 0;
  return CT_OK;
}

static void d2s_reset(ct_stage *stage) {
  ((d2s_stage *)stage)->n_in = 0;
}

static int64_t d2s_push_out_steps(const ct_stage *stage, int64_t n) {
  return n < 0 ? -1 : n * ((const d2s_stage *)stage)->block;
}

static int64_t d2s_finish_out_steps(const ct_stage *stage) {
  (void)stage;
  return 0;
}

static void d2s_destroy(ct_stage *stage) {
  free(stage);
}

static const ct_stage_ops d2s_ops = {
    .kind = "depth-to-space",
    .push = d2s_push,
    .finish = d2s_finish,
    .reset = d2s_reset,
    .push_out_steps = d2s_push_out_steps,
    .finish_out_steps = d2s_finish_out_steps,
    .emitted = d2s_emitted,
    .length = d2s_emitted,
    .use_pool = no_threads,
    .destroy = d2s_destroy,
};

ct_stage *ct_depth_to_space_new(int64_t channels, const int64_t *frame_shape,
                                int64_t block, ct_d2s_mode mode, char *msg,
                                size_t msg_size) {
  if (block < 1 || channels % (block * block) != 0) {
    set_msg(msg, msg_size, "the channels are not a multiple of the block size squared");
    return NULL;
  }
  d2s_stage *d = calloc(1, sizeof *d);
  if (!d) {
    set_msg(msg, msg_size, "out of memory");
    return NULL;
  }
  d->block = block;
  d->mode = mode;
  d->in_cols = frame_shape[0];
  ct_stage *s = &d->stage;
  s->ops = &d2s_ops;
  s->rank = 2;
  s->in_channels = channels;
  s->out_channels = channels / (block * block);
  set_frames(s, 2, 1, frame_shape[0], 1, frame_shape[0] * block);
  s->rate_up = block;
  s->rate_down = 1;
  return s;
}
