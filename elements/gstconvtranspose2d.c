/* convtranspose2d: a trained ConvTranspose2d on each video frame (the rows
 * of a frame are its streamed axis, so a frame is a whole signal). */
#include "gstconvtranspose2d.h"

struct _GstConvTranspose2d {
  GstConvTransposeVideo parent;
};

G_DEFINE_TYPE(GstConvTranspose2d, gst_conv_transpose_2d, GST_TYPE_CONV_TRANSPOSE_VIDEO)
GST_ELEMENT_REGISTER_DEFINE(convtranspose2d, "convtranspose2d", GST_RANK_NONE,
                            GST_TYPE_CONV_TRANSPOSE_2D)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_CONV_TRANSPOSE_VIDEO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_CONV_TRANSPOSE_VIDEO_CAPS));

static void gst_conv_transpose_2d_init(GstConvTranspose2d *self) {
  (void)self;
}

static void gst_conv_transpose_2d_class_init(GstConvTranspose2dClass *klass) {
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gst_element_class_set_static_metadata(
      element_class, "ConvTranspose2d video filter", "Filter/Converter/Video/Scaler",
      "Applies a trained PyTorch ConvTranspose2d layer to each video frame: Cin "
      "components in, Cout out, width and height per the layer",
      "gst-convtranspose developers");
  gst_element_class_add_static_metadata(
      element_class, GST_ELEMENT_METADATA_DOC_URI,
      CT_DOC_URL "#gstreamer-convtranspose2d-and-convtranspose3d-video");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  GST_CONV_TRANSPOSE_BASE_CLASS(klass)->rank = 2;
}
