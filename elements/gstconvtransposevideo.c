#include "gstconvtransposevideo.h"

#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>
#endif
#include <string.h>

#include "kernels/dsp.h"

GST_DEBUG_CATEGORY_STATIC(conv_transpose_video_debug);
#define GST_CAT_DEFAULT conv_transpose_video_debug

typedef struct {
  GstVideoInfo in_info, out_info;
} GstConvTransposeVideoPrivate;

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

typedef struct {
  ct_axis axis;
  gboolean downstream;
} SizeMap;

static gboolean map_size(const GValue *in, GValue *out, gconstpointer data) {
  const SizeMap *m = data;
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

typedef struct {
  gint stride;
  gboolean downstream;
} RateMap;

static gboolean map_framerate(const GValue *in, GValue *out, gconstpointer data) {
  const RateMap *m = data;
  const gint stride = m->stride;
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
      ok = map_size(v, &mapped, &(SizeMap){axes[f], downstream});
      if (ok)
        gst_structure_take_value(t, fields[f], &mapped);
    }
    const GValue *rate = gst_structure_get_value(s, "framerate");
    if (ok && rate && p->rank == 3) {
      GValue mapped = G_VALUE_INIT;
      ok = map_framerate(rate, &mapped, &(RateMap){(gint)p->stride[0], downstream});
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
  float *planar;
  gint64 chan_stride;
  gint rows_per_task;
  /* Unpacking: row y of a channel starts at line_offset + y * line_stride,
   * with `left` and `right` zeros around it and, in 3d, `above` and
   * `below` zero lines around the picture (the kernel's frame layout). */
  gint64 line_stride, line_offset, left, right, above, below;
} FrameJob;

#ifdef __SSE2__
/* Sixteen bytes as floats divided by 255 (the division rounds exactly as the
 * scalar one). */
static void bytes_to_floats(__m128i bytes, float *out) {
  const __m128i zero = _mm_setzero_si128();
  const __m128 scale = _mm_set1_ps(255.0f);
  const __m128i lo = _mm_unpacklo_epi8(bytes, zero), hi = _mm_unpackhi_epi8(bytes, zero);
  const __m128i w[4] = {_mm_unpacklo_epi16(lo, zero), _mm_unpackhi_epi16(lo, zero),
                        _mm_unpacklo_epi16(hi, zero), _mm_unpackhi_epi16(hi, zero)};
  for (int j = 0; j < 4; j++)
    _mm_storeu_ps(out + 4 * j, _mm_div_ps(_mm_cvtepi32_ps(w[j]), scale));
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/* One component of 3-byte pixels, sixteen pixels (48 bytes) at a time:
 * output byte i is input byte 3 * i, taken from whichever 16-byte block
 * holds it. */
__attribute__((target("ssse3"))) static gint gather3_ssse3(const guint8 *px, gint n,
                                                           float *out) {
  static const gint8 masks[3][16] = {
      {0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13}};
  const __m128i m0 = _mm_loadu_si128((const __m128i *)masks[0]);
  const __m128i m1 = _mm_loadu_si128((const __m128i *)masks[1]);
  const __m128i m2 = _mm_loadu_si128((const __m128i *)masks[2]);
  gint x = 0;
  for (; x + 16 <= n; x += 16) {
    const guint8 *p = px + 3 * x;
    const __m128i v = _mm_or_si128(
        _mm_or_si128(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), m0),
                     _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), m1)),
        _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), m2));
    bytes_to_floats(v, out + x);
  }
  return x;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX512_BYTES 1
#include <immintrin.h>
/* Byte permutes between 3-byte pixels and byte planes, 64 pixels (192
 * bytes, three vectors) at a time. Packing: output vector o, byte t is
 * byte k = 64 o + t of the pixels, plane k % 3 at pixel k / 3; planes 0
 * and 1 come from a two-source permute, plane 2 from a masked one over it.
 * Unpacking one component: byte i is pixel byte 3 i, from the first two
 * vectors or (masked) the third. */
static struct {
  guint8 from01[3][64], from2[3][64];
  guint64 mask2[3];
  guint8 gather01[64], gather2[64];
  guint64 gather_mask2;
} byte_tables;

static void init_byte_tables(void) {
  for (int o = 0; o < 3; o++)
    for (int t = 0; t < 64; t++) {
      const int k = 64 * o + t, plane = k % 3, pixel = k / 3;
      byte_tables.from01[o][t] = (guint8)(plane == 1 ? 64 + pixel : pixel);
      byte_tables.from2[o][t] = (guint8)pixel;
      if (plane == 2)
        byte_tables.mask2[o] |= (guint64)1 << t;
    }
  for (int i = 0; i < 64; i++) {
    byte_tables.gather01[i] = (guint8)(3 * i < 128 ? 3 * i : 0);
    byte_tables.gather2[i] = (guint8)(3 * i < 128 ? 0 : 3 * i - 128);
    if (3 * i >= 128)
      byte_tables.gather_mask2 |= (guint64)1 << i;
  }
}

/* Whether the AVX-512 byte conversions run: the CPU has them and CT_DSP
 * (which forces the kernels' instruction-set level, for tests) does not
 * ask for less. */
static gboolean use_avx512_bytes(void) {
  static gsize once = 0;
  static gboolean usable;
  if (g_once_init_enter(&once)) {
    usable = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vbmi") &&
             strcmp(ct_dsp_default()->name, "avx512") == 0;
    if (usable)
      init_byte_tables();
    g_once_init_leave(&once, 1);
  }
  return usable;
}

/* One component of 3-byte pixels as floats divided by 255 (the same
 * division as the scalar code), 64 pixels at a time; stops while the 192
 * bytes read still end inside the row (see unpack_bytes_simd). */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static gint
gather3_avx512(const guint8 *px, gint n, float *out) {
  const __m512i from01 = _mm512_loadu_si512(byte_tables.gather01);
  const __m512i from2 = _mm512_loadu_si512(byte_tables.gather2);
  const __m512 scale = _mm512_set1_ps(255.0f);
  gint x = 0;
  for (; x + 64 <= n; x += 64) {
    const guint8 *p = px + 3 * x;
    const __m512i v = _mm512_mask_permutexvar_epi8(
        _mm512_permutex2var_epi8(_mm512_loadu_si512(p), from01,
                                 _mm512_loadu_si512(p + 64)),
        byte_tables.gather_mask2, from2, _mm512_loadu_si512(p + 128));
    /* Immediate lane numbers (also at -O0): one line per 16 pixels. */
#define GATHER3_STORE16(lane)                                                            \
  _mm512_storeu_ps(out + x + 16 * (lane),                                                \
                   _mm512_div_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(                \
                                     _mm512_extracti32x4_epi32(v, lane))),               \
                                 scale))
    GATHER3_STORE16(0);
    GATHER3_STORE16(1);
    GATHER3_STORE16(2);
    GATHER3_STORE16(3);
#undef GATHER3_STORE16
  }
  return x;
}
#endif

/* The first pixels of a row of 8-bit components with SIMD; returns how many
 * were converted. px points at the component in the first pixel; with a
 * pixel stride of 3 the 48 bytes read for 16 pixels start there and end
 * before the last pixel's end. */
static gint unpack_bytes_simd(const guint8 *px, gint pstride, gint n, float *out) {
  gint x = 0;
#ifdef __SSE2__
  if (pstride == 1)
    for (; x + 16 <= n; x += 16)
      bytes_to_floats(_mm_loadu_si128((const __m128i *)(px + x)), out + x);
  if (pstride == 4) {
    const __m128i low = _mm_set1_epi32(0xff);
    const __m128 scale = _mm_set1_ps(255.0f);
    /* The last pixel's 4 bytes may end before px + 4n when the component is
     * not the first byte: stop one pixel early. */
    for (; x + 5 <= n; x += 4)
      _mm_storeu_ps(out + x,
                    _mm_div_ps(_mm_cvtepi32_ps(_mm_and_si128(
                                   _mm_loadu_si128((const __m128i *)(px + 4 * x)), low)),
                               scale));
  }
#endif
#if defined(__x86_64__) && defined(__GNUC__)
  /* 192 (48) bytes from the component of pixel x reach the component of
   * pixel x + 63 (x + 15) plus 2 bytes: stop one pixel early. */
#ifdef HAVE_AVX512_BYTES
  if (pstride == 3 && n > 1 && use_avx512_bytes())
    x = gather3_avx512(px, n - 1, out);
#endif
  if (pstride == 3 && n > 1 && __builtin_cpu_supports("ssse3"))
    x += gather3_ssse3(px + 3 * x, n - 1 - x, out + x);
#endif
  return x;
}

/* planar[c][y][x] = component c / (2^depth - 1) for rows [y0, y1),
 * honouring strides and plane offsets of the mapped frame, and the zero
 * borders of those rows (and of the picture, by the first and last rows). */
static void unpack_rows(FrameJob *job, gint y0, gint y1) {
  GstVideoFrame *frame = &job->frame;
  const gint width = GST_VIDEO_FRAME_WIDTH(frame), height = GST_VIDEO_FRAME_HEIGHT(frame);
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(frame); c++) {
    float *chan = job->planar + (gint64)c * job->chan_stride + job->line_offset;
    for (gint y = y0; y < y1; y++) {
      memset(chan + (gint64)y * job->line_stride - job->left, 0,
             (gsize)job->left * sizeof(float));
      memset(chan + (gint64)y * job->line_stride + width, 0,
             (gsize)job->right * sizeof(float));
    }
    if (y0 == 0)
      memset(chan - job->left - job->above * job->line_stride, 0,
             (gsize)(job->above * job->line_stride) * sizeof(float));
    if (y1 == height)
      memset(chan + (gint64)(height - 1) * job->line_stride + width + job->right, 0,
             (gsize)(job->below * job->line_stride) * sizeof(float));
  }
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(frame); c++) {
    const guint8 *data = GST_VIDEO_FRAME_COMP_DATA(frame, c);
    const gint pstride = GST_VIDEO_FRAME_COMP_PSTRIDE(frame, c);
    const gint stride = GST_VIDEO_FRAME_COMP_STRIDE(frame, c);
    const gboolean wide = GST_VIDEO_FRAME_COMP_DEPTH(frame, c) > 8;
    const float scale = wide ? 65535.0f : 255.0f;
    float *dst = job->planar + (gint64)c * job->chan_stride + job->line_offset;
    for (gint y = y0; y < y1; y++) {
      const guint8 *px = data + (gsize)y * (gsize)stride;
      float *line = dst + (gint64)y * job->line_stride;
      /* Gather with the pixel stride, then divide (vectorisable). */
      gint x = wide ? 0 : unpack_bytes_simd(px, pstride, width, line);
      px += (gsize)x * (gsize)pstride;
      if (wide)
        for (; x < width; x++, px += pstride)
          line[x] = (float)GST_READ_UINT16_LE(px) / scale;
      else
        for (; x < width; x++, px += pstride)
          line[x] = (float)*px / scale;
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
  FrameJob job = {.planar = planar, .chan_stride = chan_stride};
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

enum { QUANT_CHUNK = 256 };

/* levels[i] = (int)(clamp(v[i], 0, 1) * scale + 0.5), NaN giving 0: the
 * contract's clamp and round to nearest. SSE2 (every x86-64) four at a time;
 * max/min return their second operand for NaN, which sends NaN to 0. */
static void quantize(const float *v, gint n, float scale, gint32 *levels) {
  gint i = 0;
#ifdef __SSE2__
  const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f);
  const __m128 s = _mm_set1_ps(scale), half = _mm_set1_ps(0.5f);
  for (; i + 4 <= n; i += 4) {
    __m128 x = _mm_min_ps(_mm_max_ps(_mm_loadu_ps(v + i), zero), one);
    _mm_storeu_si128((__m128i *)(levels + i),
                     _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(x, s), half)));
  }
#endif
  for (; i < n; i++) {
    float x = v[i] > 0.0f ? v[i] : 0.0f;
    x = x < 1.0f ? x : 1.0f;
    levels[i] = (gint32)(x * scale + 0.5f);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* quantize_u8 thirty-two at a time where the CPU has AVX2: the same
 * operations per value. Returns how many were done. */
__attribute__((target("avx2"))) static gint quantize_u8_avx2(const float *v, gint n,
                                                             guint8 *out) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const __m256 s = _mm256_set1_ps(255.0f), half = _mm256_set1_ps(0.5f);
  /* packs work within 128-bit lanes: this puts the 4-value groups back in
   * order. */
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  gint i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i q[4];
    for (int j = 0; j < 4; j++) {
      __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(v + i + 8 * j), zero), one);
      q[j] = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(x, s), half));
    }
    const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]),
                                              _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)(out + i), _mm256_permutevar8x32_epi32(bytes, order));
  }
  return i;
}
#endif

/* quantize() into bytes (8-bit components), sixteen at a time: the same
 * operations in the same order, then saturating packs that change nothing
 * for levels already in [0, 255]. */
static void quantize_u8(const float *v, gint n, guint8 *out) {
  gint i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2"))
    i = quantize_u8_avx2(v, n, out);
#endif
#ifdef __SSE2__
  const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f);
  const __m128 s = _mm_set1_ps(255.0f), half = _mm_set1_ps(0.5f);
  for (; i + 16 <= n; i += 16) {
    __m128i q[4];
    for (int j = 0; j < 4; j++) {
      __m128 x = _mm_min_ps(_mm_max_ps(_mm_loadu_ps(v + i + 4 * j), zero), one);
      q[j] = _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(x, s), half));
    }
    _mm_storeu_si128((__m128i *)(out + i), _mm_packus_epi16(_mm_packs_epi32(q[0], q[1]),
                                                            _mm_packs_epi32(q[2], q[3])));
  }
#endif
  gint32 levels[16];
  for (; i < n; i += 16) {
    const gint m = MIN(16, n - i);
    quantize(v + i, m, 255.0f, levels);
    for (gint k = 0; k < m; k++)
      out[i + k] = (guint8)levels[k];
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_SSSE3_INTERLEAVE 1
/* Three byte planes into 3-byte pixels, sixteen pixels at a time: byte k of
 * each 16-byte output block takes plane k % 3 at pixel k / 3. */
__attribute__((target("ssse3"))) static gint
interleave3_ssse3(const guint8 *const *planes, gint n, guint8 *out) {
  static const gint8 masks[3][3][16] = {
      {{0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5},
       {-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1},
       {-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1}},
      {{-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1},
       {5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10},
       {-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1}},
      {{-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1},
       {-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1},
       {10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15}}};
  gint i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128((const __m128i *)(planes[0] + i));
    const __m128i b = _mm_loadu_si128((const __m128i *)(planes[1] + i));
    const __m128i c = _mm_loadu_si128((const __m128i *)(planes[2] + i));
    for (int o = 0; o < 3; o++) {
      __m128i v = _mm_or_si128(
          _mm_or_si128(
              _mm_shuffle_epi8(a, _mm_loadu_si128((const __m128i *)masks[o][0])),
              _mm_shuffle_epi8(b, _mm_loadu_si128((const __m128i *)masks[o][1]))),
          _mm_shuffle_epi8(c, _mm_loadu_si128((const __m128i *)masks[o][2])));
      _mm_storeu_si128((__m128i *)(out + 3 * i + 16 * o), v);
    }
  }
  return i;
}
#endif

/* Four byte planes into 4-byte pixels (SSE2 unpacks). */
static gint interleave4(const guint8 *const *planes, gint n, guint8 *out) {
  gint i = 0;
#ifdef __SSE2__
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128((const __m128i *)(planes[0] + i));
    const __m128i b = _mm_loadu_si128((const __m128i *)(planes[1] + i));
    const __m128i c = _mm_loadu_si128((const __m128i *)(planes[2] + i));
    const __m128i d = _mm_loadu_si128((const __m128i *)(planes[3] + i));
    const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
    const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128((__m128i *)(out + 4 * i), _mm_unpacklo_epi16(ab_lo, cd_lo));
    _mm_storeu_si128((__m128i *)(out + 4 * i + 16), _mm_unpackhi_epi16(ab_lo, cd_lo));
    _mm_storeu_si128((__m128i *)(out + 4 * i + 32), _mm_unpacklo_epi16(ab_hi, cd_hi));
    _mm_storeu_si128((__m128i *)(out + 4 * i + 48), _mm_unpackhi_epi16(ab_hi, cd_hi));
  }
#endif
  return i;
}

#ifdef HAVE_AVX512_BYTES
/* quantize() of three float planes into 3-byte pixels, 64 pixels at a
 * time: the same operations per value, then a saturating narrowing that
 * changes nothing for levels in [0, 255]. Returns how many pixels were
 * done. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static gint
pack3_avx512(const float *const *planes, gint n, guint8 *out) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  const __m512 s = _mm512_set1_ps(255.0f), half = _mm512_set1_ps(0.5f);
  __m512i from01[3], from2[3];
  for (int o = 0; o < 3; o++) {
    from01[o] = _mm512_loadu_si512(byte_tables.from01[o]);
    from2[o] = _mm512_loadu_si512(byte_tables.from2[o]);
  }
  gint i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i bytes[3];
    for (int p = 0; p < 3; p++) {
      __m128i q[4];
      for (int j = 0; j < 4; j++) {
        const __m512 x = _mm512_min_ps(
            _mm512_max_ps(_mm512_loadu_ps(planes[p] + i + 16 * j), zero), one);
        q[j] = _mm512_cvtusepi32_epi8(
            _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(x, s), half)));
      }
      bytes[p] = _mm512_inserti32x4(
          _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(q[0]), q[1], 1),
                             q[2], 2),
          q[3], 3);
    }
    for (int o = 0; o < 3; o++) {
      const __m512i v = _mm512_permutex2var_epi8(bytes[0], from01[o], bytes[1]);
      _mm512_storeu_si512(
          out + 3 * i + 64 * o,
          _mm512_mask_permutexvar_epi8(v, byte_tables.mask2[o], from2[o], bytes[2]));
    }
  }
  return i;
}

#endif

/* Byte planes (one per byte of a pixel) into pixels of `pstride` bytes. */
static void interleave_bytes(const guint8 *const *planes, gint pstride, gint n,
                             guint8 *out) {
  gint i = 0;
#ifdef HAVE_SSSE3_INTERLEAVE
  if (pstride == 3 && __builtin_cpu_supports("ssse3"))
    i = interleave3_ssse3(planes, n, out);
#endif
  if (pstride == 4)
    i = interleave4(planes, n, out);
  for (; i < n; i++)
    for (gint p = 0; p < pstride; p++)
      out[i * pstride + p] = planes[p][i];
}

/* Rows [y0, y1) of every plane from planar, which holds the rows from
 * first_row on: clamped to [0, 1], scaled and rounded to nearest; the x
 * bytes of RGBx & co set to 255 and the bytes past the pixels of a row (odd
 * widths) to 0, so nothing in the output is uninitialised. */
static void pack_rows(GstVideoFrame *frame, const float *planar, gint64 chan_stride,
                      gint first_row, gint y0, gint y1) {
  const GstVideoFormatInfo *finfo = frame->info.finfo;
  const gint width = GST_VIDEO_FRAME_WIDTH(frame);
  if (!GST_VIDEO_FORMAT_INFO_HAS_ALPHA(finfo) &&
      GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, 0) == 4)
    memset((guint8 *)GST_VIDEO_FRAME_PLANE_DATA(frame, 0) +
               (gsize)y0 * (gsize)GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0),
           0xff, (gsize)GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0) * (gsize)(y1 - y0));
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(frame); c++) {
    const guint plane = GST_VIDEO_FORMAT_INFO_PLANE(finfo, c);
    const gsize used = (gsize)width * (gsize)GST_VIDEO_FRAME_COMP_PSTRIDE(frame, c);
    const gsize row_bytes = (gsize)GST_VIDEO_FRAME_PLANE_STRIDE(frame, plane);
    guint8 *rows = GST_VIDEO_FRAME_PLANE_DATA(frame, plane);
    for (gint y = y0; row_bytes > used && y < y1; y++)
      memset(rows + (gsize)y * row_bytes + used, 0, row_bytes - used);
  }
  const guint n_comps = GST_VIDEO_FRAME_N_COMPONENTS(frame);
  gboolean one_plane = TRUE, wide = FALSE;
  for (guint c = 0; c < n_comps; c++) {
    one_plane &= GST_VIDEO_FORMAT_INFO_PLANE(finfo, c) == 0;
    wide |= GST_VIDEO_FRAME_COMP_DEPTH(frame, c) > 8;
  }
  const float scale = wide ? 65535.0f : 255.0f;
  const gint pstride0 = GST_VIDEO_FRAME_COMP_PSTRIDE(frame, 0);
  if (one_plane && !wide && pstride0 <= 4) {
    /* Packed 8-bit formats: quantise each component of a stretch into
     * bytes, then interleave them into pixels; a byte of the pixel no
     * component uses (RGBx & co) is 255. */
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(frame, 0);
    const gint stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
    guint8 levels[4][QUANT_CHUNK];
    const guint8 *byte_plane[4];
    gint comp_at[4] = {-1, -1, -1, -1};
    for (guint c = 0; c < n_comps; c++)
      comp_at[GST_VIDEO_FRAME_COMP_POFFSET(frame, c)] = (gint)c;
    for (gint p = 0; p < pstride0; p++) {
      byte_plane[p] = levels[p];
      if (comp_at[p] < 0)
        memset(levels[p], 0xff, QUANT_CHUNK);
    }
    for (gint y = y0; y < y1; y++) {
      guint8 *row = data + (gsize)y * (gsize)stride;
      gint done = 0;
#ifdef HAVE_AVX512_BYTES
      if (pstride0 == 3 && n_comps == 3 && use_avx512_bytes()) {
        const float *planes[3];
        for (gint p = 0; p < 3; p++)
          planes[p] =
              planar + (gint64)comp_at[p] * chan_stride + (gint64)(y - first_row) * width;
        done = pack3_avx512(planes, width, row);
      }
#endif
      for (gint x0 = done; x0 < width; x0 += QUANT_CHUNK) {
        const gint n = MIN(QUANT_CHUNK, width - x0);
        for (gint p = 0; p < pstride0; p++)
          if (comp_at[p] >= 0)
            quantize_u8(planar + (gint64)comp_at[p] * chan_stride +
                            (gint64)(y - first_row) * width + x0,
                        n, levels[p]);
        interleave_bytes(byte_plane, pstride0, n, row + (gsize)x0 * (gsize)pstride0);
      }
    }
    return;
  }
  for (guint c = 0; c < n_comps; c++) {
    guint8 *data = GST_VIDEO_FRAME_COMP_DATA(frame, c);
    const gint pstride = GST_VIDEO_FRAME_COMP_PSTRIDE(frame, c);
    const gint stride = GST_VIDEO_FRAME_COMP_STRIDE(frame, c);
    const float *src = planar + (gint64)c * chan_stride;
    for (gint y = y0; y < y1; y++) {
      guint8 *row = data + (gsize)y * (gsize)stride;
      const float *line = src + (gint64)(y - first_row) * width;
      /* Quantise a stretch (vectorised), then store with the pixel stride. */
      for (gint x0 = 0; x0 < width; x0 += QUANT_CHUNK) {
        const gint n = MIN(QUANT_CHUNK, width - x0);
        gint32 levels[QUANT_CHUNK];
        quantize(line + x0, n, scale, levels);
        guint8 *px = row + (gsize)x0 * (gsize)pstride;
        if (wide)
          for (gint i = 0; i < n; i++, px += pstride)
            GST_WRITE_UINT16_LE(px, (guint16)levels[i]);
        else
          for (gint i = 0; i < n; i++, px += pstride)
            *px = (guint8)levels[i];
      }
    }
  }
}

static void pack_task(void *ctx, int task, int worker) {
  FrameJob *job = ctx;
  (void)worker;
  const gint y0 = task * job->rows_per_task;
  pack_rows(&job->frame, job->planar, job->chan_stride, 0, y0,
            MIN(y0 + job->rows_per_task, GST_VIDEO_FRAME_HEIGHT(&job->frame)));
}

static gboolean gst_conv_transpose_video_pack(GstConvTransposeBase *base,
                                              const float *planar, gint64 chan_stride,
                                              gint64 n_steps, GstBuffer *outbuf) {
  GstConvTransposeVideoPrivate *priv = PRIV(base);
  /* One frame: all its rows (2d) or one step (3d). */
  (void)n_steps;
  FrameJob job = {.planar = (float *)planar, .chan_stride = chan_stride};
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
  pack_rows(&job->frame, data, chan_stride, (gint)first, (gint)first,
            (gint)(first + n_steps));
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
