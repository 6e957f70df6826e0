#ifndef GST_CONV_TRANSPOSE_1D_H
#define GST_CONV_TRANSPOSE_1D_H

#include "gstconvtransposebase.h"

G_BEGIN_DECLS

#define GST_TYPE_CONV_TRANSPOSE_1D (gst_conv_transpose_1d_get_type())
G_DECLARE_FINAL_TYPE(GstConvTranspose1d, gst_conv_transpose_1d, GST, CONV_TRANSPOSE_1D,
                     GstConvTransposeBase)

GST_ELEMENT_REGISTER_DECLARE(convtranspose1d);

G_END_DECLS

#endif
