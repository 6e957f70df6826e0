/* GstConvTransposeVideo: raw video caps and frame mapping shared by
 * convtranspose2d (each frame on its own) and convtranspose3d (frames are
 * the steps of the streamed T axis). */
#ifndef GST_CONV_TRANSPOSE_VIDEO_H
#define GST_CONV_TRANSPOSE_VIDEO_H

#include <gst/video/video.h>

#include "gstconvtransposebase.h"

G_BEGIN_DECLS

#define GST_TYPE_CONV_TRANSPOSE_VIDEO (gst_conv_transpose_video_get_type())
G_DECLARE_DERIVABLE_TYPE(GstConvTransposeVideo, gst_conv_transpose_video, GST,
                         CONV_TRANSPOSE_VIDEO, GstConvTransposeBase)

struct _GstConvTransposeVideoClass {
  GstConvTransposeBaseClass parent_class;
};

#define GST_CONV_TRANSPOSE_VIDEO_FORMATS                                                 \
  "{ GRAY8, GRAY16_LE, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR, GBR, "  \
  "GBRA }"

/* Progressive only: a layer run over a frame would mix its two fields. */
#define GST_CONV_TRANSPOSE_VIDEO_CAPS                                                    \
  GST_VIDEO_CAPS_MAKE(GST_CONV_TRANSPOSE_VIDEO_FORMATS)                                  \
  ", interlace-mode = (string) progressive"

/* What a video element's class_init says: the layers' rank (2 or 3), the
 * element's names, and the pad templates, klass and documentation both
 * video elements share. */
void gst_conv_transpose_video_class_describe(GstConvTransposeVideoClass *klass, gint rank,
                                             const gchar *long_name,
                                             const gchar *description);

G_END_DECLS

#endif
