/* The benchmark cases of bench-cases.md, in one place for `convtranspose
 * bench` and tools/perf/ab-stream.c. Plain C, no GLib. */
#ifndef CT_BENCH_CASES_H
#define CT_BENCH_CASES_H

#include "kernels/geometry.h"

typedef struct {
  const char *name;
  int rank;
  int64_t cin, cout, groups;
  int64_t kernel[3], stride[3], padding[3], output_padding[3];
  int64_t shape[3];    /* input spatial shape */
  int64_t stream_step; /* steps per push in stream mode */
} ct_bench_case;

/* Stream mode: audio 10 ms (480 samples), video one frame, 2d one row. */
static const ct_bench_case ct_bench_cases[] = {
    {"K1_audio_fir2x", 1, 2, 2, 2, {64}, {2}, {31}, {0}, {480000}, 480},
    {"K3_audio_mid", 1, 64, 32, 1, {16}, {8}, {4}, {0}, {4096}, 480},
    {"K4_audio_hifigan", 1, 512, 256, 1, {16}, {8}, {4}, {0}, {1024}, 480},
    {"K5_video_sr2x_2d", 2, 3, 3, 1, {4, 4}, {2, 2}, {1, 1}, {0, 0}, {360, 640}, 1},
    {"K6_video_sr2x_3d",
     3,
     3,
     3,
     1,
     {3, 4, 4},
     {1, 2, 2},
     {1, 1, 1},
     {0, 0, 0},
     {8, 360, 640},
     1},
    {"K7_video_fsrcnn", 2, 56, 1, 1, {9, 9}, {2, 2}, {4, 4}, {1, 1}, {360, 640}, 1},
    {"K8_video_interp_t2",
     3,
     3,
     3,
     1,
     {4, 1, 1},
     {2, 1, 1},
     {1, 0, 0},
     {0, 0, 0},
     {8, 720, 1280},
     1},
};
enum { CT_BENCH_N_CASES = sizeof ct_bench_cases / sizeof ct_bench_cases[0] };

static inline ct_params ct_bench_case_params(const ct_bench_case *c) {
  ct_params p;
  ct_params_init(&p, c->rank);
  p.in_channels = c->cin;
  p.out_channels = c->cout;
  p.groups = c->groups;
  for (int a = 0; a < c->rank; a++) {
    p.kernel[a] = c->kernel[a];
    p.stride[a] = c->stride[a];
    p.padding[a] = c->padding[a];
    p.output_padding[a] = c->output_padding[a];
  }
  return p;
}

#endif
