/* What the files of GstConvTransposeBase share (not for subclasses):
 *
 *   gstconvtransposebase.c          the element: properties, states, the
 *                                   stream and its buffers, events
 *   gstconvtransposebase-models.c   loading models and moving to a new one
 *                                   at a buffer boundary (live swaps)
 *   gstconvtransposebase-time.c     timestamps: counters, variable rates,
 *                                   discontinuities
 *   gstconvtransposebase-queries.c  LATENCY, and queries and seeks in
 *                                   output steps */
#ifndef GST_CONV_TRANSPOSE_BASE_PRIVATE_H
#define GST_CONV_TRANSPOSE_BASE_PRIVATE_H

#include "gstconvtransposebase.h"

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN(conv_transpose_base_debug);

/* Timestamps closer than this to where the counters expect them are treated
 * as continuous, as audio sinks do with their default alignment threshold. */
#define GAP_TOLERANCE (40 * GST_MSECOND)

/* A loaded layer, shared by reference between the properties, negotiation
 * and the streaming thread, so a swap never frees a layer still in use. */
typedef struct {
  ct_layer *layer;
  gchar *path;
} CtModel;

static inline void ct_model_clear(gpointer data) {
  CtModel *model = data;
  ct_layer_free(model->layer);
  g_free(model->path);
}

static inline CtModel *ct_model_ref(CtModel *model) {
  return model ? g_atomic_rc_box_acquire(model) : NULL;
}

static inline void ct_model_unref(CtModel *model) {
  if (model)
    g_atomic_rc_box_release_full(model, ct_model_clear);
}

typedef struct {
  GstClockTime pts, duration;
} FrameTime;

/* The properties a load reads, taken under the object lock. */
typedef struct {
  guint generation;
  gchar *path, *layer_name, *axis_text[4];
  gint groups;
} LoadRequest;

typedef struct {
  /* Properties and models: object lock. */
  gchar *model_path;
  gchar *layer_name;
  gchar *axis_text[4]; /* stride, padding, output-padding, dilation */
  gint groups;
  guint n_threads;
  /* Three models, each possibly the same as another: `active` is what the
   * stream runs; `wanted` the newest one loaded (the last model set wins,
   * the element moves to it at a buffer boundary); `offer` the one whose
   * input caps upstream has been asked for (caps queries answer for it
   * until upstream renegotiates or a newer model supersedes it). */
  CtModel *active;
  CtModel *wanted;
  CtModel *offer;
  /* An offer superseded before upstream answered: caps already on their way
   * for it are still taken (then the element moves on to `wanted`). */
  CtModel *previous_offer;
  guint generation; /* of the latest load request */
  gboolean loaded;  /* past NULL -> READY: property changes reload */
  GThreadPool *model_loader;

  /* Streaming thread only. */
  GstConvTransposeConfig config;
  gboolean configured;
  CtModel *stream_model; /* the model `stream` was built for */
  ct_stream *stream;
  gboolean started; /* a signal is in progress: counters are valid */
  GstClockTime base_pts;
  guint64 out_offset_base;
  guint64 in_steps, out_steps;
  /* Variable frame rate (rate_n == 0 on a streamed axis): the times of the
   * input frames an output may still be interpolated from; entry i is
   * input step frame_times_first + i. */
  GArray *frame_times;
  guint64 frame_times_first;
  float *in_planar, *out_planar;
  gsize in_capacity, out_capacity; /* in floats */
  /* Streams of frames alternate between two input buffers: the stream reads
   * the previous frame where it is (ct_stream_retain_input) instead of
   * copying it. */
  float *in_planar_prev;
  gsize in_prev_capacity;
  gboolean mark_discont; /* the next output starts a new signal */
  GQueue ready;          /* outputs not yet handed to the base class */
  /* Input unpacked in in_planar but not yet pushed: a buffer whose output
   * would be huge (a large stride) goes through in bounded pieces. */
  gint64 unpushed_steps, unpushed_done, unpushed_stride;
  GstBufferPool *buffer_pool; /* output buffers, reused */
  ct_pool *workers;           /* threads for the stream and the conversions */
  /* The instruction-set level's table, chosen once (ct_dsp_default, as the
   * stream's products): the subclasses' conversions run from it. */
  const ct_dsp *dsp;
  gsize buffer_pool_size; /* bytes of the pool's buffers */
} GstConvTransposeBasePrivate;

GstConvTransposeBasePrivate *ctb_priv(gpointer self);
#define PRIV(self) ctb_priv(self)

/* gstconvtransposebase.c */
GstBaseTransformClass *ctb_parent_class(void);
GstFlowReturn ctb_drain(GstConvTransposeBase *self);
void ctb_drop_stream(GstConvTransposeBase *self);

/* gstconvtransposebase-models.c */
LoadRequest *ctb_load_request_new(GstConvTransposeBasePrivate *priv);
void ctb_load_request_free(LoadRequest *req);
CtModel *ctb_load_model(GstConvTransposeBase *self, const LoadRequest *req,
                        GError **error);
void ctb_load_in_background(gpointer data, gpointer user_data);
void ctb_request_reload_locked(GstConvTransposeBase *self);
CtModel *ctb_negotiation_model(GstConvTransposeBase *self);
CtModel *ctb_model_for_input(GstConvTransposeBase *self, GstCaps *caps);
void ctb_post_input_mismatch(GstConvTransposeBase *self, GstCaps *caps);
GstFlowReturn ctb_move_to_wanted_model(GstConvTransposeBase *self);

/* gstconvtransposebase-time.c */
gboolean ctb_variable_rate(GstConvTransposeBasePrivate *priv);
guint64 ctb_stream_stride(GstConvTransposeBasePrivate *priv);
void ctb_record_frame_time(GstConvTransposeBasePrivate *priv, GstBuffer *inbuf);
void ctb_stamp_output(GstConvTransposeBase *self, GstBuffer *outbuf, gint64 n_steps);
gboolean ctb_continues_signal(GstConvTransposeBasePrivate *priv, GstBuffer *inbuf);
void ctb_start_signal(GstConvTransposeBase *self, GstClockTime pts);
void ctb_adopt_first_pts(GstConvTransposeBasePrivate *priv, GstClockTime pts);

/* gstconvtransposebase-queries.c */
gboolean ctb_query(GstBaseTransform *trans, GstPadDirection direction, GstQuery *query);
gboolean ctb_src_event(GstBaseTransform *trans, GstEvent *event);

G_END_DECLS

#endif
