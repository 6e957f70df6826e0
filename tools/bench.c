/* convtranspose bench: the cases of bench-cases.md, one-shot and streamed.
 *
 * Buffers are allocated once (large ones on huge pages) and reused across
 * repeats, so the figures measure the kernels, not first-touch page faults.
 * Before timing, each case's result on a reduced input is checked against
 * the reference implementation; a wrong kernel is never reported. */
#include "bench.h"
#include "bench-cases.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/reference.h"
#include "kernels/stream.h"

G_DEFINE_QUARK(ct_bench_error, bench_error)

/* Large buffers on huge pages, touched once here rather than in the timing. */
static float *alloc_buffer(int64_t count) {
  size_t bytes = (size_t)count * sizeof(float);
  size_t huge = 2u << 20;
  void *p = NULL;
  if (posix_memalign(&p, huge, (bytes + huge - 1) / huge * huge) != 0)
    return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
#endif
  memset(p, 0, bytes);
  return p;
}

static void fill_random(GRand *rand, float *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    v[i] = (float)g_rand_double_range(rand, -1, 1);
}

static int64_t product(const int64_t *v, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    p *= v[i];
  return p;
}

/* Stream mode pushes 2d/3d frames as the video elements do: with the zero
 * borders the padding reads (ct_stream_take_padded_frames), so a padded
 * layer reads each row where it is instead of copying it. Returns the input
 * in that layout, the stream then taking it, or NULL where the layer takes
 * frames as they are (no padding on the frame axes, or tap mode). */
static float *bordered_input(ct_stream *st, const float *in, int64_t channels,
                             const int64_t *shape, int rank) {
  if (rank < 2 || ct_stream_take_padded_frames(st, TRUE) != CT_OK)
    return NULL;
  int64_t frame_shape[2] = {1, 1}, offset[2] = {0, 0};
  ct_stream_pushed_frame_layout(st, frame_shape, offset);
  const int64_t plain = product(shape + 1, rank - 1);
  const int64_t bordered = product(frame_shape, rank - 1);
  if (bordered == plain)
    return NULL;
  /* Frame rows: H lines of W for 3d, one line of W for 2d. */
  const int64_t lines = rank == 3 ? shape[1] : 1, width = shape[rank - 1];
  const int64_t padded_width = frame_shape[rank - 2];
  const int64_t first = rank == 3 ? offset[0] * padded_width + offset[1] : offset[0];
  float *out = alloc_buffer(channels * shape[0] * bordered);
  if (!out) {
    ct_stream_take_padded_frames(st, FALSE);
    return NULL;
  }
  for (int64_t f = 0; f < channels * shape[0]; f++)
    for (int64_t y = 0; y < lines; y++)
      memcpy(out + f * bordered + first + y * padded_width, in + f * plain + y * width,
             (size_t)width * sizeof(float));
  return out;
}

/* Runs the whole input through the stream: one push, or pushes of `step`. */
static void run_once(ct_stream *st, const float *in, const int64_t *shape, float *out,
                     int64_t out_len0, int64_t step) {
  const int64_t frame_in = ct_stream_in_frame_size(st); /* bordered or not */
  const int64_t frame_out = ct_stream_out_frame_size(st);
  const int64_t out_stride = out_len0 * frame_out;
  int64_t done = 0, n;
  if (step <= 0) {
    ct_stream_push(st, in, shape[0] * frame_in, shape[0], out, out_stride, &n);
    done = n;
  } else {
    /* Channel-planar chunks are views into the whole input: channel c of
     * steps [i, i + step) starts at in + c * L * F + i * F. */
    for (int64_t i = 0; i < shape[0]; i += step) {
      int64_t count = step < shape[0] - i ? step : shape[0] - i;
      ct_stream_push(st, in + i * frame_in, shape[0] * frame_in, count,
                     out + done * frame_out, out_stride, &n);
      done += n;
    }
  }
  ct_stream_finish(st, out + done * frame_out, out_stride, &n);
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The fast path against the reference on a reduced input of the same layer. */
static gboolean check_case(const ct_bench_case *c, const ct_layer *layer, int threads,
                           GError **error) {
  const ct_params *p = ct_layer_params(layer);
  int64_t shape[3], out_shape[3];
  for (int a = 0; a < c->rank; a++)
    shape[a] = MIN(c->shape[a], a == 0 && c->rank == 1 ? 3000 : (a == 0 ? 6 : 40));
  if (ct_output_shape(p, shape, out_shape, NULL, 0) != CT_OK)
    return FALSE;
  int64_t n_in = p->in_channels * product(shape, c->rank);
  int64_t n_out = p->out_channels * product(out_shape, c->rank);
  float *in = g_new(float, n_in), *fast = g_new(float, n_out), *ref = g_new(float, n_out);
  GRand *rand = g_rand_new_with_seed(1);
  fill_random(rand, in, n_in);
  g_rand_free(rand);
  ct_stream *st = ct_stream_new(layer, shape + 1, NULL, 0);
  ct_stream_set_threads(st, threads);
  float *bordered = bordered_input(st, in, p->in_channels, shape, c->rank);
  ct_stream_retain_input(st, TRUE);
  run_once(st, bordered ? bordered : in, shape, fast, out_shape[0], c->stream_step);
  ct_stream_free(st);
  free(bordered);
  ct_reference_forward(p, ct_layer_weight(layer), ct_layer_bias(layer), shape, in, ref);
  double err = 0, scale = 1;
  for (int64_t i = 0; i < n_out; i++) {
    err = fmax(err, isnan(fast[i]) ? INFINITY : fabs((double)fast[i] - ref[i]));
    scale = fmax(scale, fabs(ref[i]));
  }
  g_free(in);
  g_free(fast);
  g_free(ref);
  if (err > 1e-4 * scale) {
    g_set_error(error, bench_error_quark(), 0,
                "%s: the fast path disagrees with the reference (max error %g): not "
                "reporting",
                c->name, err);
    return FALSE;
  }
  return TRUE;
}

gboolean ct_bench_run(const gchar *case_list, gint threads, gboolean json,
                      GError **error) {
  gchar **wanted = case_list ? g_strsplit(case_list, ",", -1) : NULL;
  if (wanted)
    for (gchar **w = wanted; *w; w++) {
      gboolean known = FALSE;
      for (guint i = 0; i < CT_BENCH_N_CASES; i++)
        known |= g_str_equal(*w, ct_bench_cases[i].name);
      if (!known) {
        g_set_error(error, bench_error_quark(), 0, "unknown case %s", *w);
        g_strfreev(wanted);
        return FALSE;
      }
    }
  if (threads <= 0)
    threads = (gint)g_get_num_processors();
  GString *out = g_string_new(json ? "[" : "");
  gboolean ok = TRUE, first = TRUE;
  for (guint ci = 0; ok && ci < CT_BENCH_N_CASES; ci++) {
    const ct_bench_case *c = &ct_bench_cases[ci];
    if (wanted && !g_strv_contains((const gchar *const *)wanted, c->name))
      continue;
    ct_params p = ct_bench_case_params(c);
    int64_t n_w = ct_weight_count(&p);
    GRand *rand = g_rand_new_with_seed(ci + 7);
    float *w = g_new(float, n_w), *bias = g_new(float, c->cout);
    fill_random(rand, w, n_w);
    fill_random(rand, bias, c->cout);
    char msg[256];
    ct_layer *layer = ct_layer_new(&p, w, bias, msg, sizeof msg);
    if (!layer || !(ok = check_case(c, layer, threads, error))) {
      ct_layer_free(layer);
      g_free(w);
      g_free(bias);
      g_rand_free(rand);
      ok = FALSE;
      break;
    }
    int64_t out_shape[3];
    ct_output_shape(&p, c->shape, out_shape, NULL, 0);
    const int64_t n_in = c->cin * product(c->shape, c->rank);
    const int64_t n_out = c->cout * product(out_shape, c->rank);
    float *in = alloc_buffer(n_in), *result = alloc_buffer(n_out);
    fill_random(rand, in, n_in);
    /* FLOPs as bench-cases.md counts them: 2 * numel(in) * Cout/g * prod(k). */
    const double flops = 2.0 * (double)n_in * (double)(c->cout / c->groups) *
                         (double)product(c->kernel, c->rank);
    /* The two modes are timed in turn, repeat by repeat, on one stream: the
     * host's speed drifts within seconds, and both then see the same fast
     * and slow periods (their ratio is a goal). */
    ct_stream *st = ct_stream_new(layer, c->shape + 1, msg, sizeof msg);
    ct_stream_set_threads(st, threads);
    float *bordered = bordered_input(st, in, c->cin, c->shape, c->rank);
    const float *pushed[2] = {in, bordered ? bordered : in};
    const int64_t steps[2] = {0, c->stream_step};
    enum { MAX_REPEATS = 64 };
    double times[2][MAX_REPEATS];
    int reps = -1; /* the first round warms up */
    gint64 start_all = g_get_monotonic_time();
    while (reps < MAX_REPEATS &&
           (reps < 5 || g_get_monotonic_time() - start_all < 2 * 1500000)) {
      for (int mode = 0; mode < 2; mode++) {
        ct_stream_take_padded_frames(st, pushed[mode] == bordered);
        /* Pushes are views into one input that outlives them: frames are
         * read in place by the next push, as the 3d element does with its
         * two input buffers. */
        ct_stream_retain_input(st, TRUE);
        gint64 t0 = g_get_monotonic_time();
        run_once(st, pushed[mode], c->shape, result, out_shape[0], steps[mode]);
        if (reps >= 0)
          times[mode][reps] = (double)(g_get_monotonic_time() - t0) / 1000.0;
      }
      if (reps++ < 0)
        start_all = g_get_monotonic_time();
    }
    for (int mode = 0; mode < 2; mode++) {
      qsort(times[mode], (size_t)reps, sizeof(double), compare_double);
      const double *t = times[mode];
      double ms = reps % 2 ? t[reps / 2] : (t[reps / 2 - 1] + t[reps / 2]) / 2;
      double gflops = flops / (ms * 1e6);
      const char *mode_name = mode == 0 ? "oneshot" : "stream";
      if (json)
        g_string_append_printf(out,
                               "%s\n  {\"name\": \"%s\", \"mode\": \"%s\", \"ms\": %.4f, "
                               "\"gflops\": %.3f, \"threads\": %d, \"repeats\": %d}",
                               first ? "" : ",", c->name, mode_name, ms, gflops, threads,
                               reps);
      else
        g_string_append_printf(out, "%s mode=%s ms=%.4f gflops=%.3f\n", c->name,
                               mode_name, ms, gflops);
      first = FALSE;
      if (!json) {
        fputs(out->str, stdout);
        fflush(stdout);
        g_string_truncate(out, 0);
      }
    }
    ct_stream_free(st);
    free(bordered);
    free(in);
    free(result);
    ct_layer_free(layer);
    g_free(w);
    g_free(bias);
    g_rand_free(rand);
  }
  if (json && ok) {
    g_string_append(out, "\n]\n");
    fputs(out->str, stdout);
  }
  g_string_free(out, TRUE);
  g_strfreev(wanted);
  return ok;
}
