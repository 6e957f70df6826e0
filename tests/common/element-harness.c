/* See element-harness.h. */
#include "tests/common/element-harness.h"

#include <stdio.h>
#include <unistd.h>

/* ---- temporary files ---- */

static gchar *tmp_dir;

gchar *tmp_path(const gchar *name) {
  if (!tmp_dir) {
    GError *error = NULL;
    tmp_dir = g_dir_make_tmp("ct-element-XXXXXX", &error);
    if (!tmp_dir) /* before the suite too, where fail() is not available */
      g_error("no temporary directory: %s", error->message);
  }
  return g_build_filename(tmp_dir, name, NULL);
}

/* Tests leave FIFOs, sockets, directories and symlinks there too. */
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

/* ---- elements ---- */

typedef struct {
  GstHarness *h;
  GstBus *bus;
} LiveHarness;

/* Harnesses in use; the stress test makes them on many threads. */
static GMutex live_lock;
static GArray *live_harnesses;

GstHarness *harness_new(const gchar *factory, const gchar *model, int n_threads,
                        GstBus **bus) {
  GstElement *e = gst_element_factory_make(factory, NULL);
  fail_unless(e != NULL, "no element %s", factory);
  g_object_set(e, "model", model, NULL);
  if (n_threads >= 0)
    g_object_set(e, "n-threads", (guint)n_threads, NULL);
  LiveHarness live = {NULL, NULL};
  if (bus) {
    *bus = live.bus = gst_bus_new();
    gst_element_set_bus(e, live.bus);
  }
  live.h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  g_mutex_lock(&live_lock);
  if (!live_harnesses)
    live_harnesses = g_array_new(FALSE, FALSE, sizeof(LiveHarness));
  g_array_append_val(live_harnesses, live);
  g_mutex_unlock(&live_lock);
  return live.h;
}

void harness_done(GstHarness *h) {
  LiveHarness live = {h, NULL};
  g_mutex_lock(&live_lock);
  for (guint i = 0; live_harnesses && i < live_harnesses->len; i++)
    if (g_array_index(live_harnesses, LiveHarness, i).h == h) {
      live = g_array_index(live_harnesses, LiveHarness, i);
      g_array_remove_index_fast(live_harnesses, i);
      break;
    }
  g_mutex_unlock(&live_lock);
  if (live.bus) {
    gst_element_set_bus(h->element, NULL);
    gst_object_unref(live.bus);
  }
  gst_harness_teardown(h);
}

/* The harnesses a failed check left behind, which the leaks tracer would
 * otherwise count. */
static void harness_done_leftovers(void) {
  for (;;) {
    g_mutex_lock(&live_lock);
    GstHarness *h = live_harnesses && live_harnesses->len
                        ? g_array_index(live_harnesses, LiveHarness, 0).h
                        : NULL;
    g_mutex_unlock(&live_lock);
    if (!h)
      return;
    harness_done(h);
  }
}

gchar *element_ready_error(GstElement *e) {
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  GstStateChangeReturn ret = gst_element_set_state(e, GST_STATE_READY);
  gchar *text = pop_message_text(bus, GST_MESSAGE_ERROR);
  fail_unless((ret == GST_STATE_CHANGE_FAILURE) == (text != NULL),
              "the state change fails exactly when an error is posted");
  gst_element_set_state(e, GST_STATE_NULL);
  gst_element_set_bus(e, NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
  return text;
}

gchar *ready_error(const gchar *factory, const gchar *model) {
  GstElement *e = gst_element_factory_make(factory, NULL);
  fail_unless(e != NULL, "no element %s", factory);
  if (model)
    g_object_set(e, "model", model, NULL);
  return element_ready_error(e);
}

/* ---- messages and events ---- */

gchar *pop_message_text(GstBus *bus, GstMessageType type) {
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

gchar *wait_message_text(GstBus *bus, GstMessageType type, double seconds) {
  for (int i = 0; i < (int)(seconds * 100); i++) {
    gchar *text = pop_message_text(bus, type);
    if (text)
      return text;
    g_usleep(10000);
  }
  return NULL;
}

void expect_error(GstBus *bus, const gchar *needle, const gchar *what) {
  gchar *text = pop_message_text(bus, GST_MESSAGE_ERROR);
  fail_unless(text != NULL, "%s: an element error is posted", what);
  fail_unless(strstr(text, needle) != NULL, "%s: error \"%s\" does not mention \"%s\"",
              what, text, needle);
  g_free(text);
}

gchar *run_to_end(GstElement *pipeline, double seconds) {
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

gboolean saw_eos(GstHarness *h) {
  GstEvent *ev;
  gboolean eos = FALSE;
  while ((ev = gst_harness_try_pull_event(h))) {
    eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  return eos;
}

void channel_log_init(ChannelLog *log) {
  memset(log, 0, sizeof *log);
  g_mutex_init(&log->lock);
}

void channel_log_clear(ChannelLog *log) {
  g_mutex_clear(&log->lock);
}

void channel_log_handoff(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data) {
  ChannelLog *log = data;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  gint channels = 0;
  if (caps) {
    gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &channels);
    gst_caps_unref(caps);
  }
  g_mutex_lock(&log->lock);
  if (log->channels && channels != log->channels)
    log->channel_changes++;
  log->channels = channels;
  log->buffers++;
  if (channels < 1 || gst_buffer_get_size(buf) % ((gsize)channels * sizeof(float)) != 0)
    log->bad_sizes++;
  g_mutex_unlock(&log->lock);
}

guint channel_log_buffers(ChannelLog *log) {
  g_mutex_lock(&log->lock);
  guint n = log->buffers;
  g_mutex_unlock(&log->lock);
  return n;
}

/* ---- audio ---- */

gchar *audio_caps(int channels, int rate, gboolean interleaved) {
  return g_strdup_printf("audio/x-raw,format=F32LE,rate=%d,channels=%d,layout=%s", rate,
                         channels, interleaved ? "interleaved" : "non-interleaved");
}

void harness_set_audio_caps(GstHarness *h, int channels, int rate, gboolean interleaved) {
  gchar *caps = audio_caps(channels, rate, interleaved);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
}

GstBuffer *audio_buffer(const float *planar, gint64 len, int channels, gint64 start,
                        gint64 n, int rate) {
  return audio_buffer_full(planar, len, channels, start, n, rate, 0, TRUE);
}

GstBuffer *audio_buffer_full(const float *planar, gint64 len, int channels, gint64 start,
                             gint64 n, int rate, GstClockTime base,
                             gboolean interleaved) {
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
  GST_BUFFER_PTS(buf) = base + gst_util_uint64_scale((guint64)start, GST_SECOND, rate);
  GST_BUFFER_DURATION(buf) =
      base + gst_util_uint64_scale((guint64)(start + n), GST_SECOND, rate) -
      GST_BUFFER_PTS(buf);
  return buf;
}

static gint64 append_audio_full(GstBuffer *buf, float *planar, gint64 cap, int channels,
                                gint64 have, gboolean interleaved) {
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_READ);
  fail_unless(map.size % (sizeof(float) * (gsize)channels) == 0,
              "an output buffer of %" G_GSIZE_FORMAT " bytes is not %d-channel frames",
              map.size, channels);
  const gint64 n = (gint64)(map.size / sizeof(float)) / channels;
  const float *src = (const float *)map.data;
  fail_unless(have + n <= cap, "more output than expected");
  for (int c = 0; c < channels; c++)
    for (gint64 i = 0; i < n; i++)
      planar[c * cap + have + i] = src[interleaved ? i * channels + c : c * n + i];
  gst_buffer_unmap(buf, &map);
  return have + n;
}

gint64 append_audio(GstBuffer *buf, float *planar, gint64 cap, int channels,
                    gint64 have) {
  return append_audio_full(buf, planar, cap, channels, have, TRUE);
}

gint64 collect_audio(GstHarness *h, float *planar, gint64 cap, int channels,
                     gint64 have) {
  return collect_audio_full(h, planar, cap, channels, have, TRUE);
}

gint64 collect_audio_full(GstHarness *h, float *planar, gint64 cap, int channels,
                          gint64 have, gboolean interleaved) {
  GstBuffer *buf;
  while ((buf = gst_harness_try_pull(h))) {
    have = append_audio_full(buf, planar, cap, channels, have, interleaved);
    gst_buffer_unref(buf);
  }
  return have;
}

float *random_planar(GRand *rand, int channels, gint64 len) {
  float *x = g_new(float, channels *len);
  for (gint64 i = 0; i < channels * len; i++)
    x[i] = (float)g_rand_double_range(rand, -1, 1);
  return x;
}

/* ---- references ---- */

ct_layer *load_test_layer(const gchar *path) {
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, NULL, NULL, &error);
  fail_unless(layer != NULL, "loading %s: %s", path, error ? error->message : "");
  return layer;
}

float *forward(const gchar *path, const int64_t *shape, const float *in,
               int64_t *out_shape, gint64 *n_values) {
  ct_layer *layer = load_test_layer(path);
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

float *forward_1d(const gchar *path, const float *planar, gint64 n, gint64 *n_out) {
  int64_t shape[CT_MAX_RANK] = {n}, out_shape[CT_MAX_RANK];
  float *out = forward(path, shape, planar, out_shape, NULL);
  *n_out = out_shape[0];
  return out;
}

gint64 output_length(const gchar *path, gint64 n) {
  ct_layer *layer = load_test_layer(path);
  int64_t shape[CT_MAX_RANK] = {n}, out[CT_MAX_RANK];
  fail_unless(ct_output_shape(ct_layer_params(layer), shape, out, NULL, 0) == CT_OK);
  ct_layer_free(layer);
  return out[0];
}

guint quantise(float v, float scale) {
  v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
  return (guint)(v * scale + 0.5f);
}

/* ---- the program ---- */

gsize rss_bytes(void) {
  unsigned long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (gsize)resident * (gsize)sysconf(_SC_PAGESIZE);
}

/* Any GstObject or mini-object a test created and did not release. */
static int check_no_leaks(void) {
  int leaks = 0;
  gboolean traced = FALSE;
  GList *tracers = gst_tracing_get_active_tracers();
  for (GList *l = tracers; l; l = l->next) {
    if (!g_str_equal(G_OBJECT_TYPE_NAME(l->data), "GstLeaksTracer"))
      continue;
    traced = TRUE;
    GstStructure *info = NULL;
    g_signal_emit_by_name(l->data, "get-live-objects", &info);
    const GValue *list = gst_structure_get_value(info, "live-objects-list");
    for (guint i = 0; i < gst_value_list_get_size(list); i++) {
      gchar *o = gst_structure_to_string(
          gst_value_get_structure(gst_value_list_get_value(list, i)));
      g_printerr("leak: %s\n", o);
      g_free(o);
      leaks++;
    }
    gst_structure_free(info);
  }
  g_list_free_full(tracers, gst_object_unref);
  printf("%s: %d leaked objects%s\n", leaks ? "FAIL" : "ok", leaks,
         traced ? "" : " (leaks tracer not active)");
  return leaks + (traced ? 0 : 1);
}

TCase *element_tcase(double timeout) {
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, timeout);
  tcase_add_checked_fixture(tc, NULL, harness_done_leftovers);
  return tc;
}

int run_element_tests(const char *name, TCase *tc, const char *file) {
  Suite *suite = suite_create(name);
  suite_add_tcase(suite, tc);
  int failed = gst_check_run_suite(suite, name, file);
  if (tmp_dir) {
    remove_tree(tmp_dir);
    g_clear_pointer(&tmp_dir, g_free);
  }
  if (live_harnesses)
    g_array_unref(live_harnesses);
  live_harnesses = NULL;
  return failed + check_no_leaks();
}
