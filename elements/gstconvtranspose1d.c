/* convtranspose1d: a trained ConvTranspose1d on raw float audio, streamed
 * over samples: channels Cin -> Cout, rate -> rate * stride. */
#include "gstconvtranspose1d.h"

#include <gst/audio/audio.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC(conv_transpose_1d_debug);
#define GST_CAT_DEFAULT conv_transpose_1d_debug

struct _GstConvTranspose1d {
  GstConvTransposeBase parent;
  GstAudioInfo in_info, out_info;
};

G_DEFINE_TYPE(GstConvTranspose1d, gst_conv_transpose_1d, GST_TYPE_CONV_TRANSPOSE_BASE)
GST_ELEMENT_REGISTER_DEFINE(convtranspose1d, "convtranspose1d", GST_RANK_NONE,
                            GST_TYPE_CONV_TRANSPOSE_1D)

#define AUDIO_CAPS                                                                       \
  "audio/x-raw, format = (string) F32LE, rate = (int) [ 1, MAX ], "                      \
  "channels = (int) [ 1, MAX ], layout = (string) { interleaved, non-interleaved }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(AUDIO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(AUDIO_CAPS));

/* Maps a rate value through the stride: multiplied going downstream, divided
 * (exact multiples only) going upstream. FALSE if nothing maps. */
static gboolean map_rate(const GValue *in, GValue *out, gconstpointer data) {
  const GstConvTransposeAxisMap *m = data;
  const gint stride = (gint)m->axis.s;
  const gboolean downstream = m->downstream;
  if (G_VALUE_HOLDS_INT(in)) {
    gint rate = g_value_get_int(in);
    if (downstream ? rate > G_MAXINT / stride : rate % stride != 0)
      return FALSE;
    g_value_init(out, G_TYPE_INT);
    g_value_set_int(out, downstream ? rate * stride : rate / stride);
    return TRUE;
  }
  if (GST_VALUE_HOLDS_INT_RANGE(in)) {
    gint lo = gst_value_get_int_range_min(in), hi = gst_value_get_int_range_max(in);
    g_value_init(out, GST_TYPE_INT_RANGE);
    if (downstream) {
      if (lo > G_MAXINT / stride)
        return FALSE;
      gint top = hi > G_MAXINT / stride ? (G_MAXINT / stride) * stride : hi * stride;
      if (lo * stride == top) {
        g_value_unset(out);
        g_value_init(out, G_TYPE_INT);
        g_value_set_int(out, top);
      } else {
        gst_value_set_int_range_step(out, lo * stride, top, stride);
      }
      return TRUE;
    }
    gint low = (lo + stride - 1) / stride, high = hi / stride;
    if (low > high) {
      g_value_unset(out);
      return FALSE;
    }
    if (low == high) {
      g_value_unset(out);
      g_value_init(out, G_TYPE_INT);
      g_value_set_int(out, low);
    } else {
      gst_value_set_int_range(out, low, high);
    }
    return TRUE;
  }
  if (GST_VALUE_HOLDS_LIST(in)) {
    return gst_conv_transpose_map_list(in, out, map_rate, m);
  }
  return FALSE;
}

/* Do the caps allow `channels`? */
static gboolean allows_channels(const GstStructure *s, gint channels) {
  const GValue *v = gst_structure_get_value(s, "channels");
  if (!v)
    return TRUE;
  GValue want = G_VALUE_INIT;
  g_value_init(&want, G_TYPE_INT);
  g_value_set_int(&want, channels);
  gboolean ok = gst_value_intersect(NULL, v, &want);
  g_value_unset(&want);
  return ok;
}

static GstCaps *gst_conv_transpose_1d_transform_caps_for_layer(GstConvTransposeBase *base,
                                                               const ct_layer *layer,
                                                               GstPadDirection direction,
                                                               GstCaps *caps,
                                                               GstCaps *filter) {
  GstCaps *result;
  const ct_params *p = ct_layer_params(layer);
  const gboolean downstream = direction == GST_PAD_SINK;
  const gint from = (gint)(downstream ? p->in_channels : p->out_channels);
  const gint to = (gint)(downstream ? p->out_channels : p->in_channels);
  /* Depthwise layers keep each channel's meaning, and so its position. */
  const gboolean keeps_positions =
      p->in_channels == p->out_channels && p->groups == p->in_channels;
  result = gst_caps_new_empty();
  for (guint i = 0; i < gst_caps_get_size(caps); i++) {
    const GstStructure *s = gst_caps_get_structure(caps, i);
    if (!allows_channels(s, from))
      continue;
    GstStructure *t = gst_structure_copy(s);
    gst_structure_set(t, "channels", G_TYPE_INT, to, NULL);
    const GValue *rate = gst_structure_get_value(s, "rate");
    if (rate) {
      GValue mapped = G_VALUE_INIT;
      if (!map_rate(rate, &mapped,
                    &(GstConvTransposeAxisMap){ct_params_axis(p, 0), downstream})) {
        gst_structure_free(t);
        continue;
      }
      gst_structure_take_value(t, "rate", &mapped);
    }
    if (!keeps_positions) {
      /* New channels have no positions of their own; GStreamer's default
       * layout for the count (2.1, 4.0, 5.1, ...) lets audioconvert mix
       * them down. Counts without one stay unpositioned. */
      gst_structure_remove_field(t, "channel-mask");
      if (downstream && to > 2)
        gst_structure_set(t, "channel-mask", GST_TYPE_BITMASK,
                          gst_audio_channel_get_fallback_mask(to), NULL);
    }
    gst_caps_append_structure(result, t);
  }
  if (direction == GST_PAD_SRC && filter && !gst_caps_is_any(filter)) {
    /* Upstream asks what we take among caps of which none has the channel
     * count the model needs: negotiation cannot succeed, so say why. */
    gboolean any = FALSE;
    for (guint i = 0; i < gst_caps_get_size(filter) && !any; i++)
      any = allows_channels(gst_caps_get_structure(filter, i), (gint)p->in_channels);
    if (!any && !gst_caps_is_empty(filter))
      GST_ELEMENT_ERROR(base, CORE, NEGOTIATION,
                        ("the model needs %" G_GINT64_FORMAT
                         " input channels, upstream offers "
                         "none with that count",
                         p->in_channels),
                        ("upstream caps %" GST_PTR_FORMAT, filter));
  }
  return result;
}

static gchar *gst_conv_transpose_1d_check_input_caps(GstConvTransposeBase *base,
                                                     const ct_layer *layer,
                                                     GstCaps *caps) {
  gint channels = 0;
  if (gst_caps_get_size(caps) < 1 ||
      !gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &channels))
    return g_strdup("caps without a channel count");
  const ct_params *p = ct_layer_params(layer);
  if (channels != p->in_channels)
    return g_strdup_printf("the model needs %" G_GINT64_FORMAT
                           " input channel%s, the caps have %d",
                           p->in_channels, p->in_channels == 1 ? "" : "s", channels);
  gint rate = 0;
  if (gst_structure_get_int(gst_caps_get_structure(caps, 0), "rate", &rate) &&
      rate > G_MAXINT / p->stride[0])
    return g_strdup_printf("the output rate, %d Hz x stride %" G_GINT64_FORMAT
                           ", is over the largest rate caps can carry (%d Hz)",
                           rate, p->stride[0], G_MAXINT);
  return NULL;
}

static gboolean gst_conv_transpose_1d_configure(GstConvTransposeBase *base,
                                                GstCaps *incaps, GstCaps *outcaps,
                                                GstConvTransposeConfig *config) {
  GstConvTranspose1d *self = GST_CONV_TRANSPOSE_1D(base);
  if (!gst_audio_info_from_caps(&self->in_info, incaps) ||
      !gst_audio_info_from_caps(&self->out_info, outcaps)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("unparsable audio caps"),
                      ("%" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT, incaps, outcaps));
    return FALSE;
  }
  config->rate_n = GST_AUDIO_INFO_RATE(&self->in_info);
  config->rate_d = 1;
  config->buffer_is_signal = FALSE;
  return TRUE;
}

static gboolean gst_conv_transpose_1d_count_steps(GstConvTransposeBase *base,
                                                  GstBuffer *inbuf, gint64 *n_steps) {
  GstConvTranspose1d *self = GST_CONV_TRANSPOSE_1D(base);
  /* Non-interleaved planes may be padded: the meta says how many samples
   * are signal (gst_audio_buffer_map checks it against the buffer). */
  GstAudioMeta *meta = gst_buffer_get_audio_meta(inbuf);
  if (meta && GST_AUDIO_INFO_LAYOUT(&self->in_info) == GST_AUDIO_LAYOUT_NON_INTERLEAVED) {
    *n_steps = (gint64)meta->samples;
    return TRUE;
  }
  gsize size = gst_buffer_get_size(inbuf);
  gint bpf = GST_AUDIO_INFO_BPF(&self->in_info);
  if (size % (gsize)bpf != 0) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                      ("buffer of %" G_GSIZE_FORMAT " bytes is not a whole number of "
                       "%d-channel float frames (%d bytes each)",
                       size, GST_AUDIO_INFO_CHANNELS(&self->in_info), bpf),
                      (NULL));
    return FALSE;
  }
  *n_steps = (gint64)(size / (gsize)bpf);
  return TRUE;
}

static gboolean gst_conv_transpose_1d_unpack(GstConvTransposeBase *base, GstBuffer *inbuf,
                                             float *planar, gint64 chan_stride) {
  GstConvTranspose1d *self = GST_CONV_TRANSPOSE_1D(base);
  if (gst_buffer_get_size(inbuf) == 0)
    return TRUE;
  GstAudioBuffer abuf;
  if (!gst_audio_buffer_map(&abuf, &self->in_info, inbuf, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("cannot map an input buffer"), (NULL));
    return FALSE;
  }
  const gint channels = GST_AUDIO_INFO_CHANNELS(&self->in_info);
  const gsize n = abuf.n_samples;
  if (GST_AUDIO_INFO_LAYOUT(&self->in_info) == GST_AUDIO_LAYOUT_INTERLEAVED) {
    const ct_channels frames = {.src = abuf.planes[0],
                                .dst = planar,
                                .n = (int64_t)n,
                                .channels = channels,
                                .plane_stride = chan_stride};
    gst_conv_transpose_base_dsp(base)->deinterleave_f32(&frames);
  } else {
    for (gint c = 0; c < channels; c++)
      memcpy(planar + c * chan_stride, abuf.planes[c], n * sizeof(float));
  }
  gst_audio_buffer_unmap(&abuf);
  return TRUE;
}

static gboolean gst_conv_transpose_1d_pack(GstConvTransposeBase *base,
                                           const float *planar, gint64 chan_stride,
                                           gint64 n_steps, GstBuffer *outbuf) {
  GstConvTranspose1d *self = GST_CONV_TRANSPOSE_1D(base);
  const gint channels = GST_AUDIO_INFO_CHANNELS(&self->out_info);
  if (GST_AUDIO_INFO_LAYOUT(&self->out_info) == GST_AUDIO_LAYOUT_NON_INTERLEAVED)
    gst_buffer_add_audio_meta(outbuf, &self->out_info, (gsize)n_steps, NULL);
  if (n_steps == 0)
    return TRUE;
  GstAudioBuffer abuf;
  if (!gst_audio_buffer_map(&abuf, &self->out_info, outbuf, GST_MAP_WRITE))
    return FALSE;
  if (GST_AUDIO_INFO_LAYOUT(&self->out_info) == GST_AUDIO_LAYOUT_INTERLEAVED) {
    const ct_channels frames = {.src = planar,
                                .dst = abuf.planes[0],
                                .n = n_steps,
                                .channels = channels,
                                .plane_stride = chan_stride};
    gst_conv_transpose_base_dsp(base)->interleave_f32(&frames);
  } else {
    for (gint c = 0; c < channels; c++)
      memcpy(abuf.planes[c], planar + c * chan_stride, (gsize)n_steps * sizeof(float));
  }
  gst_audio_buffer_unmap(&abuf);
  return TRUE;
}

static gsize gst_conv_transpose_1d_output_size(GstConvTransposeBase *base,
                                               gint64 n_steps) {
  GstConvTranspose1d *self = GST_CONV_TRANSPOSE_1D(base);
  return (gsize)n_steps * (gsize)GST_AUDIO_INFO_BPF(&self->out_info);
}

static void gst_conv_transpose_1d_init(GstConvTranspose1d *self) {
  gst_audio_info_init(&self->in_info);
  gst_audio_info_init(&self->out_info);
}

static void gst_conv_transpose_1d_class_init(GstConvTranspose1dClass *klass) {
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstConvTransposeBaseClass *base_class = GST_CONV_TRANSPOSE_BASE_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(conv_transpose_1d_debug, "convtranspose1d", 0,
                          "Trained ConvTranspose1d on audio");
  gst_element_class_set_static_metadata(
      element_class, "ConvTranspose1d audio filter", "Filter/Converter/Audio",
      "Applies a trained PyTorch ConvTranspose1d layer to audio, streamed over samples: "
      "Cin channels in, Cout channels out at rate x stride",
      "gst-convtranspose developers");
  gst_element_class_add_static_metadata(element_class, GST_ELEMENT_METADATA_DOC_URI,
                                        CT_DOC_URL "#gstreamer-convtranspose1d");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  base_class->rank = 1;
  base_class->transform_caps_for_layer = gst_conv_transpose_1d_transform_caps_for_layer;
  base_class->check_input_caps = gst_conv_transpose_1d_check_input_caps;
  base_class->configure = gst_conv_transpose_1d_configure;
  base_class->count_steps = gst_conv_transpose_1d_count_steps;
  base_class->unpack = gst_conv_transpose_1d_unpack;
  base_class->pack = gst_conv_transpose_1d_pack;
  base_class->output_size = gst_conv_transpose_1d_output_size;
}
