#include "gstconvtransposebase.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC(conv_transpose_base_debug);
#define GST_CAT_DEFAULT conv_transpose_base_debug

/* Timestamps closer than this to where the counters expect them are treated
 * as continuous, as audio sinks do with their default alignment threshold. */
#define GAP_TOLERANCE (40 * GST_MSECOND)

/* A loaded layer, shared by reference between the properties, negotiation
 * and the streaming thread, so a swap never frees a layer still in use. */
typedef struct {
  ct_layer *layer;
  gchar *path;
} CtModel;

static void ct_model_clear(gpointer data) {
  CtModel *model = data;
  ct_layer_free(model->layer);
  g_free(model->path);
}

static CtModel *ct_model_ref(CtModel *model) {
  return model ? g_atomic_rc_box_acquire(model) : NULL;
}

static void ct_model_unref(CtModel *model) {
  if (model)
    g_atomic_rc_box_release_full(model, ct_model_clear);
}

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

typedef struct {
  GstClockTime pts, duration;
} FrameTime;

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

G_DEFINE_ABSTRACT_TYPE_WITH_CODE(GstConvTransposeBase, gst_conv_transpose_base,
                                 GST_TYPE_BASE_TRANSFORM,
                                 G_ADD_PRIVATE(GstConvTransposeBase);
                                 GST_DEBUG_CATEGORY_INIT(conv_transpose_base_debug,
                                                         "convtransposebase", 0,
                                                         "ConvTranspose base"))

#define PRIV(self)                                                                       \
  ((GstConvTransposeBasePrivate *)gst_conv_transpose_base_get_instance_private(          \
      GST_CONV_TRANSPOSE_BASE(self)))

static const char *const axis_property_names[4] = {"stride", "padding", "output-padding",
                                                   "dilation"};

/* ---- loading ---------------------------------------------------------------- */

typedef struct {
  guint generation;
  gchar *path, *layer_name, *axis_text[4];
  gint groups;
} LoadRequest;

static void load_request_free(LoadRequest *req) {
  g_free(req->path);
  g_free(req->layer_name);
  for (int i = 0; i < 4; i++)
    g_free(req->axis_text[i]);
  g_free(req);
}

/* Snapshot of the properties, taken under the object lock. */
static LoadRequest *load_request_new(GstConvTransposeBasePrivate *priv) {
  LoadRequest *req = g_new0(LoadRequest, 1);
  req->generation = priv->generation;
  req->path = g_strdup(priv->model_path);
  req->layer_name = g_strdup(priv->layer_name);
  for (int i = 0; i < 4; i++)
    req->axis_text[i] = g_strdup(priv->axis_text[i]);
  req->groups = priv->groups;
  return req;
}

static CtModel *load_model(GstConvTransposeBase *self, const LoadRequest *req,
                           GError **error) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  if (!req->path || !*req->path) {
    g_set_error(error, CT_MODEL_ERROR, CT_MODEL_ERROR_IO,
                "no model: set the 'model' property to a .safetensors file");
    return NULL;
  }
  CtOverrides overrides = {0};
  CtAxisOverride *axes[4] = {&overrides.stride, &overrides.padding,
                             &overrides.output_padding, &overrides.dilation};
  for (int i = 0; i < 4; i++) {
    if (!req->axis_text[i])
      continue;
    GError *parse_error = NULL;
    if (!ct_axis_override_parse(req->axis_text[i], axes[i], &parse_error)) {
      g_set_error(error, CT_MODEL_ERROR, CT_MODEL_ERROR_LAYER, "property %s: %s",
                  axis_property_names[i], parse_error->message);
      g_error_free(parse_error);
      return NULL;
    }
  }
  if (req->groups > 0) {
    overrides.groups_set = TRUE;
    overrides.groups = req->groups;
  }
  GPtrArray *warnings = g_ptr_array_new_with_free_func(g_free);
  ct_layer *layer =
      ct_model_load_full(req->path, req->layer_name, &overrides, warnings, error);
  /* Findings that do not stop the load (an unknown metadata key, say). */
  for (guint i = 0; i < warnings->len; i++)
    GST_ELEMENT_WARNING(self, RESOURCE, READ, ("%s", (const gchar *)warnings->pdata[i]),
                        (NULL));
  g_ptr_array_unref(warnings);
  if (!layer)
    return NULL;
  int rank = ct_layer_params(layer)->rank;
  if (rank != klass->rank) {
    g_set_error(error, CT_MODEL_ERROR, CT_MODEL_ERROR_LAYER,
                "%s: holds a %dd layer (weight of rank %d), but %s needs a %dd layer "
                "(weight of rank %d)",
                req->path, rank, rank + 2, GST_ELEMENT_NAME(self), klass->rank,
                klass->rank + 2);
    ct_layer_free(layer);
    return NULL;
  }
  CtModel *model = g_atomic_rc_box_new0(CtModel);
  model->layer = layer;
  model->path = g_strdup(req->path);
  return model;
}

/* Same hyper-parameters, weights and bias: the same output for any input. */
static gboolean layers_identical(const ct_layer *a, const ct_layer *b) {
  const ct_params *pa = ct_layer_params(a), *pb = ct_layer_params(b);
  if (pa->rank != pb->rank || pa->in_channels != pb->in_channels ||
      pa->out_channels != pb->out_channels || pa->groups != pb->groups)
    return FALSE;
  for (int i = 0; i < pa->rank; i++)
    if (pa->kernel[i] != pb->kernel[i] || pa->stride[i] != pb->stride[i] ||
        pa->padding[i] != pb->padding[i] ||
        pa->output_padding[i] != pb->output_padding[i] ||
        pa->dilation[i] != pb->dilation[i])
      return FALSE;
  const float *bias_a = ct_layer_bias(a), *bias_b = ct_layer_bias(b);
  if ((bias_a == NULL) != (bias_b == NULL))
    return FALSE;
  if (bias_a && memcmp(bias_a, bias_b, (size_t)pa->out_channels * sizeof(float)) != 0)
    return FALSE;
  return memcmp(ct_layer_weight(a), ct_layer_weight(b),
                (size_t)ct_weight_count(pa) * sizeof(float)) == 0;
}

/* Runs on the loader thread: the streaming thread moves to the result at
 * the next buffer boundary. A request overtaken by a newer one is dropped
 * unread, so a burst of property changes loads only the last file. */
static void load_in_background(gpointer data, gpointer user_data) {
  LoadRequest *req = data;
  GstConvTransposeBase *self = user_data;
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  gboolean current = req->generation == priv->generation;
  CtModel *wanted = ct_model_ref(priv->wanted), *active = ct_model_ref(priv->active);
  GST_OBJECT_UNLOCK(self);
  GError *error = NULL;
  CtModel *model = current ? load_model(self, req, &error) : NULL;
  /* Setting the file already in use changes nothing: no drain, no restart. */
  CtModel *same = NULL;
  if (model && wanted && layers_identical(model->layer, wanted->layer))
    same = wanted;
  else if (model && active && layers_identical(model->layer, active->layer))
    same = active;
  GST_OBJECT_LOCK(self);
  current = req->generation == priv->generation;
  if (model && current) {
    CtModel *next = same ? ct_model_ref(same) : model;
    if (!same)
      model = NULL;
    ct_model_unref(priv->wanted);
    priv->wanted = next;
  }
  GST_OBJECT_UNLOCK(self);
  if (error && current)
    GST_ELEMENT_WARNING(self, RESOURCE, READ,
                        ("%s (keeping the current model)", error->message), (NULL));
  if (!current)
    GST_DEBUG_OBJECT(self, "dropping superseded load of %s", req->path);
  else if (same)
    GST_DEBUG_OBJECT(self, "%s holds the layer already in use", req->path);
  ct_model_unref(model);
  ct_model_unref(wanted);
  ct_model_unref(active);
  g_clear_error(&error);
  load_request_free(req);
}

/* Called with the object lock held after a property that shapes the layer
 * changed. Before READY the model is loaded by the state change instead. */
static void request_reload_locked(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  priv->generation++;
  if (priv->loaded)
    g_thread_pool_push(priv->model_loader, load_request_new(priv), NULL);
}

/* The model caps are computed for: the one upstream was asked to
 * renegotiate for, else the one running (before the first caps, the
 * newest: nothing runs yet that could be kept). Object lock held. */
static CtModel *negotiation_model_locked(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  if (priv->offer)
    return priv->offer;
  if (!priv->configured && priv->wanted)
    return priv->wanted;
  return priv->active;
}

static CtModel *negotiation_model(GstConvTransposeBase *self) {
  GST_OBJECT_LOCK(self);
  CtModel *model = ct_model_ref(negotiation_model_locked(self));
  GST_OBJECT_UNLOCK(self);
  return model;
}

/* The first of the offered, newest and running models that takes these
 * fixed input caps, or NULL: caps already on their way when the element
 * moved on (a model set again mid-negotiation) still find their model. */
static CtModel *model_for_input(GstConvTransposeBase *self, GstCaps *caps) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  CtModel *candidates[4] = {ct_model_ref(priv->offer), ct_model_ref(priv->wanted),
                            ct_model_ref(priv->active),
                            ct_model_ref(priv->previous_offer)};
  GST_OBJECT_UNLOCK(self);
  CtModel *found = NULL;
  for (int i = 0; i < 4; i++) {
    if (!found && candidates[i]) {
      gchar *mismatch = klass->check_input_caps(self, candidates[i]->layer, caps);
      if (!mismatch)
        found = ct_model_ref(candidates[i]);
      g_free(mismatch);
    }
    ct_model_unref(candidates[i]);
  }
  return found;
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

static void drop_stream(GstConvTransposeBase *self) {
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
  drop_stream(self);
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
  ct_stream_set_stream_out_threshold(priv->stream, G_MAXDOUBLE);
  apply_threads(self, n_threads);
  return TRUE;
}

/* ---- timestamps ----------------------------------------------------------------
 *
 * At a known rate, every time comes from the step counters and the first
 * timestamp of the signal (durations are differences of two such times, so
 * rounding never drifts). At a variable frame rate (framerate 0/1 on a
 * streamed axis) output step j sits at input position j / s, between the
 * times of the input frames around it; past the last frame it continues at
 * that frame's duration (or the interval before it). */

static gboolean variable_rate(GstConvTransposeBasePrivate *priv) {
  return priv->config.rate_n <= 0 && !priv->config.buffer_is_signal;
}

static guint64 stream_stride(GstConvTransposeBasePrivate *priv) {
  return (guint64)ct_layer_params(priv->stream_model->layer)->stride[0];
}

/* Time from the start of the signal to input step i, at a known rate. */
static GstClockTime input_offset(GstConvTransposeBasePrivate *priv, guint64 i) {
  return gst_util_uint64_scale(i, GST_SECOND * (guint64)priv->config.rate_d,
                               (guint64)priv->config.rate_n);
}

static const FrameTime *frame_time(GstConvTransposeBasePrivate *priv, guint64 i) {
  if (i < priv->frame_times_first ||
      i - priv->frame_times_first >= priv->frame_times->len)
    return NULL;
  return &g_array_index(priv->frame_times, FrameTime, i - priv->frame_times_first);
}

/* How long input frame i lasts: up to the next frame, else its duration,
 * else as long as the one before it. */
static GstClockTime frame_interval(GstConvTransposeBasePrivate *priv, guint64 i) {
  const FrameTime *cur = frame_time(priv, i), *next = frame_time(priv, i + 1);
  const FrameTime *prev = i > 0 ? frame_time(priv, i - 1) : NULL;
  if (!cur || !GST_CLOCK_TIME_IS_VALID(cur->pts))
    return GST_CLOCK_TIME_NONE;
  if (next && GST_CLOCK_TIME_IS_VALID(next->pts) && next->pts > cur->pts)
    return next->pts - cur->pts;
  if (GST_CLOCK_TIME_IS_VALID(cur->duration))
    return cur->duration;
  if (prev && GST_CLOCK_TIME_IS_VALID(prev->pts) && cur->pts > prev->pts)
    return cur->pts - prev->pts;
  return GST_CLOCK_TIME_NONE;
}

static GstClockTime variable_rate_time(GstConvTransposeBasePrivate *priv, guint64 j) {
  const guint64 s = stream_stride(priv);
  if (priv->frame_times->len == 0)
    return GST_CLOCK_TIME_NONE;
  const guint64 last = priv->frame_times_first + priv->frame_times->len - 1;
  guint64 i = j / s, phase = j % s;
  if (i > last) {
    phase += (i - last) * s;
    i = last;
  }
  const FrameTime *frame = frame_time(priv, i);
  if (!frame || !GST_CLOCK_TIME_IS_VALID(frame->pts))
    return GST_CLOCK_TIME_NONE;
  if (phase == 0)
    return frame->pts;
  GstClockTime interval = frame_interval(priv, i);
  if (!GST_CLOCK_TIME_IS_VALID(interval))
    return GST_CLOCK_TIME_NONE;
  return frame->pts + gst_util_uint64_scale(interval, phase, s);
}

/* Time of output step j of the signal, or NONE. */
static GstClockTime output_time(GstConvTransposeBasePrivate *priv, guint64 j) {
  if (variable_rate(priv))
    return variable_rate_time(priv, j);
  if (priv->config.rate_n <= 0 || !GST_CLOCK_TIME_IS_VALID(priv->base_pts))
    return GST_CLOCK_TIME_NONE;
  return priv->base_pts +
         gst_util_uint64_scale(j, GST_SECOND * (guint64)priv->config.rate_d,
                               (guint64)priv->config.rate_n * stream_stride(priv));
}

/* Variable rate: notes the time of the next input frame (a frame without a
 * PTS continues from the one before it). */
static void record_frame_time(GstConvTransposeBasePrivate *priv, GstBuffer *inbuf) {
  FrameTime t = {GST_BUFFER_PTS(inbuf), GST_BUFFER_DURATION(inbuf)};
  if (!GST_CLOCK_TIME_IS_VALID(t.pts) && priv->in_steps > 0) {
    const FrameTime *prev = frame_time(priv, priv->in_steps - 1);
    GstClockTime interval = frame_interval(priv, priv->in_steps - 1);
    if (prev && GST_CLOCK_TIME_IS_VALID(prev->pts) && GST_CLOCK_TIME_IS_VALID(interval))
      t.pts = prev->pts + interval;
  }
  if (priv->frame_times->len == 0)
    priv->frame_times_first = priv->in_steps;
  g_array_append_val(priv->frame_times, t);
}

/* Forgets the frames no later output needs (the one before the frame of the
 * next output stays: its interval may be needed). */
static void trim_frame_times(GstConvTransposeBasePrivate *priv) {
  const guint64 s = stream_stride(priv);
  guint64 keep_from = priv->out_steps / s;
  keep_from = keep_from > 0 ? keep_from - 1 : 0;
  const guint64 last = priv->frame_times_first + priv->frame_times->len;
  keep_from = MIN(keep_from, last > 0 ? last - 1 : 0);
  if (keep_from > priv->frame_times_first) {
    g_array_remove_range(priv->frame_times, 0,
                         (guint)(keep_from - priv->frame_times_first));
    priv->frame_times_first = keep_from;
  }
}

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

/* Stamps an output buffer of the next n_steps from the counters. */
static void stamp_output(GstConvTransposeBase *self, GstBuffer *outbuf, gint64 n_steps) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GstClockTime start = output_time(priv, priv->out_steps);
  GstClockTime end = output_time(priv, priv->out_steps + (guint64)n_steps);
  if (GST_CLOCK_TIME_IS_VALID(start)) {
    GST_BUFFER_PTS(outbuf) = start;
    GST_BUFFER_DURATION(outbuf) =
        GST_CLOCK_TIME_IS_VALID(end) && end >= start ? end - start : GST_CLOCK_TIME_NONE;
  }
  if (priv->mark_discont) {
    GST_BUFFER_FLAG_SET(outbuf, GST_BUFFER_FLAG_DISCONT);
    priv->mark_discont = FALSE;
  }
  GST_BUFFER_OFFSET(outbuf) = priv->out_offset_base + priv->out_steps;
  GST_BUFFER_OFFSET_END(outbuf) =
      priv->out_offset_base + priv->out_steps + (guint64)n_steps;
  priv->out_steps += (guint64)n_steps;
  if (variable_rate(priv))
    trim_frame_times(priv);
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
  stamp_output(self, outbuf, n_steps);
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
  stamp_output(self, outbuf, total);
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
static GstFlowReturn drain(GstConvTransposeBase *self) {
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

/* The offer is withdrawn (superseded or given up). Object lock held. */
static void retire_offer_locked(GstConvTransposeBasePrivate *priv) {
  if (!priv->offer)
    return;
  ct_model_unref(priv->previous_offer);
  priv->previous_offer = priv->offer;
  priv->offer = NULL;
}

/* Gives up on `model` (the element keeps the one running) and says why. */
static void refuse_model(GstConvTransposeBase *self, CtModel *model, const gchar *why) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  gchar *kept = g_strdup(priv->active ? priv->active->path : "none");
  if (priv->wanted == model) {
    ct_model_unref(priv->wanted);
    priv->wanted = ct_model_ref(priv->active);
  }
  if (priv->offer == model)
    retire_offer_locked(priv);
  GST_OBJECT_UNLOCK(self);
  GST_ELEMENT_WARNING(self, CORE, NEGOTIATION,
                      ("%s: %s (keeping the current model %s)", model->path, why, kept),
                      (NULL));
  g_free(kept);
}

/* Caps as text for a message, shortened: a template can be pages long. */
static gchar *caps_summary(GstCaps *caps) {
  gchar *text = gst_caps_to_string(caps);
  if (strlen(text) > 300)
    strcpy(text + 297, "...");
  return text;
}

/* Can `model` take over from the running one under input caps `incaps`?
 * NULL if so, else why not. Asks downstream whether it takes the output. */
static gchar *check_downstream(GstConvTransposeBase *self, CtModel *model,
                               GstCaps *incaps) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstCaps *ours =
      klass->transform_caps_for_layer(self, model->layer, GST_PAD_SINK, incaps, NULL);
  GstCaps *theirs = gst_pad_peer_query_caps(GST_BASE_TRANSFORM_SRC_PAD(self), NULL);
  gchar *why = NULL;
  if (!gst_caps_can_intersect(ours, theirs)) {
    gchar *out = caps_summary(ours), *down = caps_summary(theirs);
    why = g_strdup_printf("downstream takes none of the output it makes (%s); "
                          "downstream takes %s",
                          out, down);
    g_free(out);
    g_free(down);
  }
  gst_caps_unref(ours);
  gst_caps_unref(theirs);
  return why;
}

/* Can upstream give input `model` takes (and whose output downstream
 * takes)? NULL if so, else why not. */
static gchar *check_upstream(GstConvTransposeBase *self, CtModel *model) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  /* Within our template: a sink that takes ANY maps to nothing. */
  GstCaps *ours = gst_pad_get_pad_template_caps(GST_BASE_TRANSFORM_SRC_PAD(self));
  GstCaps *down = gst_pad_peer_query_caps(GST_BASE_TRANSFORM_SRC_PAD(self), ours);
  gst_caps_unref(ours);
  GstCaps *takes =
      klass->transform_caps_for_layer(self, model->layer, GST_PAD_SRC, down, NULL);
  GstCaps *offered = gst_pad_peer_query_caps(GST_BASE_TRANSFORM_SINK_PAD(self), takes);
  gchar *why = NULL;
  if (gst_caps_is_empty(offered)) {
    GstCaps *all = gst_pad_peer_query_caps(GST_BASE_TRANSFORM_SINK_PAD(self), NULL);
    gchar *want = caps_summary(takes), *up = caps_summary(all);
    why = g_strdup_printf("upstream cannot give the input it needs (%s); upstream "
                          "offers %s",
                          want, up);
    g_free(want);
    g_free(up);
    gst_caps_unref(all);
  }
  gst_caps_unref(down);
  gst_caps_unref(takes);
  gst_caps_unref(offered);
  return why;
}

/* At a buffer boundary: moves towards the newest model. If it takes the
 * current input, the old model's signal is drained and the new one runs
 * from the next buffer; if it needs other input and upstream can give it,
 * upstream is asked to renegotiate while the old model keeps running; if
 * neither upstream nor downstream can follow, the old model stays and a
 * warning says why. */
static GstFlowReturn move_to_wanted_model(GstConvTransposeBase *self) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  CtModel *wanted = ct_model_ref(priv->wanted);
  gboolean settled = priv->wanted == priv->active || priv->wanted == priv->offer;
  if (priv->wanted == priv->active)
    retire_offer_locked(priv); /* set back: nothing to ask for */
  GST_OBJECT_UNLOCK(self);
  if (!wanted || settled) {
    ct_model_unref(wanted);
    return GST_FLOW_OK;
  }
  GstFlowReturn ret = GST_FLOW_OK;
  GstCaps *incaps = gst_pad_get_current_caps(GST_BASE_TRANSFORM_SINK_PAD(self));
  gchar *mismatch = incaps ? klass->check_input_caps(self, wanted->layer, incaps) : NULL;
  if (!incaps) {
    /* Nothing negotiated yet: the first caps will be the newest model's. */
  } else if (!mismatch) {
    gchar *why = check_downstream(self, wanted, incaps);
    if (why) {
      refuse_model(self, wanted, why);
      g_free(why);
    } else {
      ret = drain(self);
      GST_OBJECT_LOCK(self);
      ct_model_unref(priv->active);
      priv->active = ct_model_ref(wanted);
      retire_offer_locked(priv);
      GST_OBJECT_UNLOCK(self);
      GST_INFO_OBJECT(self, "swapped in model %s", wanted->path);
      drop_stream(self);
      /* Output caps may change with the layer (channels, rate). */
      gst_base_transform_reconfigure_src(GST_BASE_TRANSFORM(self));
    }
  } else {
    GST_DEBUG_OBJECT(self, "%s needs new input caps: %s", wanted->path, mismatch);
    gchar *why = check_upstream(self, wanted);
    if (why) {
      refuse_model(self, wanted, why);
      g_free(why);
    } else {
      GST_OBJECT_LOCK(self);
      retire_offer_locked(priv);
      priv->offer = ct_model_ref(wanted);
      GST_OBJECT_UNLOCK(self);
      gst_pad_push_event(GST_BASE_TRANSFORM_SINK_PAD(self), gst_event_new_reconfigure());
    }
  }
  g_free(mismatch);
  if (incaps)
    gst_caps_unref(incaps);
  ct_model_unref(wanted);
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
    model = model_for_input(self, caps);
  if (!model)
    model = negotiation_model(self);
  GstCaps *result = klass->transform_caps_for_layer(self, model ? model->layer : NULL,
                                                    direction, caps, filter);
  ct_model_unref(model);
  GST_DEBUG_OBJECT(self, "%s %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
                   direction == GST_PAD_SINK ? "sink" : "src", caps, result);
  return result;
}

/* Fixed input caps that no model of the element takes: the error names the
 * model being negotiated for and what it needs. */
static void post_input_mismatch(GstConvTransposeBase *self, GstCaps *caps) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  CtModel *model = negotiation_model(self);
  gchar *mismatch = model ? klass->check_input_caps(self, model->layer, caps) : NULL;
  if (mismatch)
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("%s: %s", model->path, mismatch),
                      ("caps %" GST_PTR_FORMAT, caps));
  g_free(mismatch);
  ct_model_unref(model);
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
  CtModel *model = model_for_input(self, caps);
  if (model) {
    ct_model_unref(model);
    return TRUE;
  }
  post_input_mismatch(self, caps);
  return FALSE;
}

static gboolean gst_conv_transpose_base_set_caps(GstBaseTransform *trans, GstCaps *incaps,
                                                 GstCaps *outcaps) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(trans);
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  /* The caps choose the model: the one upstream was asked for, the newest,
   * or the running one, in that order. */
  CtModel *model = model_for_input(self, incaps);
  if (!model) {
    post_input_mismatch(self, incaps);
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
  drop_stream(self);
  priv->config = config;
  priv->configured = TRUE;
  return ensure_stream(self);
}

static GstFlowReturn gst_conv_transpose_base_submit_input_buffer(GstBaseTransform *trans,
                                                                 gboolean is_discont,
                                                                 GstBuffer *input) {
  GstFlowReturn ret = move_to_wanted_model(GST_CONV_TRANSPOSE_BASE(trans));
  if (ret != GST_FLOW_OK) {
    gst_buffer_unref(input);
    return ret;
  }
  return GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class)
      ->submit_input_buffer(trans, is_discont, input);
}

/* Does the buffer continue the signal in progress? At a variable rate only
 * a frame that is not later than the one before it breaks the signal. */
static gboolean continues_signal(GstConvTransposeBasePrivate *priv, GstBuffer *inbuf) {
  if (GST_BUFFER_IS_DISCONT(inbuf))
    return FALSE;
  GstClockTime pts = GST_BUFFER_PTS(inbuf);
  if (!GST_CLOCK_TIME_IS_VALID(pts))
    return TRUE;
  if (variable_rate(priv)) {
    const FrameTime *prev =
        priv->in_steps > 0 ? frame_time(priv, priv->in_steps - 1) : NULL;
    return !prev || !GST_CLOCK_TIME_IS_VALID(prev->pts) || pts > prev->pts;
  }
  if (!GST_CLOCK_TIME_IS_VALID(priv->base_pts) || priv->config.rate_n <= 0)
    return TRUE;
  GstClockTime expected = priv->base_pts + input_offset(priv, priv->in_steps);
  GstClockTimeDiff gap = GST_CLOCK_DIFF(expected, pts);
  return ABS(gap) <= GAP_TOLERANCE;
}

static void start_signal(GstConvTransposeBase *self, GstClockTime pts) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  priv->started = TRUE;
  priv->base_pts = pts;
  priv->in_steps = priv->out_steps = 0;
  priv->out_offset_base =
      GST_CLOCK_TIME_IS_VALID(pts) && priv->config.rate_n > 0
          ? gst_util_uint64_scale_round(
                pts, (guint64)priv->config.rate_n * stream_stride(priv),
                GST_SECOND * (guint64)priv->config.rate_d)
          : 0;
}

/* A signal whose first buffers had no PTS is timed from the first one that
 * has: the counters say how far into the signal it is. */
static void adopt_first_pts(GstConvTransposeBasePrivate *priv, GstClockTime pts) {
  if (GST_CLOCK_TIME_IS_VALID(priv->base_pts) || !GST_CLOCK_TIME_IS_VALID(pts) ||
      priv->config.rate_n <= 0)
    return;
  GstClockTime elapsed = input_offset(priv, priv->in_steps);
  priv->base_pts = pts >= elapsed ? pts - elapsed : 0;
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
    start_signal(self, GST_BUFFER_PTS(inbuf));
  } else if (priv->started && !continues_signal(priv, inbuf)) {
    GST_DEBUG_OBJECT(self, "discontinuity at %" GST_TIME_FORMAT ": drain and restart",
                     GST_TIME_ARGS(GST_BUFFER_PTS(inbuf)));
    ret = drain(self);
    if (ret != GST_FLOW_OK)
      goto done;
  }
  if (!priv->started)
    start_signal(self, GST_BUFFER_PTS(inbuf));
  if (variable_rate(priv)) {
    for (gint64 i = 0; i < n_steps; i++)
      record_frame_time(priv, inbuf);
  } else {
    adopt_first_pts(priv, GST_BUFFER_PTS(inbuf));
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
    CtModel *model = negotiation_model(self);
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
    drain(self);
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
    drain(self);
    break;
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps(event, &caps);
    CtModel *model = model_for_input(self, caps);
    if (!model) {
      post_input_mismatch(self, caps);
      gst_event_unref(event);
      return FALSE;
    }
    ct_model_unref(model);
    GstCaps *current = gst_pad_get_current_caps(GST_BASE_TRANSFORM_SINK_PAD(trans));
    if (current && !gst_caps_is_equal(current, caps))
      drain(self);
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

/* ---- queries and seeks in output steps ---------------------------------------------
 *
 * On the source pad the DEFAULT format counts output steps (samples at rate
 * x stride, frames at frame rate x stride): upstream counts input steps, so
 * positions scale by the stride and a duration maps through the output
 * length formula. */

/* The running layer's streamed axis, when DEFAULT differs on the two pads. */
static gboolean streamed_axis(GstConvTransposeBase *self, ct_axis *axis) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  gboolean ok = priv->active && priv->configured && !priv->config.buffer_is_signal;
  if (ok)
    *axis = ct_params_axis(ct_layer_params(priv->active->layer), 0);
  GST_OBJECT_UNLOCK(self);
  return ok && axis->s > 1;
}

/* Output steps <-> time at the output rate; FALSE at a variable rate. */
static gboolean convert_output(GstConvTransposeBasePrivate *priv, const ct_axis *axis,
                               GstFormat from, gint64 value, GstFormat to,
                               gint64 *result) {
  const guint64 rate_n = (guint64)priv->config.rate_n * (guint64)axis->s;
  const guint64 rate_d = (guint64)priv->config.rate_d;
  if (from == to || value == -1) {
    *result = value;
    return TRUE;
  }
  if (priv->config.rate_n <= 0 || value < 0)
    return FALSE;
  if (from == GST_FORMAT_DEFAULT && to == GST_FORMAT_TIME)
    *result = (gint64)gst_util_uint64_scale((guint64)value, GST_SECOND * rate_d, rate_n);
  else if (from == GST_FORMAT_TIME && to == GST_FORMAT_DEFAULT)
    *result = (gint64)gst_util_uint64_scale((guint64)value, rate_n, GST_SECOND * rate_d);
  else
    return FALSE;
  return TRUE;
}

/* POSITION or DURATION in output steps: upstream's in input steps scaled,
 * else upstream's time at the output rate. */
static gboolean query_output_steps(GstConvTransposeBase *self, const ct_axis *axis,
                                   gboolean duration, gint64 *steps) {
  GstPad *sink = GST_BASE_TRANSFORM_SINK_PAD(self);
  gint64 in_steps, time;
  if (duration ? gst_pad_peer_query_duration(sink, GST_FORMAT_DEFAULT, &in_steps)
               : gst_pad_peer_query_position(sink, GST_FORMAT_DEFAULT, &in_steps)) {
    if (in_steps < 0 || !duration) {
      *steps = in_steps < 0 ? in_steps : in_steps * axis->s;
      return in_steps < 0 || in_steps <= G_MAXINT64 / axis->s;
    }
    int64_t out_len = 0;
    if (in_steps > 0 && ct_axis_output_length(*axis, in_steps, &out_len) != CT_OK)
      return FALSE;
    *steps = MAX(out_len, 0);
    return TRUE;
  }
  if (duration ? gst_pad_peer_query_duration(sink, GST_FORMAT_TIME, &time)
               : gst_pad_peer_query_position(sink, GST_FORMAT_TIME, &time))
    return convert_output(PRIV(self), axis, GST_FORMAT_TIME, time, GST_FORMAT_DEFAULT,
                          steps);
  return FALSE;
}

static gboolean answer_src_query_in_steps(GstConvTransposeBase *self, GstQuery *query) {
  ct_axis axis;
  if (!streamed_axis(self, &axis))
    return FALSE;
  GstFormat format;
  gint64 value;
  switch (GST_QUERY_TYPE(query)) {
  case GST_QUERY_POSITION:
  case GST_QUERY_DURATION: {
    const gboolean duration = GST_QUERY_TYPE(query) == GST_QUERY_DURATION;
    if (duration)
      gst_query_parse_duration(query, &format, NULL);
    else
      gst_query_parse_position(query, &format, NULL);
    if (format != GST_FORMAT_DEFAULT ||
        !query_output_steps(self, &axis, duration, &value))
      return FALSE;
    if (duration)
      gst_query_set_duration(query, format, value);
    else
      gst_query_set_position(query, format, value);
    return TRUE;
  }
  case GST_QUERY_CONVERT: {
    GstFormat dest;
    gint64 result;
    gst_query_parse_convert(query, &format, &value, &dest, NULL);
    if ((format != GST_FORMAT_DEFAULT && dest != GST_FORMAT_DEFAULT) ||
        !convert_output(PRIV(self), &axis, format, value, dest, &result))
      return FALSE;
    gst_query_set_convert(query, format, value, dest, result);
    return TRUE;
  }
  default:
    return FALSE;
  }
}

/* A seek in output steps becomes one in input steps (the output aligned
 * with input position j / s), or in time if upstream cannot seek in steps. */
static gboolean forward_seek_in_steps(GstConvTransposeBase *self, GstEvent *event,
                                      gboolean *handled) {
  gdouble rate;
  GstFormat format;
  GstSeekFlags flags;
  GstSeekType start_type, stop_type;
  gint64 start, stop;
  ct_axis axis;
  gst_event_parse_seek(event, &rate, &format, &flags, &start_type, &start, &stop_type,
                       &stop);
  *handled = format == GST_FORMAT_DEFAULT && streamed_axis(self, &axis);
  if (!*handled)
    return FALSE;
  GstPad *sink = GST_BASE_TRANSFORM_SINK_PAD(self);
  const guint32 seqnum = gst_event_get_seqnum(event);
  const gint64 in_start = start >= 0 ? start / axis.s : start;
  const gint64 in_stop = stop >= 0 ? (stop + axis.s - 1) / axis.s : stop;
  GstEvent *in_steps = gst_event_new_seek(rate, GST_FORMAT_DEFAULT, flags, start_type,
                                          in_start, stop_type, in_stop);
  gst_event_set_seqnum(in_steps, seqnum);
  gboolean ok = gst_pad_push_event(sink, in_steps);
  gint64 t_start, t_stop;
  if (!ok &&
      convert_output(PRIV(self), &axis, GST_FORMAT_DEFAULT, start, GST_FORMAT_TIME,
                     &t_start) &&
      convert_output(PRIV(self), &axis, GST_FORMAT_DEFAULT, stop, GST_FORMAT_TIME,
                     &t_stop)) {
    GstEvent *in_time = gst_event_new_seek(rate, GST_FORMAT_TIME, flags, start_type,
                                           t_start, stop_type, t_stop);
    gst_event_set_seqnum(in_time, seqnum);
    ok = gst_pad_push_event(sink, in_time);
  }
  return ok;
}

static gboolean gst_conv_transpose_base_src_event(GstBaseTransform *trans,
                                                  GstEvent *event) {
  gboolean handled = FALSE;
  gboolean ok = GST_EVENT_TYPE(event) == GST_EVENT_SEEK &&
                forward_seek_in_steps(GST_CONV_TRANSPOSE_BASE(trans), event, &handled);
  if (handled) {
    gst_event_unref(event);
    return ok;
  }
  return GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class)
      ->src_event(trans, event);
}

static gboolean gst_conv_transpose_base_query(GstBaseTransform *trans,
                                              GstPadDirection direction,
                                              GstQuery *query) {
  GstConvTransposeBase *self = GST_CONV_TRANSPOSE_BASE(trans);
  GstConvTransposeBasePrivate *priv = PRIV(self);
  if (direction == GST_PAD_SRC && GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    if (!gst_pad_peer_query(GST_BASE_TRANSFORM_SINK_PAD(trans), query))
      return FALSE;
    gboolean live;
    GstClockTime min, max, ours = 0;
    gst_query_parse_latency(query, &live, &min, &max);
    GST_OBJECT_LOCK(self);
    CtModel *model = ct_model_ref(priv->active);
    GST_OBJECT_UNLOCK(self);
    if (model && priv->configured && !priv->config.buffer_is_signal &&
        priv->config.rate_n > 0) {
      const ct_params *p = ct_layer_params(model->layer);
      ours = gst_util_uint64_scale((guint64)ct_latency_output_steps(p),
                                   GST_SECOND * (guint64)priv->config.rate_d,
                                   (guint64)priv->config.rate_n * (guint64)p->stride[0]);
    }
    ct_model_unref(model);
    GST_DEBUG_OBJECT(self,
                     "latency: upstream %" GST_TIME_FORMAT " + ours %" GST_TIME_FORMAT,
                     GST_TIME_ARGS(min), GST_TIME_ARGS(ours));
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID(max))
      max += ours;
    gst_query_set_latency(query, live, min, max);
    return TRUE;
  }
  if (direction == GST_PAD_SRC && answer_src_query_in_steps(self, query))
    return TRUE;
  return GST_BASE_TRANSFORM_CLASS(gst_conv_transpose_base_parent_class)
      ->query(trans, direction, query);
}

static gboolean gst_conv_transpose_base_stop(GstBaseTransform *trans) {
  GstConvTransposeBasePrivate *priv = PRIV(trans);
  drop_buffer_pool(GST_CONV_TRANSPOSE_BASE(trans));
  g_queue_clear_full(&priv->ready, (GDestroyNotify)gst_buffer_unref);
  drop_stream(GST_CONV_TRANSPOSE_BASE(trans));
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
    LoadRequest *req = load_request_new(priv);
    GST_OBJECT_UNLOCK(self);
    GError *error = NULL;
    CtModel *model = load_model(self, req, &error);
    load_request_free(req);
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
    request_reload_locked(self);
    break;
  case PROP_LAYER:
    g_free(priv->layer_name);
    priv->layer_name = g_value_dup_string(value);
    request_reload_locked(self);
    break;
  case PROP_STRIDE:
  case PROP_PADDING:
  case PROP_OUTPUT_PADDING:
  case PROP_DILATION: {
    gchar **text = &priv->axis_text[prop_id - PROP_STRIDE];
    g_free(*text);
    *text = g_value_dup_string(value);
    request_reload_locked(self);
    break;
  }
  case PROP_GROUPS:
    priv->groups = g_value_get_int(value);
    request_reload_locked(self);
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
  drop_stream(GST_CONV_TRANSPOSE_BASE(object));
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
  priv->model_loader = g_thread_pool_new_full(
      load_in_background, self, (GDestroyNotify)load_request_free, 1, FALSE, NULL);
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
  trans_class->query = gst_conv_transpose_base_query;
  trans_class->src_event = gst_conv_transpose_base_src_event;
  trans_class->stop = gst_conv_transpose_base_stop;
  trans_class->passthrough_on_same_caps = FALSE;

  gst_type_mark_as_plugin_api(GST_TYPE_CONV_TRANSPOSE_BASE, 0);
}
