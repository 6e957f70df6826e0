/* Timestamps of GstConvTransposeBase.
 *
 * At a known rate, every time comes from the step counters and the first
 * timestamp of the signal (durations are differences of two such times, so
 * rounding never drifts). At a variable frame rate (framerate 0/1 on a
 * streamed axis) output step j sits at input position j / s, between the
 * times of the input frames around it; past the last frame it continues at
 * that frame's duration (or the interval before it). */
#include "gstconvtransposebase-private.h"

#include <string.h>

#define GST_CAT_DEFAULT conv_transpose_base_debug

gboolean ctb_variable_rate(GstConvTransposeBasePrivate *priv) {
  return priv->config.rate_n <= 0 && !priv->config.buffer_is_signal;
}

guint64 ctb_stream_stride(GstConvTransposeBasePrivate *priv) {
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
  const guint64 s = ctb_stream_stride(priv);
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
  if (ctb_variable_rate(priv))
    return variable_rate_time(priv, j);
  if (priv->config.rate_n <= 0 || !GST_CLOCK_TIME_IS_VALID(priv->base_pts))
    return GST_CLOCK_TIME_NONE;
  return priv->base_pts +
         gst_util_uint64_scale(j, GST_SECOND * (guint64)priv->config.rate_d,
                               (guint64)priv->config.rate_n * ctb_stream_stride(priv));
}

/* Variable rate: notes the time of the next input frame (a frame without a
 * PTS continues from the one before it). */
void ctb_record_frame_time(GstConvTransposeBasePrivate *priv, GstBuffer *inbuf) {
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
  const guint64 s = ctb_stream_stride(priv);
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

/* Stamps an output buffer of the next n_steps from the counters. */
void ctb_stamp_output(GstConvTransposeBase *self, GstBuffer *outbuf, gint64 n_steps) {
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
  if (ctb_variable_rate(priv))
    trim_frame_times(priv);
}

/* Does the buffer continue the signal in progress? At a variable rate only
 * a frame that is not later than the one before it breaks the signal. */
gboolean ctb_continues_signal(GstConvTransposeBasePrivate *priv, GstBuffer *inbuf) {
  if (GST_BUFFER_IS_DISCONT(inbuf))
    return FALSE;
  GstClockTime pts = GST_BUFFER_PTS(inbuf);
  if (!GST_CLOCK_TIME_IS_VALID(pts))
    return TRUE;
  if (ctb_variable_rate(priv)) {
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

void ctb_start_signal(GstConvTransposeBase *self, GstClockTime pts) {
  GstConvTransposeBasePrivate *priv = PRIV(self);
  priv->started = TRUE;
  priv->base_pts = pts;
  priv->in_steps = priv->out_steps = 0;
  priv->out_offset_base =
      GST_CLOCK_TIME_IS_VALID(pts) && priv->config.rate_n > 0
          ? gst_util_uint64_scale_round(
                pts, (guint64)priv->config.rate_n * ctb_stream_stride(priv),
                GST_SECOND * (guint64)priv->config.rate_d)
          : 0;
}

/* A signal whose first buffers had no PTS is timed from the first one that
 * has: the counters say how far into the signal it is. */
void ctb_adopt_first_pts(GstConvTransposeBasePrivate *priv, GstClockTime pts) {
  if (GST_CLOCK_TIME_IS_VALID(priv->base_pts) || !GST_CLOCK_TIME_IS_VALID(pts) ||
      priv->config.rate_n <= 0)
    return;
  GstClockTime elapsed = input_offset(priv, priv->in_steps);
  priv->base_pts = pts >= elapsed ? pts - elapsed : 0;
}
