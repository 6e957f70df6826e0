/* Every golden network (tests/golden/networks) read from its .onnx file
 * and run by the graph engine (kernels/graph.h) as the tool and the
 * elements run it: one-shot against PyTorch's output, then streamed in
 * random chunks (0 and 1 among them) on 1, 2 and 3 threads, which must
 * give the one-shot output bitwise. Every batch item is its own stream.
 *
 *   test_networks [GOLDEN_DIR]   (GOLDEN_DIR: tests/golden) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "kernels/graph.h"
#include "model/onnx.h"
#include "tests/tap.h"
#include "tools/npy.h"

static float *load_npy(const char *path, CtNpy *npy, GBytes **bytes) {
  GMappedFile *f = g_mapped_file_new(path, FALSE, NULL);
  float *out = NULL;
  *bytes = NULL;
  if (f) {
    *bytes = g_mapped_file_get_bytes(f);
    g_mapped_file_unref(f);
    gsize len;
    const guint8 *data = g_bytes_get_data(*bytes, &len);
    if (ct_npy_parse(data, len, npy, NULL))
      out = ct_npy_to_f32(npy, NULL);
  }
  return out;
}

/* The input pushed in random chunks; the outputs' count, -1 on a failure
 * or when a push emits other than its emission rule said. */
static gint64 stream_in_chunks(ct_stage *st, const float *in, gint64 len, float *out,
                               gint64 out_len, GRand *rng) {
  gint64 pos = 0, have = 0, n = 0;
  while (pos < len) {
    gint64 chunk = g_rand_int_range(rng, 0, 4) == 0 ? g_rand_int_range(rng, 0, 2)
                                                    : g_rand_int_range(rng, 2, 12);
    chunk = MIN(chunk, len - pos);
    const gint64 want = ct_stage_push_out_steps(st, chunk);
    if (have + want > out_len ||
        ct_stage_push(st, in + pos * st->in_frame, len * st->in_frame, chunk,
                      out + have * st->out_frame, out_len * st->out_frame, &n) != CT_OK ||
        n != want)
      return -1;
    have += n;
    pos += chunk;
  }
  const gint64 want = ct_stage_finish_out_steps(st);
  if (have + want > out_len ||
      ct_stage_finish(st, out + have * st->out_frame, out_len * st->out_frame, &n) !=
          CT_OK ||
      n != want)
    return -1;
  return have + n;
}

typedef struct {
  ct_pool *pool2, *pool3;
  GRand *rng;
} runners;

/* One golden file: graph per batch item's frame shape (all the same). */
static void check_file(const char *dir, const char *file, runners *run) {
  gchar *path = g_build_filename(dir, file, NULL);
  gchar *name = g_strndup(file, (gsize)(strstr(file, ".opset") - file));
  gchar *in_path = g_strdup_printf("%s/%s.in.npy", dir, name);
  gchar *out_path = g_strdup_printf("%s/%s.out.npy", dir, name);
  GError *error = NULL;
  ct_network *net = ct_onnx_load(path, &error);
  CtNpy in_npy, out_npy;
  GBytes *in_bytes = NULL, *out_bytes = NULL;
  float *in = load_npy(in_path, &in_npy, &in_bytes);
  float *want = load_npy(out_path, &out_npy, &out_bytes);
  char msg[256] = "";
  ct_graph *graph = NULL;
  gboolean ok =
      net && in && want && in_npy.ndim == net->rank + 2 && out_npy.ndim == in_npy.ndim;
  if (!net)
    g_snprintf(msg, sizeof msg, "%s", error->message);
  else if (!ok)
    g_snprintf(msg, sizeof msg, "cannot read %s or %s", in_path, out_path);
  if (ok) {
    graph = ct_graph_new(net, &in_npy.shape[3], msg, sizeof msg);
    ok = graph != NULL;
  }
  ct_stage *st = ok ? ct_graph_stage(graph) : NULL;
  const gint64 batch = ok ? in_npy.shape[0] : 0, len = ok ? in_npy.shape[2] : 0;
  const gint64 out_len = st ? ct_stage_length(st, len) : 0;
  if (st) {
    ok = st->in_channels == in_npy.shape[1] && st->out_channels == out_npy.shape[1] &&
         out_len == out_npy.shape[2] && out_npy.shape[0] == batch;
    for (int a = 1; ok && a < net->rank; a++)
      ok = st->out_frame_shape[a - 1] == out_npy.shape[2 + a];
    if (!ok)
      g_snprintf(msg, sizeof msg, "output shape is not PyTorch's");
  }
  const gint64 in_item = ok ? st->in_channels * len * st->in_frame : 0;
  const gint64 out_item = ok ? st->out_channels * out_len * st->out_frame : 0;
  float *one = g_new0(float, MAX(out_item, 1)),
        *streamed = g_new0(float, MAX(out_item, 1));
  double worst = 0, scale = 1;
  gboolean bitwise = ok;
  for (gint64 b = 0; ok && b < batch; b++) {
    gint64 n = 0;
    ok = ct_graph_forward(graph, in + b * in_item, len, one, &n) == CT_OK && n == out_len;
    if (!ok) {
      g_snprintf(msg, sizeof msg, "one-shot failed: %s", ct_graph_error(graph));
      break;
    }
    for (gint64 i = 0; i < out_item; i++) {
      worst = fmax(worst, fabs(one[i] - want[b * out_item + i]));
      scale = fmax(scale, fabs(want[b * out_item + i]));
    }
    for (int threads = 1; bitwise && threads <= 3; threads++) {
      ct_stage_use_pool(st, threads == 1 ? NULL : threads == 2 ? run->pool2 : run->pool3);
      memset(streamed, 0, sizeof(float) * (size_t)MAX(out_item, 1));
      bitwise = stream_in_chunks(st, in + b * in_item, len, streamed, out_len,
                                 run->rng) == out_len &&
                memcmp(streamed, one, sizeof(float) * (size_t)out_item) == 0;
      if (!bitwise)
        g_snprintf(msg, sizeof msg, "batch item %lld on %d threads differs%s%s",
                   (long long)b, threads, ct_graph_error(graph)[0] ? ": " : "",
                   ct_graph_error(graph));
    }
    ct_stage_use_pool(st, NULL);
  }
  tap_ok(ok && worst <= 1e-4 * scale,
         "%s: one-shot gives PyTorch's output (max |diff| %.3g, tolerance %.3g)%s%s",
         file, worst, 1e-4 * scale, msg[0] ? ": " : "", msg);
  tap_ok(ok && bitwise,
         "%s: streamed in random chunks on 1-3 threads, bitwise one-shot%s%s", file,
         msg[0] ? ": " : "", msg);
  g_free(one);
  g_free(streamed);
  ct_graph_free(graph);
  ct_onnx_free(net);
  g_clear_error(&error);
  g_free(in);
  g_free(want);
  if (in_bytes)
    g_bytes_unref(in_bytes);
  if (out_bytes)
    g_bytes_unref(out_bytes);
  g_free(in_path);
  g_free(out_path);
  g_free(name);
  g_free(path);
}

int main(int argc, char **argv) {
  const char *golden = argc > 1 ? argv[1] : "tests/golden";
  gchar *dir = g_build_filename(golden, "networks", NULL);
  gchar *tsv = g_build_filename(dir, "ops.tsv", NULL), *text = NULL;
  runners run = {ct_pool_new(2), ct_pool_new(3), g_rand_new_with_seed(17)};
  int files = 0;
  if (tap_ok(g_file_get_contents(tsv, &text, NULL, NULL), "read %s", tsv)) {
    gchar **lines = g_strsplit(text, "\n", -1);
    for (gchar **l = lines; *l; l++) {
      gchar **f = g_strsplit(*l, "\t", 2);
      if (**l != '#' && **l && f[1] && strstr(f[0], ".opset") &&
          !g_str_has_prefix(f[0], "refusals/")) {
        check_file(dir, f[0], &run);
        files++;
      }
      g_strfreev(f);
    }
    g_strfreev(lines);
  }
  tap_ok(files == 63, "ops.tsv lists the 63 golden networks (%d)", files);
  ct_pool_free(run.pool2);
  ct_pool_free(run.pool3);
  g_rand_free(run.rng);
  g_free(text);
  g_free(tsv);
  g_free(dir);
  return tap_done();
}
