#include "gstconvtransposevideo.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC(conv_transpose_video_debug);
#define GST_CAT_DEFAULT conv_transpose_video_debug

/* The components of a plane as the conversion entries take them: pixels of
 * `pstride` bytes, component k at byte offset[k] of a pixel and kernel
 * channel channel[k] (the format's component order); 16-bit when wide. */
typedef struct {
  guint plane;
  gint pstride, comps;
  gboolean wide;
  gint offset[CT_CONVERT_MAX_COMPS], channel[CT_CONVERT_MAX_COMPS];
} PlaneLayout;

typedef struct {
  PlaneLayout planes[GST_VIDEO_MAX_PLANES];
  gint n_planes;
} FormatLayout;

typedef struct {
  GstVideoInfo in_info, out_info;
  FormatLayout in_layout, out_layout;
} GstConvTransposeVideoPrivate;

/* The planes of a format, with the components each holds. */
static void format_layout(const GstVideoInfo *info, FormatLayout *layout) {
  memset(layout, 0, sizeof *layout);
  for (guint c = 0; c < GST_VIDEO_INFO_N_COMPONENTS(info); c++) {
    const guint plane = GST_VIDEO_INFO_COMP_PLANE(info, c);
    gint i = 0;
    while (i < layout->n_planes && layout->planes[i].plane != plane)
      i++;
    PlaneLayout *pl = &layout->planes[i];
    if (i == layout->n_planes) {
      layout->n_planes++;
      pl->plane = plane;
      pl->pstride = GST_VIDEO_INFO_COMP_PSTRIDE(info, c);
      pl->wide = GST_VIDEO_INFO_COMP_DEPTH(info, c) > 8;
    }
    pl->offset[pl->comps] = GST_VIDEO_INFO_COMP_POFFSET(info, c);
    pl->channel[pl->comps++] = (gint)c;
  }
}

G_DEFINE_ABSTRACT_TYPE_WITH_CODE(GstConvTransposeVideo, gst_conv_transpose_video,
                                 GST_TYPE_CONV_TRANSPOSE_BASE,
                                 G_ADD_PRIVATE(GstConvTransposeVideo);
                                 GST_DEBUG_CATEGORY_INIT(conv_transpose_video_debug,
                                                         "convtransposevideo", 0,
                                                         "ConvTranspose video"))

#define PRIV(self)                                                                       \
  ((GstConvTransposeVideoPrivate *)gst_conv_transpose_video_get_instance_private(        \
      GST_CONV_TRANSPOSE_VIDEO(self)))

/* In order of preference when the input's own format cannot be kept. */
static const GstVideoFormat supported_formats[] = {
    GST_VIDEO_FORMAT_GRAY8, GST_VIDEO_FORMAT_GRAY16_LE, GST_VIDEO_FORMAT_RGB,
    GST_VIDEO_FORMAT_BGR,   GST_VIDEO_FORMAT_RGBx,      GST_VIDEO_FORMAT_BGRx,
    GST_VIDEO_FORMAT_xRGB,  GST_VIDEO_FORMAT_xBGR,      GST_VIDEO_FORMAT_RGBA,
    GST_VIDEO_FORMAT_BGRA,  GST_VIDEO_FORMAT_ARGB,      GST_VIDEO_FORMAT_ABGR,
    GST_VIDEO_FORMAT_GBR,   GST_VIDEO_FORMAT_GBRA,
};

static gint format_components(const gchar *name) {
  GstVideoFormat format = gst_video_format_from_string(name);
  for (guint i = 0; i < G_N_ELEMENTS(supported_formats); i++)
    if (supported_formats[i] == format)
      return (gint)GST_VIDEO_FORMAT_INFO_N_COMPONENTS(gst_video_format_get_info(format));
  return 0;
}

static void append_format(GValue *list, const gchar *name) {
  for (guint i = 0; i < gst_value_list_get_size(list); i++)
    if (g_str_equal(g_value_get_string(gst_value_list_get_value(list, i)), name))
      return;
  GValue v = G_VALUE_INIT;
  g_value_init(&v, G_TYPE_STRING);
  g_value_set_string(&v, name);
  gst_value_list_append_and_take_value(list, &v);
}

/* Formats of the other side: the input's own where the channel count allows
 * (RGB in, 3 out: RGB first), then every other format with that count. */
static gboolean map_formats(const GValue *in, gint from, gint to, GValue *out) {
  GValue kept = G_VALUE_INIT;
  g_value_init(&kept, GST_TYPE_LIST);
  if (in && G_VALUE_HOLDS_STRING(in)) {
    append_format(&kept, g_value_get_string(in));
  } else if (in && GST_VALUE_HOLDS_LIST(in)) {
    for (guint i = 0; i < gst_value_list_get_size(in); i++) {
      const GValue *v = gst_value_list_get_value(in, i);
      if (G_VALUE_HOLDS_STRING(v))
        append_format(&kept, g_value_get_string(v));
    }
  } else {
    for (guint i = 0; i < G_N_ELEMENTS(supported_formats); i++)
      append_format(&kept, gst_video_format_to_string(supported_formats[i]));
  }
  g_value_init(out, GST_TYPE_LIST);
  gboolean any_input = FALSE;
  for (guint i = 0; i < gst_value_list_get_size(&kept); i++) {
    const gchar *name = g_value_get_string(gst_value_list_get_value(&kept, i));
    if (format_components(name) != from)
      continue;
    any_input = TRUE;
    if (from == to)
      append_format(out, name);
  }
  g_value_unset(&kept);
  if (any_input)
    for (guint i = 0; i < G_N_ELEMENTS(supported_formats); i++) {
      const GstVideoFormatInfo *info = gst_video_format_get_info(supported_formats[i]);
      if ((gint)GST_VIDEO_FORMAT_INFO_N_COMPONENTS(info) == to)
        append_format(out, GST_VIDEO_FORMAT_INFO_NAME(info));
    }
  if (gst_value_list_get_size(out) == 0) {
    g_value_unset(out);
    return FALSE;
  }
  return TRUE;
}

/* Output length of an axis, or -1 when the layer cannot produce any. */
static gint64 size_out(ct_axis a, gint64 in) {
  gint64 out;
  if (in < 1 || ct_axis_output_length(a, in, &out) != CT_OK || out < 1 || out > G_MAXINT)
    return -1;
  return out;
}

/* Input length that gives `out`, or -1 if no input does. */
static gint64 size_in(ct_axis a, gint64 out) {
  gint64 reach = a.d * (a.k - 1) + a.op + 1 - 2 * a.p; /* L_out = (L-1)*s + reach */
  gint64 grown = out - reach;
  if (grown < 0 || grown % a.s != 0)
    return -1;
  return grown / a.s + 1;
}

static gboolean map_size(const GValue *in, GValue *out, gconstpointer data) {
  const GstConvTransposeAxisMap *m = data;
  const ct_axis a = m->axis;
  const gboolean downstream = m->downstream;
  if (G_VALUE_HOLDS_INT(in)) {
    gint64 v =
        downstream ? size_out(a, g_value_get_int(in)) : size_in(a, g_value_get_int(in));
    if (v < 1 || v > G_MAXINT)
      return FALSE;
    g_value_init(out, G_TYPE_INT);
    g_value_set_int(out, (gint)v);
    return TRUE;
  }
  if (GST_VALUE_HOLDS_INT_RANGE(in)) {
    gint64 lo = gst_value_get_int_range_min(in), hi = gst_value_get_int_range_max(in);
    gint64 reach = a.d * (a.k - 1) + a.op + 1 - 2 * a.p;
    if (downstream) {
      /* The smallest input with an output, then the outputs of both ends. */
      gint64 first = ct_ceil_div(1 - reach, a.s) + 1;
      lo = size_out(a, MAX(lo, MAX(first, 1)));
      gint64 top = (G_MAXINT - reach) / a.s + 1;
      hi = size_out(a, MIN(hi, top));
    } else {
      lo = MAX(ct_ceil_div(lo - reach, a.s) + 1, 1);
      hi = ct_floor_div(hi - reach, a.s) + 1;
    }
    if (lo < 1 || hi < lo)
      return FALSE;
    if (lo == hi) {
      g_value_init(out, G_TYPE_INT);
      g_value_set_int(out, (gint)lo);
    } else {
      g_value_init(out, GST_TYPE_INT_RANGE);
      gst_value_set_int_range(out, (gint)lo, (gint)hi);
    }
    return TRUE;
  }
  if (GST_VALUE_HOLDS_LIST(in)) {
    return gst_conv_transpose_map_list(in, out, map_size, m);
  }
  return FALSE;
}

/* Frame rates scale by the temporal stride of a 3d layer. */
static gboolean map_fraction(gint n, gint d, gint stride, gboolean downstream, gint *on,
                             gint *od) {
  if (n == 0) { /* variable frame rate stays variable */
    *on = 0;
    *od = 1;
    return TRUE;
  }
  return downstream ? gst_util_fraction_multiply(n, d, stride, 1, on, od)
                    : gst_util_fraction_multiply(n, d, 1, stride, on, od);
}

static gboolean map_framerate(const GValue *in, GValue *out, gconstpointer data) {
  const GstConvTransposeAxisMap *m = data;
  const gint stride = (gint)m->axis.s;
  const gboolean downstream = m->downstream;
  gint n, d;
  if (GST_VALUE_HOLDS_FRACTION(in)) {
    if (!map_fraction(gst_value_get_fraction_numerator(in),
                      gst_value_get_fraction_denominator(in), stride, downstream, &n, &d))
      return FALSE;
    g_value_init(out, GST_TYPE_FRACTION);
    gst_value_set_fraction(out, n, d);
    return TRUE;
  }
  if (GST_VALUE_HOLDS_FRACTION_RANGE(in)) {
    const GValue *lo = gst_value_get_fraction_range_min(in);
    const GValue *hi = gst_value_get_fraction_range_max(in);
    gint ln, ld, hn, hd;
    /* Saturate instead of failing: a range up to G_MAXINT/1 stays open. */
    if (!map_fraction(gst_value_get_fraction_numerator(lo),
                      gst_value_get_fraction_denominator(lo), stride, downstream, &ln,
                      &ld))
      return FALSE;
    if (!map_fraction(gst_value_get_fraction_numerator(hi),
                      gst_value_get_fraction_denominator(hi), stride, downstream, &hn,
                      &hd)) {
      hn = G_MAXINT;
      hd = 1;
    }
    g_value_init(out, GST_TYPE_FRACTION_RANGE);
    gst_value_set_fraction_range_full(out, ln, ld, hn, hd);
    return TRUE;
  }
  if (GST_VALUE_HOLDS_LIST(in)) {
    return gst_conv_transpose_map_list(in, out, map_framerate, m);
  }
  return FALSE;
}

static GstCaps *gst_conv_transpose_video_transform_caps_for_layer(
    GstConvTransposeBase *base, const ct_layer *layer, GstPadDirection direction,
    GstCaps *caps, GstCaps *filter) {
  GstCaps *result;
  const ct_params *p = ct_layer_params(layer);
  const gboolean downstream = direction == GST_PAD_SINK;
  const gint from = (gint)(downstream ? p->in_channels : p->out_channels);
  const gint to = (gint)(downstream ? p->out_channels : p->in_channels);
  const ct_axis axis_h = ct_params_axis(p, p->rank - 2);
  const ct_axis axis_w = ct_params_axis(p, p->rank - 1);
  result = gst_caps_new_empty();
  for (guint i = 0; i < gst_caps_get_size(caps); i++) {
    const GstStructure *s = gst_caps_get_structure(caps, i);
    GstStructure *t = gst_structure_copy(s);
    GValue formats = G_VALUE_INIT;
    if (!map_formats(gst_structure_get_value(s, "format"), from, to, &formats)) {
      gst_structure_free(t);
      continue;
    }
    gst_structure_take_value(t, "format", &formats);
    gboolean ok = TRUE;
    const char *fields[2] = {"width", "height"};
    const ct_axis axes[2] = {axis_w, axis_h};
    for (int f = 0; f < 2 && ok; f++) {
      const GValue *v = gst_structure_get_value(s, fields[f]);
      GValue mapped = G_VALUE_INIT;
      if (!v)
        continue;
      ok = map_size(v, &mapped, &(GstConvTransposeAxisMap){axes[f], downstream});
      if (ok)
        gst_structure_take_value(t, fields[f], &mapped);
    }
    const GValue *rate = gst_structure_get_value(s, "framerate");
    if (ok && rate && p->rank == 3) {
      GValue mapped = G_VALUE_INIT;
      ok = map_framerate(rate, &mapped,
                         &(GstConvTransposeAxisMap){ct_params_axis(p, 0), downstream});
      if (ok)
        gst_structure_take_value(t, "framerate", &mapped);
    }
    if (!ok) {
      gst_structure_free(t);
      continue;
    }
    /* Different strides on H and W change the pixel shape. */
    if (axis_h.s != axis_w.s)
      gst_structure_remove_field(t, "pixel-aspect-ratio");
    gst_caps_append_structure(result, t);
  }
  return result;
}

static gchar *gst_conv_transpose_video_check_input_caps(GstConvTransposeBase *base,
                                                        const ct_layer *layer,
                                                        GstCaps *caps) {
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, caps))
    return g_strdup("caps are not raw video with a known format and size");
  if (GST_VIDEO_INFO_IS_INTERLACED(&info))
    return g_strdup_printf(
        "interlaced video (interlace-mode=%s) is not supported: the layer would mix "
        "the two fields of each frame; deinterlace first (deinterlace element)",
        gst_video_interlace_mode_to_string(GST_VIDEO_INFO_INTERLACE_MODE(&info)));
  const ct_params *p = ct_layer_params(layer);
  gint comps = (gint)GST_VIDEO_INFO_N_COMPONENTS(&info);
  if (comps != p->in_channels)
    return g_strdup_printf("the model needs %" G_GINT64_FORMAT
                           " input channels, format %s has "
                           "%d components",
                           p->in_channels, GST_VIDEO_INFO_NAME(&info), comps);
  const gint64 out_w =
      size_out(ct_params_axis(p, p->rank - 1), GST_VIDEO_INFO_WIDTH(&info));
  const gint64 out_h =
      size_out(ct_params_axis(p, p->rank - 2), GST_VIDEO_INFO_HEIGHT(&info));
  gint fps_n, fps_d;
  if (p->rank == 3 && GST_VIDEO_INFO_FPS_N(&info) > 0 &&
      !gst_util_fraction_multiply(GST_VIDEO_INFO_FPS_N(&info),
                                  GST_VIDEO_INFO_FPS_D(&info), (gint)p->stride[0], 1,
                                  &fps_n, &fps_d))
    return g_strdup_printf("the output frame rate, %d/%d x stride %" G_GINT64_FORMAT
                           ", is over the largest frame rate caps can carry",
                           GST_VIDEO_INFO_FPS_N(&info), GST_VIDEO_INFO_FPS_D(&info),
                           p->stride[0]);
  if (out_w < 1 || out_h < 1)
    return g_strdup_printf(
        "a %dx%d frame gives no output of a size this element can carry "
        "(too small for the layer, or over 2^31 on an axis)",
        GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info));
  /* Refused here, before anything is allocated: an output frame as floats
   * (and the input it comes from) must fit the same limit as stream state. */
  double frame_bytes = 4.0 * (double)p->out_channels * (double)out_w * (double)out_h;
  if (p->rank == 3) {
    /* One input frame can finish s_T output frames at once, and the end of
     * a stream the frames of the temporal kernel's reach. */
    const ct_axis t = ct_params_axis(p, 0);
    frame_bytes *= (double)(t.s + t.d * (t.k - 1) + t.op + 1);
  }
  if (frame_bytes > CT_STREAM_MAX_BYTES)
    return g_strdup_printf(
        "a %dx%d frame gives %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
        " output frames: %.0f MB of float32 per input frame, over the limit of %.0f MB",
        GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info), out_w, out_h,
        frame_bytes / 1e6, CT_STREAM_MAX_BYTES / 1e6);
  return NULL;
}

static gboolean gst_conv_transpose_video_configure(GstConvTransposeBase *base,
                                                   GstCaps *incaps, GstCaps *outcaps,
                                                   GstConvTransposeConfig *config) {
  GstConvTransposeVideoPrivate *priv = PRIV(base);
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(base);
  if (!gst_video_info_from_caps(&priv->in_info, incaps) ||
      !gst_video_info_from_caps(&priv->out_info, outcaps)) {
    GST_ELEMENT_ERROR(base, CORE, NEGOTIATION, ("unparsable video caps"),
                      ("%" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT, incaps, outcaps));
    return FALSE;
  }
  format_layout(&priv->in_info, &priv->in_layout);
  format_layout(&priv->out_info, &priv->out_layout);
  if (klass->rank == 2) {
    config->frame_shape[0] = GST_VIDEO_INFO_WIDTH(&priv->in_info);
    config->buffer_is_signal = TRUE;
    config->rate_n = 0; /* a frame keeps its own timestamps */
  } else {
    config->frame_shape[0] = GST_VIDEO_INFO_HEIGHT(&priv->in_info);
    config->frame_shape[1] = GST_VIDEO_INFO_WIDTH(&priv->in_info);
    config->one_buffer_per_step = TRUE;
    config->rate_n = GST_VIDEO_INFO_FPS_N(&priv->in_info);
    config->rate_d = GST_VIDEO_INFO_FPS_D(&priv->in_info);
  }
  return TRUE;
}

static gboolean gst_conv_transpose_video_count_steps(GstConvTransposeBase *base,
                                                     GstBuffer *inbuf, gint64 *n_steps) {
  GstConvTransposeVideoPrivate *priv = PRIV(base);
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(base);
  /* With a GstVideoMeta the frame is what the meta says (strides may be
   * tighter than the default): mapping checks it. */
  GstVideoFrame frame;
  const gboolean has_meta = gst_buffer_get_video_meta(inbuf) != NULL;
  const gboolean maps =
      has_meta && gst_video_frame_map(&frame, &priv->in_info, inbuf, GST_MAP_READ);
  if (maps)
    gst_video_frame_unmap(&frame);
  if (has_meta ? !maps
               : gst_buffer_get_size(inbuf) < GST_VIDEO_INFO_SIZE(&priv->in_info)) {
    GST_ELEMENT_ERROR(
        base, STREAM, FORMAT,
        ("buffer of %" G_GSIZE_FORMAT " bytes is smaller than a %dx%d %s frame "
         "(%" G_GSIZE_FORMAT " bytes)",
         gst_buffer_get_size(inbuf), GST_VIDEO_INFO_WIDTH(&priv->in_info),
         GST_VIDEO_INFO_HEIGHT(&priv->in_info), GST_VIDEO_INFO_NAME(&priv->in_info),
         GST_VIDEO_INFO_SIZE(&priv->in_info)),
        (NULL));
    return FALSE;
  }
  *n_steps = klass->rank == 2 ? GST_VIDEO_INFO_HEIGHT(&priv->in_info) : 1;
  return TRUE;
}

/* A frame mapped for conversion, shared by the threads that split its rows. */
typedef struct {
  GstVideoFrame frame;
  const FormatLayout *layout;
  const ct_dsp *dsp;
  float *planar;
  gint64 chan_stride;
  gint rows_per_task;
  /* Unpacking: row y of a channel starts at line_offset + y * line_stride,
   * with `left` and `right` zeros around it and, in 3d, `above` and
   * `below` zero lines around the picture (the kernel's frame layout). */
  gint64 line_stride, line_offset, left, right, above, below;
} FrameJob;

/* planar[c][y][x] = component c / (2^depth - 1) for rows [y0, y1),
 * honouring strides and plane offsets of the mapped frame, and the zero
 * borders of those rows (and of the picture, by the first and last rows). */
static void unpack_rows(FrameJob *job, gint y0, gint y1) {
  GstVideoFrame *frame = &job->frame;
  const gint width = GST_VIDEO_FRAME_WIDTH(frame), height = GST_VIDEO_FRAME_HEIGHT(frame);
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(frame); c++) {
    float *chan = job->planar + (gint64)c * job->chan_stride + job->line_offset;
    if (y0 == 0)
      memset(chan - job->left - job->above * job->line_stride, 0,
             (gsize)(job->above * job->line_stride) * sizeof(float));
    if (y1 == height)
      memset(chan + (gint64)(height - 1) * job->line_stride + width + job->right, 0,
             (gsize)(job->below * job->line_stride) * sizeof(float));
  }
  for (gint i = 0; i < job->layout->n_planes; i++) {
    const PlaneLayout *pl = &job->layout->planes[i];
    const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(frame, pl->plane);
    const gint stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, pl->plane);
    ct_unpack u = {.n = width,
                   .pstride = pl->pstride,
                   .comps = pl->comps,
                   .left = job->left,
                   .right = job->right};
    memcpy(u.offset, pl->offset, sizeof u.offset);
    for (gint y = y0; y < y1; y++) {
      u.src = data + (gsize)y * (gsize)stride;
      for (gint k = 0; k < pl->comps; k++)
        u.dst[k] = job->planar + pl->channel[k] * job->chan_stride + job->line_offset +
                   (gint64)y * job->line_stride;
      (pl->wide ? job->dsp->unpack_u16 : job->dsp->unpack_u8)(&u);
    }
  }
}

static void unpack_task(void *ctx, int task, int worker) {
  FrameJob *job = ctx;
  (void)worker;
  const gint y0 = task * job->rows_per_task;
  unpack_rows(job, y0, MIN(y0 + job->rows_per_task, GST_VIDEO_FRAME_HEIGHT(&job->frame)));
}

/* Rows split in a few tasks per thread: conversion is memory-bound work the
 * threads of n-threads share. */
static gint row_tasks(GstConvTransposeBase *base, FrameJob *job) {
  const gint height = GST_VIDEO_FRAME_HEIGHT(&job->frame);
  const gint tasks = MIN(height, 4 * gst_conv_transpose_base_threads(base));
  job->rows_per_task = (height + tasks - 1) / tasks;
  return (height + job->rows_per_task - 1) / job->rows_per_task;
}

static gboolean gst_conv_transpose_video_unpack(GstConvTransposeBase *base,
                                                GstBuffer *inbuf, float *planar,
                                                gint64 chan_stride) {
  GstConvTransposeVideoPrivate *priv = PRIV(base);
  FrameJob job = {.layout = &priv->in_layout,
                  .dsp = gst_conv_transpose_base_dsp(base),
                  .planar = planar,
                  .chan_stride = chan_stride};
  gint64 shape[2], offset[2];
  gst_conv_transpose_base_frame_layout(base, shape, offset);
  const gint64 width = GST_VIDEO_INFO_WIDTH(&priv->in_info);
  const gint64 height = GST_VIDEO_INFO_HEIGHT(&priv->in_info);
  if (GST_CONV_TRANSPOSE_BASE_GET_CLASS(base)->rank == 2) {
    job.line_stride = shape[0]; /* a row is a frame */
    job.line_offset = job.left = offset[0];
  } else {
    job.line_stride = shape[1];
    job.line_offset = offset[0] * shape[1] + offset[1];
    job.left = offset[1];
    job.above = offset[0];
    job.below = shape[0] - offset[0] - height;
  }
  job.right = job.line_stride - job.left - width;
  if (!gst_video_frame_map(&job.frame, &priv->in_info, inbuf, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(base, STREAM, FORMAT, ("cannot map an input frame"), (NULL));
    return FALSE;
  }
  gst_conv_transpose_base_parallel(base, row_tasks(base, &job), unpack_task, &job);
  gst_video_frame_unmap(&job.frame);
  return TRUE;
}

/* Rows [y0, y1) of every plane from planar, which holds the rows from
 * first_row on: clamped to [0, 1], scaled and rounded to nearest; the x
 * bytes of RGBx & co set to 255 and the bytes past the pixels of a row (odd
 * widths) to 0, so nothing in the output is uninitialised. */
static void pack_rows(const FrameJob *job, const float *planar, gint64 chan_stride,
                      gint first_row, gint y0, gint y1) {
  const GstVideoFrame *frame = &job->frame;
  const gint width = GST_VIDEO_FRAME_WIDTH(frame);
  for (gint i = 0; i < job->layout->n_planes; i++) {
    const PlaneLayout *pl = &job->layout->planes[i];
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(frame, pl->plane);
    const gsize stride = (gsize)GST_VIDEO_FRAME_PLANE_STRIDE(frame, pl->plane);
    const gsize used = (gsize)width * (gsize)pl->pstride;
    ct_pack p = {.n = width, .pstride = pl->pstride, .comps = pl->comps, .fill = 0xff};
    memcpy(p.offset, pl->offset, sizeof p.offset);
    for (gint y = y0; y < y1; y++) {
      p.dst = data + (gsize)y * stride;
      for (gint k = 0; k < pl->comps; k++)
        p.src[k] =
            planar + pl->channel[k] * chan_stride + (gint64)(y - first_row) * width;
      (pl->wide ? job->dsp->pack_u16 : job->dsp->pack_u8)(&p);
      if (stride > used)
        memset(p.dst + used, 0, stride - used);
    }
  }
}

static void pack_task(void *ctx, int task, int worker) {
  FrameJob *job = ctx;
  (void)worker;
  const gint y0 = task * job->rows_per_task;
  pack_rows(job, job->planar, job->chan_stride, 0, y0,
            MIN(y0 + job->rows_per_task, GST_VIDEO_FRAME_HEIGHT(&job->frame)));
}

static gboolean gst_conv_transpose_video_pack(GstConvTransposeBase *base,
                                              const float *planar, gint64 chan_stride,
                                              gint64 n_steps, GstBuffer *outbuf) {
  GstConvTransposeVideoPrivate *priv = PRIV(base);
  /* One frame: all its rows (2d) or one step (3d). */
  (void)n_steps;
  FrameJob job = {.layout = &priv->out_layout,
                  .dsp = gst_conv_transpose_base_dsp(base),
                  .planar = (float *)planar,
                  .chan_stride = chan_stride};
  if (!gst_video_frame_map(&job.frame, &priv->out_info, outbuf, GST_MAP_WRITE))
    return FALSE;
  gst_conv_transpose_base_parallel(base, row_tasks(base, &job), pack_task, &job);
  gst_video_frame_unmap(&job.frame);
  return TRUE;
}

/* 2d: output rows packed as the stream computes them (see begin_pack in
 * gstconvtransposebase.h). */
static gpointer gst_conv_transpose_video_begin_pack(GstConvTransposeBase *base,
                                                    GstBuffer *outbuf) {
  FrameJob *job = g_new0(FrameJob, 1);
  job->layout = &PRIV(base)->out_layout;
  job->dsp = gst_conv_transpose_base_dsp(base);
  if (!gst_video_frame_map(&job->frame, &PRIV(base)->out_info, outbuf, GST_MAP_WRITE)) {
    g_free(job);
    return NULL;
  }
  return job;
}

static void gst_conv_transpose_video_pack_steps(void *packer, int64_t first,
                                                int64_t n_steps, const float *data,
                                                int64_t chan_stride) {
  FrameJob *job = packer;
  pack_rows(job, data, chan_stride, (gint)first, (gint)first, (gint)(first + n_steps));
}

static void gst_conv_transpose_video_end_pack(GstConvTransposeBase *base,
                                              gpointer packer) {
  FrameJob *job = packer;
  (void)base;
  gst_video_frame_unmap(&job->frame);
  g_free(job);
}

static gsize gst_conv_transpose_video_output_size(GstConvTransposeBase *base,
                                                  gint64 n_steps) {
  (void)n_steps;
  return GST_VIDEO_INFO_SIZE(&PRIV(base)->out_info);
}

static void gst_conv_transpose_video_init(GstConvTransposeVideo *self) {
  gst_video_info_init(&PRIV(self)->in_info);
  gst_video_info_init(&PRIV(self)->out_info);
}

/* The other side keeps this side's format where it can (RGB in, RGB out):
 * left to the default, the order of the peer's list decides (videoconvert
 * puts planar GBR before RGB). */
static GstCaps *gst_conv_transpose_video_fixate_caps(GstBaseTransform *trans,
                                                     GstPadDirection direction,
                                                     GstCaps *caps, GstCaps *othercaps) {
  const gchar *format =
      gst_caps_get_size(caps) > 0
          ? gst_structure_get_string(gst_caps_get_structure(caps, 0), "format")
          : NULL;
  GValue own = G_VALUE_INIT;
  if (format) {
    g_value_init(&own, G_TYPE_STRING);
    g_value_set_string(&own, format);
  }
  for (guint i = 0; format && i < gst_caps_get_size(othercaps); i++) {
    const GValue *formats =
        gst_structure_get_value(gst_caps_get_structure(othercaps, i), "format");
    if (formats && gst_value_can_intersect(formats, &own)) {
      GstCaps *kept = gst_caps_copy_nth(othercaps, i);
      gst_structure_fixate_field_string(gst_caps_get_structure(kept, 0), "format",
                                        format);
      gst_caps_unref(othercaps);
      othercaps = kept;
      break;
    }
  }
  if (format)
    g_value_unset(&own);
  return GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_video_parent_class)
      ->fixate_caps(trans, direction, caps, othercaps);
}

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_CONV_TRANSPOSE_VIDEO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_CONV_TRANSPOSE_VIDEO_CAPS));

void gst_conv_transpose_video_class_describe(GstConvTransposeVideoClass *klass, gint rank,
                                             const gchar *long_name,
                                             const gchar *description) {
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gst_element_class_set_static_metadata(element_class, long_name,
                                        "Filter/Converter/Video/Scaler", description,
                                        "gst-convtranspose developers");
  gst_element_class_add_static_metadata(
      element_class, GST_ELEMENT_METADATA_DOC_URI,
      CT_DOC_URL "#gstreamer-convtranspose2d-and-convtranspose3d-video");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  GST_CONV_TRANSPOSE_BASE_CLASS(klass)->rank = rank;
}

static void gst_conv_transpose_video_class_init(GstConvTransposeVideoClass *klass) {
  GstConvTransposeBaseClass *base_class = GST_CONV_TRANSPOSE_BASE_CLASS(klass);
  GST_BASE_TRANSFORM_CLASS(klass)->fixate_caps = gst_conv_transpose_video_fixate_caps;
  base_class->transform_caps_for_layer =
      gst_conv_transpose_video_transform_caps_for_layer;
  base_class->check_input_caps = gst_conv_transpose_video_check_input_caps;
  base_class->configure = gst_conv_transpose_video_configure;
  base_class->count_steps = gst_conv_transpose_video_count_steps;
  base_class->unpack = gst_conv_transpose_video_unpack;
  base_class->pack = gst_conv_transpose_video_pack;
  base_class->begin_pack = gst_conv_transpose_video_begin_pack;
  base_class->pack_steps = gst_conv_transpose_video_pack_steps;
  base_class->end_pack = gst_conv_transpose_video_end_pack;
  base_class->output_size = gst_conv_transpose_video_output_size;
  gst_type_mark_as_plugin_api(GST_TYPE_CONV_TRANSPOSE_VIDEO, 0);
}
