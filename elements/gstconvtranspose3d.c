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

static void gst_conv_transpose_3d_init(GstConvTranspose3d *self) {
  (void)self;
}

static void gst_conv_transpose_3d_class_init(GstConvTranspose3dClass *klass) {
  gst_conv_transpose_video_class_describe(
      GST_CONV_TRANSPOSE_VIDEO_CLASS(klass), 3, "ConvTranspose3d video filter",
      "Applies a trained PyTorch ConvTranspose3d layer to video streamed over frames: "
      "width, height and frame rate (x temporal stride) per the layer");
}
