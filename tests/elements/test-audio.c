/* convtranspose1d under GstHarness: caps, errors, bitwise streaming,
 * timestamps, latency, EOS, flush, discontinuities and live model swaps. */
#include <math.h>
#include <stdio.h>

#include <sndfile.h>

#include "tests/common/element-harness.h"

static gchar *model_a, *model_b, *model_c, *model_mono, *model_2d, *model_garbage;
static gchar *model_dir; /* a directory where a model should be */

/* Layer A: 2 -> 3 channels, k7 s3 p2 op1 d2 with bias; B: same shape, other
 * weights; C: 2 -> 1 channel, k4 s3; mono: 1 -> 1, k4 s2 p1; 2d: a 2d layer;
 * garbage: not a model. */
static void make_models(void) {
  GRand *rand = g_rand_new_with_seed(7);
  float w[2 * 3 * 7], bias[3];
  int64_t k7 = 7, k4 = 4;
  model_a = tmp_path("a.safetensors");
  model_b = tmp_path("b.safetensors");
  model_c = tmp_path("c.safetensors");
  model_mono = tmp_path("mono.safetensors");
  model_2d = tmp_path("2d.safetensors");
  model_garbage = tmp_path("garbage.safetensors");
  model_dir = tmp_path("directory.safetensors");
  g_mkdir(model_dir, 0755);
  const char *meta_a =
      "\"stride\":\"3\",\"padding\":\"2\",\"output_padding\":\"1\",\"dilation\":\"2\"";
  for (int m = 0; m < 2; m++) {
    for (guint i = 0; i < G_N_ELEMENTS(w); i++)
      w[i] = (float)g_rand_double_range(rand, -1, 1);
    for (guint i = 0; i < G_N_ELEMENTS(bias); i++)
      bias[i] = (float)g_rand_double_range(rand, -1, 1);
    st_write_layer(m ? model_b : model_a, 1, 2, 3, &k7, w, 3, bias, meta_a);
  }
  st_write_layer(model_c, 1, 2, 1, &k4, w, 1, NULL, "\"stride\":\"3\"");
  st_write_layer(model_mono, 1, 1, 1, &k4, w, 1, bias,
                 "\"stride\":\"2\",\"padding\":\"1\"");
  int64_t k2d[2] = {2, 2};
  st_write_layer(model_2d, 2, 2, 3, k2d, w, 3, NULL, NULL);
  g_file_set_contents(model_garbage, "this is not a model", -1, NULL);
  g_rand_free(rand);
}

/* The harness starts its element at once, so the model is set before. */
static GstHarness *new_harness(const gchar *model, int channels, int rate,
                               gboolean interleaved) {
  GstHarness *h = harness_new("convtranspose1d", model, -1, NULL);
  harness_set_audio_caps(h, channels, rate, interleaved);
  return h;
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
  harness_done(h);
}
GST_END_TEST;

GST_START_TEST(test_caps_upstream) {
  GstHarness *h = harness_new("convtranspose1d", model_a, -1, NULL);
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
  harness_done(h);
}
GST_END_TEST;

GST_START_TEST(test_model_errors) {
  gchar *text = ready_error("convtranspose1d", NULL);
  fail_unless(text && strstr(text, "no model"), "no model: %s", text);
  g_free(text);
  text = ready_error("convtranspose1d", "/nonexistent/dir/m.safetensors");
  fail_unless(text && strstr(text, "/nonexistent/dir/m.safetensors"), "missing: %s",
              text);
  g_free(text);
  text = ready_error("convtranspose1d", model_garbage);
  fail_unless(text && strstr(text, model_garbage), "garbage: %s", text);
  g_free(text);
  text = ready_error("convtranspose1d", model_2d);
  fail_unless(text && strstr(text, "needs a 1d layer"), "wrong rank: %s", text);
  g_free(text);
  text = ready_error("convtranspose1d", model_dir);
  fail_unless(text && strstr(text, model_dir), "directory: %s", text);
  g_free(text);
  text = ready_error("convtranspose1d", model_a);
  fail_unless(text == NULL, "a good model loads: %s", text);
  GstElement *e = gst_element_factory_make("convtranspose1d", NULL);
  g_object_set(e, "model", model_a, "stride", "abc", NULL);
  /* The state change fails exactly when an error is posted (checked). */
  text = element_ready_error(e);
  fail_unless(text != NULL, "a bad override fails the state change");
  fail_unless(strstr(text, "stride") != NULL, "bad override: %s", text);
  g_free(text);
}
GST_END_TEST;

GST_START_TEST(test_wrong_channels) {
  GstBus *bus;
  GstHarness *h = harness_new("convtranspose1d", model_a, -1, &bus);
  harness_set_audio_caps(h, 3, 48000, TRUE);
  GstFlowReturn ret =
      gst_harness_push(h, gst_buffer_new_allocate(NULL, 3 * 4 * 10, NULL));
  fail_unless(ret == GST_FLOW_NOT_NEGOTIATED, "flow %s", gst_flow_get_name(ret));
  gchar *text = pop_message_text(bus, GST_MESSAGE_ERROR);
  fail_unless(text != NULL);
  fail_unless(strstr(text, "needs 2 input channels") && strstr(text, model_a),
              "message: %s", text);
  g_free(text);
  harness_done(h);
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
    fail_unless(gst_harness_push(h, audio_buffer_full(x, len, cin, pos, n, 48000, 0,
                                                      interleaved)) == GST_FLOW_OK);
    pos += n;
    have = collect_audio_full(h, got, cap, cout, have, interleaved);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  *n_out = collect_audio_full(h, got, cap, cout, have, interleaved);
  harness_done(h);
  return got;
}

GST_START_TEST(test_bitwise_random_splits) {
  GRand *rand = g_rand_new_with_seed(11);
  const gint64 len = 6000;
  float *x = random_planar(rand, 2, len);
  gint64 n_ref;
  float *ref = forward_1d(model_a, x, len, &n_ref);
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
  harness_done(h);
}
GST_END_TEST;

GST_START_TEST(test_latency_query) {
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
  gst_harness_push(h, gst_buffer_new_allocate(NULL, 2 * 4 * 10, NULL));
  ct_layer *layer = load_test_layer(model_a);
  gint64 d = ct_latency_output_steps(ct_layer_params(layer));
  ct_layer_free(layer);
  fail_unless(d > 0);
  GstClockTime expected = 10 * GST_MSECOND + gst_util_uint64_scale(d, GST_SECOND, 144000);
  GstClockTime got = gst_harness_query_latency(h);
  fail_unless(got == expected, "latency %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT,
              GST_TIME_ARGS(got), GST_TIME_ARGS(expected));
  harness_done(h);
}
GST_END_TEST;

/* Each push emits exactly what is final and certain; EOS adds the tail. */
GST_START_TEST(test_emission_and_eos_tail) {
  GRand *rand = g_rand_new_with_seed(3);
  const gint64 len = 500;
  float *x = random_planar(rand, 2, len);
  ct_layer *layer = load_test_layer(model_a);
  const ct_params *p = ct_layer_params(layer);
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  gint64 pos = 0, emitted = 0;
  while (pos < len) {
    gint64 n = g_rand_int_range(rand, 0, 40);
    if (n > len - pos)
      n = len - pos;
    gst_harness_push(h, audio_buffer(x, len, 2, pos, n, 48000));
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
  fail_unless(saw_eos(h), "EOS follows the tail");
  ct_layer_free(layer);
  g_free(x);
  g_rand_free(rand);
  harness_done(h);
}
GST_END_TEST;

/* After FLUSH_STOP the element forgets the old signal without pushing it. */
GST_START_TEST(test_flush_resets) {
  GRand *rand = g_rand_new_with_seed(4);
  const gint64 len = 300;
  float *x = random_planar(rand, 2, len), *y = random_planar(rand, 2, len);
  gint64 n_ref;
  float *ref = forward_1d(model_a, y, len, &n_ref);
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  gst_harness_push(h, audio_buffer(x, len, 2, 0, 200, 48000));
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
    gst_harness_push(h, audio_buffer(y, len, 2, pos, 100, 48000));
    have = collect_audio(h, got, n_ref, 3, have);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  have = collect_audio(h, got, n_ref, 3, have);
  fail_unless(have == n_ref && memcmp(got, ref, sizeof(float) * 3 * n_ref) == 0,
              "after a flush the output is that of the new signal alone");
  g_free(got);
  g_free(ref);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
  harness_done(h);
}
GST_END_TEST;

/* A DISCONT buffer or a timestamp gap drains the old signal (its full
 * one-shot output) and starts a new one, flagged DISCONT. */
static void check_restart(gboolean use_flag) {
  GRand *rand = g_rand_new_with_seed(6);
  const gint64 len = 400;
  float *x = random_planar(rand, 2, len), *y = random_planar(rand, 2, len);
  gint64 n_x, n_y;
  float *ref_x = forward_1d(model_a, x, len, &n_x),
        *ref_y = forward_1d(model_a, y, len, &n_y);
  GstHarness *h = new_harness(model_a, 2, 48000, TRUE);
  float *got = g_new0(float, 3 * n_x);
  gint64 have = 0;
  for (gint64 pos = 0; pos < len; pos += 80) {
    gst_harness_push(h, audio_buffer(x, len, 2, pos, 80, 48000));
    have = collect_audio(h, got, n_x, 3, have);
  }
  fail_unless(have < n_x);
  /* The second signal starts 5 s later. */
  const GstClockTime later = 5 * GST_SECOND;
  float *got_y = g_new0(float, 3 * n_y);
  gint64 have_y = 0;
  gboolean first = TRUE;
  for (gint64 pos = 0; pos < len; pos += 80) {
    GstBuffer *buf = audio_buffer(y, len, 2, pos, 80, 48000);
    GST_BUFFER_PTS(buf) += later;
    if (pos == 0 && use_flag)
      GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
    gst_harness_push(h, buf);
    GstBuffer *out;
    if (pos == 0) { /* first out: the drained tail of x */
      out = gst_harness_pull(h);
      have = append_audio(out, got, n_x, 3, have);
      fail_unless(have == n_x, "the tail completes the old signal");
      gst_buffer_unref(out);
    }
    while ((out = gst_harness_try_pull(h))) {
      if (first) {
        fail_unless(GST_BUFFER_IS_DISCONT(out),
                    "first output of the new signal is DISCONT");
        fail_unless(GST_BUFFER_PTS(out) == later, "and starts where its input starts");
        first = FALSE;
      }
      have_y = append_audio(out, got_y, n_y, 3, have_y);
      gst_buffer_unref(out);
    }
  }
  fail_unless(have == n_x && memcmp(got, ref_x, sizeof(float) * 3 * n_x) == 0,
              "the old signal was drained whole");
  gst_harness_push_event(h, gst_event_new_eos());
  have_y = collect_audio(h, got_y, n_y, 3, have_y);
  fail_unless(have_y == n_y && memcmp(got_y, ref_y, sizeof(float) * 3 * n_y) == 0,
              "the new signal is streamed from scratch");
  g_free(got);
  g_free(got_y);
  g_free(ref_x);
  g_free(ref_y);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
  harness_done(h);
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
  gst_harness_push(h, audio_buffer(zeros, 100, 2, 0, 100, 48000));
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
  fail_unless(before + (gint64)(gst_buffer_get_size(b) / 12) ==
              output_length(model_a, 100));
  gst_buffer_unref(b);
  gst_harness_push(h, audio_buffer(zeros, 100, 2, 0, 100, 44100));
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  gint rate;
  gst_structure_get_int(gst_caps_get_structure(caps, 0), "rate", &rate);
  fail_unless(rate == 44100 * 3);
  gst_caps_unref(caps);
  harness_done(h);
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
  float *x = random_planar(rand, 2, len), *y = random_planar(rand, 2, len);
  gint64 n_x, n_y;
  float *ref_x = forward_1d(model_a, x, len, &n_x),
        *ref_y = forward_1d(model_b, y, len, &n_y);
  GstBus *bus;
  GstHarness *h = harness_new("convtranspose1d", model_a, -1, &bus);
  harness_set_audio_caps(h, 2, 48000, TRUE);
  float *got = g_new0(float, 3 * n_x);
  gst_harness_push(h, audio_buffer(x, len, 2, 0, len, 48000));
  gint64 have = collect_audio(h, got, n_x, 3, 0);
  fail_unless(have < n_x);
  /* Swap to B while playing: A's signal is drained whole, then B runs. */
  g_object_set(h->element, "model", model_b, NULL);
  GstBuffer *tail = wait_for_swap(h);
  fail_unless(tail != NULL, "the swap happened");
  have = append_audio(tail, got, n_x, 3, have);
  gst_buffer_unref(tail);
  fail_unless(have == n_x && memcmp(got, ref_x, sizeof(float) * 3 * n_x) == 0,
              "the old model's signal is complete");
  float *got_y = g_new0(float, 3 * n_y);
  GstBuffer *buf = audio_buffer(y, len, 2, 0, len, 48000);
  GST_BUFFER_PTS(buf) += GST_SECOND; /* later in the stream */
  gst_harness_push(h, buf);
  /* A bad file keeps the current model and warns. */
  g_object_set(h->element, "model", model_garbage, NULL);
  gchar *warning = wait_message_text(bus, GST_MESSAGE_WARNING, 5);
  fail_unless(warning != NULL, "a warning for the bad file");
  fail_unless(strstr(warning, model_garbage) != NULL, "%s", warning);
  g_free(warning);
  gst_harness_push(h, gst_buffer_new());
  gst_harness_push_event(h, gst_event_new_eos());
  gint64 have_y = collect_audio(h, got_y, n_y, 3, 0);
  fail_unless(have_y == n_y && memcmp(got_y, ref_y, sizeof(float) * 3 * n_y) == 0,
              "the new model's signal is B's one-shot output");
  /* A model with another output channel count renegotiates. */
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  g_object_set(h->element, "model", model_c, NULL);
  gst_harness_push(h, audio_buffer(x, len, 2, 0, len, 48000));
  GstCaps *caps = NULL;
  for (int i = 0; i < 500; i++) {
    gst_harness_push(h, audio_buffer(x, len, 2, 0, 10, 48000));
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
  g_free(got);
  g_free(got_y);
  g_free(ref_x);
  g_free(ref_y);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
  harness_done(h);
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
  gchar *out = tmp_path("out.wav");
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
    gchar *failure = run_to_end(pipeline, 60);
    fail_unless(failure == NULL, "pipeline %s failed: %s", desc, failure);
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

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  make_models();
  TCase *tc = element_tcase(600);
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
  return run_element_tests("convtranspose1d", tc, __FILE__);
}
