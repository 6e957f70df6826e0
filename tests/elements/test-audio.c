/* convtranspose1d under GstHarness: caps, errors, bitwise streaming,
 * timestamps, latency, EOS, flush, discontinuities and live model swaps. */
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <sndfile.h>

#include "tests/elements/leak-check.h"
#include "kernels/stream.h"
#include "model-writer.h"
#include "model/model.h"

static gchar *tmp_dir;
static gchar *model_a, *model_b, *model_c, *model_mono, *model_2d, *model_garbage;

/* Layer A: 2 -> 3 channels, k7 s3 p2 op1 d2 with bias; B: same shape, other
 * weights; C: 2 -> 1 channel, k4 s3; mono: 1 -> 1, k4 s2 p1. */
static void make_models(void) {
  GRand *rand = g_rand_new_with_seed(7);
  float w[2 * 3 * 7], bias[3];
  int64_t k7 = 7, k4 = 4;
  tmp_dir = g_dir_make_tmp("ct-audio-XXXXXX", NULL);
  model_a = g_build_filename(tmp_dir, "a.safetensors", NULL);
  model_b = g_build_filename(tmp_dir, "b.safetensors", NULL);
  model_c = g_build_filename(tmp_dir, "c.safetensors", NULL);
  model_mono = g_build_filename(tmp_dir, "mono.safetensors", NULL);
  model_2d = g_build_filename(tmp_dir, "2d.safetensors", NULL);
  model_garbage = g_build_filename(tmp_dir, "garbage.safetensors", NULL);
  const char *meta_a =
      "\"stride\":\"3\",\"padding\":\"2\",\"output_padding\":\"1\",\"dilation\":\"2\"";
  for (int m = 0; m < 2; m++) {
    for (guint i = 0; i < G_N_ELEMENTS(w); i++)
      w[i] = (float)g_rand_double_range(rand, -1, 1);
    for (guint i = 0; i < G_N_ELEMENTS(bias); i++)
      bias[i] = (float)g_rand_double_range(rand, -1, 1);
    write_test_model(m ? model_b : model_a, 1, 2, 3, &k7, w, 3, bias, meta_a);
  }
  write_test_model(model_c, 1, 2, 1, &k4, w, 1, NULL, "\"stride\":\"3\"");
  write_test_model(model_mono, 1, 1, 1, &k4, w, 1, bias,
                   "\"stride\":\"2\",\"padding\":\"1\"");
  int64_t k2d[2] = {2, 2};
  write_test_model(model_2d, 2, 2, 3, k2d, w, 3, NULL, NULL);
  g_file_set_contents(model_garbage, "this is not a model", -1, NULL);
  g_rand_free(rand);
}

static void remove_models(void) {
  const gchar *files[] = {model_a, model_b, model_c, model_mono, model_2d, model_garbage};
  for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
    g_unlink(files[i]);
    g_free((gchar *)files[i]);
  }
  g_rmdir(tmp_dir);
  g_free(tmp_dir);
}

static ct_layer *load_layer(const gchar *path) {
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, NULL, NULL, &error);
  fail_unless(layer != NULL, "loading %s: %s", path, error ? error->message : "");
  return layer;
}

/* One-shot reference for a planar [C, n] signal. */
static float *forward(const gchar *path, const float *planar, gint64 n, gint64 *n_out) {
  ct_layer *layer = load_layer(path);
  const ct_params *p = ct_layer_params(layer);
  int64_t shape[CT_MAX_RANK] = {n}, out_shape[CT_MAX_RANK];
  fail_unless(ct_output_shape(p, shape, out_shape, NULL, 0) == CT_OK);
  float *out = g_new(float, p->out_channels *out_shape[0]);
  fail_unless(ct_forward(layer, shape, planar, out, NULL, 0) == CT_OK);
  *n_out = out_shape[0];
  ct_layer_free(layer);
  return out;
}

static gchar *audio_caps(int channels, int rate, gboolean interleaved) {
  return g_strdup_printf("audio/x-raw,format=F32LE,rate=%d,channels=%d,layout=%s", rate,
                         channels, interleaved ? "interleaved" : "non-interleaved");
}

/* The harness starts its element at once, so the model is set before. */
static GstHarness *harness_for(const gchar *model) {
  GstElement *e = gst_element_factory_make("convtranspose1d", NULL);
  g_object_set(e, "model", model, NULL);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  return h;
}

static GstHarness *new_harness(const gchar *model, int channels, int rate,
                               gboolean interleaved) {
  GstHarness *h = harness_for(model);
  gchar *caps = audio_caps(channels, rate, interleaved);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  return h;
}

/* A buffer of samples [start, start + n) of the planar signal. */
static GstBuffer *make_buffer(const float *planar, gint64 len, int channels, gint64 start,
                              gint64 n, int rate, gboolean interleaved) {
  GstBuffer *buf =
      gst_buffer_new_allocate(NULL, (gsize)(n * channels) * sizeof(float), NULL);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  float *dst = (float *)map.data;
  for (int c = 0; c < channels; c++)
    for (gint64 i = 0; i < n; i++)
      dst[interleaved ? i * channels + c : c * n + i] = planar[c * len + start + i];
  gst_buffer_unmap(buf, &map);
  if (!interleaved) {
    GstAudioInfo info;
    gst_audio_info_set_format(&info, GST_AUDIO_FORMAT_F32LE, rate, channels, NULL);
    info.layout = GST_AUDIO_LAYOUT_NON_INTERLEAVED;
    gst_buffer_add_audio_meta(buf, &info, (gsize)n, NULL);
  }
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale(start, GST_SECOND, rate);
  GST_BUFFER_DURATION(buf) =
      gst_util_uint64_scale(start + n, GST_SECOND, rate) - GST_BUFFER_PTS(buf);
  return buf;
}

/* Appends every buffer the harness has produced to a planar [C, cap] array. */
static gint64 collect(GstHarness *h, float *planar, gint64 cap, int channels, gint64 have,
                      gboolean interleaved) {
  GstBuffer *buf;
  while ((buf = gst_harness_try_pull(h))) {
    GstMapInfo map;
    gst_buffer_map(buf, &map, GST_MAP_READ);
    gint64 n = (gint64)(map.size / sizeof(float)) / channels;
    const float *src = (const float *)map.data;
    fail_unless(have + n <= cap, "more output than expected");
    for (int c = 0; c < channels; c++)
      for (gint64 i = 0; i < n; i++)
        planar[c * cap + have + i] = src[interleaved ? i * channels + c : c * n + i];
    have += n;
    gst_buffer_unmap(buf, &map);
    gst_buffer_unref(buf);
  }
  return have;
}

static float *random_signal(GRand *rand, int channels, gint64 len) {
  float *x = g_new(float, channels *len);
  for (gint64 i = 0; i < channels * len; i++)
    x[i] = (float)g_rand_double_range(rand, -1, 1);
  return x;
}

GST_START_TEST(test_caps_downstream) {
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  gst_harness_push(h, gst_buffer_new_allocate(NULL, 2 * 4 * 100, NULL));
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(caps != NULL);
  GstStructure *s = gst_caps_get_structure(caps, 0);
  gint channels, rate;
  guint64 mask = 1;
  fail_unless(gst_structure_get_int(s, "channels", &channels) && channels == 3);
  fail_unless(gst_structure_get_int(s, "rate", &rate) && rate == 144000);
  fail_unless(gst_structure_get(s, "channel-mask", GST_TYPE_BITMASK, &mask, NULL) &&
                  mask == gst_audio_channel_get_fallback_mask(3),
              "Cout > 2 carries GStreamer's default positions for 3 channels");
  gst_caps_unref(caps);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_caps_upstream) {
  GstHarness *h = harness_for(model_a);
  gst_harness_set_sink_caps_str(h, "audio/x-raw,format=F32LE,rate=96000,channels=3,"
                                   "layout=interleaved");
  GstPad *sink = gst_element_get_static_pad(h->element, "sink");
  GstCaps *caps = gst_pad_query_caps(sink, NULL);
  GstStructure *s = gst_caps_get_structure(caps, 0);
  gint channels = 0, rate = 0;
  fail_unless(gst_caps_get_size(caps) >= 1);
  fail_unless(gst_structure_get_int(s, "channels", &channels) && channels == 2);
  fail_unless(gst_structure_get_int(s, "rate", &rate) && rate == 32000, "96000 / 3");
  gst_caps_unref(caps);
  /* A rate the stride cannot produce gives nothing upstream. */
  gst_harness_set_sink_caps_str(h, "audio/x-raw,format=F32LE,rate=100000,channels=3,"
                                   "layout=interleaved");
  caps = gst_pad_query_caps(sink, NULL);
  fail_unless(gst_caps_is_empty(caps), "100000 Hz is not a multiple of the stride 3");
  gst_caps_unref(caps);
  gst_object_unref(sink);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* Moves the element to READY and returns the error posted, or NULL. */
static gchar *ready_error(const gchar *model) {
  GstElement *e = gst_element_factory_make("convtranspose1d", NULL);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  if (model)
    g_object_set(e, "model", model, NULL);
  GstStateChangeReturn ret = gst_element_set_state(e, GST_STATE_READY);
  gchar *text = NULL;
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  if (msg) {
    GError *error;
    gst_message_parse_error(msg, &error, NULL);
    text = g_strdup(error->message);
    g_error_free(error);
    gst_message_unref(msg);
  }
  fail_unless((ret == GST_STATE_CHANGE_FAILURE) == (text != NULL),
              "state change fails exactly when an error is posted");
  gst_element_set_state(e, GST_STATE_NULL);
  gst_element_set_bus(e, NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
  return text;
}

GST_START_TEST(test_model_errors) {
  gchar *text = ready_error(NULL);
  fail_unless(text && strstr(text, "no model"), "no model: %s", text);
  g_free(text);
  text = ready_error("/nonexistent/dir/m.safetensors");
  fail_unless(text && strstr(text, "/nonexistent/dir/m.safetensors"), "missing: %s",
              text);
  g_free(text);
  text = ready_error(model_garbage);
  fail_unless(text && strstr(text, model_garbage), "garbage: %s", text);
  g_free(text);
  text = ready_error(model_2d);
  fail_unless(text && strstr(text, "needs a 1d layer"), "wrong rank: %s", text);
  g_free(text);
  text = ready_error(tmp_dir);
  fail_unless(text && strstr(text, tmp_dir), "directory: %s", text);
  g_free(text);
  text = ready_error(model_a);
  fail_unless(text == NULL, "a good model loads: %s", text);
  {
    GstElement *e = gst_element_factory_make("convtranspose1d", NULL);
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(e, bus);
    g_object_set(e, "model", model_a, "stride", "abc", NULL);
    fail_unless(gst_element_set_state(e, GST_STATE_READY) == GST_STATE_CHANGE_FAILURE);
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    GError *error;
    gst_message_parse_error(msg, &error, NULL);
    fail_unless(strstr(error->message, "stride") != NULL, "bad override: %s",
                error->message);
    g_error_free(error);
    gst_message_unref(msg);
    gst_element_set_state(e, GST_STATE_NULL);
    gst_element_set_bus(e, NULL);
    gst_object_unref(bus);
    gst_object_unref(e);
  }
}
GST_END_TEST;

GST_START_TEST(test_wrong_channels) {
  GstHarness *h = harness_for(model_a);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps_str(h, "audio/x-raw,format=F32LE,rate=48000,channels=3,"
                                  "layout=interleaved");
  GstFlowReturn ret =
      gst_harness_push(h, gst_buffer_new_allocate(NULL, 3 * 4 * 10, NULL));
  fail_unless(ret == GST_FLOW_NOT_NEGOTIATED, "flow %s", gst_flow_get_name(ret));
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != NULL);
  GError *error;
  gst_message_parse_error(msg, &error, NULL);
  fail_unless(strstr(error->message, "needs 2 input channels") &&
                  strstr(error->message, model_a),
              "message: %s", error->message);
  g_error_free(error);
  gst_message_unref(msg);
  gst_element_set_bus(h->element, NULL);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* Pushes the signal in random splits (0 and 1 included), then EOS, and
 * returns the whole planar output. */
static float *run_split(GRand *rand, const gchar *model, const float *x, gint64 len,
                        int cin, int cout, gboolean interleaved, gint64 cap,
                        gint64 *n_out) {
  GstHarness *h = new_harness(model, cin, 48000, interleaved);
  float *got = g_new0(float, cout *cap);
  gint64 have = 0, pos = 0;
  while (pos < len) {
    gint64 n = g_rand_int_range(rand, 0, 4) == 0 ? g_rand_int_range(rand, 0, 2)
                                                 : g_rand_int_range(rand, 2, 700);
    if (n > len - pos)
      n = len - pos;
    fail_unless(gst_harness_push(h, make_buffer(x, len, cin, pos, n, 48000,
                                                interleaved)) == GST_FLOW_OK);
    pos += n;
    have = collect(h, got, cap, cout, have, interleaved);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  *n_out = collect(h, got, cap, cout, have, interleaved);
  gst_harness_teardown(h);
  return got;
}

GST_START_TEST(test_bitwise_random_splits) {
  GRand *rand = g_rand_new_with_seed(11);
  const gint64 len = 6000;
  float *x = random_signal(rand, 2, len);
  gint64 n_ref;
  float *ref = forward(model_a, x, len, &n_ref);
  for (int layout = 0; layout < 2; layout++) {
    for (int round = 0; round < 3; round++) {
      gint64 n_got;
      float *got = run_split(rand, model_a, x, len, 2, 3, layout == 0, n_ref, &n_got);
      fail_unless(n_got == n_ref,
                  "%" G_GINT64_FORMAT " outputs, expected %" G_GINT64_FORMAT, n_got,
                  n_ref);
      fail_unless(memcmp(got, ref, sizeof(float) * 3 * n_ref) == 0,
                  "element output differs from one-shot (layout %d, round %d)", layout,
                  round);
      g_free(got);
    }
  }
  g_free(ref);
  g_free(x);
  g_rand_free(rand);
}
GST_END_TEST;

/* One hour of mono audio in odd-sized buffers: every output timestamp comes
 * from the sample counter, so nothing drifts. */
GST_START_TEST(test_timestamps_one_hour) {
  const int rate = 11025;
  /* CT_TEST_QUICK=1 (tools/valgrind.sh): a minute instead of an hour. */
  const gboolean quick = g_strcmp0(g_getenv("CT_TEST_QUICK"), "1") == 0;
  const gint64 len = (gint64)rate * (quick ? 60 : 3600);
  GstHarness *h = new_harness(model_mono, 1, rate, TRUE);
  GRand *rand = g_rand_new_with_seed(5);
  const gint64 max_buf = 4001;
  float *zeros = g_new0(float, max_buf);
  const GstClockTime base = 3 * GST_SECOND + 17; /* not on a sample boundary */
  guint64 in_pos = 0, out_pos = 0, buffers = 0;
  while ((gint64)in_pos < len) {
    gint64 n = g_rand_int_range(rand, 1, (gint32)max_buf / 2) * 2 + 1;
    if (n > len - (gint64)in_pos)
      n = len - (gint64)in_pos;
    GstBuffer *buf = gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY, zeros,
                                                 (gsize)n * sizeof(float), 0,
                                                 (gsize)n * sizeof(float), NULL, NULL);
    GST_BUFFER_PTS(buf) = base + gst_util_uint64_scale(in_pos, GST_SECOND, rate);
    gst_harness_push(h, buf);
    in_pos += (guint64)n;
    if ((gint64)in_pos == len)
      gst_harness_push_event(h, gst_event_new_eos());
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      guint64 n_out = gst_buffer_get_size(out) / sizeof(float);
      GstClockTime pts = base + gst_util_uint64_scale(out_pos, GST_SECOND, 2 * rate);
      GstClockTime end =
          base + gst_util_uint64_scale(out_pos + n_out, GST_SECOND, 2 * rate);
      guint64 offset0 = gst_util_uint64_scale_round(base, 2 * rate, GST_SECOND);
      fail_unless(GST_BUFFER_PTS(out) == pts && GST_BUFFER_DURATION(out) == end - pts,
                  "buffer at output sample %" G_GUINT64_FORMAT, out_pos);
      fail_unless(GST_BUFFER_OFFSET(out) == offset0 + out_pos &&
                  GST_BUFFER_OFFSET_END(out) == offset0 + out_pos + n_out);
      out_pos += n_out;
      buffers++;
      gst_buffer_unref(out);
    }
  }
  fail_unless(out_pos == 2 * (guint64)len, "an hour in, two hours of samples out at 2x");
  fail_unless(buffers > (quick ? 100u : 10000u));
  g_free(zeros);
  g_rand_free(rand);
  gst_harness_teardown(h);
}
GST_END_TEST;

GST_START_TEST(test_latency_query) {
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
  gst_harness_push(h, gst_buffer_new_allocate(NULL, 2 * 4 * 10, NULL));
  ct_layer *layer = load_layer(model_a);
  gint64 d = ct_latency_output_steps(ct_layer_params(layer));
  ct_layer_free(layer);
  fail_unless(d > 0);
  GstClockTime expected = 10 * GST_MSECOND + gst_util_uint64_scale(d, GST_SECOND, 144000);
  GstClockTime got = gst_harness_query_latency(h);
  fail_unless(got == expected, "latency %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT,
              GST_TIME_ARGS(got), GST_TIME_ARGS(expected));
  gst_harness_teardown(h);
}
GST_END_TEST;

/* Each push emits exactly what is final and certain; EOS adds the tail. */
GST_START_TEST(test_emission_and_eos_tail) {
  GRand *rand = g_rand_new_with_seed(3);
  const gint64 len = 500;
  float *x = random_signal(rand, 2, len);
  ct_layer *layer = load_layer(model_a);
  const ct_params *p = ct_layer_params(layer);
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  gint64 pos = 0, emitted = 0;
  while (pos < len) {
    gint64 n = g_rand_int_range(rand, 0, 40);
    if (n > len - pos)
      n = len - pos;
    gst_harness_push(h, make_buffer(x, len, 2, pos, n, 48000, TRUE));
    pos += n;
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      emitted += (gint64)(gst_buffer_get_size(out) / (3 * sizeof(float)));
      gst_buffer_unref(out);
    }
    fail_unless(emitted == ct_stream_emitted(p, pos), "after %" G_GINT64_FORMAT " inputs",
                pos);
  }
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  ct_output_shape(p, shape, out_shape, NULL, 0);
  fail_unless(emitted < out_shape[0], "a tail is left for EOS");
  gst_harness_push_event(h, gst_event_new_eos());
  GstBuffer *tail = gst_harness_try_pull(h);
  fail_unless(tail != NULL);
  fail_unless(GST_BUFFER_OFFSET_END(tail) == (guint64)out_shape[0]);
  emitted += (gint64)(gst_buffer_get_size(tail) / (3 * sizeof(float)));
  gst_buffer_unref(tail);
  fail_unless(emitted == out_shape[0]);
  GstEvent *ev;
  gboolean saw_eos = FALSE;
  while ((ev = gst_harness_try_pull_event(h))) {
    saw_eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  fail_unless(saw_eos, "EOS follows the tail");
  ct_layer_free(layer);
  g_free(x);
  g_rand_free(rand);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* After FLUSH_STOP the element forgets the old signal without pushing it. */
GST_START_TEST(test_flush_resets) {
  GRand *rand = g_rand_new_with_seed(4);
  const gint64 len = 300;
  float *x = random_signal(rand, 2, len), *y = random_signal(rand, 2, len);
  gint64 n_ref;
  float *ref = forward(model_a, y, len, &n_ref);
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  gst_harness_push(h, make_buffer(x, len, 2, 0, 200, 48000, TRUE));
  GstBuffer *b;
  while ((b = gst_harness_try_pull(h)))
    gst_buffer_unref(b);
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  fail_unless(gst_harness_try_pull(h) == NULL, "nothing of the old signal is pushed");
  float *got = g_new0(float, 3 * n_ref);
  gint64 have = 0;
  for (gint64 pos = 0; pos < len; pos += 100) {
    gst_harness_push(h, make_buffer(y, len, 2, pos, 100, 48000, TRUE));
    have = collect(h, got, n_ref, 3, have, TRUE);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  have = collect(h, got, n_ref, 3, have, TRUE);
  fail_unless(have == n_ref && memcmp(got, ref, sizeof(float) * 3 * n_ref) == 0,
              "after a flush the output is that of the new signal alone");
  g_free(got);
  g_free(ref);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* A DISCONT buffer or a timestamp gap drains the old signal (its full
 * one-shot output) and starts a new one, flagged DISCONT. */
static void check_restart(gboolean use_flag) {
  GRand *rand = g_rand_new_with_seed(6);
  const gint64 len = 400;
  float *x = random_signal(rand, 2, len), *y = random_signal(rand, 2, len);
  gint64 n_x, n_y;
  float *ref_x = forward(model_a, x, len, &n_x), *ref_y = forward(model_a, y, len, &n_y);
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  float *got = g_new0(float, 3 * n_x);
  gint64 have = 0;
  for (gint64 pos = 0; pos < len; pos += 80) {
    gst_harness_push(h, make_buffer(x, len, 2, pos, 80, 48000, TRUE));
    have = collect(h, got, n_x, 3, have, TRUE);
  }
  fail_unless(have < n_x);
  /* The second signal starts 5 s later. */
  const GstClockTime later = 5 * GST_SECOND;
  float *got_y = g_new0(float, 3 * n_y);
  gint64 have_y = 0;
  gboolean first = TRUE;
  for (gint64 pos = 0; pos < len; pos += 80) {
    GstBuffer *buf = make_buffer(y, len, 2, pos, 80, 48000, TRUE);
    GST_BUFFER_PTS(buf) += later;
    if (pos == 0 && use_flag)
      GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
    gst_harness_push(h, buf);
    GstBuffer *out;
    if (pos == 0) { /* first out: the drained tail of x */
      out = gst_harness_pull(h);
      GstMapInfo tail;
      gst_buffer_map(out, &tail, GST_MAP_READ);
      gint64 n = (gint64)(tail.size / (3 * sizeof(float)));
      fail_unless(have + n == n_x, "the tail completes the old signal");
      for (int c = 0; c < 3; c++)
        for (gint64 i = 0; i < n; i++)
          got[c * n_x + have + i] = ((float *)tail.data)[i * 3 + c];
      have += n;
      gst_buffer_unmap(out, &tail);
      gst_buffer_unref(out);
    }
    while ((out = gst_harness_try_pull(h))) {
      if (first) {
        fail_unless(GST_BUFFER_IS_DISCONT(out),
                    "first output of the new signal is DISCONT");
        fail_unless(GST_BUFFER_PTS(out) == later, "and starts where its input starts");
        first = FALSE;
      }
      GstMapInfo map;
      gst_buffer_map(out, &map, GST_MAP_READ);
      gint64 n = (gint64)(map.size / (3 * sizeof(float)));
      for (int c = 0; c < 3; c++)
        for (gint64 i = 0; i < n; i++)
          got_y[c * n_y + have_y + i] = ((float *)map.data)[i * 3 + c];
      have_y += n;
      gst_buffer_unmap(out, &map);
      gst_buffer_unref(out);
    }
  }
  fail_unless(have == n_x && memcmp(got, ref_x, sizeof(float) * 3 * n_x) == 0,
              "the old signal was drained whole");
  gst_harness_push_event(h, gst_event_new_eos());
  have_y = collect(h, got_y, n_y, 3, have_y, TRUE);
  fail_unless(have_y == n_y && memcmp(got_y, ref_y, sizeof(float) * 3 * n_y) == 0,
              "the new signal is streamed from scratch");
  g_free(got);
  g_free(got_y);
  g_free(ref_x);
  g_free(ref_y);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
  gst_harness_teardown(h);
}

GST_START_TEST(test_discont_flag) {
  check_restart(TRUE);
}
GST_END_TEST;

GST_START_TEST(test_timestamp_gap) {
  check_restart(FALSE);
}
GST_END_TEST;

/* New caps mid-stream drain the old signal under the old caps first. */
GST_START_TEST(test_caps_change_drains) {
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  float zeros[2 * 100] = {0};
  gst_harness_push(h, make_buffer(zeros, 100, 2, 0, 100, 48000, TRUE));
  GstBuffer *b;
  gint64 before = 0;
  while ((b = gst_harness_try_pull(h))) {
    before += (gint64)(gst_buffer_get_size(b) / 12);
    gst_buffer_unref(b);
  }
  gst_harness_set_src_caps_str(h, "audio/x-raw,format=F32LE,rate=44100,channels=2,"
                                  "layout=interleaved");
  b = gst_harness_try_pull(h);
  fail_unless(b != NULL, "the tail was pushed on the caps change");
  ct_layer *layer = load_layer(model_a);
  int64_t shape[CT_MAX_RANK] = {100}, out_shape[CT_MAX_RANK];
  ct_output_shape(ct_layer_params(layer), shape, out_shape, NULL, 0);
  ct_layer_free(layer);
  fail_unless(before + (gint64)(gst_buffer_get_size(b) / 12) == out_shape[0]);
  gst_buffer_unref(b);
  gst_harness_push(h, make_buffer(zeros, 100, 2, 0, 100, 44100, TRUE));
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  gint rate;
  gst_structure_get_int(gst_caps_get_structure(caps, 0), "rate", &rate);
  fail_unless(rate == 44100 * 3);
  gst_caps_unref(caps);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* Pushes empty buffers until the element has swapped models (the old
 * signal's tail comes out), at most ~5 s. */
static GstBuffer *wait_for_swap(GstHarness *h) {
  for (int i = 0; i < 500; i++) {
    GstBuffer *empty = gst_buffer_new();
    gst_harness_push(h, empty);
    GstBuffer *out = gst_harness_try_pull(h);
    if (out)
      return out;
    g_usleep(10000);
  }
  return NULL;
}

GST_START_TEST(test_live_model_swap) {
  GRand *rand = g_rand_new_with_seed(8);
  const gint64 len = 300;
  float *x = random_signal(rand, 2, len), *y = random_signal(rand, 2, len);
  gint64 n_x, n_y;
  float *ref_x = forward(model_a, x, len, &n_x), *ref_y = forward(model_b, y, len, &n_y);
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  float *got = g_new0(float, 3 * n_x);
  gst_harness_push(h, make_buffer(x, len, 2, 0, len, 48000, TRUE));
  gint64 have = collect(h, got, n_x, 3, 0, TRUE);
  fail_unless(have < n_x);
  /* Swap to B while playing: A's signal is drained whole, then B runs. */
  g_object_set(h->element, "model", model_b, NULL);
  GstBuffer *tail = wait_for_swap(h);
  fail_unless(tail != NULL, "the swap happened");
  GstMapInfo map;
  gst_buffer_map(tail, &map, GST_MAP_READ);
  gint64 n = (gint64)(map.size / 12);
  for (int c = 0; c < 3; c++)
    for (gint64 i = 0; i < n; i++)
      got[c * n_x + have + i] = ((float *)map.data)[i * 3 + c];
  gst_buffer_unmap(tail, &map);
  gst_buffer_unref(tail);
  fail_unless(have + n == n_x && memcmp(got, ref_x, sizeof(float) * 3 * n_x) == 0,
              "the old model's signal is complete");
  float *got_y = g_new0(float, 3 * n_y);
  GstBuffer *buf = make_buffer(y, len, 2, 0, len, 48000, TRUE);
  GST_BUFFER_PTS(buf) += GST_SECOND; /* later in the stream */
  gst_harness_push(h, buf);
  /* A bad file keeps the current model and warns. */
  g_object_set(h->element, "model", model_garbage, NULL);
  GstMessage *warning = NULL;
  for (int i = 0; i < 500 && !warning; i++) {
    warning = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
    if (!warning)
      g_usleep(10000);
  }
  fail_unless(warning != NULL, "a warning for the bad file");
  GError *error;
  gst_message_parse_warning(warning, &error, NULL);
  fail_unless(strstr(error->message, model_garbage) != NULL, "%s", error->message);
  g_error_free(error);
  gst_message_unref(warning);
  gst_harness_push(h, gst_buffer_new());
  gst_harness_push_event(h, gst_event_new_eos());
  gint64 have_y = collect(h, got_y, n_y, 3, 0, TRUE);
  fail_unless(have_y == n_y && memcmp(got_y, ref_y, sizeof(float) * 3 * n_y) == 0,
              "the new model's signal is B's one-shot output");
  /* A model with another output channel count renegotiates. */
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  g_object_set(h->element, "model", model_c, NULL);
  gst_harness_push(h, make_buffer(x, len, 2, 0, len, 48000, TRUE));
  GstCaps *caps = NULL;
  for (int i = 0; i < 500; i++) {
    gst_harness_push(h, make_buffer(x, len, 2, 0, 10, 48000, TRUE));
    if (caps)
      gst_caps_unref(caps);
    caps = gst_pad_get_current_caps(h->sinkpad);
    gint channels = 0;
    gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &channels);
    if (channels == 1)
      break;
    g_usleep(10000);
  }
  gint channels = 0;
  gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &channels);
  fail_unless(channels == 1, "output caps follow the new model's channels");
  gst_caps_unref(caps);
  gst_element_set_bus(h->element, NULL);
  gst_object_unref(bus);
  g_free(got);
  g_free(got_y);
  g_free(ref_x);
  g_free(ref_y);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* Reads a sound file as interleaved floats. */
static float *read_sound(const gchar *path, SF_INFO *info) {
  memset(info, 0, sizeof *info);
  SNDFILE *f = sf_open(path, SFM_READ, info);
  fail_unless(f != NULL, "cannot read %s", path);
  float *data = g_new(float, info->frames * info->channels);
  fail_unless(sf_readf_float(f, data, info->frames) == info->frames);
  sf_close(f);
  return data;
}

/* The README's pipeline on a WAV file gives PyTorch's output for the whole
 * file, whatever the buffer sizes upstream (blocksize through a queue forces
 * push mode, so wavparse forwards chunks of that size). */
GST_START_TEST(test_wav_pipeline_matches_pytorch) {
  const gchar *dir = g_getenv("CT_GOLDEN_DIR");
  fail_unless(dir != NULL, "CT_GOLDEN_DIR is set by meson");
  gchar *in = g_build_filename(dir, "pipeline", "in.wav", NULL);
  gchar *model = g_build_filename(dir, "pipeline", "up2x.safetensors", NULL);
  gchar *expected_path = g_build_filename(dir, "pipeline", "expected.wav", NULL);
  gchar *out = g_build_filename(tmp_dir, "out.wav", NULL);
  SF_INFO expected_info;
  float *expected = read_sound(expected_path, &expected_info);
  double scale = 1;
  for (sf_count_t i = 0; i < expected_info.frames * expected_info.channels; i++)
    scale = fmax(scale, fabs(expected[i]));
  const char *feeds[] = {"", "blocksize=4 ! queue", "blocksize=1003 ! queue",
                         "blocksize=65536 ! queue"};
  for (guint f = 0; f < G_N_ELEMENTS(feeds); f++) {
    gchar *desc = g_strdup_printf(
        "filesrc location=%s %s ! wavparse ! audioconvert ! convtranspose1d model=%s ! "
        "audioconvert ! wavenc ! filesink location=%s",
        in, feeds[f], model, out);
    GError *error = NULL;
    GstElement *pipeline = gst_parse_launch(desc, &error);
    fail_unless(pipeline != NULL, "%s", error ? error->message : "");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(pipeline);
    GstMessage *msg = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND,
                                                 GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless(msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS, "pipeline %s failed",
                desc);
    gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    SF_INFO info;
    float *got = read_sound(out, &info);
    fail_unless(info.samplerate == 96000 && info.channels == 2, "96 kHz stereo out");
    fail_unless(info.frames == expected_info.frames, "%lld frames, expected %lld",
                (long long)info.frames, (long long)expected_info.frames);
    double err = 0;
    for (sf_count_t i = 0; i < info.frames * info.channels; i++)
      err = fmax(err, fabs(got[i] - expected[i]));
    fail_unless(err <= 1e-4 * scale, "max error %g with feed '%s'", err, feeds[f]);
    g_free(got);
    g_free(desc);
  }
  g_unlink(out);
  g_free(expected);
  g_free(in);
  g_free(model);
  g_free(expected_path);
  g_free(out);
}
GST_END_TEST;

static Suite *convtranspose1d_suite(void) {
  Suite *s = suite_create("convtranspose1d");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_caps_downstream);
  tcase_add_test(tc, test_caps_upstream);
  tcase_add_test(tc, test_model_errors);
  tcase_add_test(tc, test_wrong_channels);
  tcase_add_test(tc, test_bitwise_random_splits);
  tcase_add_test(tc, test_timestamps_one_hour);
  tcase_add_test(tc, test_latency_query);
  tcase_add_test(tc, test_emission_and_eos_tail);
  tcase_add_test(tc, test_flush_resets);
  tcase_add_test(tc, test_discont_flag);
  tcase_add_test(tc, test_timestamp_gap);
  tcase_add_test(tc, test_caps_change_drains);
  tcase_add_test(tc, test_live_model_swap);
  tcase_add_test(tc, test_wav_pipeline_matches_pytorch);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  make_models();
  int failed = gst_check_run_suite(convtranspose1d_suite(), "convtranspose1d", __FILE__);
  remove_models();
  return failed + check_no_leaks();
}
