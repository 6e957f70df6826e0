#include "window.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ct_window {
  ct_stage stage; /* first: the window is a stage */
  ct_window_params p;
  float *weight, *bias;
  /* Frame axes as (lines, columns): rank 1 (1, 1), rank 2 (1, W), rank 3
   * (H, W); out likewise. */
  int64_t in_lines, in_cols, out_lines, out_cols;
  int fy, fx; /* the axes of lines and columns (a rank-2 frame has no lines) */
  /* Input rows kept: channel c of row `first + i` at hist + (c * cap + i) * in_frame. */
  float *hist;
  int64_t cap, first, n_in, n_out;
};

static void set_msg(char *msg, size_t msg_size, const char *text) {
  if (msg && msg_size)
    snprintf(msg, msg_size, "%s", text);
}

int64_t ct_window_output_length(const ct_window_params *p, int a, int64_t in_len) {
  const int64_t span =
      in_len + p->pad_begin[a] + p->pad_end[a] - p->dilation[a] * (p->kernel[a] - 1) - 1;
  if (in_len <= 0 || span < 0)
    return 0;
  const int64_t s = p->stride[a];
  return (p->ceil_mode ? (span + s - 1) / s : span / s) + 1;
}

/* Outputs whose every window row has arrived once n inputs have. */
static int64_t emitted(const ct_window *w, int64_t n) {
  const ct_window_params *p = &w->p;
  const int64_t last = p->pad_begin[0] + n - 1 - p->dilation[0] * (p->kernel[0] - 1);
  const int64_t ready = last < 0 ? 0 : last / p->stride[0] + 1;
  const int64_t len = ct_window_output_length(p, 0, n);
  return ready < len ? ready : len;
}

static int64_t stage_emitted(const ct_stage *stage, int64_t n_in) {
  return emitted((const ct_window *)stage, n_in);
}

static int64_t stage_length(const ct_stage *stage, int64_t n_in) {
  return ct_window_output_length(&((const ct_window *)stage)->p, 0, n_in);
}

static int64_t push_out_steps(const ct_stage *stage, int64_t n_steps) {
  const ct_window *w = (const ct_window *)stage;
  return n_steps < 0 ? -1 : emitted(w, w->n_in + n_steps) - w->n_out;
}

static int64_t finish_out_steps(const ct_stage *stage) {
  const ct_window *w = (const ct_window *)stage;
  return ct_window_output_length(&w->p, 0, w->n_in) - w->n_out;
}

/* The output columns x in [*lo, *hi) whose input x * s + t * d - pad lies
 * in [0, len). */
static void valid_range(int64_t out_len, int64_t len, int64_t s, int64_t offset,
                        int64_t *lo, int64_t *hi) {
  /* x * s + offset >= 0  and  x * s + offset < len */
  int64_t a = offset >= 0 ? 0 : (-offset + s - 1) / s;
  int64_t b = len - offset <= 0 ? 0 : (len - offset + s - 1) / s;
  *lo = a < out_len ? a : out_len;
  *hi = b < out_len ? b : out_len;
  if (*hi < *lo)
    *hi = *lo;
}

static const float *row_at(const ct_window *w, int64_t row, int64_t c) {
  return w->hist + (c * w->cap + (row - w->first)) * w->stage.in_frame;
}

/* Output step j, channel co, into dst (out_frame floats). */
static void compute_row(const ct_window *w, int64_t j, int64_t co, float *dst) {
  const ct_window_params *p = &w->p;
  const int64_t out_frame = w->stage.out_frame;
  const bool conv = p->op == CT_WINDOW_CONV;
  const int64_t cin_g = p->in_channels / p->groups, cout_g = p->out_channels / p->groups;
  const int64_t ky = w->fy ? p->kernel[w->fy] : 1, kx = w->fx ? p->kernel[w->fx] : 1;
  const int64_t sy = w->fy ? p->stride[w->fy] : 1, sx = w->fx ? p->stride[w->fx] : 1;
  const int64_t dy = w->fy ? p->dilation[w->fy] : 1, dx = w->fx ? p->dilation[w->fx] : 1;
  const int64_t py = w->fy ? p->pad_begin[w->fy] : 0,
                px = w->fx ? p->pad_begin[w->fx] : 0;
  const int64_t taps = p->kernel[0] * ky * kx;
  float *count = NULL;
  if (p->op == CT_WINDOW_AVERAGE) /* averaging: the elements that count, per output */
    count = calloc((size_t)out_frame, sizeof(float));
  for (int64_t i = 0; i < out_frame; i++)
    dst[i] = conv                     ? (p->bias ? p->bias[co] : 0.0f)
             : p->op == CT_WINDOW_MAX ? -INFINITY
                                      : 0.0f;
  const int64_t g = co / cout_g;
  const int64_t ci_begin = conv ? g * cin_g : co,
                ci_end = conv ? ci_begin + cin_g : co + 1;
  for (int64_t t0 = 0; t0 < p->kernel[0]; t0++) {
    const int64_t u = j * p->stride[0] + t0 * p->dilation[0] - p->pad_begin[0];
    const bool in_signal = u >= 0 && u < w->n_in;
    for (int64_t ci = ci_begin; ci < ci_end; ci++) {
      const float *row = in_signal ? row_at(w, u, ci) : NULL;
      for (int64_t ty = 0; ty < ky; ty++) {
        int64_t ylo, yhi;
        valid_range(w->out_lines, w->in_lines, sy, ty * dy - py, &ylo, &yhi);
        for (int64_t tx = 0; tx < kx; tx++) {
          int64_t xlo, xhi;
          valid_range(w->out_cols, w->in_cols, sx, tx * dx - px, &xlo, &xhi);
          const float wt =
              conv ? p->weight[((co * cin_g + (ci - ci_begin)) * p->kernel[0] + t0) * ky *
                                   kx +
                               ty * kx + tx]
                   : 0.0f;
          for (int64_t y = ylo; in_signal && y < yhi; y++) {
            const float *src = row + (y * sy + ty * dy - py) * w->in_cols;
            float *out = dst + y * w->out_cols;
            for (int64_t x = xlo; x < xhi; x++) {
              const float v = src[x * sx + tx * dx - px];
              if (conv)
                out[x] += wt * v;
              else if (p->op == CT_WINDOW_MAX)
                out[x] = v > out[x] ? v : out[x];
              else
                out[x] += v;
            }
          }
          if (count && !p->count_include_pad)
            for (int64_t y = ylo; in_signal && y < yhi; y++)
              for (int64_t x = xlo; x < xhi; x++)
                count[y * w->out_cols + x] += 1.0f;
        }
      }
    }
  }
  (void)taps;
  if (!count)
    return;
  if (p->count_include_pad) {
    /* The whole window, padding included, but not past the padding. */
    for (int64_t y = 0; y < w->out_lines; y++)
      for (int64_t x = 0; x < w->out_cols; x++) {
        int64_t n = 0;
        for (int64_t t0 = 0; t0 < p->kernel[0]; t0++) {
          const int64_t u = j * p->stride[0] + t0 * p->dilation[0];
          if (u >= w->n_in + p->pad_begin[0] + p->pad_end[0])
            continue;
          for (int64_t ty = 0; ty < ky; ty++) {
            const int64_t iy = y * sy + ty * dy;
            if (w->fy && iy >= w->in_lines + py + p->pad_end[w->fy])
              continue;
            for (int64_t tx = 0; tx < kx; tx++)
              n += !w->fx || x * sx + tx * dx < w->in_cols + px + p->pad_end[w->fx];
          }
        }
        count[y * w->out_cols + x] = (float)n;
      }
  }
  for (int64_t i = 0; i < out_frame; i++)
    dst[i] = count[i] > 0 ? dst[i] / count[i] : 0.0f;
  free(count);
}

static void compute_rows(ct_window *w, int64_t end, float *out, int64_t out_chan_stride) {
  for (int64_t j = w->n_out; j < end; j++)
    for (int64_t co = 0; co < w->p.out_channels; co++)
      compute_row(w, j, co,
                  out + co * out_chan_stride + (j - w->n_out) * w->stage.out_frame);
  w->n_out = end > w->n_out ? end : w->n_out;
}

/* Keeps only the rows later outputs read. */
static void drop_rows(ct_window *w) {
  int64_t keep_from = w->n_out * w->p.stride[0] - w->p.pad_begin[0];
  if (keep_from > w->n_in)
    keep_from = w->n_in;
  const int64_t drop = keep_from - w->first;
  if (drop <= 0)
    return;
  const int64_t held = w->n_in - w->first - drop, frame = w->stage.in_frame;
  for (int64_t c = 0; held > 0 && c < w->p.in_channels; c++)
    memmove(w->hist + c * w->cap * frame, w->hist + (c * w->cap + drop) * frame,
            (size_t)(held * frame) * sizeof(float));
  w->first += drop;
}

static bool make_room(ct_window *w, int64_t more) {
  const int64_t held = w->n_in - w->first, frame = w->stage.in_frame;
  if (held + more <= w->cap && w->hist)
    return true;
  int64_t cap = w->cap ? w->cap : 16;
  while (cap < held + more)
    cap *= 2;
  size_t bytes;
  int64_t floats;
  if (!ct_mul_i64(cap, frame, &floats) ||
      !ct_mul_i64(floats, w->p.in_channels, &floats) ||
      !ct_bytes_for(floats, sizeof(float), &bytes))
    return false;
  float *grown = malloc(bytes ? bytes : 1);
  if (!grown)
    return false;
  for (int64_t c = 0; held > 0 && c < w->p.in_channels; c++)
    memcpy(grown + c * cap * frame, w->hist + c * w->cap * frame,
           (size_t)(held * frame) * sizeof(float));
  free(w->hist);
  w->hist = grown;
  w->cap = cap;
  return true;
}

static ct_status window_push(ct_stage *stage, const float *in, int64_t in_chan_stride,
                             int64_t n_steps, float *out, int64_t out_chan_stride,
                             int64_t *n_out) {
  ct_window *w = (ct_window *)stage;
  *n_out = 0;
  if (n_steps < 0)
    return CT_ERR_INVALID;
  if (!make_room(w, n_steps))
    return CT_ERR_NOMEM;
  const int64_t frame = stage->in_frame, held = w->n_in - w->first;
  for (int64_t c = 0; n_steps > 0 && c < w->p.in_channels; c++)
    memcpy(w->hist + (c * w->cap + held) * frame, in + c * in_chan_stride,
           (size_t)(n_steps * frame) * sizeof(float));
  w->n_in += n_steps;
  const int64_t start = w->n_out;
  compute_rows(w, emitted(w, w->n_in), out, out_chan_stride);
  *n_out = w->n_out - start;
  drop_rows(w);
  return CT_OK;
}

static void window_reset(ct_stage *stage) {
  ct_window *w = (ct_window *)stage;
  w->first = w->n_in = w->n_out = 0;
}

static ct_status window_finish(ct_stage *stage, float *out, int64_t out_chan_stride,
                               int64_t *n_out) {
  ct_window *w = (ct_window *)stage;
  const int64_t start = w->n_out;
  compute_rows(w, ct_window_output_length(&w->p, 0, w->n_in), out, out_chan_stride);
  *n_out = w->n_out - start;
  window_reset(stage);
  return CT_OK;
}

static ct_status window_use_pool(ct_stage *stage, ct_pool *pool) {
  (void)stage;
  (void)pool; /* one thread: these windows are small next to the convolutions */
  return CT_OK;
}

static void window_destroy(ct_stage *stage) {
  ct_window *w = (ct_window *)stage;
  free(w->hist);
  free(w->weight);
  free(w->bias);
  free(w);
}

static const ct_stage_ops window_ops = {
    .kind = "window",
    .push = window_push,
    .finish = window_finish,
    .reset = window_reset,
    .push_out_steps = push_out_steps,
    .finish_out_steps = finish_out_steps,
    .emitted = stage_emitted,
    .length = stage_length,
    .use_pool = window_use_pool,
    .destroy = window_destroy,
};

static float *copy_floats(const float *src, int64_t n) {
  size_t bytes;
  if (!src || !ct_bytes_for(n, sizeof(float), &bytes))
    return NULL;
  float *dst = malloc(bytes ? bytes : 1);
  if (dst)
    memcpy(dst, src, bytes);
  return dst;
}

ct_window *ct_window_new(const ct_window_params *params, const int64_t *frame_shape,
                         char *msg, size_t msg_size) {
  const ct_window_params *p = params;
  if (p->rank < 1 || p->rank > CT_MAX_RANK || p->in_channels < 1 || p->out_channels < 1 ||
      p->groups < 1 || p->in_channels % p->groups || p->out_channels % p->groups) {
    set_msg(msg, msg_size, "channels or groups do not divide");
    return NULL;
  }
  for (int a = 0; a < p->rank; a++)
    if (p->kernel[a] < 1 || p->stride[a] < 1 || p->dilation[a] < 1 ||
        p->pad_begin[a] < 0 || p->pad_end[a] < 0 || p->kernel[a] > CT_MAX_TAPS ||
        p->stride[a] > CT_MAX_PARAM || p->dilation[a] > CT_MAX_PARAM ||
        p->pad_begin[a] > CT_MAX_PARAM || p->pad_end[a] > CT_MAX_PARAM) {
      set_msg(msg, msg_size, "kernel, stride, dilation and padding must be positive");
      return NULL;
    }
  ct_window *w = calloc(1, sizeof *w);
  if (!w) {
    set_msg(msg, msg_size, "out of memory");
    return NULL;
  }
  w->p = *p;
  for (int a = p->rank; a < CT_MAX_RANK; a++) {
    w->p.kernel[a] = w->p.stride[a] = w->p.dilation[a] = 1;
    w->p.pad_begin[a] = w->p.pad_end[a] = 0;
  }
  w->fy = p->rank == 3 ? 1 : 0;
  w->fx = p->rank >= 2 ? p->rank - 1 : 0;
  w->in_lines = p->rank == 3 ? frame_shape[0] : 1;
  w->in_cols = p->rank >= 2 ? frame_shape[p->rank - 2] : 1;
  w->out_lines = p->rank == 3 ? ct_window_output_length(&w->p, 1, w->in_lines) : 1;
  w->out_cols = p->rank >= 2 ? ct_window_output_length(&w->p, w->fx, w->in_cols) : 1;
  if (w->out_lines < 1 || w->out_cols < 1) {
    set_msg(msg, msg_size, "the frame is too small for the window");
    free(w);
    return NULL;
  }
  if (p->op == CT_WINDOW_CONV) {
    int64_t n = p->out_channels * (p->in_channels / p->groups);
    for (int a = 0; a < p->rank; a++)
      n *= p->kernel[a];
    w->weight = copy_floats(p->weight, n);
    w->bias = p->bias ? copy_floats(p->bias, p->out_channels) : NULL;
    if (!w->weight || (p->bias && !w->bias)) {
      set_msg(msg, msg_size, "out of memory for the weights");
      free(w->weight);
      free(w);
      return NULL;
    }
    w->p.weight = w->weight;
    w->p.bias = w->bias;
  }
  ct_stage *s = &w->stage;
  s->ops = &window_ops;
  s->rank = p->rank;
  s->in_channels = p->in_channels;
  s->out_channels = p->out_channels;
  if (p->rank == 2) {
    s->in_frame_shape[0] = w->in_cols;
    s->out_frame_shape[0] = w->out_cols;
  } else if (p->rank == 3) {
    s->in_frame_shape[0] = w->in_lines;
    s->in_frame_shape[1] = w->in_cols;
    s->out_frame_shape[0] = w->out_lines;
    s->out_frame_shape[1] = w->out_cols;
  }
  s->in_frame = w->in_lines * w->in_cols;
  s->out_frame = w->out_lines * w->out_cols;
  s->rate_up = 1;
  s->rate_down = p->stride[0];
  /* Output j waits for input j * s - pb + d * (k - 1), aligned with j * s. */
  const int64_t wait = p->dilation[0] * (p->kernel[0] - 1) - p->pad_begin[0];
  s->latency_in_steps = wait > 0 ? wait : 0;
  s->latency_out_steps = (s->latency_in_steps + p->stride[0] - 1) / p->stride[0];
  return w;
}

ct_stage *ct_window_stage(ct_window *window) {
  return &window->stage;
}
