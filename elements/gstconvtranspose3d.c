/* convtranspose3d: a trained ConvTranspose3d on video, streamed over
 * frames: the temporal overlap is kept between buffers, frames are pushed as
 * soon as they are final, the frame rate is multiplied by the T stride. */
#include "gstconvtranspose3d.h"

struct _GstConvTranspose3d {
  GstConvTransposeVideo parent;
};

G_DEFINE_TYPE(GstConvTranspose3d, gst_conv_transpose_3d, GST_TYPE_CONV_TRANSPOSE_VIDEO)
GST_ELEMENT_REGISTER_DEFINE(convtranspose3d, "convtranspose3d", GST_RANK_NONE,
                            GST_TYPE_CONV_TRANSPOSE_3D)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_CONV_TRANSPOSE_VIDEO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_CONV_TRANSPOSE_VIDEO_CAPS));

static void gst_conv_transpose_3d_init(GstConvTranspose3d *self) {
  (void)self;
}

static void gst_conv_transpose_3d_class_init(GstConvTranspose3dClass *klass) {
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gst_element_class_set_static_metadata(
      element_class, "ConvTranspose3d video filter", "Filter/Converter/Video/Scaler",
      "Applies a trained PyTorch ConvTranspose3d layer to video streamed over frames: "
      "width, height and frame rate (x temporal stride) per the layer",
      "gst-convtranspose developers");
  gst_element_class_add_static_metadata(
      element_class, GST_ELEMENT_METADATA_DOC_URI,
      CT_DOC_URL "#gstreamer-convtranspose2d-and-convtranspose3d-video");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  GST_CONV_TRANSPOSE_BASE_CLASS(klass)->rank = 3;
}
