/* The elementwise operators: unary ones with their attributes (the same
 * parameters the folder evaluates on constants), binary ones between two
 * values of equal channels or a value and a constant broadcast over it,
 * BatchNormalization folded into an affine node, Cast to float32. */
#include "model/onnx-translate.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model/dtype.h"
#include "model/onnx-attrs.h"

static const char *const NO_ATTRS[] = {NULL};

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
  ct_oname *mode = ct_onnx_input(o, k, 2);
  if (!mode)
    return TRUE;
  ct_otensor *t;
  if (!ct_onnx_const_in(o, k, 2, "training_mode", FALSE, &t))
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
  if (!ct_attrs_check(o, k, NO_ATTRS) || !ct_onnx_const_in(o, k, 1, "min", FALSE, &t) ||
      (t && !ct_onnx_scalar(o, k, t, "min", &n->clip_min)) ||
      !ct_onnx_const_in(o, k, 2, "max", FALSE, &t) ||
      (t && !ct_onnx_scalar(o, k, t, "max", &n->clip_max)))
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

gboolean ct_onnx_is_unary(const char *op) {
  for (size_t i = 0; i < G_N_ELEMENTS(unary_ops); i++)
    if (strcmp(unary_ops[i].op, op) == 0)
      return TRUE;
  return FALSE;
}

gboolean ct_onnx_translate_unary(ct_onnx *o, int k) {
  const char *op = o->nodes[k].proto->op_type;
  const gboolean more = strcmp(op, "Clip") == 0 || strcmp(op, "Dropout") == 0;
  if (!more && !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  /* Clip's and Dropout's other inputs are constants, read with the
   * parameters. */
  if (!more && o->nodes[k].n_inputs != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has %d inputs; %s takes 1",
                             o->nodes[k].n_inputs, op);
  const int in = ct_onnx_value_in(o, k, 0, "input");
  ct_node *n = in < 0 ? NULL : ct_onnx_add_node(o, k, CT_NODE_UNARY, 1, 1);
  gboolean ok;
  if (!n || !ct_onnx_unary_params(o, k, n, &ok) || !ok)
    return FALSE;
  n->inputs[0] = in;
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, ct_onnx_channels(o, in))) >= 0;
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

/* A constant operand as ct_constant: broadcast over [N, C, S...], varying
 * at most along the channels, which it has as 1 or as the value has. */
static gboolean make_constant(ct_onnx *o, int k, const ct_oname *cn, ct_otensor *c,
                              gint64 channels, ct_constant *out) {
  const int r = o->rank + 2;
  if (c->count == 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its constant operand %s is empty (dims %s)",
                             ct_quote(o->ld, cn->name), ct_otensor_dims_text(o, c));
  if (c->rank > r)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its constant operand %s has %d dimensions (dims %s), more "
                             "than the %d of the value it combines with",
                             ct_quote(o->ld, cn->name), c->rank,
                             ct_otensor_dims_text(o, c), r);
  for (int j = 0; j < r; j++) {
    const gint64 d = j < r - c->rank ? 1 : c->dims[j - (r - c->rank)];
    if (j == 1 && d != 1 && d != channels)
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_NETWORK,
          "its constant operand %s (dims %s) has %lld channels where "
          "the value has %lld",
          ct_quote(o->ld, cn->name), ct_otensor_dims_text(o, c), (long long)d,
          (long long)channels);
    if (j != 1 && d != 1)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its constant operand %s (dims %s) varies along the %s; a "
                               "constant may vary only along the channels, the signal "
                               "streams",
                               ct_quote(o->ld, cn->name), ct_otensor_dims_text(o, c),
                               ct_onnx_axis_text(o, j));
    out->dims[j] = d;
  }
  out->data = ct_onnx_floats(o, c);
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
  const gint64 ch = ct_onnx_channels(o, v->value);
  if (both && ct_onnx_channels(o, b->value) != ct_onnx_channels(o, a->value))
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "combines %s (%lld channels) and %s (%lld channels); values "
        "combined must have the same channels",
        ct_onnx_value_name(o, a->value), (long long)ct_onnx_channels(o, a->value),
        ct_onnx_value_name(o, b->value), (long long)ct_onnx_channels(o, b->value));
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
    if ((n->outputs[0] = ct_onnx_value_out(o, k, 0, ch)) < 0)
      return FALSE;
  } else {
    GString *s = g_string_new(NULL);
    g_string_printf(s, "%s (step %d)", o->nodes[k].outputs[0]->name, step);
    if ((n->outputs[0] = ct_onnx_add_value(o, ct_keep(o->ld, s), ch)) < 0)
      return FALSE;
  }
  *result = (operand){.name = o->nodes[k].outputs[0], .value = n->outputs[0]};
  return TRUE;
}

gboolean ct_onnx_translate_binary(ct_onnx *o, int k, ct_binary_op code) {
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
  return nd->n_inputs > 1 || ct_onnx_add_identity(o, k, acc.value);
}

/* ---- BatchNormalization -------------------------------------------------- */

gboolean ct_onnx_translate_batch_norm(ct_onnx *o, int k) {
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
  const int in = ct_onnx_value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  const gint64 c = ct_onnx_channels(o, in);
  for (int i = 0; i < 4; i++) {
    if (!ct_onnx_const_in(o, k, i + 1, roles[i], TRUE, &t[i]) ||
        !ct_onnx_float_constant(o, k, t[i], roles[i]))
      return FALSE;
    if (t[i]->rank != 1 || t[i]->dims[0] != c)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its %s has dims %s; its input %s has %lld channels",
                               roles[i], ct_otensor_dims_text(o, t[i]),
                               ct_onnx_value_name(o, in), (long long)c);
  }
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_AFFINE, 1, 1);
  float *scale = n ? ct_onnx_keep(o, c, sizeof(float)) : NULL;
  float *shift = scale ? ct_onnx_keep(o, c, sizeof(float)) : NULL;
  if (!shift)
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
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, c)) >= 0;
}

gboolean ct_onnx_translate_cast(ct_onnx *o, int k) {
  static const char *const attrs[] = {"to", NULL};
  gint64 to;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_attr_int(o, k, "to", 0, &to))
    return FALSE;
  const int in = ct_onnx_value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  if (to != CT_ONNX_FLOAT)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "casts %s, a float32 value computed from the input, to %s; "
                             "the network's values are float32",
                             ct_onnx_value_name(o, in), ct_onnx_dtype_name(o, (int)to));
  return ct_onnx_add_identity(o, k, in);
}
