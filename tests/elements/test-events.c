/* What a streaming filter owes the pipeline around it, beyond the data:
 * gapless segments and GAP events, timestamps at variable frame rates and
 * without a first PTS, queries and seeks in samples, caps that cannot work
 * (overflowing rates, interlaced video), channel positions, the format kept
 * through videoconvert, and what gst-inspect shows. */
#include <gst/video/video.h>
#include <math.h>
#include <sndfile.h>

#include "tests/common/element-harness.h"

/* a: 2 -> 3, k7 s3 p2 op1 d2, bias; mono: 1 -> 1, k4 s2 p1; up3: 1 -> 3, k4
 * s2 p1; t2x: 3d gray, kernel (4,1,1), stride (2,1,1), padding (1,0,0);
 * rgb2d / gray2d: 2d, k2 s2. */
static gchar *model_a, *model_mono, *model_up3, *model_t2x, *model_rgb2d, *model_gray2d;

static void make_models(void) {
  GRand *rand = g_rand_new_with_seed(15);
  float w[3 * 3 * 4 * 2 * 2 * 2], bias[3];
  for (guint i = 0; i < G_N_ELEMENTS(w); i++)
    w[i] = (float)g_rand_double_range(rand, -0.5, 0.5);
  for (guint i = 0; i < G_N_ELEMENTS(bias); i++)
    bias[i] = (float)g_rand_double_range(rand, 0.1, 0.3);
  const int64_t k7 = 7, k4 = 4, kt[3] = {4, 1, 1}, k2[2] = {2, 2};
  model_a = tmp_path("a.safetensors");
  model_mono = tmp_path("mono.safetensors");
  model_up3 = tmp_path("up3.safetensors");
  model_t2x = tmp_path("t2x.safetensors");
  model_rgb2d = tmp_path("rgb2d.safetensors");
  model_gray2d = tmp_path("gray2d.safetensors");
  st_write_layer(model_a, 1, 2, 3, &k7, w, 3, bias,
                 "\"stride\":\"3\",\"padding\":\"2\",\"output_padding\":\"1\","
                 "\"dilation\":\"2\"");
  st_write_layer(model_mono, 1, 1, 1, &k4, w, 1, bias,
                 "\"stride\":\"2\",\"padding\":\"1\"");
  st_write_layer(model_up3, 1, 1, 3, &k4, w, 3, bias,
                 "\"stride\":\"2\",\"padding\":\"1\"");
  st_write_layer(model_t2x, 3, 1, 1, kt, w, 1, bias,
                 "\"stride\":\"[2,1,1]\",\"padding\":\"[1,0,0]\"");
  st_write_layer(model_rgb2d, 2, 3, 3, k2, w, 3, bias, "\"stride\":\"2\"");
  st_write_layer(model_gray2d, 2, 1, 1, k2, w, 1, bias, "\"stride\":\"2\"");
  g_rand_free(rand);
}

/* ---- gapless playback ------------------------------------------------------------ */

/* A non-flushing SEGMENT (concat's next stream) ends the signal: its tail
 * comes out whole before the next signal, which starts DISCONT. */
GST_START_TEST(test_segment_drains) {
  GRand *rand = g_rand_new_with_seed(1);
  const gint64 len = 300;
  float *x = random_planar(rand, 2, len), *y = random_planar(rand, 2, len);
  gint64 n_x, n_y;
  float *ref_x = forward_1d(model_a, x, len, &n_x),
        *ref_y = forward_1d(model_a, y, len, &n_y);
  GstHarness *h = harness_new("convtranspose1d", model_a, -1, NULL);
  harness_set_audio_caps(h, 2, 48000, TRUE);
  float *got_x = g_new0(float, 3 * n_x), *got_y = g_new0(float, 3 * n_y);
  gint64 have_x = 0, have_y = 0;
  GstBuffer *out;
  for (gint64 pos = 0; pos < len; pos += 60)
    gst_harness_push(h, audio_buffer(x, len, 2, pos, 60, 48000));
  have_x = collect_audio(h, got_x, n_x, 3, have_x);
  fail_unless(have_x < n_x, "a tail is held back");
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  segment.base = gst_util_uint64_scale(len, GST_SECOND, 48000);
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  have_x = collect_audio(h, got_x, n_x, 3, have_x);
  fail_unless(have_x == n_x && memcmp(got_x, ref_x, sizeof(float) * 3 * n_x) == 0,
              "the first stream's output is whole: %" G_GINT64_FORMAT
              " of %" G_GINT64_FORMAT " samples",
              have_x, n_x);
  gboolean first = TRUE;
  for (gint64 pos = 0; pos < len; pos += 60) {
    gst_harness_push(h, audio_buffer(y, len, 2, pos, 60, 48000));
    while ((out = gst_harness_try_pull(h))) {
      if (first)
        fail_unless(GST_BUFFER_IS_DISCONT(out), "the next stream starts DISCONT");
      first = FALSE;
      have_y = append_audio(out, got_y, n_y, 3, have_y);
      gst_buffer_unref(out);
    }
  }
  gst_harness_push_event(h, gst_event_new_eos());
  have_y = collect_audio(h, got_y, n_y, 3, have_y);
  fail_unless(have_y == n_y && memcmp(got_y, ref_y, sizeof(float) * 3 * n_y) == 0,
              "the second stream is its own one-shot output");
  g_free(got_x);
  g_free(got_y);
  g_free(ref_x);
  g_free(ref_y);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
  harness_done(h);
}
GST_END_TEST;

/* concat of three streams: every stream's whole output, nothing lost at the
 * boundaries. */
static void count_samples(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data) {
  *(gint64 *)data += (gint64)(gst_buffer_get_size(buf) / sizeof(float));
}

GST_START_TEST(test_concat_is_gapless) {
  GString *desc = g_string_new(NULL);
  g_string_append_printf(desc,
                         "concat name=c ! convtranspose1d model=%s ! "
                         "fakesink name=sink signal-handoffs=true sync=false",
                         model_mono);
  for (int i = 0; i < 3; i++)
    g_string_append_printf(desc,
                           " audiotestsrc num-buffers=4 samplesperbuffer=500 freq=%d ! "
                           "audio/x-raw,format=F32LE,channels=1,rate=48000 ! c.",
                           300 + 200 * i);
  GstElement *pipeline = gst_parse_launch(desc->str, NULL);
  g_string_free(desc, TRUE);
  fail_unless(pipeline != NULL);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  gint64 samples = 0;
  g_signal_connect(sink, "handoff", G_CALLBACK(count_samples), &samples);
  gchar *error = run_to_end(pipeline, 30);
  fail_unless(error == NULL, "%s", error);
  const gint64 want = 3 * output_length(model_mono, 2000);
  fail_unless(samples == want,
              "%" G_GINT64_FORMAT
              " samples out, the three streams make %" G_GINT64_FORMAT,
              samples, want);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* A GAP event goes on only after the tail of the signal before it. */
typedef struct {
  gint64 samples_before_gap;
  gboolean saw_gap;
} GapLog;

static GstPadProbeReturn log_gap(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  GapLog *log = data;
  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) && !log->saw_gap)
    log->samples_before_gap +=
        (gint64)(gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info)) / sizeof(float));
  if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) &&
      GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_GAP)
    log->saw_gap = TRUE;
  return GST_PAD_PROBE_OK;
}

GST_START_TEST(test_gap_after_tail) {
  GRand *rand = g_rand_new_with_seed(2);
  const gint64 len = 400;
  float *x = random_planar(rand, 1, len);
  GstHarness *h = harness_new("convtranspose1d", model_mono, -1, NULL);
  harness_set_audio_caps(h, 1, 48000, TRUE);
  GapLog log = {0};
  GstPad *src = gst_element_get_static_pad(h->element, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                    log_gap, &log, NULL);
  gst_object_unref(src);
  gst_harness_push(h, audio_buffer(x, len, 1, 0, len, 48000));
  const GstClockTime end = gst_util_uint64_scale(len, GST_SECOND, 48000);
  gst_harness_push_event(h, gst_event_new_gap(end, GST_SECOND));
  fail_unless(log.saw_gap, "the GAP went on");
  fail_unless(log.samples_before_gap == output_length(model_mono, len),
              "%" G_GINT64_FORMAT
              " samples before the GAP, the signal has %" G_GINT64_FORMAT,
              log.samples_before_gap, output_length(model_mono, len));
  g_free(x);
  g_rand_free(rand);
  harness_done(h);
}
GST_END_TEST;

/* ---- timestamps ---------------------------------------------------------------------
 */

static GstBuffer *gray_frame(int width, int height, guint8 value, GstClockTime pts,
                             GstClockTime duration) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_GRAY8, width, height);
  GstBuffer *buf = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&info), NULL);
  gst_buffer_memset(buf, 0, value, GST_VIDEO_INFO_SIZE(&info));
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DURATION(buf) = duration;
  return buf;
}

static void expect_frame(GstHarness *h, GstClockTime pts, GstClockTime duration,
                         gboolean discont, const gchar *what) {
  GstBuffer *out = gst_harness_try_pull(h);
  fail_unless(out != NULL, "%s: no output", what);
  fail_unless(GST_BUFFER_PTS(out) == pts && GST_BUFFER_DURATION(out) == duration,
              "%s: PTS %" GST_TIME_FORMAT " duration %" GST_TIME_FORMAT
              ", expected %" GST_TIME_FORMAT " and %" GST_TIME_FORMAT,
              what, GST_TIME_ARGS(GST_BUFFER_PTS(out)),
              GST_TIME_ARGS(GST_BUFFER_DURATION(out)), GST_TIME_ARGS(pts),
              GST_TIME_ARGS(duration));
  fail_unless(!GST_BUFFER_IS_DISCONT(out) == !discont, "%s: DISCONT %s", what,
              discont ? "missing" : "unexpected");
  gst_buffer_unref(out);
}

/* At framerate 0/1 output times come from the input PTS: the new frames
 * halfway between their neighbours; where the next frame is not there yet,
 * an output lasts half its frame's duration, else half the interval before
 * it. A frame earlier than the one before restarts the signal. */
GST_START_TEST(test_variable_frame_rate) {
  GstHarness *h = harness_new("convtranspose3d", model_t2x, -1, NULL);
  gst_harness_set_src_caps_str(h, "video/x-raw,format=GRAY8,width=4,height=2,"
                                  "framerate=0/1");
  const GstClockTime ms = GST_MSECOND;
  const GstClockTime in[5] = {0, 40 * ms, 100 * ms, 130 * ms, 200 * ms};
  for (int i = 0; i < 5; i++)
    gst_harness_push(h, gray_frame(4, 2, (guint8)(40 * i), in[i],
                                   i == 0 ? 40 * ms : GST_CLOCK_TIME_NONE));
  const GstClockTime pts[10] = {0,        20 * ms,  40 * ms,  70 * ms,  100 * ms,
                                115 * ms, 130 * ms, 165 * ms, 200 * ms, 235 * ms};
  const GstClockTime duration[10] = {20, 20, 20, 30, 30, 15, 15, 35, 35, 35};
  for (int j = 0; j < 9; j++) {
    gchar *what = g_strdup_printf("output %d", j);
    expect_frame(h, pts[j], duration[j] * ms, FALSE, what);
    g_free(what);
  }
  fail_unless(gst_harness_try_pull(h) == NULL, "output 9 waits for the next frame");
  /* Earlier than the last frame: the signal ends and a new one starts. */
  gst_harness_push(h, gray_frame(4, 2, 9, 180 * ms, 30 * ms));
  expect_frame(h, pts[9], duration[9] * ms, FALSE, "the tail of the first signal");
  expect_frame(h, 180 * ms, 15 * ms, TRUE, "the first output of the next signal");
  gst_harness_push_event(h, gst_event_new_eos());
  expect_frame(h, 195 * ms, 15 * ms, FALSE, "its tail, from the frame's duration");
  harness_done(h);
}
GST_END_TEST;

/* A stream whose first buffer has no PTS is timed from the first buffer
 * that has one. */
GST_START_TEST(test_first_buffer_without_pts) {
  GRand *rand = g_rand_new_with_seed(3);
  const gint64 len = 300;
  float *x = random_planar(rand, 1, len);
  GstHarness *h = harness_new("convtranspose1d", model_mono, -1, NULL);
  harness_set_audio_caps(h, 1, 48000, TRUE);
  const GstClockTime base = GST_SECOND;
  GstBuffer *first = audio_buffer_full(x, len, 1, 0, 100, 48000, base, TRUE);
  GST_BUFFER_PTS(first) = GST_BUFFER_DURATION(first) = GST_CLOCK_TIME_NONE;
  gst_harness_push(h, first);
  gint64 out_steps = 0;
  GstBuffer *out;
  while ((out = gst_harness_try_pull(h))) {
    out_steps += (gint64)(gst_buffer_get_size(out) / sizeof(float));
    gst_buffer_unref(out);
  }
  for (gint64 pos = 100; pos < len; pos += 100)
    gst_harness_push(h, audio_buffer_full(x, len, 1, pos, 100, 48000, base, TRUE));
  gst_harness_push_event(h, gst_event_new_eos());
  int timed = 0;
  while ((out = gst_harness_try_pull(h))) {
    const GstClockTime pts = base + gst_util_uint64_scale(out_steps, GST_SECOND, 96000);
    out_steps += (gint64)(gst_buffer_get_size(out) / sizeof(float));
    const GstClockTime end = base + gst_util_uint64_scale(out_steps, GST_SECOND, 96000);
    fail_unless(GST_BUFFER_PTS(out) == pts && GST_BUFFER_DURATION(out) == end - pts,
                "output at step %" G_GINT64_FORMAT ": PTS %" GST_TIME_FORMAT
                ", expected %" GST_TIME_FORMAT,
                out_steps, GST_TIME_ARGS(GST_BUFFER_PTS(out)), GST_TIME_ARGS(pts));
    timed++;
    gst_buffer_unref(out);
  }
  fail_unless(timed >= 2 && out_steps == output_length(model_mono, len));
  g_free(x);
  g_rand_free(rand);
  harness_done(h);
}
GST_END_TEST;

/* ---- queries and seeks in samples -----------------------------------------------------
 */

typedef struct {
  GstClockTime first_pts;
} SeekLog;

static GstPadProbeReturn first_pts(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
  SeekLog *log = data;
  if (!GST_CLOCK_TIME_IS_VALID(log->first_pts))
    log->first_pts = GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info));
  return GST_PAD_PROBE_OK;
}

/* 3 s at 22.05 kHz through a 2x model: 132300 output samples; a seek to
 * output sample 44100 lands at 1 s. */
GST_START_TEST(test_default_format_in_output_samples) {
  gchar *wav = tmp_path("three-seconds.wav");
  SF_INFO info = {
      .samplerate = 22050, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
  SNDFILE *f = sf_open(wav, SFM_WRITE, &info);
  fail_unless(f != NULL);
  float *samples = g_new(float, 3 * 22050);
  for (int i = 0; i < 3 * 22050; i++)
    samples[i] = 0.5f * sinf(0.05f * (float)i);
  sf_writef_float(f, samples, 3 * 22050);
  sf_close(f);
  g_free(samples);
  gchar *desc =
      g_strdup_printf("filesrc location=%s ! wavparse ! convtranspose1d name=ct "
                      "model=%s ! fakesink sync=false",
                      wav, model_mono);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  g_free(desc);
  g_free(wav);
  fail_unless(pipeline != NULL);
  GstElement *ct = gst_bin_get_by_name(GST_BIN(pipeline), "ct");
  GstPad *src = gst_element_get_static_pad(ct, "src");
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  fail_unless(gst_element_get_state(pipeline, NULL, NULL, 10 * GST_SECOND) ==
              GST_STATE_CHANGE_SUCCESS);
  gint64 value = 0;
  fail_unless(gst_pad_query_duration(src, GST_FORMAT_DEFAULT, &value));
  fail_unless(value == output_length(model_mono, 3 * 22050),
              "duration %" G_GINT64_FORMAT " output samples", value);
  fail_unless(
      gst_pad_query_convert(src, GST_FORMAT_DEFAULT, 44100, GST_FORMAT_TIME, &value));
  fail_unless(value == (gint64)GST_SECOND,
              "44100 output samples are %" G_GINT64_FORMAT " ns", value);
  SeekLog log = {GST_CLOCK_TIME_NONE};
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, first_pts, &log, NULL);
  fail_unless(gst_element_seek_simple(
      pipeline, GST_FORMAT_DEFAULT, GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE, 44100));
  fail_unless(gst_element_get_state(pipeline, NULL, NULL, 10 * GST_SECOND) ==
              GST_STATE_CHANGE_SUCCESS);
  fail_unless(log.first_pts == GST_SECOND,
              "the seek to output sample 44100 lands at %" GST_TIME_FORMAT,
              GST_TIME_ARGS(log.first_pts));
  fail_unless(gst_pad_query_position(src, GST_FORMAT_DEFAULT, &value));
  fail_unless(value > 44100 - 1000 && value < 44100 + 2 * 22050,
              "position %" G_GINT64_FORMAT " output samples", value);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(ct);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* ---- caps that cannot work, and caps that can -------------------------------------- */

static void expect_caps_error(const gchar *factory, const gchar *model, const gchar *caps,
                              const gchar *needle) {
  GstBus *bus;
  GstHarness *h = harness_new(factory, model, -1, &bus);
  gst_harness_set_src_caps_str(h, caps);
  gchar *text = pop_message_text(bus, GST_MESSAGE_ERROR);
  fail_unless(text != NULL, "%s: an error for %s", factory, caps);
  fail_unless(strstr(text, needle) != NULL, "\"%s\" does not say \"%s\"", text, needle);
  fail_unless(strstr(text, model) != NULL, "\"%s\" does not name the model", text);
  g_free(text);
  harness_done(h);
}

GST_START_TEST(test_overflowing_rates_explained) {
  expect_caps_error("convtranspose1d", model_mono,
                    "audio/x-raw,format=F32LE,rate=2000000000,channels=1,"
                    "layout=interleaved",
                    "over the largest rate");
  expect_caps_error("convtranspose3d", model_t2x,
                    "video/x-raw,format=GRAY8,width=4,height=2,framerate=2000000000/1",
                    "over the largest frame rate");
}
GST_END_TEST;

GST_START_TEST(test_interlaced_refused) {
  expect_caps_error("convtranspose2d", model_gray2d,
                    "video/x-raw,format=GRAY8,width=8,height=4,framerate=25/1,"
                    "interlace-mode=interleaved",
                    "interlaced");
  expect_caps_error("convtranspose3d", model_t2x,
                    "video/x-raw,format=GRAY8,width=8,height=4,framerate=25/1,"
                    "interlace-mode=mixed",
                    "interlaced");
}
GST_END_TEST;

/* Launches `desc` (whose convtranspose element is named ct) and prerolls
 * it; the caps ct's source pad negotiated, or NULL. */
static GstCaps *prerolled_caps(const gchar *desc, GstElement **pipeline) {
  *pipeline = gst_parse_launch(desc, NULL);
  fail_unless(*pipeline != NULL, "%s", desc);
  gst_element_set_state(*pipeline, GST_STATE_PAUSED);
  gst_element_get_state(*pipeline, NULL, NULL, 10 * GST_SECOND);
  GstElement *ct = gst_bin_get_by_name(GST_BIN(*pipeline), "ct");
  GstPad *src = gst_element_get_static_pad(ct, "src");
  GstCaps *caps = gst_pad_get_current_caps(src);
  gst_object_unref(src);
  gst_object_unref(ct);
  return caps;
}

/* 1 -> 3 channels: positioned as GStreamer's default 3-channel layout, so
 * audioconvert can mix them down to stereo. */
GST_START_TEST(test_new_channels_positioned) {
  gchar *desc = g_strdup_printf(
      "audiotestsrc num-buffers=10 ! audio/x-raw,format=F32LE,channels=1,rate=48000 ! "
      "convtranspose1d name=ct model=%s ! audioconvert ! audio/x-raw,channels=2 ! "
      "fakesink sync=false",
      model_up3);
  GstElement *pipeline;
  GstCaps *caps = prerolled_caps(desc, &pipeline);
  g_free(desc);
  fail_unless(caps != NULL, "negotiated");
  guint64 mask = 0;
  fail_unless(gst_structure_get(gst_caps_get_structure(caps, 0), "channel-mask",
                                GST_TYPE_BITMASK, &mask, NULL));
  fail_unless(mask == gst_audio_channel_get_fallback_mask(3),
              "channel-mask 0x%" G_GINT64_MODIFIER "x", mask);
  gst_caps_unref(caps);
  gchar *error = run_to_end(pipeline, 30);
  fail_unless(error == NULL, "%s", error);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* RGB in, RGB out through videoconvert (which lists planar GBR first). */
GST_START_TEST(test_input_format_kept) {
  const gchar *formats[] = {"RGB", "BGRx", "xBGR", "RGBA"};
  for (guint i = 0; i < G_N_ELEMENTS(formats); i++) {
    gboolean alpha = strchr(formats[i], 'A') != NULL;
    gchar *model = alpha ? tmp_path("rgba2d.safetensors") : g_strdup(model_rgb2d);
    if (alpha) {
      float w[4 * 4 * 4] = {0};
      const int64_t k2[2] = {2, 2};
      for (int c = 0; c < 4; c++)
        for (int t = 0; t < 4; t++)
          w[(c * 4 + c) * 4 + t] = 1.0f;
      st_write_layer(model, 2, 4, 4, k2, w, 4, NULL, "\"stride\":\"2\"");
    }
    gchar *desc = g_strdup_printf(
        "videotestsrc num-buffers=1 ! video/x-raw,format=%s,width=16,height=8 ! "
        "convtranspose2d name=ct model=%s ! videoconvert ! fakesink",
        formats[i], model);
    GstElement *pipeline;
    GstCaps *caps = prerolled_caps(desc, &pipeline);
    g_free(desc);
    g_free(model);
    fail_unless(caps != NULL);
    const gchar *out =
        gst_structure_get_string(gst_caps_get_structure(caps, 0), "format");
    fail_unless(g_strcmp0(out, formats[i]) == 0, "%s in, %s out", formats[i], out);
    gst_caps_unref(caps);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
  }
}
GST_END_TEST;

/* ---- model files ------------------------------------------------------------------ */

/* A weight-normalised layer of a checkpoint (ups.0.weight_g, ups.0.weight_v)
 * runs as the folded layer the loader makes of it. */
GST_START_TEST(test_weight_norm_checkpoint_runs) {
  const gchar *dir = g_getenv("CT_GOLDEN_DIR");
  fail_unless(dir != NULL, "CT_GOLDEN_DIR is set by meson");
  gchar *path = g_build_filename(dir, "weight_norm", "hifigan_dim0_1d.safetensors", NULL);
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, "ups.0", NULL, &error);
  fail_unless(layer != NULL, "%s", error ? error->message : "");
  const ct_params *p = ct_layer_params(layer);
  const int cin = (int)p->in_channels, cout = (int)p->out_channels;
  GRand *rand = g_rand_new_with_seed(4);
  const gint64 len = 200;
  float *x = random_planar(rand, cin, len);
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  fail_unless(ct_output_shape(p, shape, out_shape, NULL, 0) == CT_OK);
  float *ref = g_new(float, cout *out_shape[0]);
  fail_unless(ct_forward(layer, shape, x, ref, NULL, 0) == CT_OK);
  GstElement *e = gst_element_factory_make("convtranspose1d", NULL);
  g_object_set(e, "model", path, "layer", "ups.0", NULL);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gchar *caps = g_strdup_printf("audio/x-raw,format=F32LE,rate=16000,channels=%d,"
                                "layout=interleaved,channel-mask=(bitmask)0",
                                cin);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  gst_harness_push(h, audio_buffer(x, len, cin, 0, len, 16000));
  gst_harness_push_event(h, gst_event_new_eos());
  float *got = g_new0(float, cout *out_shape[0]);
  gint64 have = collect_audio(h, got, out_shape[0], cout, 0);
  fail_unless(have == out_shape[0], "%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " steps",
              have, out_shape[0]);
  for (gint64 i = 0; i < cout * out_shape[0]; i++)
    fail_unless(got[i] == ref[i],
                "the element runs the folded layer: value %" G_GINT64_FORMAT
                " is %g, one-shot %g",
                i, got[i], ref[i]);
  gst_harness_teardown(h);
  ct_layer_free(layer);
  g_free(got);
  g_free(ref);
  g_free(x);
  g_rand_free(rand);
  g_free(path);
}
GST_END_TEST;

/* A metadata key that is not a hyper-parameter is named in a warning. */
GST_START_TEST(test_unknown_metadata_key_warns) {
  gchar *path = tmp_path("typo.safetensors");
  float w[4] = {0.25f, 0.5f, 0.5f, 0.25f};
  const int64_t k4 = 4;
  st_write_layer(path, 1, 1, 1, &k4, w, 1, NULL, "\"strides\":\"2\",\"format\":\"pt\"");
  GstBus *bus;
  GstHarness *h = harness_new("convtranspose1d", path, -1, &bus);
  gchar *text = pop_message_text(bus, GST_MESSAGE_WARNING);
  fail_unless(text != NULL, "a warning on the bus");
  fail_unless(strstr(text, "strides") && strstr(text, path), "warning: %s", text);
  g_free(text);
  text = pop_message_text(bus, GST_MESSAGE_WARNING);
  fail_unless(text == NULL, "one warning only (format is quiet): %s", text);
  harness_done(h);
  g_free(path);
}
GST_END_TEST;

/* ---- gst-inspect ------------------------------------------------------------------ */

GST_START_TEST(test_inspect_metadata) {
  const struct {
    const gchar *name, *klass;
  } elements[] = {{"convtranspose1d", "Filter/Converter/Audio"},
                  {"convtranspose2d", "Filter/Converter/Video/Scaler"},
                  {"convtranspose3d", "Filter/Converter/Video/Scaler"}};
  for (guint i = 0; i < G_N_ELEMENTS(elements); i++) {
    GstElementFactory *f = gst_element_factory_find(elements[i].name);
    fail_unless(f != NULL);
    const gchar *klass = gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS);
    fail_unless(g_strcmp0(klass, elements[i].klass) == 0, "%s: klass %s",
                elements[i].name, klass);
    const gchar *doc = gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_DOC_URI);
    fail_unless(
        doc && (g_str_has_prefix(doc, "file://") || g_str_has_prefix(doc, "https://")),
        "%s: documentation %s", elements[i].name, doc);
    gst_object_unref(f);
  }
  GstPlugin *plugin = gst_registry_find_plugin(gst_registry_get(), "convtranspose");
  fail_unless(plugin != NULL);
  const gchar *origin = gst_plugin_get_origin(plugin);
  fail_unless(g_str_has_prefix(origin, "file://") || g_str_has_prefix(origin, "https://"),
              "origin %s is a URL", origin);
  gst_object_unref(plugin);
}
GST_END_TEST;

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  make_models();
  TCase *tc = element_tcase(300);
  tcase_add_test(tc, test_segment_drains);
  tcase_add_test(tc, test_concat_is_gapless);
  tcase_add_test(tc, test_gap_after_tail);
  tcase_add_test(tc, test_variable_frame_rate);
  tcase_add_test(tc, test_first_buffer_without_pts);
  tcase_add_test(tc, test_default_format_in_output_samples);
  tcase_add_test(tc, test_overflowing_rates_explained);
  tcase_add_test(tc, test_interlaced_refused);
  tcase_add_test(tc, test_new_channels_positioned);
  tcase_add_test(tc, test_input_format_kept);
  tcase_add_test(tc, test_weight_norm_checkpoint_runs);
  tcase_add_test(tc, test_unknown_metadata_key_warns);
  tcase_add_test(tc, test_inspect_metadata);
  return run_element_tests("events", tc, __FILE__);
}
