/* The ConvTranspose stream: sizing, the API, and the one structure every
 * push follows (stream-private.h lists the files of the other parts). */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream-private.h"
#include "stream-testing.h"

static void set_msg(char *msg, size_t msg_size, const char *text) {
  if (msg && msg_size)
    snprintf(msg, msg_size, "%s", text);
}

int64_t ct_stream_in_frame_size(const ct_stream *stream) {
  return stream->push_frame;
}

int64_t ct_stream_out_frame_size(const ct_stream *stream) {
  return stream->out_frame;
}

const int64_t *ct_stream_out_frame_shape(const ct_stream *stream) {
  return stream->out_frame_shape;
}

int64_t ct_stream_steps_in(const ct_stream *stream) {
  return stream->n_in;
}

int64_t ct_stream_steps_out(const ct_stream *stream) {
  return stream->n_out;
}

const ct_layer *ct_stream_layer(const ct_stream *stream) {
  return stream->layer;
}

void ct_stream_reset(ct_stream *stream) {
  stream->n_in = 0;
  stream->n_out = 0;
  stream->hist_first = 0;
  stream->hist_rows = 0;
  stream->window_first = stream->window_end = 0;
  stream->prev_first = stream->prev_end = 0;
  stream->pending_group_copy.count = 0;
  cts_zero_rows(stream, stream->pad_before[0]);
}

/* ---- the stage interface (stage.h) ---- */

static ct_status stage_push(ct_stage *stage, const float *in, int64_t in_chan_stride,
                            int64_t n_steps, float *out, int64_t out_chan_stride,
                            int64_t *n_out) {
  return ct_stream_push((ct_stream *)stage, in, in_chan_stride, n_steps, out,
                        out_chan_stride, n_out);
}

static ct_status stage_finish(ct_stage *stage, float *out, int64_t out_chan_stride,
                              int64_t *n_out) {
  return ct_stream_finish((ct_stream *)stage, out, out_chan_stride, n_out);
}

static void stage_reset(ct_stage *stage) {
  ct_stream_reset((ct_stream *)stage);
}

static int64_t stage_push_out_steps(const ct_stage *stage, int64_t n_steps) {
  return ct_stream_push_out_steps((const ct_stream *)stage, n_steps);
}

static int64_t stage_finish_out_steps(const ct_stage *stage) {
  return ct_stream_finish_out_steps((const ct_stream *)stage);
}

static int64_t stage_emitted(const ct_stage *stage, int64_t n_in) {
  return ct_stream_emitted(&((const ct_stream *)stage)->layer->params, n_in);
}

static int64_t stage_length(const ct_stage *stage, int64_t n_in) {
  int64_t len;
  if (n_in <= 0)
    return 0;
  if (ct_axis_output_length(((const ct_stream *)stage)->axis[0], n_in, &len) != CT_OK)
    return -1;
  return len > 0 ? len : 0;
}

static ct_status stage_use_pool(ct_stage *stage, ct_pool *pool) {
  return ct_stream_use_pool((ct_stream *)stage, pool);
}

static void stage_destroy(ct_stage *stage) {
  ct_stream_free((ct_stream *)stage);
}

static const ct_stage_ops stream_stage_ops = {
    .kind = "convtranspose",
    .push = stage_push,
    .finish = stage_finish,
    .reset = stage_reset,
    .push_out_steps = stage_push_out_steps,
    .finish_out_steps = stage_finish_out_steps,
    .emitted = stage_emitted,
    .length = stage_length,
    .use_pool = stage_use_pool,
    .destroy = stage_destroy,
};

ct_stage *ct_stream_stage(ct_stream *stream) {
  return &stream->stage;
}

static void describe_stage(ct_stream *st) {
  const ct_params *params = &st->layer->params;
  ct_stage *stage = &st->stage;
  stage->ops = &stream_stage_ops;
  stage->rank = params->rank;
  stage->in_channels = params->in_channels;
  stage->out_channels = params->out_channels;
  for (int a = 1; a < params->rank; a++) {
    stage->in_frame_shape[a - 1] = st->in_len[a];
    stage->out_frame_shape[a - 1] = st->out_len[a];
  }
  stage->in_frame = st->push_frame;
  stage->out_frame = st->out_frame;
  stage->rate_up = params->stride[0];
  stage->rate_down = 1;
  stage->latency_out_steps = ct_latency_output_steps(params);
  stage->latency_in_steps = ct_latency_input_steps(params);
}

/* ---- sizing ---- */

/* Frame axes: lengths in and out, zero borders, floats per frame. */
static bool size_frames(ct_stream *st, const int64_t *frame_shape, char *msg,
                        size_t msg_size) {
  const ct_params *params = &st->layer->params;
  st->in_frame = st->out_frame = st->padded_frame = 1;
  bool ok = true;
  for (int a = 0; a < CT_MAX_RANK; a++) {
    st->axis[a] = ct_params_axis(params, a);
    st->pad_before[a] = ct_axis_pad_before(st->axis[a]);
    if (a == 0)
      continue;
    int64_t in_len = a < params->rank ? frame_shape[a - 1] : 1, out_len;
    if (in_len < 1) {
      if (msg && msg_size)
        snprintf(msg, msg_size, "frame length %lld on axis %d must be at least 1",
                 (long long)in_len, a);
      return false;
    }
    if (ct_axis_output_length(st->axis[a], in_len, &out_len) != CT_OK) {
      set_msg(msg, msg_size, "frame output size overflows");
      return false;
    }
    if (out_len < 1) {
      if (msg && msg_size)
        snprintf(msg, msg_size,
                 "frame length %lld on axis %d gives output length %lld (< 1): the "
                 "frame is too small for this layer",
                 (long long)in_len, a, (long long)out_len);
      return false;
    }
    st->in_len[a] = in_len;
    st->out_len[a] = out_len;
    if (a < params->rank)
      st->out_frame_shape[a - 1] = out_len;
    int64_t padded = in_len + st->pad_before[a];
    ok = ok &&
         ct_add_i64(padded, ct_axis_pad_after(st->axis[a], in_len, out_len), &padded) &&
         ct_mul_i64(st->in_frame, in_len, &st->in_frame) &&
         ct_mul_i64(st->out_frame, out_len, &st->out_frame) &&
         ct_mul_i64(st->padded_frame, padded, &st->padded_frame);
    st->padded_len[a] = padded;
  }
  if (!ok)
    set_msg(msg, msg_size, "frame size overflows");
  return ok;
}

/* 2d/3d: the frame-axis offset of every product of every plan for this
 * frame shape (see ct_stream.inner). FALSE when out of memory, or past
 * what 32 bits hold (a frame past any limit: never wrap). */
static bool place_products(ct_stream *st) {
  const ct_plan *plan = st->plan;
  const int64_t runs = plan->n_outer[0] * plan->n_outer[1] * plan->s_run;
  if (st->layer->params.rank == 1)
    return true;
  int64_t total = 0;
  st->inner_first = calloc((size_t)runs, sizeof(int64_t));
  if (!st->inner_first)
    return false;
  for (int64_t r = 0; r < runs; r++) {
    st->inner_first[r] = total;
    total += plan->runs[r].k;
  }
  st->inner = calloc((size_t)(total > 0 ? total : 1), sizeof(int32_t));
  if (!st->inner)
    return false;
  for (int64_t r = 0; r < runs; r++)
    for (int64_t k = 0; k < plan->runs[r].k; k++) {
      const int64_t off = ct_plan_inner_offset(&plan->runs[r], k, st->padded_len[2]);
      if (off < INT32_MIN || off > INT32_MAX)
        return false;
      st->inner[st->inner_first[r] + k] = (int32_t)off;
    }
  return true;
}

/* History rows, runs and the accumulators they need. */
static void size_work(ct_stream *st) {
  const ct_layer *layer = st->layer;
  const ct_params *params = &layer->params;
  const bool tap_mode = st->plan->tap_mode;
  st->hist_channels = tap_mode ? layer->taps_per_pair : params->in_channels;
  int64_t fill = FILL_FLOATS / st->hist_channels / st->padded_frame;
  /* Tap mode: each fill is a parallel step followed by a wait for the
   * slowest thread; 16 rows of P (not the 4 the budget gives K7) halve the
   * time spent waiting. */
  if (tap_mode && fill < 16)
    fill = 16;
  st->fill_rows = fill > 0 ? fill : 1;
  st->ring = params->rank > 1;
  st->push_frame = st->in_frame;
  st->in_place_ok = st->ring && st->padded_frame == st->in_frame && !tap_mode;
  st->hist_cap = cts_max_kept_rows(st) + (st->in_place_ok ? 1 : st->fill_rows);
  if (st->hist_cap < st->pad_before[0] + 1)
    st->hist_cap = st->pad_before[0] + 1;
  /* Roughly: each output sums (Cin/g) * prod(k) / prod(s) products. */
  const int64_t strides = st->axis[0].s * st->axis[1].s * st->axis[2].s;
  st->macs_per_step = (double)params->out_channels * (double)st->out_frame *
                      ((double)(tap_mode ? 1 : layer->in_per_group) *
                           (double)layer->taps_per_pair / (double)strides +
                       1);
  st->parallel_macs = 1 << 17;
  st->nontemporal_bytes = cts_nontemporal_default_bytes;
  const int64_t cout = params->out_channels, s_run = st->plan->s_run;
  int64_t run = COMPUTE_RUN_FLOATS / st->out_frame;
  if (params->rank == 1) {
    /* A multiple of stride x 32: every phase gets whole vector tiles; and
     * at least 256 positions per phase, so that a layer with megabytes of
     * weights uses each phase's over many columns before the next phase's
     * (K4, 256 channels: 58-70 -> 48-52 ms on one thread). */
    const int64_t unit = s_run * 32;
    run = (4 * COMPUTE_RUN_FLOATS) / cout / unit * unit;
    if (run < 8 * unit)
      run = 8 * unit;
  }
  st->run_steps = run > 0 ? run : 1;
  st->run_len = params->rank == 1 ? st->run_steps : st->out_len[params->rank - 1];
  st->acc_stride = ct_ceil_div(st->run_len, s_run) + 1;
}

ct_stream *ct_stream_new(const ct_layer *layer, const int64_t *frame_shape, char *msg,
                         size_t msg_size) {
  const ct_params *params = &layer->params;
  ct_stream *st = calloc(1, sizeof *st);
  if (!st) {
    set_msg(msg, msg_size, "out of memory");
    return NULL;
  }
  st->layer = layer;
  st->plan = layer->plan;
  st->dsp = ct_dsp_default();
  if (!size_frames(st, frame_shape, msg, msg_size)) {
    free(st);
    return NULL;
  }
  size_work(st);
  const int64_t cout = params->out_channels, s_run = st->plan->s_run;
  int64_t hist_count = 0, acc_count = 0;
  bool ok = ct_mul_i64(st->hist_cap, st->padded_frame, &hist_count) &&
            ct_mul_i64(hist_count, st->hist_channels, &hist_count) &&
            ct_mul_i64(s_run, cout, &acc_count) &&
            ct_mul_i64(acc_count, st->acc_stride, &acc_count);
  st->acc_count = acc_count;
  /* Refuse before allocating what no stream should hold (a padding or
   * dilation of billions keeps billions of steps; a frame of 10^12 values;
   * a stride of billions, as many accumulators). With one thread's scratch:
   * a phase pointer and start per residue of the run axis, two row pointers
   * per product of the largest plan. The layer's plans count too. */
  const double state_bytes =
      ((double)hist_count + (double)acc_count + (double)cout * (double)st->acc_stride) *
          sizeof(float) +
      (double)s_run * (sizeof(float *) + sizeof(int64_t)) +
      (double)st->plan->max_k * 2 * sizeof(float *) +
      (st->ring ? (double)st->plan->bytes / 4
                : 0); /* inner offsets: at most a plan's indices */
  const double plan_bytes = (double)st->plan->bytes;
  if (ok && state_bytes + plan_bytes > CT_STREAM_MAX_BYTES) {
    if (msg && msg_size)
      snprintf(
          msg, msg_size,
          "the stream would need %.0f MB of state (%lld steps of %lld values kept "
          "per channel) beside %.0f MB of the layer's plans, over the limit of %d MB",
          state_bytes / 1e6, (long long)st->hist_cap, (long long)st->padded_frame,
          plan_bytes / 1e6, (int)(CT_STREAM_MAX_BYTES / 1000000));
    ct_stream_free(st);
    return NULL;
  }
  ct_status status = ok ? cts_alloc_floats(&st->hist, hist_count) : CT_ERR_OVERFLOW;
  if (status == CT_OK)
    status = cts_alloc_floats(&st->bias_runs, cout * st->acc_stride);
  if (status == CT_OK) {
    for (int64_t co = 0; co < cout; co++)
      for (int64_t i = 0; i < st->acc_stride; i++)
        st->bias_runs[co * st->acc_stride + i] = st->plan->bias[co];
    if (!place_products(st) || ct_stream_set_threads(st, 1) != CT_OK)
      status = CT_ERR_NOMEM;
  }
  if (status != CT_OK) {
    set_msg(msg, msg_size,
            status == CT_ERR_NOMEM ? "out of memory for the stream state"
                                   : "stream state size overflows");
    ct_stream_free(st);
    return NULL;
  }
  describe_stage(st);
  ct_stream_reset(st);
  return st;
}

void ct_stream_free(ct_stream *stream) {
  if (!stream)
    return;
  if (stream->owns_pool)
    ct_pool_free(stream->pool);
  cts_free_scratch(stream->scratch, stream->n_scratch);
  free(stream->hist);
  free(stream->bias_runs);
  free(stream->inner);
  free(stream->inner_first);
  free(stream);
}

int64_t ct_stream_push_out_steps(const ct_stream *stream, int64_t n_steps) {
  int64_t total;
  if (n_steps < 0 || !ct_add_i64(stream->n_in, n_steps, &total))
    return -1;
  int64_t emitted = ct_stream_emitted(&stream->layer->params, total);
  return emitted < 0 ? -1 : emitted - stream->n_out;
}

/* Total outputs of the signal pushed so far, were it to end now. */
static int64_t final_length(const ct_stream *st) {
  int64_t len;
  if (st->n_in == 0 || ct_axis_output_length(st->axis[0], st->n_in, &len) != CT_OK ||
      len < st->n_out)
    return st->n_out;
  return len;
}

int64_t ct_stream_finish_out_steps(const ct_stream *stream) {
  return final_length(stream) - stream->n_out;
}

/* ---- a push ---------------------------------------------------------------
 *
 * Every push goes the same way: the rows it brings are copied into the
 * history where they must be, the outputs those rows complete are computed,
 * then the rest of the rows are read where the caller has them, their
 * outputs computed, and the rows later outputs still need are kept. Pushes
 * differ only in where their rows live while they are read: */

typedef enum {
  /* Copied into the history first, a fill at a time: 2d/3d frames that
   * need zero borders added, tap mode (the history holds the rows'
   * products), short 1d pushes (their outputs are then one run, not a run
   * from the history and another from the push). */
  ROWS_COPIED,
  /* Copied too, but by the threads that compute them, each its own groups'
   * channels (short pushes of grouped 1d layers: see split_by_groups). */
  ROWS_COPIED_BY_GROUPS,
  /* Read where the caller has them: 2d/3d frames with their borders (or
   * none needed), and long 1d pushes after the few rows that outputs also
   * reading the history need (a whole signal is not copied). */
  ROWS_IN_PLACE,
} rows_home;

/* 1d pushes of at least this many input floats (steps x channels) read
 * their input in place. Smaller ones cost less copied (10 ms of K3 or K4,
 * 30-250 K floats: 3-8% less time streamed, min of 40 runs). */
enum { IN_PLACE_1D_FLOATS = 1 << 18 };

static rows_home choose_home(ct_stream *st, int64_t n_steps) {
  if (st->in_place_ok)
    return ROWS_IN_PLACE;
  if (st->ring) /* frames that need borders, or tap mode */
    return ROWS_COPIED;
  if (cts_split_by_groups_fits(st, n_steps))
    return ROWS_COPIED_BY_GROUPS;
  if ((double)n_steps * (double)st->layer->params.in_channels >= IN_PLACE_1D_FLOATS)
    return ROWS_IN_PLACE;
  return ROWS_COPIED;
}

/* 1d in place: the rows at the start of the push that outputs still reading
 * the history also read are copied, so that each output reads one array;
 * *history_end: the first output that reads nothing older than the push. */
static int64_t head_rows_1d(const ct_stream *st, int64_t n_steps, int64_t *history_end) {
  const int64_t first_new = st->hist_first + st->hist_rows;
  const int64_t j_end = ct_stream_emitted(&st->layer->params, st->n_in + n_steps);
  int64_t lo = st->n_out, hi = j_end > st->n_out ? j_end : st->n_out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (cts_first_needed_row(st, mid) >= first_new)
      hi = mid;
    else
      lo = mid + 1;
  }
  *history_end = lo;
  if (lo <= st->n_out)
    return 0;
  const int64_t head =
      cts_padded_row(st, ct_axis_last_input(st->axis[0], lo - 1)) + 1 - first_new;
  return head < 0 ? 0 : head > n_steps ? n_steps : head;
}

/* Copies the next piece of rows [done, end) of the push into the history
 * (tap mode: their products); *count: how many. */
static ct_status copy_piece(ct_stream *st, rows_home home, const float *in,
                            int64_t in_chan_stride, int64_t done, int64_t end,
                            int64_t n_steps, int64_t *count) {
  const float *from = in + done * st->push_frame;
  *count = end - done;
  if (home == ROWS_COPIED_BY_GROUPS) { /* room was made when it was chosen */
    st->pending_group_copy =
        (group_copy){from, in_chan_stride, st->hist_first + st->hist_rows, *count};
    st->hist_rows += *count;
    return CT_OK;
  }
  if (!st->ring) {
    ct_status status = cts_append_1d(st, from, in_chan_stride, *count);
    if (status == CT_OK && home == ROWS_COPIED)
      cts_prefetch_ahead(st, 0, st->layer->params.in_channels, *count);
    return status;
  }
  ct_status status = cts_make_room(st);
  if (status != CT_OK)
    return status;
  *count = min_i64(min_i64(*count, st->hist_cap - st->hist_rows), st->fill_rows);
  /* Rows worth fetching ahead: the rest of the push, and the next one's
   * where the stream guesses it follows. */
  const int64_t available = n_steps - done + (st->in_ahead ? n_steps : 0);
  if (st->plan->tap_mode)
    cts_tap_rows(st, from, in_chan_stride, *count, available);
  else
    cts_copy_into_ring(st, from, in_chan_stride, st->hist_first + st->hist_rows, *count);
  st->hist_rows += *count;
  return CT_OK;
}

/* The caller's rows [copied, n_steps) of the push are read in place: the
 * window opens over the whole push (rows already copied are in it too),
 * their outputs are computed, and the rows later outputs need are kept
 * (copied into the history, or, retained, read in place again next time). */
static ct_status read_in_place(ct_stream *st, const float *in, int64_t in_chan_stride,
                               int64_t copied, int64_t n_steps, float *out,
                               int64_t out_chan_stride, int64_t out_base) {
  const int64_t first =
      (st->prev_end > st->prev_first ? st->prev_end : st->hist_first + st->hist_rows) -
      copied;
  const int64_t end = first + n_steps;
  st->window_in = in;
  st->window_chan_stride = in_chan_stride;
  st->window_first = first;
  st->window_end = end;
  st->n_in += n_steps - copied;
  cts_compute_outputs(st, ct_stream_emitted(&st->layer->params, st->n_in), out,
                      out_chan_stride, out_base);
  st->window_first = st->window_end = 0;
  st->window_in = NULL;
  ct_status status = cts_release_prev(st);
  if (status != CT_OK)
    return status;
  cts_drop_unneeded_rows(st);
  int64_t from = cts_first_needed_row(st, st->n_out);
  if (from < first + copied)
    from = first + copied;
  if (from > end)
    from = end;
  if (!st->retain_input)
    return cts_keep_rows(st, in, in_chan_stride, first, from, end);
  if (st->hist_rows == 0)
    st->hist_first = from;
  st->prev_first = st->hist_first + st->hist_rows;
  st->prev_end = end;
  st->prev_in = in + (st->prev_first - first) * st->push_frame;
  st->prev_chan_stride = in_chan_stride;
  return CT_OK;
}

static ct_status push_steps(ct_stream *st, const float *in, int64_t in_chan_stride,
                            int64_t n_steps, float *out, int64_t out_chan_stride,
                            int64_t *n_out) {
  *n_out = 0;
  if (n_steps < 0)
    return CT_ERR_INVALID;
  if (ct_stream_push_out_steps(st, n_steps) < 0)
    return CT_ERR_OVERFLOW;
  const int64_t out_base = st->n_out;
  if (n_steps == 0) /* the previous input need not outlive this push */
    return cts_release_prev(st);
  const rows_home home = choose_home(st, n_steps);
  /* Rows copied before any is read in place, and the outputs they let the
   * stream compute (-1: whatever became final). */
  int64_t copied = n_steps, history_end = -1;
  if (home == ROWS_IN_PLACE)
    copied = st->ring ? 0 : head_rows_1d(st, n_steps, &history_end);
  ct_status status = CT_OK;
  int64_t done = 0;
  do {
    int64_t count = 0;
    if (done < copied)
      status = copy_piece(st, home, in, in_chan_stride, done, copied, n_steps, &count);
    done += count;
    st->n_in += count;
    if (status == CT_OK)
      cts_compute_outputs(st,
                          history_end >= 0
                              ? history_end
                              : ct_stream_emitted(&st->layer->params, st->n_in),
                          out, out_chan_stride, out_base);
  } while (status == CT_OK && done < copied);
  if (status == CT_OK && copied < n_steps)
    status = read_in_place(st, in, in_chan_stride, copied, n_steps, out, out_chan_stride,
                           out_base);
  *n_out = st->n_out - out_base;
  return status;
}

ct_status ct_stream_push(ct_stream *stream, const float *in, int64_t in_chan_stride,
                         int64_t n_steps, float *out, int64_t out_chan_stride,
                         int64_t *n_out) {
  cts_track_fill(stream, out, out_chan_stride);
  cts_track_input(stream, in, in_chan_stride, n_steps);
  ct_status status =
      push_steps(stream, in, in_chan_stride, n_steps, out, out_chan_stride, n_out);
  stream->in_ahead = NULL;
  cts_end_fill(stream, out, out_chan_stride, *n_out);
  return status;
}

ct_status ct_stream_finish(ct_stream *stream, float *out, int64_t out_chan_stride,
                           int64_t *n_out) {
  *n_out = 0;
  cts_track_fill(stream, out, out_chan_stride);
  const int64_t out_base = stream->n_out, target = final_length(stream);
  ct_status status = cts_release_prev(stream);
  if (status != CT_OK) {
    ct_stream_reset(stream);
    return status;
  }
  if (target > stream->n_out) {
    const ct_axis a = stream->axis[0];
    const int64_t last_row = cts_padded_row(stream, ct_axis_last_input(a, target - 1));
    for (;;) {
      /* Outputs whose last input row is present can be computed. */
      int64_t rows_end = stream->hist_first + stream->hist_rows;
      int64_t ready = (rows_end - stream->pad_before[0]) * a.s - a.p;
      cts_compute_outputs(stream, ready < target ? ready : target, out, out_chan_stride,
                          out_base);
      if (stream->n_out >= target)
        break;
      status = cts_make_room(stream);
      if (status != CT_OK)
        break;
      int64_t count = stream->hist_cap - stream->hist_rows;
      if (count > last_row + 1 - rows_end)
        count = last_row + 1 - rows_end;
      cts_zero_rows(stream, count);
    }
  }
  *n_out = stream->n_out - out_base;
  ct_stream_reset(stream);
  cts_end_fill(stream, out, out_chan_stride, *n_out);
  return status;
}

ct_status ct_forward(const ct_layer *layer, const int64_t *in_shape, const float *in,
                     float *out, char *msg, size_t msg_size) {
  const ct_params *params = &layer->params;
  int64_t out_shape[CT_MAX_RANK];
  ct_status status = ct_output_shape(params, in_shape, out_shape, msg, msg_size);
  if (status != CT_OK)
    return status;
  ct_stream *stream = ct_stream_new(layer, in_shape + 1, msg, msg_size);
  if (!stream)
    return CT_ERR_INVALID;
  const int64_t in_stride = in_shape[0] * stream->in_frame;
  const int64_t out_stride = out_shape[0] * stream->out_frame;
  int64_t pushed, finished;
  status = ct_stream_push(stream, in, in_stride, in_shape[0], out, out_stride, &pushed);
  if (status == CT_OK)
    status =
        ct_stream_finish(stream, out + pushed * stream->out_frame, out_stride, &finished);
  ct_stream_free(stream);
  if (status != CT_OK)
    set_msg(msg, msg_size, "forward failed: out of memory or size overflow");
  return status;
}
