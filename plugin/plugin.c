/* The convtranspose plugin: registers the elements, nothing else. */
#include <gst/gst.h>

#include "elements/gstconvtranspose1d.h"
#include "elements/gstconvtranspose2d.h"
#include "elements/gstconvtranspose3d.h"

#ifndef PACKAGE
#define PACKAGE "gst-convtranspose"
#endif

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(convtranspose1d, plugin);
  ok |= GST_ELEMENT_REGISTER(convtranspose2d, plugin);
  ok |= GST_ELEMENT_REGISTER(convtranspose3d, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(
    GST_VERSION_MAJOR, GST_VERSION_MINOR, convtranspose,
    "Trained PyTorch ConvTranspose1d/2d/3d layers for audio and video, streamed "
    "exactly",
    plugin_init, PROJECT_VERSION, "LGPL", PACKAGE, PLUGIN_ORIGIN)
