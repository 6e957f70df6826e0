/* Convolutions and pools: the window attributes they share (strides,
 * dilations, pads, auto_pad resolved), the weight and bias checked against
 * the channels, ConvTranspose's SAME and output_shape turned into a crop or
 * output_padding. */
#include "model/onnx-translate.h"

#include <string.h>

#include "model/onnx-attrs.h"
#include "model/onnx-sizes.h"

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
    if (total > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "auto_pad %s pads %lld, more than %lld", w->auto_pad,
                               (long long)total, (long long)CT_MAX_PARAM);
    /* SAME_UPPER puts the odd one at the end, SAME_LOWER at the start. */
    w->pad_begin[a] = upper ? total / 2 : total - total / 2;
    w->pad_end[a] = total - w->pad_begin[a];
  }
  return TRUE;
}

/* The weight [A, B, k...] with rank + 2 dims; the kernel taken from it and
 * checked against kernel_shape. */
static gboolean conv_weight(ct_onnx *o, int k, ct_otensor **w, window *win) {
  if (!ct_onnx_const_in(o, k, 1, "weight", TRUE, w) ||
      !ct_onnx_float_constant(o, k, *w, "weight"))
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
  if (!ct_onnx_const_in(o, k, 2, "bias", FALSE, &b))
    return FALSE;
  if (!b)
    return TRUE;
  if (!ct_onnx_float_constant(o, k, b, "bias"))
    return FALSE;
  if (b->rank != 1 || b->dims[0] != out_channels)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its bias has dims %s; it must be [%lld], one per output "
                             "channel",
                             ct_otensor_dims_text(o, b), (long long)out_channels);
  n->bias = ct_onnx_floats(o, b);
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

gboolean ct_onnx_translate_conv(ct_onnx *o, int k) {
  static const char *const attrs[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                      "pads",     "strides",   NULL};
  window w = {0};
  gint64 g;
  ct_otensor *wt;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  const int in = ct_onnx_value_in(o, k, 0, "input");
  if (in < 0 || !read_group(o, k, &g) || !conv_weight(o, k, &wt, &w) ||
      !read_window(o, k, &w) || !resolve_same(o, k, &w))
    return FALSE;
  const gint64 c = ct_onnx_channels(o, in), m = wt->dims[0], per_group = wt->dims[1];
  gint64 takes;
  if (!ct_mul_i64(per_group, g, &takes) || takes != c)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its weight %s with group %lld takes %lld input channels, "
                             "but its input %s has %lld",
                             ct_otensor_dims_text(o, wt), (long long)g,
                             (long long)per_group * g, ct_onnx_value_name(o, in),
                             (long long)c);
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
  n->weight = ct_onnx_floats(o, wt);
  if (!n->weight || !conv_bias(o, k, m, n))
    return FALSE;
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, m)) >= 0;
}

/* ConvTranspose's SAME: the output stride times the input, so the crop is
 * output_padding + (k - 1) d + 1 - s whatever the length (ONNX's split:
 * SAME_UPPER crops the odd one at the end); a negative crop extends the
 * output, which is output_padding. */
static gboolean resolve_same_transpose(ct_onnx *o, int k, window *w) {
  const gboolean upper = strcmp(w->auto_pad, "SAME_UPPER") == 0;
  if (!upper && strcmp(w->auto_pad, "SAME_LOWER") != 0)
    return TRUE;
  for (int a = 0; a < o->rank; a++) {
    const gint64 total =
        w->output_padding[a] + (w->kernel[a] - 1) * w->dilation[a] + 1 - w->stride[a];
    if (total > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "auto_pad %s crops %lld, more than %lld", w->auto_pad,
                               (long long)total, (long long)CT_MAX_PARAM);
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
    if (total > CT_MAX_PARAM)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "auto_pad %s crops %lld, more than %lld", w->auto_pad,
                               (long long)total, (long long)CT_MAX_PARAM);
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

gboolean ct_onnx_translate_conv_transpose(ct_onnx *o, int k) {
  static const char *const attrs[] = {"auto_pad",     "dilations",      "group",
                                      "kernel_shape", "output_padding", "output_shape",
                                      "pads",         "strides",        NULL};
  window w = {0};
  gint64 g;
  ct_otensor *wt;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  const int in = ct_onnx_value_in(o, k, 0, "input");
  if (in < 0 || !read_group(o, k, &g) || !conv_weight(o, k, &wt, &w) ||
      !read_window(o, k, &w) ||
      !axis_list(o, k, "output_padding", 1, 0, 0, w.output_padding, NULL))
    return FALSE;
  /* With output_shape, pads are ignored (ONNX). */
  if (ct_attr(o, k, "output_shape")) {
    if (!resolve_output_shape(o, k, in, &w))
      return FALSE;
  } else if (!resolve_same_transpose(o, k, &w)) {
    return FALSE;
  }
  const gint64 c = ct_onnx_channels(o, in), per_group = wt->dims[1];
  gint64 m;
  if (wt->dims[0] != c)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its weight %s takes %lld input channels, but its input %s "
                             "has %lld",
                             ct_otensor_dims_text(o, wt), (long long)wt->dims[0],
                             ct_onnx_value_name(o, in), (long long)c);
  if (c % g != 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its input %s has %lld channels, not a multiple of group "
                             "%lld",
                             ct_onnx_value_name(o, in), (long long)c, (long long)g);
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
  n->weight = ct_onnx_floats(o, wt);
  if (!n->weight || !conv_bias(o, k, m, n))
    return FALSE;
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, m)) >= 0;
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

gboolean ct_onnx_translate_pool(ct_onnx *o, int k, gboolean max) {
  /* ceil_mode (and MaxPool's dilations) came with opset 10; AveragePool's
   * dilations only with 19. */
  static const char *const max9[] = {"auto_pad",      "kernel_shape", "pads",
                                     "storage_order", "strides",      NULL};
  static const char *const max10[] = {"auto_pad",     "ceil_mode", "dilations",
                                      "kernel_shape", "pads",      "storage_order",
                                      "strides",      NULL};
  static const char *const avg9[] = {"auto_pad", "count_include_pad", "kernel_shape",
                                     "pads",     "strides",           NULL};
  static const char *const avg10[] = {
      "auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads",
      "strides",  NULL};
  const char *const *attrs =
      max ? (o->opset < 10 ? max9 : max10) : (o->opset < 10 ? avg9 : avg10);
  window w = {0};
  gboolean given, unused, ceil_mode = FALSE, include_pad = FALSE;
  if (!ct_attrs_check(o, k, attrs) ||
      !ct_onnx_outputs(o, k, max ? 2 : 1, "MaxPool's indices"))
    return FALSE;
  const int in = ct_onnx_value_in(o, k, 0, "input");
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
  return (n->outputs[0] = ct_onnx_value_out(o, k, 0, ct_onnx_channels(o, in))) >= 0;
}
