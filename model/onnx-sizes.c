/* Each node's output sizes by its operator's formula (ONNX's, with
 * ceil_mode for the pools), overflow-checked; -1 where unknown. */
#include "model/onnx-sizes.h"

#include <string.h>

/* One axis through a node; -1 when unknown or not positive. */
static gint64 axis_size(const ct_node *n, int a, gint64 len) {
  gint64 r = -1, span;
  if (len < 1)
    return -1;
  const gint64 reach = n->dilation[a] * (n->kernel[a] - 1);
  switch (n->kind) {
  case CT_NODE_CONV:
  case CT_NODE_MAX_POOL:
  case CT_NODE_AVERAGE_POOL:
    if (!ct_add_i64(len, n->pad_begin[a] + n->pad_end[a] - reach - 1, &span))
      return -1;
    r = (n->kind != CT_NODE_CONV && n->ceil_mode ? ct_ceil_div(span, n->stride[a])
                                                 : ct_floor_div(span, n->stride[a])) +
        1;
    break;
  case CT_NODE_CONV_TRANSPOSE:
    if (!ct_mul_i64(len - 1, n->stride[a], &span) ||
        !ct_add_i64(
            span, n->output_padding[a] + reach + 1 - n->pad_begin[a] - n->pad_end[a], &r))
      return -1;
    break;
  case CT_NODE_PAD:
    if (!ct_add_i64(len, n->pad_axes_begin[a + 1] + n->pad_axes_end[a + 1], &r))
      return -1;
    break;
  case CT_NODE_DEPTH_TO_SPACE:
    if (!ct_mul_i64(len, n->block_size, &r))
      return -1;
    break;
  default: /* elementwise, Concat, Split: the sizes of the first input */
    r = len;
    break;
  }
  return r >= 1 ? r : -1;
}

gboolean ct_onnx_declared_sizes(ct_onnx *o, int v, gint64 *sizes) {
  const int r = o->rank;
  /* The nodes added since the last call, each once. */
  if (!o->sizes) {
    o->sizes = g_array_new(FALSE, FALSE, sizeof(gint64));
    const Onnx__TensorShapeProto *shape = o->input_info->type->tensor_type->shape;
    g_array_set_size(o->sizes, (guint)((o->input->value + 1) * r));
    for (int a = 0; a < r; a++) {
      const Onnx__TensorShapeProto__Dimension *d = shape->dim[2 + a];
      g_array_index(o->sizes, gint64, o->input->value * r + a) =
          d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
              ? d->dim_value
              : -1;
    }
  }
  const guint old = o->sizes->len;
  g_array_set_size(o->sizes, o->values->len * (guint)r);
  for (guint i = old; i < o->sizes->len; i++)
    g_array_index(o->sizes, gint64, i) = -1;
  gint64 *all = (gint64 *)(void *)o->sizes->data;
  for (; o->sized_nodes < o->net->len; o->sized_nodes++) {
    const ct_node *n = o->net->pdata[o->sized_nodes];
    for (int j = 0; j < n->n_outputs; j++)
      for (int a = 0; a < r; a++)
        all[n->outputs[j] * r + a] = axis_size(n, a, all[n->inputs[0] * r + a]);
  }
  gboolean fixed = TRUE;
  for (int a = 0; a < r; a++) {
    sizes[a] = all[v * r + a];
    fixed = fixed && sizes[a] >= 1;
  }
  return fixed;
}
