#include "chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHAIN_MAX = 8 };

typedef struct {
  ct_stage stage;
  int n;
  ct_stage *stages[CHAIN_MAX];
  /* Between stage i and i + 1: the outputs of i, planar, cap steps per
   * channel, handed on in the same push (nothing stays). */
  float *between[CHAIN_MAX - 1];
  int64_t cap[CHAIN_MAX - 1];
  int64_t n_in, n_out;
} chain_stage;

static bool room(chain_stage *c, int i, int64_t steps) {
  if (steps <= c->cap[i] && c->between[i])
    return true;
  const ct_stage *s = c->stages[i];
  int64_t floats;
  size_t bytes;
  if (!ct_mul_i64(steps > 0 ? steps : 1, s->out_frame, &floats) ||
      !ct_mul_i64(floats, s->out_channels, &floats) ||
      !ct_bytes_for(floats, sizeof(float), &bytes))
    return false;
  float *grown = realloc(c->between[i], bytes);
  if (!grown)
    return false;
  c->between[i] = grown;
  c->cap[i] = steps > 0 ? steps : 1;
  return true;
}

/* Pushes n steps of `in` through stages [from, n) (finishing each when
 * `finishing`), the last one's outputs to out. */
static ct_status run(chain_stage *c, int from, const float *in, int64_t in_chan_stride,
                     int64_t n, bool finishing, float *out, int64_t out_chan_stride,
                     int64_t *n_out) {
  ct_stage *s = c->stages[from];
  const bool last = from == c->n - 1;
  const int64_t pushed = ct_stage_push_out_steps(s, n);
  if (pushed < 0)
    return CT_ERR_OVERFLOW;
  float *dst = out;
  int64_t dst_stride = out_chan_stride;
  if (!last) {
    /* Room for the push; finishing, the tail is known after it. */
    if (!room(c, from, pushed))
      return CT_ERR_NOMEM;
    dst = c->between[from];
    dst_stride = c->cap[from] * s->out_frame;
  }
  int64_t done = 0, tail = 0;
  ct_status status = ct_stage_push(s, in, in_chan_stride, n, dst, dst_stride, &done);
  if (status == CT_OK && finishing) {
    const int64_t more = ct_stage_finish_out_steps(s);
    if (!last && done + more > c->cap[from]) {
      /* Grow keeping what the push wrote. */
      float *old = c->between[from];
      const int64_t old_cap = c->cap[from];
      c->between[from] = NULL;
      c->cap[from] = 0;
      if (!room(c, from, done + more)) {
        c->between[from] = old;
        c->cap[from] = old_cap;
        return CT_ERR_NOMEM;
      }
      for (int64_t ch = 0; ch < s->out_channels; ch++)
        memcpy(c->between[from] + ch * c->cap[from] * s->out_frame,
               old + ch * old_cap * s->out_frame,
               (size_t)(done * s->out_frame) * sizeof(float));
      free(old);
      dst = c->between[from];
      dst_stride = c->cap[from] * s->out_frame;
    }
    status = ct_stage_finish(s, dst + done * s->out_frame, dst_stride, &tail);
  }
  if (status != CT_OK)
    return status;
  if (last) {
    *n_out = done + tail;
    return CT_OK;
  }
  return run(c, from + 1, dst, dst_stride, done + tail, finishing, out, out_chan_stride,
             n_out);
}

static ct_status chain_push(ct_stage *stage, const float *in, int64_t in_chan_stride,
                            int64_t n_steps, float *out, int64_t out_chan_stride,
                            int64_t *n_out) {
  chain_stage *c = (chain_stage *)stage;
  *n_out = 0;
  if (n_steps < 0)
    return CT_ERR_INVALID;
  ct_status status =
      run(c, 0, in, in_chan_stride, n_steps, false, out, out_chan_stride, n_out);
  c->n_in += n_steps;
  c->n_out += *n_out;
  return status;
}

static void chain_reset(ct_stage *stage) {
  chain_stage *c = (chain_stage *)stage;
  for (int i = 0; i < c->n; i++)
    ct_stage_reset(c->stages[i]);
  c->n_in = c->n_out = 0;
}

static ct_status chain_finish(ct_stage *stage, float *out, int64_t out_chan_stride,
                              int64_t *n_out) {
  chain_stage *c = (chain_stage *)stage;
  ct_status status = run(c, 0, NULL, 0, 0, true, out, out_chan_stride, n_out);
  chain_reset(stage);
  return status;
}

/* The rule of the whole chain: each stage's applied to the one before. */
static int64_t chain_emitted(const ct_stage *stage, int64_t n_in) {
  const chain_stage *c = (const chain_stage *)stage;
  for (int i = 0; i < c->n && n_in >= 0; i++)
    n_in = ct_stage_emitted(c->stages[i], n_in);
  return n_in;
}

static int64_t chain_length(const ct_stage *stage, int64_t n_in) {
  const chain_stage *c = (const chain_stage *)stage;
  for (int i = 0; i < c->n && n_in >= 0; i++)
    n_in = ct_stage_length(c->stages[i], n_in);
  return n_in;
}

static int64_t chain_push_out_steps(const ct_stage *stage, int64_t n) {
  const chain_stage *c = (const chain_stage *)stage;
  const int64_t e = n < 0 ? -1 : chain_emitted(stage, c->n_in + n);
  return e < 0 ? -1 : e - c->n_out;
}

static int64_t chain_finish_out_steps(const ct_stage *stage) {
  const chain_stage *c = (const chain_stage *)stage;
  return c->n_in > 0 ? chain_length(stage, c->n_in) - c->n_out : 0;
}

static ct_status chain_use_pool(ct_stage *stage, ct_pool *pool) {
  chain_stage *c = (chain_stage *)stage;
  for (int i = 0; i < c->n; i++) {
    ct_status status = ct_stage_use_pool(c->stages[i], pool);
    if (status != CT_OK)
      return status;
  }
  return CT_OK;
}

static void chain_destroy(ct_stage *stage) {
  chain_stage *c = (chain_stage *)stage;
  for (int i = 0; i < c->n; i++)
    ct_stage_free(c->stages[i]);
  for (int i = 0; i + 1 < c->n; i++)
    free(c->between[i]);
  free(c);
}

static const ct_stage_ops chain_ops = {
    .kind = "chain",
    .push = chain_push,
    .finish = chain_finish,
    .reset = chain_reset,
    .push_out_steps = chain_push_out_steps,
    .finish_out_steps = chain_finish_out_steps,
    .emitted = chain_emitted,
    .length = chain_length,
    .use_pool = chain_use_pool,
    .destroy = chain_destroy,
};

ct_stage *ct_chain_new(ct_stage **stages, int n, char *msg, size_t msg_size) {
  bool ok = n >= 1 && n <= CHAIN_MAX;
  for (int i = 0; ok && i < n; i++)
    ok = stages[i] != NULL;
  for (int i = 0; ok && i + 1 < n; i++)
    ok = stages[i]->out_channels == stages[i + 1]->in_channels &&
         stages[i]->out_frame == stages[i + 1]->in_frame;
  chain_stage *c = ok ? calloc(1, sizeof *c) : NULL;
  if (!c) {
    if (msg && msg_size)
      snprintf(msg, msg_size, "%s", ok ? "out of memory" : "stages that do not chain");
    for (int i = 0; i < n; i++)
      ct_stage_free(stages[i]);
    return NULL;
  }
  c->n = n;
  memcpy(c->stages, stages, sizeof(ct_stage *) * (size_t)n);
  ct_stage *s = &c->stage, *first = stages[0], *last = stages[n - 1];
  *s = *first;
  s->ops = &chain_ops;
  s->out_channels = last->out_channels;
  memcpy(s->out_frame_shape, last->out_frame_shape, sizeof s->out_frame_shape);
  s->out_frame = last->out_frame;
  s->rate_up = s->rate_down = 1;
  for (int i = 0; i < n; i++)
    if (!ct_rate_compose(&s->rate_up, &s->rate_down, stages[i]->rate_up,
                         stages[i]->rate_down)) {
      if (msg && msg_size)
        snprintf(msg, msg_size, "the stages' rates multiply past 64 bits");
      chain_destroy(s);
      return NULL;
    }
  s->latency_out_steps = s->latency_in_steps = 0; /* a graph measures its own */
  return s;
}
