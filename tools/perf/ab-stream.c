/* Streams of a bench case through several versions of kernels/stream.c in
 * one process, taking turns run by run on one thread pool, so that every
 * version sees the same fast and slow periods of a noisy host (separate
 * processes minutes apart differ by up to 2x here). Built by
 * tools/perf/ab-stream.sh, which compiles each version with its symbols
 * prefixed (v0_ct_stream_new, ...) and lists them in CT_AB_VARIANTS as
 * X(v0) X(v1) ...; everything else (micro-kernels, pool) is the current
 * build's. The last line times the one-shot with the first version.
 *
 *   ab-stream CASE THREADS ROUNDS      CASE: K1 K3 K4 K5 K7 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/layer.h"
#include "kernels/pool.h"
#include "kernels/stream.h"
#include "tools/bench-cases.h"

typedef struct {
  const char *name;
  ct_stream *(*create)(const ct_layer *, const int64_t *, char *, size_t);
  ct_status (*use_pool)(ct_stream *, ct_pool *);
  void (*retain_input)(ct_stream *, bool);
  ct_status (*take_padded_frames)(ct_stream *, bool);
  void (*pushed_frame_layout)(const ct_stream *, int64_t *, int64_t *);
  ct_status (*push)(ct_stream *, const float *, int64_t, int64_t, float *, int64_t,
                    int64_t *);
  ct_status (*finish)(ct_stream *, float *, int64_t, int64_t *);
  void (*destroy)(ct_stream *);
} version;

#define X(v)                                                                             \
  ct_stream *v##_ct_stream_new(const ct_layer *, const int64_t *, char *, size_t);       \
  ct_status v##_ct_stream_use_pool(ct_stream *, ct_pool *);                              \
  void v##_ct_stream_retain_input(ct_stream *, bool);                                    \
  ct_status v##_ct_stream_take_padded_frames(ct_stream *, bool);                         \
  void v##_ct_stream_pushed_frame_layout(const ct_stream *, int64_t *, int64_t *);       \
  ct_status v##_ct_stream_push(ct_stream *, const float *, int64_t, int64_t, float *,    \
                               int64_t, int64_t *);                                      \
  ct_status v##_ct_stream_finish(ct_stream *, float *, int64_t, int64_t *);              \
  void v##_ct_stream_free(ct_stream *);
CT_AB_VARIANTS
#undef X
#define X(v)                                                                             \
  {#v,                                                                                   \
   v##_ct_stream_new,                                                                    \
   v##_ct_stream_use_pool,                                                               \
   v##_ct_stream_retain_input,                                                           \
   v##_ct_stream_take_padded_frames,                                                     \
   v##_ct_stream_pushed_frame_layout,                                                    \
   v##_ct_stream_push,                                                                   \
   v##_ct_stream_finish,                                                                 \
   v##_ct_stream_free},
static const version versions[] = {CT_AB_VARIANTS};
#undef X
enum { N_VERSIONS = sizeof versions / sizeof versions[0], MAX_ROUNDS = 1000 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Zeroed, on 2 MB boundaries (huge pages, as the bench allocates). */
static float *alloc_floats(int64_t n) {
  const size_t huge = (size_t)2 << 20;
  const size_t bytes = ((size_t)n * sizeof(float) + huge - 1) / huge * huge;
  float *v = aligned_alloc(huge, bytes);
#ifdef MADV_HUGEPAGE
  if (v)
    madvise(v, bytes, MADV_HUGEPAGE);
#endif
  if (v)
    memset(v, 0, bytes);
  return v;
}

static float *random_floats(int64_t n) {
  float *v = alloc_floats(n);
  for (int64_t i = 0; v && i < n; i++)
    v[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  return v;
}

/* The whole input through st, in pushes of `step` steps (0: one push). */
static double run(const version *v, ct_stream *st, const float *in, int64_t frame_in,
                  int64_t steps, int64_t step, float *out, int64_t frame_out,
                  int64_t out_steps) {
  const double t0 = now();
  int64_t done = 0, n;
  const int64_t chunk = step > 0 ? step : steps;
  for (int64_t i = 0; i < steps; i += chunk) {
    const int64_t count = chunk < steps - i ? chunk : steps - i;
    v->push(st, in + i * frame_in, steps * frame_in, count, out + done * frame_out,
            out_steps * frame_out, &n);
    done += n;
  }
  v->finish(st, out + done * frame_out, out_steps * frame_out, &n);
  return now() - t0;
}

int main(int argc, char **argv) {
  /* A case by its name or the part before the first '_' (K1). */
  const ct_bench_case *c = NULL;
  for (int i = 0; argc == 4 && i < CT_BENCH_N_CASES; i++) {
    const char *name = ct_bench_cases[i].name;
    if (strcmp(argv[1], name) == 0 ||
        (strncmp(argv[1], name, strlen(argv[1])) == 0 && name[strlen(argv[1])] == '_'))
      c = &ct_bench_cases[i];
  }
  const int threads = argc == 4 ? atoi(argv[2]) : 0;
  const int rounds = argc == 4 ? atoi(argv[3]) : 0;
  if (!c || c->rank > 2 || threads < 1 || rounds < 2 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "usage: ab-stream K1|K3|K4|K5|K7 THREADS ROUNDS (2-%d)\n",
            MAX_ROUNDS);
    return 2;
  }
  const ct_params p = ct_bench_case_params(c);
  char msg[256];
  float *w = random_floats(ct_weight_count(&p)), *bias = random_floats(c->cout);
  ct_layer *layer = ct_layer_new(&p, w, bias, msg, sizeof msg);
  int64_t out_shape[CT_MAX_RANK] = {1, 1, 1};
  if (!layer || ct_output_shape(&p, c->shape, out_shape, msg, sizeof msg) != CT_OK) {
    fprintf(stderr, "ab-stream: %s\n", msg);
    return 1;
  }
  const int64_t steps = c->shape[0], frame_in = c->rank == 2 ? c->shape[1] : 1;
  const int64_t out_steps = out_shape[0], frame_out = c->rank == 2 ? out_shape[1] : 1;
  float *in = random_floats(c->cin * steps * frame_in);
  float *out = alloc_floats(c->cout * out_steps * frame_out);
  ct_pool *pool = threads > 1 ? ct_pool_new(threads) : NULL;
  /* One stream per version, and the one-shot's (first version) last. */
  ct_stream *streams[N_VERSIONS + 1];
  float *bordered[N_VERSIONS + 1] = {NULL};
  int64_t bordered_frame = frame_in;
  for (int i = 0; i <= N_VERSIONS; i++) {
    const version *v = &versions[i < N_VERSIONS ? i : 0];
    streams[i] = v->create(layer, c->shape + 1, msg, sizeof msg);
    if (pool)
      v->use_pool(streams[i], pool);
    v->retain_input(streams[i], true);
    /* Streamed 2d rows with the zero borders the padding reads, as the
     * bench and the video elements push them. */
    if (i < N_VERSIONS && c->rank == 2 &&
        v->take_padded_frames(streams[i], true) == CT_OK) {
      int64_t shape[1], offset[1];
      v->pushed_frame_layout(streams[i], shape, offset);
      bordered_frame = shape[0];
      bordered[i] = alloc_floats(c->cin * steps * bordered_frame);
      for (int64_t r = 0; r < c->cin * steps; r++)
        memcpy(bordered[i] + r * bordered_frame + offset[0], in + r * frame_in,
               (size_t)frame_in * sizeof(float));
    }
  }
  static double times[N_VERSIONS + 1][MAX_ROUNDS];
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i <= N_VERSIONS; i++) {
      const version *v = &versions[i < N_VERSIONS ? i : 0];
      const bool streamed = i < N_VERSIONS;
      times[i][r] = run(v, streams[i], bordered[i] ? bordered[i] : in,
                        bordered[i] ? bordered_frame : frame_in, steps,
                        streamed ? c->stream_step : 0, out, frame_out, out_steps);
    }
  for (int i = 0; i <= N_VERSIONS; i++) {
    double *t = times[i] + 1; /* the first round warms up */
    qsort(t, (size_t)rounds - 1, sizeof(double), compare_double);
    printf("%s %-12s ms: min %.3f  p25 %.3f  median %.3f\n", argv[1],
           i < N_VERSIONS ? versions[i].name : "one-shot", t[0] * 1e3,
           t[(rounds - 1) / 4] * 1e3, t[(rounds - 1) / 2] * 1e3);
    versions[i < N_VERSIONS ? i : 0].destroy(streams[i]);
    free(bordered[i]);
  }
  if (pool)
    ct_pool_free(pool);
  ct_layer_free(layer);
  free(w);
  free(bias);
  free(in);
  free(out);
  return 0;
}
