/* A push's outputs cut into tasks for the thread pool: ranges of steps, or
 * when there are few steps, parts of each step (columns, lines); or, for
 * small pushes of grouped 1d layers, ranges of groups. Every output is
 * computed whole by one thread, so the split never changes a value. */
#include <string.h>

#include "stream-private.h"

void cts_run_on_pool(const ct_stream *st, int n_tasks, ct_pool_task fn, void *ctx) {
  if (st->pool)
    ct_pool_run(st->pool, n_tasks, fn, ctx);
  else
    for (int t = 0; t < n_tasks; t++)
      fn(ctx, t, 0);
}

/* The outputs of one push cut into tasks: ranges of steps, or when there
 * are few steps, parts of each step (see compute_rows). */
typedef struct {
  const ct_stream *st;
  int64_t j_begin, j_end;
  /* parts == 1: task t covers steps from aligned_begin + t * task_units * unit
   * (1d: whole vector tile units from the run anchor, like runs). */
  int64_t unit, aligned_begin, task_units;
  int64_t parts, part_len, part_total;
  float *out;
  int64_t out_chan_stride, out_base;
} task_job;

static void run_task(void *ctx, int task, int worker) {
  const task_job *job = ctx;
  const worker_scratch *ws = &job->st->scratch[worker];
  if (job->parts > 1) { /* every step, one part of each */
    const int64_t pb = task * job->part_len;
    const int64_t pe =
        pb + job->part_len < job->part_total ? pb + job->part_len : job->part_total;
    if (pb < pe)
      cts_compute_rows(job->st, job->j_begin, job->j_end, pb, pe, job->out,
                       job->out_chan_stride, job->out_base, ws);
    return;
  }
  const int64_t span = job->task_units * job->unit;
  int64_t jb = job->aligned_begin + task * span, je = jb + span;
  if (jb < job->j_begin)
    jb = job->j_begin;
  if (je > job->j_end)
    je = job->j_end;
  if (jb < je && job->st->sink)
    cts_compute_to_sink(job->st, jb, je, ws);
  else if (jb < je)
    cts_compute_rows(job->st, jb, je, 0, job->part_total, job->out, job->out_chan_stride,
                     job->out_base, ws);
}

/* A small 1d push of a grouped layer (a stereo upsampler: one group per
 * channel), one task per range of groups: each thread copies its own
 * channels into the history and computes their outputs, so the threads
 * share no data. Splitting such a push in time instead costs more than it
 * saves: both threads then read the rows the caller just copied. */
typedef struct {
  ct_stream *st;
  int64_t j_end;
  float *out;
  int64_t out_chan_stride, out_base;
  int tasks;
} group_job;

static void run_group_task(void *ctx, int task, int worker) {
  const group_job *job = ctx;
  const ct_stream *st = job->st;
  const ct_layer *layer = st->layer;
  const group_copy *copy = &st->pending_group_copy;
  worker_scratch *ws = &st->scratch[worker];
  const int64_t groups = layer->params.groups;
  ws->g_begin = groups * task / job->tasks;
  ws->g_end = groups * (task + 1) / job->tasks;
  for (int64_t c = ws->g_begin * layer->in_per_group; c < ws->g_end * layer->in_per_group;
       c++)
    memcpy(cts_stored_row(st, copy->first_row, c), copy->in + c * copy->in_chan_stride,
           (size_t)copy->count * sizeof(float));
  cts_prefetch_ahead(st, ws->g_begin * layer->in_per_group,
                     ws->g_end * layer->in_per_group, copy->count);
  cts_compute_rows(st, st->n_out, job->j_end, 0, 1, job->out, job->out_chan_stride,
                   job->out_base, ws);
  ws->g_begin = 0;
  ws->g_end = groups;
}

bool cts_split_by_groups_fits(ct_stream *st, int64_t n_steps) {
  const int threads = threads_of(st);
  const int64_t groups = st->layer->params.groups;
  if (st->layer->params.rank != 1 || threads < 2 || groups < threads ||
      st->plan->tap_mode || st->sink)
    return false;
  const int64_t j_end = ct_stream_emitted(&st->layer->params, st->n_in + n_steps);
  const double macs = (double)(j_end - st->n_out) * st->macs_per_step;
  if (st->parallel_macs <= 0) { /* tests force threads: both splits, in turn */
    if (st->n_in % 2)
      return false;
  } else if (macs < st->parallel_macs / 8 || macs >= 8 * st->parallel_macs) {
    return false;
  }
  if (st->hist_cap - st->hist_rows < n_steps)
    cts_drop_unneeded_rows(st);
  return st->hist_cap - st->hist_rows >= n_steps;
}

static void split_by_groups(ct_stream *st, int64_t j_end, float *out,
                            int64_t out_chan_stride, int64_t out_base) {
  group_job job = {.st = st,
                   .j_end = j_end,
                   .out = out,
                   .out_chan_stride = out_chan_stride,
                   .out_base = out_base,
                   .tasks = threads_of(st)};
  cts_choose_stores(st, j_end - st->n_out);
  st->run_anchor = st->n_out;
  ct_pool_run(st->pool, job.tasks, run_group_task, &job);
  st->pending_group_copy.count = 0;
  cts_outputs_done(st, j_end);
}

void cts_compute_outputs(ct_stream *st, int64_t j_end, float *out,
                         int64_t out_chan_stride, int64_t out_base) {
  if (st->pending_group_copy.count > 0) {
    split_by_groups(st, j_end, out, out_chan_stride, out_base);
    return;
  }
  if (j_end <= st->n_out)
    return;
  const int64_t rows = j_end - st->n_out;
  const int threads = threads_of(st);
  cts_choose_stores(st, rows);
  const int rank = st->layer->params.rank;
  const int64_t part_total = rank == 1 ? 1 : st->out_len[1];
  /* 1d: whole vector tile units; step pairs: tasks cut between pairs; 2d
   * with a sink: whole sink batches. */
  const bool sink_units = st->sink && rank == 2;
  const int64_t unit = rank == 1              ? st->axis[0].s * 32
                       : sink_units           ? st->sink_batch_steps
                       : st->plan->step_pairs ? 2
                                              : 1;
  const int64_t unit_phase = sink_units             ? st->sink_batch_phase
                             : st->plan->step_pairs ? st->axis[0].p % 2
                                                    : 0;
  st->run_anchor = st->n_out;
  task_job job = {.st = st,
                  .j_begin = st->n_out,
                  .j_end = j_end,
                  .unit = unit,
                  .aligned_begin =
                      cts_span_start(st->n_out, cts_span_origin(st, unit_phase), unit),
                  .parts = 1,
                  .part_len = part_total,
                  .part_total = part_total,
                  .out = out,
                  .out_chan_stride = out_chan_stride,
                  .out_base = out_base};
  const int64_t units = ct_ceil_div(j_end - job.aligned_begin, unit);
  int64_t tasks = 1;
  /* Frames split by columns or lines share only the input rows, so a
   * quarter of the work pays for the second thread (a 640-pixel RGB row
   * doubled; the two output rows of a tap-mode push, which the other
   * thread would otherwise wait out). */
  const double parallel_macs = rank >= 2 ? st->parallel_macs / 4 : st->parallel_macs;
  if (threads > 1 && (double)rows * st->macs_per_step >= parallel_macs) {
    /* A few tasks per thread balance uneven work; a small push gets one
     * task per thread, since each task costs a claim and cache traffic. */
    const int64_t want =
        (double)rows * st->macs_per_step >= 8 * st->parallel_macs ? 2 * threads : threads;
    if (units >= want || rank == 1 || st->sink) { /* a sink takes whole steps */
      job.task_units = ct_ceil_div(units, units < want ? units : want);
      tasks = ct_ceil_div(units, job.task_units);
    } else {
      /* Few steps: 2d steps split by columns (in units that keep every
       * phase in whole vector tiles), 3d steps by lines. */
      const int64_t part_unit = rank == 2 ? st->axis[1].s * 16 : 1;
      int64_t parts = want;
      const int64_t part_units = ct_ceil_div(part_total, part_unit);
      if (parts > part_units)
        parts = part_units;
      job.task_units = 1; /* one step per task when parts stays 1 */
      job.parts = parts;
      job.part_len = ct_ceil_div(ct_ceil_div(part_total, parts), part_unit) * part_unit;
      tasks = parts;
    }
  }
  if (tasks > 1)
    ct_pool_run(st->pool, (int)tasks, run_task, &job);
  else if (st->sink)
    cts_compute_to_sink(st, st->n_out, j_end, &st->scratch[0]);
  else
    cts_compute_rows(st, st->n_out, j_end, 0, part_total, out, out_chan_stride, out_base,
                     &st->scratch[0]);
  cts_outputs_done(st, j_end);
}
