/* The operators that change a value's layout: Pad (constant, any axis
 * but the batch; negative pads crop), Concat and Split along the
 * channels, DepthToSpace. */
#include "model/onnx-translate.h"

#include <string.h>

#include "model/onnx-attrs.h"

/* ---- Pad ----------------------------------------------------------------- */

static gboolean pad_axes(ct_onnx *o, int k, int *axes, int *n_axes) {
  const int r = o->rank + 2;
  ct_otensor *t;
  *n_axes = r;
  for (int a = 0; a < r; a++)
    axes[a] = a;
  if (!ct_onnx_const_in(o, k, 3, "axes", FALSE, &t))
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

gboolean ct_onnx_translate_pad(ct_onnx *o, int k) {
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
  const int in = ct_onnx_value_in(o, k, 0, "input");
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
    if (!ct_onnx_const_in(o, k, 1, "pads", TRUE, &t) ||
        !ct_onnx_const_in(o, k, 2, "constant_value", FALSE, &v) ||
        (v && !ct_onnx_scalar(o, k, v, "constant_value", &value)) ||
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
    /* Negative pads crop (ONNX's meaning); whether a crop leaves anything of
     * a spatial axis depends on the length, which the stream finds out. */
    if (a == 0 && (b || e))
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "pads the batch axis (%lld, %lld), whose items are "
                               "separate signals",
                               (long long)b, (long long)e);
    if (b > CT_MAX_PARAM || e > CT_MAX_PARAM || b < -CT_MAX_PARAM || e < -CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "pads (%lld, %lld) on the %s exceed %lld either way",
                               (long long)b, (long long)e, ct_onnx_axis_text(o, a),
                               (long long)CT_MAX_PARAM);
    if (a > 0) {
      n->pad_axes_begin[a - 1] = b;
      n->pad_axes_end[a - 1] = e;
    }
  }
  const gint64 c = ct_onnx_channels(o, in) + n->pad_axes_begin[0] + n->pad_axes_end[0];
  if (c > CT_MAX_PARAM)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "makes %lld channels, too many", (long long)c);
  if (c < 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "crops all %lld channels of %s away (pads %lld, %lld)",
                             (long long)ct_onnx_channels(o, in),
                             ct_onnx_value_name(o, in), (long long)n->pad_axes_begin[0],
                             (long long)n->pad_axes_end[0]);
  n->pad_value = value;
  n->inputs[0] = in;
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, c)) >= 0;
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
                             verb, (long long)axis, ct_onnx_axis_text(o, (int)a));
  return TRUE;
}

gboolean ct_onnx_translate_concat(ct_onnx *o, int k) {
  static const char *const attrs[] = {"axis", NULL};
  const ct_onode *nd = &o->nodes[k];
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !channel_axis(o, k, 0, TRUE, "concatenates"))
    return FALSE;
  if (nd->n_inputs < 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no inputs");
  gint64 c = 0;
  for (int i = 0; i < nd->n_inputs; i++) {
    const int v = ct_onnx_value_in(o, k, i, "input");
    if (v < 0)
      return FALSE;
    c += ct_onnx_channels(o, v);
    if (c > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "makes too many channels");
  }
  if (nd->n_inputs == 1)
    return ct_onnx_add_identity(o, k, nd->inputs[0]->value);
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_CONCAT, nd->n_inputs, 1);
  if (!n)
    return FALSE;
  for (int i = 0; i < nd->n_inputs; i++)
    n->inputs[i] = nd->inputs[i]->value;
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, c)) >= 0;
}

gboolean ct_onnx_translate_split(ct_onnx *o, int k) {
  static const char *const before13[] = {"axis", "split", NULL};
  static const char *const since13[] = {"axis", NULL};
  const ct_onode *nd = &o->nodes[k];
  const int parts = nd->n_outputs;
  if (!ct_attrs_check(o, k, o->opset < 13 ? before13 : since13) ||
      !channel_axis(o, k, 0, FALSE, "splits"))
    return FALSE;
  const int in = ct_onnx_value_in(o, k, 0, "input");
  if (in < 0)
    return FALSE;
  if (parts < 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no outputs");
  const gint64 c = ct_onnx_channels(o, in);
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
    if (!ct_onnx_const_in(o, k, 1, "split", FALSE, &t))
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
        ct_onnx_value_name(o, in), (long long)c);
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_SPLIT, 1, parts);
  if (!n)
    return FALSE;
  n->split_channels = split;
  n->inputs[0] = in;
  for (int i = 0; i < parts; i++)
    if ((n->outputs[i] = ct_onnx_value_out(o, k, i, split[i])) < 0)
      return FALSE;
  return TRUE;
}

gboolean ct_onnx_translate_depth_to_space(ct_onnx *o, int k) {
  static const char *const before11[] = {"blocksize", NULL};
  static const char *const since11[] = {"blocksize", "mode", NULL};
  gint64 b;
  const char *mode;
  if (!ct_attrs_check(o, k, o->opset < 11 ? before11 : since11) ||
      !ct_onnx_outputs(o, k, 1, "") || !ct_attr_int(o, k, "blocksize", 0, &b) ||
      !ct_attr_string(o, k, "mode", "DCR", &mode))
    return FALSE;
  const int in = ct_onnx_value_in(o, k, 0, "input");
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
  const gint64 c = ct_onnx_channels(o, in);
  if (c % (b * b) != 0)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK,
        "its input %s has %lld channels, not a multiple of blocksize^2 "
        "= %lld",
        ct_onnx_value_name(o, in), (long long)c, (long long)(b * b));
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_DEPTH_TO_SPACE, 1, 1);
  if (!n)
    return FALSE;
  n->block_size = b;
  n->depth_to_space_mode = dcr ? CT_DEPTH_TO_SPACE_DCR : CT_DEPTH_TO_SPACE_CRD;
  n->inputs[0] = in;
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, c / (b * b))) >= 0;
}
