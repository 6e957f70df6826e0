/* Queries and seeks of GstConvTransposeBase: LATENCY (upstream's plus the
 * layer's), and on the source pad the DEFAULT format in output steps
 * (samples at rate x stride, frames at frame rate x stride): upstream
 * counts input steps, so positions scale by the stride and a duration maps
 * through the output length formula. */
#include "gstconvtransposebase-private.h"

#include <string.h>

#define GST_CAT_DEFAULT conv_transpose_base_debug

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

gboolean ctb_src_event(GstBaseTransform *trans, GstEvent *event) {
  gboolean handled = FALSE;
  gboolean ok = GST_EVENT_TYPE(event) == GST_EVENT_SEEK &&
                forward_seek_in_steps(GST_CONV_TRANSPOSE_BASE(trans), event, &handled);
  if (handled) {
    gst_event_unref(event);
    return ok;
  }
  return ctb_parent_class()->src_event(trans, event);
}

gboolean ctb_query(GstBaseTransform *trans, GstPadDirection direction, GstQuery *query) {
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
  return ctb_parent_class()->query(trans, direction, query);
}
