/* Live model swaps that must not kill the pipeline: a model upstream cannot
 * feed, a storm of sets, the file already in use, a burst of sets before
 * disposal. */
#include "tests/common/element-harness.h"

/* mono: 1 -> 1, k4 s2 p1; mono_copy: the same bytes elsewhere; mono_b: 1 ->
 * 1, other weights; stereo: 2 -> 3, k4 s2 p1; big_a / big_b: 512 -> 512,
 * k16 s8 p4 (HiFi-GAN's first upsampler, 16 MB each), which take a while to
 * load. */
static gchar *model_mono, *model_mono_copy, *model_mono_b, *model_stereo, *model_big_a,
    *model_big_b;

static void make_models(void) {
  GRand *rand = g_rand_new_with_seed(16);
  float w[2 * 3 * 4], bias[3];
  const int64_t k4 = 4;
  for (guint i = 0; i < G_N_ELEMENTS(w); i++)
    w[i] = (float)g_rand_double_range(rand, -0.5, 0.5);
  for (guint i = 0; i < G_N_ELEMENTS(bias); i++)
    bias[i] = (float)g_rand_double_range(rand, -0.2, 0.2);
  const gchar *meta = "\"stride\":\"2\",\"padding\":\"1\"";
  model_mono = tmp_path("mono.safetensors");
  model_mono_copy = tmp_path("mono-copy.safetensors");
  model_mono_b = tmp_path("mono-b.safetensors");
  model_stereo = tmp_path("stereo.safetensors");
  st_write_layer(model_mono, 1, 1, 1, &k4, w, 1, bias, meta);
  st_write_layer(model_mono_copy, 1, 1, 1, &k4, w, 1, bias, meta);
  st_write_layer(model_mono_b, 1, 1, 1, &k4, w + 4, 1, bias, meta);
  st_write_layer(model_stereo, 1, 2, 3, &k4, w, 3, bias, meta);
  const int64_t k16 = 16, n_big = 512 * 512 * 16;
  float *big = g_new(float, n_big);
  for (int64_t i = 0; i < n_big; i++)
    big[i] = (float)g_rand_double_range(rand, -1e-3, 1e-3);
  model_big_a = tmp_path("big-a.safetensors");
  model_big_b = tmp_path("big-b.safetensors");
  const gchar *meta_big = "\"stride\":\"8\",\"padding\":\"4\"";
  st_write_layer(model_big_a, 1, 512, 512, &k16, big, 512, NULL, meta_big);
  big[0] = 0.5f;
  st_write_layer(model_big_b, 1, 512, 512, &k16, big, 512, NULL, meta_big);
  g_free(big);
  g_rand_free(rand);
}

/* A live pipeline `SOURCE ! convtranspose1d name=ct model=MODEL ! fakesink`
 * whose output the log follows, playing and past its first 10 buffers. */
static GstElement *live_pipeline(const gchar *source, const gchar *model, ChannelLog *log,
                                 GstElement **ct) {
  gchar *desc = g_strdup_printf("%s ! convtranspose1d name=ct model=%s ! "
                                "fakesink name=sink signal-handoffs=true sync=false",
                                source, model);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  g_free(desc);
  fail_unless(pipeline != NULL);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  g_signal_connect(sink, "handoff", G_CALLBACK(channel_log_handoff), log);
  gst_object_unref(sink);
  *ct = gst_bin_get_by_name(GST_BIN(pipeline), "ct");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  for (int i = 0; i < 500 && channel_log_buffers(log) < 10; i++)
    g_usleep(5000);
  return pipeline;
}

/* Upstream fixed at one channel, a model for two set while playing: the
 * pipeline plays on with the old model and a warning says why. */
GST_START_TEST(test_unreachable_model_kept_out) {
  ChannelLog log;
  channel_log_init(&log);
  GstElement *ct;
  GstElement *pipeline = live_pipeline("audiotestsrc is-live=true num-buffers=150 "
                                       "samplesperbuffer=480 ! "
                                       "audio/x-raw,format=F32LE,channels=1,rate=48000",
                                       model_mono, &log, &ct);
  GstBus *bus = gst_element_get_bus(pipeline);
  g_object_set(ct, "model", model_stereo, NULL);
  gchar *warning = NULL, *error = NULL;
  gboolean eos = FALSE;
  while (!eos && !error) {
    GstMessage *msg = gst_bus_timed_pop_filtered(
        bus, 30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING);
    fail_unless(msg != NULL, "the pipeline ends within 30 s");
    GError *e = NULL;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      gst_message_parse_error(msg, &e, NULL);
      error = g_strdup(e->message);
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
      gst_message_parse_warning(msg, &e, NULL);
      g_free(warning);
      warning = g_strdup(e->message);
    } else {
      eos = TRUE;
    }
    g_clear_error(&e);
    gst_message_unref(msg);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  fail_unless(error == NULL, "the pipeline died: %s", error);
  fail_unless(warning != NULL, "a warning says the model was not taken");
  fail_unless(strstr(warning, model_stereo) && strstr(warning, "upstream") &&
                  strstr(warning, model_mono),
              "the warning names both models and upstream: %s", warning);
  fail_unless(log.channel_changes == 0 && log.channels == 1,
              "the old model ran on (%u channel changes)", log.channel_changes);
  gchar *model = NULL;
  g_object_get(ct, "model", &model, NULL);
  fail_unless(g_strcmp0(model, model_stereo) == 0, "the property holds what was set");
  g_free(model);
  g_free(warning);
  gst_object_unref(bus);
  gst_object_unref(ct);
  gst_object_unref(pipeline);
  channel_log_clear(&log);
}
GST_END_TEST;

/* Sets between a 1- and a 2-channel model every 0.5-2 ms for a second:
 * no error, and the last model set wins. */
GST_START_TEST(test_swap_storm) {
  ChannelLog log;
  channel_log_init(&log);
  GstElement *ct;
  GstElement *pipeline = live_pipeline("audiotestsrc is-live=true samplesperbuffer=96 ! "
                                       "audio/x-raw,format=F32LE,channels=1,rate=48000 ! "
                                       "audioconvert",
                                       model_mono, &log, &ct);
  GstBus *bus = gst_element_get_bus(pipeline);
  GRand *rand = g_rand_new_with_seed(17);
  const gint64 end = g_get_monotonic_time() + G_USEC_PER_SEC;
  guint sets = 0;
  while (g_get_monotonic_time() < end) {
    g_object_set(ct, "model", sets % 2 ? model_mono : model_stereo, NULL);
    sets++;
    g_usleep((gulong)g_rand_int_range(rand, 500, 2000));
  }
  g_object_set(ct, "model", model_stereo, NULL);
  /* The last set (2 -> 3 channels) takes over. */
  gboolean settled = FALSE;
  for (int i = 0; i < 1000 && !settled; i++) {
    g_mutex_lock(&log.lock);
    settled = log.channels == 3;
    g_mutex_unlock(&log.lock);
    if (!settled)
      g_usleep(5000);
  }
  gchar *error = pop_message_text(bus, GST_MESSAGE_ERROR);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  g_print("# %u sets in 1 s, %u channel changes, %u buffers out\n", sets,
          log.channel_changes, log.buffers);
  fail_unless(error == NULL, "the storm killed the pipeline: %s", error);
  fail_unless(settled, "the last model set runs (output has %d channels)", log.channels);
  g_rand_free(rand);
  gst_object_unref(bus);
  gst_object_unref(ct);
  gst_object_unref(pipeline);
  channel_log_clear(&log);
}
GST_END_TEST;

/* Setting the file in use (or the same layer under another name) changes
 * nothing; a real swap restarts the signal flagged DISCONT. */
GST_START_TEST(test_same_model_is_no_swap) {
  GRand *rand = g_rand_new_with_seed(18);
  const gint64 len = 600;
  float *x = random_planar(rand, 1, len);
  gint64 n_ref;
  float *ref = forward_1d(model_mono, x, len, &n_ref);
  GstHarness *h = harness_new("convtranspose1d", model_mono, -1, NULL);
  harness_set_audio_caps(h, 1, 48000, TRUE);
  float *got = g_new0(float, n_ref);
  gint64 have = 0;
  const gchar *again[] = {model_mono, model_mono_copy};
  for (gint64 pos = 0; pos < len; pos += 50) {
    if (pos == 100 || pos == 300)
      g_object_set(h->element, "model", again[pos == 300], NULL);
    gst_harness_push(h, audio_buffer(x, len, 1, pos, 50, 48000));
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      fail_unless(!GST_BUFFER_IS_DISCONT(out) || have == 0,
                  "no restart at %" G_GINT64_FORMAT, have);
      have = append_audio(out, got, n_ref, 1, have);
      gst_buffer_unref(out);
    }
    g_usleep(20000); /* time for the load */
  }
  gst_harness_push_event(h, gst_event_new_eos());
  have = collect_audio(h, got, n_ref, 1, have);
  fail_unless(have == n_ref && memcmp(got, ref, sizeof(float) * n_ref) == 0,
              "the signal went on untouched: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
              " samples, as one-shot",
              have, n_ref);
  /* Another layer: the old signal is drained, the new one starts DISCONT. */
  GstSegment segment;
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  gst_harness_push(h, audio_buffer(x, len, 1, 0, 100, 48000));
  GstBuffer *out;
  while ((out = gst_harness_try_pull(h)))
    gst_buffer_unref(out);
  g_object_set(h->element, "model", model_mono_b, NULL);
  gboolean discont = FALSE, swapped = FALSE;
  for (int i = 0; i < 300 && !swapped; i++) {
    g_usleep(10000);
    gst_harness_push(h, audio_buffer(x, len, 1, 100 + i, 1, 48000));
    while ((out = gst_harness_try_pull(h))) {
      if (GST_BUFFER_IS_DISCONT(out)) {
        discont = TRUE;
        swapped = TRUE;
      }
      gst_buffer_unref(out);
    }
  }
  fail_unless(discont, "the first output of the new model is DISCONT");
  g_free(got);
  g_free(ref);
  g_free(x);
  g_rand_free(rand);
  harness_done(h);
}
GST_END_TEST;

/* 100 sets of 16 MB models, then the element is disposed: the loads that
 * were superseded are never done, so this takes about one load, not 100. */
GST_START_TEST(test_burst_then_dispose) {
  GstElement *e = gst_element_factory_make("convtranspose1d", NULL);
  g_object_set(e, "model", model_mono, NULL);
  fail_unless(gst_element_set_state(e, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS);
  /* One load alone, for scale. */
  gint64 t0 = g_get_monotonic_time();
  GError *error = NULL;
  ct_layer *layer = ct_model_load(model_big_a, NULL, NULL, &error);
  fail_unless(layer != NULL);
  ct_layer_free(layer);
  const double one_load = (double)(g_get_monotonic_time() - t0) / 1e6;
  t0 = g_get_monotonic_time();
  for (int i = 0; i < 100; i++)
    g_object_set(e, "model", i % 2 ? model_big_b : model_big_a, NULL);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  const double took = (double)(g_get_monotonic_time() - t0) / 1e6;
  g_print("# one load %.3f s; 100 sets then dispose %.3f s\n", one_load, took);
  fail_unless(took < 10 * one_load + 1.0,
              "100 sets and a dispose took %.2f s, %.0f loads' worth", took,
              took / one_load);
}
GST_END_TEST;

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  make_models();
  TCase *tc = element_tcase(300);
  tcase_add_test(tc, test_unreachable_model_kept_out);
  tcase_add_test(tc, test_swap_storm);
  tcase_add_test(tc, test_same_model_is_no_swap);
  tcase_add_test(tc, test_burst_then_dispose);
  return run_element_tests("swap", tc, __FILE__);
}
