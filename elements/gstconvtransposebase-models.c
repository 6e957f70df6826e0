/* Models of GstConvTransposeBase: loading them (synchronously on the way to
 * READY, on a thread of their own when a property changes later) and
 * moving to the newest one at a buffer boundary: the live swap, with
 * upstream and downstream asked first whether they can follow. */
#include "gstconvtransposebase-private.h"

#include <string.h>

#define GST_CAT_DEFAULT conv_transpose_base_debug

static const char *const axis_property_names[4] = {"stride", "padding", "output-padding",
                                                   "dilation"};

void ctb_load_request_free(LoadRequest *req) {
  g_free(req->path);
  g_free(req->layer_name);
  for (int i = 0; i < 4; i++)
    g_free(req->axis_text[i]);
  g_free(req);
}

/* Snapshot of the properties, taken under the object lock. */
LoadRequest *ctb_load_request_new(GstConvTransposeBasePrivate *priv) {
  LoadRequest *req = g_new0(LoadRequest, 1);
  req->generation = priv->generation;
  req->path = g_strdup(priv->model_path);
  req->layer_name = g_strdup(priv->layer_name);
  for (int i = 0; i < 4; i++)
    req->axis_text[i] = g_strdup(priv->axis_text[i]);
  req->groups = priv->groups;
  return req;
}

CtModel *ctb_load_model(GstConvTransposeBase *self, const LoadRequest *req,
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
void ctb_load_in_background(gpointer data, gpointer user_data) {
  LoadRequest *req = data;
  GstConvTransposeBase *self = user_data;
  GstConvTransposeBasePrivate *priv = PRIV(self);
  GST_OBJECT_LOCK(self);
  gboolean current = req->generation == priv->generation;
  CtModel *wanted = ct_model_ref(priv->wanted), *active = ct_model_ref(priv->active);
  GST_OBJECT_UNLOCK(self);
  GError *error = NULL;
  CtModel *model = current ? ctb_load_model(self, req, &error) : NULL;
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
  ctb_load_request_free(req);
}

/* Called with the object lock held after a property that shapes the layer
 * changed. Before READY the model is loaded by the state change instead. */
void ctb_request_reload_locked(GstConvTransposeBase *self) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  priv->generation++;
  if (priv->loaded)
    g_thread_pool_push(priv->model_loader, ctb_load_request_new(priv), NULL);
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

CtModel *ctb_negotiation_model(GstConvTransposeBase *self) {
  GST_OBJECT_LOCK(self);
  CtModel *model = ct_model_ref(negotiation_model_locked(self));
  GST_OBJECT_UNLOCK(self);
  return model;
}

/* The first of the offered, newest and running models that takes these
 * fixed input caps, or NULL: caps already on their way when the element
 * moved on (a model set again mid-negotiation) still find their model. */
CtModel *ctb_model_for_input(GstConvTransposeBase *self, GstCaps *caps) {
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

/* "PROBLEM (CAPS); OTHER SIDE OTHER_CAPS" */
static gchar *why_not(const gchar *problem, GstCaps *caps, const gchar *other_side,
                      GstCaps *other_caps) {
  gchar *ours = caps_summary(caps), *theirs = caps_summary(other_caps);
  gchar *why = g_strdup_printf("%s (%s); %s %s", problem, ours, other_side, theirs);
  g_free(ours);
  g_free(theirs);
  return why;
}

/* Can `model` take over from the running one under input caps `incaps`?
 * NULL if so, else why not. Asks downstream whether it takes the output. */
static gchar *check_downstream(GstConvTransposeBase *self, CtModel *model,
                               GstCaps *incaps) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  GstCaps *ours =
      klass->transform_caps_for_layer(self, model->layer, GST_PAD_SINK, incaps, NULL);
  GstCaps *theirs = gst_pad_peer_query_caps(GST_BASE_TRANSFORM_SRC_PAD(self), NULL);
  gchar *why = gst_caps_can_intersect(ours, theirs)
                   ? NULL
                   : why_not("downstream takes none of the output it makes", ours,
                             "downstream takes", theirs);
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
    why =
        why_not("upstream cannot give the input it needs", takes, "upstream offers", all);
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
GstFlowReturn ctb_move_to_wanted_model(GstConvTransposeBase *self) {
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
      ret = ctb_drain(self);
      GST_OBJECT_LOCK(self);
      ct_model_unref(priv->active);
      priv->active = ct_model_ref(wanted);
      retire_offer_locked(priv);
      GST_OBJECT_UNLOCK(self);
      GST_INFO_OBJECT(self, "swapped in model %s", wanted->path);
      ctb_drop_stream(self);
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

/* Fixed input caps that no model of the element takes: the error names the
 * model being negotiated for and what it needs. */
void ctb_post_input_mismatch(GstConvTransposeBase *self, GstCaps *caps) {
  GstConvTransposeBaseClass *klass = GST_CONV_TRANSPOSE_BASE_GET_CLASS(self);
  CtModel *model = ctb_negotiation_model(self);
  gchar *mismatch = model ? klass->check_input_caps(self, model->layer, caps) : NULL;
  if (mismatch)
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("%s: %s", model->path, mismatch),
                      ("caps %" GST_PTR_FORMAT, caps));
  g_free(mismatch);
  ct_model_unref(model);
}
