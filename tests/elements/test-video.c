/* convtranspose2d / convtranspose3d under GstHarness: bitwise agreement with
 * the kernel's one-shot output, streaming over frames, timestamps, latency,
 * every format family (packed, padded, planar, 16-bit, alpha), negotiation
 * errors, and PyTorch's own output on a 640x360 stream (golden data made by
 * tests/golden/video/make_video_golden.py). */
#include <gio/gio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "tests/elements/leak-check.h"
#include "kernels/stream.h"
#include "model-writer.h"
#include "model/model.h"

static gchar *tmp_dir;
static GPtrArray *tmp_files;

static gchar *tmp_path(const gchar *name) {
  gchar *path = g_build_filename(tmp_dir, name, NULL);
  g_ptr_array_add(tmp_files, g_strdup(path));
  return path;
}

/* ---- formats, written and read independently of the element ------------------ */

/* Where component c (R, G, B, A; GRAY: Y) of a pixel lives: packed formats
 * give its byte in the pixel, planar ones its plane. */
typedef struct {
  const char *name;
  int n_comp;
  int bytes; /* per component */
  gboolean planar;
  int pstride; /* bytes from a pixel to the next in its plane */
  int where[4];
} FormatDesc;

static const FormatDesc format_table[] = {
    {"GRAY8", 1, 1, FALSE, 1, {0}},         {"GRAY16_LE", 1, 2, FALSE, 2, {0}},
    {"RGB", 3, 1, FALSE, 3, {0, 1, 2}},     {"BGR", 3, 1, FALSE, 3, {2, 1, 0}},
    {"RGBx", 3, 1, FALSE, 4, {0, 1, 2}},    {"BGRx", 3, 1, FALSE, 4, {2, 1, 0}},
    {"xRGB", 3, 1, FALSE, 4, {1, 2, 3}},    {"xBGR", 3, 1, FALSE, 4, {3, 2, 1}},
    {"RGBA", 4, 1, FALSE, 4, {0, 1, 2, 3}}, {"BGRA", 4, 1, FALSE, 4, {2, 1, 0, 3}},
    {"ARGB", 4, 1, FALSE, 4, {1, 2, 3, 0}}, {"ABGR", 4, 1, FALSE, 4, {3, 2, 1, 0}},
    {"GBR", 3, 1, TRUE, 1, {2, 0, 1}},      {"GBRA", 4, 1, TRUE, 1, {2, 0, 1, 3}},
};

static const FormatDesc *format_desc(const gchar *name) {
  for (guint i = 0; i < G_N_ELEMENTS(format_table); i++)
    if (g_str_equal(format_table[i].name, name))
      return &format_table[i];
  fail("format %s is not in the test's table", name);
  return NULL;
}

static const FormatDesc *random_format(GRand *rand, int n_comp) {
  for (;;) {
    const FormatDesc *f =
        &format_table[g_rand_int_range(rand, 0, G_N_ELEMENTS(format_table))];
    if (f->n_comp == n_comp)
      return f;
  }
}

static float level_scale(const FormatDesc *f) {
  return f->bytes == 2 ? 65535.0f : 255.0f;
}

/* The elements' documented mapping back to levels: clamp to [0, 1], scale,
 * round to nearest (computed as the element computes it). */
static guint quantise(float v, float scale) {
  v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
  return (guint)(v * scale + 0.5f);
}

typedef struct {
  int n_planes;
  gsize offset[4];
  gint stride[4];
  gsize size;
} Layout;

static void default_layout(const FormatDesc *f, int width, int height, Layout *l) {
  GstVideoInfo info;
  fail_unless(gst_video_info_set_format(&info, gst_video_format_from_string(f->name),
                                        (guint)width, (guint)height));
  l->n_planes = (int)GST_VIDEO_INFO_N_PLANES(&info);
  fail_unless(l->n_planes == (f->planar ? f->n_comp : 1));
  for (int p = 0; p < l->n_planes; p++) {
    l->offset[p] = GST_VIDEO_INFO_PLANE_OFFSET(&info, p);
    l->stride[p] = GST_VIDEO_INFO_PLANE_STRIDE(&info, p);
  }
  l->size = GST_VIDEO_INFO_SIZE(&info);
}

/* Rows 64 bytes longer than the default, planes apart, a head before plane 0. */
static void padded_layout(const FormatDesc *f, int width, int height, Layout *l) {
  Layout def;
  default_layout(f, width, height, &def);
  l->n_planes = def.n_planes;
  gsize at = 48;
  for (int p = 0; p < l->n_planes; p++) {
    l->offset[p] = at;
    l->stride[p] = def.stride[p] + 64;
    fail_unless(l->stride[p] >= width * f->pstride + 64);
    at += (gsize)l->stride[p] * (gsize)height + 40;
  }
  l->size = at;
}

static guint8 *pixel_at(guint8 *data, const FormatDesc *f, const Layout *l, int c, int x,
                        int y) {
  int plane = f->planar ? f->where[c] : 0;
  return data + l->offset[plane] + (gsize)y * (gsize)l->stride[plane] +
         (gsize)x * (gsize)f->pstride + (f->planar ? 0 : (gsize)f->where[c]);
}

/* A frame of planar levels [C][H][W]; padded: custom strides in a
 * GstVideoMeta, padding bytes filled with garbage. */
static GstBuffer *make_frame(const FormatDesc *f, int width, int height,
                             const guint16 *levels, gboolean padded) {
  Layout l;
  if (padded)
    padded_layout(f, width, height, &l);
  else
    default_layout(f, width, height, &l);
  GstBuffer *buf = gst_buffer_new_allocate(NULL, l.size, NULL);
  GstMapInfo map;
  fail_unless(gst_buffer_map(buf, &map, GST_MAP_WRITE));
  memset(map.data, 0xa5, map.size);
  for (int c = 0; c < f->n_comp; c++)
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        guint16 v =
            levels[((gsize)c * (gsize)height + (gsize)y) * (gsize)width + (gsize)x];
        guint8 *px = pixel_at(map.data, f, &l, c, x, y);
        if (f->bytes == 2)
          GST_WRITE_UINT16_LE(px, v);
        else
          *px = (guint8)v;
      }
  gst_buffer_unmap(buf, &map);
  if (padded)
    gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE,
                                   gst_video_format_from_string(f->name), (guint)width,
                                   (guint)height, (guint)l.n_planes, l.offset, l.stride);
  return buf;
}

/* The negotiated output caps: format, size and frame rate. */
typedef struct {
  const FormatDesc *format;
  int width, height, fps_n, fps_d;
} OutCaps;

static OutCaps output_caps(GstHarness *h) {
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  fail_unless(caps != NULL, "output caps negotiated");
  GstVideoInfo info;
  fail_unless(gst_video_info_from_caps(&info, caps));
  OutCaps out = {format_desc(GST_VIDEO_INFO_NAME(&info)), GST_VIDEO_INFO_WIDTH(&info),
                 GST_VIDEO_INFO_HEIGHT(&info), GST_VIDEO_INFO_FPS_N(&info),
                 GST_VIDEO_INFO_FPS_D(&info)};
  gst_caps_unref(caps);
  return out;
}

/* Levels [C][H][W] of an output frame, honouring a GstVideoMeta if any. */
static guint16 *read_frame(GstBuffer *buf, const OutCaps *oc) {
  const FormatDesc *f = oc->format;
  Layout l;
  GstVideoMeta *meta = gst_buffer_get_video_meta(buf);
  if (meta) {
    fail_unless((int)meta->width == oc->width && (int)meta->height == oc->height);
    l.n_planes = (int)meta->n_planes;
    for (int p = 0; p < l.n_planes; p++) {
      l.offset[p] = meta->offset[p];
      l.stride[p] = meta->stride[p];
    }
  } else {
    default_layout(f, oc->width, oc->height, &l);
  }
  GstMapInfo map;
  fail_unless(gst_buffer_map(buf, &map, GST_MAP_READ));
  if (!meta)
    fail_unless(map.size >= l.size, "output buffer of %" G_GSIZE_FORMAT " bytes",
                map.size);
  guint16 *levels = g_new(guint16, (gsize)f->n_comp * (gsize)oc->height * oc->width);
  for (int c = 0; c < f->n_comp; c++)
    for (int y = 0; y < oc->height; y++)
      for (int x = 0; x < oc->width; x++) {
        const guint8 *px = pixel_at(map.data, f, &l, c, x, y);
        levels[((gsize)c * (gsize)oc->height + (gsize)y) * (gsize)oc->width + (gsize)x] =
            f->bytes == 2 ? GST_READ_UINT16_LE(px) : *px;
      }
  gst_buffer_unmap(buf, &map);
  return levels;
}

static gchar *video_caps(const FormatDesc *f, int width, int height, int fps_n,
                         int fps_d) {
  return g_strdup_printf("video/x-raw,format=%s,width=%d,height=%d,framerate=%d/%d,"
                         "pixel-aspect-ratio=1/1,interlace-mode=progressive",
                         f->name, width, height, fps_n, fps_d);
}

/* ---- harness and models --------------------------------------------------------- */

/* The harness starts its element at once, so the model is set before.
 * n_threads < 0 leaves the property at its default. */
static GstHarness *harness_for(const gchar *factory, const gchar *model, int n_threads) {
  GstElement *e = gst_element_factory_make(factory, NULL);
  fail_unless(e != NULL, "element %s", factory);
  g_object_set(e, "model", model, NULL);
  if (n_threads >= 0)
    g_object_set(e, "n-threads", (guint)n_threads, NULL);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  return h;
}

static ct_layer *load_layer(const gchar *path) {
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, NULL, NULL, &error);
  fail_unless(layer != NULL, "loading %s: %s", path, error ? error->message : "");
  return layer;
}

/* Models that copy channel (i + 1) % C into output channel i: 1x1 kernels. */
static gchar *perm_models[4][5]; /* [rank][C], C in {1, 3, 4} */

static gchar *make_perm_model(int rank, int c) {
  gchar *name = g_strdup_printf("perm%dd_%d.safetensors", rank, c);
  gchar *path = tmp_path(name);
  g_free(name);
  float w[16] = {0};
  int64_t kernel[3] = {1, 1, 1};
  for (int o = 0; o < c; o++)
    w[((o + 1) % c) * c + o] = 1.0f; /* w[ci][co] */
  /* Runs before the suite: check's fail_unless is not available yet. */
  if (!write_test_model(path, rank, c, c, kernel, w, c, NULL, NULL))
    g_error("cannot write %s", path);
  return path;
}

static void make_models(void) {
  tmp_dir = g_dir_make_tmp("ct-video-XXXXXX", NULL);
  tmp_files = g_ptr_array_new_with_free_func(g_free);
  for (int rank = 2; rank <= 3; rank++)
    for (int c = 1; c <= 4; c++)
      if (c != 2)
        perm_models[rank][c] = make_perm_model(rank, c);
}

static void remove_models(void) {
  for (guint i = 0; i < tmp_files->len; i++)
    g_unlink(g_ptr_array_index(tmp_files, i));
  g_ptr_array_unref(tmp_files);
  for (int rank = 2; rank <= 3; rank++)
    for (int c = 1; c <= 4; c++)
      g_free(perm_models[rank][c]);
  g_rmdir(tmp_dir);
  g_free(tmp_dir);
}

/* A random layer for video: Cin, Cout in {1, 3, 4}, every hyper-parameter
 * random per axis, written to a file and loaded back. */
typedef struct {
  gchar *path;
  ct_layer *layer;
  const ct_params *p;
} RandomLayer;

static void random_layer(GRand *rand, int rank, int index, RandomLayer *out) {
  static const int channels[3] = {1, 3, 4};
  int64_t cin = channels[g_rand_int_range(rand, 0, 3)];
  int64_t cout = channels[g_rand_int_range(rand, 0, 3)];
  int64_t groups = 1;
  if (cin == cout && cin > 1 && g_rand_boolean(rand))
    groups = cin == 3 ? 3 : (g_rand_boolean(rand) ? 2 : 4);
  int64_t k[3], s[3], p[3], op[3], d[3];
  double fan = (double)(cin / groups);
  for (int a = 0; a < rank; a++) {
    k[a] = g_rand_int_range(rand, 1, 5);
    s[a] = g_rand_int_range(rand, 1, 4);
    d[a] = g_rand_int_range(rand, 1, 3);
    op[a] = g_rand_int_range(rand, 0, (gint32)MAX(s[a], d[a]));
    p[a] = g_rand_int_range(rand, 0, (gint32)(d[a] * (k[a] - 1) + op[a]) + 1);
    fan *= (double)MAX(1, (k[a] + s[a] - 1) / s[a]);
  }
  int64_t n_weight = cin * (cout / groups);
  for (int a = 0; a < rank; a++)
    n_weight *= k[a];
  float *w = g_new(float, n_weight), bias[4];
  for (int64_t i = 0; i < n_weight; i++)
    w[i] = (float)(g_rand_double_range(rand, -0.5, 1.5) / fan);
  for (int i = 0; i < 4; i++)
    bias[i] = (float)g_rand_double_range(rand, -0.1, 0.1);
  GString *meta = g_string_new(NULL);
  const char *keys[4] = {"stride", "padding", "output_padding", "dilation"};
  const int64_t *values[4] = {s, p, op, d};
  for (int i = 0; i < 4; i++) {
    g_string_append_printf(meta, "\"%s\":\"[", keys[i]);
    for (int a = 0; a < rank; a++)
      g_string_append_printf(meta, "%s%" G_GINT64_FORMAT, a ? "," : "", values[i][a]);
    g_string_append(meta, "]\",");
  }
  g_string_append_printf(meta, "\"groups\":\"%" G_GINT64_FORMAT "\"", groups);
  gchar *name = g_strdup_printf("random%dd_%d.safetensors", rank, index);
  out->path = tmp_path(name);
  g_free(name);
  fail_unless(write_test_model(out->path, rank, cin, cout / groups, k, w, cout,
                               g_rand_boolean(rand) ? bias : NULL, meta->str));
  g_string_free(meta, TRUE);
  g_free(w);
  out->layer = load_layer(out->path);
  out->p = ct_layer_params(out->layer);
}

static void random_layer_clear(RandomLayer *l) {
  ct_layer_free(l->layer);
  g_free(l->path);
}

static int64_t out_length(const ct_params *p, int axis, int64_t in) {
  int64_t out;
  fail_unless(ct_axis_output_length(ct_params_axis(p, axis), in, &out) == CT_OK);
  return out;
}

/* A random input length with at least one output on that axis. */
static int random_size(GRand *rand, const ct_params *p, int axis, int max_extra) {
  int lo = 1;
  while (out_length(p, axis, lo) < 1)
    lo++;
  return lo + g_rand_int_range(rand, 0, max_extra + 1);
}

/* Every third round has frames large enough for the kernels to split the
 * work between threads. */
static int size_range(int round) {
  return round % 3 == 2 ? 80 : 10;
}

static guint16 *random_levels(GRand *rand, const FormatDesc *f, gsize n) {
  guint16 *v = g_new(guint16, n);
  for (gsize i = 0; i < n; i++)
    v[i] = (guint16)g_rand_int_range(rand, 0, f->bytes == 2 ? 65536 : 256);
  return v;
}

/* Compares an output frame with planar floats [C][H][W] (channel stride
 * chan_stride) quantised for the output format: bitwise, or within tol
 * levels. Returns the largest difference. */
static guint compare_frame(const guint16 *got, const OutCaps *oc, const float *expected,
                           gsize chan_stride, guint tol, const char *what) {
  const float scale = level_scale(oc->format);
  const gsize plane = (gsize)oc->width * (gsize)oc->height;
  guint worst = 0;
  for (int c = 0; c < oc->format->n_comp; c++)
    for (gsize i = 0; i < plane; i++) {
      guint want = quantise(expected[(gsize)c * chan_stride + i], scale);
      guint have = got[(gsize)c * plane + i];
      guint diff = have > want ? have - want : want - have;
      if (diff > worst)
        worst = diff;
      if (diff > tol) /* fail_unless costs a system call even when it passes */
        fail("%s: channel %d, x %d, y %d: %u, expected %u (float %.9g, format %s)", what,
             c, (int)(i % (gsize)oc->width), (int)(i / (gsize)oc->width), have, want,
             (double)expected[(gsize)c * chan_stride + i], oc->format->name);
    }
  return worst;
}

/* The picture of an output frame (its levels; row padding is no part of it). */
static GBytes *frame_levels(GstBuffer *buf, const OutCaps *oc) {
  guint16 *levels = read_frame(buf, oc);
  return g_bytes_new_take(levels, sizeof(guint16) * (gsize)oc->format->n_comp *
                                      (gsize)oc->width * (gsize)oc->height);
}

/* Runs with n-threads = 1, 2, 3: the output must not depend on it. */
#define N_THREAD_RUNS 3

/* Output of n-threads = 1 against n-threads = n: identical pictures. */
static void compare_runs(GPtrArray *a, GPtrArray *b, int n, const char *what) {
  fail_unless(a->len == b->len, "%s: %u frames with 1 thread, %u with %d", what, a->len,
              b->len, n);
  for (guint i = 0; i < a->len; i++)
    fail_unless(g_bytes_equal(g_ptr_array_index(a, i), g_ptr_array_index(b, i)),
                "%s: frame %u differs between n-threads=1 and n-threads=%d", what, i, n);
}

static gboolean saw_eos(GstHarness *h) {
  GstEvent *ev;
  gboolean eos = FALSE;
  while ((ev = gst_harness_try_pull_event(h))) {
    eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  return eos;
}

/* ---- 1. convtranspose2d: bitwise one-shot, per frame ---------------------------- */

GST_START_TEST(test_2d_bitwise_random) {
  GRand *rand = g_rand_new_with_seed(2002);
  for (int round = 0; round < 48; round++) {
    RandomLayer rl;
    random_layer(rand, 2, round, &rl);
    const ct_params *p = rl.p;
    const int height = random_size(rand, p, 0, size_range(round)),
              width = random_size(rand, p, 1, size_range(round));
    const FormatDesc *fin = random_format(rand, (int)p->in_channels);
    const int n_frames = g_rand_int_range(rand, 1, 6);
    const gsize in_plane = (gsize)width * (gsize)height;
    const int64_t out_h = out_length(p, 0, height), out_w = out_length(p, 1, width);
    const gsize out_plane = (gsize)(out_h * out_w);
    guint16 *levels = random_levels(rand, fin, (gsize)n_frames * fin->n_comp * in_plane);
    gboolean *padded = g_new(gboolean, n_frames);
    GstClockTime *pts = g_new(GstClockTime, n_frames),
                 *dur = g_new(GstClockTime, n_frames);
    float *expected = g_new(float, (gsize)n_frames *(gsize)p->out_channels *out_plane);
    float *planar = g_new(float, fin->n_comp *in_plane);
    for (int f = 0; f < n_frames; f++) {
      const guint16 *src = levels + (gsize)f * fin->n_comp * in_plane;
      for (gsize i = 0; i < fin->n_comp * in_plane; i++)
        planar[i] = (float)src[i] / level_scale(fin);
      int64_t shape[CT_MAX_RANK] = {height, width};
      char msg[256];
      fail_unless(ct_forward(rl.layer, shape, planar,
                             expected + (gsize)f * (gsize)p->out_channels * out_plane,
                             msg, sizeof msg) == CT_OK,
                  "%s", msg);
      padded[f] = g_rand_int_range(rand, 0, 3) == 0;
      /* Irregular stamps: the element must copy them, not compute them. */
      pts[f] = GST_SECOND + (GstClockTime)f * 41 * GST_MSECOND + (GstClockTime)round;
      dur[f] = (GstClockTime)(17 + f) * GST_MSECOND + 3;
      if (round == 1 && f == n_frames - 1)
        pts[f] = dur[f] = GST_CLOCK_TIME_NONE;
    }
    gchar *what =
        g_strdup_printf("round %d: %s %dx%d, %" G_GINT64_FORMAT "->%" G_GINT64_FORMAT
                        " g%" G_GINT64_FORMAT " k%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                        " s%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " p%" G_GINT64_FORMAT
                        "x%" G_GINT64_FORMAT " op%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                        " d%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ", %d frames",
                        round, fin->name, width, height, p->in_channels, p->out_channels,
                        p->groups, p->kernel[0], p->kernel[1], p->stride[0], p->stride[1],
                        p->padding[0], p->padding[1], p->output_padding[0],
                        p->output_padding[1], p->dilation[0], p->dilation[1], n_frames);
    GPtrArray *runs[N_THREAD_RUNS];
    for (int t = 0; t < N_THREAD_RUNS; t++) {
      runs[t] = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
      GstHarness *h = harness_for("convtranspose2d", rl.path, t + 1);
      gchar *caps = video_caps(fin, width, height, 25, 1);
      gst_harness_set_src_caps_str(h, caps);
      g_free(caps);
      for (int f = 0; f < n_frames; f++) {
        GstBuffer *buf = make_frame(
            fin, width, height, levels + (gsize)f * fin->n_comp * in_plane, padded[f]);
        GST_BUFFER_PTS(buf) = pts[f];
        GST_BUFFER_DURATION(buf) = dur[f];
        GstFlowReturn ret = gst_harness_push(h, buf);
        fail_unless(ret == GST_FLOW_OK, "%s: push: %s", what, gst_flow_get_name(ret));
        GstBuffer *out = gst_harness_try_pull(h);
        fail_unless(out != NULL, "%s: frame %d gives its output at once", what, f);
        fail_unless(gst_harness_try_pull(h) == NULL, "%s: one output per frame", what);
        fail_unless(GST_BUFFER_PTS(out) == pts[f] && GST_BUFFER_DURATION(out) == dur[f],
                    "%s: frame %d keeps PTS/DURATION", what, f);
        OutCaps oc = output_caps(h);
        fail_unless(oc.width == out_w && oc.height == out_h, "%s: output %dx%d", what,
                    oc.width, oc.height);
        fail_unless(oc.format->n_comp == p->out_channels);
        fail_unless(oc.fps_n == 25 && oc.fps_d == 1, "%s: same frame rate", what);
        if (oc.format->n_comp == fin->n_comp)
          fail_unless(oc.format == fin, "%s: format %s kept, got %s", what, fin->name,
                      oc.format->name);
        guint16 *got = read_frame(out, &oc);
        compare_frame(got, &oc, expected + (gsize)f * (gsize)p->out_channels * out_plane,
                      out_plane, 0, what);
        g_free(got);
        g_ptr_array_add(runs[t], frame_levels(out, &oc));
        gst_buffer_unref(out);
      }
      gst_harness_push_event(h, gst_event_new_eos());
      fail_unless(gst_harness_try_pull(h) == NULL, "%s: nothing more at EOS", what);
      fail_unless(saw_eos(h));
      gst_harness_teardown(h);
    }
    for (int t = 1; t < N_THREAD_RUNS; t++)
      compare_runs(runs[0], runs[t], t + 1, what);
    for (int t = 0; t < N_THREAD_RUNS; t++)
      g_ptr_array_unref(runs[t]);
    g_free(what);
    g_free(planar);
    g_free(expected);
    g_free(pts);
    g_free(dur);
    g_free(padded);
    g_free(levels);
    random_layer_clear(&rl);
  }
  g_rand_free(rand);
}
GST_END_TEST;

/* ---- 2. convtranspose3d: streamed over frames ----------------------------------- */

/* Pulls what the element has output so far, checks each frame against the
 * one-shot output [Cout][T'][H'][W'] and its timestamps. */
static int pull_frames_3d(GstHarness *h, const ct_params *p, const float *expected,
                          int64_t out_t, gsize out_plane, GstClockTime base, int fps_n,
                          int fps_d, int have, GPtrArray *run, const char *what) {
  GstBuffer *out;
  while ((out = gst_harness_try_pull(h))) {
    fail_unless(have < out_t, "%s: more than the %" G_GINT64_FORMAT " output frames",
                what, out_t);
    GstClockTime start = base + gst_util_uint64_scale((guint64)have, GST_SECOND * fps_d,
                                                      (guint64)fps_n * p->stride[0]);
    GstClockTime end = base + gst_util_uint64_scale((guint64)have + 1, GST_SECOND * fps_d,
                                                    (guint64)fps_n * p->stride[0]);
    fail_unless(GST_BUFFER_PTS(out) == start,
                "%s: output frame %d PTS %" GST_TIME_FORMAT
                ", expected %" GST_TIME_FORMAT,
                what, have, GST_TIME_ARGS(GST_BUFFER_PTS(out)), GST_TIME_ARGS(start));
    fail_unless(GST_BUFFER_DURATION(out) == end - start,
                "%s: output frame %d DURATION %" GST_TIME_FORMAT, what, have,
                GST_TIME_ARGS(GST_BUFFER_DURATION(out)));
    OutCaps oc = output_caps(h);
    guint16 *got = read_frame(out, &oc);
    gchar *frame_what = g_strdup_printf("%s, output frame %d", what, have);
    compare_frame(got, &oc, expected + (gsize)have * out_plane, (gsize)out_t * out_plane,
                  0, frame_what);
    g_free(frame_what);
    g_free(got);
    if (run)
      g_ptr_array_add(run, frame_levels(out, &oc));
    gst_buffer_unref(out);
    have++;
  }
  return have;
}

GST_START_TEST(test_3d_bitwise_random) {
  static const int rates[3][2] = {{25, 1}, {30000, 1001}, {24, 1}};
  GRand *rand = g_rand_new_with_seed(3003);
  for (int round = 0; round < 48; round++) {
    RandomLayer rl;
    random_layer(rand, 3, round, &rl);
    const ct_params *p = rl.p;
    const int n_frames = g_rand_int_range(rand, 1, 8);
    const int height = random_size(rand, p, 1, size_range(round)),
              width = random_size(rand, p, 2, size_range(round));
    const int *rate = rates[g_rand_int_range(rand, 0, 3)];
    const FormatDesc *fin = random_format(rand, (int)p->in_channels);
    const gsize in_plane = (gsize)width * (gsize)height;
    const int64_t out_t = MAX(0, out_length(p, 0, n_frames));
    const int64_t out_h = out_length(p, 1, height), out_w = out_length(p, 2, width);
    const gsize out_plane = (gsize)(out_h * out_w);
    guint16 *levels = random_levels(rand, fin, (gsize)n_frames * fin->n_comp * in_plane);
    /* The clip as one [C][T][H][W] input. */
    float *planar = g_new(float, (gsize)fin->n_comp *n_frames *in_plane);
    for (int f = 0; f < n_frames; f++)
      for (int c = 0; c < fin->n_comp; c++)
        for (gsize i = 0; i < in_plane; i++)
          planar[((gsize)c * n_frames + f) * in_plane + i] =
              (float)levels[((gsize)f * fin->n_comp + c) * in_plane + i] /
              level_scale(fin);
    float *expected =
        g_new0(float, (gsize)p->out_channels *(gsize)MAX(out_t, 1) * out_plane);
    if (out_t > 0) {
      int64_t shape[CT_MAX_RANK] = {n_frames, height, width};
      char msg[256];
      fail_unless(ct_forward(rl.layer, shape, planar, expected, msg, sizeof msg) == CT_OK,
                  "%s", msg);
    }
    gchar *what = g_strdup_printf(
        "round %d: %s %dx%d x %d frames @%d/%d, %" G_GINT64_FORMAT "->%" G_GINT64_FORMAT
        " g%" G_GINT64_FORMAT " T: k%" G_GINT64_FORMAT " s%" G_GINT64_FORMAT
        " p%" G_GINT64_FORMAT " op%" G_GINT64_FORMAT " d%" G_GINT64_FORMAT,
        round, fin->name, width, height, n_frames, rate[0], rate[1], p->in_channels,
        p->out_channels, p->groups, p->kernel[0], p->stride[0], p->padding[0],
        p->output_padding[0], p->dilation[0]);
    const GstClockTime base = 2 * GST_SECOND + 12345;
    GPtrArray *runs[N_THREAD_RUNS];
    for (int t = 0; t < N_THREAD_RUNS; t++) {
      runs[t] = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
      GstHarness *h = harness_for("convtranspose3d", rl.path, t + 1);
      gst_harness_set_upstream_latency(h, 5 * GST_MSECOND);
      gchar *caps = video_caps(fin, width, height, rate[0], rate[1]);
      gst_harness_set_src_caps_str(h, caps);
      g_free(caps);
      int have = 0;
      for (int f = 0; f < n_frames; f++) {
        GstBuffer *buf =
            make_frame(fin, width, height, levels + (gsize)f * fin->n_comp * in_plane,
                       g_rand_int_range(rand, 0, 3) == 0);
        GST_BUFFER_PTS(buf) =
            base + gst_util_uint64_scale((guint64)f, GST_SECOND * rate[1], rate[0]);
        GST_BUFFER_DURATION(buf) =
            base + gst_util_uint64_scale((guint64)f + 1, GST_SECOND * rate[1], rate[0]) -
            GST_BUFFER_PTS(buf);
        GstFlowReturn ret = gst_harness_push(h, buf);
        fail_unless(ret == GST_FLOW_OK, "%s: push: %s", what, gst_flow_get_name(ret));
        if (f == 0) {
          OutCaps oc = output_caps(h);
          gint want_n, want_d;
          gst_util_fraction_multiply(rate[0], rate[1], (gint)p->stride[0], 1, &want_n,
                                     &want_d);
          fail_unless(oc.fps_n == want_n && oc.fps_d == want_d,
                      "%s: framerate %d/%d, expected %d/%d", what, oc.fps_n, oc.fps_d,
                      want_n, want_d);
          fail_unless(oc.width == out_w && oc.height == out_h, "%s: output %dx%d", what,
                      oc.width, oc.height);
          GstClockTime want =
              5 * GST_MSECOND + gst_util_uint64_scale((guint64)ct_latency_output_steps(p),
                                                      GST_SECOND * rate[1],
                                                      (guint64)rate[0] * p->stride[0]);
          GstClockTime got = gst_harness_query_latency(h);
          fail_unless(got == want,
                      "%s: latency %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT,
                      what, GST_TIME_ARGS(got), GST_TIME_ARGS(want));
        }
        have = pull_frames_3d(h, p, expected, out_t, out_plane, base, rate[0], rate[1],
                              have, runs[t], what);
        fail_unless(have == ct_stream_emitted(p, f + 1),
                    "%s: %d frames out after %d in, expected %" G_GINT64_FORMAT, what,
                    have, f + 1, ct_stream_emitted(p, f + 1));
      }
      gst_harness_push_event(h, gst_event_new_eos());
      have = pull_frames_3d(h, p, expected, out_t, out_plane, base, rate[0], rate[1],
                            have, runs[t], what);
      fail_unless(have == out_t, "%s: %d frames in all, expected %" G_GINT64_FORMAT, what,
                  have, out_t);
      fail_unless(saw_eos(h), "%s: EOS follows the tail", what);
      gst_harness_teardown(h);
    }
    for (int t = 1; t < N_THREAD_RUNS; t++)
      compare_runs(runs[0], runs[t], t + 1, what);
    for (int t = 0; t < N_THREAD_RUNS; t++)
      g_ptr_array_unref(runs[t]);
    g_free(what);
    g_free(expected);
    g_free(planar);
    g_free(levels);
    random_layer_clear(&rl);
  }
  g_rand_free(rand);
}
GST_END_TEST;

/* ---- 3./4. format families, channel order, format choice ------------------------ */

/* One frame of `fin` through the permutation model of its channel count;
 * downstream optionally demands `sink_format`. Output channel i must be
 * input component (i + 1) % C, read at the byte the format puts it. */
static void check_permutation(const char *factory, const FormatDesc *fin,
                              const char *sink_format, gboolean padded) {
  const int rank = g_str_equal(factory, "convtranspose2d") ? 2 : 3;
  const int width = 13, height = 7, n = fin->n_comp;
  GRand *rand = g_rand_new_with_seed(97);
  guint16 *levels = random_levels(rand, fin, (gsize)n * width * height);
  g_rand_free(rand);
  GstHarness *h = harness_for(factory, perm_models[rank][n], -1);
  if (sink_format) {
    gchar *caps = g_strdup_printf("video/x-raw,format=%s", sink_format);
    gst_harness_set_sink_caps_str(h, caps);
    g_free(caps);
  }
  gchar *caps = video_caps(fin, width, height, 30, 1);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  GstBuffer *buf = make_frame(fin, width, height, levels, padded);
  GST_BUFFER_PTS(buf) = 0;
  GST_BUFFER_DURATION(buf) = GST_SECOND / 30;
  GstFlowReturn ret = gst_harness_push(h, buf);
  fail_unless(ret == GST_FLOW_OK, "%s %s%s -> %s: push: %s", factory, fin->name,
              padded ? " (padded)" : "", sink_format ? sink_format : "any",
              gst_flow_get_name(ret));
  gst_harness_push_event(h, gst_event_new_eos());
  GstBuffer *out = gst_harness_pull(h);
  fail_unless(out != NULL);
  OutCaps oc = output_caps(h);
  const char *want_format = sink_format ? sink_format : fin->name;
  fail_unless(g_str_equal(oc.format->name, want_format),
              "%s: %s in gives %s out, expected %s", factory, fin->name, oc.format->name,
              want_format);
  fail_unless(oc.width == width && oc.height == height);
  guint16 *got = read_frame(out, &oc);
  const gsize plane = (gsize)width * height;
  for (int c = 0; c < n; c++)
    for (gsize i = 0; i < plane; i++) {
      guint16 in = levels[(gsize)((c + 1) % n) * plane + i];
      guint want = quantise((float)in / level_scale(fin), level_scale(oc.format));
      if (got[(gsize)c * plane + i] != want)
        fail("%s %s%s -> %s: channel %d at x %d y %d is %u, expected %u (input "
             "component %d)",
             factory, fin->name, padded ? " (padded)" : "", oc.format->name, c,
             (int)(i % width), (int)(i / width), got[(gsize)c * plane + i], want,
             (c + 1) % n);
    }
  g_free(got);
  gst_buffer_unref(out);
  fail_unless(gst_harness_try_pull(h) == NULL);
  gst_harness_teardown(h);
  g_free(levels);
}

GST_START_TEST(test_format_families) {
  const char *factories[2] = {"convtranspose2d", "convtranspose3d"};
  for (int e = 0; e < 2; e++)
    for (guint i = 0; i < G_N_ELEMENTS(format_table); i++)
      for (int padded = 0; padded < 2; padded++)
        check_permutation(factories[e], &format_table[i], NULL, padded);
}
GST_END_TEST;

/* Downstream demanding another format of the same channel count works. */
GST_START_TEST(test_downstream_format) {
  const char *pairs[][2] = {
      {"RGB", "BGR"},   {"RGB", "GBR"},   {"BGRx", "RGB"},        {"GBR", "xRGB"},
      {"RGBA", "ARGB"}, {"ABGR", "GBRA"}, {"GRAY8", "GRAY16_LE"}, {"GRAY16_LE", "GRAY8"}};
  const char *factories[2] = {"convtranspose2d", "convtranspose3d"};
  for (int e = 0; e < 2; e++)
    for (guint i = 0; i < G_N_ELEMENTS(pairs); i++)
      check_permutation(factories[e], format_desc(pairs[i][0]), pairs[i][1], i % 2 == 1);
}
GST_END_TEST;

/* Pushes one frame of `format` (caps first) and returns the flow and the
 * message of the first error the element posted (NULL if none; an error
 * from anything else is a failure). */
static GstFlowReturn push_expecting_error(GstHarness *h, const FormatDesc *f, int width,
                                          int height, gchar **error_text) {
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  gchar *caps = video_caps(f, width, height, 30, 1);
  gst_harness_set_src_caps_str(h, caps);
  g_free(caps);
  guint16 *levels = g_new0(guint16, (gsize)f->n_comp * width * height);
  GstFlowReturn ret = gst_harness_push(h, make_frame(f, width, height, levels, FALSE));
  g_free(levels);
  *error_text = NULL;
  gboolean from_element = TRUE;
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  if (msg) {
    GError *error;
    gst_message_parse_error(msg, &error, NULL);
    from_element = GST_MESSAGE_SRC(msg) == GST_OBJECT(h->element);
    *error_text = g_strdup(error->message);
    g_error_free(error);
    gst_message_unref(msg);
  }
  gst_element_set_bus(h->element, NULL);
  gst_object_unref(bus);
  fail_unless(from_element, "the error comes from the element: %s", *error_text);
  return ret;
}

GST_START_TEST(test_wrong_channels) {
  const char *factories[2] = {"convtranspose2d", "convtranspose3d"};
  const struct {
    const char *format;
    int model_c;
  } cases[] = {{"RGBA", 3}, {"GRAY8", 3}, {"RGB", 4}, {"GBRA", 1}, {"BGRx", 4}};
  for (int e = 0; e < 2; e++)
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
      const FormatDesc *f = format_desc(cases[i].format);
      const gchar *model = perm_models[e + 2][cases[i].model_c];
      GstHarness *h = harness_for(factories[e], model, -1);
      gchar *text;
      GstFlowReturn ret = push_expecting_error(h, f, 8, 6, &text);
      fail_unless(ret == GST_FLOW_NOT_NEGOTIATED, "%s, %s into %d channels: flow %s",
                  factories[e], f->name, cases[i].model_c, gst_flow_get_name(ret));
      gchar *needs = g_strdup_printf("needs %d input channels", cases[i].model_c);
      gchar *has = g_strdup_printf("%d components", f->n_comp);
      fail_unless(text && strstr(text, needs) && strstr(text, has) &&
                      strstr(text, f->name) && strstr(text, model),
                  "%s, %s into %d channels: message %s", factories[e], f->name,
                  cases[i].model_c, text);
      g_free(needs);
      g_free(has);
      g_free(text);
      fail_unless(gst_harness_try_pull(h) == NULL, "no output");
      gst_harness_teardown(h);
    }
}
GST_END_TEST;

/* Moves the element to READY and returns the error posted, or NULL. */
static gchar *ready_error(const gchar *factory, const gchar *model) {
  GstElement *e = gst_element_factory_make(factory, NULL);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
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

GST_START_TEST(test_wrong_rank) {
  gchar *text = ready_error("convtranspose2d", perm_models[3][3]);
  fail_unless(text && strstr(text, "needs a 2d layer") && strstr(text, perm_models[3][3]),
              "3d model in convtranspose2d: %s", text);
  g_free(text);
  text = ready_error("convtranspose3d", perm_models[2][3]);
  fail_unless(text && strstr(text, "needs a 3d layer") && strstr(text, perm_models[2][3]),
              "2d model in convtranspose3d: %s", text);
  g_free(text);
  /* A 1d model, too. */
  gchar *path = tmp_path("one_d.safetensors");
  float w[1] = {1};
  int64_t k = 1;
  fail_unless(write_test_model(path, 1, 1, 1, &k, w, 1, NULL, NULL));
  text = ready_error("convtranspose3d", path);
  fail_unless(text && strstr(text, "needs a 3d layer"), "1d model: %s", text);
  g_free(text);
  text = ready_error("convtranspose2d", path);
  fail_unless(text && strstr(text, "needs a 2d layer"), "1d model: %s", text);
  g_free(text);
  g_free(path);
  text = ready_error("convtranspose2d", perm_models[2][3]);
  fail_unless(text == NULL, "a good model loads: %s", text);
  text = ready_error("convtranspose3d", perm_models[3][4]);
  fail_unless(text == NULL, "a good model loads: %s", text);
}
GST_END_TEST;

static gchar *golden_path(const gchar *name) {
  const gchar *dir = g_getenv("CT_GOLDEN_DIR");
  fail_unless(dir != NULL, "CT_GOLDEN_DIR is set by meson");
  return g_build_filename(dir, "video", name, NULL);
}

/* Upstream caps follow the layer backwards: 1280x720 downstream of a k4 s2 p1
 * layer is 640x360 upstream; a 3d T stride divides the frame rate. */
GST_START_TEST(test_caps_upstream) {
  gchar *model = golden_path("up2x_2d.safetensors");
  GstHarness *h = harness_for("convtranspose2d", model, -1);
  gst_harness_set_sink_caps_str(h, "video/x-raw,format=BGR,width=1280,height=720,"
                                   "framerate=30/1");
  GstPad *sink = gst_element_get_static_pad(h->element, "sink");
  GstCaps *caps = gst_pad_query_caps(sink, NULL);
  fail_unless(!gst_caps_is_empty(caps));
  GstStructure *s = gst_caps_get_structure(caps, 0);
  gint width = 0, height = 0;
  fail_unless(gst_structure_get_int(s, "width", &width) && width == 640, "width %d",
              width);
  fail_unless(gst_structure_get_int(s, "height", &height) && height == 360, "height %d",
              height);
  gst_caps_unref(caps);
  /* 1281 wide cannot come out of a stride-2 layer. */
  gst_harness_set_sink_caps_str(h, "video/x-raw,format=RGB,width=1281,height=720,"
                                   "framerate=30/1");
  caps = gst_pad_query_caps(sink, NULL);
  fail_unless(gst_caps_is_empty(caps), "no input gives 1281 columns: %" GST_PTR_FORMAT,
              caps);
  gst_caps_unref(caps);
  gst_object_unref(sink);
  gst_harness_teardown(h);
  g_free(model);

  model = golden_path("t2x_3d.safetensors");
  h = harness_for("convtranspose3d", model, -1);
  gst_harness_set_sink_caps_str(h, "video/x-raw,format=RGB,width=640,height=360,"
                                   "framerate=60000/1001");
  sink = gst_element_get_static_pad(h->element, "sink");
  caps = gst_pad_query_caps(sink, NULL);
  fail_unless(!gst_caps_is_empty(caps));
  gint n = 0, d = 0;
  fail_unless(
      gst_structure_get_fraction(gst_caps_get_structure(caps, 0), "framerate", &n, &d) &&
          n == 30000 && d == 1001,
      "upstream framerate %d/%d", n, d);
  gst_caps_unref(caps);
  gst_object_unref(sink);
  gst_harness_teardown(h);
  g_free(model);
}
GST_END_TEST;

/* Downstream demands 1280x720 of a 641x361 input through a k4 s2 p1 layer,
 * which gives 1282x722: negotiation fails, and the element must say so. */
GST_START_TEST(test_impossible_size) {
  gchar *model = golden_path("up2x_2d.safetensors");
  GstHarness *h = harness_for("convtranspose2d", model, -1);
  gst_harness_set_sink_caps_str(h, "video/x-raw,format=RGB,width=1280,height=720,"
                                   "framerate=30/1");
  gchar *text;
  GstFlowReturn ret = push_expecting_error(h, format_desc("RGB"), 641, 361, &text);
  GstBuffer *out = gst_harness_try_pull(h);
  gboolean had_output = out != NULL;
  if (out)
    gst_buffer_unref(out);
  /* Clean up first: the assertions below may end the test. */
  gst_harness_teardown(h);
  g_free(model);
  char message[512];
  g_snprintf(message, sizeof message, "%s", text ? text : "");
  g_free(text);
  fail_unless(!had_output, "no output");
  fail_unless(ret == GST_FLOW_NOT_NEGOTIATED, "flow %s", gst_flow_get_name(ret));
  fail_unless(
      *message != 0,
      "convtranspose2d posts no error when downstream refuses the 1282x722 that a "
      "641x361 input gives (the push only returns %s)",
      gst_flow_get_name(ret));
  /* A clear error names the sizes involved (the input's or what it gives). */
  fail_unless(strstr(message, "641") || strstr(message, "1282"),
              "the error does not name the sizes: %s", message);
}
GST_END_TEST;

/* ---- 5. PyTorch's output (golden data) ------------------------------------------ */

/* Input component c of pixel (x, y) in frame t, as make_video_golden.py. */
static guint16 golden_input(int t, int c, int y, int x) {
  return (guint16)((3 * x + 5 * y + 70 * c + 40 * t) % 256);
}

enum { GOLDEN_W = 640, GOLDEN_H = 360 };

static guint8 *read_gz(const gchar *path, gsize size) {
  gchar *data;
  gsize len;
  GError *error = NULL;
  fail_unless(g_file_get_contents(path, &data, &len, &error), "%s",
              error ? error->message : "");
  GZlibDecompressor *z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  guint8 *out = g_malloc(size + 1);
  gsize in_pos = 0, out_pos = 0;
  for (;;) {
    gsize read = 0, written = 0;
    GConverterResult r = g_converter_convert(
        G_CONVERTER(z), data + in_pos, len - in_pos, out + out_pos, size + 1 - out_pos,
        G_CONVERTER_INPUT_AT_END, &read, &written, &error);
    fail_unless(r != G_CONVERTER_ERROR, "%s: %s", path, error ? error->message : "");
    in_pos += read;
    out_pos += written;
    if (r == G_CONVERTER_FINISHED)
      break;
    fail_unless(read || written, "%s: no progress", path);
  }
  fail_unless(out_pos == size, "%s: %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT,
              path, out_pos, size);
  g_object_unref(z);
  g_free(data);
  return out;
}

static GstBuffer *golden_frame(int t) {
  guint16 *levels = g_new(guint16, 3 * GOLDEN_W * GOLDEN_H);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < GOLDEN_H; y++)
      for (int x = 0; x < GOLDEN_W; x++)
        levels[(c * GOLDEN_H + y) * GOLDEN_W + x] = golden_input(t, c, y, x);
  GstBuffer *buf = make_frame(format_desc("RGB"), GOLDEN_W, GOLDEN_H, levels, FALSE);
  g_free(levels);
  return buf;
}

/* Largest difference of an output frame from the expected planar bytes. */
static guint golden_compare(GstBuffer *out, const OutCaps *oc, const guint8 *expected,
                            const char *what) {
  guint16 *got = read_frame(out, oc);
  const gsize n = (gsize)3 * oc->width * oc->height;
  guint worst = 0;
  gsize off_by_one = 0;
  for (gsize i = 0; i < n; i++) {
    guint diff = (guint)ABS((int)got[i] - (int)expected[i]);
    off_by_one += diff == 1;
    if (diff > worst)
      worst = diff;
    if (diff > 1)
      fail("%s: value %" G_GSIZE_FORMAT " (channel %d, x %d, y %d) is %u, "
           "PyTorch %u",
           what, i, (int)(i / ((gsize)oc->width * oc->height)),
           (int)(i % (gsize)oc->width), (int)(i / (gsize)oc->width % (gsize)oc->height),
           got[i], expected[i]);
  }
  g_free(got);
  printf("# %s: max difference %u level(s), %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
         " values off by one\n",
         what, worst, off_by_one, n);
  return worst;
}

GST_START_TEST(test_golden_2d) {
  gchar *model = golden_path("up2x_2d.safetensors");
  gchar *gz = golden_path("up2x_2d.expected.u8.gz");
  const gsize frame = (gsize)3 * 1280 * 720;
  guint8 *expected = read_gz(gz, 2 * frame);
  GPtrArray *runs[2];
  for (int t = 0; t < 2; t++) {
    runs[t] = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    GstHarness *h = harness_for("convtranspose2d", model, t + 1);
    gst_harness_set_src_caps_str(h, "video/x-raw,format=RGB,width=640,height=360,"
                                    "framerate=30/1,pixel-aspect-ratio=1/1");
    for (int f = 0; f < 2; f++) {
      GstBuffer *buf = golden_frame(f);
      GST_BUFFER_PTS(buf) = gst_util_uint64_scale(f, GST_SECOND, 30);
      GST_BUFFER_DURATION(buf) =
          gst_util_uint64_scale(f + 1, GST_SECOND, 30) - GST_BUFFER_PTS(buf);
      GstClockTime pts = GST_BUFFER_PTS(buf), dur = GST_BUFFER_DURATION(buf);
      fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
      GstBuffer *out = gst_harness_pull(h);
      fail_unless(GST_BUFFER_PTS(out) == pts && GST_BUFFER_DURATION(out) == dur);
      OutCaps oc = output_caps(h);
      fail_unless(oc.width == 1280 && oc.height == 720 &&
                      g_str_equal(oc.format->name, "RGB"),
                  "1280x720 RGB out, got %dx%d %s", oc.width, oc.height, oc.format->name);
      fail_unless(oc.fps_n == 30 && oc.fps_d == 1);
      gchar *what = g_strdup_printf("up2x_2d frame %d (n-threads %d)", f, t + 1);
      golden_compare(out, &oc, expected + f * frame, what);
      g_free(what);
      g_ptr_array_add(runs[t], frame_levels(out, &oc));
      gst_buffer_unref(out);
    }
    gst_harness_push_event(h, gst_event_new_eos());
    fail_unless(gst_harness_try_pull(h) == NULL);
    gst_harness_teardown(h);
  }
  compare_runs(runs[0], runs[1], 2, "up2x_2d");
  g_ptr_array_unref(runs[0]);
  g_ptr_array_unref(runs[1]);
  g_free(expected);
  g_free(gz);
  g_free(model);
}
GST_END_TEST;

/* 3 input frames at 30000/1001 through a 3d layer: PyTorch's frames, as
 * many, stamped from the first input PTS at the output rate. */
static void check_golden_3d(const char *name, int out_w, int out_h, int out_frames) {
  gchar *file = g_strdup_printf("%s.safetensors", name);
  gchar *model = golden_path(file);
  g_free(file);
  file = g_strdup_printf("%s.expected.u8.gz", name);
  gchar *gz = golden_path(file);
  g_free(file);
  const gsize frame = (gsize)3 * out_w * out_h;
  guint8 *expected = read_gz(gz, (gsize)out_frames * frame);
  ct_layer *layer = load_layer(model);
  const ct_params *p = ct_layer_params(layer);
  const int fps_n = 30000, fps_d = 1001;
  const GstClockTime base = 10 * GST_SECOND + 7;
  GstHarness *h = harness_for("convtranspose3d", model, -1);
  gst_harness_set_upstream_latency(h, 0);
  gst_harness_set_src_caps_str(h, "video/x-raw,format=RGB,width=640,height=360,"
                                  "framerate=30000/1001,pixel-aspect-ratio=1/1");
  int have = 0;
  for (int f = 0; f <= 3; f++) {
    if (f < 3) {
      GstBuffer *buf = golden_frame(f);
      GST_BUFFER_PTS(buf) = base + gst_util_uint64_scale(f, GST_SECOND * fps_d, fps_n);
      GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND * fps_d, fps_n);
      fail_unless(gst_harness_push(h, buf) == GST_FLOW_OK);
    } else {
      gst_harness_push_event(h, gst_event_new_eos());
    }
    if (f == 0) {
      OutCaps oc = output_caps(h);
      fail_unless(oc.width == out_w && oc.height == out_h &&
                      g_str_equal(oc.format->name, "RGB"),
                  "%s: %dx%d %s out", name, oc.width, oc.height, oc.format->name);
      fail_unless(oc.fps_n * (gint64)fps_d == (gint64)fps_n * p->stride[0] * oc.fps_d,
                  "%s: framerate %d/%d", name, oc.fps_n, oc.fps_d);
      GstClockTime want =
          gst_util_uint64_scale((guint64)ct_latency_output_steps(p), GST_SECOND * fps_d,
                                (guint64)fps_n * p->stride[0]);
      fail_unless(gst_harness_query_latency(h) == want, "%s: latency", name);
    }
    GstBuffer *out;
    while ((out = gst_harness_try_pull(h))) {
      fail_unless(have < out_frames, "%s: more than %d frames", name, out_frames);
      GstClockTime start =
          base + gst_util_uint64_scale(have, GST_SECOND * fps_d, fps_n * p->stride[0]);
      GstClockTime end = base + gst_util_uint64_scale(have + 1, GST_SECOND * fps_d,
                                                      fps_n * p->stride[0]);
      fail_unless(GST_BUFFER_PTS(out) == start && GST_BUFFER_DURATION(out) == end - start,
                  "%s: frame %d stamped %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT, name,
                  have, GST_TIME_ARGS(GST_BUFFER_PTS(out)),
                  GST_TIME_ARGS(GST_BUFFER_DURATION(out)));
      OutCaps oc = output_caps(h);
      gchar *what = g_strdup_printf("%s output frame %d", name, have);
      golden_compare(out, &oc, expected + (gsize)have * frame, what);
      g_free(what);
      gst_buffer_unref(out);
      have++;
    }
    if (f < 3)
      fail_unless(have == ct_stream_emitted(p, f + 1), "%s: %d frames after %d in", name,
                  have, f + 1);
  }
  fail_unless(have == out_frames, "%s: %d frames, PyTorch has %d", name, have,
              out_frames);
  fail_unless(saw_eos(h));
  gst_harness_teardown(h);
  ct_layer_free(layer);
  g_free(expected);
  g_free(gz);
  g_free(model);
}

GST_START_TEST(test_golden_3d_spatial) {
  check_golden_3d("up2x_3d", 1280, 720, 3);
}
GST_END_TEST;

GST_START_TEST(test_golden_3d_temporal) {
  check_golden_3d("t2x_3d", 640, 360, 6);
}
GST_END_TEST;

/* ---- 6. leaks ------------------------------------------------------------------- */

static Suite *convtranspose_video_suite(void) {
  Suite *s = suite_create("convtranspose-video");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_2d_bitwise_random);
  tcase_add_test(tc, test_3d_bitwise_random);
  tcase_add_test(tc, test_format_families);
  tcase_add_test(tc, test_downstream_format);
  tcase_add_test(tc, test_wrong_channels);
  tcase_add_test(tc, test_wrong_rank);
  tcase_add_test(tc, test_caps_upstream);
  tcase_add_test(tc, test_impossible_size);
  tcase_add_test(tc, test_golden_2d);
  tcase_add_test(tc, test_golden_3d_spatial);
  tcase_add_test(tc, test_golden_3d_temporal);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  make_models();
  int failed =
      gst_check_run_suite(convtranspose_video_suite(), "convtranspose-video", __FILE__);
  remove_models();
  return failed + check_no_leaks();
}
