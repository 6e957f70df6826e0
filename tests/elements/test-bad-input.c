/* Bad input to the elements: malformed buffers, absurd caps and layers,
 * NaN and infinity, model files that change, vanish or cannot be read, and a
 * live swap to a model with other channel counts. The rule everywhere: a
 * clear element error or correct output, never a crash, a hang or garbage.
 *
 * Cases that could hang or allocate without bound before they are fixed run
 * in a child process with a time limit (run_isolated), so a failure there is
 * one failed check and the rest of the suite still runs. */
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/elements/leak-check.h"
#include "kernels/reference.h"
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
/* No single allocation of more than 1.5 GB, so that a check of per-buffer
 * memory fails on the attempt instead of taking the machine's memory (the
 * plain build caps the child's address space instead, see run_isolated). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "max_allocation_size_mb=1536";
}
#endif

static gchar *tmp_dir;
/* audio_a: 2 -> 3 channels, k5 s2 p1, bias; audio_b: 1 -> 2, k3 s2 p1;
 * nan_audio: 1 -> 2, k3 s2 p1 with a zero tap; gray2d: 1 -> 1, k2x2 s2x2;
 * gray3d: 1 -> 1, k2x2x2 s(2,1,1); rgb_nonfinite: 3 -> 3, k2x2, biases NaN,
 * +inf, -inf; pad_huge / dilation_huge: 1 -> 1 1d layers that PyTorch accepts
 * but whose streaming state is enormous; spread2d / spread3d: GRAY8 1 -> 1
 * with a spatial stride of 1000, which turns a 40x40 frame into 39001x39001;
 * audio_wide: 1 -> 1 with stride 100000; time_wide: GRAY8 1 -> 1 3d with a
 * temporal stride of 2500 (one input frame, 2500 output frames). */
static gchar *audio_a, *audio_b, *nan_audio, *gray2d, *gray3d, *rgb_nonfinite;
static gchar *pad_huge, *dilation_huge, *spread2d, *spread3d, *audio_wide, *time_wide;

static gchar *tmp_path(const gchar *name) {
  return g_build_filename(tmp_dir, name, NULL);
}

static void make_models(void) {
  GRand *rand = g_rand_new_with_seed(17);
  float w[3 * 3 * 8], bias[3];
  for (guint i = 0; i < G_N_ELEMENTS(w); i++)
    w[i] = (float)g_rand_double_range(rand, -1, 1);
  for (guint i = 0; i < G_N_ELEMENTS(bias); i++)
    bias[i] = (float)g_rand_double_range(rand, -1, 1);
  tmp_dir = g_dir_make_tmp("ct-bad-input-XXXXXX", NULL);
  audio_a = tmp_path("a.safetensors");
  audio_b = tmp_path("b.safetensors");
  nan_audio = tmp_path("nan.safetensors");
  gray2d = tmp_path("gray2d.safetensors");
  gray3d = tmp_path("gray3d.safetensors");
  rgb_nonfinite = tmp_path("rgb-nonfinite.safetensors");
  pad_huge = tmp_path("pad-huge.safetensors");
  dilation_huge = tmp_path("dilation-huge.safetensors");
  spread2d = tmp_path("spread2d.safetensors");
  spread3d = tmp_path("spread3d.safetensors");
  audio_wide = tmp_path("audio-wide.safetensors");
  time_wide = tmp_path("time-wide.safetensors");
  int64_t k5 = 5, k3 = 3, k1 = 1, k2 = 2, k22[2] = {2, 2}, k222[3] = {2, 2, 2};
  write_test_model(audio_a, 1, 2, 3, &k5, w, 3, bias,
                   "\"stride\":\"2\",\"padding\":\"1\"");
  write_test_model(audio_b, 1, 1, 2, &k3, w, 2, bias,
                   "\"stride\":\"2\",\"padding\":\"1\"");
  const float nan_w[6] = {0.5f, 0.0f, -1.0f, 1.0f, 2.0f, 0.25f},
              nan_bias[2] = {0.1f, -0.2f};
  write_test_model(nan_audio, 1, 1, 2, &k3, nan_w, 2, nan_bias,
                   "\"stride\":\"2\",\"padding\":\"1\"");
  write_test_model(gray2d, 2, 1, 1, k22, w, 1, bias, "\"stride\":\"2\"");
  write_test_model(gray3d, 3, 1, 1, k222, w, 1, bias, "\"stride\":\"[2,1,1]\"");
  const float nonfinite_bias[3] = {NAN, INFINITY, -INFINITY};
  write_test_model(rgb_nonfinite, 2, 3, 3, k22, w, 3, nonfinite_bias, NULL);
  write_test_model(pad_huge, 1, 1, 1, &k1, w, 1, NULL, "\"padding\":\"2000000000\"");
  write_test_model(dilation_huge, 1, 1, 1, &k2, w, 1, NULL,
                   "\"dilation\":\"2000000000\"");
  int64_t k11[2] = {1, 1}, k111[3] = {1, 1, 1};
  write_test_model(spread2d, 2, 1, 1, k11, w, 1, NULL, "\"stride\":\"1000\"");
  write_test_model(spread3d, 3, 1, 1, k111, w, 1, NULL, "\"stride\":\"[1,1000,1000]\"");
  write_test_model(audio_wide, 1, 1, 1, &k1, w, 1, NULL, "\"stride\":\"100000\"");
  write_test_model(time_wide, 3, 1, 1, k111, w, 1, NULL, "\"stride\":\"[2500,1,1]\"");
  g_rand_free(rand);
}

static void remove_tree(const gchar *path) {
  if (g_file_test(path, G_FILE_TEST_IS_DIR) &&
      !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
    GDir *dir = g_dir_open(path, 0, NULL);
    const gchar *name;
    while (dir && (name = g_dir_read_name(dir))) {
      gchar *child = g_build_filename(path, name, NULL);
      remove_tree(child);
      g_free(child);
    }
    if (dir)
      g_dir_close(dir);
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static void remove_models(void) {
  gchar *all[] = {audio_a,  audio_b,       nan_audio, gray2d,   gray3d,     rgb_nonfinite,
                  pad_huge, dilation_huge, spread2d,  spread3d, audio_wide, time_wide};
  for (guint i = 0; i < G_N_ELEMENTS(all); i++)
    g_free(all[i]);
  remove_tree(tmp_dir);
  g_free(tmp_dir);
}

static ct_layer *load_layer(const gchar *path) {
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, NULL, NULL, &error);
  fail_unless(layer != NULL, "loading %s: %s", path, error ? error->message : "");
  return layer;
}

/* ---- harness helpers ---------------------------------------------------------- */

/* Harnesses in use, so a failed check (which leaves its test at once) does
 * not leave them behind for the leaks tracer: the fixture tears them down. */
typedef struct {
  GstHarness *h;
  GstBus *bus;
} LiveHarness;
static GArray *live_harnesses;

static GstHarness *harness_for(const gchar *factory, const gchar *model, GstBus **bus) {
  GstElement *e = gst_element_factory_make(factory, NULL);
  g_object_set(e, "model", model, NULL);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  LiveHarness live = {h, NULL};
  if (bus) {
    *bus = live.bus = gst_bus_new();
    gst_element_set_bus(h->element, *bus);
  }
  g_array_append_val(live_harnesses, live);
  return h;
}

static void teardown(GstHarness *h, GstBus *bus) {
  for (guint i = 0; i < live_harnesses->len; i++)
    if (g_array_index(live_harnesses, LiveHarness, i).h == h)
      g_array_remove_index(live_harnesses, i);
  if (bus) {
    gst_element_set_bus(h->element, NULL);
    gst_object_unref(bus);
  }
  gst_harness_teardown(h);
}

static void teardown_leftovers(void) {
  while (live_harnesses->len > 0) {
    LiveHarness live = g_array_index(live_harnesses, LiveHarness, 0);
    teardown(live.h, live.bus);
  }
}

/* The text of the next message of this type on the bus, or NULL. */
static gchar *pop_text(GstBus *bus, GstMessageType type) {
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

/* Waits up to ~5 s for a warning (a load happens off the streaming thread). */
static gchar *wait_warning(GstBus *bus) {
  for (int i = 0; i < 500; i++) {
    gchar *text = pop_text(bus, GST_MESSAGE_WARNING);
    if (text)
      return text;
    g_usleep(10000);
  }
  return NULL;
}

static void expect_error(GstBus *bus, const gchar *needle, const gchar *what) {
  gchar *text = pop_text(bus, GST_MESSAGE_ERROR);
  fail_unless(text != NULL, "%s: an element error is posted", what);
  fail_unless(strstr(text, needle) != NULL, "%s: error \"%s\" does not mention \"%s\"",
              what, text, needle);
  g_free(text);
}

static gchar *audio_caps(int channels, int rate) {
  return g_strdup_printf("audio/x-raw,format=F32LE,rate=%d,channels=%d,"
                         "layout=interleaved",
                         rate, channels);
}

/* Samples [start, start + n) of a planar [channels, len] signal, interleaved. */
static GstBuffer *audio_buffer(const float *planar, gint64 len, int channels,
                               gint64 start, gint64 n, int rate) {
  GstBuffer *buf =
      gst_buffer_new_allocate(NULL, (gsize)(n * channels) * sizeof(float), NULL);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  float *dst = (float *)map.data;
  for (int c = 0; c < channels; c++)
    for (gint64 i = 0; i < n; i++)
      dst[i * channels + c] = planar[c * len + start + i];
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale(start, GST_SECOND, rate);
  GST_BUFFER_DURATION(buf) =
      gst_util_uint64_scale(start + n, GST_SECOND, rate) - GST_BUFFER_PTS(buf);
  return buf;
}

/* Appends the output buffers waiting in the harness to planar [channels, cap]. */
static gint64 collect(GstHarness *h, float *planar, gint64 cap, int channels,
                      gint64 have) {
  GstBuffer *buf;
  while ((buf = gst_harness_try_pull(h))) {
    GstMapInfo map;
    gst_buffer_map(buf, &map, GST_MAP_READ);
    fail_unless(map.size % (sizeof(float) * (gsize)channels) == 0,
                "an output buffer of %" G_GSIZE_FORMAT " bytes is not %d-channel frames",
                map.size, channels);
    gint64 n = (gint64)(map.size / sizeof(float)) / channels;
    fail_unless(have + n <= cap, "more output than expected");
    for (int c = 0; c < channels; c++)
      for (gint64 i = 0; i < n; i++)
        planar[c * cap + have + i] = ((const float *)map.data)[i * channels + c];
    have += n;
    gst_buffer_unmap(buf, &map);
    gst_buffer_unref(buf);
  }
  return have;
}

/* Checks a collected planar output against the expected one, bitwise. */
static void check_same(const float *got, gint64 have, const float *ref, gint64 n,
                       int channels, const char *what) {
  fail_unless(have == n, "%s: %" G_GINT64_FORMAT " outputs, expected %" G_GINT64_FORMAT,
              what, have, n);
  for (gint64 i = 0; i < channels * n; i++)
    fail_unless(memcmp(&got[i], &ref[i], sizeof(float)) == 0,
                "%s: channel %" G_GINT64_FORMAT " output %" G_GINT64_FORMAT
                " is %g, expected %g",
                what, i / n, i % n, got[i], ref[i]);
}

static float *random_signal(GRand *rand, int channels, gint64 len) {
  float *x = g_new(float, channels *len);
  for (gint64 i = 0; i < channels * len; i++)
    x[i] = (float)g_rand_double_range(rand, -1, 1);
  return x;
}

/* One-shot output of the layer in path for a planar input of the given shape. */
static float *forward(const gchar *path, const int64_t *shape, const float *in,
                      int64_t *out_shape, gint64 *n_values) {
  ct_layer *layer = load_layer(path);
  const ct_params *p = ct_layer_params(layer);
  fail_unless(ct_output_shape(p, shape, out_shape, NULL, 0) == CT_OK);
  gint64 n = p->out_channels;
  for (int a = 0; a < p->rank; a++)
    n *= out_shape[a];
  float *out = g_new(float, n);
  fail_unless(ct_forward(layer, shape, in, out, NULL, 0) == CT_OK);
  ct_layer_free(layer);
  if (n_values)
    *n_values = n;
  return out;
}

/* Pushes a planar signal in random chunks, then EOS; returns the output. */
static float *run_audio(GstHarness *h, GRand *rand, const float *x, gint64 len, int cin,
                        int cout, gint64 cap, gint64 *n_out) {
  float *got = g_new0(float, cout *cap);
  gint64 have = 0;
  for (gint64 pos = 0; pos < len;) {
    gint64 n = g_rand_int_range(rand, 1, 60);
    n = MIN(n, len - pos);
    fail_unless(gst_harness_push(h, audio_buffer(x, len, cin, pos, n, 48000)) ==
                GST_FLOW_OK);
    pos += n;
    have = collect(h, got, cap, cout, have);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  *n_out = collect(h, got, cap, cout, have);
  return got;
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

/* ---- isolation ---------------------------------------------------------------- */

/* A check that may hang, crash or exhaust memory before its bug is fixed:
 * returns NULL when the element behaved, else what went wrong. */
typedef gchar *(*IsolatedCheck)(gconstpointer data);

/* Runs check in a child process killed after `seconds`; NULL if it passed,
 * else a description of the failure (g_free it). */
static gchar *run_isolated(IsolatedCheck check, gconstpointer data, guint seconds) {
  int fds[2];
  fail_unless(pipe(fds) == 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  fail_unless(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    /* libcheck's SIGALRM handler would kill the whole process group. */
    signal(SIGALRM, SIG_DFL);
    alarm(seconds);
    gchar *why = check(data);
    fflush(stdout);
    if (why && write(fds[1], why, strlen(why)) < 0)
      _exit(3);
    _exit(why ? 2 : 0);
  }
  close(fds[1]);
  GString *why = g_string_new(NULL);
  char chunk[256];
  ssize_t n;
  while ((n = read(fds[0], chunk, sizeof chunk)) > 0)
    g_string_append_len(why, chunk, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    g_string_free(why, TRUE);
    return NULL;
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
    g_string_printf(why, "still running after %u s (hung)", seconds);
  else if (WIFSIGNALED(status))
    g_string_printf(why, "crashed with signal %d (%s)", WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
  else if (why->len == 0)
    g_string_printf(why, "exit status %d (a sanitizer report?)", WEXITSTATUS(status));
  return g_string_free(why, FALSE);
}

/* ---- malformed buffers ---------------------------------------------------------- */

GST_START_TEST(test_audio_partial_frame) {
  /* 2 channels x 4 bytes: an odd byte count, and half a frame. */
  const gsize sizes[] = {2 * 4 * 10 + 1, 12, 3};
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
    GstBus *bus;
    GstHarness *h = harness_for("convtranspose1d", audio_a, &bus);
    gchar *caps = audio_caps(2, 48000);
    gst_harness_set_src_caps_str(h, caps);
    g_free(caps);
    GstFlowReturn ret =
        gst_harness_push(h, gst_buffer_new_allocate(NULL, sizes[i], NULL));
    fail_unless(ret == GST_FLOW_ERROR, "%" G_GSIZE_FORMAT " bytes: flow %s", sizes[i],
                gst_flow_get_name(ret));
    expect_error(bus, "not a whole number", "partial audio frame");
    fail_unless(gst_harness_try_pull(h) == NULL, "no output from a refused buffer");
    teardown(h, bus);
  }
}
GST_END_TEST;

/* Empty buffers (with a timestamp, without, flagged GAP) between real ones
 * change nothing: the output is the one-shot output, timestamps exact. */
GST_START_TEST(test_audio_empty_buffers) {
  GRand *rand = g_rand_new_with_seed(21);
  const gint64 len = 900;
  float *x = random_signal(rand, 2, len);
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  float *ref = forward(audio_a, shape, x, out_shape, NULL);
  const gint64 n_ref = out_shape[0];
  GstBus *bus;
  GstHarness *h = harness_for("convtranspose1d", audio_a, &bus);
  gchar *caps = audio_caps(2, 48000);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  float *got = g_new0(float, 3 * n_ref);
  gint64 have = 0, out_pos = 0;
  for (gint64 pos = 0; pos < len;) {
    for (int kind = 0; kind < 3; kind++) {
      GstBuffer *empty = gst_buffer_new();
      if (kind == 0)
        GST_BUFFER_PTS(empty) = gst_util_uint64_scale(pos, GST_SECOND, 48000);
      if (kind == 2) {
        GST_BUFFER_PTS(empty) = gst_util_uint64_scale(pos, GST_SECOND, 48000);
        GST_BUFFER_FLAG_SET(empty, GST_BUFFER_FLAG_GAP);
      }
      fail_unless(gst_harness_push(h, empty) == GST_FLOW_OK);
    }
    gint64 n = g_rand_int_range(rand, 1, 80);
    n = MIN(n, len - pos);
    fail_unless(gst_harness_push(h, audio_buffer(x, len, 2, pos, n, 48000)) ==
                GST_FLOW_OK);
    pos += n;
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      gint64 k = (gint64)(gst_buffer_get_size(out) / (3 * sizeof(float)));
      fail_unless(k > 0, "no empty output buffers");
      fail_unless(GST_BUFFER_PTS(out) ==
                      gst_util_uint64_scale(out_pos, GST_SECOND, 96000),
                  "output PTS at sample %" G_GINT64_FORMAT, out_pos);
      GstMapInfo map;
      gst_buffer_map(out, &map, GST_MAP_READ);
      for (int c = 0; c < 3; c++)
        for (gint64 i = 0; i < k; i++)
          got[c * n_ref + have + i] = ((const float *)map.data)[i * 3 + c];
      gst_buffer_unmap(out, &map);
      gst_buffer_unref(out);
      have += k;
      out_pos += k;
    }
  }
  gst_harness_push_event(h, gst_event_new_eos());
  have = collect(h, got, n_ref, 3, have);
  fail_unless(have == n_ref && memcmp(got, ref, sizeof(float) * 3 * n_ref) == 0,
              "empty buffers change nothing in the output");
  fail_unless(pop_text(bus, GST_MESSAGE_ERROR) == NULL, "no error");
  teardown(h, bus);
  g_free(got);
  g_free(ref);
  g_free(x);
  g_rand_free(rand);
}
GST_END_TEST;

static gchar *gray_caps(int width, int height) {
  return g_strdup_printf("video/x-raw,format=GRAY8,width=%d,height=%d,framerate=30/1",
                         width, height);
}

GST_START_TEST(test_video_short_buffer) {
  const char *factories[] = {"convtranspose2d", "convtranspose3d"};
  const gchar *models[] = {gray2d, gray3d};
  for (int f = 0; f < 2; f++) {
    /* One byte short of an 8x6 GRAY8 frame, then an empty buffer. */
    const gsize sizes[] = {8 * 6 - 1, 0};
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
      GstBus *bus;
      GstHarness *h = harness_for(factories[f], models[f], &bus);
      gchar *caps = gray_caps(8, 6);
      gst_harness_set_src_caps_str(h, caps);
      g_free(caps);
      GstFlowReturn ret =
          gst_harness_push(h, gst_buffer_new_allocate(NULL, sizes[i], NULL));
      fail_unless(ret == GST_FLOW_ERROR, "%s, %" G_GSIZE_FORMAT " bytes: flow %s",
                  factories[f], sizes[i], gst_flow_get_name(ret));
      expect_error(bus, "smaller than", factories[f]);
      fail_unless(gst_harness_try_pull(h) == NULL, "no output from a short frame");
      teardown(h, bus);
    }
  }
}
GST_END_TEST;

/* Appends the non-interleaved 3-channel output buffers waiting in the
 * harness to planar [3, cap]; FALSE if there are more samples than cap. */
static gboolean pull_planar(GstHarness *h, float *planar, gint64 cap, gint64 *have) {
  gboolean fits = TRUE;
  GstBuffer *out;
  while ((out = gst_harness_try_pull(h))) {
    /* The output's own caps: its channel positions are the element's. */
    GstAudioInfo info;
    GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
    fail_unless(caps && gst_audio_info_from_caps(&info, caps));
    gst_caps_unref(caps);
    GstAudioBuffer abuf;
    if (gst_audio_buffer_map(&abuf, &info, out, GST_MAP_READ)) {
      gint64 n = (gint64)abuf.n_samples;
      fits = fits && *have + n <= cap;
      for (int c = 0; fits && c < 3; c++)
        memcpy(planar + c * cap + *have, abuf.planes[c], (gsize)n * sizeof(float));
      *have += n;
      gst_audio_buffer_unmap(&abuf);
    }
    gst_buffer_unref(out);
  }
  return fits;
}

/* Non-interleaved audio whose planes are padded: GstAudioMeta says how many
 * samples each plane holds, and only those are signal (the buffer is
 * larger). The output must be the one-shot output of exactly those samples. */
GST_START_TEST(test_audio_planar_meta_padding) {
  GRand *rand = g_rand_new_with_seed(19);
  const gint64 len = 400;
  float *x = random_signal(rand, 2, len);
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  float *ref = forward(audio_a, shape, x, out_shape, NULL);
  const gint64 n_ref = out_shape[0];
  GstBus *bus;
  GstHarness *h = harness_for("convtranspose1d", audio_a, &bus);
  gst_harness_set_src_caps_str(h, "audio/x-raw,format=F32LE,rate=48000,channels=2,"
                                  "layout=non-interleaved");
  GstAudioInfo info;
  gst_audio_info_set_format(&info, GST_AUDIO_FORMAT_F32LE, 48000, 2, NULL);
  info.layout = GST_AUDIO_LAYOUT_NON_INTERLEAVED;
  float *got = g_new0(float, 3 * n_ref);
  gint64 have = 0;
  gboolean fits = TRUE;
  for (gint64 pos = 0; pos < len; pos += 50) {
    const gint64 n = 50, pad = 7; /* each plane: 50 samples, then 7 unused */
    GstBuffer *buf = gst_buffer_new_allocate(NULL, 2 * (n + pad) * sizeof(float), NULL);
    GstMapInfo map;
    gst_buffer_map(buf, &map, GST_MAP_WRITE);
    float *dst = (float *)map.data;
    for (int c = 0; c < 2; c++)
      for (gint64 i = 0; i < n + pad; i++)
        dst[c * (n + pad) + i] = i < n ? x[c * len + pos + i] : 1e30f;
    gst_buffer_unmap(buf, &map);
    gsize offsets[2] = {0, (gsize)(n + pad) * sizeof(float)};
    gst_buffer_add_audio_meta(buf, &info, (gsize)n, offsets);
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale(pos, GST_SECOND, 48000);
    fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
    fits = pull_planar(h, got, n_ref, &have) && fits;
  }
  gst_harness_push_event(h, gst_event_new_eos());
  fits = pull_planar(h, got, n_ref, &have) && fits;
  fail_unless(fits,
              "%" G_GINT64_FORMAT " outputs for a signal of %" G_GINT64_FORMAT
              ": the unused ends of the planes were taken as samples",
              have, n_ref);
  check_same(got, have, ref, n_ref, 3, "padded planes");
  teardown(h, bus);
  g_free(got);
  g_free(ref);
  g_free(x);
  g_rand_free(rand);
}
GST_END_TEST;

/* Frames with a GstVideoMeta whose stride is tighter (or wider) than the
 * default one are honoured: the frame is what the meta says. */
GST_START_TEST(test_video_meta_strides) {
  const int width = 9, height = 7;
  const gint strides[] = {9, 16}; /* the default GRAY8 stride for 9 is 12 */
  for (guint k = 0; k < G_N_ELEMENTS(strides); k++) {
    GstBus *bus;
    GstHarness *h = harness_for("convtranspose2d", gray2d, &bus);
    gchar *caps = gray_caps(width, height);
    gst_harness_set_src_caps_str(h, caps);
    g_free(caps);
    GstBuffer *in = gst_buffer_new_allocate(NULL, (gsize)strides[k] * height, NULL);
    float planar[9 * 7];
    GstMapInfo map;
    gst_buffer_map(in, &map, GST_MAP_WRITE);
    memset(map.data, 0xee, map.size);
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        guint8 v = (guint8)(y * 31 + x * 7);
        map.data[y * strides[k] + x] = v;
        planar[y * width + x] = (float)v / 255.0f;
      }
    gst_buffer_unmap(in, &map);
    gsize offset[GST_VIDEO_MAX_PLANES] = {0};
    gint stride[GST_VIDEO_MAX_PLANES] = {strides[k]};
    gst_buffer_add_video_meta_full(in, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_GRAY8,
                                   width, height, 1, offset, stride);
    GST_BUFFER_PTS(in) = 0;
    GstFlowReturn ret = gst_harness_push(h, in);
    gchar *error = pop_text(bus, GST_MESSAGE_ERROR);
    fail_unless(ret == GST_FLOW_OK, "stride %d: flow %s, error %s", strides[k],
                gst_flow_get_name(ret), error);
    GstBuffer *out = gst_harness_pull(h);
    int64_t shape[CT_MAX_RANK] = {height, width}, out_shape[CT_MAX_RANK];
    float *ref = forward(gray2d, shape, planar, out_shape, NULL);
    GstVideoInfo info;
    GstCaps *out_caps = gst_pad_get_current_caps(h->sinkpad);
    fail_unless(gst_video_info_from_caps(&info, out_caps));
    gst_caps_unref(out_caps);
    GstVideoFrame vf;
    fail_unless(gst_video_frame_map(&vf, &info, out, GST_MAP_READ));
    for (int y = 0; y < out_shape[0]; y++)
      for (int x = 0; x < out_shape[1]; x++) {
        float v = ref[y * out_shape[1] + x];
        v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
        guint8 want = (guint8)(guint)(v * 255.0f + 0.5f);
        guint8 have = ((const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(
            &vf, 0))[y * GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0) + x];
        fail_unless(have == want, "stride %d: pixel (%d, %d) is %u, expected %u",
                    strides[k], x, y, have, want);
      }
    gst_video_frame_unmap(&vf);
    gst_buffer_unref(out);
    g_free(ref);
    g_free(error);
    teardown(h, bus);
  }
}
GST_END_TEST;

/* ---- absurd sizes and layers ------------------------------------------------------ */

/* A 10^6-pixel-wide frame is large but sane: it goes through, exactly. */
GST_START_TEST(test_video_wide_frame) {
  const int width = 1000000, height = 2;
  GstBus *bus;
  GstHarness *h = harness_for("convtranspose2d", gray2d, &bus);
  gchar *caps = gray_caps(width, height);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  GstBuffer *in = gst_buffer_new_allocate(NULL, (gsize)width * height, NULL);
  float *planar = g_new(float, (gsize)width *height);
  GstMapInfo map;
  gst_buffer_map(in, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++) {
    map.data[i] = (guint8)(i * 2654435761u >> 24);
    planar[i] = (float)map.data[i] / 255.0f;
  }
  gst_buffer_unmap(in, &map);
  GST_BUFFER_PTS(in) = 0;
  fail_unless(gst_harness_push(h, in) == GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull(h);
  fail_unless(out != NULL);
  int64_t shape[CT_MAX_RANK] = {height, width}, out_shape[CT_MAX_RANK];
  float *ref = forward(gray2d, shape, planar, out_shape, NULL);
  fail_unless(out_shape[0] == 4 && out_shape[1] == 2 * width);
  GstVideoInfo info;
  GstCaps *out_caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(gst_video_info_from_caps(&info, out_caps));
  gst_caps_unref(out_caps);
  fail_unless(GST_VIDEO_INFO_WIDTH(&info) == 2 * width &&
              GST_VIDEO_INFO_HEIGHT(&info) == 4);
  gst_buffer_map(out, &map, GST_MAP_READ);
  guint bad = 0;
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 2 * width; x++) {
      float v = ref[(gsize)y * 2 * width + x];
      v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
      guint8 want = (guint8)(guint)(v * 255.0f + 0.5f);
      bad += map.data[(gsize)y * GST_VIDEO_INFO_PLANE_STRIDE(&info, 0) + x] != want;
    }
  gst_buffer_unmap(out, &map);
  fail_unless(bad == 0, "%u pixels differ from the one-shot output", bad);
  gst_buffer_unref(out);
  teardown(h, bus);
  g_free(ref);
  g_free(planar);
}
GST_END_TEST;

typedef struct {
  const char *factory;
  const gchar **model;
  const char *caps;
} NegotiationCase;

/* Caps whose output frames could never be allocated must be refused when
 * negotiated, before any buffer arrives (so nothing is allocated). */
static gchar *refused_at_negotiation(gconstpointer data) {
  const NegotiationCase *c = data;
  GstBus *bus;
  gsize rss0 = rss_bytes();
  GstHarness *h = harness_for(c->factory, *c->model, &bus);
  gst_harness_set_src_caps_str(h, c->caps);
  gchar *text = pop_text(bus, GST_MESSAGE_ERROR);
  gsize grown = rss_bytes() - MIN(rss_bytes(), rss0);
  if (!text)
    return g_strdup_printf("%s accepted %s (no error posted; its output frames would "
                           "not fit in memory; RSS grew by %" G_GSIZE_FORMAT " MB)",
                           c->factory, c->caps, grown >> 20);
  g_print("# %s refused %s: %s\n", c->factory, c->caps, text);
  return NULL;
}

GST_START_TEST(test_absurd_output_refused) {
  const NegotiationCase cases[] = {
      /* 10^6 x 10^6 in, 2*10^6 x 2*10^6 out: 4 TB per output frame. */
      {"convtranspose2d", (const gchar **)&gray2d,
       "video/x-raw,format=GRAY8,width=1000000,height=1000000,framerate=30/1"},
      {"convtranspose3d", (const gchar **)&gray3d,
       "video/x-raw,format=GRAY8,width=1000000,height=1000000,framerate=30/1"},
      /* 40x40 in, 39001x39001 out: a 1.5 GB output frame, 6 GB of floats. */
      {"convtranspose2d", (const gchar **)&spread2d,
       "video/x-raw,format=GRAY8,width=40,height=40,framerate=30/1"},
      {"convtranspose3d", (const gchar **)&spread3d,
       "video/x-raw,format=GRAY8,width=40,height=40,framerate=30/1"},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    gchar *why = run_isolated(refused_at_negotiation, &cases[i], 20);
    char text[512] = "";
    g_strlcpy(text, why ? why : "", sizeof text);
    g_free(why);
    fail_unless(text[0] == '\0', "%s", text);
  }
}
GST_END_TEST;

typedef struct {
  const char *factory;
  const gchar **model;
  const char *caps;
  gsize buffer_bytes; /* input buffers of this many bytes */
  gint64 in_steps;    /* the steps each holds */
  int n_buffers;
  gsize step_bytes; /* bytes of one output step */
} BigOutputCase;

static GstPadProbeReturn count_and_drop(GstPad *pad, GstPadProbeInfo *info,
                                        gpointer data) {
  *(guint64 *)data += gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
  return GST_PAD_PROBE_DROP;
}

/* An input buffer whose output needs more than the 2 GB limit (as floats):
 * the element must refuse the caps, or produce it in bounded memory (the
 * child may not grow by more than 1.5 GB; output is dropped as it comes). */
static gchar *bounded_output(gconstpointer data) {
  const BigOutputCase *c = data;
#ifndef CT_ASAN
  unsigned long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%lu", &pages) != 1)
      pages = 0;
    fclose(f);
  }
  struct rlimit limit;
  limit.rlim_cur = limit.rlim_max =
      (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)3 << 29);
  setrlimit(RLIMIT_AS, &limit);
#endif
  GstBus *bus;
  GstHarness *h = harness_for(c->factory, *c->model, &bus);
  guint64 out_bytes = 0;
  gst_pad_add_probe(h->sinkpad, GST_PAD_PROBE_TYPE_BUFFER, count_and_drop, &out_bytes,
                    NULL);
  gst_harness_set_src_caps_str(h, c->caps);
  gchar *text = pop_text(bus, GST_MESSAGE_ERROR);
  if (text) {
    g_print("# %s refused %s: %s\n", c->factory, c->caps, text);
    return NULL;
  }
  GstFlowReturn ret = GST_FLOW_OK;
  for (int i = 0; i < c->n_buffers && ret == GST_FLOW_OK; i++) {
    GstBuffer *buf = gst_buffer_new_allocate(NULL, c->buffer_bytes, NULL);
    gst_buffer_memset(buf, 0, 0x40, c->buffer_bytes);
    GST_BUFFER_PTS(buf) = (GstClockTime)i * GST_SECOND / 30;
    ret = gst_harness_push(h, buf);
  }
  text = pop_text(bus, GST_MESSAGE_ERROR);
  if (ret != GST_FLOW_OK || text)
    return g_strdup_printf("%s accepted %s, then failed on a buffer (flow %s): %s",
                           c->factory, c->caps, gst_flow_get_name(ret),
                           text ? text : "no message");
  ct_layer *layer = load_layer(*c->model);
  const gint64 want =
      ct_stream_emitted(ct_layer_params(layer), c->in_steps * c->n_buffers);
  ct_layer_free(layer);
  if (out_bytes != (guint64)want * c->step_bytes)
    return g_strdup_printf("%s: %" G_GUINT64_FORMAT
                           " bytes of output, expected %" G_GINT64_FORMAT
                           " steps of %" G_GSIZE_FORMAT,
                           c->factory, out_bytes, want, c->step_bytes);
  g_print("# %s: %" G_GUINT64_FORMAT " MB of output in bounded memory\n", c->factory,
          out_bytes >> 20);
  return NULL;
}

GST_START_TEST(test_huge_output_per_buffer) {
  const BigOutputCase cases[] = {
      /* 5400 samples x stride 100000: 540 million output samples, 2.2 GB. */
      {"convtranspose1d", (const gchar **)&audio_wide,
       "audio/x-raw,format=F32LE,rate=8000,channels=1,layout=interleaved",
       5400 * sizeof(float), 5400, 1, sizeof(float)},
      /* 500x500 frames x temporal stride 2500: the second frame makes 2500
       * output frames at once, 2.5 GB as floats. */
      {"convtranspose3d", (const gchar **)&time_wide,
       "video/x-raw,format=GRAY8,width=500,height=500,framerate=30/1", 500 * 500, 1, 2,
       500 * 500},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    gchar *why = run_isolated(bounded_output, &cases[i], 120);
    char text[512] = "";
    g_strlcpy(text, why ? why : "", sizeof text);
    g_free(why);
    fail_unless(text[0] == '\0', "%s", text);
  }
}
GST_END_TEST;

/* A layer PyTorch accepts but whose streaming state is enormous (padding or
 * dilation 2*10^9): the element must answer quickly, with an error or by
 * running in bounded memory; never hang or exhaust memory. */
static gchar *huge_layer_answers(gconstpointer data) {
  const gchar *model = data;
  /* A layer past the kernels' limits is refused when the element loads it,
   * before any caps: that is an answer too. */
  GError *load_error = NULL;
  ct_layer *loaded = ct_model_load(model, NULL, NULL, &load_error);
  if (!loaded) {
    g_print("# %s: refused on load: %s\n", model, load_error->message);
    g_error_free(load_error);
    return NULL;
  }
  ct_layer_free(loaded);
  GstBus *bus;
  gsize rss0 = rss_bytes();
  GstHarness *h = harness_for("convtranspose1d", model, &bus);
  gchar *caps = audio_caps(1, 48000);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  float x[64] = {0};
  GstFlowReturn ret = gst_harness_push(h, audio_buffer(x, 64, 1, 0, 64, 48000));
  gchar *text = pop_text(bus, GST_MESSAGE_ERROR);
  gsize grown = rss_bytes() - MIN(rss_bytes(), rss0);
  if (ret != GST_FLOW_OK && !text)
    return g_strdup_printf("%s: flow %s without an error message", model,
                           gst_flow_get_name(ret));
  if (grown > (512u << 20))
    return g_strdup_printf("%s: RSS grew by %" G_GSIZE_FORMAT " MB", model, grown >> 20);
  g_print("# %s: %s\n", model, text ? text : "accepted, bounded memory");
  g_free(text);
  teardown(h, bus);
  return NULL;
}

GST_START_TEST(test_huge_layers_answer) {
  const gchar *models[] = {pad_huge, dilation_huge};
  for (guint i = 0; i < G_N_ELEMENTS(models); i++) {
    gchar *why = run_isolated(huge_layer_answers, models[i], 20);
    char text[512] = "";
    g_strlcpy(text, why ? why : "", sizeof text);
    g_free(why);
    fail_unless(text[0] == '\0', "%s: %s", models[i], text);
  }
}
GST_END_TEST;

/* ---- NaN and infinity -------------------------------------------------------------- */

/* Audio floats propagate as PyTorch's arithmetic does: an output is NaN when
 * a NaN reaches it, or an infinity meets a zero weight or the opposite
 * infinity; +-inf where only infinities of one sign reach it. */
GST_START_TEST(test_audio_nan_inf) {
  GRand *rand = g_rand_new_with_seed(23);
  const gint64 len = 300;
  float *x = random_signal(rand, 1, len);
  x[10] = NAN;
  x[50] = INFINITY;
  x[51] = -INFINITY;
  x[120] = INFINITY;
  x[200] = -INFINITY;
  x[len - 1] = NAN;
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  float *one_shot = forward(nan_audio, shape, x, out_shape, NULL);
  const gint64 n_ref = out_shape[0];
  /* PyTorch's values: the plain definition in double. */
  ct_layer *layer = load_layer(nan_audio);
  float *ref = g_new(float, 2 * n_ref);
  fail_unless(ct_reference_forward(ct_layer_params(layer), ct_layer_weight(layer),
                                   ct_layer_bias(layer), shape, x, ref) == CT_OK);
  ct_layer_free(layer);
  GstBus *bus;
  GstHarness *h = harness_for("convtranspose1d", nan_audio, &bus);
  gchar *caps = audio_caps(1, 48000);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  gint64 n_got;
  float *got = run_audio(h, rand, x, len, 1, 2, n_ref, &n_got);
  fail_unless(n_got == n_ref);
  fail_unless(memcmp(got, one_shot, sizeof(float) * 2 * n_ref) == 0,
              "streamed output is bitwise the one-shot output, NaN included");
  int nans = 0, infs = 0;
  for (gint64 i = 0; i < 2 * n_ref; i++) {
    fail_unless(!!isnan(got[i]) == !!isnan(ref[i]),
                "output %" G_GINT64_FORMAT " is %g, PyTorch gives %g", i, got[i], ref[i]);
    if (isinf(ref[i]))
      fail_unless(got[i] == ref[i], "output %" G_GINT64_FORMAT " is %g, PyTorch gives %g",
                  i, got[i], ref[i]);
    else if (!isnan(ref[i]))
      fail_unless(fabsf(got[i] - ref[i]) <= 1e-5f * (1 + fabsf(ref[i])));
    nans += !!isnan(ref[i]);
    infs += !!isinf(ref[i]);
  }
  fail_unless(nans > 0 && infs > 0, "the case has NaN (%d) and infinite (%d) outputs",
              nans, infs);
  fail_unless(pop_text(bus, GST_MESSAGE_ERROR) == NULL);
  teardown(h, bus);
  g_free(got);
  g_free(ref);
  g_free(one_shot);
  g_free(x);
  g_rand_free(rand);
}
GST_END_TEST;

/* Video output clamps: NaN -> 0, +inf -> full scale, -inf -> 0. Biases NaN,
 * +inf, -inf make every R, G, B output NaN, +inf, -inf. */
GST_START_TEST(test_video_nan_inf) {
  {
    GstBus *bus;
    GstHarness *h = harness_for("convtranspose2d", rgb_nonfinite, &bus);
    gst_harness_set_src_caps_str(
        h, "video/x-raw,format=RGB,width=8,height=6,framerate=30/1");
    GstVideoInfo in_info;
    GstCaps *in_caps = gst_caps_from_string("video/x-raw,format=RGB,width=8,height=6");
    gst_video_info_from_caps(&in_info, in_caps);
    gst_caps_unref(in_caps);
    for (int frame = 0; frame < 3; frame++) {
      GstBuffer *in = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&in_info), NULL);
      GstMapInfo map;
      gst_buffer_map(in, &map, GST_MAP_WRITE);
      for (gsize i = 0; i < map.size; i++)
        map.data[i] = (guint8)(i * 37 + (gsize)frame * 91);
      gst_buffer_unmap(in, &map);
      GST_BUFFER_PTS(in) = (GstClockTime)frame * GST_SECOND / 30;
      fail_unless(gst_harness_push(h, in) == GST_FLOW_OK);
      GstBuffer *out = gst_harness_pull(h);
      fail_unless(out != NULL);
      GstVideoInfo out_info;
      GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
      fail_unless(gst_video_info_from_caps(&out_info, caps));
      gst_caps_unref(caps);
      GstVideoFrame vf;
      fail_unless(gst_video_frame_map(&vf, &out_info, out, GST_MAP_READ));
      const guint8 want[3] = {0, 255, 0};
      for (guint c = 0; c < 3; c++) {
        const guint8 *data = GST_VIDEO_FRAME_COMP_DATA(&vf, c);
        for (int y = 0; y < GST_VIDEO_FRAME_HEIGHT(&vf); y++)
          for (int x = 0; x < GST_VIDEO_FRAME_WIDTH(&vf); x++) {
            guint8 v = data[y * GST_VIDEO_FRAME_COMP_STRIDE(&vf, c) +
                            x * GST_VIDEO_FRAME_COMP_PSTRIDE(&vf, c)];
            fail_unless(v == want[c], "component %u at (%d, %d) is %u, expected %u", c, x,
                        y, v, want[c]);
          }
      }
      gst_video_frame_unmap(&vf);
      gst_buffer_unref(out);
    }
    fail_unless(pop_text(bus, GST_MESSAGE_ERROR) == NULL);
    teardown(h, bus);
  }
}
GST_END_TEST;

/* ---- model files that change, vanish or cannot be read --------------------------- */

static void copy_file(const gchar *from, const gchar *to) {
  gchar *data;
  gsize size;
  fail_unless(g_file_get_contents(from, &data, &size, NULL));
  fail_unless(g_file_set_contents(to, data, (gssize)size, NULL));
  g_free(data);
}

/* Overwrites path in place (same inode): truncated to `size` bytes of junk. */
static void clobber(const gchar *path, gsize size) {
  int fd = open(path, O_WRONLY | O_TRUNC);
  fail_unless(fd >= 0, "open %s: %s", path, g_strerror(errno));
  for (gsize i = 0; i < size; i++)
    fail_unless(write(fd, "\xff", 1) == 1);
  close(fd);
}

GST_START_TEST(test_model_file_changes_on_disk) {
  GRand *rand = g_rand_new_with_seed(29);
  gchar *path = tmp_path("live.safetensors");
  copy_file(audio_a, path);
  const gint64 len = 1200;
  float *x = random_signal(rand, 2, len);
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  float *ref = forward(audio_a, shape, x, out_shape, NULL);
  const gint64 n_ref = out_shape[0];
  GstBus *bus;
  GstHarness *h = harness_for("convtranspose1d", path, &bus);
  gchar *caps = audio_caps(2, 48000);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  float *got = g_new0(float, 3 * n_ref);
  gint64 have = 0;
  for (gint64 pos = 0, step = 0; pos < len; pos += 100, step++) {
    /* Truncate in place, fill with junk, delete: the loaded layer is a copy. */
    if (step == 3)
      fail_unless(truncate(path, 10) == 0);
    if (step == 5)
      clobber(path, 4096);
    if (step == 7)
      fail_unless(g_unlink(path) == 0);
    fail_unless(gst_harness_push(h, audio_buffer(x, len, 2, pos, 100, 48000)) ==
                GST_FLOW_OK);
    have = collect(h, got, n_ref, 3, have);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  have = collect(h, got, n_ref, 3, have);
  fail_unless(have == n_ref && memcmp(got, ref, sizeof(float) * 3 * n_ref) == 0,
              "the stream continues with the model as loaded");
  /* Setting the (now missing) file again keeps the current model, warns. */
  g_object_set(h->element, "model", path, NULL);
  gchar *warning = wait_warning(bus);
  fail_unless(warning && strstr(warning, path), "a warning naming the file: %s", warning);
  g_free(warning);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  gint64 n_got;
  float *again = run_audio(h, rand, x, len, 2, 3, n_ref, &n_got);
  fail_unless(n_got == n_ref && memcmp(again, ref, sizeof(float) * 3 * n_ref) == 0,
              "still the model as first loaded");
  fail_unless(pop_text(bus, GST_MESSAGE_ERROR) == NULL);
  teardown(h, bus);
  g_free(again);
  g_free(got);
  g_free(ref);
  g_free(x);
  g_free(path);
  g_rand_free(rand);
}
GST_END_TEST;

/* The error posted on the way to READY, or NULL. */
static gchar *ready_error(const gchar *model) {
  GstElement *e = gst_element_factory_make("convtranspose1d", NULL);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  g_object_set(e, "model", model, NULL);
  GstStateChangeReturn ret = gst_element_set_state(e, GST_STATE_READY);
  gchar *text = pop_text(bus, GST_MESSAGE_ERROR);
  fail_unless((ret == GST_STATE_CHANGE_FAILURE) == (text != NULL),
              "the state change fails exactly when an error is posted");
  gst_element_set_state(e, GST_STATE_NULL);
  gst_element_set_bus(e, NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
  return text;
}

typedef struct {
  gchar *path;
  const char *needle;
} Unreadable;

static gchar *ready_refuses(gconstpointer data) {
  const Unreadable *u = data;
  gchar *text = ready_error(u->path);
  gchar *why = NULL;
  if (!text)
    why = g_strdup_printf("%s was accepted", u->path);
  else if (!strstr(text, u->path) || !strstr(text, u->needle))
    why = g_strdup_printf("%s: message \"%s\" should name the file and say \"%s\"",
                          u->path, text, u->needle);
  g_free(text);
  return why;
}

/* Tests run as root, for whom chmod 000 does not stop reading; files that
 * cannot be read whoever you are stand in: a FIFO (opening it must not
 * block), a socket, a directory, a device, a path through a regular file, a
 * dangling symlink. As another user, a chmod 000 file too. */
GST_START_TEST(test_unreadable_models) {
  GPtrArray *cases = g_ptr_array_new();
  Unreadable fifo = {tmp_path("fifo.safetensors"), "not a regular file"};
  fail_unless(mkfifo(fifo.path, 0644) == 0);
  g_ptr_array_add(cases, &fifo);
  Unreadable sock = {tmp_path("sock.safetensors"), "cannot open"};
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  g_strlcpy(addr.sun_path, sock.path, sizeof addr.sun_path);
  fail_unless(strlen(sock.path) < sizeof addr.sun_path &&
              bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
  g_ptr_array_add(cases, &sock);
  Unreadable dir = {tmp_path("dir.safetensors"), "is a directory"};
  fail_unless(g_mkdir(dir.path, 0755) == 0);
  g_ptr_array_add(cases, &dir);
  Unreadable dev = {g_strdup("/dev/null"), "not a regular file"};
  g_ptr_array_add(cases, &dev);
  Unreadable notdir = {g_build_filename(audio_a, "x.safetensors", NULL), "cannot open"};
  g_ptr_array_add(cases, &notdir);
  Unreadable dangling = {tmp_path("dangling.safetensors"), "cannot open"};
  fail_unless(symlink("/nonexistent/model.safetensors", dangling.path) == 0);
  g_ptr_array_add(cases, &dangling);
  Unreadable denied = {tmp_path("denied.safetensors"), "Permission denied"};
  copy_file(audio_a, denied.path);
  fail_unless(g_chmod(denied.path, 0) == 0);
  if (geteuid() != 0)
    g_ptr_array_add(cases, &denied);
  else
    g_print("# running as root: chmod 000 does not stop root; FIFO, socket, directory, "
            "device, ENOTDIR and dangling symlink cases stand in\n");
  for (guint i = 0; i < cases->len; i++) {
    Unreadable *u = cases->pdata[i];
    gchar *why = run_isolated(ready_refuses, u, 20);
    char text[512] = "";
    g_strlcpy(text, why ? why : "", sizeof text);
    g_free(why);
    fail_unless(text[0] == '\0', "%s", text);
  }
  /* Swapping to one while playing warns and keeps the current model. */
  GRand *rand = g_rand_new_with_seed(31);
  const gint64 len = 400;
  float *x = random_signal(rand, 2, len);
  int64_t shape[CT_MAX_RANK] = {len}, out_shape[CT_MAX_RANK];
  float *ref = forward(audio_a, shape, x, out_shape, NULL);
  GstBus *bus;
  GstHarness *h = harness_for("convtranspose1d", audio_a, &bus);
  gchar *caps = audio_caps(2, 48000);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  fail_unless(gst_harness_push(h, audio_buffer(x, len, 2, 0, 100, 48000)) == GST_FLOW_OK);
  for (guint i = 0; i < cases->len; i++) {
    Unreadable *u = cases->pdata[i];
    g_object_set(h->element, "model", u->path, NULL);
    gchar *warning = wait_warning(bus);
    fail_unless(warning && strstr(warning, u->path), "live swap to %s: warning %s",
                u->path, warning);
    g_free(warning);
  }
  float *got = g_new0(float, 3 * out_shape[0]);
  gint64 have = collect(h, got, out_shape[0], 3, 0);
  fail_unless(gst_harness_push(h, audio_buffer(x, len, 2, 100, len - 100, 48000)) ==
              GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  have = collect(h, got, out_shape[0], 3, have);
  fail_unless(have == out_shape[0] &&
                  memcmp(got, ref, sizeof(float) * 3 * out_shape[0]) == 0,
              "the stream went on with the current model");
  teardown(h, bus);
  close(fd);
  for (guint i = 0; i < cases->len; i++)
    g_free(((Unreadable *)cases->pdata[i])->path);
  if (geteuid() == 0)
    g_free(denied.path);
  g_ptr_array_unref(cases);
  g_free(got);
  g_free(ref);
  g_free(x);
  g_rand_free(rand);
}
GST_END_TEST;

/* ---- a live swap to a model with other channel counts -------------------------------
 */

/* The harness stands in for an upstream that can give 1 or 2 channels (as
 * audioconvert would): the element asks upstream what it can give before it
 * asks it to renegotiate. */
static gboolean flexible_upstream_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  if (GST_QUERY_TYPE(query) != GST_QUERY_CAPS)
    return gst_pad_query_default(pad, parent, query);
  GstCaps *caps = gst_caps_from_string("audio/x-raw,format=F32LE,rate=48000,"
                                       "channels=[1,2],layout=interleaved");
  GstCaps *filter = NULL;
  gst_query_parse_caps(query, &filter);
  if (filter) {
    GstCaps *both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(caps);
    caps = both;
  }
  gst_query_set_caps_result(query, caps);
  gst_caps_unref(caps);
  return TRUE;
}

/* A (2 -> 3) is swapped for B (1 -> 2) while 2-channel audio flows: the
 * element keeps A (output still exactly A's) and asks upstream to
 * renegotiate; when 1-channel caps come, A's signal is drained whole and B
 * runs, 2 channels out. */
GST_START_TEST(test_channels_change_midstream) {
  GRand *rand = g_rand_new_with_seed(37);
  const gint64 len = 600;
  float *x = random_signal(rand, 2, len), *y = random_signal(rand, 1, len);
  int64_t shape[CT_MAX_RANK] = {len}, out_x[CT_MAX_RANK], out_y[CT_MAX_RANK];
  float *ref_x = forward(audio_a, shape, x, out_x, NULL);
  float *ref_y = forward(audio_b, shape, y, out_y, NULL);
  GstBus *bus;
  GstHarness *h = harness_for("convtranspose1d", audio_a, &bus);
  gchar *caps = audio_caps(2, 48000);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  gst_pad_set_query_function(h->srcpad, flexible_upstream_query);
  float *got_x = g_new0(float, 3 * out_x[0]);
  gint64 have = 0, pos = 0;
  for (; pos < 200; pos += 50) {
    gst_harness_push(h, audio_buffer(x, len, 2, pos, 50, 48000));
    have = collect(h, got_x, out_x[0], 3, have);
  }
  /* Linking sent a RECONFIGURE of its own: forget it. */
  GstEvent *ev;
  while ((ev = gst_harness_try_pull_upstream_event(h)))
    gst_event_unref(ev);
  g_object_set(h->element, "model", audio_b, NULL);
  /* 2-channel input goes on: A goes on, and a RECONFIGURE goes upstream once
   * B is loaded. */
  gboolean asked = FALSE;
  for (int i = 0; i < 500 && !asked; i++) {
    if (pos + 1 < len) {
      gst_harness_push(h, audio_buffer(x, len, 2, pos, 1, 48000));
      pos++;
    }
    have = collect(h, got_x, out_x[0], 3, have);
    while ((ev = gst_harness_try_pull_upstream_event(h))) {
      asked |= GST_EVENT_TYPE(ev) == GST_EVENT_RECONFIGURE;
      gst_event_unref(ev);
    }
    if (!asked)
      g_usleep(10000);
  }
  fail_unless(asked, "upstream is asked to renegotiate");
  for (; pos < len; pos += MIN(70, len - pos)) {
    gst_harness_push(h, audio_buffer(x, len, 2, pos, MIN(70, len - pos), 48000));
    have = collect(h, got_x, out_x[0], 3, have);
  }
  /* Upstream renegotiates: A's tail comes out, under A's caps. */
  caps = audio_caps(1, 48000);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  have = collect(h, got_x, out_x[0], 3, have);
  check_same(got_x, have, ref_x, out_x[0], 3, "A's signal");
  GstBuffer *buf = audio_buffer(y, len, 1, 0, len, 48000);
  GST_BUFFER_PTS(buf) += 20 * GST_SECOND;
  fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
  gst_harness_push_event(h, gst_event_new_eos());
  float *got_y = g_new0(float, 2 * out_y[0]);
  have = collect(h, got_y, out_y[0], 2, 0);
  GstCaps *current = gst_pad_get_current_caps(h->sinkpad);
  gint channels = 0;
  gst_structure_get_int(gst_caps_get_structure(current, 0), "channels", &channels);
  gst_caps_unref(current);
  fail_unless(channels == 2, "output caps follow B: %d channels", channels);
  check_same(got_y, have, ref_y, out_y[0], 2, "B's signal");
  gchar *error = pop_text(bus, GST_MESSAGE_ERROR);
  fail_unless(error == NULL, "error: %s", error);
  teardown(h, bus);
  g_free(got_x);
  g_free(got_y);
  g_free(ref_x);
  g_free(ref_y);
  g_free(x);
  g_free(y);
  g_rand_free(rand);
}
GST_END_TEST;

typedef struct {
  GMutex lock;
  gint last_channels;
  guint buffers, bad_sizes, channel_changes;
} HandoffLog;

static void on_handoff(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data) {
  HandoffLog *log = data;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  gint channels = 0;
  if (caps) {
    gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &channels);
    gst_caps_unref(caps);
  }
  g_mutex_lock(&log->lock);
  if (log->last_channels && channels != log->last_channels)
    log->channel_changes++;
  log->last_channels = channels;
  log->buffers++;
  if (channels < 1 || gst_buffer_get_size(buf) % ((gsize)channels * sizeof(float)) != 0)
    log->bad_sizes++;
  g_mutex_unlock(&log->lock);
}

/* The same in a real pipeline: audioconvert answers the RECONFIGURE. */
GST_START_TEST(test_channels_change_pipeline) {
  gchar *desc = g_strdup_printf(
      "audiotestsrc is-live=true num-buffers=200 samplesperbuffer=240 ! "
      "audio/x-raw,format=F32LE,channels=2,rate=48000 ! audioconvert ! "
      "convtranspose1d name=ct model=%s ! fakesink name=sink signal-handoffs=true "
      "sync=false",
      audio_a);
  GstElement *pipeline = gst_parse_launch(desc, NULL);
  g_free(desc);
  fail_unless(pipeline != NULL);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstElement *ct = gst_bin_get_by_name(GST_BIN(pipeline), "ct");
  HandoffLog log = {0};
  g_mutex_init(&log.lock);
  g_signal_connect(sink, "handoff", G_CALLBACK(on_handoff), &log);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  for (int i = 0; i < 500; i++) {
    g_mutex_lock(&log.lock);
    guint n = log.buffers;
    g_mutex_unlock(&log.lock);
    if (n >= 20)
      break;
    g_usleep(5000);
  }
  g_object_set(ct, "model", audio_b, NULL);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND,
                                               GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless(msg != NULL && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS,
              "the pipeline runs to EOS without an error");
  gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  fail_unless(log.bad_sizes == 0, "every buffer is whole frames of its caps");
  fail_unless(log.channel_changes == 1 && log.last_channels == 2,
              "output went from 3 to 2 channels once (%u changes, now %d)",
              log.channel_changes, log.last_channels);
  g_mutex_clear(&log.lock);
  gst_object_unref(sink);
  gst_object_unref(ct);
  gst_object_unref(pipeline);
}
GST_END_TEST;

static Suite *bad_input_suite(void) {
  Suite *s = suite_create("bad-input");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 300);
  tcase_add_checked_fixture(tc, NULL, teardown_leftovers);
  tcase_add_test(tc, test_audio_partial_frame);
  tcase_add_test(tc, test_audio_empty_buffers);
  tcase_add_test(tc, test_video_short_buffer);
  tcase_add_test(tc, test_audio_planar_meta_padding);
  tcase_add_test(tc, test_video_meta_strides);
  tcase_add_test(tc, test_video_wide_frame);
  tcase_add_test(tc, test_absurd_output_refused);
  tcase_add_test(tc, test_huge_layers_answer);
  tcase_add_test(tc, test_huge_output_per_buffer);
  tcase_add_test(tc, test_audio_nan_inf);
  tcase_add_test(tc, test_video_nan_inf);
  tcase_add_test(tc, test_model_file_changes_on_disk);
  tcase_add_test(tc, test_unreadable_models);
  tcase_add_test(tc, test_channels_change_midstream);
  tcase_add_test(tc, test_channels_change_pipeline);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  live_harnesses = g_array_new(FALSE, FALSE, sizeof(LiveHarness));
  make_models();
  int failed = gst_check_run_suite(bad_input_suite(), "bad-input", __FILE__);
  remove_models();
  g_array_unref(live_harnesses);
  return failed + check_no_leaks();
}
