#ifndef GST_CONV_TRANSPOSE_2D_H
#define GST_CONV_TRANSPOSE_2D_H

#include "gstconvtransposevideo.h"

G_BEGIN_DECLS

#define GST_TYPE_CONV_TRANSPOSE_2D (gst_conv_transpose_2d_get_type())
G_DECLARE_FINAL_TYPE(GstConvTranspose2d, gst_conv_transpose_2d, GST, CONV_TRANSPOSE_2D,
                     GstConvTransposeVideo)

GST_ELEMENT_REGISTER_DECLARE(convtranspose2d);

G_END_DECLS

#endif
