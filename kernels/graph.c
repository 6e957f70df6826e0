#include "graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "layer.h"
#include "layout.h"
#include "stream.h"
#include "window.h"

/* A value's steps not yet taken by every node that reads it: channel c of
 * step `first + i` at data + (c * cap + i) * frame. */
typedef struct value_buf {
  int64_t channels, frame;
  int64_t frame_shape[CT_MAX_RANK - 1];
  float *data;
  int64_t cap;   /* steps per channel */
  int64_t first; /* the step at data */
  int64_t total; /* steps made so far: first + held */
  /* Rational rate of this value against the graph's input. */
  int64_t rate_up, rate_down;
  bool shaped; /* frame_shape known (made by a node already planned) */
} value_buf;

typedef struct graph_node {
  const ct_node *desc;
  ct_layer *layer; /* convolutions on a transposed-convolution stream: its layer */
  /* Nodes that are stages: the stream or window; NULL for elementwise
   * nodes, which the graph runs itself. */
  ct_stage *stage;
  int64_t taken[2]; /* steps taken from each input */
} graph_node;

struct ct_graph {
  ct_stage stage; /* first: the graph is a stage */
  const ct_network *net;
  graph_node *nodes;
  value_buf *values;
  int64_t out_taken; /* steps of the output value handed to the caller */
  int64_t n_in, n_out;
  int64_t latency_out, latency_in;
  char error[256]; /* why the last push or finish failed, if it did */
};

/* "node 3 (up1, ConvTranspose): why" */
static void node_msg(char *msg, size_t msg_size, const ct_node *node, const char *why) {
  if (msg && msg_size)
    snprintf(msg, msg_size, "node %d (%s, %s): %s", node->index,
             node->name ? node->name : "unnamed", node->op ? node->op : "?", why);
}

/* ---- values ---------------------------------------------------------------- */

static int64_t held(const value_buf *v) {
  return v->total - v->first;
}

static float *step_at(const value_buf *v, int64_t step) {
  return v->data + (step - v->first) * v->frame;
}

static int64_t chan_stride(const value_buf *v) {
  return v->cap * v->frame;
}

/* Room for `more` steps after the held ones, the held ones moved to the
 * front. */
static bool make_room(value_buf *v, int64_t more) {
  const int64_t keep = held(v);
  if (keep + more <= v->cap && v->data)
    return true;
  int64_t cap = v->cap ? v->cap : 64;
  while (cap < keep + more)
    cap *= 2;
  size_t bytes;
  int64_t floats;
  if (!ct_mul_i64(cap, v->frame, &floats) || !ct_mul_i64(floats, v->channels, &floats) ||
      !ct_bytes_for(floats, sizeof(float), &bytes))
    return false;
  float *grown = malloc(bytes ? bytes : 1);
  if (!grown)
    return false;
  for (int64_t c = 0; keep > 0 && c < v->channels; c++)
    memcpy(grown + c * cap * v->frame, v->data + c * chan_stride(v),
           (size_t)(keep * v->frame) * sizeof(float));
  free(v->data);
  v->data = grown;
  v->cap = cap;
  return true;
}

/* Steps before `step` are taken by every reader: dropped. */
static void drop_before(value_buf *v, int64_t step) {
  const int64_t drop = step - v->first;
  if (drop <= 0)
    return;
  const int64_t keep = held(v) - drop;
  for (int64_t c = 0; keep > 0 && c < v->channels; c++)
    memmove(v->data + c * chan_stride(v), v->data + c * chan_stride(v) + drop * v->frame,
            (size_t)(keep * v->frame) * sizeof(float));
  v->first = step;
}

/* ---- elementwise functions ---------------------------------------------------- */

static float unary(const ct_node *n, float x) {
  switch ((ct_unary_op)n->op_code) {
  case CT_UNARY_IDENTITY:
    return x;
  case CT_UNARY_RELU:
    return x > 0.0f ? x : 0.0f;
  case CT_UNARY_LEAKY_RELU:
    return x >= 0.0f ? x : n->alpha * x;
  case CT_UNARY_ELU:
    return x > 0.0f ? x : n->alpha * (expf(x) - 1.0f);
  case CT_UNARY_SELU:
    return n->gamma * (x > 0.0f ? x : n->alpha * (expf(x) - 1.0f));
  case CT_UNARY_CELU:
    return fmaxf(0.0f, x) + fminf(0.0f, n->alpha * (expf(x / n->alpha) - 1.0f));
  case CT_UNARY_SIGMOID:
    return 1.0f / (1.0f + expf(-x));
  case CT_UNARY_HARD_SIGMOID:
    return fmaxf(0.0f, fminf(1.0f, n->alpha * x + n->beta));
  case CT_UNARY_HARD_SWISH:
    return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));
  case CT_UNARY_TANH:
    return tanhf(x);
  case CT_UNARY_SOFTPLUS:
    return log1pf(expf(x));
  case CT_UNARY_SOFTSIGN:
    return x / (1.0f + fabsf(x));
  case CT_UNARY_ERF:
    return erff(x);
  case CT_UNARY_CLIP:
    return fminf(fmaxf(x, n->clip_min), n->clip_max);
  case CT_UNARY_NEG:
    return -x;
  case CT_UNARY_ABS:
    return fabsf(x);
  case CT_UNARY_SQRT:
    return sqrtf(x);
  case CT_UNARY_RECIPROCAL:
    return 1.0f / x;
  case CT_UNARY_EXP:
    return expf(x);
  case CT_UNARY_LOG:
    return logf(x);
  case CT_UNARY_SIN:
    return sinf(x);
  case CT_UNARY_COS:
    return cosf(x);
  }
  return x;
}

static float binary(ct_binary_op op, float a, float b) {
  switch (op) {
  case CT_BINARY_ADD:
    return a + b;
  case CT_BINARY_SUB:
    return a - b;
  case CT_BINARY_MUL:
    return a * b;
  case CT_BINARY_DIV:
    return a / b;
  case CT_BINARY_POW:
    return powf(a, b);
  case CT_BINARY_MAX:
    return fmaxf(a, b);
  case CT_BINARY_MIN:
    return fminf(a, b);
  case CT_BINARY_PRELU:
    return a < 0.0f ? b * a : a;
  }
  return a;
}

/* The constant's value for channel c (per channel or one for all). */
static float constant_at(const ct_constant *k, int64_t c) {
  return k->dims[1] > 1 ? k->data[c] : k->data[0];
}

/* ---- one node over the steps its inputs have made ---------------------------------- */

static int64_t available(const ct_graph *g, const graph_node *node) {
  int64_t n = INT64_MAX;
  for (int i = 0; i < node->desc->n_inputs; i++) {
    const int64_t a = g->values[node->desc->inputs[i]].total - node->taken[i];
    if (a < n)
      n = a;
  }
  return n == INT64_MAX ? 0 : n;
}

static ct_status run_elementwise(ct_graph *g, graph_node *node, int64_t n) {
  const ct_node *d = node->desc;
  if (n == 0)
    return CT_OK;
  value_buf *in0 = &g->values[d->inputs[0]];
  value_buf *in1 = d->n_inputs > 1 ? &g->values[d->inputs[1]] : NULL;
  if (d->kind == CT_NODE_SPLIT) {
    int64_t c0 = 0;
    for (int o = 0; o < d->n_outputs; o++) {
      value_buf *out = &g->values[d->outputs[o]];
      if (!make_room(out, n))
        return CT_ERR_NOMEM;
      for (int64_t c = 0; c < out->channels; c++)
        memcpy(out->data + c * chan_stride(out) + held(out) * out->frame,
               step_at(in0, node->taken[0]) + (c0 + c) * chan_stride(in0),
               (size_t)(n * out->frame) * sizeof(float));
      out->total += n;
      c0 += out->channels;
    }
    node->taken[0] += n;
    return CT_OK;
  }
  value_buf *out = &g->values[d->outputs[0]];
  if (!make_room(out, n))
    return CT_ERR_NOMEM;
  const int64_t len = n * out->frame;
  for (int64_t c = 0; c < out->channels; c++) {
    float *dst = out->data + c * chan_stride(out) + held(out) * out->frame;
    if (d->kind == CT_NODE_CONCAT) {
      /* Channel c of the input that holds it. */
      int64_t base = 0;
      for (int i = 0; i < d->n_inputs; i++) {
        const value_buf *in = &g->values[d->inputs[i]];
        if (c < base + in->channels) {
          memcpy(dst, step_at(in, node->taken[i]) + (c - base) * chan_stride(in),
                 (size_t)len * sizeof(float));
          break;
        }
        base += in->channels;
      }
      continue;
    }
    const float *a = step_at(in0, node->taken[0]) + c * chan_stride(in0);
    if (d->kind == CT_NODE_UNARY) {
      for (int64_t i = 0; i < len; i++)
        dst[i] = unary(d, a[i]);
    } else if (d->kind == CT_NODE_AFFINE) {
      const float scale = d->scale[c], shift = d->shift[c];
      for (int64_t i = 0; i < len; i++)
        dst[i] = a[i] * scale + shift;
    } else if (in1) {
      const float *b = step_at(in1, node->taken[1]) + c * chan_stride(in1);
      for (int64_t i = 0; i < len; i++)
        dst[i] = binary((ct_binary_op)d->op_code, a[i], b[i]);
    } else {
      const float k = constant_at(&d->constant, c);
      for (int64_t i = 0; i < len; i++)
        dst[i] = d->constant_second ? binary((ct_binary_op)d->op_code, a[i], k)
                                    : binary((ct_binary_op)d->op_code, k, a[i]);
    }
  }
  out->total += n;
  for (int i = 0; i < d->n_inputs; i++)
    node->taken[i] += n;
  return CT_OK;
}

static ct_status run_stage(ct_graph *g, graph_node *node, int64_t n, bool finishing) {
  value_buf *in = &g->values[node->desc->inputs[0]];
  value_buf *out = &g->values[node->desc->outputs[0]];
  const int64_t want = ct_stage_push_out_steps(node->stage, n);
  if (want < 0 || !make_room(out, want))
    return CT_ERR_NOMEM;
  int64_t done = 0;
  ct_status status = CT_OK;
  if (n > 0 || want > 0)
    status = ct_stage_push(node->stage, step_at(in, node->taken[0]), chan_stride(in), n,
                           out->data + held(out) * out->frame, chan_stride(out), &done);
  if (status != CT_OK)
    return status;
  out->total += done;
  node->taken[0] += n;
  if (!finishing)
    return CT_OK;
  const int64_t tail = ct_stage_finish_out_steps(node->stage);
  if (!make_room(out, tail))
    return CT_ERR_NOMEM;
  status = ct_stage_finish(node->stage, out->data + held(out) * out->frame,
                           chan_stride(out), &done);
  out->total += done;
  return status;
}

/* Drops the steps of node's inputs every reader has taken. */
static void drop_taken(ct_graph *g) {
  const ct_network *net = g->net;
  for (int v = 0; v < net->n_values; v++) {
    int64_t low = g->values[v].total;
    for (int i = 0; i < net->n_nodes; i++)
      for (int k = 0; k < net->nodes[i].n_inputs; k++)
        if (net->nodes[i].inputs[k] == v && g->nodes[i].taken[k] < low)
          low = g->nodes[i].taken[k];
    if (v == net->output && g->out_taken < low)
      low = g->out_taken;
    drop_before(&g->values[v], low);
  }
}

static ct_status run_nodes(ct_graph *g, bool finishing) {
  for (int i = 0; i < g->net->n_nodes; i++) {
    graph_node *node = &g->nodes[i];
    const int64_t n = available(g, node);
    ct_status status =
        node->stage ? run_stage(g, node, n, finishing) : run_elementwise(g, node, n);
    if (status != CT_OK)
      return status;
    /* Branches that meet must end together (a U-Net's input must be a
     * multiple of its downsampling). */
    for (int k = 0; finishing && k < node->desc->n_inputs; k++) {
      const int64_t left = g->values[node->desc->inputs[k]].total - node->taken[k];
      if (left > 0) {
        char why[160];
        snprintf(why, sizeof why,
                 "its inputs end at different lengths for this signal (%lld steps of "
                 "input %d left over): the network does not take this input length",
                 (long long)left, k + 1);
        node_msg(g->error, sizeof g->error, node->desc, why);
        return CT_ERR_INVALID;
      }
    }
  }
  return CT_OK;
}

/* The output steps made since the last call, to out. */
static int64_t hand_out(ct_graph *g, float *out, int64_t out_chan_stride) {
  value_buf *v = &g->values[g->net->output];
  const int64_t n = v->total - g->out_taken;
  for (int64_t c = 0; out && n > 0 && c < v->channels; c++)
    memcpy(out + c * out_chan_stride, step_at(v, g->out_taken) + c * chan_stride(v),
           (size_t)(n * v->frame) * sizeof(float));
  g->out_taken += n;
  return n;
}

/* ---- the emission rule, composed ------------------------------------------------ */

/* Steps each value holds in all after n_in input steps: emitted
 * (final = false) or the one-shot length (final = true). */
static int64_t compose(const ct_graph *g, int64_t n_in, bool final) {
  const ct_network *net = g->net;
  int64_t stack[64], *totals = net->n_values <= 64
                                   ? stack
                                   : malloc(sizeof(int64_t) * (size_t)net->n_values);
  if (!totals)
    return -1;
  for (int v = 0; v < net->n_values; v++)
    totals[v] = 0;
  totals[net->input] = n_in;
  for (int i = 0; i < net->n_nodes; i++) {
    const graph_node *node = &g->nodes[i];
    int64_t n = INT64_MAX;
    for (int k = 0; k < node->desc->n_inputs; k++)
      if (totals[node->desc->inputs[k]] < n)
        n = totals[node->desc->inputs[k]];
    if (node->stage)
      n = final ? ct_stage_length(node->stage, n) : ct_stage_emitted(node->stage, n);
    for (int o = 0; o < node->desc->n_outputs; o++)
      totals[node->desc->outputs[o]] = n;
  }
  const int64_t result = totals[net->output];
  if (totals != stack)
    free(totals);
  return result;
}

/* The latency: the most the output lags the input, over enough signal
 * lengths to cover every stage's transient and a whole period. */
static void measure_latency(ct_graph *g) {
  const value_buf *out = &g->values[g->net->output];
  const int64_t up = out->rate_up, down = out->rate_down;
  int64_t most = 0; /* in output steps x down */
  for (int64_t n = 1; n <= 4096; n++) {
    const int64_t lag = n * up - compose(g, n, false) * down;
    if (lag > most)
      most = lag;
  }
  g->latency_out = (most + down - 1) / down;
  g->latency_in = (g->latency_out * down + up - 1) / up;
}

/* ---- the stage --------------------------------------------------------------------- */

static ct_status graph_push(ct_stage *stage, const float *in, int64_t in_chan_stride,
                            int64_t n_steps, float *out, int64_t out_chan_stride,
                            int64_t *n_out) {
  ct_graph *g = (ct_graph *)stage;
  *n_out = 0;
  g->error[0] = 0;
  if (n_steps < 0)
    return CT_ERR_INVALID;
  value_buf *v = &g->values[g->net->input];
  if (!make_room(v, n_steps))
    return CT_ERR_NOMEM;
  for (int64_t c = 0; n_steps > 0 && c < v->channels; c++)
    memcpy(v->data + c * chan_stride(v) + held(v) * v->frame, in + c * in_chan_stride,
           (size_t)(n_steps * v->frame) * sizeof(float));
  v->total += n_steps;
  g->n_in += n_steps;
  ct_status status = run_nodes(g, false);
  if (status == CT_OK) {
    *n_out = hand_out(g, out, out_chan_stride);
    g->n_out += *n_out;
  }
  drop_taken(g);
  return status;
}

static void graph_reset(ct_stage *stage) {
  ct_graph *g = (ct_graph *)stage;
  for (int v = 0; v < g->net->n_values; v++)
    g->values[v].first = g->values[v].total = 0;
  for (int i = 0; i < g->net->n_nodes; i++) {
    g->nodes[i].taken[0] = g->nodes[i].taken[1] = 0;
    if (g->nodes[i].stage)
      ct_stage_reset(g->nodes[i].stage);
  }
  g->out_taken = g->n_in = g->n_out = 0;
}

static ct_status graph_finish(ct_stage *stage, float *out, int64_t out_chan_stride,
                              int64_t *n_out) {
  ct_graph *g = (ct_graph *)stage;
  g->error[0] = 0;
  ct_status status = g->n_in > 0 ? run_nodes(g, true) : CT_OK;
  *n_out = status == CT_OK ? hand_out(g, out, out_chan_stride) : 0;
  graph_reset(stage);
  return status;
}

static int64_t graph_emitted(const ct_stage *stage, int64_t n_in) {
  return compose((const ct_graph *)stage, n_in, false);
}

static int64_t graph_length(const ct_stage *stage, int64_t n_in) {
  return n_in > 0 ? compose((const ct_graph *)stage, n_in, true) : 0;
}

static int64_t graph_push_out_steps(const ct_stage *stage, int64_t n_steps) {
  const ct_graph *g = (const ct_graph *)stage;
  const int64_t e = compose(g, g->n_in + n_steps, false);
  return e < 0 ? -1 : e - g->n_out;
}

static int64_t graph_finish_out_steps(const ct_stage *stage) {
  const ct_graph *g = (const ct_graph *)stage;
  return g->n_in > 0 ? compose(g, g->n_in, true) - g->n_out : 0;
}

static ct_status graph_use_pool(ct_stage *stage, ct_pool *pool) {
  ct_graph *g = (ct_graph *)stage;
  for (int i = 0; i < g->net->n_nodes; i++)
    if (g->nodes[i].stage) {
      ct_status status = ct_stage_use_pool(g->nodes[i].stage, pool);
      if (status != CT_OK)
        return status;
    }
  return CT_OK;
}

static void graph_destroy(ct_stage *stage) {
  ct_graph_free((ct_graph *)stage);
}

static const ct_stage_ops graph_stage_ops = {
    .kind = "graph",
    .push = graph_push,
    .finish = graph_finish,
    .reset = graph_reset,
    .push_out_steps = graph_push_out_steps,
    .finish_out_steps = graph_finish_out_steps,
    .emitted = graph_emitted,
    .length = graph_length,
    .use_pool = graph_use_pool,
    .destroy = graph_destroy,
};

/* ---- planning ------------------------------------------------------------------------
 */

/* A convolution as the transposed convolution it equals: stride 1, the
 * kernel flipped on every axis and its input and output channels swapped
 * per group, cropped by (k - 1) * d - p. */
static ct_layer *conv_as_transposed(const ct_network *net, const ct_node *d, char *msg,
                                    size_t msg_size) {
  const int rank = net->rank;
  const int64_t cin = net->values[d->inputs[0]].channels;
  const int64_t cout = net->values[d->outputs[0]].channels;
  const int64_t g = d->groups > 0 ? d->groups : 1;
  ct_params p;
  ct_params_init(&p, rank);
  p.in_channels = cin;
  p.out_channels = cout;
  p.groups = g;
  int64_t taps = 1;
  for (int a = 0; a < rank; a++) {
    if (d->stride[a] != 1) {
      node_msg(msg, msg_size, d, "strided convolutions are not streamed yet");
      return NULL;
    }
    if (d->pad_begin[a] != d->pad_end[a] ||
        d->pad_begin[a] > d->dilation[a] * (d->kernel[a] - 1)) {
      node_msg(msg, msg_size, d,
               "asymmetric padding, or padding past the kernel's reach, is not streamed "
               "yet");
      return NULL;
    }
    p.kernel[a] = d->kernel[a];
    p.dilation[a] = d->dilation[a];
    p.padding[a] = d->dilation[a] * (d->kernel[a] - 1) - d->pad_begin[a];
    taps *= d->kernel[a];
  }
  const int64_t cin_g = cin / g, cout_g = cout / g;
  float *w = malloc(sizeof(float) * (size_t)(cin * cout_g * taps));
  if (!w) {
    node_msg(msg, msg_size, d, "out of memory");
    return NULL;
  }
  /* ONNX [Cout][Cin/g][taps] -> PyTorch transposed [Cin][Cout/g][taps], taps reversed
   * (row-major over the axes: reversing the flat tap index reverses each axis). */
  for (int64_t co = 0; co < cout; co++)
    for (int64_t ci_l = 0; ci_l < cin_g; ci_l++)
      for (int64_t t = 0; t < taps; t++) {
        const int64_t grp = co / cout_g, ci = grp * cin_g + ci_l, co_l = co % cout_g;
        w[(ci * cout_g + co_l) * taps + (taps - 1 - t)] =
            d->weight[(co * cin_g + ci_l) * taps + t];
      }
  ct_layer *layer = ct_layer_new(&p, w, d->bias, msg, msg_size);
  free(w);
  return layer;
}

/* An ONNX ConvTranspose as the project's (PyTorch's): the start crop is
 * pad_begin; an uneven end crop becomes output_padding + pad_begin -
 * pad_end, or, where that is negative, a crop of the outputs after
 * (*crop, per axis, <= 0). */
static ct_layer *transposed(const ct_network *net, const ct_node *d, int64_t *crop,
                            char *msg, size_t msg_size) {
  ct_params p;
  ct_params_init(&p, net->rank);
  p.in_channels = net->values[d->inputs[0]].channels;
  p.out_channels = net->values[d->outputs[0]].channels;
  p.groups = d->groups > 0 ? d->groups : 1;
  for (int a = 0; a < net->rank; a++) {
    const int64_t op = d->output_padding[a] + d->pad_begin[a] - d->pad_end[a];
    const int64_t most = d->stride[a] > d->dilation[a] ? d->stride[a] : d->dilation[a];
    if (op >= most) {
      node_msg(msg, msg_size, d,
               "its padding ends less than its output padding adds: not streamed yet");
      return NULL;
    }
    crop[a] = op < 0 ? op : 0;
    p.kernel[a] = d->kernel[a];
    p.stride[a] = d->stride[a];
    p.padding[a] = d->pad_begin[a];
    p.output_padding[a] = op < 0 ? 0 : op;
    p.dilation[a] = d->dilation[a];
  }
  return ct_layer_new(&p, d->weight, d->bias, msg, msg_size);
}

/* Whether a convolution runs on a transposed-convolution stream (the fast
 * path): stride 1 and symmetric padding within the kernel's reach on every
 * axis. */
static bool runs_as_transposed(const ct_network *net, const ct_node *d) {
  for (int a = 0; a < net->rank; a++)
    if (d->stride[a] != 1 || d->pad_begin[a] != d->pad_end[a] ||
        d->pad_begin[a] > d->dilation[a] * (d->kernel[a] - 1))
      return false;
  return true;
}

/* A strided or unevenly padded convolution, or a pool, as a window stage. */
static bool plan_window(const ct_network *net, const ct_node *d, graph_node *node,
                        const value_buf *in, char *msg, size_t msg_size) {
  ct_window_params p = {.rank = net->rank,
                        .in_channels = in->channels,
                        .out_channels = net->values[d->outputs[0]].channels,
                        .ceil_mode = d->ceil_mode,
                        .count_include_pad = d->count_include_pad,
                        .weight = d->weight,
                        .bias = d->bias};
  p.op = d->kind == CT_NODE_CONV       ? CT_WINDOW_CONV
         : d->kind == CT_NODE_MAX_POOL ? CT_WINDOW_MAX
                                       : CT_WINDOW_AVERAGE;
  p.groups = d->kind == CT_NODE_CONV ? (d->groups > 0 ? d->groups : 1) : in->channels;
  for (int a = 0; a < net->rank; a++) {
    p.kernel[a] = d->kernel[a];
    p.stride[a] = d->stride[a];
    p.dilation[a] = d->dilation[a];
    p.pad_begin[a] = d->pad_begin[a];
    p.pad_end[a] = d->pad_end[a];
  }
  char why[256];
  ct_window *w = ct_window_new(&p, in->frame_shape, why, sizeof why);
  if (!w) {
    node_msg(msg, msg_size, d, why);
    return false;
  }
  node->stage = ct_window_stage(w);
  return true;
}

static bool plan_node(ct_graph *g, int i, char *msg, size_t msg_size) {
  const ct_network *net = g->net;
  const ct_node *d = &net->nodes[i];
  graph_node *node = &g->nodes[i];
  node->desc = d;
  for (int k = 0; k < d->n_inputs; k++)
    if (!g->values[d->inputs[k]].shaped) {
      node_msg(msg, msg_size, d, "reads a value no earlier node makes");
      return false;
    }
  const value_buf *in = &g->values[d->inputs[0]];
  int64_t shape[CT_MAX_RANK - 1] = {0};
  memcpy(shape, in->frame_shape, sizeof shape);
  int64_t up = in->rate_up, down = in->rate_down;
  switch (d->kind) {
  case CT_NODE_CONV:
  case CT_NODE_CONV_TRANSPOSE: {
    if (d->kind == CT_NODE_CONV && !runs_as_transposed(net, d)) {
      if (!plan_window(net, d, node, in, msg, msg_size))
        return false;
    } else {
      int64_t crop[CT_MAX_RANK] = {0};
      node->layer = d->kind == CT_NODE_CONV ? conv_as_transposed(net, d, msg, msg_size)
                                            : transposed(net, d, crop, msg, msg_size);
      if (!node->layer)
        return false;
      char why[256];
      ct_stream *stream = ct_stream_new(node->layer, in->frame_shape, why, sizeof why);
      if (!stream) {
        node_msg(msg, msg_size, d, why);
        return false;
      }
      node->stage = ct_stream_stage(stream);
      if (crop[0] || crop[1] || crop[2]) { /* the uneven end, cropped after */
        int64_t before[CT_MAX_RANK + 1] = {0}, after[CT_MAX_RANK + 1] = {0};
        for (int a = 0; a < net->rank; a++)
          after[a + 1] = crop[a];
        ct_stage *stages[2] = {node->stage, NULL};
        stages[1] =
            ct_pad_new(net->rank, node->stage->out_channels, node->stage->out_frame_shape,
                       before, after, 0.0f, why, sizeof why);
        node->stage = stages[1] ? ct_chain_new(stages, 2, why, sizeof why) : NULL;
        if (!stages[1])
          ct_stage_free(stages[0]);
        if (!node->stage) {
          node_msg(msg, msg_size, d, why);
          return false;
        }
      }
    }
    memcpy(shape, node->stage->out_frame_shape, sizeof shape);
    if (!ct_rate_compose(&up, &down, node->stage->rate_up, node->stage->rate_down)) {
      node_msg(msg, msg_size, d, "the rate of the graph up to here overflows");
      return false;
    }
    break;
  }
  case CT_NODE_MAX_POOL:
  case CT_NODE_AVERAGE_POOL:
  case CT_NODE_PAD:
  case CT_NODE_DEPTH_TO_SPACE: {
    char why[256] = "";
    if (d->kind == CT_NODE_PAD)
      node->stage =
          ct_pad_new(net->rank, in->channels, in->frame_shape, d->pad_axes_begin,
                     d->pad_axes_end, d->pad_value, why, sizeof why);
    else if (d->kind == CT_NODE_DEPTH_TO_SPACE)
      node->stage =
          net->rank == 2
              ? ct_depth_to_space_new(in->channels, in->frame_shape, d->block_size,
                                      d->depth_to_space_mode == CT_DEPTH_TO_SPACE_DCR
                                          ? CT_D2S_DCR
                                          : CT_D2S_CRD,
                                      why, sizeof why)
              : NULL;
    else if (!plan_window(net, d, node, in, msg, msg_size))
      return false;
    if (!node->stage) {
      node_msg(msg, msg_size, d,
               why[0] ? why : "DepthToSpace is streamed for 2d signals only");
      return false;
    }
    if (node->stage->out_channels != net->values[d->outputs[0]].channels) {
      node_msg(msg, msg_size, d, "makes another channel count than the file says");
      return false;
    }
    memcpy(shape, node->stage->out_frame_shape, sizeof shape);
    if (!ct_rate_compose(&up, &down, node->stage->rate_up, node->stage->rate_down)) {
      node_msg(msg, msg_size, d, "the rate of the graph up to here overflows");
      return false;
    }
    break;
  }
  case CT_NODE_UNARY:
  case CT_NODE_AFFINE:
  case CT_NODE_SPLIT:
    break;
  case CT_NODE_BINARY:
  case CT_NODE_CONCAT:
    for (int k = 1; k < d->n_inputs; k++) {
      const value_buf *other = &g->values[d->inputs[k]];
      if (memcmp(other->frame_shape, in->frame_shape, sizeof shape) != 0 ||
          other->rate_up * in->rate_down != in->rate_up * other->rate_down ||
          (d->kind == CT_NODE_BINARY && other->channels != in->channels)) {
        node_msg(msg, msg_size, d, "joins values of different shapes");
        return false;
      }
    }
    break;
  default:
    node_msg(msg, msg_size, d, "this operation is not streamed yet");
    return false;
  }
  for (int o = 0; o < d->n_outputs; o++) {
    value_buf *out = &g->values[d->outputs[o]];
    memcpy(out->frame_shape, shape, sizeof shape);
    out->frame = 1;
    for (int a = 0; a + 1 < net->rank; a++)
      out->frame *= shape[a];
    out->rate_up = up;
    out->rate_down = down;
    out->shaped = true;
  }
  return true;
}

/* Values that meet must have the same length for some signal (a U-Net
 * joins its branches for inputs a multiple of its downsampling only; the
 * others are refused when they end, see run_nodes). */
static bool lengths_agree(const ct_graph *g, char *msg, size_t msg_size) {
  const ct_network *net = g->net;
  int64_t *len = malloc(sizeof(int64_t) * (size_t)net->n_values);
  if (!len)
    return false;
  bool ok = false;
  const ct_node *mismatch = NULL;
  for (int64_t n = 1; !ok && n <= 256; n++) {
    for (int v = 0; v < net->n_values; v++)
      len[v] = 0;
    len[net->input] = n;
    ok = true;
    for (int i = 0; i < net->n_nodes; i++) {
      const graph_node *node = &g->nodes[i];
      const int64_t l = len[node->desc->inputs[0]];
      for (int k = 1; k < node->desc->n_inputs; k++)
        if (len[node->desc->inputs[k]] != l) {
          mismatch = mismatch ? mismatch : node->desc;
          ok = false;
        }
      const int64_t out = node->stage ? ct_stage_length(node->stage, l) : l;
      for (int o = 0; o < node->desc->n_outputs; o++)
        len[node->desc->outputs[o]] = out;
    }
  }
  free(len);
  if (!ok && mismatch)
    node_msg(msg, msg_size, mismatch,
             "joins branches whose lengths differ for every input length");
  return ok;
}

ct_graph *ct_graph_new(const ct_network *net, const int64_t *frame_shape, char *msg,
                       size_t msg_size) {
  ct_graph *g = calloc(1, sizeof *g);
  if (!g)
    return NULL;
  g->net = net;
  g->nodes = calloc((size_t)(net->n_nodes > 0 ? net->n_nodes : 1), sizeof *g->nodes);
  g->values = calloc((size_t)net->n_values, sizeof *g->values);
  if (!g->nodes || !g->values || net->input < 0 || net->input >= net->n_values) {
    ct_graph_free(g);
    return NULL;
  }
  for (int v = 0; v < net->n_values; v++) {
    g->values[v].channels = net->values[v].channels;
    g->values[v].rate_up = g->values[v].rate_down = 1;
  }
  value_buf *in = &g->values[net->input];
  in->frame = 1;
  for (int a = 0; a + 1 < net->rank; a++) {
    in->frame_shape[a] = frame_shape[a];
    in->frame *= frame_shape[a];
  }
  in->shaped = true;
  bool ok = true;
  for (int i = 0; ok && i < net->n_nodes; i++)
    ok = plan_node(g, i, msg, msg_size);
  ok = ok && lengths_agree(g, msg, msg_size);
  if (!ok) {
    ct_graph_free(g);
    return NULL;
  }
  const value_buf *out = &g->values[net->output];
  ct_stage *s = &g->stage;
  s->ops = &graph_stage_ops;
  s->rank = net->rank;
  s->in_channels = in->channels;
  s->out_channels = out->channels;
  memcpy(s->in_frame_shape, in->frame_shape, sizeof s->in_frame_shape);
  memcpy(s->out_frame_shape, out->frame_shape, sizeof s->out_frame_shape);
  s->in_frame = in->frame;
  s->out_frame = out->frame;
  s->rate_up = out->rate_up;
  s->rate_down = out->rate_down;
  measure_latency(g);
  s->latency_out_steps = g->latency_out;
  s->latency_in_steps = g->latency_in;
  return g;
}

void ct_graph_free(ct_graph *graph) {
  if (!graph)
    return;
  for (int i = 0; graph->nodes && i < graph->net->n_nodes; i++) {
    ct_stage_free(graph->nodes[i].stage);
    ct_layer_free(graph->nodes[i].layer);
  }
  for (int v = 0; graph->values && v < graph->net->n_values; v++)
    free(graph->values[v].data);
  free(graph->nodes);
  free(graph->values);
  free(graph);
}

const char *ct_graph_error(const ct_graph *graph) {
  return graph->error;
}

ct_stage *ct_graph_stage(ct_graph *graph) {
  return &graph->stage;
}

int64_t ct_graph_latency_output_steps(const ct_graph *graph) {
  return graph->latency_out;
}

int64_t ct_graph_latency_input_steps(const ct_graph *graph) {
  return graph->latency_in;
}

ct_status ct_graph_forward(ct_graph *graph, const float *in, int64_t n_steps, float *out,
                           int64_t *n_out) {
  ct_stage *s = &graph->stage;
  graph_reset(s);
  const int64_t total = graph_length(s, n_steps);
  int64_t pushed = 0, tail = 0;
  ct_status status = graph_push(s, in, n_steps * s->in_frame, n_steps, out,
                                total * s->out_frame, &pushed);
  if (status == CT_OK)
    status = graph_finish(s, out + pushed * s->out_frame, total * s->out_frame, &tail);
  *n_out = pushed + tail;
  return status;
}
