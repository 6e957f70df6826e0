/* Outputs from the layer's plans (plan.h): for a range of output steps,
 * every run along the last axis as one small matrix product per plan
 * (dsp.h), stride-2 runs whose phases read the same inputs as phase pairs,
 * and steps of axis 0 whose phases read the same rows as step pairs. However
 * the work is cut, every output is the same sum in the same order. */
#include <stdint.h>

#include "stream-private.h"

/* Where each product of `plan` reads for the run at phase index mb of
 * group g's input channels (ci0 the first). */
static void set_rows(const ct_stream *st, const ct_run_plan *plan, int64_t m0,
                     int64_t line, int64_t mb, int64_t ci0, const worker_scratch *ws) {
  const int64_t pad = st->pad_before[st->plan->run_axis], pad0 = st->pad_before[0];
  if (st->layer->params.rank == 1) { /* channel-planar runs: plain offsets */
    /* Runs of a window read it alone (see cts_open_window). */
    const bool in_window = st->window_end > st->window_first;
    const float *base = in_window ? st->window_in + (mb + pad0 - st->window_first)
                                  : st->hist + (mb + pad0 - st->hist_first);
    const int64_t chan_stride = in_window ? st->window_chan_stride : st->hist_cap;
    for (int64_t k = 0; k < plan->k; k++)
      ws->rows[k] = base + (ci0 + plan->chan[k]) * chan_stride - plan->offset0[k];
  } else {
    /* Consecutive products mostly share a row (the inner taps): look each
     * row up once. */
    int64_t last_u = -1, last_c = -1;
    const float *row = NULL;
    const int32_t *inner = st->inner + st->inner_first[plan - st->plan->runs];
    for (int64_t k = 0; k < plan->k; k++) {
      const int64_t u = m0 - plan->offset0[k] + pad0, c = ci0 + plan->chan[k];
      if (u != last_u || c != last_c) {
        row = cts_row_ptr(st, u, c);
        last_u = u;
        last_c = c;
      }
      ws->rows[k] = row + inner[k] + line + mb + pad;
    }
  }
}

static void compute_run_phases(const ct_stream *st, const ct_run_plan *plans, int64_t m0,
                               int64_t line, int64_t first_out, int64_t count, float *out,
                               int64_t out_chan_stride, const worker_scratch *ws);

/* Outputs [x_begin, x_end) of a run one at a time (the one or two at the
 * ends of a run a phase pair does not cover), written straight into out
 * (which holds output x_begin): same sums as every other path. */
static void compute_single_outputs(const ct_stream *st, const ct_run_plan *plans,
                                   int64_t m0, int64_t line, int64_t x_begin,
                                   int64_t x_end, float *out, int64_t out_chan_stride,
                                   const worker_scratch *ws) {
  const ct_layer *layer = st->layer;
  const ct_axis a = st->axis[st->plan->run_axis];
  const float *bias = st->plan->bias;
  const int64_t out_g = layer->out_per_group;
  for (int64_t x = x_begin; x < x_end; x++) {
    const int64_t q = x + a.p, m = q / a.s;
    const ct_run_plan *plan = &plans[q % a.s];
    float *dst = out + (x - x_begin);
    for (int64_t g = ws->g_begin; g < ws->g_end; g++) {
      if (plan->k == 0) {
        for (int64_t i = 0; i < out_g; i++)
          dst[(g * out_g + i) * out_chan_stride] = bias[g * out_g + i];
        continue;
      }
      set_rows(st, plan, m0, line, m, g * layer->in_per_group, ws);
      ct_run_gemm gemm = {
          .m = out_g,
          .k = plan->k,
          .n = 1,
          .a = plan->a + g * ct_gemm_packed_size(out_g, plan->k),
          .bias = bias + g * out_g,
          .rows = ws->rows,
          .dst = dst + g * out_g * out_chan_stride,
          .dst_stride = out_chan_stride,
      };
      st->dsp->run_gemm(&gemm);
    }
  }
}

/* One run: the outputs along the run axis for fixed outer positions.
 * plans: the s_run plans of the outer phases; m0: the phase index on axis 0
 * (2d/3d); line: offset of the outer position on axis 1 (3d);
 * first_out/count: the outputs of the run (1d: a run of steps).
 * Stride-2 runs whose phases read the same inputs are computed in pairs
 * and written once, in place; the other outputs (and the one or two at the
 * ends a pair does not cover) phase by phase. */
static void compute_run(const ct_stream *st, const ct_run_plan *plans, int64_t m0,
                        int64_t line, int64_t first_out, int64_t count, float *out,
                        int64_t out_chan_stride, const worker_scratch *ws) {
  const ct_layer *layer = st->layer;
  const ct_axis a = st->axis[st->plan->run_axis];
  if (a.s == 2 && plans[0].phase_pair_a && count > 0) {
    /* Output x is phase (x + p) % 2 at index (x + p) / 2. Pairs (phase 0
     * at m, phase 1 at m) cover outputs 2m - p and 2m - p + 1; shifted pairs
     * (phase 1 at m, phase 0 at m + 1) start one output later. Of the two,
     * the one whose pairs start on even addresses, so that non-temporal
     * stores can start cache lines. Shifted pairs load each input twice,
     * once per phase: only worth it for those stores, in tiles of 6 rows
     * with registers to spare. */
    const int64_t q_begin = first_out + a.p, q_end = first_out + count + a.p;
    const int64_t m_lo = (q_begin + 1) / 2;
    const bool shifted = st->nontemporal && st->dsp->fast_shifted_pairs &&
                         layer->out_per_group >= 3 &&
                         (((uintptr_t)(out + (2 * m_lo - a.p - first_out))) & 7) != 0;
    const int64_t m_first = shifted ? q_begin / 2 : m_lo;
    const int64_t m_end = shifted ? (q_end - 1) / 2 : q_end / 2;
    if (m_end > m_first) {
      const int64_t x_lo = 2 * m_first - a.p + shifted, x_hi = 2 * m_end - a.p + shifted;
      compute_single_outputs(st, plans, m0, line, first_out, x_lo, out, out_chan_stride,
                             ws);
      const int64_t out_g = layer->out_per_group;
      for (int64_t g = ws->g_begin; g < ws->g_end; g++) {
        set_rows(st, &plans[0], m0, line, m_first, g * layer->in_per_group, ws);
        ct_run_gemm gemm = {
            .m = 2 * out_g,
            .k = plans[0].k,
            .n = m_end - m_first,
            .a = plans[0].phase_pair_a + g * ct_gemm_packed_size(2 * out_g, plans[0].k),
            .bias = plans[0].phase_pair_bias + 2 * g * out_g,
            .rows = ws->rows,
            .dst = out + (x_lo - first_out) + g * out_g * out_chan_stride,
            .dst_stride = out_chan_stride,
            .nontemporal = st->nontemporal,
            .phase_pairs_shifted = shifted,
        };
        st->dsp->run_phase_pairs(&gemm);
      }
      compute_single_outputs(st, plans, m0, line, x_hi, first_out + count,
                             out + (x_hi - first_out), out_chan_stride, ws);
      return;
    }
  }
  compute_run_phases(st, plans, m0, line, first_out, count, out, out_chan_stride, ws);
}

/* compute_run, one phase at a time: every residue into acc, then
 * interleaved into each channel's output. */
static void compute_run_phases(const ct_stream *st, const ct_run_plan *plans, int64_t m0,
                               int64_t line, int64_t first_out, int64_t count, float *out,
                               int64_t out_chan_stride, const worker_scratch *ws) {
  if (count <= 0)
    return;
  const ct_layer *layer = st->layer;
  const ct_axis a = st->axis[st->plan->run_axis];
  const int64_t cout = layer->params.out_channels;
  const float *bias = st->plan->bias;
  float *acc = ws->acc;
  for (int64_t r = 0; r < a.s; r++) {
    int64_t mb, me;
    ct_phase_output_range(a, r, first_out, first_out + count, &mb, &me);
    ws->starts[r] = mb;
    const ct_run_plan *plan = &plans[r];
    if (plan->k == 0 || me == mb)
      continue;
    /* Stride 1 along the run: the phase is the output itself, no copy. */
    const bool in_place = a.s == 1;
    float *dst = in_place ? out : acc + r * cout * st->acc_stride;
    const int64_t dst_stride = in_place ? out_chan_stride : st->acc_stride;
    for (int64_t g = ws->g_begin; g < ws->g_end; g++) {
      const int64_t c0 = g * layer->out_per_group, ci0 = g * layer->in_per_group;
      set_rows(st, plan, m0, line, mb, ci0, ws);
      ct_run_gemm gemm = {
          .m = layer->out_per_group,
          .k = plan->k,
          .n = me - mb,
          .a = plan->a + g * ct_gemm_packed_size(layer->out_per_group, plan->k),
          .bias = bias + c0,
          .rows = ws->rows,
          .dst = dst + c0 * dst_stride,
          .dst_stride = dst_stride,
          .pack = ws->pack,
          .nontemporal = in_place && st->nontemporal,
      };
      st->dsp->run_gemm(&gemm);
    }
  }
  if (a.s == 1 && plans[0].k > 0)
    return;
  for (int64_t co = ws->g_begin * layer->out_per_group;
       co < ws->g_end * layer->out_per_group; co++) {
    /* Residues no tap reaches read a run of bias. */
    for (int64_t r = 0; r < a.s; r++)
      ws->phases[r] = plans[r].k ? acc + (r * cout + co) * st->acc_stride
                                 : st->bias_runs + co * st->acc_stride;
    ct_interleave il = {.n = count,
                        .s = a.s,
                        .first = first_out + a.p,
                        .phases = ws->phases,
                        .phase_start = ws->starts,
                        .out = out + co * out_chan_stride};
    st->dsp->interleave(&il);
  }
}

/* Steps j and j + 1 through step_pairs (see there), the part [part_begin,
 * part_end) of each: columns in 2d, lines in 3d. */
static void compute_step_pair(const ct_stream *st, int64_t j, int64_t part_begin,
                              int64_t part_end, float *out, int64_t out_chan_stride,
                              int64_t out_base, const worker_scratch *ws) {
  const ct_layer *layer = st->layer;
  const int rank = layer->params.rank;
  const ct_axis a1 = st->axis[1], ar = st->axis[st->plan->run_axis];
  const ct_phase_table *ph = layer->phases;
  const int64_t m0 = (j + st->axis[0].p) / 2, out_g = layer->out_per_group;
  const int64_t n1 = st->plan->n_outer[1];
  float *frames[2] = {out + (j - out_base) * st->out_frame,
                      out + (j + 1 - out_base) * st->out_frame};
  const float *bias = st->plan->bias;
  const int64_t y_begin = rank == 3 ? part_begin : 0, y_end = rank == 3 ? part_end : 1;
  const int64_t x_begin = rank == 2 ? part_begin : 0,
                x_end = rank == 2 ? part_end : st->out_len[rank - 1];
  for (int64_t y = y_begin; y < y_end; y++) {
    int64_t o1 = 0, line = 0, line_out = 0;
    if (rank == 3) {
      const int64_t q1 = y + a1.p, r1 = q1 % a1.s, m1 = q1 / a1.s;
      line_out = y * st->out_len[2];
      o1 = -1;
      for (int64_t i = 0; i < ph[1].n_phases; i++)
        if (ph[1].phases[i].residue == r1)
          o1 = i;
      if (o1 < 0) { /* no tap reaches this line: bias only */
        for (int f = 0; f < 2; f++)
          for (int64_t co = 0; co < layer->params.out_channels; co++)
            for (int64_t x = 0; x < st->out_len[2]; x++)
              frames[f][co * out_chan_stride + line_out + x] = bias[co];
        continue;
      }
      line = (m1 + st->pad_before[1]) * st->padded_len[2];
    }
    const ct_step_pair *sp = &st->plan->step_pairs[o1];
    const ct_run_plan *plan = &st->plan->runs[st->plan->step_pair_o0 * n1 + o1];
    int64_t mb, me;
    ct_phase_output_range(ar, 0, x_begin, x_end, &mb, &me);
    for (int64_t g = 0; g < layer->params.groups; g++) {
      set_rows(st, plan, m0, line, mb, g * layer->in_per_group, ws);
      for (int64_t row = 0; row < 2 * out_g; row++)
        ws->dst_rows[row] = frames[row / out_g] +
                            (g * out_g + row % out_g) * out_chan_stride + line_out +
                            x_begin;
      ct_run_gemm gemm = {
          .m = 2 * out_g,
          .k = plan->k,
          .n = me - mb,
          .a = sp->a + g * ct_gemm_packed_size(2 * out_g, plan->k),
          .bias = sp->bias + 2 * g * out_g,
          .rows = ws->rows,
          .dst_rows = ws->dst_rows,
          .pack = ws->pack,
          .nontemporal = st->nontemporal,
      };
      st->dsp->run_gemm(&gemm);
    }
  }
}

/* Where the span of `len` steps that holds step j starts, spans being
 * counted from `origin`. */
int64_t cts_span_start(int64_t j, int64_t origin, int64_t len) {
  return origin + ct_floor_div(j - origin, len) * len;
}

/* The origin of 1d runs, tasks and sink batches: 1d, the first output of
 * the computation in progress (run_anchor); 2d/3d, step 0 shifted back by
 * `phase` (so that step pairs stay whole). */
int64_t cts_span_origin(const ct_stream *st, int64_t phase) {
  return st->layer->params.rank == 1 ? st->run_anchor : -phase;
}

/* Outputs [jb, je) of the streamed axis, all channels; in 2d and 3d only
 * the part [part_begin, part_end) of each step: output columns in 2d, lines
 * in 3d. However the work is cut, every output is the same sum. */
void cts_compute_rows(const ct_stream *st, int64_t jb, int64_t je, int64_t part_begin,
                      int64_t part_end, float *out, int64_t out_chan_stride,
                      int64_t out_base, const worker_scratch *acc) {
  const int rank = st->layer->params.rank;
  const int64_t s_run = st->axis[st->plan->run_axis].s;
  if (rank == 1) {
    /* Runs on multiples of run_steps (a multiple of the stride times the
     * vector tile) from the anchor: runs of whole tiles. */
    for (int64_t j = jb; j < je;) {
      const int64_t aligned =
          cts_span_start(j, st->run_anchor, st->run_steps) + st->run_steps;
      const int64_t stop = aligned < je ? aligned : je;
      compute_run(st, st->plan->runs, 0, 0, j, stop - j, out + (j - out_base),
                  out_chan_stride, acc);
      j = stop;
    }
    return;
  }
  const ct_axis a0 = st->axis[0], a1 = st->axis[1];
  const ct_phase_table *ph = st->layer->phases;
  const int64_t cout = st->layer->params.out_channels;
  const float *bias = st->plan->bias;
  for (int64_t j = jb; j < je; j++) {
    if (st->plan->step_pairs && j + 1 < je && (j + a0.p) % 2 == 0) {
      compute_step_pair(st, j, part_begin, part_end, out, out_chan_stride, out_base, acc);
      j++;
      continue;
    }
    float *row = out + (j - out_base) * st->out_frame;
    const int64_t q0 = j + a0.p, r0 = q0 % a0.s, m0 = q0 / a0.s;
    int64_t o0 = -1;
    for (int64_t i = 0; i < ph[0].n_phases; i++)
      if (ph[0].phases[i].residue == r0)
        o0 = i;
    if (o0 < 0) { /* no tap reaches this row: bias only */
      const int64_t line = rank == 3 ? st->out_len[2] : 1;
      for (int64_t co = 0; co < cout; co++)
        for (int64_t x = part_begin * line; x < part_end * line; x++)
          row[co * out_chan_stride + x] = bias[co];
      continue;
    }
    if (rank == 2) {
      compute_run(st, st->plan->runs + o0 * s_run, m0, 0, part_begin,
                  part_end - part_begin, row + part_begin, out_chan_stride, acc);
      continue;
    }
    for (int64_t y = part_begin; y < part_end; y++) {
      const int64_t q1 = y + a1.p, r1 = q1 % a1.s, m1 = q1 / a1.s;
      float *line = row + y * st->out_len[2];
      int64_t o1 = -1;
      for (int64_t i = 0; i < ph[1].n_phases; i++)
        if (ph[1].phases[i].residue == r1)
          o1 = i;
      if (o1 < 0) {
        for (int64_t co = 0; co < cout; co++)
          for (int64_t x = 0; x < st->out_len[2]; x++)
            line[co * out_chan_stride + x] = bias[co];
        continue;
      }
      compute_run(st, st->plan->runs + (o0 * st->plan->n_outer[1] + o1) * s_run, m0,
                  (m1 + st->pad_before[1]) * st->padded_len[2], 0, st->run_len, line,
                  out_chan_stride, acc);
    }
  }
}

/* Outputs [jb, je) in the thread's sink batch, handed to the sink batch by
 * batch (see ct_stream_set_sink). */
void cts_compute_to_sink(const ct_stream *st, int64_t jb, int64_t je,
                         const worker_scratch *ws) {
  const int64_t steps = st->sink_batch_steps, phase = st->sink_batch_phase;
  const int64_t chan_stride = steps * st->out_frame;
  const int64_t part_total = st->layer->params.rank == 1 ? 1 : st->out_len[1];
  for (int64_t j = jb; j < je;) {
    int64_t stop = cts_span_start(j, cts_span_origin(st, phase), steps) + steps;
    if (stop > je)
      stop = je;
    cts_compute_rows(st, j, stop, 0, part_total, ws->sink_batch, chan_stride, j, ws);
    st->sink(st->sink_ctx, j, stop - j, ws->sink_batch, chan_stride);
    j = stop;
  }
}
