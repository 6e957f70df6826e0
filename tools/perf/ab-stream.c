/* Streams and one-shots of a bench case through several versions of the
 * kernels in one process, taking turns run by run, so that every version
 * sees the same fast and slow periods of a noisy host (separate processes
 * minutes apart differ by up to 2x here). Built by tools/perf/ab-stream.sh,
 * which compiles each version's whole kernels/ (layers, plans, streams,
 * micro-kernels, pool) into one object with its symbols prefixed
 * (v0_ct_layer_new, ...) and lists them in CT_AB_VARIANTS as X(v0) X(v1)
 * ...; each version runs on its own layer and thread pool.
 *
 *   ab-stream CASE THREADS ROUNDS      CASE: K1 ... K8 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels/geometry.h"
#include "tools/bench-cases.h"

/* Only the types of the current tree: every version's are opaque, and
 * ct_params is the same in all. */
typedef struct ct_layer ct_layer;
typedef struct ct_pool ct_pool;
typedef struct ct_stream ct_stream;

typedef struct {
  const char *name;
  ct_layer *(*layer_new)(const ct_params *, const float *, const float *, char *, size_t);
  void (*layer_free)(ct_layer *);
  ct_pool *(*pool_new)(int);
  void (*pool_free)(ct_pool *);
  ct_stream *(*create)(const ct_layer *, const int64_t *, char *, size_t);
  int (*use_pool)(ct_stream *, ct_pool *);
  void (*retain_input)(ct_stream *, bool);
  int (*take_padded_frames)(ct_stream *, bool);
  void (*pushed_frame_layout)(const ct_stream *, int64_t *, int64_t *);
  int (*push)(ct_stream *, const float *, int64_t, int64_t, float *, int64_t, int64_t *);
  int (*finish)(ct_stream *, float *, int64_t, int64_t *);
  void (*destroy)(ct_stream *);
} version;

#define X(v)                                                                             \
  ct_layer *v##_ct_layer_new(const ct_params *, const float *, const float *, char *,    \
                             size_t);                                                    \
  void v##_ct_layer_free(ct_layer *);                                                    \
  ct_pool *v##_ct_pool_new(int);                                                         \
  void v##_ct_pool_free(ct_pool *);                                                      \
  ct_stream *v##_ct_stream_new(const ct_layer *, const int64_t *, char *, size_t);       \
  int v##_ct_stream_use_pool(ct_stream *, ct_pool *);                                    \
  void v##_ct_stream_retain_input(ct_stream *, bool);                                    \
  int v##_ct_stream_take_padded_frames(ct_stream *, bool);                               \
  void v##_ct_stream_pushed_frame_layout(const ct_stream *, int64_t *, int64_t *);       \
  int v##_ct_stream_push(ct_stream *, const float *, int64_t, int64_t, float *, int64_t, \
                         int64_t *);                                                     \
  int v##_ct_stream_finish(ct_stream *, float *, int64_t, int64_t *);                    \
  void v##_ct_stream_free(ct_stream *);
CT_AB_VARIANTS
#undef X
#define X(v)                                                                             \
  {#v,                                                                                   \
   v##_ct_layer_new,                                                                     \
   v##_ct_layer_free,                                                                    \
   v##_ct_pool_new,                                                                      \
   v##_ct_pool_free,                                                                     \
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

/* A version's streams of the case: one pushed as the bench pushes (with
 * the zero borders the padding reads, for video), one for the one-shot. */
typedef struct {
  ct_layer *layer;
  ct_pool *pool;
  ct_stream *stream, *oneshot;
  float *bordered; /* the input laid out for `stream`, or NULL: plain */
  int64_t bordered_frame;
} setup;

static int make_setup(const version *v, const ct_bench_case *c, const ct_params *p,
                      const float *w, const float *bias, const float *in, int threads,
                      setup *su) {
  char msg[256];
  memset(su, 0, sizeof *su);
  su->layer = v->layer_new(p, w, bias, msg, sizeof msg);
  if (!su->layer) {
    fprintf(stderr, "ab-stream: %s: %s\n", v->name, msg);
    return 0;
  }
  su->pool = threads > 1 ? v->pool_new(threads) : NULL;
  su->stream = v->create(su->layer, c->shape + 1, msg, sizeof msg);
  su->oneshot = v->create(su->layer, c->shape + 1, msg, sizeof msg);
  if (!su->stream || !su->oneshot) {
    fprintf(stderr, "ab-stream: %s: %s\n", v->name, msg);
    return 0;
  }
  if (su->pool) {
    v->use_pool(su->stream, su->pool);
    v->use_pool(su->oneshot, su->pool);
  }
  v->retain_input(su->stream, true);
  /* Streamed frames with the zero borders the padding reads, as the bench
   * and the video elements push them. */
  const int64_t steps = c->shape[0];
  const int64_t h = c->rank == 3 ? c->shape[1] : 1, wd = c->shape[c->rank - 1];
  if (c->rank >= 2 && v->take_padded_frames(su->stream, true) == 0) {
    int64_t shape[2] = {1, 1}, offset[2] = {0, 0};
    v->pushed_frame_layout(su->stream, shape, offset);
    const int64_t bw = shape[c->rank - 2], oy = c->rank == 3 ? offset[0] : 0,
                  ox = offset[c->rank - 2];
    su->bordered_frame = c->rank == 3 ? shape[0] * shape[1] : shape[0];
    su->bordered = alloc_floats(c->cin * steps * su->bordered_frame);
    for (int64_t f = 0; f < c->cin * steps; f++)
      for (int64_t y = 0; y < h; y++)
        memcpy(su->bordered + f * su->bordered_frame + (oy + y) * bw + ox,
               in + (f * h + y) * wd, (size_t)wd * sizeof(float));
  }
  return 1;
}

static void free_setup(const version *v, setup *su) {
  v->destroy(su->stream);
  v->destroy(su->oneshot);
  if (su->pool)
    v->pool_free(su->pool);
  v->layer_free(su->layer);
  free(su->bordered);
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
  if (!c || threads < 1 || rounds < 2 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "usage: ab-stream K1..K8 THREADS ROUNDS (2-%d)\n", MAX_ROUNDS);
    return 2;
  }
  const ct_params p = ct_bench_case_params(c);
  char msg[256];
  int64_t weights = p.in_channels * (p.out_channels / p.groups);
  for (int a = 0; a < p.rank; a++)
    weights *= p.kernel[a];
  float *w = random_floats(weights), *bias = random_floats(c->cout);
  int64_t out_shape[CT_MAX_RANK] = {1, 1, 1};
  if (ct_output_shape(&p, c->shape, out_shape, msg, sizeof msg) != CT_OK) {
    fprintf(stderr, "ab-stream: %s\n", msg);
    return 1;
  }
  int64_t frame_in = 1, frame_out = 1;
  for (int a = 1; a < c->rank; a++) {
    frame_in *= c->shape[a];
    frame_out *= out_shape[a];
  }
  const int64_t steps = c->shape[0], out_steps = out_shape[0];
  float *in = random_floats(c->cin * steps * frame_in);
  float *out = alloc_floats(c->cout * out_steps * frame_out);
  static setup setups[N_VERSIONS];
  for (int i = 0; i < N_VERSIONS; i++)
    if (!make_setup(&versions[i], c, &p, w, bias, in, threads, &setups[i]))
      return 1;
  /* [version][0: stream, 1: one-shot] */
  static double times[N_VERSIONS][2][MAX_ROUNDS];
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < N_VERSIONS; i++) {
      const version *v = &versions[i];
      setup *su = &setups[i];
      times[i][0][r] = run(v, su->stream, su->bordered ? su->bordered : in,
                           su->bordered ? su->bordered_frame : frame_in, steps,
                           c->stream_step, out, frame_out, out_steps);
      times[i][1][r] =
          run(v, su->oneshot, in, frame_in, steps, 0, out, frame_out, out_steps);
    }
  for (int i = 0; i < N_VERSIONS; i++)
    for (int mode = 0; mode < 2; mode++) {
      double *t = times[i][mode] + 1; /* the first round warms up */
      qsort(t, (size_t)rounds - 1, sizeof(double), compare_double);
      printf("%s %-4s %-8s ms: min %.3f  p25 %.3f  median %.3f\n", argv[1],
             versions[i].name, mode ? "one-shot" : "stream", t[0] * 1e3,
             t[(rounds - 1) / 4] * 1e3, t[(rounds - 1) / 2] * 1e3);
    }
  for (int i = 0; i < N_VERSIONS; i++)
    free_setup(&versions[i], &setups[i]);
  free(w);
  free(bias);
  free(in);
  free(out);
  return 0;
}
