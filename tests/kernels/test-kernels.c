/* Kernel checks: geometry formulas, the production forward against the
 * reference on random layers, and streaming against one-shot, bitwise. */
#include "kernels/dsp.h"
#include "kernels/geometry.h"
#include "kernels/layer.h"
#include "kernels/plan.h"
#include "kernels/pool.h"
#include "kernels/reference.h"
#include "kernels/stream.h"
#include "kernels/stream-testing.h"
#include "tests/tap.h"
#include "tools/bench-cases.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* xorshift64*: reproducible across platforms, unlike rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

static int64_t rng_range(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

static float rng_float(void) {
  return (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill_random(float *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    v[i] = rng_float();
}

static int64_t product(const int64_t *v, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    p *= v[i];
  return p;
}

static void check_geometry(void) {
  ct_params p;
  ct_params_init(&p, 1);
  p.in_channels = 16;
  p.out_channels = 33;
  p.kernel[0] = 3;
  p.stride[0] = 2;
  p.padding[0] = 1;
  int64_t out;
  tap_ok(ct_axis_output_length(ct_params_axis(&p, 0), 50, &out) == CT_OK && out == 99,
         "ConvTranspose1d(16,33,3,stride=2,padding=1): 50 -> 99");
  tap_ok(ct_latency_output_steps(&p) == 1 && ct_latency_input_steps(&p) == 1,
         "latency of k3 s2 p1 is 1 output step, 1 input step");
  tap_ok(ct_stream_emitted(&p, 0) == 0 && ct_stream_emitted(&p, 1) == 1 &&
             ct_stream_emitted(&p, 10) == 19,
         "emitted after 0, 1, 10 inputs: 0, 1, 19");

  /* op > p: the end is extended by bias-only outputs. */
  ct_params_init(&p, 1);
  p.in_channels = p.out_channels = 1;
  p.kernel[0] = 2;
  p.stride[0] = 3;
  p.output_padding[0] = 2;
  tap_ok(ct_axis_output_length(ct_params_axis(&p, 0), 4, &out) == CT_OK && out == 13,
         "k2 s3 op2: 4 -> 13");
  tap_ok(ct_latency_output_steps(&p) == 0, "k2 s3 op2: latency 0");

  /* Heavy cropping: D exceeds p when the end crop outruns the kernel. */
  ct_params_init(&p, 1);
  p.in_channels = p.out_channels = 1;
  p.kernel[0] = 1;
  p.stride[0] = 4;
  p.padding[0] = 2;
  tap_ok(ct_latency_output_steps(&p) == 7 && ct_latency_input_steps(&p) == 2,
         "k1 s4 p2: latency 7 output steps, 2 input steps");

  char msg[256];
  ct_params_init(&p, 2);
  p.in_channels = 4;
  p.out_channels = 6;
  p.groups = 4;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_ERR_INVALID &&
             strstr(msg, "not divisible by groups"),
         "out_channels not divisible by groups refused: %s", msg);
  ct_params_init(&p, 2);
  p.in_channels = p.out_channels = 1;
  p.stride[1] = 2;
  p.output_padding[1] = 2;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_ERR_INVALID &&
             strstr(msg, "output_padding"),
         "output_padding >= max(stride, dilation) refused: %s", msg);
  p.output_padding[1] = 1;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_OK, "output_padding 1 < stride 2");
  p.dilation[0] = 0;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_ERR_INVALID, "dilation 0 refused");
  p.dilation[0] = 1;
  p.padding[0] = -1;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_ERR_INVALID,
         "negative padding refused");
  p.padding[0] = 0;
  p.kernel[0] = CT_MAX_PARAM + 1;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_ERR_INVALID,
         "huge kernel refused");

  int64_t in_shape[2] = {1, 3}, out_shape[2];
  ct_params_init(&p, 2);
  p.in_channels = p.out_channels = 1;
  p.kernel[0] = 1;
  p.padding[0] = 1;
  tap_ok(ct_output_shape(&p, in_shape, out_shape, msg, sizeof msg) == CT_ERR_INVALID &&
             strstr(msg, "< 1"),
         "output length < 1 refused: %s", msg);
  ct_params_init(&p, 1);
  p.in_channels = p.out_channels = 1;
  p.stride[0] = CT_MAX_PARAM;
  int64_t big = INT64_MAX / 2;
  tap_ok(ct_axis_output_length(ct_params_axis(&p, 0), big, &out) == CT_ERR_OVERFLOW,
         "output length overflow detected");
}

/* A random valid layer small enough for the reference. */
static void random_params(ct_params *p) {
  int rank = (int)rng_range(1, 3);
  ct_params_init(p, rank);
  p->groups = rng_range(1, 3);
  p->in_channels = p->groups * rng_range(1, 3);
  p->out_channels = p->groups * rng_range(1, 3);
  for (int a = 0; a < rank; a++) {
    p->kernel[a] = rng_range(1, rank == 1 ? 9 : 4);
    p->stride[a] = rng_range(1, 4);
    p->dilation[a] = rng_range(1, 3);
    p->padding[a] = rng_range(0, 4);
    int64_t limit = p->stride[a] > p->dilation[a] ? p->stride[a] : p->dilation[a];
    p->output_padding[a] = rng_range(0, limit - 1);
  }
}

/* Random input lengths with at least one output on every axis. */
static int random_shape(const ct_params *p, int wide, int64_t *in_shape,
                        int64_t *out_shape) {
  for (int tries = 0; tries < 50; tries++) {
    for (int a = 0; a < p->rank; a++) {
      int64_t most = a == 0 ? (p->rank == 1 ? 40 : 9) : 7;
      if (wide) /* past a block of CT_GEMM_NC columns */
        most = p->rank == 1 ? 300 : (a == 0 ? 4 : 150);
      in_shape[a] = rng_range(1, most);
    }
    if (ct_output_shape(p, in_shape, out_shape, NULL, 0) == CT_OK)
      return 1;
  }
  return 0;
}

static void describe(const ct_params *p, const int64_t *in_shape, char *buf,
                     size_t size) {
  int n = snprintf(buf, size, "%dd %lld->%lld g%lld", p->rank, (long long)p->in_channels,
                   (long long)p->out_channels, (long long)p->groups);
  for (int a = 0; a < p->rank && n < (int)size; a++)
    n += snprintf(buf + n, size - (size_t)n, " [L%lld k%lld s%lld p%lld op%lld d%lld]",
                  (long long)in_shape[a], (long long)p->kernel[a],
                  (long long)p->stride[a], (long long)p->padding[a],
                  (long long)p->output_padding[a], (long long)p->dilation[a]);
}

static double max_abs(const float *v, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++)
    m = fmax(m, fabs(v[i]));
  return m;
}

/* A sink that puts each block where it belongs in the whole output and
 * counts how often each step arrives (blocks may come from several threads
 * at once). */
typedef struct {
  float *out;
  int64_t out_len, frame, cout;
  atomic_int *arrivals; /* per step */
  atomic_llong steps;   /* delivered in all */
} collector;

static void collect(void *ctx, int64_t first, int64_t n, const float *data,
                    int64_t chan_stride) {
  collector *col = ctx;
  for (int64_t i = 0; i < n; i++) {
    if (first + i < 0 || first + i >= col->out_len ||
        atomic_fetch_add(&col->arrivals[first + i], 1) != 0)
      continue; /* out of range or twice: counted, never written */
    for (int64_t c = 0; c < col->cout; c++)
      memcpy(col->out + (c * col->out_len + first + i) * col->frame,
             data + c * chan_stride + i * col->frame, (size_t)col->frame * sizeof(float));
  }
  atomic_fetch_add(&col->steps, n);
}

/* One input frame of src (frame axes in_frame_shape) placed at the offsets
 * of a zeroed frame of `shape` (ct_stream_pushed_frame_layout). */
static void place_frame(float *dst, const float *src, int rank,
                        const int64_t *in_frame_shape, const int64_t *shape,
                        const int64_t *offset) {
  const int64_t lines = rank == 3 ? in_frame_shape[0] : 1;
  const int64_t line_len = in_frame_shape[rank - 2];
  const int64_t line_stride = rank == 3 ? shape[1] : 0;
  const int64_t start = rank == 3 ? offset[0] * shape[1] + offset[1] : offset[0];
  memset(dst, 0, (size_t)(shape[0] * (rank == 3 ? shape[1] : 1)) * sizeof(float));
  for (int64_t y = 0; y < lines; y++)
    memcpy(dst + start + y * line_stride, src + y * line_len,
           (size_t)line_len * sizeof(float));
}

/* Streams the input through chunk sizes drawn at random (0 and 1 included)
 * and returns whether the concatenation equals `expected` bitwise, checking
 * each push emits exactly what the contract says is final and certain. */
static int stream_matches(const ct_layer *layer, const int64_t *in_shape,
                          const int64_t *out_shape, const float *in,
                          const float *expected, int max_chunk, char *why,
                          size_t why_size) {
  const ct_params *p = ct_layer_params(layer);
  char msg[256];
  ct_stream *st = ct_stream_new(layer, in_shape + 1, msg, sizeof msg);
  if (!st) {
    snprintf(why, why_size, "stream_new: %.200s", msg);
    return 0;
  }
  const int64_t out_len = out_shape[0], cout = p->out_channels;
  /* Sometimes (1d, 2d) the outputs go to a sink instead of out, which is
   * then NULL; the sink is set before or after the threads. */
  const int sunk = p->rank <= 2 && rng_range(0, 2) == 0;
  float *got =
      calloc((size_t)(cout * out_len * ct_stream_out_frame_size(st)), sizeof(float));
  collector col = {.out = got,
                   .out_len = out_len,
                   .frame = ct_stream_out_frame_size(st),
                   .cout = cout,
                   .arrivals =
                       sunk ? calloc((size_t)out_len + 1, sizeof(atomic_int)) : NULL};
  atomic_init(&col.steps, 0);
  /* What the API refuses: a sink for 3d, bordered frames for 1d. */
  if ((p->rank == 3 && ct_stream_set_sink(st, collect, &col) != CT_ERR_INVALID) ||
      (p->rank == 1 && ct_stream_take_padded_frames(st, true) != CT_ERR_INVALID)) {
    snprintf(why, why_size, "set_sink (3d) or take_padded_frames (1d) accepted");
    free(got);
    free(col.arrivals);
    ct_stream_free(st);
    return 0;
  }
  const int sink_first = (int)rng_range(0, 1);
  if (sunk && sink_first && ct_stream_set_sink(st, collect, &col) != CT_OK) {
    snprintf(why, why_size, "set_sink failed");
    free(got);
    free(col.arrivals);
    ct_stream_free(st);
    return 0;
  }
  /* Any thread count gives the same bits; force threads even on tiny work. */
  int threads = (int)rng_range(1, 3);
  if (ct_stream_set_threads(st, threads) != CT_OK ||
      (sunk && !sink_first && ct_stream_set_sink(st, collect, &col) != CT_OK)) {
    snprintf(why, why_size, "set_threads(%d) or set_sink failed", threads);
    free(got);
    free(col.arrivals);
    ct_stream_free(st);
    return 0;
  }
  ct_stream_set_parallel_threshold(st, 0);
  /* Sometimes non-temporal output stores, whatever the size: same bits. */
  if (rng_range(0, 1))
    ct_stream_set_nontemporal_threshold(st, 0);
  /* Sometimes zero-copy (2d/3d without frame padding read the previous
   * push in place): chunks then alternate between two buffers, and the one
   * the contract lets go of after a push is poisoned with NaN. */
  const int retained = (int)rng_range(0, 1);
  /* Sometimes (2d/3d) frames pushed with their zero borders, read in place;
   * not allowed mid-signal. Set before or after retain_input. */
  const int padded_first = (int)rng_range(0, 1);
  const int padded = p->rank >= 2 && rng_range(0, 1) && padded_first &&
                     ct_stream_take_padded_frames(st, true) == CT_OK;
  ct_stream_retain_input(st, retained);
  const int padded_late = p->rank >= 2 && !padded_first && rng_range(0, 1) &&
                          ct_stream_take_padded_frames(st, true) == CT_OK;
  int64_t layout_shape[CT_MAX_RANK - 1], layout_offset[CT_MAX_RANK - 1];
  if (p->rank >= 2)
    ct_stream_pushed_frame_layout(st, layout_shape, layout_offset);
  const int64_t fin = ct_stream_in_frame_size(st), fout = ct_stream_out_frame_size(st);
  int64_t fin_src = 1; /* floats per step in `in` */
  for (int a = 1; a < p->rank; a++)
    fin_src *= in_shape[a];
  const int64_t len = in_shape[0];
  const int64_t cin = p->in_channels;
  const size_t chunk_floats = (size_t)(cin * (max_chunk + 1) * fin);
  float *chunk_buf[2] = {malloc(chunk_floats * sizeof(float)),
                         malloc(chunk_floats * sizeof(float))};
  /* Sometimes pushes are views into the whole input, as a caller walking a
   * signal in memory makes them (the stream then fetches ahead of them). */
  const int views = !padded && !padded_late && rng_range(0, 1);
  int pushes = 0;
  float *chunk_out = calloc((size_t)(cout * (out_len + 1) * fout), sizeof(float));
  /* The sink may be taken away between pushes: later steps go to out. */
  int sinking = sunk;
  int64_t sunk_total = 0; /* steps the sink has had */
  int ok = 1;
  int64_t pos = 0, emitted = 0;
  while (ok && pos <= len) {
    int64_t n = rng_range(0, max_chunk);
    if (n > len - pos)
      n = len - pos;
    const float *chunk_in = views ? in + pos * fin : chunk_buf[pushes % 2];
    const int64_t chunk_chan_stride = views ? len * fin : n * fin;
    /* Gather the chunk channel-planar, as a caller would. */
    for (int64_t c = 0; !views && c < cin; c++) {
      if (padded || padded_late) {
        for (int64_t i = 0; i < n; i++)
          place_frame(chunk_buf[pushes % 2] + (c * n + i) * fin,
                      in + (c * len + pos + i) * fin_src, p->rank, in_shape + 1,
                      layout_shape, layout_offset);
      } else {
        memcpy(chunk_buf[pushes % 2] + c * n * fin, in + (c * len + pos) * fin,
               (size_t)(n * fin) * sizeof(float));
      }
    }
    int64_t want = ct_stream_push_out_steps(st, n), done;
    int64_t final_certain = ct_stream_emitted(p, pos + n) - emitted;
    ct_status status = ct_stream_push(st, chunk_in, chunk_chan_stride, n,
                                      sinking ? NULL : chunk_out, want * fout, &done);
    pushes++;
    if (n > 0 && p->rank >= 2 &&
        ct_stream_take_padded_frames(st, !padded) != CT_ERR_INVALID) {
      snprintf(why, why_size, "take_padded_frames accepted mid-signal");
      ok = 0;
      break;
    }
    if (retained) /* the previous push's input may go now */
      for (size_t i = 0; i < chunk_floats; i++)
        chunk_buf[pushes % 2][i] = NAN;
    sunk_total += sinking ? done : 0;
    if (status != CT_OK || done != want || done != final_certain ||
        atomic_load(&col.steps) != sunk_total) {
      snprintf(why, why_size, "push of %lld at %lld emitted %lld, expected %lld%s",
               (long long)n, (long long)pos, (long long)done, (long long)final_certain,
               sinking ? " (sink)" : "");
      ok = 0;
      break;
    }
    for (int64_t c = 0; !sinking && c < cout; c++)
      memcpy(got + (c * out_len + emitted) * fout, chunk_out + c * done * fout,
             (size_t)(done * fout) * sizeof(float));
    if (sinking && rng_range(0, 5) == 0) {
      ct_stream_set_sink(st, NULL, NULL);
      sinking = 0;
    }
    emitted += done;
    pos += n;
    if (pos == len && rng_range(0, 1))
      break; /* sometimes end right after the last push, sometimes after extra empty
                pushes */
  }
  if (ok) {
    int64_t want = ct_stream_finish_out_steps(st), done;
    if (emitted + want != out_len) {
      snprintf(why, why_size, "finish would emit %lld after %lld, total should be %lld",
               (long long)want, (long long)emitted, (long long)out_len);
      ok = 0;
    } else if (ct_stream_finish(st, sinking ? NULL : chunk_out, want * fout, &done) !=
                   CT_OK ||
               done != want ||
               atomic_load(&col.steps) != sunk_total + (sinking ? done : 0)) {
      snprintf(why, why_size, "finish failed%s", sinking ? " (sink)" : "");
      ok = 0;
    } else {
      sunk_total += sinking ? done : 0;
      for (int64_t i = 0; sunk && i < out_len; i++)
        if (atomic_load(&col.arrivals[i]) != (i < sunk_total)) {
          snprintf(why, why_size, "the sink got step %lld %d times", (long long)i,
                   atomic_load(&col.arrivals[i]));
          ok = 0;
          break;
        }
      for (int64_t c = 0; !sinking && c < cout; c++)
        memcpy(got + (c * out_len + emitted) * fout, chunk_out + c * done * fout,
               (size_t)(done * fout) * sizeof(float));
      if (ok &&
          memcmp(got, expected, (size_t)(cout * out_len * fout) * sizeof(float)) != 0) {
        snprintf(why, why_size, "streamed output differs from one-shot%s",
                 sunk ? " (sink)" : "");
        ok = 0;
      }
      if (ct_stream_steps_in(st) != 0 || ct_stream_steps_out(st) != 0) {
        snprintf(why, why_size, "finish did not reset the stream");
        ok = 0;
      }
    }
  }
  free(chunk_buf[0]);
  free(chunk_buf[1]);
  free(got);
  free(chunk_out);
  free(col.arrivals);
  ct_stream_free(st);
  return ok;
}

/* Many channels: products over K > CT_GEMM_KC, several tiles of output
 * channels, packed panels, blocks of columns. */
static void random_wide_params(ct_params *p) {
  int rank = (int)rng_range(1, 2);
  ct_params_init(p, rank);
  p->groups = rng_range(1, 2);
  p->in_channels = p->groups * rng_range(20, 48);
  p->out_channels = p->groups * rng_range(7, 20);
  for (int a = 0; a < rank; a++) {
    p->kernel[a] = rng_range(1, rank == 1 ? 16 : 3);
    p->stride[a] = rng_range(1, 8);
    p->padding[a] = rng_range(0, 3);
    p->output_padding[a] = rng_range(0, p->stride[a] - 1);
  }
}

/* Layers whose phases read the same inputs (even kernels, stride 2,
 * dilation 1): stride-2 runs computed in phase pairs, and in 2d/3d with
 * stride 1 along the run, pairs of steps along axis 0. Up to 5 output
 * channels per group: pair tiles of 6 rows and a remainder. */
static void random_pair_params(ct_params *p) {
  int rank = (int)rng_range(1, 3);
  ct_params_init(p, rank);
  p->groups = rng_range(1, 2);
  p->in_channels = p->groups * rng_range(1, 3);
  p->out_channels = p->groups * rng_range(1, 5);
  const int run_stride_one = rank > 1 && rng_range(0, 1);
  for (int a = 0; a < rank; a++) {
    const int run = a == rank - 1;
    p->stride[a] = run && run_stride_one ? 1 : 2;
    p->kernel[a] = p->stride[a] == 2 ? 2 * rng_range(1, 3) : rng_range(1, 3);
    p->padding[a] = rng_range(0, 4);
    p->output_padding[a] = rng_range(0, p->stride[a] - 1);
  }
}

/* 2d layers with one output channel and many input channels: the stream's
 * tap mode (all taps of an input row at once, then sums of taps). */
static void random_tap_params(ct_params *p) {
  ct_params_init(p, 2);
  p->in_channels = rng_range(16, 40);
  p->out_channels = 1;
  for (int a = 0; a < 2; a++) {
    p->kernel[a] = rng_range(2, 9);
    p->stride[a] = rng_range(1, 3);
    p->dilation[a] = rng_range(1, 2);
    p->padding[a] = rng_range(0, 4);
    int64_t limit = p->stride[a] > p->dilation[a] ? p->stride[a] : p->dilation[a];
    p->output_padding[a] = rng_range(0, limit - 1);
  }
}

enum { LAYERS_SMALL, LAYERS_WIDE, LAYERS_PAIRS, LAYERS_TAPS };

static void check_random_layers(int n_layers, int family, const char *level) {
  const int wide = family == LAYERS_WIDE || family == LAYERS_TAPS;
  static const char *const family_name[] = {"", "wide ", "phase-pair ", "tap-mode "};
  int forward_ok = 0, stream_ok = 0, tried = 0;
  for (int i = 0; i < n_layers; i++) {
    ct_params p;
    if (family == LAYERS_WIDE)
      random_wide_params(&p);
    else if (family == LAYERS_PAIRS)
      random_pair_params(&p);
    else if (family == LAYERS_TAPS)
      random_tap_params(&p);
    else
      random_params(&p);
    int64_t in_shape[3], out_shape[3];
    if (!random_shape(&p, wide, in_shape, out_shape))
      continue;
    tried++;
    int64_t n_w = ct_weight_count(&p);
    int64_t n_in = p.in_channels * product(in_shape, p.rank);
    int64_t n_out = p.out_channels * product(out_shape, p.rank);
    float *w = malloc((size_t)n_w * sizeof(float));
    float *bias = malloc((size_t)p.out_channels * sizeof(float));
    float *x = malloc((size_t)n_in * sizeof(float));
    float *fast = malloc((size_t)n_out * sizeof(float));
    float *ref = malloc((size_t)n_out * sizeof(float));
    fill_random(w, n_w);
    fill_random(bias, p.out_channels);
    fill_random(x, n_in);
    int with_bias = (int)rng_range(0, 1);
    char msg[256], desc[512];
    describe(&p, in_shape, desc, sizeof desc);
    ct_layer *layer = ct_layer_new(&p, w, with_bias ? bias : NULL, msg, sizeof msg);
    if (!layer) {
      tap_ok(0, "layer %s: %s", desc, msg);
      goto next;
    }
    ct_reference_forward(&p, w, with_bias ? bias : NULL, in_shape, x, ref);
    memset(fast, 0xff,
           (size_t)n_out * sizeof(float)); /* NaN: catches unwritten outputs */
    if (ct_forward(layer, in_shape, x, fast, msg, sizeof msg) != CT_OK) {
      tap_ok(0, "forward %s: %s", desc, msg);
      goto next;
    }
    double tol = 1e-5 * fmax(1.0, max_abs(ref, n_out)), err = 0;
    for (int64_t k = 0; k < n_out; k++)
      err = fmax(err, isnan(fast[k]) ? INFINITY : fabs((double)fast[k] - ref[k]));
    if (err <= tol)
      forward_ok++;
    else
      tap_ok(0, "forward %s bias=%d: max error %g > %g", desc, with_bias, err, tol);
    char why[256] = "";
    int all = 1;
    for (int rep = 0; rep < 3 && all; rep++)
      all = stream_matches(layer, in_shape, out_shape, x, fast,
                           rep == 0 ? 1 : (int)rng_range(2, 9), why, sizeof why);
    if (all)
      stream_ok++;
    else
      tap_ok(0, "stream %s bias=%d: %s", desc, with_bias, why);
  next:
    ct_layer_free(layer);
    free(w);
    free(bias);
    free(x);
    free(fast);
    free(ref);
  }
  tap_ok(forward_ok == tried, "%s: forward equals reference on %d/%d random %slayers",
         level, forward_ok, tried, family_name[family]);
  tap_ok(stream_ok == tried,
         "%s: streaming is bitwise one-shot on %d/%d random %slayers (x3 chunkings, 1-3 "
         "threads)",
         level, stream_ok, tried, family_name[family]);
}

/* One layer with random weights (and bias) on a random input: the one-shot
 * forward against the reference (NaN counts as infinitely wrong), then
 * streamed in random chunks up to max_chunk against the one-shot, bitwise. */
typedef struct {
  double err, ref_max; /* largest error, largest reference output */
  int streamed;        /* stream_matches */
  char why[256];
} long_check;

static long_check run_long_layer(const ct_params *p, const int64_t *in_shape,
                                 int with_bias, int max_chunk) {
  long_check r = {0};
  int64_t out_shape[CT_MAX_RANK], nx = p->in_channels, ny = p->out_channels;
  ct_output_shape(p, in_shape, out_shape, NULL, 0);
  for (int a = 0; a < p->rank; a++) {
    nx *= in_shape[a];
    ny *= out_shape[a];
  }
  const int64_t nw = ct_weight_count(p);
  float *w = malloc((size_t)nw * sizeof(float)), *x = malloc((size_t)nx * sizeof(float));
  float *bias = malloc((size_t)p->out_channels * sizeof(float));
  float *one = malloc((size_t)ny * sizeof(float)),
        *ref = malloc((size_t)ny * sizeof(float));
  fill_random(w, nw);
  fill_random(bias, p->out_channels);
  fill_random(x, nx);
  char msg[256];
  ct_layer *layer = ct_layer_new(p, w, with_bias ? bias : NULL, msg, sizeof msg);
  ct_forward(layer, in_shape, x, one, msg, sizeof msg);
  ct_reference_forward(p, w, with_bias ? bias : NULL, in_shape, x, ref);
  for (int64_t i = 0; i < ny; i++)
    r.err = fmax(r.err, isnan(one[i]) ? INFINITY : fabs(one[i] - ref[i]));
  r.ref_max = max_abs(ref, ny);
  r.streamed =
      stream_matches(layer, in_shape, out_shape, x, one, max_chunk, r.why, sizeof r.why);
  ct_layer_free(layer);
  free(w);
  free(x);
  free(bias);
  free(one);
  free(ref);
  return r;
}

/* Large frames and long signals exercise history compaction and growth. */
static void check_long_streams(void) {
  ct_params p;
  ct_params_init(&p, 1);
  p.in_channels = p.out_channels = p.groups = 2;
  p.kernel[0] = 64;
  p.stride[0] = 2;
  p.padding[0] = 31;
  int64_t len[CT_MAX_RANK] = {300000}, out_shape[CT_MAX_RANK];
  ct_output_shape(&p, len, out_shape, NULL, 0);
  float *w = malloc(2 * 64 * sizeof(float)),
        *x = malloc((size_t)(2 * len[0]) * sizeof(float));
  float *one = malloc((size_t)(2 * out_shape[0]) * sizeof(float));
  fill_random(w, 128);
  fill_random(x, 2 * len[0]);
  char msg[256], why[256] = "";
  ct_layer *layer = ct_layer_new(&p, w, NULL, msg, sizeof msg);
  ct_forward(layer, len, x, one, msg, sizeof msg);
  tap_ok(out_shape[0] == 2 * len[0], "fir2x 300000 -> %lld", (long long)out_shape[0]);
  tap_ok(stream_matches(layer, len, out_shape, x, one, 5000, why, sizeof why),
         "long 1d stream in chunks up to 5000: bitwise one-shot %s", why);
  ct_layer_free(layer);
  free(w);
  free(x);
  free(one);

  /* A long signal of many channels, stride 8 (a HiFi-GAN-like stage): the
   * one-shot reads it in place, the stream copies its smaller chunks. */
  ct_params_init(&p, 1);
  p.in_channels = 64;
  p.out_channels = 24;
  p.kernel[0] = 16;
  p.stride[0] = 8;
  p.padding[0] = 4;
  p.output_padding[0] = 3;
  const int64_t len8[CT_MAX_RANK] = {4500};
  long_check r = run_long_layer(&p, len8, 1, 5000);
  tap_ok(r.err < 1e-4 * fmax(1.0, r.ref_max),
         "64 -> 24 k16 s8, 4500 steps in one push matches reference (err %g)", r.err);
  tap_ok(r.streamed, "the same in chunks up to 5000: bitwise one-shot %s", r.why);

  /* Tap mode (one output channel, many inputs) on rows wide enough that a
   * one-row push on 2-3 threads starts each thread on a narrow piece. */
  ct_params_init(&p, 2);
  p.in_channels = 20;
  p.out_channels = 1;
  p.kernel[0] = p.kernel[1] = 5;
  p.stride[0] = p.stride[1] = 2;
  p.padding[0] = p.padding[1] = 2;
  p.output_padding[0] = p.output_padding[1] = 1;
  const int64_t wide[2] = {7, 420};
  for (int round = 0; round < 4; round++) {
    r = run_long_layer(&p, wide, 1, 2);
    tap_ok(r.err < 1e-4 * fmax(1.0, r.ref_max),
           "tap mode 20 -> 1 k5 s2, 7 x 420 matches reference (err %g)", r.err);
    tap_ok(r.streamed, "the same in pushes of 0-2 rows: bitwise one-shot %s", r.why);
  }

  /* A 3d layer with big padding on T: many frames held before output. */
  ct_params_init(&p, 3);
  p.in_channels = 2;
  p.out_channels = 3;
  p.kernel[0] = 3;
  p.stride[0] = 1;
  p.padding[0] = 6;
  p.dilation[0] = 5;
  p.kernel[1] = p.kernel[2] = 2;
  p.stride[1] = p.stride[2] = 2;
  const int64_t shape[3] = {20, 5, 6};
  r = run_long_layer(&p, shape, 0, 3);
  tap_ok(r.err < 1e-5, "3d dilated T with heavy padding matches reference (err %g)",
         r.err);
  tap_ok(r.streamed, "3d stream frame by frame: bitwise one-shot %s", r.why);
}

/* A stream too short for any output emits nothing, and is reusable. */
static void check_short_and_reuse(void) {
  ct_params p;
  ct_params_init(&p, 1);
  p.in_channels = p.out_channels = 1;
  p.kernel[0] = 1;
  p.stride[0] = 1;
  p.padding[0] = 3; /* needs 7 inputs for one output */
  float w = 2.0f, bias = 0.5f, x[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, out[16];
  char msg[256];
  ct_layer *layer = ct_layer_new(&p, &w, &bias, msg, sizeof msg);
  ct_stream *st = ct_stream_new(layer, NULL, msg, sizeof msg);
  int64_t n;
  ct_stream_push(st, x, 3, 3, out, 0, &n);
  tap_ok(n == 0 && ct_stream_finish_out_steps(st) == 0,
         "3 inputs of a p3 k1 layer: no output");
  ct_stream_finish(st, out, 16, &n);
  tap_ok(n == 0, "finish of a too-short signal emits nothing");
  ct_stream_push(st, x, 10, 10, out, 16, &n);
  int64_t tail;
  ct_stream_finish(st, out + n, 16, &tail);
  tap_ok(n + tail == 4 && out[0] == 2 * 4 + 0.5f && out[3] == 2 * 7 + 0.5f,
         "after finish the stream restarts: 10 inputs -> 4 outputs x[3..6]*w+b");
  ct_stream_push(st, x, 10, 5, out, 16, &n);
  ct_stream_reset(st);
  ct_stream_push(st, x, 10, 10, out, 16, &n);
  ct_stream_finish(st, out + n, 16, &tail);
  tap_ok(n + tail == 4 && out[0] == 8.5f, "reset forgets the pushed samples");
  ct_stream_free(st);
  ct_layer_free(layer);
}

/* The pool runs every task of a batch exactly once, numbered across the
 * batches a long run is cut into, each on a worker index in range. */
typedef struct {
  atomic_int *seen;
  int size;
  atomic_bool bad_worker;
} pool_check;

static void mark_task(void *ctx, int task, int worker) {
  pool_check *c = ctx;
  atomic_fetch_add(&c->seen[task], 1);
  if (worker < 0 || worker >= c->size)
    atomic_store(&c->bad_worker, true);
}

static void check_pool(void) {
  const int counts[] = {1, 2, 7, 70000}; /* the last spans two batches */
  for (int size = 1; size <= 3; size++) {
    ct_pool *pool = ct_pool_new(size);
    bool once = pool != NULL;
    for (size_t i = 0; once && i < sizeof counts / sizeof counts[0]; i++) {
      pool_check c = {.seen = calloc((size_t)counts[i], sizeof(atomic_int)),
                      .size = size};
      atomic_init(&c.bad_worker, false);
      ct_pool_run(pool, counts[i], mark_task, &c);
      for (int t = 0; t < counts[i]; t++)
        once &= atomic_load(&c.seen[t]) == 1;
      once &= !atomic_load(&c.bad_worker);
      free(c.seen);
    }
    tap_ok(once, "pool of %d: 1, 2, 7 and 70000 tasks each run once", size);
    ct_pool_free(pool);
  }
}

/* Pushes filling one array in order stream their stores once they have
 * written more than the threshold; a push elsewhere starts over. */
static void check_fill_streaming(void) {
  ct_params p;
  ct_params_init(&p, 1);
  p.in_channels = p.out_channels = 2;
  p.kernel[0] = 4;
  p.stride[0] = 2;
  p.padding[0] = 1;
  enum { LEN = 512, PUSH = 64 };
  const int64_t len[CT_MAX_RANK] = {LEN};
  int64_t out_shape[CT_MAX_RANK];
  ct_output_shape(&p, len, out_shape, NULL, 0);
  const int64_t out_len = out_shape[0];
  float w[2 * 2 * 4], bias[2], x[2 * LEN];
  fill_random(w, 2 * 2 * 4);
  fill_random(bias, 2);
  fill_random(x, 2 * LEN);
  float *one = calloc((size_t)(2 * out_len), sizeof(float));
  float *streamed = calloc((size_t)(2 * out_len), sizeof(float));
  float elsewhere[2 * 4 * PUSH];
  char msg[256];
  ct_layer *layer = ct_layer_new(&p, w, bias, msg, sizeof msg);
  ct_forward(layer, len, x, one, msg, sizeof msg);
  ct_stream *st = ct_stream_new(layer, NULL, msg, sizeof msg);
  const double threshold = 4096;
  ct_stream_set_nontemporal_threshold(st, threshold);
  bool decisions_right = true, some_streamed = false, some_not = false;
  double filled = 0;
  int64_t done = 0, n;
  for (int64_t i = 0; i < LEN; i += PUSH) {
    const double before = filled;
    ct_stream_push(st, x + i, LEN, PUSH, streamed + done, out_len, &n);
    const double bytes = (double)n * 2 * sizeof(float);
    const bool expected = before + bytes > threshold;
    decisions_right &= ct_stream_used_nontemporal(st) == expected;
    some_streamed |= expected;
    some_not |= !expected;
    filled += bytes;
    done += n;
  }
  ct_stream_finish(st, streamed + done, out_len, &n);
  done += n;
  tap_ok(decisions_right && some_streamed && some_not,
         "pushes filling one array stream their stores past %g bytes", threshold);
  tap_ok(done == out_len &&
             memcmp(streamed, one, (size_t)(2 * out_len) * sizeof(float)) == 0,
         "and the array holds the one-shot output, bitwise");
  /* A second signal into a small buffer reused for every push. */
  bool never = true;
  for (int64_t i = 0; i < LEN; i += PUSH) {
    ct_stream_push(st, x + i, LEN, PUSH, elsewhere, 4 * PUSH, &n);
    never &= !ct_stream_used_nontemporal(st);
  }
  ct_stream_finish(st, elsewhere, 4 * PUSH, &n);
  tap_ok(never, "pushes that all write the same small buffer never stream");
  ct_stream_free(st);
  ct_layer_free(layer);
  free(one);
  free(streamed);
}

/* ct_stream_retain_input takes effect with bordered frames whichever of
 * the two calls comes first: the next push then reads the previous frame
 * where the caller keeps it, so (against the promise) spoiling that frame
 * after its push shows in the output. Without retaining nothing shows. */
static bool previous_frame_read_in_place(int order) {
  ct_params p;
  ct_params_init(&p, 2);
  p.in_channels = p.out_channels = 1;
  p.kernel[0] = p.kernel[1] = 3;
  p.stride[0] = p.stride[1] = 1;
  p.padding[0] = p.padding[1] = 1;
  float w[9], bias = 0;
  fill_random(w, 9);
  char msg[256];
  ct_layer *layer = ct_layer_new(&p, w, &bias, msg, sizeof msg);
  const int64_t width[1] = {8};
  ct_stream *st = ct_stream_new(layer, width, msg, sizeof msg);
  if (order == 0)
    ct_stream_retain_input(st, true);
  ct_stream_take_padded_frames(st, true);
  if (order == 1)
    ct_stream_retain_input(st, true);
  const int64_t frame = ct_stream_in_frame_size(st); /* 8 + 2 borders */
  float rows[2][16] = {{0}}, out[4 * 8];
  for (int r = 0; r < 2; r++)
    for (int x = 1; x <= 8; x++)
      rows[r][x] = 1.0f;
  int64_t n, total = 0;
  ct_stream_push(st, rows[0], frame, 1, out, 8, &n);
  total += n;
  for (int x = 1; x <= 8; x++) /* the caller breaks its promise */
    rows[0][x] = NAN;
  ct_stream_push(st, rows[1], frame, 1, out + total * 8, 8, &n);
  total += n;
  ct_stream_finish(st, out + total * 8, 8, &n);
  total += n;
  bool spoiled = false;
  for (int64_t i = 0; i < total * 8; i++)
    spoiled |= isnan(out[i]);
  ct_stream_free(st);
  ct_layer_free(layer);
  return spoiled;
}

static void check_retain_order(void) {
  tap_ok(previous_frame_read_in_place(0),
         "retain_input before take_padded_frames: the previous frame is read in place");
  tap_ok(previous_frame_read_in_place(1),
         "retain_input after take_padded_frames: the previous frame is read in place");
  tap_ok(!previous_frame_read_in_place(2), "without retain_input it is copied");
}

/* ------------------------------------------------------------------------ */
/* resource limits */

static ct_params layer_1d(int64_t cin, int64_t cout, int64_t k, int64_t s, int64_t p) {
  ct_params params;
  ct_params_init(&params, 1);
  params.in_channels = cin;
  params.out_channels = cout;
  params.kernel[0] = k;
  params.stride[0] = s;
  params.padding[0] = p;
  return params;
}

static void expect_limit(const char *label, const ct_params *p, const char *needle) {
  char msg[256] = "";
  int ok = ct_params_validate(p, msg, sizeof msg) == CT_ERR_INVALID &&
           strstr(msg, needle) != NULL;
  tap_ok(ok, "%s refused: %s", label, msg);
}

/* Real layers pass every limit, and the limits refuse what only a broken
 * or hostile file declares, by validation alone (nothing allocated). */
static void check_limits(void) {
  char msg[256];
  for (int i = 0; i < CT_BENCH_N_CASES; i++) {
    ct_params p = ct_bench_case_params(&ct_bench_cases[i]);
    tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_OK, "bench case %s is valid%s%s",
           ct_bench_cases[i].name, *msg ? ": " : "", msg);
  }
  ct_params p = layer_1d(512, 256, 16, 8, 4); /* HiFi-GAN's first upsampler */
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_OK && ct_tail_steps(&p) == 4,
         "HiFi-GAN ConvTranspose1d(512, 256, 16, 8, 4) is valid, an end of 4 steps");
  ct_params_init(&p, 2); /* FSRCNN's last layer */
  p.in_channels = 56;
  p.out_channels = 1;
  p.kernel[0] = p.kernel[1] = 9;
  p.stride[0] = p.stride[1] = 4;
  p.padding[0] = p.padding[1] = 4;
  p.output_padding[0] = p.output_padding[1] = 3;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_OK,
         "FSRCNN ConvTranspose2d(56, 1, 9, stride 4) is valid");

  p = layer_1d(1, 1, 50000000, 1, 0);
  expect_limit("kernel of 5e7 taps", &p,
               "kernel 50000000 is over the limit of 1048576 taps");
  ct_params_init(&p, 2);
  p.in_channels = p.out_channels = 1;
  p.kernel[0] = 1024;
  p.kernel[1] = 1025;
  expect_limit("2d kernel of 1024x1025", &p, "kernel 1024x1025 (1049600 taps");
  ct_params_init(&p, 3);
  p.in_channels = p.out_channels = 1;
  p.kernel[0] = p.kernel[1] = p.kernel[2] = CT_MAX_PARAM; /* product overflows */
  expect_limit("3d kernel whose product overflows", &p, "over the limit of 1048576 taps");
  p = layer_1d(4096, 4096, 16, 8, 4);
  expect_limit("4096 x 4096 x 16 weights", &p, "over the limit of 134217728 weights");
  p = layer_1d(CT_MAX_PARAM, CT_MAX_PARAM, 1, 1, 0); /* product overflows */
  expect_limit("2^31 x 2^31 weights", &p, "over the limit of 134217728 weights");
  p = layer_1d(1, 1, 3, 1, 0);
  p.dilation[0] = CT_MAX_PARAM;
  expect_limit("reach of 2 x (2^31 - 1)", &p, "reaches over 4294967294 steps");
  p = layer_1d(1, 1, 2, 1, 0);
  p.dilation[0] = CT_MAX_PARAM;
  tap_ok(ct_params_validate(&p, msg, sizeof msg) != CT_ERR_INVALID ||
             strstr(msg, "reaches") == NULL,
         "a reach of 2^31 - 1 is within the reach limit");
  /* The element's case: k = 1e7 computed for minutes at EOS. */
  p = layer_1d(1, 1, 1000000, 1, 0);
  expect_limit("an end of 1e6 steps x 1e6 taps", &p, "multiply-adds");
  p = layer_1d(16, 16, 65536, 1, 0);
  expect_limit("an end of 65535 steps x 16 x 16 x 65536 taps", &p, "end of a stream");
  p = layer_1d(1, 1, 65536, 1, 0);
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_OK,
         "1 x 1 x 65536 taps (an end of 4.3e9 multiply-adds) is valid");
  p = layer_1d(1, 1, 65536, 64, 0);
  tap_ok(ct_params_validate(&p, msg, sizeof msg) == CT_OK && ct_tail_steps(&p) == 65472,
         "65536 taps at stride 64: 1024 taps a phase, valid");
  p = layer_1d(1, 4, 2, 1, 0);
  p.dilation[0] = 1 << 25;
  expect_limit("an end of 2^25 steps x 4 channels", &p,
               "over the limit of 67108864 values");

  /* ct_tail_steps is what finish emits after a long signal. */
  int tails_ok = 1;
  for (int i = 0; i < 200; i++) {
    ct_params q;
    random_params(&q);
    q.rank = 1;
    q.in_channels = q.out_channels = q.groups = 1;
    float w[16], b = 0;
    fill_random(w, 16);
    ct_layer *layer = ct_layer_new(&q, w, &b, msg, sizeof msg);
    ct_stream *st = layer ? ct_stream_new(layer, NULL, msg, sizeof msg) : NULL;
    float x[64] = {0}, out[512];
    int64_t n;
    if (!st || ct_stream_push(st, x, 64, 64, out, 512, &n) != CT_OK ||
        ct_stream_finish_out_steps(st) != ct_tail_steps(&q))
      tails_ok = 0;
    ct_stream_free(st);
    ct_layer_free(layer);
  }
  tap_ok(tails_ok, "ct_tail_steps is finish's output after 64 inputs, 200 random layers");
}

/* The phase tables, built by period, equal the definition: taps grouped
 * by residue t*d mod s in ascending residue, ascending tap within one. */
static void check_phase_tables(void) {
  int ok = 1, tried = 0;
  for (int i = 0; i < 400 && ok; i++) {
    ct_axis a = {.k = rng_range(1, 300), .p = 0, .op = 0};
    a.s = rng_range(0, 3) == 0 ? rng_range(1, CT_MAX_PARAM) : rng_range(1, 40);
    a.d = rng_range(0, 3) == 0 ? rng_range(1, CT_MAX_PARAM / 300) : rng_range(1, 40);
    ct_phase_table t;
    if (ct_phase_table_build(a, &t) != CT_OK) {
      ok = 0;
      break;
    }
    tried++;
    int64_t seen = 0, prev_residue = -1;
    for (int64_t ph = 0; ph < t.n_phases && ok; ph++) {
      const ct_phase *phase = &t.phases[ph];
      ok = phase->residue > prev_residue && phase->first == seen && phase->count >= 1;
      prev_residue = phase->residue;
      for (int64_t j = 0; j < phase->count && ok; j++) {
        const ct_tap *tap = &t.taps[phase->first + j];
        ok = tap->tap >= 0 && tap->tap < a.k &&
             (tap->tap * a.d) % a.s == phase->residue &&
             tap->offset == tap->tap * a.d / a.s &&
             (j == 0 || tap->tap > t.taps[phase->first + j - 1].tap);
      }
      seen += phase->count;
    }
    /* Every tap once: k taps in all, and as many phases as residues. */
    int64_t residues = 0;
    for (int64_t tp = 0; tp < a.k && ok; tp++) {
      int64_t r = tp * a.d % a.s, first = 1;
      for (int64_t u = 0; u < tp && first; u++)
        first = u * a.d % a.s != r;
      residues += first;
    }
    ok = ok && seen == a.k && t.n_phases == residues &&
         ct_axis_max_phase_taps(a) >= t.phases[0].count;
    ct_phase_table_clear(&t);
  }
  tap_ok(ok && tried == 400, "phase tables of 400 random axes match the definition");
  ct_phase_table t;
  tap_ok(ct_phase_table_build((ct_axis){.k = CT_MAX_TAPS + 1, .s = 1, .d = 1}, &t) ==
                 CT_ERR_INVALID &&
             t.taps == NULL,
         "a phase table past the tap limit is refused before allocating");
}

/* What a layer and its stream hold stays a small multiple of the weights:
 * packed plans (padded to tiles of CT_GEMM_MR rows, so up to 6 x for one
 * output channel a group, and 3 x more for pairs) and 32-bit indices. */
static double plan_ratio(const ct_params *p, const int64_t *frame, double *worst,
                         char *worst_desc, size_t desc_size) {
  char msg[256];
  const int64_t nw = ct_weight_count(p);
  float *w = calloc((size_t)nw, sizeof(float));
  fill_random(w, nw);
  ct_layer *layer = ct_layer_new(p, w, NULL, msg, sizeof msg);
  free(w);
  ct_stream *st = layer ? ct_stream_new(layer, frame, msg, sizeof msg) : NULL;
  double ratio = -1;
  if (st) {
    /* Beyond a fixed 64 KiB, and a record per plan (strides > taps). */
    const double fixed =
        65536.0 + 128.0 * (double)(p->stride[0] * p->stride[1] * p->stride[2]);
    ratio = ((double)ct_layer_bytes(layer) - fixed) / ((double)nw * sizeof(float));
    if (ratio > *worst) {
      const int64_t shape[3] = {1, frame ? frame[0] : 1, frame ? frame[1] : 1};
      *worst = ratio;
      describe(p, shape, worst_desc, desc_size);
    }
  } else {
    tap_diag("plan_ratio: %s", msg);
  }
  ct_stream_free(st);
  ct_layer_free(layer);
  return ratio;
}

static void check_plan_memory(void) {
  double worst = 0;
  char desc[256] = "";
  int all = 1;
  for (int i = 0; i < 300; i++) {
    ct_params p;
    switch (i % 4) {
    case 0:
      random_params(&p);
      break;
    case 1:
      random_wide_params(&p);
      break;
    case 2:
      random_pair_params(&p);
      break;
    default:
      random_tap_params(&p);
      break;
    }
    const int64_t frame[2] = {rng_range(1, 40) + 40, rng_range(1, 40) + 40};
    all = all && plan_ratio(&p, frame, &worst, desc, sizeof desc) >= -1e9;
  }
  for (int i = 0; i < CT_BENCH_N_CASES; i++) {
    ct_params p = ct_bench_case_params(&ct_bench_cases[i]);
    const int64_t frame[2] = {40, 64};
    all = all && plan_ratio(&p, frame, &worst, desc, sizeof desc) >= -1e9;
  }
  /* One output channel, many taps: the padding's worst case. */
  ct_params p = layer_1d(1, 1, 65536, 1, 0);
  double one = plan_ratio(&p, NULL, &worst, desc, sizeof desc);
  all = all && one >= 0;
  tap_ok(all && worst <= 16,
         "layer + plans <= 16 x the weights' bytes (+ 64 KiB and a record per plan) for "
         "300 random layers and the bench cases: worst %.2f x (%s); 1 x 1 x 65536 taps: "
         "%.2f x",
         worst, desc, one);
}

/* A stream whose plans would not fit is refused before they are allocated:
 * a stride of 1e8 along the run is 1e8 plans and 1e8 residues of scratch,
 * refused even in a child limited to 512 MB of address space. */
static void check_plan_refusal(void) {
  ct_params p;
  ct_params_init(&p, 2);
  p.in_channels = p.out_channels = 1;
  p.stride[1] = 100000000;
  float w = 1, b = 0;
  char msg[256] = "";
  /* Plans are built with the layer: it is the layer that is refused. */
  ct_layer *layer = ct_layer_new(&p, &w, &b, msg, sizeof msg);
  tap_ok(!layer &&
             strstr(msg, "MB (1 weights, packed per phase), over the limit of 2000 MB"),
         "stride 1e8 along the run refused: %s", msg);
  ct_layer_free(layer);
#if defined(__SANITIZE_ADDRESS__)
  tap_ok(1, "refused within 512 MB of address space # SKIP ASan reserves more");
#else
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit lim = {.rlim_cur = 512u << 20, .rlim_max = 512u << 20};
    setrlimit(RLIMIT_AS, &lim);
    char child_msg[256] = "";
    ct_layer *l2 = ct_layer_new(&p, &w, &b, child_msg, sizeof child_msg);
    _exit(!l2 && strstr(child_msg, "over the limit") ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "refused within 512 MB of address space (not by running out of it)");
#endif
}

/* A layer is planned once, when it is created: streams of any frame shape,
 * batch items (one-shot forwards) and new thread counts reuse its plans. */
static void check_planned_once(void) {
  ct_params p;
  ct_params_init(&p, 2);
  p.in_channels = p.out_channels = 3;
  p.kernel[0] = p.kernel[1] = 4;
  p.stride[0] = p.stride[1] = 2;
  p.padding[0] = p.padding[1] = 1;
  const int64_t nw = ct_weight_count(&p);
  float *w = calloc((size_t)nw, sizeof(float));
  fill_random(w, nw);
  char msg[256] = "";
  const long before = ct_plan_builds();
  ct_layer *layer = ct_layer_new(&p, w, NULL, msg, sizeof msg);
  const long built = ct_plan_builds() - before;
  int ok = layer != NULL;
  const int64_t widths[5] = {1, 7, 64, 333, 640};
  float *in = calloc(3 * 4 * 640, sizeof(float)),
        *out = calloc(3 * 16 * 1280, sizeof(float));
  for (int i = 0; ok && i < 10; i++) {
    const int64_t frame[1] = {widths[i % 5]};
    ct_stream *st = ct_stream_new(layer, frame, msg, sizeof msg);
    ok = st && ct_stream_set_threads(st, 1 + i % 3) == CT_OK;
    int64_t n = 0;
    ok = ok &&
         ct_stream_push(st, in, 4 * frame[0], 4, out, 16 * 2 * frame[0], &n) == CT_OK;
    ct_stream_free(st);
  }
  const int64_t shape[2] = {4, 64};
  for (int item = 0; ok && item < 3; item++)
    ok = ct_forward(layer, shape, in, out, msg, sizeof msg) == CT_OK;
  tap_ok(ok && built == 1 && ct_plan_builds() - before == 1,
         "a layer is planned once: %ld plans for the layer, %ld after 10 streams on 5 "
         "frame shapes, 1-3 threads and 3 one-shot items (%s)",
         built, ct_plan_builds() - before, msg);
  ct_layer_free(layer);
  free(in);
  free(out);
  free(w);
}

int main(int argc, char **argv) {
  int n_layers = argc > 1 ? atoi(argv[1]) : 400;
  check_geometry();
  check_limits();
  check_phase_tables();
  check_plan_memory();
  check_plan_refusal();
  check_planned_once();
  check_short_and_reuse();
  check_fill_streaming();
  check_retain_order();
  check_pool();
  /* Every instruction-set level this CPU runs, each against the reference. */
  int levels = 0;
  for (int level = 0; level < CT_DSP_LEVELS; level++) {
    const ct_dsp *dsp = ct_dsp_for_level((ct_dsp_level)level);
    if (!dsp) {
      tap_diag("level %d not available on this CPU", level);
      continue;
    }
    levels++;
    ct_dsp_force(dsp);
    check_random_layers(n_layers, LAYERS_SMALL, dsp->name);
    check_random_layers(n_layers / 10, LAYERS_WIDE, dsp->name);
    check_random_layers(n_layers / 4, LAYERS_PAIRS, dsp->name);
    check_random_layers(n_layers / 10, LAYERS_TAPS, dsp->name);
    check_long_streams();
  }
  ct_dsp_force(NULL);
  tap_ok(levels >= 1 && ct_dsp_for_level(CT_DSP_C) != NULL, "%d dispatch levels tested",
         levels);
  return tap_done();
}
