/* convtranspose2d: a trained ConvTranspose2d on each video frame (the rows
 * of a frame are its streamed axis, so a frame is a whole signal). */
#include "gstconvtranspose2d.h"

struct _GstConvTranspose2d {
  GstConvTransposeVideo parent;
};

G_DEFINE_TYPE(GstConvTranspose2d, gst_conv_transpose_2d, GST_TYPE_CONV_TRANSPOSE_VIDEO)
GST_ELEMENT_REGISTER_DEFINE(convtranspose2d, "convtranspose2d", GST_RANK_NONE,
                            GST_TYPE_CONV_TRANSPOSE_2D)

static void gst_conv_transpose_2d_init(GstConvTranspose2d *self) {
  (void)self;
}

static void gst_conv_transpose_2d_class_init(GstConvTranspose2dClass *klass) {
  gst_conv_transpose_video_class_describe(
      GST_CONV_TRANSPOSE_VIDEO_CLASS(klass), 2, "ConvTranspose2d video filter",
      "Applies a trained PyTorch ConvTranspose2d layer to each video frame: Cin "
      "components in, Cout out, width and height per the layer");
}
