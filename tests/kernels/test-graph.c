/* The graph engine: random networks (sequential and with branches that meet
 * at different delays, 1d/2d/3d, every convolution parameter the engine
 * streams) against a plain reference evaluation of the whole signal, and
 * streamed in random chunks (0 and 1 included) on 1-3 threads bitwise
 * against the graph's own one-shot output; the latency the graph reports
 * against the largest lag measured on a stream. TAP. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/graph.h"
#include "kernels/pool.h"
#include "kernels/reference.h"
#include "tests/tap.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int64_t rand_int(int64_t lo, int64_t hi) { /* [lo, hi] */
  return lo + (int64_t)(next_random() % (uint64_t)(hi - lo + 1));
}

static float rand_float(float lo, float hi) {
  return lo + (hi - lo) * (float)(next_random() >> 40) / (float)(1 << 24);
}

/* ---- a network built in memory ---- */

typedef struct {
  ct_network net;
  ct_node nodes[32];
  ct_value values[40];
  int io[32][4]; /* inputs then outputs of each node */
  float *owned[64];
  int n_owned;
  bool even_only; /* a U-Net: its branches meet for even lengths only */
} built_net;

static float *owned_floats(built_net *b, int64_t n, float lo, float hi) {
  float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  for (int64_t i = 0; i < n; i++)
    p[i] = rand_float(lo, hi);
  b->owned[b->n_owned++] = p;
  return p;
}

static int new_value(built_net *b, int64_t channels) {
  const int v = b->net.n_values++;
  b->values[v].channels = channels;
  b->values[v].name = NULL;
  return v;
}

static ct_node *new_node(built_net *b, ct_node_kind kind, const char *op, int in0,
                         int in1, int64_t out_channels) {
  const int i = b->net.n_nodes++;
  ct_node *n = &b->nodes[i];
  memset(n, 0, sizeof *n);
  n->kind = kind;
  n->op = op;
  n->index = i;
  n->inputs = b->io[i];
  n->outputs = b->io[i] + 2;
  n->inputs[0] = in0;
  n->n_inputs = 1;
  if (in1 >= 0) {
    n->inputs[1] = in1;
    n->n_inputs = 2;
  }
  n->outputs[0] = new_value(b, out_channels);
  n->n_outputs = 1;
  for (int a = 0; a < CT_MAX_RANK; a++)
    n->kernel[a] = n->stride[a] = n->dilation[a] = 1;
  n->groups = 1;
  return n;
}

static void free_built(built_net *b) {
  for (int i = 0; i < b->n_owned; i++)
    free(b->owned[i]);
}

/* A stride-1 convolution with symmetric padding the engine streams; `same`:
 * an odd kernel padded to keep the length (a residual branch). */
static int add_conv(built_net *b, int in, int64_t cout, int rank, bool same) {
  const int64_t cin = b->values[in].channels;
  const int64_t g = (cin % 2 == 0 && cout % 2 == 0 && rand_int(0, 3) == 0) ? 2 : 1;
  ct_node *n = new_node(b, CT_NODE_CONV, "Conv", in, -1, cout);
  int64_t taps = 1;
  for (int a = 0; a < rank; a++) {
    n->kernel[a] =
        same ? 2 * rand_int(0, a == 0 ? 3 : 1) + 1 : rand_int(1, a == 0 ? 5 : 3);
    n->dilation[a] = rand_int(1, 2);
    const int64_t reach = n->dilation[a] * (n->kernel[a] - 1);
    n->pad_begin[a] = n->pad_end[a] = same ? reach / 2 : rand_int(0, reach);
    taps *= n->kernel[a];
  }
  n->groups = g;
  n->weight = owned_floats(b, cout * (cin / g) * taps, -0.5f, 0.5f);
  n->bias = rand_int(0, 1) ? owned_floats(b, cout, -0.2f, 0.2f) : NULL;
  return n->outputs[0];
}

static int add_conv_transpose(built_net *b, int in, int64_t cout, int rank) {
  const int64_t cin = b->values[in].channels;
  ct_node *n = new_node(b, CT_NODE_CONV_TRANSPOSE, "ConvTranspose", in, -1, cout);
  int64_t taps = 1;
  for (int a = 0; a < rank; a++) {
    n->kernel[a] = rand_int(1, 4);
    n->stride[a] = rand_int(1, a == 0 ? 3 : 2);
    n->dilation[a] = rand_int(1, 2);
    n->pad_begin[a] = rand_int(0, (n->dilation[a] * (n->kernel[a] - 1)) / 2);
    /* Uneven crops too, as ONNX allows (an end crop past what the output
     * padding adds is cropped after the stream). */
    n->pad_end[a] = rand_int(0, 2)
                        ? n->pad_begin[a]
                        : rand_int(0, (n->dilation[a] * (n->kernel[a] - 1)) / 2);
    const int64_t most = n->stride[a] > n->dilation[a] ? n->stride[a] : n->dilation[a];
    n->output_padding[a] = rand_int(0, most - 1);
    if (n->output_padding[a] + n->pad_begin[a] - n->pad_end[a] >= most)
      n->pad_end[a] = n->pad_begin[a];
    taps *= n->kernel[a];
  }
  n->weight = owned_floats(b, cin * cout * taps, -0.5f, 0.5f);
  n->bias = rand_int(0, 1) ? owned_floats(b, cout, -0.2f, 0.2f) : NULL;
  return n->outputs[0];
}

/* Strided or unevenly padded: the window stage. */
static int add_strided_conv(built_net *b, int in, int64_t cout, int rank) {
  const int64_t cin = b->values[in].channels;
  ct_node *n = new_node(b, CT_NODE_CONV, "Conv", in, -1, cout);
  int64_t taps = 1;
  for (int a = 0; a < rank; a++) {
    n->kernel[a] = rand_int(1, 4);
    n->stride[a] = rand_int(1, 3);
    n->dilation[a] = rand_int(1, 2);
    n->pad_begin[a] = rand_int(0, 2);
    n->pad_end[a] = rand_int(0, 2);
    taps *= n->kernel[a];
  }
  n->weight = owned_floats(b, cout * cin * taps, -0.5f, 0.5f);
  n->bias = rand_int(0, 1) ? owned_floats(b, cout, -0.2f, 0.2f) : NULL;
  return n->outputs[0];
}

static int add_pool(built_net *b, int in, int rank) {
  const bool max = rand_int(0, 1);
  ct_node *n = new_node(b, max ? CT_NODE_MAX_POOL : CT_NODE_AVERAGE_POOL,
                        max ? "MaxPool" : "AveragePool", in, -1, b->values[in].channels);
  for (int a = 0; a < rank; a++) {
    n->kernel[a] = rand_int(1, 3);
    n->stride[a] = rand_int(1, 2);
    n->dilation[a] = max ? rand_int(1, 2) : 1;
    n->pad_begin[a] = rand_int(0, (n->kernel[a] - 1) / 2 + 1) > n->kernel[a] / 2
                          ? n->kernel[a] / 2
                          : rand_int(0, n->kernel[a] / 2);
    n->pad_end[a] = rand_int(0, n->kernel[a] / 2);
  }
  n->ceil_mode = false;
  n->count_include_pad = rand_int(0, 1);
  return n->outputs[0];
}

static int add_pad(built_net *b, int in, int rank) {
  const int64_t c = b->values[in].channels;
  int64_t before[4] = {0}, after[4] = {0};
  before[0] = rand_int(0, 1);
  after[0] = rand_int(0, 1);
  for (int a = 1; a <= rank; a++) {
    before[a] = rand_int(-1, 2);
    after[a] = rand_int(-1, 2);
  }
  ct_node *n = new_node(b, CT_NODE_PAD, "Pad", in, -1, c + before[0] + after[0]);
  memcpy(n->pad_axes_begin, before, sizeof before);
  memcpy(n->pad_axes_end, after, sizeof after);
  n->pad_value = rand_float(-1, 1);
  return n->outputs[0];
}

static int add_depth_to_space(built_net *b, int in) {
  const int64_t c = b->values[in].channels;
  ct_node *n = new_node(b, CT_NODE_DEPTH_TO_SPACE, "DepthToSpace", in, -1, c / 4);
  n->block_size = 2;
  n->depth_to_space_mode = rand_int(0, 1) ? CT_DEPTH_TO_SPACE_DCR : CT_DEPTH_TO_SPACE_CRD;
  return n->outputs[0];
}

static int add_unary(built_net *b, int in) {
  static const ct_unary_op ops[] = {CT_UNARY_RELU,    CT_UNARY_LEAKY_RELU, CT_UNARY_TANH,
                                    CT_UNARY_SIGMOID, CT_UNARY_SIN,        CT_UNARY_CLIP,
                                    CT_UNARY_ELU,     CT_UNARY_SOFTSIGN,   CT_UNARY_ABS};
  ct_node *n = new_node(b, CT_NODE_UNARY, "Unary", in, -1, b->values[in].channels);
  n->op_code = ops[rand_int(0, sizeof ops / sizeof ops[0] - 1)];
  n->alpha = 0.1f;
  n->clip_min = -0.5f;
  n->clip_max = 0.7f;
  return n->outputs[0];
}

static int add_binary_constant(built_net *b, int in) {
  const int64_t c = b->values[in].channels;
  ct_node *n = new_node(b, CT_NODE_BINARY, "Mul", in, -1, c);
  n->op_code = rand_int(0, 1) ? CT_BINARY_MUL : CT_BINARY_ADD;
  n->has_constant = true;
  n->constant_second = true;
  for (int a = 0; a < CT_MAX_RANK + 2; a++)
    n->constant.dims[a] = 1;
  n->constant.dims[1] = rand_int(0, 1) ? c : 1;
  n->constant.data = owned_floats(b, n->constant.dims[1], -1.0f, 1.0f);
  return n->outputs[0];
}

/* ---- the plain reference of a whole network ---- */

typedef struct {
  float *data;
  int64_t shape[CT_MAX_RANK]; /* spatial */
  int64_t channels;
} tensor;

static int64_t spatial_size(const int64_t *shape, int rank) {
  int64_t n = 1;
  for (int a = 0; a < rank; a++)
    n *= shape[a];
  return n;
}

static void reference_conv(const ct_node *n, int rank, const tensor *in, tensor *out) {
  const int64_t cin = in->channels, cout = out->channels, g = n->groups;
  const int64_t cin_g = cin / g, cout_g = cout / g;
  int64_t taps = 1;
  for (int a = 0; a < CT_MAX_RANK; a++) {
    const int64_t k = a < rank ? n->kernel[a] : 1, d = a < rank ? n->dilation[a] : 1;
    const int64_t len = a < rank ? in->shape[a] : 1;
    const int64_t span = len + n->pad_begin[a] + n->pad_end[a] - d * (k - 1) - 1;
    const int64_t st = a < rank ? n->stride[a] : 1;
    out->shape[a] = a < rank ? (span < 0 || len <= 0 ? 0 : span / st + 1) : 1;
    if (a < rank)
      taps *= k;
  }
  const int64_t osz = spatial_size(out->shape, CT_MAX_RANK),
                isz = spatial_size(in->shape, rank);
  out->data = calloc((size_t)(cout * osz + 1), sizeof(float));
  const int64_t k1 = rank > 1 ? n->kernel[1] : 1, k2 = rank > 2 ? n->kernel[2] : 1;
  const int64_t l1 = rank > 1 ? in->shape[1] : 1, l2 = rank > 2 ? in->shape[2] : 1;
  for (int64_t co = 0; co < cout; co++)
    for (int64_t j = 0; j < osz; j++) {
      const int64_t j0 = j / (out->shape[1] * out->shape[2]),
                    j1 = (j / out->shape[2]) % out->shape[1], j2 = j % out->shape[2];
      double acc = n->bias ? n->bias[co] : 0.0;
      for (int64_t ci_l = 0; ci_l < cin_g; ci_l++)
        for (int64_t t = 0; t < taps; t++) {
          const int64_t t0 = t / (k1 * k2), t1 = (t / k2) % k1, t2 = t % k2;
          const int64_t i0 = j0 * n->stride[0] + t0 * n->dilation[0] - n->pad_begin[0];
          const int64_t i1 =
              rank > 1 ? j1 * n->stride[1] + t1 * n->dilation[1] - n->pad_begin[1] : 0;
          const int64_t i2 =
              rank > 2 ? j2 * n->stride[2] + t2 * n->dilation[2] - n->pad_begin[2] : 0;
          if (i0 < 0 || i0 >= in->shape[0] || i1 < 0 || i1 >= l1 || i2 < 0 || i2 >= l2)
            continue;
          const int64_t ci = co / cout_g * cin_g + ci_l;
          acc += (double)n->weight[(co * cin_g + ci_l) * taps + t] *
                 in->data[ci * isz + (i0 * l1 + i1) * l2 + i2];
        }
      out->data[co * osz + j] = (float)acc;
    }
}

/* ONNX's ConvTranspose: the full output (no crop, output padding added),
 * then pad_begin cropped at the start and pad_end at the end of each axis. */
static void reference_conv_transpose(const ct_node *n, int rank, const tensor *in,
                                     tensor *out) {
  ct_params p;
  ct_params_init(&p, rank);
  p.in_channels = in->channels;
  p.out_channels = out->channels;
  p.groups = n->groups;
  for (int a = 0; a < rank; a++) {
    p.kernel[a] = n->kernel[a];
    p.stride[a] = n->stride[a];
    p.output_padding[a] = n->output_padding[a];
    p.dilation[a] = n->dilation[a];
  }
  int64_t full[CT_MAX_RANK] = {1, 1, 1};
  ct_output_shape(&p, in->shape, full, NULL, 0);
  for (int a = rank; a < CT_MAX_RANK; a++)
    full[a] = 1;
  const int64_t fsz = spatial_size(full, CT_MAX_RANK);
  float *whole = calloc((size_t)(out->channels * fsz + 1), sizeof(float));
  ct_reference_forward(&p, n->weight, n->bias, in->shape, in->data, whole);
  for (int a = 0; a < CT_MAX_RANK; a++) {
    out->shape[a] = a < rank ? full[a] - n->pad_begin[a] - n->pad_end[a] : 1;
    if (out->shape[a] < 0 || in->shape[0] <= 0)
      out->shape[a] = 0;
  }
  const int64_t osz = spatial_size(out->shape, CT_MAX_RANK);
  out->data = calloc((size_t)(out->channels * osz + 1), sizeof(float));
  const int64_t b0 = n->pad_begin[0], b1 = rank > 1 ? n->pad_begin[1] : 0,
                b2 = rank > 2 ? n->pad_begin[2] : 0;
  for (int64_t c = 0; c < out->channels; c++)
    for (int64_t j = 0; j < osz; j++) {
      const int64_t j0 = j / (out->shape[1] * out->shape[2]),
                    j1 = (j / out->shape[2]) % out->shape[1], j2 = j % out->shape[2];
      out->data[c * osz + j] =
          whole[c * fsz + ((j0 + b0) * full[1] + j1 + b1) * full[2] + j2 + b2];
    }
  free(whole);
}

/* ONNX pools: max over the window's elements inside the signal, average
 * over them (or over the whole window within the padding). */
static void reference_pool(const ct_node *n, int rank, const tensor *in, tensor *out) {
  int64_t taps = 1;
  for (int a = 0; a < CT_MAX_RANK; a++) {
    const int64_t k = a < rank ? n->kernel[a] : 1, d = a < rank ? n->dilation[a] : 1;
    const int64_t len = a < rank ? in->shape[a] : 1, st = a < rank ? n->stride[a] : 1;
    const int64_t span =
        len + (a < rank ? n->pad_begin[a] + n->pad_end[a] : 0) - d * (k - 1) - 1;
    out->shape[a] = a < rank
                        ? (span < 0 || len <= 0
                               ? 0
                               : (n->ceil_mode ? (span + st - 1) / st : span / st) + 1)
                        : 1;
    if (a < rank)
      taps *= k;
  }
  const int64_t osz = spatial_size(out->shape, CT_MAX_RANK),
                isz = spatial_size(in->shape, rank);
  out->data = calloc((size_t)(out->channels * osz + 1), sizeof(float));
  const int64_t k1 = rank > 1 ? n->kernel[1] : 1, k2 = rank > 2 ? n->kernel[2] : 1;
  const int64_t l1 = rank > 1 ? in->shape[1] : 1, l2 = rank > 2 ? in->shape[2] : 1;
  const int64_t lens[3] = {in->shape[0], l1, l2};
  for (int64_t c = 0; c < out->channels; c++)
    for (int64_t j = 0; j < osz; j++) {
      const int64_t js[3] = {j / (out->shape[1] * out->shape[2]),
                             (j / out->shape[2]) % out->shape[1], j % out->shape[2]};
      double acc = n->kind == CT_NODE_MAX_POOL ? -INFINITY : 0;
      int64_t count = 0, padded_count = 0;
      for (int64_t t = 0; t < taps; t++) {
        const int64_t ts[3] = {t / (k1 * k2), (t / k2) % k1, t % k2};
        bool inside = true, in_pad = true;
        int64_t idx[3];
        for (int a = 0; a < CT_MAX_RANK; a++) {
          idx[a] = a < rank
                       ? js[a] * n->stride[a] + ts[a] * n->dilation[a] - n->pad_begin[a]
                       : 0;
          inside = inside && idx[a] >= 0 && idx[a] < lens[a];
          in_pad = in_pad && (a >= rank || idx[a] < lens[a] + n->pad_end[a]);
        }
        padded_count += in_pad;
        if (!inside)
          continue;
        const double v = in->data[c * isz + (idx[0] * l1 + idx[1]) * l2 + idx[2]];
        count++;
        if (n->kind == CT_NODE_MAX_POOL)
          acc = v > acc ? v : acc;
        else
          acc += v;
      }
      if (n->kind == CT_NODE_AVERAGE_POOL) {
        const int64_t div = n->count_include_pad ? padded_count : count;
        acc = div > 0 ? acc / (double)div : 0;
      }
      out->data[c * osz + j] = (float)acc;
    }
}

static void reference_pad(const ct_node *n, int rank, const tensor *in, tensor *out) {
  int64_t before[4] = {0}, after[4] = {0};
  for (int a = 0; a <= rank; a++) {
    before[a] = n->pad_axes_begin[a];
    after[a] = n->pad_axes_end[a];
  }
  out->channels = in->channels + before[0] + after[0];
  for (int a = 0; a < CT_MAX_RANK; a++)
    out->shape[a] = a < rank ? in->shape[a] + before[a + 1] + after[a + 1] : 1;
  if (in->shape[0] <= 0)
    out->shape[0] = 0;
  if (out->shape[0] < 0)
    out->shape[0] = 0;
  const int64_t osz = spatial_size(out->shape, CT_MAX_RANK),
                isz = spatial_size(in->shape, rank);
  out->data = calloc((size_t)(out->channels * osz + 1), sizeof(float));
  const int64_t l1 = rank > 1 ? in->shape[1] : 1, l2 = rank > 2 ? in->shape[2] : 1;
  for (int64_t c = 0; c < out->channels; c++)
    for (int64_t j = 0; j < osz; j++) {
      const int64_t j0 = j / (out->shape[1] * out->shape[2]),
                    j1 = (j / out->shape[2]) % out->shape[1], j2 = j % out->shape[2];
      const int64_t ci = c - before[0], i0 = j0 - before[1],
                    i1 = rank > 1 ? j1 - before[2] : 0,
                    i2 = rank > 2 ? j2 - before[3] : 0;
      const bool inside = ci >= 0 && ci < in->channels && i0 >= 0 && i0 < in->shape[0] &&
                          i1 >= 0 && i1 < l1 && i2 >= 0 && i2 < l2;
      out->data[c * osz + j] =
          inside ? in->data[ci * isz + (i0 * l1 + i1) * l2 + i2] : n->pad_value;
    }
}

static void reference_depth_to_space(const ct_node *n, const tensor *in, tensor *out) {
  const int64_t b = n->block_size, c_out = in->channels / (b * b);
  out->channels = c_out;
  out->shape[0] = in->shape[0] * b;
  out->shape[1] = in->shape[1] * b;
  out->shape[2] = 1;
  const int64_t h = in->shape[0], w = in->shape[1];
  out->data = calloc((size_t)(c_out * out->shape[0] * out->shape[1] + 1), sizeof(float));
  for (int64_t c = 0; c < c_out; c++)
    for (int64_t y = 0; y < h * b; y++)
      for (int64_t x = 0; x < w * b; x++) {
        const int64_t i = y % b, jj = x % b;
        const int64_t ci = n->depth_to_space_mode == CT_DEPTH_TO_SPACE_DCR
                               ? (i * b + jj) * c_out + c
                               : (c * b + i) * b + jj;
        out->data[(c * h * b + y) * w * b + x] = in->data[(ci * h + y / b) * w + x / b];
      }
}

static double reference_unary(const ct_node *n, double x) {
  switch ((ct_unary_op)n->op_code) {
  case CT_UNARY_RELU:
    return x > 0 ? x : 0;
  case CT_UNARY_LEAKY_RELU:
    return x >= 0 ? x : n->alpha * x;
  case CT_UNARY_TANH:
    return tanh(x);
  case CT_UNARY_SIGMOID:
    return 1 / (1 + exp(-x));
  case CT_UNARY_SIN:
    return sin(x);
  case CT_UNARY_CLIP:
    return x < n->clip_min ? n->clip_min : x > n->clip_max ? n->clip_max : x;
  case CT_UNARY_ELU:
    return x > 0 ? x : n->alpha * (exp(x) - 1);
  case CT_UNARY_SOFTSIGN:
    return x / (1 + fabs(x));
  case CT_UNARY_ABS:
    return fabs(x);
  default:
    return x;
  }
}

static double reference_binary(int op, double a, double b) {
  return op == CT_BINARY_ADD ? a + b : op == CT_BINARY_SUB ? a - b : a * b;
}

/* The whole network on [C, L...]: every value as a tensor. */
static tensor reference_network(const built_net *b, const tensor *input) {
  const ct_network *net = &b->net;
  tensor *vals = calloc((size_t)net->n_values, sizeof(tensor));
  vals[net->input] = *input;
  vals[net->input].data = malloc(
      sizeof(float) * (size_t)(input->channels * spatial_size(input->shape, net->rank)));
  memcpy(vals[net->input].data, input->data,
         sizeof(float) *
             (size_t)(input->channels * spatial_size(input->shape, net->rank)));
  for (int i = 0; i < net->n_nodes; i++) {
    const ct_node *n = &net->nodes[i];
    const tensor *in = &vals[n->inputs[0]];
    tensor *out = &vals[n->outputs[0]];
    out->channels = net->values[n->outputs[0]].channels;
    if (n->kind == CT_NODE_CONV) {
      reference_conv(n, net->rank, in, out);
      continue;
    }
    if (n->kind == CT_NODE_CONV_TRANSPOSE) {
      reference_conv_transpose(n, net->rank, in, out);
      continue;
    }
    if (n->kind == CT_NODE_MAX_POOL || n->kind == CT_NODE_AVERAGE_POOL) {
      reference_pool(n, net->rank, in, out);
      continue;
    }
    if (n->kind == CT_NODE_PAD) {
      reference_pad(n, net->rank, in, out);
      continue;
    }
    if (n->kind == CT_NODE_DEPTH_TO_SPACE) {
      reference_depth_to_space(n, in, out);
      continue;
    }
    memcpy(out->shape, in->shape, sizeof out->shape);
    const int64_t sz = spatial_size(in->shape, CT_MAX_RANK);
    out->data = malloc(sizeof(float) * (size_t)(out->channels * sz));
    for (int64_t c = 0; c < out->channels; c++)
      for (int64_t j = 0; j < sz; j++) {
        const double x = c < in->channels ? in->data[c * sz + j] : 0;
        double y;
        if (n->kind == CT_NODE_UNARY)
          y = reference_unary(n, x);
        else if (n->kind == CT_NODE_CONCAT)
          y = c < in->channels ? x : vals[n->inputs[1]].data[(c - in->channels) * sz + j];
        else if (n->n_inputs == 2)
          y = reference_binary(n->op_code, x, vals[n->inputs[1]].data[c * sz + j]);
        else
          y = reference_binary(n->op_code, x,
                               n->constant.data[n->constant.dims[1] > 1 ? c : 0]);
        out->data[c * sz + j] = (float)y;
      }
  }
  tensor result = vals[net->output];
  for (int v = 0; v < net->n_values; v++)
    if (v != net->output)
      free(vals[v].data);
  free(vals);
  return result;
}

/* ---- random networks ---- */

/* Sequential or with a branch: conv, activation, (transposed conv,) a
 * residual Add or a Concat that joins the branch back at another delay. */
static void random_network(built_net *b, int rank) {
  memset(b, 0, sizeof *b);
  b->net.rank = rank;
  b->net.nodes = b->nodes;
  b->net.values = b->values;
  const int64_t c0 = rand_int(1, 4);
  b->net.input = new_value(b, c0);
  const int shape = (int)rand_int(0, 4);
  /* A U-Net joins a branch down and up by 2 back to the signal: it keeps an
   * even length even. */
  int x = add_conv(b, b->net.input, rand_int(1, 6), rank, shape == 4);
  if (shape >= 1) { /* a branch that meets again */
    const int skip = x;
    int y = add_unary(b, x);
    y = add_conv(b, y, b->values[x].channels, rank, true);
    if (shape == 4) { /* down by 2 and up by 2 on every axis, then joined */
      ct_node *down = new_node(b, CT_NODE_CONV, "Conv", x, -1, rand_int(1, 4));
      ct_node *up = NULL;
      int64_t taps = 1;
      for (int a = 0; a < rank; a++) {
        down->kernel[a] = 3;
        down->stride[a] = 2;
        down->pad_begin[a] = down->pad_end[a] = 1;
        taps *= 3;
      }
      down->weight = owned_floats(
          b, b->values[down->outputs[0]].channels * b->values[x].channels * taps, -0.5f,
          0.5f);
      y = add_unary(b, down->outputs[0]);
      up = new_node(b, CT_NODE_CONV_TRANSPOSE, "ConvTranspose", y, -1, rand_int(1, 3));
      taps = 1;
      for (int a = 0; a < rank; a++) {
        up->kernel[a] = 4;
        up->stride[a] = 2;
        up->pad_begin[a] = up->pad_end[a] = 1;
        taps *= 4;
      }
      up->weight = owned_floats(
          b, b->values[y].channels * b->values[up->outputs[0]].channels * taps, -0.5f,
          0.5f);
      y = up->outputs[0];
      b->even_only = true;
    }
    if (shape == 1) {
      ct_node *n = new_node(b, CT_NODE_BINARY, "Add", y, skip, b->values[x].channels);
      n->op_code = CT_BINARY_ADD;
      x = n->outputs[0];
    } else {
      ct_node *n = new_node(b, CT_NODE_CONCAT, "Concat", skip, y,
                            b->values[skip].channels + b->values[y].channels);
      x = n->outputs[0];
    }
  }
  x = add_unary(b, x);
  switch (rand_int(0, 5)) { /* the window stage, pads and rows made from depth */
  case 0:
    x = add_strided_conv(b, x, rand_int(1, 4), rank);
    break;
  case 1:
    x = add_pool(b, x, rank);
    break;
  case 2:
    x = add_pad(b, x, rank);
    break;
  case 3:
    if (rank == 2) {
      x = add_conv(b, x, 4 * rand_int(1, 2), rank, true);
      x = add_depth_to_space(b, x);
    }
    break;
  default:
    break;
  }
  x = add_conv_transpose(b, x, rand_int(1, 4), rank);
  if (rand_int(0, 1))
    x = add_binary_constant(b, x);
  if (rand_int(0, 1)) {
    x = add_conv(b, x, rand_int(1, 3), rank, rand_int(0, 1));
    x = add_unary(b, x);
  }
  b->net.output = x;
}

/* The whole input pushed in random chunks (0 and 1 among them) into out. */
static int64_t stream_in_chunks(ct_stage *st, const float *in, int64_t len, float *out,
                                int64_t out_len) {
  int64_t pos = 0, have = 0, n = 0;
  while (pos < len) {
    int64_t chunk = rand_int(0, 4) == 0 ? rand_int(0, 1) : rand_int(2, 9);
    if (chunk > len - pos)
      chunk = len - pos;
    const int64_t want = ct_stage_push_out_steps(st, chunk);
    if (ct_stage_push(st, in + pos * st->in_frame, len * st->in_frame, chunk,
                      out + have * st->out_frame, out_len * st->out_frame, &n) != CT_OK ||
        n != want)
      return -1;
    have += n;
    pos += chunk;
  }
  const int64_t want = ct_stage_finish_out_steps(st);
  if (ct_stage_finish(st, out + have * st->out_frame, out_len * st->out_frame, &n) !=
          CT_OK ||
      n != want)
    return -1;
  return have + n;
}

static void check_random_graphs(int rank, int count, ct_pool *pool2, ct_pool *pool3) {
  int built = 0, agreed = 0, bitwise = 0, refused = 0;
  double worst = 0;
  char first_failure[512] = "";
  for (int trial = 0; trial < count; trial++) {
    built_net b;
    random_network(&b, rank);
    int64_t frame[2] = {rand_int(3, 9), rand_int(3, 8)};
    if (b.even_only) {
      frame[0] += frame[0] % 2;
      frame[1] += frame[1] % 2;
    }
    char msg[256] = "";
    ct_graph *g = ct_graph_new(&b.net, frame, msg, sizeof msg);
    if (!g) {
      if (refused++ < 3)
        tap_diag("%dd trial %d refused: %s", rank, trial, msg);
      free_built(&b);
      continue;
    }
    built++;
    ct_stage *st = ct_graph_stage(g);
    int64_t len = rand_int(1, 40);
    if (b.even_only)
      len += len % 2;
    tensor in = {.channels = b.values[b.net.input].channels};
    in.shape[0] = len;
    for (int a = 1; a < CT_MAX_RANK; a++)
      in.shape[a] = a < rank ? frame[a - 1] : 1;
    const int64_t in_size = in.channels * spatial_size(in.shape, rank);
    in.data = malloc(sizeof(float) * (size_t)in_size);
    for (int64_t i = 0; i < in_size; i++)
      in.data[i] = rand_float(-1, 1);
    const int64_t out_len = ct_stage_length(st, len);
    const int64_t out_size = st->out_channels * out_len * st->out_frame;
    float *one = calloc((size_t)(out_size > 0 ? out_size : 1), sizeof(float));
    float *streamed = calloc((size_t)(out_size > 0 ? out_size : 1), sizeof(float));
    int64_t n_one = 0;
    ct_status status = ct_graph_forward(g, in.data, len, one, &n_one);
    tensor ref = reference_network(&b, &in);
    double max_ref = 1, max_diff = 0;
    const int64_t ref_len = out_len > 0 ? ref.shape[0] : 0;
    for (int64_t i = 0; status == CT_OK && ref_len == out_len && i < out_size; i++) {
      if (fabs(ref.data[i]) > max_ref)
        max_ref = fabs(ref.data[i]);
      if (fabs(ref.data[i] - one[i]) > max_diff)
        max_diff = fabs(ref.data[i] - one[i]);
    }
    if (max_diff / max_ref > worst)
      worst = max_diff / max_ref;
    const bool agrees = status == CT_OK && n_one == out_len && ref_len == out_len &&
                        max_diff <= 1e-4 * max_ref;
    agreed += agrees;
    bool same = agrees;
    for (int threads = 1; same && threads <= 3; threads++) {
      ct_stage_use_pool(st, threads == 1 ? NULL : threads == 2 ? pool2 : pool3);
      memset(streamed, 0, sizeof(float) * (size_t)(out_size > 0 ? out_size : 1));
      same = stream_in_chunks(st, in.data, len, streamed, out_len) == out_len &&
             memcmp(streamed, one, sizeof(float) * (size_t)out_size) == 0;
    }
    ct_stage_use_pool(st, NULL);
    bitwise += same;
    if ((!agrees || !same) && !first_failure[0])
      snprintf(first_failure, sizeof first_failure,
               "trial %d: %d nodes, length %lld, frame %lldx%lld: %s (status %d, %lld of "
               "%lld outputs, reference %lld, diff %g of %g)",
               trial, b.net.n_nodes, (long long)len, (long long)frame[0],
               (long long)frame[1],
               agrees            ? "streamed differs"
               : status != CT_OK ? ct_graph_error(g)
                                 : "one-shot disagrees",
               (int)status, (long long)n_one, (long long)out_len, (long long)ref_len,
               max_diff, max_ref);
    free(ref.data);
    free(in.data);
    free(one);
    free(streamed);
    ct_graph_free(g);
    free_built(&b);
  }
  tap_ok(built > count / 2 && agreed == built,
         "%dd: %d of %d random graphs built, %d agree with the reference (worst %.2g) %s",
         rank, built, count, agreed, worst, first_failure);
  tap_ok(built > count / 2 && bitwise == built,
         "%dd: %d of %d streamed in random chunks on 1-3 threads bitwise as one-shot %s",
         rank, bitwise, built, first_failure);
  (void)refused;
}

/* The latency the graph reports is the largest lag a stream shows. */
static void check_latency(void) {
  int matched = 0, tried = 0;
  for (int trial = 0; trial < 60; trial++) {
    built_net b;
    random_network(&b, 1);
    char msg[256];
    ct_graph *g = ct_graph_new(&b.net, NULL, msg, sizeof msg);
    if (!g) {
      free_built(&b);
      continue;
    }
    tried++;
    ct_stage *st = ct_graph_stage(g);
    const int64_t up = st->rate_up, down = st->rate_down;
    float in[8] = {0}, *out = calloc(4096, sizeof(float) * 8);
    int64_t emitted = 0, n, most = 0;
    for (int64_t pushed = 1; pushed <= 300; pushed++) {
      ct_stage_push(st, in, 1, 1, out, 4096, &n);
      emitted += n;
      const int64_t lag = pushed * up - emitted * down;
      if (lag > most)
        most = lag;
    }
    ct_stage_finish(st, out, 4096, &n);
    matched += (most + down - 1) / down == ct_graph_latency_output_steps(g);
    free(out);
    ct_graph_free(g);
    free_built(&b);
  }
  tap_ok(tried > 30 && matched == tried,
         "the latency of %d of %d random 1d graphs is the largest lag their streams show",
         matched, tried);
}

/* A U-Net (down by 2, up by 2, joined) takes even lengths; an odd one is
 * refused when it ends, naming the node that joins. */
static void check_length_refusal(void) {
  built_net b;
  int tried = 0, refused = 0;
  for (int trial = 0; trial < 200 && tried < 5; trial++) {
    random_network(&b, 1);
    if (!b.even_only) {
      free_built(&b);
      continue;
    }
    char msg[256] = "";
    ct_graph *g = ct_graph_new(&b.net, NULL, msg, sizeof msg);
    if (g) {
      tried++;
      float in[4 * 21] = {0}, out[4096];
      int64_t n = 0;
      const ct_status status = ct_graph_forward(g, in, 21, out, &n);
      refused += status == CT_ERR_INVALID && strstr(ct_graph_error(g), "Concat") &&
                 strstr(ct_graph_error(g), "end at different lengths");
      ct_graph_free(g);
    }
    free_built(&b);
  }
  tap_ok(tried == 5 && refused == 5,
         "%d of %d U-Nets refuse an odd length when it ends, naming the Concat", refused,
         tried);
}

int main(void) {
  ct_pool *pool2 = ct_pool_new(2), *pool3 = ct_pool_new(3);
  check_random_graphs(1, 400, pool2, pool3);
  check_random_graphs(2, 150, pool2, pool3);
  check_random_graphs(3, 60, pool2, pool3);
  check_latency();
  check_length_refusal();
  ct_pool_free(pool2);
  ct_pool_free(pool3);
  return tap_done();
}
