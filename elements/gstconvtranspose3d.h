#ifndef GST_CONV_TRANSPOSE_3D_H
#define GST_CONV_TRANSPOSE_3D_H

#include "gstconvtransposevideo.h"

G_BEGIN_DECLS

#define GST_TYPE_CONV_TRANSPOSE_3D (gst_conv_transpose_3d_get_type())
G_DECLARE_FINAL_TYPE(GstConvTranspose3d, gst_conv_transpose_3d, GST, CONV_TRANSPOSE_3D,
                     GstConvTransposeVideo)

GST_ELEMENT_REGISTER_DECLARE(convtranspose3d);

G_END_DECLS

#endif
