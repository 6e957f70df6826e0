/* Helpers the element tests share: temporary model files, harnesses with a
 * bus of their own, bus messages, audio buffers and one-shot references. */
#ifndef CT_TEST_ELEMENT_HELPERS_H
#define CT_TEST_ELEMENT_HELPERS_H

#include <glib/gstdio.h>
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <string.h>

#include "kernels/stream.h"
#include "model/model.h"

/* ---- temporary files: all under one directory, removed at exit ---- */

static gchar *helper_tmp_dir;
static GPtrArray *helper_tmp_files;

static inline gchar *tmp_path(const gchar *name) {
  if (!helper_tmp_dir) {
    helper_tmp_dir = g_dir_make_tmp("ct-element-XXXXXX", NULL);
    helper_tmp_files = g_ptr_array_new_with_free_func(g_free);
  }
  gchar *path = g_build_filename(helper_tmp_dir, name, NULL);
  g_ptr_array_add(helper_tmp_files, g_strdup(path));
  return path;
}

static inline void remove_tmp_files(void) {
  if (!helper_tmp_dir)
    return;
  for (guint i = 0; i < helper_tmp_files->len; i++)
    g_unlink(helper_tmp_files->pdata[i]);
  g_ptr_array_unref(helper_tmp_files);
  g_rmdir(helper_tmp_dir);
  g_clear_pointer(&helper_tmp_dir, g_free);
}

/* ---- elements and messages ---- */

/* A harness around a fresh element with `model` set before it starts, its
 * messages on `bus` (NULL: none kept). */
static inline GstHarness *harness_with_bus(const gchar *factory, const gchar *model,
                                           GstBus **bus) {
  GstElement *e = gst_element_factory_make(factory, NULL);
  fail_unless(e != NULL, "no element %s", factory);
  g_object_set(e, "model", model, NULL);
  /* Before the harness starts the element: loading posts its warnings. */
  if (bus) {
    *bus = gst_bus_new();
    gst_element_set_bus(e, *bus);
  }
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  return h;
}

static inline void harness_done(GstHarness *h, GstBus *bus) {
  if (bus) {
    gst_element_set_bus(h->element, NULL);
    gst_object_unref(bus);
  }
  gst_harness_teardown(h);
}

/* The text of the next message of `type` (ERROR or WARNING), or NULL. */
static inline gchar *pop_message_text(GstBus *bus, GstMessageType type) {
  GstMessage *msg = gst_bus_pop_filtered(bus, type);
  if (!msg)
    return NULL;
  GError *error = NULL;
  if (type == GST_MESSAGE_ERROR)
    gst_message_parse_error(msg, &error, NULL);
  else
    gst_message_parse_warning(msg, &error, NULL);
  gchar *text = g_strdup(error->message);
  g_error_free(error);
  gst_message_unref(msg);
  return text;
}

/* Waits up to `seconds` for a message of `type` (loads run on their own
 * thread). */
static inline gchar *wait_message_text(GstBus *bus, GstMessageType type, double seconds) {
  for (int i = 0; i < (int)(seconds * 100); i++) {
    gchar *text = pop_message_text(bus, type);
    if (text)
      return text;
    g_usleep(10000);
  }
  return NULL;
}

/* Runs a pipeline to EOS or an error (at most `seconds`); the error's text,
 * or NULL at EOS. */
static inline gchar *run_to_end(GstElement *pipeline, double seconds) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, (GstClockTime)(seconds * GST_SECOND),
                                               GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gchar *text = NULL;
  if (!msg) {
    text = g_strdup("timed out");
  } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *error = NULL;
    gst_message_parse_error(msg, &error, NULL);
    text = g_strdup(error->message);
    g_error_free(error);
  }
  if (msg)
    gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  return text;
}

/* ---- audio ---- */

static inline gchar *f32_audio_caps(int channels, int rate) {
  return g_strdup_printf(
      "audio/x-raw,format=F32LE,rate=%d,channels=%d,layout=interleaved", rate, channels);
}

/* Interleaved samples [start, start + n) of a planar [channels, len] signal,
 * stamped at `rate` from time `base`. */
static inline GstBuffer *interleaved_buffer(const float *planar, gint64 len, int channels,
                                            gint64 start, gint64 n, int rate,
                                            GstClockTime base) {
  GstBuffer *buf =
      gst_buffer_new_allocate(NULL, (gsize)(n * channels) * sizeof(float), NULL);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  float *dst = (float *)map.data;
  for (int c = 0; c < channels; c++)
    for (gint64 i = 0; i < n; i++)
      dst[i * channels + c] = planar[c * len + start + i];
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = base + gst_util_uint64_scale((guint64)start, GST_SECOND, rate);
  GST_BUFFER_DURATION(buf) =
      base + gst_util_uint64_scale((guint64)(start + n), GST_SECOND, rate) -
      GST_BUFFER_PTS(buf);
  return buf;
}

/* Appends an interleaved output buffer to a planar [channels, cap] array. */
static inline gint64 append_interleaved(GstBuffer *buf, float *planar, gint64 cap,
                                        int channels, gint64 have) {
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_READ);
  gint64 n = (gint64)(map.size / sizeof(float)) / channels;
  fail_unless(have + n <= cap, "more output than expected");
  for (int c = 0; c < channels; c++)
    for (gint64 i = 0; i < n; i++)
      planar[c * cap + have + i] = ((const float *)map.data)[i * channels + c];
  gst_buffer_unmap(buf, &map);
  return have + n;
}

static inline float *random_planar(GRand *rand, int channels, gint64 len) {
  float *x = g_new(float, channels *len);
  for (gint64 i = 0; i < channels * len; i++)
    x[i] = (float)g_rand_double_range(rand, -1, 1);
  return x;
}

static inline ct_layer *load_test_layer(const gchar *path) {
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, NULL, NULL, &error);
  fail_unless(layer != NULL, "loading %s: %s", path, error ? error->message : "");
  return layer;
}

/* One-shot output of a 1d model for a planar [Cin, n] signal. */
static inline float *forward_1d(const gchar *path, const float *planar, gint64 n,
                                gint64 *n_out) {
  ct_layer *layer = load_test_layer(path);
  const ct_params *p = ct_layer_params(layer);
  int64_t shape[CT_MAX_RANK] = {n}, out_shape[CT_MAX_RANK];
  fail_unless(ct_output_shape(p, shape, out_shape, NULL, 0) == CT_OK);
  float *out = g_new(float, p->out_channels *out_shape[0]);
  fail_unless(ct_forward(layer, shape, planar, out, NULL, 0) == CT_OK);
  *n_out = out_shape[0];
  ct_layer_free(layer);
  return out;
}

#endif
