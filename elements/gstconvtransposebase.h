/* GstConvTransposeBase: what the audio and video elements share.
 *
 * Model properties and loading (synchronously on the way to READY, off the
 * streaming thread when changed later, swapped in at a buffer boundary),
 * the kernel's streaming state, timestamps derived from step counters, the
 * LATENCY query, and the events of a streaming filter (EOS drains, FLUSH_STOP
 * and SEGMENT reset, DISCONT and timestamp gaps drain and restart, new caps
 * drain and reconfigure). Subclasses describe caps and how a buffer maps to
 * channel-planar kernel input and back. */
#ifndef GST_CONV_TRANSPOSE_BASE_H
#define GST_CONV_TRANSPOSE_BASE_H

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

#include "kernels/dsp.h"
#include "kernels/pool.h"
#include "kernels/stream.h"
#include "model/model.h"

G_BEGIN_DECLS

#define GST_TYPE_CONV_TRANSPOSE_BASE (gst_conv_transpose_base_get_type())
G_DECLARE_DERIVABLE_TYPE(GstConvTransposeBase, gst_conv_transpose_base, GST,
                         CONV_TRANSPOSE_BASE, GstBaseTransform)

/* How the streamed axis maps to buffers, as set by the subclass in configure. */
typedef struct {
  gint64 frame_shape[CT_MAX_RANK - 1]; /* lengths of the non-streamed axes */
  gint rate_n, rate_d;                 /* input steps per second (0/1 if unknown) */
  /* TRUE: each buffer is a whole signal (2d: a frame is all its rows), pushed
   * and finished at once, timestamps copied from the input. */
  gboolean buffer_is_signal;
  /* TRUE: each output step is a buffer of its own (3d: a video frame). */
  gboolean one_buffer_per_step;
} GstConvTransposeConfig;

struct _GstConvTransposeBaseClass {
  GstBaseTransformClass parent_class;

  /* Spatial rank of the layers this element runs (1, 2 or 3). */
  gint rank;

  /* Caps of the other pad for the given layer (the base class answers when
   * there is no model, and intersects with filter). filter: what the other
   * side asked for, for messages. */
  GstCaps *(*transform_caps_for_layer)(GstConvTransposeBase *self, const ct_layer *layer,
                                       GstPadDirection direction, GstCaps *caps,
                                       GstCaps *filter);
  /* Checks fixed input caps against the layer: NULL if fine, else a message
   * for the user (freed by the caller). */
  gchar *(*check_input_caps)(GstConvTransposeBase *self, const ct_layer *layer,
                             GstCaps *caps);
  /* Parses negotiated caps into the config. */
  gboolean (*configure)(GstConvTransposeBase *self, GstCaps *incaps, GstCaps *outcaps,
                        GstConvTransposeConfig *config);
  /* Steps in an input buffer; FALSE (with an element error posted) if the
   * buffer is malformed. */
  gboolean (*count_steps)(GstConvTransposeBase *self, GstBuffer *inbuf, gint64 *n_steps);
  /* Converts an input buffer to channel-planar floats. */
  gboolean (*unpack)(GstConvTransposeBase *self, GstBuffer *inbuf, float *planar,
                     gint64 chan_stride);
  /* Fills a writable output buffer of n_steps from channel-planar floats. */
  gboolean (*pack)(GstConvTransposeBase *self, const float *planar, gint64 chan_stride,
                   gint64 n_steps, GstBuffer *outbuf);
  /* Bytes of an output buffer of n_steps. */
  gsize (*output_size)(GstConvTransposeBase *self, gint64 n_steps);
  /* Optional, 1d and 2d layers with buffer_is_signal: the output is packed
   * block by block on the threads that compute it, while it is in their
   * caches, so the whole float output never goes through memory.
   * begin_pack maps outbuf (a whole signal) and returns the packer, or NULL
   * if it cannot; pack_steps (a ct_stream_sink, called with the packer)
   * converts output steps [first, first + n_steps) from channel-planar
   * floats, possibly on several threads at once; end_pack unmaps and frees
   * the packer. */
  gpointer (*begin_pack)(GstConvTransposeBase *self, GstBuffer *outbuf);
  ct_stream_sink pack_steps;
  void (*end_pack)(GstConvTransposeBase *self, gpointer packer);
};

/* What the caps mappers of the subclasses map through: one axis of the
 * layer, going downstream (input caps to output caps) or upstream. */
typedef struct {
  ct_axis axis;
  gboolean downstream;
} GstConvTransposeAxisMap;

/* Maps every item of a GST_TYPE_LIST value into out (a list), dropping the
 * items that map to nothing; FALSE (out unset) when none maps. For the caps
 * transforms of the subclasses. */
gboolean gst_conv_transpose_map_list(const GValue *list, GValue *out,
                                     gboolean (*map)(const GValue *item, GValue *out,
                                                     gconstpointer data),
                                     gconstpointer data);

/* How unpack lays out a frame (2d: one row; 3d: a picture) for the kernel:
 * the frame axes' lengths and the offsets where the data starts, zero
 * elsewhere (the borders the layer's padding reads, so that the kernel
 * reads the frames in place); rank - 1 values each. */
void gst_conv_transpose_base_frame_layout(GstConvTransposeBase *self, gint64 *shape,
                                          gint64 *offset);

/* The dispatch table the element's kernels run from (the instruction-set
 * level, CT_DSP), chosen once: subclasses convert buffers with its
 * entries. */
const ct_dsp *gst_conv_transpose_base_dsp(GstConvTransposeBase *self);

/* Threads the element runs on (the n-threads property, 0 resolved). */
gint gst_conv_transpose_base_threads(GstConvTransposeBase *self);

/* Runs fn for tasks 0..n_tasks-1 on the element's threads (the n-threads
 * property) and returns when all are done: for a subclass's per-buffer
 * conversions. Tasks must be independent. */
void gst_conv_transpose_base_parallel(GstConvTransposeBase *self, gint n_tasks,
                                      ct_pool_task fn, gpointer ctx);

G_END_DECLS

#endif
