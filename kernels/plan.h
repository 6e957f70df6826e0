/* A layer's polyphase plans, built once when the layer is created and read
 * by every stream of it (any frame shape, any batch item, any thread):
 * which input each product of an output reads, and the weights packed
 * (packing.h) in the order the products are summed.
 *
 * Outputs are computed in runs along the last axis (the run axis: samples
 * in 1d, columns in 2d and 3d), one plan per combination of the outer axes'
 * phases and the run axis' residue. A plan is a small matrix product:
 * output row co of a run = bias[co] + sum over products j of
 * a[co][j] * input[chan[j]] at row m - offset0[j] on axis 0, shifted by
 * offset1[j] and offset2[j] on axes 1 and 2 (see ct_plan_inner_offset).
 * Pure C11; not for users of the library. */
#ifndef CT_PLAN_H
#define CT_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "geometry.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ct_layer;

typedef struct ct_run_plan {
  int64_t k; /* products: taps x (Cin/g) (tap mode: taps); 0 where no tap reaches */
  /* Packed rows of every group, group g from g * ct_gemm_packed_size(Cout/g, k). */
  float *a;
  /* Per product: input offsets on the axes (the index an output at phase
   * index m reads is m - offset), and its input channel within the group
   * (tap mode: the tap, a channel of the history's products). Axis offsets
   * are at most CT_MAX_REACH, channels below Cin or the taps: 32 bits. */
  int32_t *offset0, *offset1, *offset2;
  int32_t *chan;
  /* Stride 2 along the run, both residues reading the same inputs (on the
   * residue-0 plan): rows (channel, residue) of every group, for
   * run_phase_pairs, and their bias. NULL otherwise. */
  float *phase_pair_a;
  float *phase_pair_bias;
} ct_run_plan;

/* Stride 2 on axis 0 (2d/3d, stride 1 along the run): when the two phases
 * of axis 0 read the same input rows, steps j and j + 1 (j + p even) are
 * computed together, each input vector loaded once for both. */
typedef struct ct_step_pair {
  float *a;    /* rows (phase, channel) of every group, packed */
  float *bias; /* [2 Cout] */
} ct_step_pair;

typedef struct ct_plan {
  /* Tap mode (2d, one output channel, many input channels): a
   * single-output-channel product gives the matrix kernels no reuse of what
   * they load. Instead every input row is first multiplied by all kernel
   * taps at once, P[tap][x] = sum_ci w[ci][tap] x[ci][x] (a well-shaped
   * matrix product: taps x Cin), and the history keeps P, one channel per
   * tap; an output is then the bias plus the P of its taps, a plan of
   * products with weight 1 (fused multiply-adds by 1 are exact additions).
   * Every output is still one fixed chain, so streaming stays bitwise. */
  bool tap_mode;
  float *tap_a;             /* [taps][Cin], packed */
  float *tap_zero;          /* [taps] zeros: P has no bias */
  int run_axis;             /* the last axis */
  int64_t s_run;            /* stride along it: residues per run */
  int64_t n_outer[2];       /* phases with taps on axes 0 and 1 when they are outer */
  ct_run_plan *runs;        /* [n_outer[0]][n_outer[1]][s_run] */
  ct_step_pair *step_pairs; /* [n_outer[1]], or NULL */
  int64_t step_pair_o0;     /* axis-0 phase of residue 0 */
  const float *bias;        /* the layer's, or zeros */
  float *zero_bias;         /* [Cout] */
  int64_t max_k;            /* products of the largest plan (tap mode: >= Cin) */
  size_t bytes;             /* everything above */
} ct_plan;

/* Whether a layer runs in tap mode (see ct_plan). */
bool ct_plan_tap_mode(const ct_params *params);

/* The most bytes ct_plan_build allocates for the layer, from its phase
 * tables alone: a layer too large is refused before any of it is built. */
double ct_plan_bytes_bound(const struct ct_layer *layer);

/* Builds the plans (NULL when out of memory). */
ct_plan *ct_plan_build(const struct ct_layer *layer);
void ct_plan_free(ct_plan *plan);

/* How many plans have been built in this process: tests check that a
 * renegotiation or a batch reuses its layer's. */
long ct_plan_builds(void);

/* The s_run plans of outer phases o0 (axis 0) and o1 (axis 1). */
static inline const ct_run_plan *ct_plan_runs(const ct_plan *plan, int64_t o0,
                                              int64_t o1) {
  return plan->runs + (o0 * plan->n_outer[1] + o1) * plan->s_run;
}

/* Where product j reads on the frame axes, in floats from the run start,
 * for frames whose padded lines are line_len floats apart (3d; 2d: 1). */
static inline int64_t ct_plan_inner_offset(const ct_run_plan *run, int64_t j,
                                           int64_t line_len) {
  return -(int64_t)run->offset1[j] * line_len - run->offset2[j];
}

#ifdef __cplusplus
}
#endif

#endif
