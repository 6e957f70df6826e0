/* Stress, bounded so it runs in the suite: an hour of audio at full speed in
 * constant memory with exact timestamps; a long 3d video stream broken by
 * flushes, discontinuities and caps changes; 32 elements streaming in
 * parallel; and the model swapped 100 times from another thread while
 * buffers flow. Leak-checked like the element tests.
 *
 * CT_TEST_QUICK=1 shortens the hour to a minute and the video stream to
 * 300 frames (for valgrind, tools/valgrind.sh). */
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/elements/leak-check.h"
#include "kernels/stream.h"
#include "model-writer.h"
#include "model/model.h"

#if defined(__SANITIZE_ADDRESS__)
#define CT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CT_ASAN 1
#endif
#endif
#ifdef CT_ASAN
/* Bytes the program has allocated and not freed: RSS under ASan also holds
 * its quarantine of freed blocks (up to 256 MB), which is not a leak. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

static gchar *tmp_dir;
/* up2: 1 -> 1 k4 s2 p1 (the hour); stereo: 2 -> 2 k5 s3 p2 op1, bias;
 * video3d: GRAY8 1 -> 1 k(3,2,2) s(2,1,1) p(1,0,0), bias; rgb2d: 3 -> 3
 * k(2,2) s(2,2); swap_models[i]: 1 -> 1 k3 s2 p1 with zero weights and bias
 * i + 1, so every output value names its model (0 runs first, 1..50 are
 * swapped in). */
static gchar *up2, *stereo, *video3d, *rgb2d;
#define N_SWAP_MODELS 51
static gchar *swap_models[N_SWAP_MODELS];
static gboolean quick;

static gchar *tmp_path(const gchar *name) {
  return g_build_filename(tmp_dir, name, NULL);
}

static void make_models(void) {
  GRand *rand = g_rand_new_with_seed(41);
  float w[3 * 3 * 12], bias[3];
  for (guint i = 0; i < G_N_ELEMENTS(w); i++)
    w[i] = (float)g_rand_double_range(rand, -0.5, 0.5);
  for (guint i = 0; i < G_N_ELEMENTS(bias); i++)
    bias[i] = (float)g_rand_double_range(rand, 0, 0.5);
  tmp_dir = g_dir_make_tmp("ct-stress-XXXXXX", NULL);
  up2 = tmp_path("up2.safetensors");
  stereo = tmp_path("stereo.safetensors");
  video3d = tmp_path("video3d.safetensors");
  rgb2d = tmp_path("rgb2d.safetensors");
  int64_t k4 = 4, k5 = 5, k3 = 3, k322[3] = {3, 2, 2}, k22[2] = {2, 2};
  write_test_model(up2, 1, 1, 1, &k4, w, 1, NULL, "\"stride\":\"2\",\"padding\":\"1\"");
  write_test_model(stereo, 1, 2, 2, &k5, w, 2, bias,
                   "\"stride\":\"3\",\"padding\":\"2\",\"output_padding\":\"1\"");
  write_test_model(video3d, 3, 1, 1, k322, w, 1, bias,
                   "\"stride\":\"[2,1,1]\",\"padding\":\"[1,0,0]\"");
  write_test_model(rgb2d, 2, 3, 3, k22, w, 3, bias, "\"stride\":\"2\"");
  const float zeros[3] = {0};
  for (int i = 0; i < N_SWAP_MODELS; i++) {
    gchar *name = g_strdup_printf("swap-%02d.safetensors", i);
    swap_models[i] = tmp_path(name);
    g_free(name);
    const float value = (float)(i + 1);
    write_test_model(swap_models[i], 1, 1, 1, &k3, zeros, 1, &value,
                     "\"stride\":\"2\",\"padding\":\"1\"");
  }
  g_rand_free(rand);
}

static void remove_models(void) {
  GDir *dir = g_dir_open(tmp_dir, 0, NULL);
  const gchar *name;
  while (dir && (name = g_dir_read_name(dir))) {
    gchar *path = tmp_path(name);
    if (g_file_test(path, G_FILE_TEST_IS_DIR))
      g_rmdir(path);
    else
      g_unlink(path);
    g_free(path);
  }
  if (dir)
    g_dir_close(dir);
  g_rmdir(tmp_dir);
  g_free(tmp_dir);
  g_free(up2);
  g_free(stereo);
  g_free(video3d);
  g_free(rgb2d);
  for (int i = 0; i < N_SWAP_MODELS; i++)
    g_free(swap_models[i]);
}

static ct_layer *load_layer(const gchar *path) {
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, NULL, NULL, &error);
  fail_unless(layer != NULL, "loading %s: %s", path, error ? error->message : "");
  return layer;
}

static GstHarness *harness_for(const gchar *factory, const gchar *model, guint threads) {
  GstElement *e = gst_element_factory_make(factory, NULL);
  g_object_set(e, "model", model, "n-threads", threads, NULL);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  return h;
}

static gsize rss_bytes(void) {
  unsigned long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (gsize)resident * (gsize)sysconf(_SC_PAGESIZE);
}

/* ---- an hour of audio ----------------------------------------------------------- */

/* Mono at 8 kHz (28.8 million samples) through a 2x upsampler in buffers of
 * random sizes, pushed as fast as the element takes them. Memory is read at
 * 10% and at the end: it must not grow with the stream. Every output buffer's
 * PTS, DURATION and OFFSET come from the sample counter, and the last one
 * ends exactly an hour after the first starts. */
GST_START_TEST(test_hour_constant_memory) {
  const int rate = 8000;
  const gint64 len = (gint64)rate * (quick ? 60 : 3600);
  const GstClockTime base = 7 * GST_SECOND + 3; /* off the sample grid */
  GstHarness *h = harness_for("convtranspose1d", up2, 0);
  gst_harness_set_src_caps_str(h, "audio/x-raw,format=F32LE,rate=8000,channels=1,"
                                  "layout=interleaved");
  GRand *rand = g_rand_new_with_seed(43);
  enum { MAX_BUF = 4096 };
  float *block = g_new(float, MAX_BUF);
  for (int i = 0; i < MAX_BUF; i++)
    block[i] = (float)g_rand_double_range(rand, -1, 1);
  const guint64 offset0 = gst_util_uint64_scale_round(base, 2 * rate, GST_SECOND);
  guint64 in_pos = 0, out_pos = 0, buffers = 0;
  gsize rss_10 = 0, heap_10 = 0;
  GstClockTime last_end = GST_CLOCK_TIME_NONE;
  gint64 t0 = g_get_monotonic_time();
  while ((gint64)in_pos < len) {
    gint64 n = g_rand_int_range(rand, 0, MAX_BUF + 1);
    n = MIN(n, len - (gint64)in_pos);
    GstBuffer *buf = gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY, block,
                                                 MAX_BUF * sizeof(float), 0,
                                                 (gsize)n * sizeof(float), NULL, NULL);
    GST_BUFFER_PTS(buf) = base + gst_util_uint64_scale(in_pos, GST_SECOND, rate);
    fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
    in_pos += (guint64)n;
    if ((gint64)in_pos == len)
      gst_harness_push_event(h, gst_event_new_eos());
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      guint64 k = gst_buffer_get_size(out) / sizeof(float);
      GstClockTime pts = base + gst_util_uint64_scale(out_pos, GST_SECOND, 2 * rate);
      GstClockTime end = base + gst_util_uint64_scale(out_pos + k, GST_SECOND, 2 * rate);
      fail_unless(GST_BUFFER_PTS(out) == pts && GST_BUFFER_DURATION(out) == end - pts,
                  "output buffer at sample %" G_GUINT64_FORMAT
                  " is stamped %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT,
                  out_pos, GST_TIME_ARGS(GST_BUFFER_PTS(out)),
                  GST_TIME_ARGS(GST_BUFFER_DURATION(out)));
      fail_unless(GST_BUFFER_OFFSET(out) == offset0 + out_pos &&
                  GST_BUFFER_OFFSET_END(out) == offset0 + out_pos + k);
      out_pos += k;
      last_end = end;
      buffers++;
      gst_buffer_unref(out);
    }
    if (rss_10 == 0 && (gint64)in_pos >= len / 10) {
      rss_10 = rss_bytes();
#ifdef CT_ASAN
      heap_10 = __sanitizer_get_current_allocated_bytes();
#endif
    }
  }
  gsize rss_end = rss_bytes(), heap_end = 0;
#ifdef CT_ASAN
  heap_end = __sanitizer_get_current_allocated_bytes();
#endif
  double seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
  g_print("# hour: %" G_GINT64_FORMAT " samples in %" G_GUINT64_FORMAT
          " buffers, %.1f s wall (%.0fx real time); RSS %.1f MB at 10%%, %.1f MB at "
          "100%%; heap %.1f -> %.1f MB\n",
          len, buffers, seconds, (double)len / rate / seconds, rss_10 / 1048576.0,
          rss_end / 1048576.0, heap_10 / 1048576.0, heap_end / 1048576.0);
  fail_unless(out_pos == 2 * (guint64)len, "%" G_GUINT64_FORMAT " samples out", out_pos);
  fail_unless(last_end == base + (GstClockTime)(len / rate) * GST_SECOND,
              "the last output ends exactly %" G_GINT64_FORMAT
              " s after the first starts",
              len / rate);
#ifdef CT_ASAN
  fail_unless(heap_end <= heap_10 + (1 << 20),
              "live heap grew from %" G_GSIZE_FORMAT " to %" G_GSIZE_FORMAT " bytes",
              heap_10, heap_end);
#else
  fail_unless(rss_end <= rss_10 + (8 << 20),
              "RSS grew from %" G_GSIZE_FORMAT " to %" G_GSIZE_FORMAT " bytes", rss_10,
              rss_end);
#endif
  g_free(block);
  g_rand_free(rand);
  gst_harness_teardown(h);
}
GST_END_TEST;

/* ---- a long 3d video stream with events ------------------------------------------- */

typedef struct {
  int width, height, fps_n, fps_d;
} VideoFormat;

/* The model of what the element must do: the current signal's input frames
 * (for its one-shot output), what it has emitted, and its clock. */
typedef struct {
  const ct_params *p;
  const ct_layer *layer;
  VideoFormat fmt;
  GArray *frames; /* floats of the signal's input frames */
  gint64 n_in, n_out;
  GstClockTime base_pts;
  gboolean discont_due;   /* first output must carry DISCONT */
  gboolean discont_may;   /* first output may carry DISCONT (after a flush) */
  guint8 *expected;       /* quantised one-shot output of the signal so far */
  gint64 expected_frames; /* frames in `expected` */
  int out_w, out_h;       /* output frame size of the signal */
  guint64 outputs, signals, flushes, disconts, caps_changes;
} VideoModel;

/* One-shot output of the signal's frames, quantised as the element does. */
static void compute_expected(VideoModel *m) {
  g_free(m->expected);
  m->expected = NULL;
  m->expected_frames = 0;
  if (m->n_in == 0)
    return;
  int64_t shape[CT_MAX_RANK] = {m->n_in, m->fmt.height, m->fmt.width};
  int64_t out_shape[CT_MAX_RANK];
  fail_unless(ct_output_shape(m->p, shape, out_shape, NULL, 0) == CT_OK);
  gsize n = (gsize)(out_shape[0] * out_shape[1] * out_shape[2]);
  float *out = g_new(float, n);
  fail_unless(ct_forward(m->layer, shape, (const float *)m->frames->data, out, NULL, 0) ==
              CT_OK);
  m->expected = g_new(guint8, n);
  for (gsize i = 0; i < n; i++) {
    float v = out[i];
    v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
    m->expected[i] = (guint8)(guint)(v * 255.0f + 0.5f);
  }
  m->expected_frames = out_shape[0];
  m->out_h = (int)out_shape[1];
  m->out_w = (int)out_shape[2];
  g_free(out);
}

static void start_signal(VideoModel *m, GstClockTime pts) {
  g_array_set_size(m->frames, 0);
  m->n_in = m->n_out = 0;
  m->base_pts = pts;
  m->signals++;
}

/* Checks the next output frame against the model. The harness's caps may
 * already be the next signal's (a drain on new caps), so sizes come from the
 * model. */
static void check_output(VideoModel *m, GstBuffer *out) {
  const int s = (int)m->p->stride[0];
  GstClockTime pts =
      m->base_pts + gst_util_uint64_scale((guint64)m->n_out, GST_SECOND * m->fmt.fps_d,
                                          (guint64)m->fmt.fps_n * s);
  GstClockTime end = m->base_pts + gst_util_uint64_scale((guint64)m->n_out + 1,
                                                         GST_SECOND * m->fmt.fps_d,
                                                         (guint64)m->fmt.fps_n * s);
  fail_unless(GST_BUFFER_PTS(out) == pts && GST_BUFFER_DURATION(out) == end - pts,
              "signal %" G_GUINT64_FORMAT " output %" G_GINT64_FORMAT
              ": stamped %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT,
              m->signals, m->n_out, GST_TIME_ARGS(GST_BUFFER_PTS(out)),
              GST_TIME_ARGS(pts));
  if (m->n_out == 0 && m->discont_due)
    fail_unless(GST_BUFFER_IS_DISCONT(out), "the first output after a discontinuity is "
                                            "DISCONT");
  if (m->n_out > 0 || (!m->discont_due && !m->discont_may))
    fail_unless(!GST_BUFFER_IS_DISCONT(out), "output %" G_GINT64_FORMAT " is not DISCONT",
                m->n_out);
  if (m->n_out == 0)
    m->discont_due = m->discont_may = FALSE;
  fail_unless(m->n_out < m->expected_frames, "more output frames than the formula gives");
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_GRAY8, m->out_w, m->out_h);
  fail_unless(gst_buffer_get_size(out) == GST_VIDEO_INFO_SIZE(&info),
              "an output frame of %" G_GSIZE_FORMAT " bytes, expected %dx%d",
              gst_buffer_get_size(out), m->out_w, m->out_h);
  GstMapInfo map;
  gst_buffer_map(out, &map, GST_MAP_READ);
  const gsize plane = (gsize)m->out_w * (gsize)m->out_h;
  const guint8 *want = m->expected + (gsize)m->n_out * plane;
  for (int y = 0; y < m->out_h; y++)
    fail_unless(memcmp(map.data + (gsize)y * GST_VIDEO_INFO_PLANE_STRIDE(&info, 0),
                       want + (gsize)y * m->out_w, (gsize)m->out_w) == 0,
                "signal %" G_GUINT64_FORMAT " output frame %" G_GINT64_FORMAT
                " row %d differs from the one-shot output",
                m->signals, m->n_out, y);
  gst_buffer_unmap(out, &map);
  m->n_out++;
  m->outputs++;
}

/* The output caps of a signal that has produced output. */
static void check_caps(VideoModel *m, GstHarness *h) {
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  GstVideoInfo info;
  fail_unless(gst_video_info_from_caps(&info, caps));
  gst_caps_unref(caps);
  fail_unless(GST_VIDEO_INFO_WIDTH(&info) == m->out_w &&
                  GST_VIDEO_INFO_HEIGHT(&info) == m->out_h,
              "output caps %dx%d, expected %dx%d", GST_VIDEO_INFO_WIDTH(&info),
              GST_VIDEO_INFO_HEIGHT(&info), m->out_w, m->out_h);
  fail_unless((gint64)GST_VIDEO_INFO_FPS_N(&info) * m->fmt.fps_d ==
                  (gint64)m->fmt.fps_n * m->p->stride[0] * GST_VIDEO_INFO_FPS_D(&info),
              "output frame rate %d/%d is the input's %d/%d x %d",
              GST_VIDEO_INFO_FPS_N(&info), GST_VIDEO_INFO_FPS_D(&info), m->fmt.fps_n,
              m->fmt.fps_d, (int)m->p->stride[0]);
}

/* Pulls `count` frames, all of the current signal. */
static void expect_outputs(VideoModel *m, GstHarness *h, gint64 count) {
  for (gint64 i = 0; i < count; i++) {
    GstBuffer *out = gst_harness_try_pull(h);
    fail_unless(out != NULL,
                "signal %" G_GUINT64_FORMAT ": output %" G_GINT64_FORMAT " is missing",
                m->signals, m->n_out);
    check_output(m, out);
    gst_buffer_unref(out);
  }
}

/* The element drained: what remains of the one-shot output comes out now. */
static void expect_drain(VideoModel *m, GstHarness *h) {
  if (m->n_in == 0)
    return;
  expect_outputs(m, h, m->expected_frames - m->n_out);
}

static GstBuffer *video_frame(const VideoFormat *f, GRand *rand, GArray *planar,
                              GstClockTime pts) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_GRAY8, f->width, f->height);
  GstBuffer *buf = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&info), NULL);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  memset(map.data, 0, map.size);
  for (int y = 0; y < f->height; y++)
    for (int x = 0; x < f->width; x++) {
      guint8 v = (guint8)g_rand_int_range(rand, 0, 256);
      map.data[y * GST_VIDEO_INFO_PLANE_STRIDE(&info, 0) + x] = v;
      float fv = (float)v / 255.0f;
      g_array_append_val(planar, fv);
    }
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(GST_SECOND, f->fps_d, f->fps_n);
  return buf;
}

static void set_video_caps(GstHarness *h, const VideoFormat *f) {
  gchar *caps = g_strdup_printf("video/x-raw,format=GRAY8,width=%d,height=%d,"
                                "framerate=%d/%d",
                                f->width, f->height, f->fps_n, f->fps_d);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
}

GST_START_TEST(test_video_events) {
  static const VideoFormat formats[] = {
      {8, 6, 30, 1}, {12, 4, 25, 1}, {4, 4, 30000, 1001}, {9, 7, 24, 1}, {16, 2, 60, 1}};
  const int total = quick ? 300 : 1200;
  GRand *rand = g_rand_new_with_seed(47);
  ct_layer *layer = load_layer(video3d);
  VideoModel m = {.p = ct_layer_params(layer),
                  .layer = layer,
                  .frames = g_array_new(FALSE, FALSE, sizeof(float))};
  GstHarness *h = harness_for("convtranspose3d", video3d, 0);
  m.fmt = formats[0];
  set_video_caps(h, &m.fmt);
  GstClockTime next_pts = 0;
  gboolean started = FALSE;
  const gint64 t0 = g_get_monotonic_time();
  for (int i = 0; i < total; i++) {
    int event = g_rand_int_range(rand, 0, 100);
    if (event < 2 && started) {
      /* Flush: what is pending is dropped, nothing more of this signal. */
      gst_harness_push_event(h, gst_event_new_flush_start());
      gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
      GstSegment segment;
      gst_segment_init(&segment, GST_FORMAT_TIME);
      gst_harness_push_event(h, gst_event_new_segment(&segment));
      fail_unless(gst_harness_try_pull(h) == NULL, "nothing comes out of a flush");
      started = FALSE;
      m.discont_may = TRUE;
      m.flushes++;
    } else if (event < 4 && started) {
      /* New caps: the old signal is drained under the old caps first, and
       * the new one starts flagged DISCONT. */
      VideoFormat f = formats[g_rand_int_range(rand, 0, G_N_ELEMENTS(formats))];
      if (f.width != m.fmt.width || f.height != m.fmt.height || f.fps_n != m.fmt.fps_n) {
        set_video_caps(h, &f);
        expect_drain(&m, h);
        m.fmt = f;
        started = FALSE;
        m.discont_due = TRUE;
        m.caps_changes++;
      }
    }
    GstBuffer *buf;
    gboolean discont = started && event >= 4 && event < 6;
    gboolean gap = started && event >= 6 && event < 7;
    if (gap)
      next_pts += GST_SECOND;
    if (!started || discont || gap) {
      /* A new signal: on a discontinuity the old one is drained first. */
      GArray *frames = g_array_new(FALSE, FALSE, sizeof(float));
      buf = video_frame(&m.fmt, rand, frames, next_pts);
      if (discont)
        GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
      fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
      if (started) {
        expect_drain(&m, h);
        m.discont_due = TRUE;
        m.disconts++;
      }
      start_signal(&m, next_pts);
      g_array_append_vals(m.frames, frames->data, frames->len);
      g_array_free(frames, TRUE);
      started = TRUE;
    } else {
      buf = video_frame(&m.fmt, rand, m.frames, next_pts);
      fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
    }
    m.n_in++;
    compute_expected(&m);
    expect_outputs(&m, h, ct_stream_emitted(m.p, m.n_in) - m.n_out);
    if (m.n_out > 0)
      check_caps(&m, h);
    fail_unless(gst_harness_try_pull(h) == NULL,
                "after %" G_GINT64_FORMAT " inputs exactly %" G_GINT64_FORMAT
                " outputs are out",
                m.n_in, ct_stream_emitted(m.p, m.n_in));
    next_pts += gst_util_uint64_scale(GST_SECOND, m.fmt.fps_d, m.fmt.fps_n);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  expect_drain(&m, h);
  fail_unless(gst_harness_try_pull(h) == NULL);
  g_print("# video: %d frames in, %" G_GUINT64_FORMAT " out in %" G_GUINT64_FORMAT
          " signals (%" G_GUINT64_FORMAT " flushes, %" G_GUINT64_FORMAT
          " discontinuities, %" G_GUINT64_FORMAT " caps changes), %.1f s\n",
          total, m.outputs, m.signals, m.flushes, m.disconts, m.caps_changes,
          (double)(g_get_monotonic_time() - t0) / 1e6);
  const guint64 least = quick ? 1 : 4;
  fail_unless(m.flushes >= least && m.disconts >= least && m.caps_changes >= least,
              "every kind of event happened");
  gst_harness_teardown(h);
  g_array_free(m.frames, TRUE);
  g_free(m.expected);
  ct_layer_free(layer);
  g_rand_free(rand);
}
GST_END_TEST;

/* ---- 32 elements in parallel ---------------------------------------------------------
 */

typedef struct {
  int index;
  const char *factory;
  const gchar *model;
  guint threads;
  GMutex *gate_lock;
  GCond *gate;
  gboolean *open;
  gchar *failure; /* NULL: exact output */
  guint64 outputs;
} ParallelJob;

static void fail_job(ParallelJob *job, const char *what) {
  if (!job->failure)
    job->failure = g_strdup_printf("element %d (%s): %s", job->index, job->factory, what);
}

/* An audio element: a random signal in random chunks, compared bitwise with
 * the one-shot output. Runs on its own thread, no check macros (they are not
 * thread-safe): failures are recorded in the job. */
static void run_audio_job(ParallelJob *job, GRand *rand) {
  ct_layer *layer = load_layer(job->model);
  const ct_params *p = ct_layer_params(layer);
  const int cin = (int)p->in_channels, cout = (int)p->out_channels;
  const gint64 len = 20000;
  float *x = g_new(float, cin *len);
  for (gint64 i = 0; i < cin * len; i++)
    x[i] = (float)g_rand_double_range(rand, -1, 1);
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  ct_output_shape(p, shape, out_shape, NULL, 0);
  const gint64 n_ref = out_shape[0];
  float *ref = g_new(float, cout *n_ref), *got = g_new0(float, cout *n_ref);
  ct_forward(layer, shape, x, ref, NULL, 0);
  GstHarness *h = harness_for(job->factory, job->model, job->threads);
  gchar *caps = g_strdup_printf("audio/x-raw,format=F32LE,rate=48000,channels=%d,"
                                "layout=interleaved",
                                cin);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  gint64 have = 0;
  for (gint64 pos = 0; pos <= len && !job->failure;) {
    gint64 n = g_rand_int_range(rand, 0, 500);
    n = MIN(n, len - pos);
    GstBuffer *buf =
        gst_buffer_new_allocate(NULL, (gsize)(n * cin) * sizeof(float), NULL);
    GstMapInfo map;
    gst_buffer_map(buf, &map, GST_MAP_WRITE);
    for (int c = 0; c < cin; c++)
      for (gint64 i = 0; i < n; i++)
        ((float *)map.data)[i * cin + c] = x[c * len + pos + i];
    gst_buffer_unmap(buf, &map);
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale(pos, GST_SECOND, 48000);
    if (gst_harness_push(h, buf) != GST_FLOW_OK)
      fail_job(job, "push failed");
    pos += n;
    if (pos == len) {
      gst_harness_push_event(h, gst_event_new_eos());
      pos++;
    }
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      gst_buffer_map(out, &map, GST_MAP_READ);
      gint64 k = (gint64)(map.size / sizeof(float)) / cout;
      if (have + k > n_ref) {
        fail_job(job, "more output than the formula gives");
        k = n_ref - have;
      }
      for (int c = 0; c < cout; c++)
        for (gint64 i = 0; i < k; i++)
          got[c * n_ref + have + i] = ((const float *)map.data)[i * cout + c];
      have += k;
      gst_buffer_unmap(out, &map);
      gst_buffer_unref(out);
      job->outputs++;
    }
  }
  if (have != n_ref)
    fail_job(job, "wrong output length");
  else if (memcmp(got, ref, sizeof(float) * cout * n_ref) != 0)
    fail_job(job, "output differs from the one-shot output");
  gst_harness_teardown(h);
  g_free(got);
  g_free(ref);
  g_free(x);
  ct_layer_free(layer);
}

/* A video element: RGB frames (2d) or GRAY8 frames (3d), compared with the
 * quantised one-shot output. */
static void run_video_job(ParallelJob *job, GRand *rand) {
  ct_layer *layer = load_layer(job->model);
  const ct_params *p = ct_layer_params(layer);
  const gboolean is3d = p->rank == 3;
  const int width = 10, height = 6, frames = 40, comps = (int)p->in_channels;
  GstVideoInfo info;
  gst_video_info_set_format(&info, is3d ? GST_VIDEO_FORMAT_GRAY8 : GST_VIDEO_FORMAT_RGB,
                            width, height);
  GstHarness *h = harness_for(job->factory, job->model, job->threads);
  gchar *caps = g_strdup_printf("video/x-raw,format=%s,width=%d,height=%d,framerate=30/1",
                                is3d ? "GRAY8" : "RGB", width, height);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  /* planar [C, T, H, W] of every frame */
  float *x = g_new(float, (gsize)comps *frames *height *width);
  GPtrArray *outs = g_ptr_array_new_with_free_func((GDestroyNotify)gst_buffer_unref);
  for (int t = 0; t < frames; t++) {
    GstBuffer *buf = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&info), NULL);
    GstMapInfo map;
    gst_buffer_map(buf, &map, GST_MAP_WRITE);
    for (int y = 0; y < height; y++)
      for (int xx = 0; xx < width; xx++)
        for (int c = 0; c < comps; c++) {
          guint8 v = (guint8)g_rand_int_range(rand, 0, 256);
          map.data[y * GST_VIDEO_INFO_PLANE_STRIDE(&info, 0) + xx * comps + c] = v;
          x[(((gsize)c * frames + t) * height + y) * width + xx] = (float)v / 255.0f;
        }
    gst_buffer_unmap(buf, &map);
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale(t, GST_SECOND, 30);
    if (gst_harness_push(h, buf) != GST_FLOW_OK)
      fail_job(job, "push failed");
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h)))
      g_ptr_array_add(outs, out);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  GstBuffer *out;
  while ((out = gst_harness_try_pull(h)))
    g_ptr_array_add(outs, out);
  GstCaps *out_caps = gst_pad_get_current_caps(h->sinkpad);
  GstVideoInfo oinfo;
  gst_video_info_from_caps(&oinfo, out_caps);
  gst_caps_unref(out_caps);
  const int ow = GST_VIDEO_INFO_WIDTH(&oinfo), oh = GST_VIDEO_INFO_HEIGHT(&oinfo);
  const int cout = (int)p->out_channels;
  /* 2d: each frame on its own; 3d: the whole stream at once. */
  gint64 n_expected = is3d ? 0 : frames;
  float *ref = NULL;
  if (is3d) {
    int64_t shape[CT_MAX_RANK] = {frames, height, width}, out_shape[CT_MAX_RANK];
    ct_output_shape(p, shape, out_shape, NULL, 0);
    n_expected = out_shape[0];
    ref = g_new(float, (gsize)cout *n_expected *oh *ow);
    ct_forward(layer, shape, x, ref, NULL, 0);
  } else {
    ref = g_new(float, (gsize)cout *frames *oh *ow);
    for (int t = 0; t < frames; t++) {
      float *in = g_new(float, (gsize)comps *height *width);
      for (int c = 0; c < comps; c++)
        memcpy(in + (gsize)c * height * width,
               x + ((gsize)c * frames + t) * height * width,
               sizeof(float) * height * width);
      int64_t shape[CT_MAX_RANK] = {height, width};
      float *o = g_new(float, (gsize)cout *oh *ow);
      ct_forward(layer, shape, in, o, NULL, 0);
      for (int c = 0; c < cout; c++)
        memcpy(ref + ((gsize)c * frames + t) * oh * ow, o + (gsize)c * oh * ow,
               sizeof(float) * oh * ow);
      g_free(o);
      g_free(in);
    }
  }
  if ((gint64)outs->len != n_expected)
    fail_job(job, "wrong number of output frames");
  for (guint t = 0; t < outs->len && !job->failure; t++) {
    GstVideoFrame vf;
    gst_video_frame_map(&vf, &oinfo, outs->pdata[t], GST_MAP_READ);
    for (int c = 0; c < cout; c++) {
      const guint8 *data = GST_VIDEO_FRAME_COMP_DATA(&vf, c);
      for (int y = 0; y < oh; y++)
        for (int xx = 0; xx < ow; xx++) {
          float v = ref[(((gsize)c * n_expected + t) * oh + y) * ow + xx];
          v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
          guint8 want = (guint8)(guint)(v * 255.0f + 0.5f);
          if (data[y * GST_VIDEO_FRAME_COMP_STRIDE(&vf, c) +
                   xx * GST_VIDEO_FRAME_COMP_PSTRIDE(&vf, c)] != want)
            fail_job(job, "a frame differs from the one-shot output");
        }
    }
    gst_video_frame_unmap(&vf);
  }
  job->outputs = outs->len;
  g_ptr_array_unref(outs);
  gst_harness_teardown(h);
  g_free(ref);
  g_free(x);
  ct_layer_free(layer);
}

static gpointer parallel_job(gpointer data) {
  ParallelJob *job = data;
  GRand *rand = g_rand_new_with_seed(1000 + job->index);
  g_mutex_lock(job->gate_lock);
  while (!*job->open)
    g_cond_wait(job->gate, job->gate_lock);
  g_mutex_unlock(job->gate_lock);
  if (g_str_equal(job->factory, "convtranspose1d"))
    run_audio_job(job, rand);
  else
    run_video_job(job, rand);
  g_rand_free(rand);
  return NULL;
}

GST_START_TEST(test_parallel_elements) {
  enum { N = 32 };
  ParallelJob jobs[N];
  GThread *threads[N];
  GMutex lock;
  GCond gate;
  gboolean open = FALSE;
  const gint64 t0 = g_get_monotonic_time();
  g_mutex_init(&lock);
  g_cond_init(&gate);
  for (int i = 0; i < N; i++) {
    /* 16 audio (two layers), 8 x 2d RGB, 8 x 3d GRAY8; 1, 2 or all threads. */
    const char *factory = i < 16   ? "convtranspose1d"
                          : i < 24 ? "convtranspose2d"
                                   : "convtranspose3d";
    const gchar *model = i < 16 ? (i % 2 ? stereo : up2) : i < 24 ? rgb2d : video3d;
    jobs[i] = (ParallelJob){.index = i,
                            .factory = factory,
                            .model = model,
                            .threads = (guint)(i % 3),
                            .gate_lock = &lock,
                            .gate = &gate,
                            .open = &open};
    threads[i] = g_thread_new("parallel", parallel_job, &jobs[i]);
  }
  g_mutex_lock(&lock);
  open = TRUE;
  g_cond_broadcast(&gate);
  g_mutex_unlock(&lock);
  guint64 outputs = 0;
  for (int i = 0; i < N; i++)
    g_thread_join(threads[i]);
  for (int i = 0; i < N; i++) {
    fail_unless(jobs[i].failure == NULL, "%s", jobs[i].failure);
    fail_unless(jobs[i].outputs > 0);
    outputs += jobs[i].outputs;
  }
  g_print("# parallel: %d elements, %" G_GUINT64_FORMAT
          " output buffers, all exact, %.1f s\n",
          N, outputs, (double)(g_get_monotonic_time() - t0) / 1e6);
  g_mutex_clear(&lock);
  g_cond_clear(&gate);
}
GST_END_TEST;

/* ---- the model swapped from another thread ---------------------------------------- */

typedef struct {
  GstElement *element;
  GPtrArray *bad; /* files that are not valid models for convtranspose1d */
  int last_valid; /* index of the last valid model set */
  gint done;
  gint pushed; /* buffers pushed by the streaming thread */
} Swapper;

static gpointer swap_thread(gpointer data) {
  Swapper *sw = data;
  GRand *rand = g_rand_new_with_seed(53);
  /* Bad, valid, bad, valid...: the last request is valid, so it must win. */
  for (int i = 0; i < 100; i++) {
    const gchar *path;
    if (i % 2 == 1) {
      sw->last_valid = i / 2 + 1;
      path = swap_models[i / 2 + 1];
    } else {
      path = sw->bad->pdata[(i / 2) % sw->bad->len];
    }
    g_object_set(sw->element, "model", path, NULL);
    /* Let 0 to 3 buffers through, and a little time, whatever the speed. */
    const gint target = g_atomic_int_get(&sw->pushed) + g_rand_int_range(rand, 0, 4);
    for (int wait = 0; wait < 20000 && g_atomic_int_get(&sw->pushed) < target; wait++)
      g_usleep(100);
    g_usleep((gulong)g_rand_int_range(rand, 0, 1000));
  }
  g_rand_free(rand);
  g_atomic_int_set(&sw->done, 1);
  return NULL;
}

static gpointer reader_thread(gpointer data) {
  Swapper *sw = data;
  while (!g_atomic_int_get(&sw->done)) {
    gchar *model = NULL;
    g_object_get(sw->element, "model", &model, NULL);
    g_free(model);
    g_usleep(100);
  }
  return NULL;
}

/* Every output buffer is wholly one model's (all its samples equal that
 * model's bias), models appear in the order they were set (a load overtaken
 * by a newer request never wins), and the stream ends on the last model set.
 * Bad files warn and keep the model running. */
GST_START_TEST(test_model_swap_storm) {
  Swapper sw = {.bad = g_ptr_array_new_with_free_func(g_free)};
  const char *garbage = "not a model at all";
  gchar *path = tmp_path("garbage.safetensors");
  g_file_set_contents(path, garbage, -1, NULL);
  g_ptr_array_add(sw.bad, path);
  path = tmp_path("truncated.safetensors");
  gchar *data;
  gsize size;
  g_file_get_contents(swap_models[0], &data, &size, NULL);
  g_file_set_contents(path, data, (gssize)size - 3, NULL);
  g_free(data);
  g_ptr_array_add(sw.bad, path);
  path = tmp_path("a-directory");
  g_mkdir(path, 0755);
  g_ptr_array_add(sw.bad, path);
  g_ptr_array_add(sw.bad, tmp_path("missing.safetensors"));
  g_ptr_array_add(sw.bad, g_strdup(rgb2d)); /* a 2d layer */
  /* Start from the first valid model, so every value is known. */
  GstHarness *h = harness_for("convtranspose1d", swap_models[0], 0);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gst_harness_set_src_caps_str(h, "audio/x-raw,format=F32LE,rate=16000,channels=1,"
                                  "layout=interleaved");
  sw.element = h->element;
  GRand *rand = g_rand_new_with_seed(59);
  float block[256];
  for (int i = 0; i < 256; i++)
    block[i] = (float)g_rand_double_range(rand, -1, 1);
  GThread *setter = NULL, *reader = NULL;
  int last_seen = 0, runs = 0;
  guint64 pos = 0, buffers = 0, samples = 0;
  GstClockTime last_end = 0;
  gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;
  gboolean settled = FALSE;
  const gint64 t0 = g_get_monotonic_time();
  while (!settled) {
    fail_unless(g_get_monotonic_time() < deadline, "the last model never took over");
    gint64 n = g_rand_int_range(rand, 1, 256);
    GstBuffer *buf = gst_buffer_new_allocate(NULL, (gsize)n * sizeof(float), NULL);
    gst_buffer_fill(buf, 0, block, (gsize)n * sizeof(float));
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale(pos, GST_SECOND, 16000);
    fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
    g_atomic_int_inc(&sw.pushed);
    pos += (guint64)n;
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      GstMapInfo map;
      gst_buffer_map(out, &map, GST_MAP_READ);
      const float *v = (const float *)map.data;
      const gsize k = map.size / sizeof(float);
      fail_unless(k > 0);
      for (gsize i = 1; i < k; i++)
        fail_unless(v[i] == v[0], "buffer %" G_GUINT64_FORMAT " mixes models: %g and %g",
                    buffers, v[0], v[i]);
      const int model = (int)v[0] - 1;
      fail_unless(v[0] == (float)(model + 1) && model >= 0 && model < N_SWAP_MODELS,
                  "value %g is no model's", v[0]);
      fail_unless(model >= last_seen, "model %d came back after model %d", model,
                  last_seen);
      runs += model != last_seen;
      last_seen = model;
      fail_unless(GST_BUFFER_PTS(out) >= last_end, "timestamps go forward");
      last_end = GST_BUFFER_PTS(out) + GST_BUFFER_DURATION(out);
      gst_buffer_unmap(out, &map);
      gst_buffer_unref(out);
      buffers++;
      samples += k;
    }
    if (!setter && buffers > 10) {
      setter = g_thread_new("setter", swap_thread, &sw);
      reader = g_thread_new("reader", reader_thread, &sw);
    }
    settled = setter && g_atomic_int_get(&sw.done) && last_seen == sw.last_valid;
  }
  g_thread_join(setter);
  g_thread_join(reader);
  guint warnings = 0;
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING))) {
    warnings++;
    gst_message_unref(msg);
  }
  fail_unless(gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) == NULL, "no error");
  g_print(
      "# swaps: 100 sets (50 valid, 50 bad), %d model changes seen in %" G_GUINT64_FORMAT
      " buffers (%" G_GUINT64_FORMAT " samples), %u warnings, %.1f s\n",
      runs, buffers, samples, warnings, (double)(g_get_monotonic_time() - t0) / 1e6);
  fail_unless(runs >= 1 && last_seen == N_SWAP_MODELS - 1);
  fail_unless(warnings >= 1 && warnings <= 50, "%u warnings for 50 bad files", warnings);
  gst_element_set_bus(h->element, NULL);
  gst_object_unref(bus);
  gst_harness_teardown(h);
  g_ptr_array_unref(sw.bad);
  g_rand_free(rand);
}
GST_END_TEST;

/* ---- state changes while models are swapped ------------------------------------ */

typedef struct {
  GstElement *element;
  gint done;
  guint sets;
} Toggler;

static gpointer toggle_models(gpointer data) {
  Toggler *t = data;
  GRand *rand = g_rand_new_with_seed(61);
  while (!g_atomic_int_get(&t->done)) {
    const int i = g_rand_int_range(rand, 0, 4);
    g_object_set(t->element, "model",
                 i == 0 ? "/nonexistent.safetensors" : swap_models[i], NULL);
    t->sets++;
    g_usleep((gulong)g_rand_int_range(rand, 100, 2000));
  }
  g_rand_free(rand);
  return NULL;
}

/* A live pipeline taken to PLAYING and back to NULL again and again while
 * another thread sets the model (a quarter of the time to a missing file):
 * every state change either succeeds or fails with an error message, and
 * nothing crashes, deadlocks or leaks. */
GST_START_TEST(test_state_changes_during_swaps) {
  GstElement *pipeline =
      gst_parse_launch("audiotestsrc is-live=true samplesperbuffer=64 ! "
                       "audio/x-raw,format=F32LE,channels=1,rate=16000 ! "
                       "convtranspose1d name=ct ! fakesink sync=false",
                       NULL);
  fail_unless(pipeline != NULL);
  GstElement *ct = gst_bin_get_by_name(GST_BIN(pipeline), "ct");
  g_object_set(ct, "model", swap_models[1], NULL);
  Toggler t = {.element = ct};
  GThread *thread = g_thread_new("toggler", toggle_models, &t);
  GstBus *bus = gst_element_get_bus(pipeline);
  GRand *rand = g_rand_new_with_seed(67);
  const int cycles = quick ? 10 : 40;
  int played = 0, refused = 0;
  for (int i = 0; i < cycles; i++) {
    GstStateChangeReturn ret = gst_element_set_state(pipeline, GST_STATE_PLAYING);
    if (ret == GST_STATE_CHANGE_ASYNC)
      ret = gst_element_get_state(pipeline, NULL, NULL, 5 * GST_SECOND);
    if (ret == GST_STATE_CHANGE_FAILURE) {
      GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
      fail_unless(msg != NULL, "a failed state change posts an error");
      GError *error = NULL;
      gst_message_parse_error(msg, &error, NULL);
      if (g_getenv("CT_STRESS_VERBOSE"))
        g_print("# cycle %d refused: %s\n", i, error->message);
      g_error_free(error);
      gst_message_unref(msg);
      refused++;
    } else {
      fail_unless(ret == GST_STATE_CHANGE_SUCCESS || ret == GST_STATE_CHANGE_NO_PREROLL,
                  "cycle %d: state change %s", i,
                  gst_element_state_change_return_get_name(ret));
      played++;
    }
    g_usleep((gulong)g_rand_int_range(rand, 1000, 20000));
    fail_unless(gst_element_set_state(pipeline, GST_STATE_NULL) ==
                GST_STATE_CHANGE_SUCCESS);
    gst_bus_set_flushing(bus, TRUE);
    gst_bus_set_flushing(bus, FALSE);
  }
  g_atomic_int_set(&t.done, 1);
  g_thread_join(thread);
  /* A burst of sets just before the element goes away: the loads still
   * queued must be released with it (LeakSanitizer and valgrind see them). */
  g_object_set(ct, "model", swap_models[1], NULL);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PAUSED) !=
              GST_STATE_CHANGE_FAILURE);
  for (int i = 0; i < 50; i++)
    g_object_set(ct, "model", swap_models[1 + i % 3], NULL);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_NULL) ==
              GST_STATE_CHANGE_SUCCESS);
  g_print("# states: %d cycles (%d played, %d refused a missing file), %u model sets\n",
          cycles, played, refused, t.sets);
  fail_unless(played > 0);
  g_rand_free(rand);
  gst_object_unref(bus);
  gst_object_unref(ct);
  gst_object_unref(pipeline);
}
GST_END_TEST;

static Suite *stress_suite(void) {
  Suite *s = suite_create("stress");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, test_hour_constant_memory);
  tcase_add_test(tc, test_video_events);
  tcase_add_test(tc, test_parallel_elements);
  tcase_add_test(tc, test_model_swap_storm);
  tcase_add_test(tc, test_state_changes_during_swaps);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  quick = g_strcmp0(g_getenv("CT_TEST_QUICK"), "1") == 0;
  make_models();
  int failed = gst_check_run_suite(stress_suite(), "stress", __FILE__);
  remove_models();
  return failed + check_no_leaks();
}
