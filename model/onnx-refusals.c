/* Why an operator is refused: it needs the whole signal (recurrences,
 * global pools, normalisation statistics, reductions and softmax over a
 * spatial axis), it computes on the signal's shape, or it is not one the
 * reader supports. */
#include "model/onnx-translate.h"

#include <string.h>

#include "model/onnx-attrs.h"

/* ---- refusals ------------------------------------------------------------ */

static const char *const shape_ops[] = {
    "Shape",          "Size",     "Reshape",   "Flatten",
    "Transpose",      "Squeeze",  "Unsqueeze", "Gather",
    "Slice",          "Expand",   "Tile",      "ConstantOfShape",
    "GatherElements", "GatherND", "ScatterND", "Range",
    "NonZero",        "Where",    NULL};

gboolean ct_onnx_is_shape_op(const char *op) {
  for (const char *const *s = shape_ops; *s; s++)
    if (strcmp(*s, op) == 0)
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
  } else if (ct_onnx_input(o, k, 1) && ct_onnx_input(o, k, 1)->constant) {
    const ct_otensor *t = ct_onnx_input(o, k, 1)->constant;
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
gboolean ct_onnx_refuse_signal_op(ct_onnx *o, int k) {
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
          ? " (torch writes PixelShuffle so below opset 11, which this reader "
            "takes only exactly as torch writes it; export at opset 11 or later, "
            "where it is DepthToSpace)"
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
