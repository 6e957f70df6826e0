/* Every spatial loop runs over three axes, the ones past the rank of size 1
 * (kernel 1, stride 1, no padding), so one loop nest serves 1d, 2d and 3d. */
#include "tests/model/network-reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R CT_MAX_RANK

static int64_t count_of(const ref_tensor *t) {
  int64_t n = t->n * t->c;
  for (int a = 0; a < R; a++)
    n *= t->s[a];
  return n;
}

static int make(ref_tensor *t, int rank, int64_t n, int64_t c, const int64_t *s) {
  t->rank = rank;
  t->n = n;
  t->c = c;
  for (int a = 0; a < R; a++)
    t->s[a] = a < rank ? s[a] : 1;
  int64_t count = count_of(t);
  t->data = calloc((size_t)(count ? count : 1), sizeof(double));
  return t->data ? 0 : -1;
}

void ref_tensor_clear(ref_tensor *t) {
  free(t->data);
  t->data = NULL;
}

static double *at(const ref_tensor *t, int64_t n, int64_t c, const int64_t *i) {
  return &t->data[(((n * t->c + c) * t->s[0] + i[0]) * t->s[1] + i[1]) * t->s[2] + i[2]];
}

/* Advances i over dims; 0 after the last. */
static int next(int64_t *i, const int64_t *dims) {
  for (int a = R - 1; a >= 0; a--) {
    if (++i[a] < dims[a])
      return 1;
    i[a] = 0;
  }
  return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The node's per-axis window, the unused axes the identity. */
typedef struct {
  int64_t k[R], s[R], d[R], pb[R], pe[R], op[R];
} win;

static win window_of(const ct_node *nd, int rank) {
  win w;
  for (int a = 0; a < R; a++) {
    const int in = a < rank;
    w.k[a] = in ? nd->kernel[a] : 1;
    w.s[a] = in ? nd->stride[a] : 1;
    w.d[a] = in ? nd->dilation[a] : 1;
    w.pb[a] = in ? nd->pad_begin[a] : 0;
    w.pe[a] = in ? nd->pad_end[a] : 0;
    w.op[a] = in ? nd->output_padding[a] : 0;
  }
  return w;
}

static int conv(const ct_node *nd, const ref_tensor *x, ref_tensor *y) {
  const win w = window_of(nd, x->rank);
  const int64_t g = nd->groups, cpg = x->c / g;
  int64_t m = 0, out[R];
  for (int a = 0; a < R; a++)
    out[a] =
        floor_div(x->s[a] + w.pb[a] + w.pe[a] - w.d[a] * (w.k[a] - 1) - 1, w.s[a]) + 1;
  /* Output channels: the weight holds m * cpg * prod(k) values; the node's
   * output value tells m, passed in y->c by the caller. */
  m = y->c;
  if (make(y, x->rank, x->n, m, out) != 0)
    return -1;
  const int64_t mpg = m / g;
  int64_t o[R] = {0}, k[R];
  for (int64_t n = 0; n < x->n; n++)
    for (int64_t oc = 0; oc < m; oc++)
      do {
        double acc = nd->bias ? nd->bias[oc] : 0;
        const int64_t grp = oc / mpg;
        for (int64_t ci = 0; ci < cpg; ci++) {
          memset(k, 0, sizeof k);
          do {
            int64_t p[R], inside = 1;
            for (int a = 0; a < R; a++) {
              p[a] = o[a] * w.s[a] - w.pb[a] + k[a] * w.d[a];
              inside = inside && p[a] >= 0 && p[a] < x->s[a];
            }
            if (!inside)
              continue;
            const int64_t wi =
                (((oc * cpg + ci) * w.k[0] + k[0]) * w.k[1] + k[1]) * w.k[2] + k[2];
            acc += (double)nd->weight[wi] * *at(x, n, grp * cpg + ci, p);
          } while (next(k, w.k));
        }
        *at(y, n, oc, o) = acc;
      } while (next(o, y->s));
  return 0;
}

static int conv_transpose(const ct_node *nd, const ref_tensor *x, ref_tensor *y) {
  const win w = window_of(nd, x->rank);
  const int64_t g = nd->groups, cpg = x->c / g, m = y->c, mpg = m / g;
  int64_t out[R];
  for (int a = 0; a < R; a++)
    out[a] =
        w.s[a] * (x->s[a] - 1) + w.op[a] + w.d[a] * (w.k[a] - 1) + 1 - w.pb[a] - w.pe[a];
  if (make(y, x->rank, x->n, m, out) != 0)
    return -1;
  int64_t i[R] = {0}, k[R], o[R] = {0};
  for (int64_t n = 0; n < x->n; n++)
    for (int64_t oc = 0; oc < m; oc++)
      do
        *at(y, n, oc, o) = nd->bias ? nd->bias[oc] : 0;
      while (next(o, y->s));
  for (int64_t n = 0; n < x->n; n++)
    for (int64_t c = 0; c < x->c; c++)
      do {
        const double v = *at(x, n, c, i);
        const int64_t grp = c / cpg;
        for (int64_t mi = 0; mi < mpg; mi++) {
          memset(k, 0, sizeof k);
          do {
            int64_t j[R], inside = 1;
            for (int a = 0; a < R; a++) {
              j[a] = i[a] * w.s[a] + k[a] * w.d[a] - w.pb[a];
              inside = inside && j[a] >= 0 && j[a] < out[a];
            }
            if (!inside)
              continue;
            const int64_t wi =
                (((c * mpg + mi) * w.k[0] + k[0]) * w.k[1] + k[1]) * w.k[2] + k[2];
            *at(y, n, grp * mpg + mi, j) += (double)nd->weight[wi] * v;
          } while (next(k, w.k));
        }
      } while (next(i, x->s));
  return 0;
}

static int pool(const ct_node *nd, const ref_tensor *x, ref_tensor *y) {
  const win w = window_of(nd, x->rank);
  const int is_max = nd->kind == CT_NODE_MAX_POOL;
  int64_t out[R];
  for (int a = 0; a < R; a++) {
    const int64_t num = x->s[a] + w.pb[a] + w.pe[a] - w.d[a] * (w.k[a] - 1) - 1;
    out[a] = (nd->ceil_mode ? -floor_div(-num, w.s[a]) : floor_div(num, w.s[a])) + 1;
  }
  if (make(y, x->rank, x->n, x->c, out) != 0)
    return -1;
  int64_t o[R] = {0}, k[R];
  for (int64_t n = 0; n < x->n; n++)
    for (int64_t c = 0; c < x->c; c++)
      do {
        double acc = is_max ? -INFINITY : 0, taps = 0;
        memset(k, 0, sizeof k);
        do {
          int64_t p[R], inside = 1, padded = 1;
          for (int a = 0; a < R; a++) {
            p[a] = o[a] * w.s[a] - w.pb[a] + k[a] * w.d[a];
            inside = inside && p[a] >= 0 && p[a] < x->s[a];
            padded = padded && p[a] >= -w.pb[a] && p[a] < x->s[a] + w.pe[a];
          }
          if (inside) {
            const double v = *at(x, n, c, p);
            acc = is_max ? fmax(acc, v) : acc + v;
          }
          taps += nd->count_include_pad ? padded : inside;
        } while (next(k, w.k));
        *at(y, n, c, o) = is_max ? acc : acc / taps;
      } while (next(o, y->s));
  return 0;
}

/* Negative pads crop: what falls outside the output is dropped. */
static int pad(const ct_node *nd, const ref_tensor *x, ref_tensor *y) {
  int64_t out[R], i[R] = {0}, j[R];
  for (int a = 0; a < R; a++) {
    out[a] =
        x->s[a] + (a < x->rank ? nd->pad_axes_begin[a + 1] + nd->pad_axes_end[a + 1] : 0);
    if (out[a] < 1)
      return -1;
  }
  const int64_t c0 = nd->pad_axes_begin[0];
  if (make(y, x->rank, x->n, x->c + c0 + nd->pad_axes_end[0], out) != 0)
    return -1;
  for (int64_t e = 0; e < count_of(y); e++)
    y->data[e] = nd->pad_value;
  for (int64_t n = 0; n < x->n; n++)
    for (int64_t c = 0; c < x->c; c++)
      do {
        int inside = c + c0 >= 0 && c + c0 < y->c;
        for (int a = 0; a < R; a++) {
          j[a] = i[a] + (a < x->rank ? nd->pad_axes_begin[a + 1] : 0);
          inside = inside && j[a] >= 0 && j[a] < out[a];
        }
        if (inside)
          *at(y, n, c + c0, j) = *at(x, n, c, i);
      } while (next(i, x->s));
  return 0;
}

static double unary(const ct_node *nd, double x) {
  const double a = nd->alpha, b = nd->beta, g = nd->gamma;
  switch ((ct_unary_op)nd->op_code) {
  case CT_UNARY_IDENTITY:
    return x;
  case CT_UNARY_RELU:
    return x > 0 ? x : 0;
  case CT_UNARY_LEAKY_RELU:
    return x >= 0 ? x : a * x;
  case CT_UNARY_ELU:
    return x >= 0 ? x : a * (exp(x) - 1);
  case CT_UNARY_SELU:
    return x > 0 ? g * x : g * (a * exp(x) - a);
  case CT_UNARY_CELU:
    return fmax(0, x) + fmin(0, a * (exp(x / a) - 1));
  case CT_UNARY_SIGMOID:
    return 1 / (1 + exp(-x));
  case CT_UNARY_HARD_SIGMOID:
    return fmax(0, fmin(1, a * x + b));
  case CT_UNARY_HARD_SWISH:
    return x * fmax(0, fmin(1, x / 6 + 0.5));
  case CT_UNARY_TANH:
    return tanh(x);
  case CT_UNARY_SOFTPLUS:
    return log(1 + exp(x));
  case CT_UNARY_SOFTSIGN:
    return x / (1 + fabs(x));
  case CT_UNARY_ERF:
    return erf(x);
  case CT_UNARY_CLIP:
    return fmin(fmax(x, nd->clip_min), nd->clip_max);
  case CT_UNARY_NEG:
    return -x;
  case CT_UNARY_ABS:
    return fabs(x);
  case CT_UNARY_SQRT:
    return sqrt(x);
  case CT_UNARY_RECIPROCAL:
    return 1 / x;
  case CT_UNARY_EXP:
    return exp(x);
  case CT_UNARY_LOG:
    return log(x);
  case CT_UNARY_SIN:
    return sin(x);
  case CT_UNARY_COS:
    return cos(x);
  }
  return NAN;
}

static double binary(int op, double a, double b) {
  switch ((ct_binary_op)op) {
  case CT_BINARY_ADD:
    return a + b;
  case CT_BINARY_SUB:
    return a - b;
  case CT_BINARY_MUL:
    return a * b;
  case CT_BINARY_DIV:
    return a / b;
  case CT_BINARY_POW:
    return pow(a, b);
  case CT_BINARY_MAX:
    return a > b ? a : b;
  case CT_BINARY_MIN:
    return a < b ? a : b;
  case CT_BINARY_PRELU:
    return a < 0 ? b * a : a;
  }
  return NAN;
}

static int same_shape(const ref_tensor *a, const ref_tensor *b) {
  int same = a->n == b->n && a->c == b->c;
  for (int d = 0; d < R; d++)
    same = same && a->s[d] == b->s[d];
  return same;
}

static int elementwise(const ct_node *nd, ref_tensor *const *in, ref_tensor *y) {
  const ref_tensor *x = in[0];
  if (make(y, x->rank, x->n, x->c, x->s) != 0)
    return -1;
  if (nd->kind == CT_NODE_BINARY && nd->n_inputs == 2 && !same_shape(in[0], in[1]))
    return -1;
  int64_t i[R] = {0};
  for (int64_t n = 0; n < x->n; n++)
    for (int64_t c = 0; c < x->c; c++)
      do {
        const double v = *at(x, n, c, i);
        double r;
        if (nd->kind == CT_NODE_UNARY) {
          r = unary(nd, v);
        } else if (nd->kind == CT_NODE_AFFINE) {
          r = v * nd->scale[c] + nd->shift[c];
        } else if (nd->n_inputs == 2) {
          r = binary(nd->op_code, v, *at(in[1], n, c, i));
        } else {
          /* A constant [1, 1 or C, 1...]: one value per channel, or one. */
          const double k = nd->constant.data[nd->constant.dims[1] == 1 ? 0 : c];
          r = nd->constant_second ? binary(nd->op_code, v, k) : binary(nd->op_code, k, v);
        }
        *at(y, n, c, i) = r;
      } while (next(i, x->s));
  return 0;
}

static int concat(const ct_node *nd, ref_tensor *const *in, ref_tensor *y) {
  int64_t c = 0;
  for (int j = 0; j < nd->n_inputs; j++) {
    if (in[j]->n != in[0]->n || memcmp(in[j]->s, in[0]->s, sizeof in[0]->s) != 0)
      return -1;
    c += in[j]->c;
  }
  if (make(y, in[0]->rank, in[0]->n, c, in[0]->s) != 0)
    return -1;
  int64_t i[R] = {0};
  for (int64_t n = 0; n < y->n; n++)
    for (int j = 0, base = 0; j < nd->n_inputs; base += (int)in[j]->c, j++)
      for (int64_t ci = 0; ci < in[j]->c; ci++)
        do
          *at(y, n, base + ci, i) = *at(in[j], n, ci, i);
        while (next(i, y->s));
  return 0;
}

static int split(const ct_node *nd, const ref_tensor *x, ref_tensor *out) {
  int64_t base = 0, i[R] = {0};
  for (int j = 0; j < nd->n_outputs; base += nd->split_channels[j], j++) {
    ref_tensor *y = &out[j];
    if (make(y, x->rank, x->n, nd->split_channels[j], x->s) != 0)
      return -1;
    for (int64_t n = 0; n < x->n; n++)
      for (int64_t c = 0; c < y->c; c++)
        do
          *at(y, n, c, i) = *at(x, n, base + c, i);
        while (next(i, x->s));
  }
  return 0;
}

static int depth_to_space(const ct_node *nd, const ref_tensor *x, ref_tensor *y) {
  const int64_t b = nd->block_size, c_out = x->c / (b * b);
  int64_t out[R] = {x->s[0] * b, x->s[1] * b, 1}, i[R] = {0};
  if (make(y, x->rank, x->n, c_out, out) != 0)
    return -1;
  for (int64_t n = 0; n < x->n; n++)
    for (int64_t c = 0; c < x->c; c++)
      do {
        /* DCR: channel (bi * b + bj) * c_out + co; CRD: co * b * b + bi * b + bj. */
        int64_t co, bi, bj;
        if (nd->depth_to_space_mode == CT_DEPTH_TO_SPACE_DCR) {
          co = c % c_out;
          bi = c / c_out / b;
          bj = c / c_out % b;
        } else {
          co = c / (b * b);
          bi = c % (b * b) / b;
          bj = c % b;
        }
        int64_t j[R] = {i[0] * b + bi, i[1] * b + bj, 0};
        *at(y, n, co, j) = *at(x, n, c, i);
      } while (next(i, x->s));
  return 0;
}

int ref_network_run(const ct_network *net, const int64_t *in_shape, const float *in,
                    ref_tensor *out, char *msg, size_t msg_size) {
  ref_tensor *vals = calloc((size_t)net->n_values, sizeof *vals);
  int status = vals ? 0 : -1;
  ref_tensor *x = &vals[net->input];
  if (status == 0)
    status = make(x, net->rank, in_shape[0], in_shape[1], in_shape + 2);
  for (int64_t e = 0; status == 0 && e < count_of(x); e++)
    x->data[e] = in[e];
  for (int i = 0; status == 0 && i < net->n_nodes; i++) {
    const ct_node *nd = &net->nodes[i];
    ref_tensor *ins[64];
    if (nd->n_inputs > 64)
      status = -1;
    for (int j = 0; status == 0 && j < nd->n_inputs; j++)
      ins[j] = &vals[nd->inputs[j]];
    if (status != 0)
      break;
    ref_tensor *y = &vals[nd->outputs[0]];
    y->c = net->values[nd->outputs[0]].channels;
    switch (nd->kind) {
    case CT_NODE_CONV:
      status = conv(nd, ins[0], y);
      break;
    case CT_NODE_CONV_TRANSPOSE:
      status = conv_transpose(nd, ins[0], y);
      break;
    case CT_NODE_MAX_POOL:
    case CT_NODE_AVERAGE_POOL:
      status = pool(nd, ins[0], y);
      break;
    case CT_NODE_PAD:
      status = pad(nd, ins[0], y);
      break;
    case CT_NODE_UNARY:
    case CT_NODE_BINARY:
    case CT_NODE_AFFINE:
      status = elementwise(nd, ins, y);
      break;
    case CT_NODE_CONCAT:
      status = concat(nd, ins, y);
      break;
    case CT_NODE_SPLIT: {
      ref_tensor *parts = calloc((size_t)nd->n_outputs, sizeof *parts);
      status = parts ? split(nd, ins[0], parts) : -1;
      for (int j = 0; parts && j < nd->n_outputs; j++)
        vals[nd->outputs[j]] = parts[j];
      free(parts);
      break;
    }
    case CT_NODE_DEPTH_TO_SPACE:
      status = depth_to_space(nd, ins[0], y);
      break;
    }
    if (status != 0)
      snprintf(msg, msg_size, "node %d (%s) failed: shapes disagree or out of memory",
               nd->index, nd->op);
    if (status == 0 && net->values[nd->outputs[0]].channels != y->c) {
      snprintf(msg, msg_size, "node %d (%s) made %lld channels, the network says %lld",
               nd->index, nd->op, (long long)y->c,
               (long long)net->values[nd->outputs[0]].channels);
      status = -1;
    }
  }
  if (status == 0) {
    *out = vals[net->output];
    vals[net->output].data = NULL;
  }
  for (int v = 0; vals && v < net->n_values; v++)
    ref_tensor_clear(&vals[v]);
  free(vals);
  return status;
}
