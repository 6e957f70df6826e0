#include "gstconvtransposebase-private.h"

#include <string.h>

GST_DEBUG_CATEGORY(conv_transpose_base_debug);
#define GST_CAT_DEFAULT conv_transpose_base_debug

enum {
  PROP_0,
  PROP_MODEL,
  PROP_LAYER,
  PROP_STRIDE,
  PROP_PADDING,
  PROP_OUTPUT_PADDING,
  PROP_DILATION,
  PROP_GROUPS,
  PROP_N_THREADS,
};

G_DEFINE_ABSTRACT_TYPE_WITH_CODE(GstConvTransposeBase, gst_conv_transpose_base,
                                 GST_TYPE_BASE_TRANSFORM,
                                 G_ADD_PRIVATE(GstConvTransposeBase);
                                 GST_DEBUG_CATEGORY_INIT(conv_transpose_base_debug,
                                                         "convtransposebase", 0,
                                                         "ConvTranspose base"))

GstBaseTransformClass *ctb_parent_class(void) {
  return GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class);
}

GstConvTransposeBasePrivate *ctb_priv(gpointer self) {
  return gst_conv_transpose_base_get_instance_private(GST_CONV_TRANSPOSE_BASE(self));
}

/* ---- streaming state ---------------------------------------------------------- */

static void reset_signal(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  priv->unpushed_steps = priv->unpushed_done = 0;
  if (priv->stream)
    ct_stream_reset(priv->stream);
  priv->started = FALSE;
  priv->in_steps = priv->out_steps = 0;
  g_array_set_size(priv->frame_times, 0);
  priv->frame_times_first = 0;
}

void ctb_drop_stream(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  reset_signal(self);
  ct_stream_free(priv->stream);
  priv->stream = NULL;
  ct_model_unref(priv->stream_model);
  priv->stream_model = NULL;
}

static gboolean grow_floats(float **buf, gsize *capacity, gint64 count) {
  size_t bytes;
  if (count < 0 || !ct_bytes_for(count, sizeof(float), &bytes))
    return FALSE;
  if ((gsize)count <= *capacity)
    return TRUE;
  float *grown = g_try_realloc(*buf, bytes);
  if (!grown)
    return FALSE;
  *buf = grown;
  *capacity = (gsize)count;
  return TRUE;
}

/* Applies the n-threads property (0: all cores): one pool of threads serves
 * both the stream and the subclass conversions, so no two sets of threads
 * spin against each other. */
static void apply_threads(GstConvTransposeBase *self, guint n_threads) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  /* g_get_num_processors() reads sysfs: once per process, not per buffer. */
  static gsize processors = 0;
  if (g_once_init_enter(&processors))
    g_once_init_leave(&processors, (gsize)g_get_num_processors());
  gint want = n_threads ? (gint)n_threads : (gint)processors;
  ct_pool *pool = priv->workers;
  if ((pool ? ct_pool_size(pool) : 1) != want) {
    pool = want > 1 ? ct_pool_new(want) : NULL;
    if (want > 1 && !pool) {
      GST_WARNING_OBJECT(self, "cannot start %d threads, keeping %d", want,
                         gst_conv_transpose_base_threads(self));
      return;
    }
  }
  if (priv->stream && ct_stream_use_pool(priv->stream, pool) != CT_OK) {
    GST_WARNING_OBJECT(self, "no memory for %d threads, keeping %d", want,
                       gst_conv_transpose_base_threads(self));
    if (pool != priv->workers)
      ct_pool_free(pool);
    return;
  }
  if (pool != priv->workers) {
    ct_pool_free(priv->workers);
    priv->workers = pool;
  }
  GST_LOG_OBJECT(self, "threads: %d", want);
}

/* Builds the stream for the active model and the negotiated frame shape. */
static gboolean ensure_stream(GstConvTransposeBase *self) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  CtModel *active = ct_model_ref(priv->active);
  guint n_threads = priv->n_threads;
  GST_OBJECT_UNLOCK(self);
  if (priv->stream && priv->stream_model == active) {
    ct_model_unref(active);
    apply_threads(self, n_threads);
    return TRUE;
  }
  ctb_drop_stream(self);
  if (!active || !priv->configured) {
    ct_model_unref(active);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("no model loaded or caps not negotiated"),
                      (NULL));
    return FALSE;
  }
  char msg[256];
  priv->stream = ct_stream_new(active->layer, priv->config.frame_shape, msg, sizeof msg);
  if (!priv->stream) {
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("%s: %s", active->path, msg), (NULL));
    ct_model_unref(active);
    return FALSE;
  }
  priv->stream_model = active;
  /* Video frames are unpacked with the zero borders the layer's padding
   * reads, so the kernel reads them in place instead of copying every row
   * into bordered storage (not possible for tap-mode layers: then plain). */
  if (klass->rank > 1)
    ct_stream_take_padded_frames(priv->stream, TRUE);
  /* Frames are read in place across pushes where the layer allows it (after
   * the line above: bordered frames allow it); the two input buffers
   * alternate (see in_planar_prev). */
  ct_stream_retain_input(priv->stream, klass->rank > 1 && !priv->config.buffer_is_signal);
  /* The element packs every output right after computing it: ordinary
   * stores keep it in the cache for that (non-temporal ones would send a
   * 720p frame to memory only to read it back: 3d pipeline 435 -> 337-400
   * frames/s). */
  ct_stream_set_outputs_read_soon(priv->stream, TRUE);
  apply_threads(self, n_threads);
  return TRUE;
}

/* ---- output buffers ------------------------------------------------------------ */

/* An output buffer of `size` bytes from our pool, so steady streaming
 * allocates nothing (fresh pages cost a page fault each). The pool grows to
 * the largest buffer seen; smaller ones are trimmed and restored on release. */
static GstBuffer *acquire_output(GstConvTransposeBase *self, gsize size) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  if (!priv->buffer_pool || size > priv->buffer_pool_size) {
    if (priv->buffer_pool) {
      gst_buffer_pool_set_active(priv->buffer_pool, FALSE);
      gst_object_unref(priv->buffer_pool);
    }
    priv->buffer_pool = gst_buffer_pool_new();
    priv->buffer_pool_size = MAX(size, 1);
    GstStructure *config = gst_buffer_pool_get_config(priv->buffer_pool);
    gst_buffer_pool_config_set_params(config, NULL, (guint)priv->buffer_pool_size, 0, 0);
    if (priv->buffer_pool_size > G_MAXUINT ||
        !gst_buffer_pool_set_config(priv->buffer_pool, config) ||
        !gst_buffer_pool_set_active(priv->buffer_pool, TRUE)) {
      gst_object_unref(priv->buffer_pool);
      priv->buffer_pool = NULL;
      return gst_buffer_new_allocate(NULL, size, NULL);
    }
  }
  GstBuffer *buf = NULL;
  if (gst_buffer_pool_acquire_buffer(priv->buffer_pool, &buf, NULL) != GST_FLOW_OK)
    return gst_buffer_new_allocate(NULL, size, NULL);
  gst_buffer_set_size(buf, (gssize)size);
  return buf;
}

gboolean gst_conv_transpose_map_list(const GValue *list, GValue *out,
                                     gboolean (*map)(const GValue *item, GValue *out,
                                                     gconstpointer data),
                                     gconstpointer data) {
  g_value_init(out, GST_TYPE_LIST);
  for (guint i = 0; i < gst_value_list_get_size(list); i++) {
    GValue item = G_VALUE_INIT;
    if (map(gst_value_list_get_value(list, i), &item, data))
      gst_value_list_append_and_take_value(out, &item);
  }
  if (gst_value_list_get_size(out) == 0) {
    g_value_unset(out);
    return FALSE;
  }
  return TRUE;
}

void gst_conv_transpose_base_frame_layout(GstConvTransposeBase *self, gint64 *shape,
                                          gint64 *offset) {
  int64_t s[CT_MAX_RANK - 1], o[CT_MAX_RANK - 1];
  ct_stream_pushed_frame_layout(PRIV(self)->stream, s, o);
  for (gint a = 0; a + 1 < GST_CONV_TRANSPOSE_BASE_GET_CLASS(self)->rank; a++) {
    shape[a] = s[a];
    offset[a] = o[a];
  }
}

const ct_dsp *gst_conv_transpose_base_dsp(GstConvTransposeBase *self) {
  return PRIV(self)->dsp;
}

gint gst_conv_transpose_base_threads(GstConvTransposeBase *self) {
  ct_pool *workers = PRIV(self)->workers;
  return workers ? ct_pool_size(workers) : 1;
}

void gst_conv_transpose_base_parallel(GstConvTransposeBase *self, gint n_tasks,
                                      ct_pool_task fn, gpointer ctx) {
  ct_pool *workers = PRIV(self)->workers;
  if (workers)
    ct_pool_run(workers, n_tasks, fn, ctx);
  else
    for (gint t = 0; t < n_tasks; t++)
      fn(ctx, t, 0);
}

static void drop_buffer_pool(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  if (priv->buffer_pool) {
    gst_buffer_pool_set_active(priv->buffer_pool, FALSE);
    gst_object_unref(priv->buffer_pool);
    priv->buffer_pool = NULL;
    priv->buffer_pool_size = 0;
  }
}

/* Wraps n output steps of planar data into a buffer stamped from counters. */
static GstBuffer *make_output(GstConvTransposeBase *self, const float *planar,
                              gint64 chan_stride, gint64 n_steps) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstBuffer *outbuf = acquire_output(self, klass->output_size(self, n_steps));
  if (!outbuf || !klass->pack(self, planar, chan_stride, n_steps, outbuf)) {
    if (outbuf)
      gst_buffer_unref(outbuf);
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("cannot write an output buffer"), (NULL));
    return NULL;
  }
  ctb_stamp_output(self, outbuf, n_steps);
  return outbuf;
}

/* A whole signal in and out, packed as it is computed (see begin_pack). */
static GstBuffer *run_signal_packed(GstConvTransposeBase *self, gint64 n_steps,
                                    gint64 total) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  const gint64 in_frame = ct_stream_in_frame_size(priv->stream);
  GstBuffer *outbuf = acquire_output(self, klass->output_size(self, total));
  gpointer packer = outbuf ? klass->begin_pack(self, outbuf) : NULL;
  gint64 pushed = 0, tail = 0;
  gboolean ok =
      packer && ct_stream_set_sink(priv->stream, klass->pack_steps, packer) == CT_OK;
  ok = ok &&
       ct_stream_push(priv->stream, priv->in_planar, n_steps * in_frame, n_steps, NULL, 0,
                      &pushed) == CT_OK &&
       ct_stream_finish(priv->stream, NULL, 0, &tail) == CT_OK && pushed + tail == total;
  ct_stream_set_sink(priv->stream, NULL, NULL);
  if (packer)
    klass->end_pack(self, packer);
  if (!ok) {
    if (outbuf)
      gst_buffer_unref(outbuf);
    GST_ELEMENT_ERROR(
        self, RESOURCE, FAILED,
        ("cannot compute an output buffer of %" G_GINT64_FORMAT " steps", total), (NULL));
    return NULL;
  }
  ctb_stamp_output(self, outbuf, total);
  return outbuf;
}

/* Queues the n steps in out_planar as output buffers: one buffer for them
 * all, or one per step (video frames of a 3d layer). */
static gboolean emit_outputs(GstConvTransposeBase *self, gint64 n_steps, GQueue *into) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  const gint64 frame = ct_stream_out_frame_size(priv->stream);
  const gint64 chan_stride = n_steps * frame;
  if (n_steps <= 0)
    return TRUE;
  gint64 per_buffer = priv->config.one_buffer_per_step ? 1 : n_steps;
  for (gint64 step = 0; step < n_steps; step += per_buffer) {
    GstBuffer *outbuf =
        make_output(self, priv->out_planar + step * frame, chan_stride, per_buffer);
    if (!outbuf)
      return FALSE;
    g_queue_push_tail(into, outbuf);
  }
  return TRUE;
}

/* Ends the signal in progress: the tail goes downstream now, and the next
 * buffer starts a new signal. */
GstFlowReturn ctb_drain(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  if (!priv->started || !priv->stream) {
    reset_signal(self);
    return GST_FLOW_OK;
  }
  gint64 n = ct_stream_finish_out_steps(priv->stream), done = 0;
  GstFlowReturn ret = GST_FLOW_OK;
  if (n > 0 &&
      grow_floats(&priv->out_planar, &priv->out_capacity,
                  n * ct_stream_out_frame_size(priv->stream) *
                      ct_layer_params(priv->stream_model->layer)->out_channels)) {
    ct_stream_finish(priv->stream, priv->out_planar,
                     n * ct_stream_out_frame_size(priv->stream), &done);
    GQueue tail = G_QUEUE_INIT;
    if (!emit_outputs(self, done, &tail))
      ret = GST_FLOW_ERROR;
    GstBuffer *outbuf;
    while ((outbuf = g_queue_pop_head(&tail))) {
      if (ret == GST_FLOW_OK)
        ret = gst_pad_push(GST_BASE_TRANSFORM_SRC_PAD(self), outbuf);
      else
        gst_buffer_unref(outbuf);
    }
    GST_DEBUG_OBJECT(self, "drained %" G_GINT64_FORMAT " steps: %s", done,
                     gst_flow_get_name(ret));
  }
  reset_signal(self);
  /* Whatever comes next starts a new signal. */
  priv->mark_discont = TRUE;
  return ret;
}

/* ---- GstBaseTransform --------------------------------------------------------- */

static GstCaps *gst_conv_transpose_base_transform_caps(GstBaseTransform *trans,
                                                       GstPadDirection direction,
                                                       GstCaps *caps, GstCaps *filter) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(trans);
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  CtModel *model = NULL;
  /* Fixed input caps map through the model that takes them (caps sent for
   * an offer that was superseded meanwhile); anything else through the
   * model being negotiated for. */
  if (direction == GST_PAD_SINK && gst_caps_is_fixed(caps))
    model = ctb_model_for_input(self, caps);
  if (!model)
    model = ctb_negotiation_model(self);
  GstCaps *result;
  if (model) {
    result = klass->transform_caps_for_layer(self, model->layer, direction, caps, filter);
  } else { /* no model yet: anything the other pad could take */
    GstPad *other = direction == GST_PAD_SINK ? GST_BASE_TRANSFORM_SRC_PAD(trans)
                                              : GST_BASE_TRANSFORM_SINK_PAD(trans);
    result = gst_pad_get_pad_template_caps(other);
  }
  ct_model_unref(model);
  if (filter) {
    GstCaps *both = gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(result);
    result = both;
  }
  GST_DEBUG_OBJECT(self, "%s %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
                   direction == GST_PAD_SINK ? "sink" : "src", caps, result);
  return result;
}

/* GstPad checks ACCEPT_CAPS before a CAPS event reaches us: fixed input caps
 * no model can take end negotiation here, so say what the model needs. */
static gboolean gst_conv_transpose_base_accept_caps(GstBaseTransform *trans,
                                                    GstPadDirection direction,
                                                    GstCaps *caps) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(trans);
  gboolean ok = GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class)
                    ->accept_caps(trans, direction, caps);
  if (ok || direction != GST_PAD_SINK || !gst_caps_is_fixed(caps))
    return ok;
  CtModel *model = ctb_model_for_input(self, caps);
  if (model) {
    ct_model_unref(model);
    return TRUE;
  }
  ctb_post_input_mismatch(self, caps);
  return FALSE;
}

static gboolean gst_conv_transpose_base_set_caps(GstBaseTransform *trans, GstCaps *incaps,
                                                 GstCaps *outcaps) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(trans);
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  /* The caps choose the model: the one upstream was asked for, the newest,
   * or the running one, in that order. */
  CtModel *model = ctb_model_for_input(self, incaps);
  if (!model) {
    ctb_post_input_mismatch(self, incaps);
    return FALSE;
  }
  GST_OBJECT_LOCK(self);
  gboolean swapped = priv->active != model;
  if (swapped) {
    ct_model_unref(priv->active);
    priv->active = ct_model_ref(model);
  }
  if (priv->offer == model)
    g_clear_pointer(&priv->offer, ct_model_unref);
  if (priv->previous_offer == model)
    g_clear_pointer(&priv->previous_offer, ct_model_unref);
  GST_OBJECT_UNLOCK(self);
  if (swapped)
    GST_INFO_OBJECT(self, "new caps, new model: %s", model->path);
  ct_model_unref(model);
  GstConvTransposeConfig config = {.rate_d = 1};
  if (!klass->configure(self, incaps, outcaps, &config))
    return FALSE;
  ctb_drop_stream(self);
  priv->config = config;
  priv->configured = TRUE;
  return ensure_stream(self);
}

static GstFlowReturn gst_conv_transpose_base_submit_input_buffer(GstBaseTransform *trans,
                                                                 gboolean is_discont,
                                                                 GstBuffer *input) {
  GstFlowReturn ret = ctb_move_to_wanted_model(GST_CONV_TRANSPOSE_BASE(trans));
  if (ret != GST_FLOW_OK) {
    gst_buffer_unref(input);
    return ret;
  }
  return GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class)
      ->submit_input_buffer(trans, is_discont, input);
}

/* Output floats made per piece of a buffer (64 MB): the element's memory
 * does not grow with stride x buffer size. */
#define OUTPUT_PIECE_FLOATS (16 << 20)

/* Pushes the pending input piece by piece until some output is ready or the
 * input is used up. */
static GstFlowReturn push_unpushed(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  const ct_params *p = ct_layer_params(priv->stream_model->layer);
  const gint64 in_frame = ct_stream_in_frame_size(priv->stream);
  const gint64 out_frame = ct_stream_out_frame_size(priv->stream);
  const double per_step =
      (double)p->stride[0] * (double)out_frame * (double)p->out_channels;
  const gint64 piece = MAX(1, (gint64)(OUTPUT_PIECE_FLOATS / per_step));
  while (priv->unpushed_done < priv->unpushed_steps && g_queue_is_empty(&priv->ready)) {
    const gint64 count = MIN(piece, priv->unpushed_steps - priv->unpushed_done);
    gint64 n_out = ct_stream_push_out_steps(priv->stream, count), done_out = 0;
    if (n_out < 0 || !grow_floats(&priv->out_planar, &priv->out_capacity,
                                  n_out * out_frame * p->out_channels)) {
      GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                        ("out of memory for %" G_GINT64_FORMAT " output steps", n_out),
                        (NULL));
      return GST_FLOW_ERROR;
    }
    ct_stream_push(priv->stream, priv->in_planar + priv->unpushed_done * in_frame,
                   priv->unpushed_stride, count, priv->out_planar, n_out * out_frame,
                   &done_out);
    priv->unpushed_done += count;
    priv->in_steps += (guint64)count;
    if (!emit_outputs(self, done_out, &priv->ready))
      return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

static GstFlowReturn gst_conv_transpose_base_generate_output(GstBaseTransform *trans,
                                                             GstBuffer **outbuf) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(trans);
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  /* Called again until it gives no buffer: hand out what is ready first,
   * then what the rest of the last buffer makes. */
  *outbuf = g_queue_pop_head(&priv->ready);
  if (*outbuf)
    return GST_FLOW_OK;
  if (priv->unpushed_done < priv->unpushed_steps) {
    GstFlowReturn ret = push_unpushed(self);
    *outbuf = g_queue_pop_head(&priv->ready);
    return ret;
  }
  GstBuffer *inbuf = trans->queued_buf;
  trans->queued_buf = NULL;
  if (!inbuf)
    return GST_FLOW_OK;
  GstFlowReturn ret = GST_FLOW_OK;
  gint64 n_steps;
  if (!ensure_stream(self) || !klass->count_steps(self, inbuf, &n_steps)) {
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if (priv->config.buffer_is_signal) {
    /* A frame is a whole signal: same time span in and out. */
    reset_signal(self);
    ctb_start_signal(self, GST_BUFFER_PTS(inbuf));
  } else if (priv->started && !ctb_continues_signal(priv, inbuf)) {
    GST_DEBUG_OBJECT(self, "discontinuity at %" GST_TIME_FORMAT ": drain and restart",
                     GST_TIME_ARGS(GST_BUFFER_PTS(inbuf)));
    ret = ctb_drain(self);
    if (ret != GST_FLOW_OK)
      goto done;
  }
  if (!priv->started)
    ctb_start_signal(self, GST_BUFFER_PTS(inbuf));
  if (ctb_variable_rate(priv)) {
    for (gint64 i = 0; i < n_steps; i++)
      ctb_record_frame_time(priv, inbuf);
  } else {
    ctb_adopt_first_pts(priv, GST_BUFFER_PTS(inbuf));
  }

  const ct_params *p = ct_layer_params(priv->stream_model->layer);
  const gint64 in_frame = ct_stream_in_frame_size(priv->stream);
  const gint64 out_frame = ct_stream_out_frame_size(priv->stream);
  gint64 n_out = ct_stream_push_out_steps(priv->stream, n_steps), done_out = 0;
  gint64 n_tail = 0;
  if (!priv->config.buffer_is_signal && klass->rank > 1) {
    float *buf = priv->in_planar;
    gsize capacity = priv->in_capacity;
    priv->in_planar = priv->in_planar_prev;
    priv->in_capacity = priv->in_prev_capacity;
    priv->in_planar_prev = buf;
    priv->in_prev_capacity = capacity;
  }
  if (n_out < 0 || !grow_floats(&priv->in_planar, &priv->in_capacity,
                                n_steps * in_frame * p->in_channels)) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                      ("buffer of %" G_GINT64_FORMAT " steps is too large", n_steps),
                      (NULL));
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if (!klass->unpack(self, inbuf, priv->in_planar, n_steps * in_frame)) {
    ret = GST_FLOW_ERROR;
    goto done;
  }
  if (priv->config.buffer_is_signal) {
    /* Worst case both parts land in one buffer: push then finish. */
    gint64 total;
    int64_t shape[CT_MAX_RANK] = {n_steps, priv->config.frame_shape[0],
                                  priv->config.frame_shape[1]};
    int64_t out_shape[CT_MAX_RANK];
    char msg[256];
    if (ct_output_shape(p, shape, out_shape, msg, sizeof msg) != CT_OK) {
      GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("%s", msg), (NULL));
      ret = GST_FLOW_ERROR;
      goto done;
    }
    total = out_shape[0];
    GstBuffer *frame;
    if (klass->begin_pack && klass->rank <= 2) {
      frame = run_signal_packed(self, n_steps, total);
    } else {
      if (!grow_floats(&priv->out_planar, &priv->out_capacity,
                       total * out_frame * p->out_channels))
        goto no_memory;
      ct_stream_push(priv->stream, priv->in_planar, n_steps * in_frame, n_steps,
                     priv->out_planar, total * out_frame, &done_out);
      ct_stream_finish(priv->stream, priv->out_planar + done_out * out_frame,
                       total * out_frame, &n_tail);
      n_out = done_out + n_tail;
      frame = make_output(self, priv->out_planar, total * out_frame, n_out);
    }
    if (frame) {
      gst_buffer_copy_into(frame, inbuf,
                           GST_BUFFER_COPY_TIMESTAMPS | GST_BUFFER_COPY_FLAGS, 0, -1);
      g_queue_push_tail(&priv->ready, frame);
    } else {
      ret = GST_FLOW_ERROR;
    }
    reset_signal(self);
  } else {
    priv->unpushed_steps = n_steps;
    priv->unpushed_done = 0;
    priv->unpushed_stride = n_steps * in_frame;
    ret = push_unpushed(self);
  }
  *outbuf = g_queue_pop_head(&priv->ready);
done:
  gst_buffer_unref(inbuf);
  return ret;
no_memory:
  GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                    ("out of memory for %" G_GINT64_FORMAT " output steps", n_out),
                    (NULL));
  gst_buffer_unref(inbuf);
  return GST_FLOW_ERROR;
}

/* The base class only logs when nothing downstream takes what the layer
 * makes of the input (a size or rate the layer cannot produce): say it. */
static void explain_no_output_caps(GstConvTransposeBase *self, GstCaps *incaps) {
  GstBaseTransform *trans = GST_BASE_TRANSFORM(self);
  GstCaps *ours =
      gst_conv_transpose_base_transform_caps(trans, GST_PAD_SINK, incaps, NULL);
  GstCaps *theirs = gst_pad_peer_query_caps(GST_BASE_TRANSFORM_SRC_PAD(trans), NULL);
  if (!gst_caps_can_intersect(ours, theirs)) {
    CtModel *model = ctb_negotiation_model(self);
    gchar *in = gst_caps_to_string(incaps), *out = gst_caps_to_string(ours);
    gchar *down = gst_caps_to_string(theirs);
    GST_ELEMENT_ERROR(
        self, CORE, NEGOTIATION,
        ("%s: downstream accepts no output this layer can make: it turns %s "
         "into %s, downstream takes %s",
         model ? model->path : "no model", in, out, down),
        (NULL));
    g_free(in);
    g_free(out);
    g_free(down);
    ct_model_unref(model);
  }
  gst_caps_unref(ours);
  gst_caps_unref(theirs);
}

static gboolean gst_conv_transpose_base_sink_event(GstBaseTransform *trans,
                                                   GstEvent *event) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(trans);
  switch (GST_EVENT_TYPE(event)) {
  case GST_EVENT_EOS:
    ctb_drain(self);
    break;
  case GST_EVENT_FLUSH_STOP:
    g_queue_clear_full(&PRIV(self)->ready, (GDestroyNotify)gst_buffer_unref);
    reset_signal(self);
    break;
  case GST_EVENT_SEGMENT:
  case GST_EVENT_GAP:
    /* Gapless playback (concat, playbin's next track) sends a new SEGMENT
     * without a flush, and a GAP says the signal stops for a while: either
     * ends the signal, so its tail goes out first, under the old segment
     * and before the gap. After a flush there is nothing to drain. */
    ctb_drain(self);
    break;
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    CtModel *model = ctb_model_for_input(self, caps);
    if (!model) {
      ctb_post_input_mismatch(self, caps);
      gst_event_unref(event);
      return FALSE;
    }
    ct_model_unref(model);
    GstCaps *current = gst_pad_get_current_caps(GST_BASE_TRANSFORM_SINK_PAD(trans));
    if (current && !gst_caps_is_equal(current, caps))
      ctb_drain(self);
    if (current)
      gst_caps_unref(current);
    gst_caps_ref(caps);
    gboolean ok = GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class)
                      ->sink_event(trans, event);
    if (!ok)
      explain_no_output_caps(self, caps);
    gst_caps_unref(caps);
    return ok;
  }
  default:
    break;
  }
  return GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class)
      ->sink_event(trans, event);
}

static gboolean gst_conv_transpose_base_stop(GstBaseTransform *trans) {
  GstConvTransposeBasePrivate *priv = PRIV(trans);
  drop_buffer_pool(GST_CONV_TRANSPOSE_BASE(trans));
  g_queue_clear_full(&priv->ready, (GDestroyNotify)gst_buffer_unref);
  ctb_drop_stream(GST_CONV_TRANSPOSE_BASE(trans));
  priv->configured = FALSE;
  g_clear_pointer(&priv->in_planar, g_free);
  g_clear_pointer(&priv->in_planar_prev, g_free);
  priv->in_prev_capacity = 0;
  g_clear_pointer(&priv->out_planar, g_free);
  priv->in_capacity = priv->out_capacity = 0;
  return TRUE;
}

/* ---- GstElement --------------------------------------------------------------- */

static GstStateChangeReturn
gst_conv_transpose_base_change_state(GstElement *element, GstStateChange transition) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(element);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    GST_OBJECT_LOCK(self);
    LoadRequest *req = ctb_load_request_new(priv);
    GST_OBJECT_UNLOCK(self);
    GError *error = NULL;
    CtModel *model = ctb_load_model(self, req, &error);
    ctb_load_request_free(req);
    if (!model) {
      if (g_error_matches(error, CT_MODEL_ERROR, CT_MODEL_ERROR_IO))
        GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", error->message), (NULL));
      else
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("%s", error->message), (NULL));
      g_error_free(error);
      return GST_STATE_CHANGE_FAILURE;
    }
    GST_OBJECT_LOCK(self);
    ct_model_unref(priv->active);
    ct_model_unref(priv->wanted);
    priv->active = model;
    priv->wanted = ct_model_ref(model);
    priv->loaded = TRUE;
    GST_OBJECT_UNLOCK(self);
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(gst_conv_transpose_base_parent_class)
                                 ->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
    GST_OBJECT_LOCK(self);
    priv->loaded = FALSE;
    priv->generation++; /* loads still running are now stale */
    g_clear_pointer(&priv->active, ct_model_unref);
    g_clear_pointer(&priv->wanted, ct_model_unref);
    g_clear_pointer(&priv->offer, ct_model_unref);
    g_clear_pointer(&priv->previous_offer, ct_model_unref);
    GST_OBJECT_UNLOCK(self);
  }
  return ret;
}

/* ---- GObject ------------------------------------------------------------------ */

static void gst_conv_transpose_base_set_property(GObject *object, guint prop_id,
                                                 const GValue *value, GParamSpec *pspec) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(object);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_MODEL:
    g_free(priv->model_path);
    priv->model_path = g_value_dup_string(value);
    ctb_request_reload_locked(self);
    break;
  case PROP_LAYER:
    g_free(priv->layer_name);
    priv->layer_name = g_value_dup_string(value);
    ctb_request_reload_locked(self);
    break;
  case PROP_STRIDE:
  case PROP_PADDING:
  case PROP_OUTPUT_PADDING:
  case PROP_DILATION: {
    gchar **text = &priv->axis_text[prop_id - PROP_STRIDE];
    g_free(*text);
    *text = g_value_dup_string(value);
    ctb_request_reload_locked(self);
    break;
  }
  case PROP_GROUPS:
    priv->groups = g_value_get_int(value);
    ctb_request_reload_locked(self);
    break;
  case PROP_N_THREADS:
    priv->n_threads = g_value_get_uint(value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_conv_transpose_base_get_property(GObject *object, guint prop_id,
                                                 GValue *value, GParamSpec *pspec) {
  GstConvTransposeBasePrivate *priv = PRIV(object);
  GST_OBJECT_LOCK(object);
  switch (prop_id) {
  case PROP_MODEL:
    g_value_set_string(value, priv->model_path);
    break;
  case PROP_LAYER:
    g_value_set_string(value, priv->layer_name);
    break;
  case PROP_STRIDE:
  case PROP_PADDING:
  case PROP_OUTPUT_PADDING:
  case PROP_DILATION:
    g_value_set_string(value, priv->axis_text[prop_id - PROP_STRIDE]);
    break;
  case PROP_GROUPS:
    g_value_set_int(value, priv->groups);
    break;
  case PROP_N_THREADS:
    g_value_set_uint(value, priv->n_threads);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(object);
}

static void gst_conv_transpose_base_dispose(GObject *object) {
  GstConvTransposeBasePrivate *priv = PRIV(object);
  if (priv->model_loader) {
    /* Queued loads are dropped (the pool frees their requests); the one
     * running, now stale, is waited for, since it touches this object. */
    GST_OBJECT_LOCK(object);
    priv->generation++;
    GST_OBJECT_UNLOCK(object);
    g_thread_pool_free(priv->model_loader, TRUE, TRUE);
    priv->model_loader = NULL;
  }
  G_OBJECT_CLASS(gst_conv_transpose_base_parent_class)->dispose(object);
}

static void gst_conv_transpose_base_finalize(GObject *object) {
  GstConvTransposeBasePrivate *priv = PRIV(object);
  ctb_drop_stream(GST_CONV_TRANSPOSE_BASE(object));
  g_queue_clear_full(&priv->ready, (GDestroyNotify)gst_buffer_unref);
  drop_buffer_pool(GST_CONV_TRANSPOSE_BASE(object));
  ct_pool_free(priv->workers);
  g_free(priv->in_planar);
  g_free(priv->in_planar_prev);
  g_free(priv->out_planar);
  g_array_unref(priv->frame_times);
  ct_model_unref(priv->active);
  ct_model_unref(priv->wanted);
  ct_model_unref(priv->offer);
  ct_model_unref(priv->previous_offer);
  g_free(priv->model_path);
  g_free(priv->layer_name);
  for (int i = 0; i < 4; i++)
    g_free(priv->axis_text[i]);
  G_OBJECT_CLASS(gst_conv_transpose_base_parent_class)->finalize(object);
}

static void gst_conv_transpose_base_init(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  priv->model_loader =
      g_thread_pool_new_full(ctb_load_in_background, self,
                             (GDestroyNotify)ctb_load_request_free, 1, FALSE, NULL);
  priv->base_pts = GST_CLOCK_TIME_NONE;
  priv->dsp = ct_dsp_default();
  priv->frame_times = g_array_new(FALSE, FALSE, sizeof(FrameTime));
  gst_base_transform_set_qos_enabled(GST_BASE_TRANSFORM(self), FALSE);
}

#define AXIS_BLURB(what)                                                                 \
  what                                                                                   \
      " of the layer, overriding the model file: one integer for every axis (\"2\") or " \
      "one per axis (\"1,2,2\"); unset uses the file's value"

static void install_axis_property(GObjectClass *gobject_class, guint id,
                                  const gchar *name, const gchar *nick,
                                  const gchar *blurb) {
  g_object_class_install_property(gobject_class, id,
                                  g_param_spec_string(name, nick, blurb, NULL,
                                                      G_PARAM_READWRITE |
                                                          G_PARAM_STATIC_STRINGS |
                                                          GST_PARAM_MUTABLE_PLAYING));
}

static void gst_conv_transpose_base_class_init(GstConvTransposeBaseClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  gobject_class->set_property = gst_conv_transpose_base_set_property;
  gobject_class->get_property = gst_conv_transpose_base_get_property;
  gobject_class->dispose = gst_conv_transpose_base_dispose;
  gobject_class->finalize = gst_conv_transpose_base_finalize;

  g_object_class_install_property(
      gobject_class, PROP_MODEL,
      g_param_spec_string(
          "model", "Model",
          "Path of the .safetensors file holding the layer; loaded on the way "
          "to READY, and swapped in at a buffer boundary when changed while "
          "playing (a bad file keeps the current model)",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_LAYER,
      g_param_spec_string(
          "layer", "Layer",
          "Name prefix of the layer in the file (tensors P.weight and "
          "P.bias); unset reads the bare names weight and bias",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  install_axis_property(gobject_class, PROP_STRIDE, "stride", "Stride",
                        AXIS_BLURB("Stride"));
  install_axis_property(gobject_class, PROP_PADDING, "padding", "Padding",
                        AXIS_BLURB("Padding"));
  install_axis_property(gobject_class, PROP_OUTPUT_PADDING, "output-padding",
                        "Output padding", AXIS_BLURB("Output padding"));
  install_axis_property(gobject_class, PROP_DILATION, "dilation", "Dilation",
                        AXIS_BLURB("Dilation"));
  g_object_class_install_property(
      gobject_class, PROP_GROUPS,
      g_param_spec_int(
          "groups", "Groups",
          "Number of channel groups, overriding the model file (0: the file's "
          "value)",
          0, G_MAXINT32, 0,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property(
      gobject_class, PROP_N_THREADS,
      g_param_spec_uint("n-threads", "Threads",
                        "Threads that share the work of each buffer (0: all cores); the "
                        "output is identical for any value",
                        0, 1024, 0,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                            GST_PARAM_MUTABLE_PLAYING));

  element_class->change_state = gst_conv_transpose_base_change_state;

  trans_class->transform_caps = gst_conv_transpose_base_transform_caps;
  trans_class->set_caps = gst_conv_transpose_base_set_caps;
  trans_class->accept_caps = gst_conv_transpose_base_accept_caps;
  trans_class->submit_input_buffer = gst_conv_transpose_base_submit_input_buffer;
  trans_class->generate_output = gst_conv_transpose_base_generate_output;
  trans_class->sink_event = gst_conv_transpose_base_sink_event;
  trans_class->query = ctb_query;
  trans_class->src_event = ctb_src_event;
  trans_class->stop = gst_conv_transpose_base_stop;
  trans_class->passthrough_on_same_caps = FALSE;

  gst_type_mark_as_plugin_api(GST_TYPE_CONV_TRANSPOSE_BASE, 0);
}
