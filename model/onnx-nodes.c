/* The translators share these helpers; a translator reads the node's
 * attributes (ct_attrs_check first, so none is ignored), takes its
 * constants (weights, bias, pads, bounds) and its values, checks the
 * channel rules, and adds one ct_node (a chain of binary nodes for a Max or
 * Min of more than two inputs) whose outputs are new values. Hyper-
 * parameters are capped at CT_MAX_PARAM so that later arithmetic on them
 * cannot overflow. */
#include "model/onnx-translate.h"

#include <string.h>

#include "model/dtype.h"
#include "model/onnx-patterns.h"

/* ---- inputs and outputs -------------------------------------------------- */

ct_oname *ct_onnx_input(ct_onnx *o, int k, int i) {
  const ct_onode *nd = &o->nodes[k];
  return i < nd->n_inputs ? nd->inputs[i] : NULL;
}

gint64 ct_onnx_channels(ct_onnx *o, int v) {
  return ((const ct_value *)o->values->pdata[v])->channels;
}

const char *ct_onnx_value_name(ct_onnx *o, int v) {
  return ct_quote(o->ld, ((const ct_value *)o->values->pdata[v])->name);
}

/* The value input i holds, or -1 with the error set. */
int ct_onnx_value_in(ct_onnx *o, int k, int i, const char *role) {
  const ct_oname *n = ct_onnx_input(o, k, i);
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
gboolean ct_onnx_const_in(ct_onnx *o, int k, int i, const char *role, gboolean required,
                          ct_otensor **out) {
  ct_oname *n = ct_onnx_input(o, k, i);
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
int ct_onnx_value_out(ct_onnx *o, int k, int i, gint64 channels) {
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
float *ct_onnx_floats(ct_onnx *o, ct_otensor *t) {
  /* Once per tensor: nodes sharing a weight share its copy. */
  if (t->f32)
    return t->f32;
  float *f = ct_onnx_keep(o, t->count, sizeof(float));
  if (!f)
    return NULL;
  if (ct_onnx_dtype_is_float(t->dtype))
    ct_otensor_to_f32(t, f);
  else
    for (gint64 i = 0; i < t->count; i++)
      f[i] = ct_f64_to_f32(ct_otensor_f64(t, i));
  t->f32 = f;
  return f;
}

/* One scalar of a constant (a tensor of one element) as float32. */
gboolean ct_onnx_scalar(ct_onnx *o, int k, const ct_otensor *t, const char *role,
                        float *out) {
  if (t->count != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its %s has dims %s; it must be a single value", role,
                             ct_otensor_dims_text(o, t));
  *out = ct_f64_to_f32(ct_otensor_f64(t, 0));
  return TRUE;
}

gboolean ct_onnx_add_identity(ct_onnx *o, int k, int in) {
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_UNARY, 1, 1);
  if (!n)
    return FALSE;
  n->op_code = CT_UNARY_IDENTITY;
  n->inputs[0] = in;
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, ct_onnx_channels(o, in))) >= 0;
}

const char *ct_onnx_axis_text(ct_onnx *o, int axis) {
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

gboolean ct_onnx_float_constant(ct_onnx *o, int k, const ct_otensor *t,
                                const char *role) {
  if (!ct_onnx_dtype_is_float(t->dtype))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "its %s is %s, not a float",
                             role, ct_onnx_dtype_name(o, t->dtype));
  return TRUE;
}

/* ---- dispatch ------------------------------------------------------------ */

typedef gboolean (*translator)(ct_onnx *o, int k);

static gboolean translate_max_pool(ct_onnx *o, int k) {
  return ct_onnx_translate_pool(o, k, TRUE);
}

static gboolean translate_average_pool(ct_onnx *o, int k) {
  return ct_onnx_translate_pool(o, k, FALSE);
}

static const struct {
  const char *op;
  translator fn;
} translators[] = {
    {"Conv", ct_onnx_translate_conv},
    {"ConvTranspose", ct_onnx_translate_conv_transpose},
    {"MaxPool", translate_max_pool},
    {"AveragePool", translate_average_pool},
    {"Pad", ct_onnx_translate_pad},
    {"BatchNormalization", ct_onnx_translate_batch_norm},
    {"Concat", ct_onnx_translate_concat},
    {"Split", ct_onnx_translate_split},
    {"DepthToSpace", ct_onnx_translate_depth_to_space},
    {"Cast", ct_onnx_translate_cast},
};

gboolean ct_onnx_nodes_knows(const char *op) {
  ct_binary_op code;
  for (size_t i = 0; i < G_N_ELEMENTS(translators); i++)
    if (strcmp(translators[i].op, op) == 0)
      return TRUE;
  return ct_onnx_is_unary(op) || ct_onnx_binary_op(op, &code) || ct_onnx_is_shape_op(op);
}

gboolean ct_onnx_translate(ct_onnx *o, int k) {
  const char *op = o->nodes[k].proto->op_type;
  for (size_t i = 0; i < G_N_ELEMENTS(translators); i++)
    if (strcmp(translators[i].op, op) == 0)
      return translators[i].fn(o, k);
  ct_binary_op code;
  if (ct_onnx_binary_op(op, &code))
    return ct_onnx_translate_binary(o, k, code);
  if (ct_onnx_is_unary(op))
    return ct_onnx_translate_unary(o, k);
  gboolean ok = TRUE;
  /* A failed look at what follows (a Constant that does not fold) is the
   * refusal. */
  if (strcmp(op, "Unsqueeze") == 0 && (ct_onnx_pixel_shuffle(o, k, &ok) || !ok))
    return ok;
  return ct_onnx_refuse_signal_op(o, k);
}
