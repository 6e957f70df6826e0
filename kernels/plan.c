#include "plan.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "dsp.h" /* CT_GEMM_KC: run_phase_pairs takes at most that many products */
#include "layer-private.h"
#include "packing.h"

static _Atomic long plans_built;

long ct_plan_builds(void) {
  return atomic_load(&plans_built);
}

bool ct_plan_tap_mode(const ct_params *params) {
  int64_t taps = 1;
  for (int a = 0; a < params->rank; a++)
    taps *= params->kernel[a];
  return params->rank == 2 && params->groups == 1 && params->out_channels == 1 &&
         params->in_channels >= 16 && taps >= 6 && taps <= 256;
}

/* Every tap combination is in exactly one plan, so the plans hold (Cin/g) x
 * taps products (tap mode: taps) in all, each with its column of packed
 * weights and four 32-bit indices; pairs merge two plans of equal length. */
double ct_plan_bytes_bound(const ct_layer *layer) {
  const ct_params *params = &layer->params;
  const int rank = params->rank;
  const bool tap_mode = ct_plan_tap_mode(params);
  const double n0 = rank > 1 ? (double)layer->phases[0].n_phases : 1,
               n1 = rank > 2 ? (double)layer->phases[1].n_phases : 1,
               s_run = (double)params->stride[rank - 1], n_plans = n0 * n1 * s_run;
  const double products =
      (tap_mode ? 1.0 : (double)layer->in_per_group) * (double)layer->taps_per_pair;
  const double groups = (double)params->groups, cout = (double)params->out_channels;
  const double rows = (double)ct_gemm_packed_size(layer->out_per_group, 1),
               pair_rows = (double)ct_gemm_packed_size(2 * layer->out_per_group, 1);
  double floats = groups * rows * products + cout, pairs = 0;
  if (s_run == 2)
    pairs = n_plans / 2; /* phase pairs */
  else if (rank > 1 && params->stride[0] == 2 && s_run == 1)
    pairs = n1; /* step pairs */
  if (pairs > 0)
    floats += groups * pair_rows * products / 2 + pairs * 2 * cout;
  if (tap_mode) {
    const double taps = (double)layer->taps_per_pair;
    floats += (double)ct_gemm_packed_size(layer->taps_per_pair, 1) *
                  (double)params->in_channels +
              taps;
  }
  return floats * sizeof(float) + products * 4 * sizeof(int32_t) +
         n_plans * sizeof(ct_run_plan) + n1 * sizeof(ct_step_pair) + sizeof(ct_plan);
}

/* Zeroed plan memory of count items, counted in plan->bytes. */
static void *plan_alloc(ct_plan *plan, int64_t count, size_t size) {
  size_t bytes;
  if (!ct_bytes_for(count, size, &bytes))
    return NULL;
  void *p = calloc(bytes ? bytes : 1, 1);
  if (p)
    plan->bytes += bytes;
  return p;
}

/* Floats of packed weights for `groups` groups of m rows and k products. */
static int64_t packed_floats(int64_t groups, int64_t m, int64_t k) {
  int64_t n;
  return ct_mul_i64(groups, ct_gemm_packed_size(m, k), &n) ? n : -1;
}

/* Weight of output channel co from input channel ci of its group, tap tap
 * (PyTorch's layout: [Cin][Cout/g][taps]). */
static float weight_of(const ct_layer *layer, int64_t co, int64_t ci, int64_t tap) {
  const int64_t g = co / layer->out_per_group, co_l = co % layer->out_per_group;
  return layer->weight[((g * layer->in_per_group + ci) * layer->out_per_group + co_l) *
                           layer->taps_per_pair +
                       tap];
}

/* The plan of one phase combination: weights in (t0, ci, t1, t2) order, and
 * where each product reads relative to the run start. */
static bool build_run(ct_plan *plan, const ct_layer *layer, const ct_phase *const *phases,
                      ct_run_plan *run) {
  const int rank = layer->params.rank;
  int64_t taps = 1;
  for (int a = 0; a < rank; a++)
    taps *= phases[a] ? phases[a]->count : 0; /* <= CT_MAX_TAPS */
  const int64_t n_ci = plan->tap_mode ? 1 : layer->in_per_group;
  run->k = n_ci * taps; /* <= CT_MAX_WEIGHTS */
  if (run->k == 0)
    return true;
  const int64_t cout = layer->params.out_channels;
  const int64_t out_g = layer->out_per_group,
                per_group = ct_gemm_packed_size(out_g, run->k);
  run->a =
      plan_alloc(plan, packed_floats(layer->params.groups, out_g, run->k), sizeof(float));
  run->offset0 = plan_alloc(plan, run->k, sizeof(int32_t));
  run->offset1 = plan_alloc(plan, run->k, sizeof(int32_t));
  run->offset2 = plan_alloc(plan, run->k, sizeof(int32_t));
  run->chan = plan_alloc(plan, run->k, sizeof(int32_t));
  if (!run->a || !run->offset0 || !run->offset1 || !run->offset2 || !run->chan)
    return false;
  if (run->k > plan->max_k)
    plan->max_k = run->k;
  const int64_t k1 = layer->params.kernel[1], k2 = layer->params.kernel[2];
  /* Taps on axis 0 outermost: in 2d/3d one input row serves a run of
   * products, and rows may live in different places. */
  int64_t k = 0;
  for (int64_t i0 = 0; i0 < phases[0]->count; i0++) {
    const ct_tap t0 = layer->phases[0].taps[phases[0]->first + i0];
    for (int64_t ci = 0; ci < n_ci; ci++) {
      const int64_t n1 = rank > 1 ? phases[1]->count : 1;
      for (int64_t i1 = 0; i1 < n1; i1++) {
        const ct_tap t1 =
            rank > 1 ? layer->phases[1].taps[phases[1]->first + i1] : (ct_tap){0, 0};
        const int64_t n2 = rank > 2 ? phases[2]->count : 1;
        for (int64_t i2 = 0; i2 < n2; i2++, k++) {
          const ct_tap t2 =
              rank > 2 ? layer->phases[2].taps[phases[2]->first + i2] : (ct_tap){0, 0};
          const int64_t tap = (t0.tap * k1 + t1.tap) * k2 + t2.tap;
          run->offset0[k] = t0.offset;
          run->offset1[k] = t1.offset;
          run->offset2[k] = t2.offset;
          run->chan[k] = (int32_t)(plan->tap_mode ? tap : ci); /* tap mode: P's channel */
          for (int64_t co = 0; co < cout; co++) {
            const int64_t g = co / out_g, r = co % out_g;
            run->a[g * per_group + ct_packed_index(r, k, run->k)] =
                plan->tap_mode ? 1.0f : weight_of(layer, co, ci, tap);
          }
        }
      }
    }
  }
  return true;
}

/* The weights of two plans that read the same inputs, as one product whose
 * rows are (channel, plan) when interleaved (phase pairs), else (plan,
 * channel) (step pairs), per group; and the bias of those rows. */
static bool merge_weights(ct_plan *plan, const ct_layer *layer,
                          const ct_run_plan *const runs[2], bool interleaved,
                          float **a_out, float **bias_out) {
  const int64_t out_g = layer->out_per_group, groups = layer->params.groups;
  const int64_t k = runs[0]->k, per_group = ct_gemm_packed_size(out_g, k),
                pair_group = ct_gemm_packed_size(2 * out_g, k);
  float *merged = *a_out =
      plan_alloc(plan, packed_floats(groups, 2 * out_g, k), sizeof(float));
  float *bias = *bias_out =
      plan_alloc(plan, 2 * layer->params.out_channels, sizeof(float));
  if (!merged || !bias)
    return false;
  for (int64_t g = 0; g < groups; g++)
    for (int64_t row = 0; row < 2 * out_g; row++) {
      const int64_t c = interleaved ? row / 2 : row % out_g;
      const float *a = runs[interleaved ? row % 2 : row / out_g]->a + g * per_group;
      float *pa = merged + g * pair_group;
      for (int64_t j = 0; j < k; j++)
        pa[ct_packed_index(row, j, k)] = a[ct_packed_index(c, j, k)];
      bias[2 * g * out_g + row] = layer->bias ? layer->bias[g * out_g + c] : 0.0f;
    }
  return true;
}

/* Whether two plans read the same inputs in the same order. */
static bool same_reads(const ct_run_plan *p, const ct_run_plan *q) {
  if (p->k == 0 || p->k != q->k)
    return false;
  for (int64_t i = 0; i < p->k; i++)
    if (p->offset0[i] != q->offset0[i] || p->offset1[i] != q->offset1[i] ||
        p->offset2[i] != q->offset2[i] || p->chan[i] != q->chan[i])
      return false;
  return true;
}

/* Merges the two residue plans of a stride-2 run when they read the same
 * inputs in the same order (kernel length even along the run, dilation 1):
 * then one pass computes both phases and writes them interleaved. */
static bool build_phase_pair(ct_plan *plan, const ct_layer *layer, ct_run_plan *p0,
                             const ct_run_plan *p1) {
  if (!same_reads(p0, p1) || p0->k > CT_GEMM_KC)
    return true;
  const ct_run_plan *runs[2] = {p0, p1};
  return merge_weights(plan, layer, runs, true, &p0->phase_pair_a, &p0->phase_pair_bias);
}

/* Tap mode's products: P[tap] = sum over ci of w[ci][tap] * x[ci]. */
static bool build_tap_weights(ct_plan *plan, const ct_layer *layer) {
  if (!plan->tap_mode)
    return true;
  const int64_t taps = layer->taps_per_pair, cin = layer->params.in_channels;
  plan->tap_a = plan_alloc(plan, packed_floats(1, taps, cin), sizeof(float));
  plan->tap_zero = plan_alloc(plan, taps, sizeof(float));
  if (!plan->tap_a || !plan->tap_zero)
    return false;
  for (int64_t t = 0; t < taps; t++)
    for (int64_t ci = 0; ci < cin; ci++)
      plan->tap_a[ct_packed_index(t, ci, cin)] = weight_of(layer, 0, ci, t);
  if (cin > plan->max_k)
    plan->max_k = cin;
  return true;
}

/* See ct_step_pair. */
static bool build_step_pairs(ct_plan *plan, const ct_layer *layer) {
  const ct_phase_table *ph = &layer->phases[0];
  if (layer->params.rank < 2 || layer->params.stride[0] != 2 || plan->s_run != 1)
    return true;
  const ct_phase *phase0 = ct_phase_of_residue(ph, 0),
                 *phase1 = ct_phase_of_residue(ph, 1);
  const int64_t n1 = plan->n_outer[1];
  if (!phase0 || !phase1 || n1 < 1)
    return true;
  const int64_t o0a = phase0 - ph->phases, o0b = phase1 - ph->phases;
  for (int64_t o1 = 0; o1 < n1; o1++)
    if (!same_reads(&plan->runs[o0a * n1 + o1], &plan->runs[o0b * n1 + o1]))
      return true;
  plan->step_pairs = plan_alloc(plan, n1, sizeof *plan->step_pairs);
  if (!plan->step_pairs)
    return false;
  plan->step_pair_o0 = o0a;
  for (int64_t o1 = 0; o1 < n1; o1++) {
    const ct_run_plan *runs[2] = {&plan->runs[o0a * n1 + o1], &plan->runs[o0b * n1 + o1]};
    if (!merge_weights(plan, layer, runs, false, &plan->step_pairs[o1].a,
                       &plan->step_pairs[o1].bias))
      return false;
  }
  return true;
}

static int64_t run_count(const ct_plan *plan) {
  return plan->n_outer[0] * plan->n_outer[1] * plan->s_run;
}

/* Plans for every combination; the run axis is indexed by residue. */
static bool build_runs(ct_plan *plan, const ct_layer *layer) {
  const ct_phase_table *ph = layer->phases;
  const int rank = layer->params.rank;
  plan->runs = plan_alloc(plan, run_count(plan), sizeof(ct_run_plan));
  if (!plan->runs)
    return false;
  for (int64_t o0 = 0; o0 < plan->n_outer[0]; o0++)
    for (int64_t o1 = 0; o1 < plan->n_outer[1]; o1++)
      for (int64_t r = 0; r < plan->s_run; r++) {
        const ct_phase *phases[CT_MAX_RANK] = {NULL, NULL, NULL};
        if (rank > 1)
          phases[0] = &ph[0].phases[o0];
        if (rank > 2)
          phases[1] = &ph[1].phases[o1];
        phases[plan->run_axis] = ct_phase_of_residue(&ph[plan->run_axis], r);
        if (!build_run(plan, layer, phases,
                       &plan->runs[(o0 * plan->n_outer[1] + o1) * plan->s_run + r]))
          return false;
      }
  for (int64_t i = 0; plan->s_run == 2 && i < run_count(plan); i += 2)
    if (!build_phase_pair(plan, layer, &plan->runs[i], &plan->runs[i + 1]))
      return false;
  return true;
}

ct_plan *ct_plan_build(const ct_layer *layer) {
  const ct_params *params = &layer->params;
  const int rank = params->rank;
  ct_plan *plan = calloc(1, sizeof *plan);
  if (!plan)
    return NULL;
  plan->bytes = sizeof *plan;
  plan->tap_mode = ct_plan_tap_mode(params);
  plan->run_axis = rank - 1;
  plan->s_run = params->stride[rank - 1];
  plan->n_outer[0] = rank > 1 ? layer->phases[0].n_phases : 1;
  plan->n_outer[1] = rank > 2 ? layer->phases[1].n_phases : 1;
  plan->zero_bias = plan_alloc(plan, params->out_channels, sizeof(float));
  plan->bias = layer->bias ? layer->bias : plan->zero_bias;
  if (!plan->zero_bias || !build_runs(plan, layer) || !build_step_pairs(plan, layer) ||
      !build_tap_weights(plan, layer)) {
    ct_plan_free(plan);
    return NULL;
  }
  atomic_fetch_add(&plans_built, 1);
  return plan;
}

void ct_plan_free(ct_plan *plan) {
  if (!plan)
    return;
  for (int64_t i = 0; plan->runs && i < run_count(plan); i++) {
    free(plan->runs[i].a);
    free(plan->runs[i].offset0);
    free(plan->runs[i].offset1);
    free(plan->runs[i].offset2);
    free(plan->runs[i].chan);
    free(plan->runs[i].phase_pair_a);
    free(plan->runs[i].phase_pair_bias);
  }
  free(plan->runs);
  for (int64_t i = 0; plan->step_pairs && i < plan->n_outer[1]; i++) {
    free(plan->step_pairs[i].a);
    free(plan->step_pairs[i].bias);
  }
  free(plan->step_pairs);
  free(plan->tap_a);
  free(plan->tap_zero);
  free(plan->zero_bias);
  free(plan);
}
