/* One translator per operator family. A translator reads the node's
 * attributes (ct_attrs_check first, so none is ignored), takes its
 * constants (weights, bias, pads, bounds) and its values, checks the
 * channel rules, and adds one ct_node (a chain of binary nodes for a Max or
 * Min of more than two inputs) whose outputs are new values. Hyper-
 * parameters are capped at CT_MAX_PARAM so that later arithmetic on them
 * cannot overflow. */
#include "model/onnx-nodes.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model/dtype.h"
#include "model/onnx-attrs.h"
#include "model/onnx-fold.h"
#include "model/onnx-sizes.h"
#include "model/onnx-tensor.h"

static const char *const NO_ATTRS[] = {NULL};

/* ---- inputs and outputs -------------------------------------------------- */

static ct_oname *input(ct_onnx *o, int k, int i) {
  const ct_onode *nd = &o->nodes[k];
  return i < nd->n_inputs ? nd->inputs[i] : NULL;
}

static gint64 channels_of(ct_onnx *o, int v) {
  return ((const ct_value *)o->values->pdata[v])->channels;
}

static const char *value_name(ct_onnx *o, int v) {
  return ct_quote(o->ld, ((const ct_value *)o->values->pdata[v])->name);
}

/* The value input i holds, or -1 with the error set. */
static int value_in(ct_onnx *o, int k, int i, const char *role) {
  const ct_oname *n = input(o, k, i);
  if (!n) {
    ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no %s (input %d)", role, i);
    return -1;
  }
  if (n->value < 0) {
    ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                      "its %s %s is a constant; it must be computed from the graph input",
                      role, ct_quote(o->ld, n->name));
    return -1;
  }
  return n->value;
}

/* Constant input i into *out (NULL when absent and not required). */
static gboolean const_in(ct_onnx *o, int k, int i, const char *role, gboolean required,
                         ct_otensor **out) {
  ct_oname *n = input(o, k, i);
  *out = NULL;
  if (!n) {
    if (required)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no %s (input %d)", role,
                               i);
    return TRUE;
  }
  gboolean failed;
  *out = ct_onnx_constant(o, n, &failed);
  if (failed)
    return FALSE;
  if (!*out)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its %s %s is computed from the graph input; it must be "
                             "known at load (an initializer or a constant)",
                             role, ct_quote(o->ld, n->name));
  return TRUE;
}

/* Output i of node k becomes a value with the given channels. */
static int value_out(ct_onnx *o, int k, int i, gint64 channels) {
  ct_oname *n = o->nodes[k].outputs[i];
  if (!n) {
    /* An output nobody asked for still exists for the node. */
    GString *s = g_string_new(NULL);
    g_string_printf(s, "(output %d of node %d)", i, k);
    return ct_onnx_add_value(o, ct_keep(o->ld, s), channels);
  }
  n->value = ct_onnx_add_value(o, n->name, channels);
  return n->value;
}

gboolean ct_onnx_outputs(ct_onnx *o, int k, int max, const char *why) {
  const ct_onode *nd = &o->nodes[k];
  if (nd->n_outputs < 1 || nd->n_outputs > max)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has %d outputs; %s makes %s%d",
                             nd->n_outputs, nd->proto->op_type, max > 1 ? "at most " : "",
                             max);
  for (int i = 1; i < nd->n_outputs; i++)
    if (nd->outputs[i] && nd->outputs[i]->used)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its output %s (%s) is read, which is not supported",
                               ct_quote(o->ld, nd->outputs[i]->name), why);
  if (!nd->outputs[0])
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "its first output has no name");
  return TRUE;
}

/* Float32 copies of a constant's elements, kept by the network. */
static float *floats_of(ct_onnx *o, const ct_otensor *t) {
  float *f = ct_onnx_keep(o, t->count, sizeof(float));
  if (!f)
    return NULL;
  if (ct_onnx_dtype_is_float(t->dtype))
    ct_otensor_to_f32(t, f);
  else
    for (gint64 i = 0; i < t->count; i++)
      f[i] = ct_f64_to_f32(ct_otensor_f64(t, i));
  return f;
}

/* One scalar of a constant (a tensor of one element) as float32. */
static gboolean scalar_of(ct_onnx *o, int k, const ct_otensor *t, const char *role,
                          float *out) {
  if (t->count != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its %s has dims %s; it must be a single value", role,
                             ct_otensor_dims_text(o, t));
  *out = ct_f64_to_f32(ct_otensor_f64(t, 0));
  return TRUE;
}

static gboolean add_identity(ct_onnx *o, int k, int in) {
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_UNARY, 1, 1);
  if (!n)
    return FALSE;
  n->op_code = CT_UNARY_IDENTITY;
  n->inputs[0] = in;
  n->outputs[0] = value_out(o, k, 0, channels_of(o, in));
  return TRUE;
}

/* ---- unary --------------------------------------------------------------- */

static const struct {
  const char *op;
  ct_unary_op code;
} unary_ops[] = {
    {"Identity", CT_UNARY_IDENTITY},
    {"Dropout", CT_UNARY_IDENTITY},
    {"Relu", CT_UNARY_RELU},
    {"LeakyRelu", CT_UNARY_LEAKY_RELU},
    {"Elu", CT_UNARY_ELU},
    {"Selu", CT_UNARY_SELU},
    {"Celu", CT_UNARY_CELU},
    {"Sigmoid", CT_UNARY_SIGMOID},
    {"HardSigmoid", CT_UNARY_HARD_SIGMOID},
    {"HardSwish", CT_UNARY_HARD_SWISH},
    {"Tanh", CT_UNARY_TANH},
    {"Softplus", CT_UNARY_SOFTPLUS},
    {"Softsign", CT_UNARY_SOFTSIGN},
    {"Erf", CT_UNARY_ERF},
    {"Clip", CT_UNARY_CLIP},
    {"Neg", CT_UNARY_NEG},
    {"Abs", CT_UNARY_ABS},
    {"Sqrt", CT_UNARY_SQRT},
    {"Reciprocal", CT_UNARY_RECIPROCAL},
    {"Exp", CT_UNARY_EXP},
    {"Log", CT_UNARY_LOG},
    {"Sin", CT_UNARY_SIN},
    {"Cos", CT_UNARY_COS},
};

/* Dropout at inference is the identity; in training mode it is random. */
static gboolean dropout_params(ct_onnx *o, int k) {
  static const char *const before12[] = {"ratio", NULL}, *const since12[] = {"seed",
                                                                             NULL};
  if (!ct_attrs_check(o, k, o->opset < 12 ? before12 : since12) ||
      !ct_onnx_outputs(o, k, 2, "Dropout's mask"))
    return FALSE;
  ct_oname *mode = input(o, k, 2);
  if (!mode)
    return TRUE;
  ct_otensor *t;
  if (!const_in(o, k, 2, "training_mode", FALSE, &t))
    return FALSE;
  if (t->count != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its training_mode has dims %s; it must be a single value",
                             ct_otensor_dims_text(o, t));
  if (ct_otensor_f64(t, 0) != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "runs in training mode (random dropout), which a trained "
                             "network does not");
  return TRUE;
}

/* Clip's bounds: attributes before opset 11 (absent: the float range), then
 * constant inputs (absent: no bound). */
static gboolean clip_params(ct_onnx *o, int k, ct_node *n) {
  static const char *const before11[] = {"min", "max", NULL};
  if (o->opset < 11)
    return ct_attrs_check(o, k, before11) &&
           ct_attr_float(o, k, "min", -FLT_MAX, &n->clip_min) &&
           ct_attr_float(o, k, "max", FLT_MAX, &n->clip_max);
  n->clip_min = -INFINITY;
  n->clip_max = INFINITY;
  ct_otensor *t;
  if (!ct_attrs_check(o, k, NO_ATTRS) || !const_in(o, k, 1, "min", FALSE, &t) ||
      (t && !scalar_of(o, k, t, "min", &n->clip_min)) ||
      !const_in(o, k, 2, "max", FALSE, &t) ||
      (t && !scalar_of(o, k, t, "max", &n->clip_max)))
    return FALSE;
  return TRUE;
}

gboolean ct_onnx_unary_params(ct_onnx *o, int k, ct_node *n, gboolean *ok) {
  static const char *const alpha[] = {"alpha", NULL}, *const alpha_gamma[] = {
                                                          "alpha", "gamma", NULL};
  static const char *const alpha_beta[] = {"alpha", "beta", NULL};
  const char *op = o->nodes[k].proto->op_type;
  *ok = TRUE;
  size_t i = 0;
  while (i < G_N_ELEMENTS(unary_ops) && strcmp(unary_ops[i].op, op) != 0)
    i++;
  if (i == G_N_ELEMENTS(unary_ops))
    return FALSE;
  n->op_code = (int)unary_ops[i].code;
  switch (unary_ops[i].code) {
  case CT_UNARY_IDENTITY:
    *ok = strcmp(op, "Dropout") == 0 ? dropout_params(o, k)
                                     : ct_attrs_check(o, k, NO_ATTRS);
    break;
  case CT_UNARY_LEAKY_RELU:
    *ok = ct_attrs_check(o, k, alpha) && ct_attr_float(o, k, "alpha", 0.01f, &n->alpha);
    break;
  case CT_UNARY_ELU:
  case CT_UNARY_CELU:
    *ok = ct_attrs_check(o, k, alpha) && ct_attr_float(o, k, "alpha", 1.0f, &n->alpha);
    break;
  case CT_UNARY_SELU:
    *ok = ct_attrs_check(o, k, alpha_gamma) &&
          ct_attr_float(o, k, "alpha", 1.67326319217681884765625f, &n->alpha) &&
          ct_attr_float(o, k, "gamma", 1.05070102214813232421875f, &n->gamma);
    break;
  case CT_UNARY_HARD_SIGMOID:
    *ok = ct_attrs_check(o, k, alpha_beta) &&
          ct_attr_float(o, k, "alpha", 0.2f, &n->alpha) &&
          ct_attr_float(o, k, "beta", 0.5f, &n->beta);
    break;
  case CT_UNARY_HARD_SWISH:
    /* HardSwish is x * HardSigmoid(x) with alpha 1/6, beta 0.5, fixed. */
    n->alpha = 1.0f / 6.0f;
    n->beta = 0.5f;
    *ok = ct_attrs_check(o, k, NO_ATTRS);
    break;
  case CT_UNARY_CLIP:
    *ok = clip_params(o, k, n);
    break;
  default:
    *ok = ct_attrs_check(o, k, NO_ATTRS);
    break;
  }
  return TRUE;
}

static gboolean is_unary(const char *op) {
  for (size_t i = 0; i < G_N_ELEMENTS(unary_ops); i++)
    if (strcmp(unary_ops[i].op, op) == 0)
      return TRUE;
  return FALSE;
}

static gboolean translate_unary(ct_onnx *o, int k) {
  const char *op = o->nodes[k].proto->op_type;
  const gboolean more = strcmp(op, "Clip") == 0 || strcmp(op, "Dropout") == 0;
  if (!more && !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  /* Clip's and Dropout's other inputs are constants, read with the
   * parameters. */
  if (!more && o->nodes[k].n_inputs != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has %d inputs; %s takes 1",
                             o->nodes[k].n_inputs, op);
  const int in = value_in(o, k, 0, "input");
  ct_node *n = in < 0 ? NULL : ct_onnx_add_node(o, k, CT_NODE_UNARY, 1, 1);
  gboolean ok;
  if (!n || !ct_onnx_unary_params(o, k, n, &ok) || !ok)
    return FALSE;
  n->inputs[0] = in;
  n->outputs[0] = value_out(o, k, 0, channels_of(o, in));
  return TRUE;
}

/* ---- binary -------------------------------------------------------------- */

static const struct {
  const char *op;
  ct_binary_op code;
} binary_ops[] = {
    {"Add", CT_BINARY_ADD}, {"Sub", CT_BINARY_SUB},     {"Mul", CT_BINARY_MUL},
    {"Div", CT_BINARY_DIV}, {"Pow", CT_BINARY_POW},     {"Max", CT_BINARY_MAX},
    {"Min", CT_BINARY_MIN}, {"PRelu", CT_BINARY_PRELU},
};

gboolean ct_onnx_binary_op(const char *op, ct_binary_op *code) {
  for (size_t i = 0; i < G_N_ELEMENTS(binary_ops); i++)
    if (strcmp(binary_ops[i].op, op) == 0) {
      *code = binary_ops[i].code;
      return TRUE;
    }
  return FALSE;
}

static const char *axis_text(ct_onnx *o, int axis) {
  GString *s = g_string_new(NULL);
  if (axis == 0)
    g_string_append(s, "batch axis");
  else if (axis == 1)
    g_string_append(s, "channel axis");
  else if (axis == 2)
    g_string_append(s, "streamed axis");
  else
    g_string_printf(s, "spatial axis %d", axis - 1);
  return ct_keep(o->ld, s);
}

/* A constant operand as ct_constant: broadcast over [N, C, S...], varying
 * at most along the channels, which it has as 1 or as the value has. */
static gboolean make_constant(ct_onnx *o, int k, const ct_oname *cn, const ct_otensor *c,
                              gint64 channels, ct_constant *out) {
  const int r = o->rank + 2;
  const char *q = ct_quote(o->ld, cn->name);
  if (c->count == 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its constant operand %s is empty (dims %s)", q,
                             ct_otensor_dims_text(o, c));
  if (c->rank > r)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its constant operand %s has %d dimensions (dims %s), more "
                             "than the %d of the value it combines with",
                             q, c->rank, ct_otensor_dims_text(o, c), r);
  for (int j = 0; j < r; j++) {
    const gint64 d = j < r - c->rank ? 1 : c->dims[j - (r - c->rank)];
    if (j == 1 && d != 1 && d != channels)
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_NETWORK,
          "its constant operand %s (dims %s) has %lld channels where "
          "the value has %lld",
          q, ct_otensor_dims_text(o, c), (long long)d, (long long)channels);
    if (j != 1 && d != 1)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its constant operand %s (dims %s) varies along the %s; a "
                               "constant may vary only along the channels, the signal "
                               "streams",
                               q, ct_otensor_dims_text(o, c), axis_text(o, j));
    out->dims[j] = d;
  }
  out->data = floats_of(o, c);
  return out->data != NULL;
}

/* An operand of a binary node: a value or a constant. */
typedef struct {
  const ct_oname *name;
  int value;
  ct_otensor *constant;
} operand;

static gboolean emit_binary(ct_onnx *o, int k, ct_binary_op code, const operand *a,
                            const operand *b, gboolean last, int step, operand *result) {
  if (a->value < 0 && b->value < 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "combines two constants (%s, %s) between values; fold them "
                             "before export",
                             ct_quote(o->ld, a->name->name),
                             ct_quote(o->ld, b->name->name));
  if (code == CT_BINARY_PRELU && a->value < 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its input is a constant and its slope is computed from the "
                             "graph input");
  const gboolean both = a->value >= 0 && b->value >= 0;
  const operand *v = a->value >= 0 ? a : b, *c = a->value >= 0 ? b : a;
  const gint64 ch = channels_of(o, v->value);
  if (both && channels_of(o, b->value) != channels_of(o, a->value))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "combines %s (%lld channels) and %s (%lld channels); values "
                             "combined must have the same channels",
                             value_name(o, a->value), (long long)channels_of(o, a->value),
                             value_name(o, b->value),
                             (long long)channels_of(o, b->value));
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_BINARY, both ? 2 : 1, 1);
  if (!n)
    return FALSE;
  n->op_code = (int)code;
  n->inputs[0] = both ? a->value : v->value;
  if (both)
    n->inputs[1] = b->value;
  else {
    n->has_constant = TRUE;
    n->constant_second = c == b;
    if (!make_constant(o, k, c->name, c->constant, ch, &n->constant))
      return FALSE;
  }
  if (last) {
    n->outputs[0] = value_out(o, k, 0, ch);
  } else {
    GString *s = g_string_new(NULL);
    g_string_printf(s, "%s (step %d)", o->nodes[k].outputs[0]->name, step);
    n->outputs[0] = ct_onnx_add_value(o, ct_keep(o->ld, s), ch);
  }
  *result = (operand){.name = o->nodes[k].outputs[0], .value = n->outputs[0]};
  return TRUE;
}

static gboolean translate_binary(ct_onnx *o, int k, ct_binary_op code) {
  const ct_onode *nd = &o->nodes[k];
  const gboolean variadic = code == CT_BINARY_MAX || code == CT_BINARY_MIN;
  if (!ct_attrs_check(o, k, NO_ATTRS) || !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  if (variadic ? nd->n_inputs < 1 : nd->n_inputs != 2)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has %d inputs; %s takes %s",
                             nd->n_inputs, nd->proto->op_type,
                             variadic ? "one or more" : "2");
  operand acc = {0};
  for (int i = 0; i < nd->n_inputs; i++) {
    ct_oname *x = nd->inputs[i];
    if (!x)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "its input %d has no name",
                               i);
    operand next = {.name = x, .value = x->value};
    gboolean failed;
    if (x->value < 0 && !(next.constant = ct_onnx_constant(o, x, &failed)))
      return failed ? FALSE
                    : ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "reads %s, not made",
                                        ct_quote(o->ld, x->name));
    if (i == 0)
      acc = next;
    else if (!emit_binary(o, k, code, &acc, &next, i == nd->n_inputs - 1, i, &acc))
      return FALSE;
  }
  return nd->n_inputs > 1 || add_identity(o, k, acc.value);
}

/* ---- convolutions and pools ---------------------------------------------- */

typedef struct {
  gint64 kernel[CT_MAX_RANK], stride[CT_MAX_RANK], dilation[CT_MAX_RANK];
  gint64 pad_begin[CT_MAX_RANK], pad_end[CT_MAX_RANK], output_padding[CT_MAX_RANK];
  gboolean pads_given;
  const char *auto_pad;
} window;

/* An attribute with one integer per spatial axis (per side with sides),
 * each in [min, CT_MAX_PARAM]; def where absent. */
static gboolean axis_list(ct_onnx *o, int k, const char *name, int sides, gint64 min,
                          gint64 def, gint64 *out, gboolean *given) {
  const int want = o->rank * sides;
  gint64 v[2 * CT_MAX_RANK];
  int n;
  if (!ct_attr_ints(o, k, name, v, 2 * CT_MAX_RANK, &n))
    return FALSE;
  if (given)
    *given = n >= 0;
  if (n < 0) {
    for (int i = 0; i < want; i++)
      out[i] = def;
    return TRUE;
  }
  if (n != want)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "attribute %s has %d values; with %d spatial axes it needs %d",
        ct_quote(o->ld, name), n, o->rank, want);
  for (int i = 0; i < n; i++) {
    if (v[i] < min || v[i] > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "attribute %s holds %lld; it must be %lld to %lld",
                               ct_quote(o->ld, name), (long long)v[i], (long long)min,
                               (long long)CT_MAX_PARAM);
    out[i] = v[i];
  }
  return TRUE;
}

/* strides, dilations, pads and auto_pad, as Conv, ConvTranspose and the
 * pools share them. */
static gboolean read_window(ct_onnx *o, int k, window *w) {
  gint64 pads[2 * CT_MAX_RANK];
  if (!axis_list(o, k, "strides", 1, 1, 1, w->stride, NULL) ||
      !axis_list(o, k, "dilations", 1, 1, 1, w->dilation, NULL) ||
      !axis_list(o, k, "pads", 2, 0, 0, pads, &w->pads_given) ||
      !ct_attr_string(o, k, "auto_pad", "NOTSET", &w->auto_pad))
    return FALSE;
  for (int a = 0; a < o->rank; a++) {
    w->pad_begin[a] = pads[a];
    w->pad_end[a] = pads[o->rank + a];
  }
  const char *ap = w->auto_pad;
  if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0 &&
      strcmp(ap, "SAME_UPPER") != 0 && strcmp(ap, "SAME_LOWER") != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "auto_pad %s is not NOTSET, VALID, SAME_UPPER or SAME_LOWER",
                             ct_quote(o->ld, ap));
  if (strcmp(ap, "NOTSET") != 0 && w->pads_given)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "gives both pads and auto_pad %s, which ONNX forbids", ap);
  if (strcmp(ap, "VALID") == 0)
    for (int a = 0; a < o->rank; a++)
      w->pad_begin[a] = w->pad_end[a] = 0;
  return TRUE;
}

/* SAME for a convolution or a pool: the output as long as the input over
 * stride, which fixes the padding only when every stride is 1 (otherwise it
 * depends on the input's length). */
static gboolean resolve_same(ct_onnx *o, int k, window *w) {
  const gboolean upper = strcmp(w->auto_pad, "SAME_UPPER") == 0;
  if (!upper && strcmp(w->auto_pad, "SAME_LOWER") != 0)
    return TRUE;
  for (int a = 0; a < o->rank; a++) {
    if (w->stride[a] != 1)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "auto_pad %s with stride %lld pads by an amount that "
                               "depends on the input's length, which streaming does not "
                               "know; export with explicit pads",
                               w->auto_pad, (long long)w->stride[a]);
    const gint64 total = (w->kernel[a] - 1) * w->dilation[a];
    /* SAME_UPPER puts the odd one at the end, SAME_LOWER at the start. */
    w->pad_begin[a] = upper ? total / 2 : total - total / 2;
    w->pad_end[a] = total - w->pad_begin[a];
  }
  return TRUE;
}

static gboolean float_constant(ct_onnx *o, int k, const ct_otensor *t, const char *role) {
  if (!ct_onnx_dtype_is_float(t->dtype))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "its %s is %s, not a float",
                             role, ct_onnx_dtype_name(o, t->dtype));
  return TRUE;
}

/* The weight [A, B, k...] with rank + 2 dims; the kernel taken from it and
 * checked against kernel_shape. */
static gboolean conv_weight(ct_onnx *o, int k, ct_otensor **w, window *win) {
  if (!const_in(o, k, 1, "weight", TRUE, w) || !float_constant(o, k, *w, "weight"))
    return FALSE;
  const ct_otensor *t = *w;
  if (t->rank != o->rank + 2)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its weight has dims %s; with %d spatial axes it needs %d "
                             "dims",
                             ct_otensor_dims_text(o, t), o->rank, o->rank + 2);
  for (int a = 0; a < o->rank; a++) {
    win->kernel[a] = t->dims[2 + a];
    if (t->dims[2 + a] < 1)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its weight has dims %s: a kernel of size 0",
                               ct_otensor_dims_text(o, t));
  }
  gint64 ks[CT_MAX_RANK];
  gboolean given;
  if (!axis_list(o, k, "kernel_shape", 1, 1, 1, ks, &given))
    return FALSE;
  for (int a = 0; given && a < o->rank; a++)
    if (ks[a] != win->kernel[a])
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "kernel_shape %s does not match its weight's dims %s",
                               ct_dims_text(o->ld, ks, o->rank),
                               ct_otensor_dims_text(o, t));
  return TRUE;
}

static gboolean conv_bias(ct_onnx *o, int k, gint64 out_channels, ct_node *n) {
  ct_otensor *b;
  if (!const_in(o, k, 2, "bias", FALSE, &b))
    return FALSE;
  if (!b)
    return TRUE;
  if (!float_constant(o, k, b, "bias"))
    return FALSE;
  if (b->rank != 1 || b->dims[0] != out_channels)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its bias has dims %s; it must be [%lld], one per output "
                             "channel",
                             ct_otensor_dims_text(o, b), (long long)out_channels);
  n->bias = floats_of(o, b);
  return n->bias != NULL;
}

static gboolean read_group(ct_onnx *o, int k, gint64 *g) {
  if (!ct_attr_int(o, k, "group", 1, g))
    return FALSE;
  if (*g < 1 || *g > CT_MAX_PARAM)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "group %lld is not 1 to %lld",
                             (long long)*g, (long long)CT_MAX_PARAM);
  return TRUE;
}

static void fill_window(ct_node *n, const window *w, int rank) {
  for (int a = 0; a < rank; a++) {
    n->kernel[a] = w->kernel[a];
    n->stride[a] = w->stride[a];
    n->dilation[a] = w->dilation[a];
    n->pad_begin[a] = w->pad_begin[a];
    n->pad_end[a] = w->pad_end[a];
    n->output_padding[a] = w->output_padding[a];
  }
}

static gboolean translate_conv(ct_onnx *o, int k) {
  static const char *const attrs[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                      "pads",     "strides",   NULL};
  window w = {0};
  gint64 g;
  ct_otensor *wt;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  const int in = value_in(o, k, 0, "input");
  if (in < 0 || !read_group(o, k, &g) || !conv_weight(o, k, &wt, &w) ||
      !read_window(o, k, &w) || !resolve_same(o, k, &w))
    return FALSE;
  const gint64 c = channels_of(o, in), m = wt->dims[0], per_group = wt->dims[1];
  gint64 takes;
  if (!ct_mul_i64(per_group, g, &takes) || takes != c)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its weight %s with group %lld takes %lld input channels, "
                             "but its input %s has %lld",
                             ct_otensor_dims_text(o, wt), (long long)g,
                             (long long)per_group * g, value_name(o, in), (long long)c);
  if (m < 1 || m % g != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its weight %s has %lld output channels, not a positive "
                             "multiple of group %lld",
                             ct_otensor_dims_text(o, wt), (long long)m, (long long)g);
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_CONV, 1, 1);
  if (!n)
    return FALSE;
  fill_window(n, &w, o->rank);
  n->groups = g;
  n->inputs[0] = in;
  n->weight = floats_of(o, wt);
  if (!n->weight || !conv_bias(o, k, m, n))
    return FALSE;
  n->outputs[0] = value_out(o, k, 0, m);
  return TRUE;
}

/* ConvTranspose's SAME: the output stride times the input, so the crop is
 * output_padding + (k - 1) d + 1 - s whatever the length (ONNX's split:
 * SAME_UPPER crops the odd one at the end); a negative crop extends the
 * output, which is output_padding. */
static gboolean resolve_same_transpose(ct_onnx *o, window *w) {
  const gboolean upper = strcmp(w->auto_pad, "SAME_UPPER") == 0;
  if (!upper && strcmp(w->auto_pad, "SAME_LOWER") != 0)
    return TRUE;
  for (int a = 0; a < o->rank; a++) {
    const gint64 total =
        w->output_padding[a] + (w->kernel[a] - 1) * w->dilation[a] + 1 - w->stride[a];
    if (total < 0) {
      w->output_padding[a] -= total;
      w->pad_begin[a] = w->pad_end[a] = 0;
      continue;
    }
    w->pad_begin[a] = upper ? total / 2 : total - total / 2;
    w->pad_end[a] = total - w->pad_begin[a];
  }
  return TRUE;
}

/* output_shape fixes the output's size; at the input size the graph
 * declares that is a crop (ONNX's split of it, as for SAME), or, when
 * negative, more output_padding. */
static gboolean resolve_output_shape(ct_onnx *o, int k, int in, window *w) {
  gint64 shape[CT_MAX_RANK + 2], len[CT_MAX_RANK];
  int n;
  if (!ct_attr_ints(o, k, "output_shape", shape, CT_MAX_RANK + 2, &n))
    return FALSE;
  if (n < 0)
    return TRUE;
  /* Some writers give [N, C, S...]: the spatial sizes are the last. */
  if (n != o->rank && n != o->rank + 2)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "output_shape has %d values; with %d spatial axes it needs %d", n, o->rank,
        o->rank);
  const gint64 *out = shape + (n - o->rank);
  if (!ct_onnx_declared_sizes(o, in, len))
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "output_shape %s fixes the output's size, which gives a crop "
        "only at a fixed input size, and the graph leaves its input's "
        "size free; export with output_padding instead",
        ct_dims_text(o->ld, out, o->rank));
  const gboolean upper = strcmp(w->auto_pad, "SAME_UPPER") == 0;
  for (int a = 0; a < o->rank; a++) {
    gint64 full;
    if (out[a] < 1 || out[a] > CT_MAX_PARAM ||
        !ct_mul_i64(len[a] - 1, w->stride[a], &full) ||
        !ct_add_i64(full, w->output_padding[a] + (w->kernel[a] - 1) * w->dilation[a] + 1,
                    &full) ||
        full - out[a] > 2 * CT_MAX_PARAM || out[a] - full > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "output_shape %s is out of reach of its input's declared "
                               "size %s",
                               ct_dims_text(o->ld, out, o->rank),
                               ct_dims_text(o->ld, len, o->rank));
    const gint64 total = full - out[a];
    if (total < 0) {
      w->output_padding[a] -= total;
      w->pad_begin[a] = w->pad_end[a] = 0;
      continue;
    }
    w->pad_begin[a] = upper ? total / 2 : total - total / 2;
    w->pad_end[a] = total - w->pad_begin[a];
  }
  return TRUE;
}

static gboolean translate_conv_transpose(ct_onnx *o, int k) {
  static const char *const attrs[] = {"auto_pad",     "dilations",      "group",
                                      "kernel_shape", "output_padding", "output_shape",
                                      "pads",         "strides",        NULL};
  window w = {0};
  gint64 g;
  ct_otensor *wt;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  const int in = value_in(o, k, 0, "input");
  if (in < 0 || !read_group(o, k, &g) || !conv_weight(o, k, &wt, &w) ||
      !read_window(o, k, &w) ||
      !axis_list(o, k, "output_padding", 1, 0, 0, w.output_padding, NULL))
    return FALSE;
  /* With output_shape, pads are ignored (ONNX). */
  if (ct_attr(o, k, "output_shape")) {
    if (!resolve_output_shape(o, k, in, &w))
      return FALSE;
  } else {
    resolve_same_transpose(o, &w);
  }
  const gint64 c = channels_of(o, in), per_group = wt->dims[1];
  gint64 m;
  if (wt->dims[0] != c)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its weight %s takes %lld input channels, but its input %s "
                             "has %lld",
                             ct_otensor_dims_text(o, wt), (long long)wt->dims[0],
                             value_name(o, in), (long long)c);
  if (c % g != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its input %s has %lld channels, not a multiple of group "
                             "%lld",
                             value_name(o, in), (long long)c, (long long)g);
  if (!ct_mul_i64(per_group, g, &m) || m < 1 || m > CT_MAX_PARAM)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its weight %s with group %lld makes no valid channel count",
                             ct_otensor_dims_text(o, wt), (long long)g);
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_CONV_TRANSPOSE, 1, 1);
  if (!n)
    return FALSE;
  fill_window(n, &w, o->rank);
  n->groups = g;
  n->inputs[0] = in;
  n->weight = floats_of(o, wt);
  if (!n->weight || !conv_bias(o, k, m, n))
    return FALSE;
  n->outputs[0] = value_out(o, k, 0, m);
  return TRUE;
}

static gboolean read_flag(ct_onnx *o, int k, const char *name, gboolean *out) {
  gint64 v;
  if (!ct_attr_int(o, k, name, 0, &v))
    return FALSE;
  if (v != 0 && v != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "attribute %s is %lld, not 0 or 1", name, (long long)v);
  *out = v == 1;
  return TRUE;
}

static gboolean translate_pool(ct_onnx *o, int k, gboolean max) {
  static const char *const max_attrs[] = {"auto_pad",     "ceil_mode", "dilations",
                                          "kernel_shape", "pads",      "storage_order",
                                          "strides",      NULL};
  static const char *const avg_attrs[] = {
      "auto_pad",     "ceil_mode", "count_include_pad", "dilations",
      "kernel_shape", "pads",      "strides",           NULL};
  window w = {0};
  gboolean given, unused, ceil_mode = FALSE, include_pad = FALSE;
  if (!ct_attrs_check(o, k, max ? max_attrs : avg_attrs) ||
      !ct_onnx_outputs(o, k, max ? 2 : 1, "MaxPool's indices"))
    return FALSE;
  const int in = value_in(o, k, 0, "input");
  if (in < 0 || !axis_list(o, k, "kernel_shape", 1, 1, 1, w.kernel, &given))
    return FALSE;
  if (!given)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no kernel_shape");
  ct_node *n =
      ct_onnx_add_node(o, k, max ? CT_NODE_MAX_POOL : CT_NODE_AVERAGE_POOL, 1, 1);
  if (!n || !read_window(o, k, &w) || !resolve_same(o, k, &w) ||
      !read_flag(o, k, "ceil_mode", &ceil_mode) ||
      (!max && !read_flag(o, k, "count_include_pad", &include_pad)) ||
      (max && !read_flag(o, k, "storage_order", &unused)))
    return FALSE;
  for (int a = 0; a < o->rank; a++) {
    /* A window wholly in the padding would average nothing. */
    const gint64 extent = (w.kernel[a] - 1) * w.dilation[a] + 1;
    if (w.pad_begin[a] >= extent || w.pad_end[a] >= extent)
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_NETWORK,
          "pads (%lld, %lld) on spatial axis %d are not smaller than "
          "its window (%lld)",
          (long long)w.pad_begin[a], (long long)w.pad_end[a], a + 1, (long long)extent);
  }
  fill_window(n, &w, o->rank);
  n->ceil_mode = ceil_mode;
  n->count_include_pad = include_pad;
  n->inputs[0] = in;
  n->outputs[0] = value_out(o, k, 0, channels_of(o, in));
  return TRUE;
}

/* ---- Pad ----------------------------------------------------------------- */

static gboolean pad_axes(ct_onnx *o, int k, int *axes, int *n_axes) {
  const int r = o->rank + 2;
  ct_otensor *t;
  *n_axes = r;
  for (int a = 0; a < r; a++)
    axes[a] = a;
  if (!const_in(o, k, 3, "axes", FALSE, &t))
    return FALSE;
  if (!t)
    return TRUE;
  if (ct_onnx_dtype_is_float(t->dtype) || t->rank != 1 || t->count > r)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its axes (%s %s) are not a list of at most %d axes",
                             ct_onnx_dtype_name(o, t->dtype), ct_otensor_dims_text(o, t),
                             r);
  gboolean seen[CT_MAX_RANK + 2] = {FALSE};
  *n_axes = (int)t->count;
  for (int i = 0; i < *n_axes; i++) {
    gint64 a = ct_otensor_i64(t, i);
    if (a < 0)
      a += r;
    if (a < 0 || a >= r || seen[a])
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its axes hold %lld, out of range or repeated",
                               (long long)ct_otensor_i64(t, i));
    seen[a] = TRUE;
    axes[i] = (int)a;
  }
  return TRUE;
}

static gboolean translate_pad(ct_onnx *o, int k) {
  static const char *const before11[] = {"mode", "pads", "value", NULL};
  static const char *const since11[] = {"mode", NULL};
  const int r = o->rank + 2;
  const char *mode;
  gint64 pads[2 * (CT_MAX_RANK + 2)];
  int n_pads, axes[CT_MAX_RANK + 2], n_axes = r;
  float value = 0.0f;
  if (!ct_attrs_check(o, k, o->opset < 11 ? before11 : since11) ||
      !ct_onnx_outputs(o, k, 1, "") || !ct_attr_string(o, k, "mode", "constant", &mode))
    return FALSE;
  const int in = value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  if (strcmp(mode, "constant") != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "mode %s pads with the signal's own values; only mode "
                             "constant is supported",
                             ct_quote(o->ld, mode));
  for (int a = 0; a < r; a++)
    axes[a] = a;
  if (o->opset < 11) {
    if (!ct_attr_ints(o, k, "pads", pads, 2 * r, &n_pads) ||
        !ct_attr_float(o, k, "value", 0.0f, &value))
      return FALSE;
    if (n_pads < 0)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no pads");
  } else {
    ct_otensor *t, *v;
    if (!const_in(o, k, 1, "pads", TRUE, &t) ||
        !const_in(o, k, 2, "constant_value", FALSE, &v) ||
        (v && !scalar_of(o, k, v, "constant_value", &value)) ||
        !pad_axes(o, k, axes, &n_axes))
      return FALSE;
    if (ct_onnx_dtype_is_float(t->dtype) || t->rank != 1 || t->count > 2 * r)
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_NETWORK,
          "its pads (%s %s) are not a list of integers, two per axis",
          ct_onnx_dtype_name(o, t->dtype), ct_otensor_dims_text(o, t));
    n_pads = (int)t->count;
    for (int i = 0; i < n_pads; i++)
      pads[i] = ct_otensor_i64(t, i);
  }
  if (n_pads != 2 * n_axes)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "has %d pads; its input has %d axes, which take %d", n_pads,
                             n_axes, 2 * n_axes);
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_PAD, 1, 1);
  if (!n)
    return FALSE;
  for (int i = 0; i < n_axes; i++) {
    const gint64 b = pads[i], e = pads[n_axes + i];
    const int a = axes[i];
    if (b < 0 || e < 0)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "pads (%lld, %lld) on the %s are negative (a crop), which "
                               "is not supported",
                               (long long)b, (long long)e, axis_text(o, a));
    if (a == 0 && (b || e))
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "pads the batch axis (%lld, %lld), whose items are "
                               "separate signals",
                               (long long)b, (long long)e);
    if (b > CT_MAX_PARAM || e > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "pads (%lld, %lld) on the %s exceed %lld", (long long)b,
                               (long long)e, axis_text(o, a), (long long)CT_MAX_PARAM);
    if (a > 0) {
      n->pad_axes_begin[a - 1] = b;
      n->pad_axes_end[a - 1] = e;
    }
  }
  const gint64 c = channels_of(o, in) + n->pad_axes_begin[0] + n->pad_axes_end[0];
  if (c > CT_MAX_PARAM)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "makes %lld channels, too many", (long long)c);
  n->pad_value = value;
  n->inputs[0] = in;
  n->outputs[0] = value_out(o, k, 0, c);
  return TRUE;
}

/* ---- BatchNormalization -------------------------------------------------- */

static gboolean translate_batch_norm(ct_onnx *o, int k) {
  static const char *const before14[] = {"epsilon", "momentum", NULL};
  static const char *const since14[] = {"epsilon", "momentum", "training_mode", NULL};
  static const char *const roles[] = {"scale", "bias", "mean", "var"};
  float eps, momentum;
  gint64 training;
  ct_otensor *t[4];
  if (!ct_attrs_check(o, k, o->opset < 14 ? before14 : since14) ||
      !ct_onnx_outputs(o, k, 5, "training-mode running statistics") ||
      !ct_attr_float(o, k, "epsilon", 1e-5f, &eps) ||
      !ct_attr_float(o, k, "momentum", 0.9f, &momentum) ||
      !ct_attr_int(o, k, "training_mode", 0, &training))
    return FALSE;
  if (training != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "runs in training mode (statistics of the batch), which a "
                             "trained network does not");
  const int in = value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  const gint64 c = channels_of(o, in);
  for (int i = 0; i < 4; i++) {
    if (!const_in(o, k, i + 1, roles[i], TRUE, &t[i]) ||
        !float_constant(o, k, t[i], roles[i]))
      return FALSE;
    if (t[i]->rank != 1 || t[i]->dims[0] != c)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its %s has dims %s; its input %s has %lld channels",
                               roles[i], ct_otensor_dims_text(o, t[i]), value_name(o, in),
                               (long long)c);
  }
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_AFFINE, 1, 1);
  float *scale = ct_onnx_keep(o, c, sizeof(float)),
        *shift = ct_onnx_keep(o, c, sizeof(float));
  if (!n || !scale || !shift)
    return FALSE;
  for (gint64 j = 0; j < c; j++) {
    /* In double: the two roundings happen once, at the end. */
    const double var = ct_otensor_f64(t[3], j) + (double)eps;
    if (!(var > 0) || !isfinite(var))
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "channel %lld: variance + epsilon is %g, not positive",
                               (long long)j, var);
    const double s = ct_otensor_f64(t[0], j) / sqrt(var);
    scale[j] = ct_f64_to_f32(s);
    shift[j] = ct_f64_to_f32(ct_otensor_f64(t[1], j) - ct_otensor_f64(t[2], j) * s);
  }
  n->scale = scale;
  n->shift = shift;
  n->inputs[0] = in;
  n->outputs[0] = value_out(o, k, 0, c);
  return TRUE;
}

/* ---- channels: Concat, Split, DepthToSpace ------------------------------- */

/* The axis attribute, negative ones counted from the end; must be the
 * channels. */
static gboolean channel_axis(ct_onnx *o, int k, gint64 def, gboolean required,
                             const char *verb) {
  gint64 axis;
  if (required && !ct_attr(o, k, "axis"))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no axis");
  if (!ct_attr_int(o, k, "axis", def, &axis))
    return FALSE;
  const int r = o->rank + 2;
  const gint64 a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT,
                             "axis %lld is out of range for rank %d", (long long)axis, r);
  if (a != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "%s along axis %lld (the %s); this reader does so along the "
                             "channels only",
                             verb, (long long)axis, axis_text(o, (int)a));
  return TRUE;
}

static gboolean translate_concat(ct_onnx *o, int k) {
  static const char *const attrs[] = {"axis", NULL};
  const ct_onode *nd = &o->nodes[k];
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !channel_axis(o, k, 0, TRUE, "concatenates"))
    return FALSE;
  if (nd->n_inputs < 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no inputs");
  gint64 c = 0;
  for (int i = 0; i < nd->n_inputs; i++) {
    const int v = value_in(o, k, i, "input");
    if (v < 0)
      return FALSE;
    c += channels_of(o, v);
    if (c > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "makes too many channels");
  }
  if (nd->n_inputs == 1)
    return add_identity(o, k, nd->inputs[0]->value);
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_CONCAT, nd->n_inputs, 1);
  if (!n)
    return FALSE;
  for (int i = 0; i < nd->n_inputs; i++)
    n->inputs[i] = nd->inputs[i]->value;
  n->outputs[0] = value_out(o, k, 0, c);
  return TRUE;
}

static gboolean translate_split(ct_onnx *o, int k) {
  static const char *const before13[] = {"axis", "split", NULL};
  static const char *const since13[] = {"axis", NULL};
  const ct_onode *nd = &o->nodes[k];
  const int parts = nd->n_outputs;
  if (!ct_attrs_check(o, k, o->opset < 13 ? before13 : since13) ||
      !channel_axis(o, k, 0, FALSE, "splits"))
    return FALSE;
  const int in = value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  if (parts < 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no outputs");
  const gint64 c = channels_of(o, in);
  gint64 *split = ct_onnx_keep(o, parts, sizeof(gint64));
  if (!split)
    return FALSE;
  int n_split = -1;
  if (o->opset < 13) {
    gint64 *v = ct_onnx_temp(o, parts + 1, sizeof(gint64));
    if (!v || !ct_attr_ints(o, k, "split", v, parts + 1, &n_split))
      return FALSE;
    if (n_split > 0)
      memcpy(split, v, (size_t)MIN(n_split, parts) * sizeof(gint64));
  } else {
    ct_otensor *t;
    if (!const_in(o, k, 1, "split", FALSE, &t))
      return FALSE;
    if (t && (ct_onnx_dtype_is_float(t->dtype) || t->rank != 1))
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_NETWORK, "its split (%s %s) is not a list of integers",
          ct_onnx_dtype_name(o, t->dtype), ct_otensor_dims_text(o, t));
    if (t) {
      n_split = (int)MIN(t->count, (gint64)parts + 1);
      for (int i = 0; i < MIN(n_split, parts); i++)
        split[i] = ct_otensor_i64(t, i);
    }
  }
  if (n_split >= 0 && n_split != parts)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its split has %d parts for %d outputs", n_split, parts);
  if (n_split < 0) {
    if (c % parts != 0)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "splits %lld channels into %d equal parts", (long long)c,
                               parts);
    for (int i = 0; i < parts; i++)
      split[i] = c / parts;
  }
  gint64 sum = 0;
  for (int i = 0; i < parts; i++) {
    if (split[i] < 1 || split[i] > c)
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_NETWORK,
          "its part %d has %lld channels; every part needs 1 to %lld", i,
          (long long)split[i], (long long)c);
    sum += split[i];
  }
  if (sum != c)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "its parts add up to %lld channels, but its input %s has %lld", (long long)sum,
        value_name(o, in), (long long)c);
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_SPLIT, 1, parts);
  if (!n)
    return FALSE;
  n->split_channels = split;
  n->inputs[0] = in;
  for (int i = 0; i < parts; i++)
    n->outputs[i] = value_out(o, k, i, split[i]);
  return TRUE;
}

static gboolean translate_depth_to_space(ct_onnx *o, int k) {
  static const char *const before11[] = {"blocksize", NULL};
  static const char *const since11[] = {"blocksize", "mode", NULL};
  gint64 b;
  const char *mode;
  if (!ct_attrs_check(o, k, o->opset < 11 ? before11 : since11) ||
      !ct_onnx_outputs(o, k, 1, "") || !ct_attr_int(o, k, "blocksize", 0, &b) ||
      !ct_attr_string(o, k, "mode", "DCR", &mode))
    return FALSE;
  const int in = value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  if (o->rank != 2)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "DepthToSpace is defined on [N, C, H, W]; its input has rank %d", o->rank + 2);
  if (b < 1 || b > CT_MAX_PARAM)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "blocksize %lld is not positive", (long long)b);
  const gboolean dcr = strcmp(mode, "DCR") == 0;
  if (!dcr && strcmp(mode, "CRD") != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "mode %s is not DCR or CRD",
                             ct_quote(o->ld, mode));
  const gint64 c = channels_of(o, in);
  if (c % (b * b) != 0)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "its input %s has %lld channels, not a multiple of blocksize^2 "
        "= %lld",
        value_name(o, in), (long long)c, (long long)(b * b));
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_DEPTH_TO_SPACE, 1, 1);
  if (!n)
    return FALSE;
  n->block_size = b;
  n->depth_to_space_mode = dcr ? CT_DEPTH_TO_SPACE_DCR : CT_DEPTH_TO_SPACE_CRD;
  n->inputs[0] = in;
  n->outputs[0] = value_out(o, k, 0, c / (b * b));
  return TRUE;
}

static gboolean translate_cast(ct_onnx *o, int k) {
  static const char *const attrs[] = {"to", NULL};
  gint64 to;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_attr_int(o, k, "to", 0, &to))
    return FALSE;
  const int in = value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  if (to != CT_ONNX_FLOAT)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "casts %s, a float32 value computed from the input, to %s; "
                             "the network's values are float32",
                             value_name(o, in), ct_onnx_dtype_name(o, (int)to));
  return add_identity(o, k, in);
}

/* ---- refusals ------------------------------------------------------------ */

static const char *const shape_ops[] = {
    "Shape",          "Size",     "Reshape",   "Flatten",
    "Transpose",      "Squeeze",  "Unsqueeze", "Gather",
    "Slice",          "Expand",   "Tile",      "ConstantOfShape",
    "GatherElements", "GatherND", "ScatterND", "Range",
    "NonZero",        "Where",    NULL};

static gboolean in_list(const char *const *list, const char *op) {
  for (; *list; list++)
    if (strcmp(*list, op) == 0)
      return TRUE;
  return FALSE;
}

/* Reductions: over the channels only, or over a spatial axis (the whole
 * signal). axes from the attribute, or the constant second input. */
static const char *reduce_refusal(ct_onnx *o, int k) {
  gint64 axes[CT_ONNX_MAX_DIMS];
  int n = -1;
  const Onnx__AttributeProto *a = ct_attr(o, k, "axes");
  if (a && a->n_ints <= CT_ONNX_MAX_DIMS) {
    n = (int)a->n_ints;
    if (n > 0)
      memcpy(axes, a->ints, (size_t)n * sizeof(gint64));
  } else if (input(o, k, 1) && input(o, k, 1)->constant) {
    const ct_otensor *t = input(o, k, 1)->constant;
    if (!ct_onnx_dtype_is_float(t->dtype) && t->count <= CT_ONNX_MAX_DIMS) {
      n = (int)t->count;
      for (int i = 0; i < n; i++)
        axes[i] = ct_otensor_i64(t, i);
    }
  }
  gboolean channels_only = n > 0;
  for (int i = 0; i < n; i++)
    channels_only = channels_only && (axes[i] == 1 || axes[i] == 1 - (o->rank + 2));
  return channels_only
             ? "reduces over the channels, which this reader does not support"
             : "reduces over a spatial axis, so it needs the whole signal, which "
               "streaming never has";
}

static const char *softmax_refusal(ct_onnx *o, int k) {
  const int r = o->rank + 2;
  gint64 axis = o->opset < 13 ? 1 : -1;
  const Onnx__AttributeProto *a = ct_attr(o, k, "axis");
  if (a && a->has_i)
    axis = a->i;
  if (axis < 0)
    axis += r;
  GString *s = g_string_new(NULL);
  /* Before opset 13 the axis and every one after it are normalised over. */
  if (axis == 1 && o->opset >= 13)
    g_string_printf(s,
                    "normalises over the channels, which this reader does not support");
  else if (axis >= 1 && axis < r)
    g_string_printf(s,
                    "normalises over axis %lld, %s, so it needs the whole signal, which "
                    "streaming never has",
                    (long long)(a && a->has_i ? a->i : axis),
                    axis == 2 || o->opset < 13 ? "the streamed axis" : "a spatial axis");
  else
    g_string_printf(s, "normalises over axis %lld, which is out of range",
                    (long long)axis);
  return ct_keep(o->ld, s);
}

const char *ct_onnx_nodes_refusal(ct_onnx *o, int k) {
  static const struct {
    const char *op, *why;
  } reasons[] = {
      {"LSTM", "a recurrent layer carries its state across the whole signal, which "
               "this reader does not support"},
      {"GRU", "a recurrent layer carries its state across the whole signal, which this "
              "reader does not support"},
      {"RNN", "a recurrent layer carries its state across the whole signal, which this "
              "reader does not support"},
      {"GlobalAveragePool", "pools over the whole signal, which streaming never has"},
      {"GlobalMaxPool", "pools over the whole signal, which streaming never has"},
      {"GlobalLpPool", "pools over the whole signal, which streaming never has"},
      {"InstanceNormalization", "normalises with statistics over the whole signal, which "
                                "streaming never has"},
      {"MeanVarianceNormalization", "normalises with statistics over the whole signal, "
                                    "which streaming never has"},
      {"LayerNormalization", "normalises with statistics over the signal's axes, which "
                             "streaming never has whole"},
      {"GroupNormalization", "normalises with statistics over the whole signal, which "
                             "streaming never has"},
      {"LpNormalization", "normalises along an axis, which this reader does not support"},
      {"Attention", "attends over the whole signal, which streaming never has"},
      {"MultiHeadAttention", "attends over the whole signal, which streaming never has"},
      {"MatMul",
       "multiplies matrices over the signal's last axis, which this reader does "
       "not support"},
      {"Gemm", "is a dense layer over flattened values, which this reader does not "
               "support"},
      {"Einsum", "contracts axes of the signal, which this reader does not support"},
      {"Resize", "resizes the signal, which this reader does not support (ConvTranspose "
                 "and DepthToSpace upsample)"},
      {"Upsample", "resizes the signal, which this reader does not support "
                   "(ConvTranspose and DepthToSpace upsample)"},
      {"If", "is control flow, which this reader does not support"},
      {"Loop", "is control flow, which this reader does not support"},
      {"Scan", "scans over the signal, which this reader does not support"},
      {"CumSum", "sums over the whole signal, which streaming never has"},
  };
  const char *op = o->nodes[k].proto->op_type;
  if (strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0 ||
      strcmp(op, "Hardmax") == 0)
    return softmax_refusal(o, k);
  if (g_str_has_prefix(op, "Reduce") || strcmp(op, "ArgMax") == 0 ||
      strcmp(op, "ArgMin") == 0)
    return reduce_refusal(o, k);
  for (size_t i = 0; i < G_N_ELEMENTS(reasons); i++)
    if (strcmp(reasons[i].op, op) == 0)
      return reasons[i].why;
  return "is not an operator this reader supports";
}

/* An operator folded on constants, found reading a value. */
static gboolean refuse_signal_op(ct_onnx *o, int k) {
  const char *op = o->nodes[k].proto->op_type;
  const ct_oname *x = NULL;
  for (int i = 0; i < o->nodes[k].n_inputs && !x; i++)
    if (o->nodes[k].inputs[i] && o->nodes[k].inputs[i]->value >= 0)
      x = o->nodes[k].inputs[i];
  const char *q = ct_quote(o->ld, x ? x->name : "");
  if (g_str_has_prefix(op, "Reduce"))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "%s", reduce_refusal(o, k));
  /* PixelShuffle before opset 11 is Unsqueeze, Reshape, Transpose, ... */
  const char *hint =
      o->opset < 11 && (strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Reshape") == 0)
          ? " (torch writes PixelShuffle so below opset 11; export at "
            "opset 11 or later, where it is DepthToSpace)"
          : "";
  if (strcmp(op, "Shape") == 0 || strcmp(op, "Size") == 0)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "takes the shape of %s, a value computed from the graph "
        "input: Reshape/Shape computations on the signal are refused "
        "(its length is not known while streaming)",
        q);
  return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                           "reshapes or indexes %s, a value computed from the graph "
                           "input: Reshape/Shape computations on the signal are refused "
                           "(its length is not known while streaming)%s",
                           q, hint);
}

/* ---- dispatch ------------------------------------------------------------ */

typedef gboolean (*translator)(ct_onnx *o, int k);

static gboolean translate_max_pool(ct_onnx *o, int k) {
  return translate_pool(o, k, TRUE);
}

static gboolean translate_average_pool(ct_onnx *o, int k) {
  return translate_pool(o, k, FALSE);
}

static const struct {
  const char *op;
  translator fn;
} translators[] = {
    {"Conv", translate_conv},
    {"ConvTranspose", translate_conv_transpose},
    {"MaxPool", translate_max_pool},
    {"AveragePool", translate_average_pool},
    {"Pad", translate_pad},
    {"BatchNormalization", translate_batch_norm},
    {"Concat", translate_concat},
    {"Split", translate_split},
    {"DepthToSpace", translate_depth_to_space},
    {"Cast", translate_cast},
};

gboolean ct_onnx_nodes_knows(const char *op) {
  ct_binary_op code;
  for (size_t i = 0; i < G_N_ELEMENTS(translators); i++)
    if (strcmp(translators[i].op, op) == 0)
      return TRUE;
  return is_unary(op) || ct_onnx_binary_op(op, &code) || in_list(shape_ops, op);
}

gboolean ct_onnx_translate(ct_onnx *o, int k) {
  const char *op = o->nodes[k].proto->op_type;
  for (size_t i = 0; i < G_N_ELEMENTS(translators); i++)
    if (strcmp(translators[i].op, op) == 0)
      return translators[i].fn(o, k);
  ct_binary_op code;
  if (ct_onnx_binary_op(op, &code))
    return translate_binary(o, k, code);
  if (is_unary(op))
    return translate_unary(o, k);
  return refuse_signal_op(o, k);
}
