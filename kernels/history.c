/* A stream's input rows: those kept between pushes (the history) and the
 * caller's rows read where they are (the push's own, and with
 * ct_stream_retain_input the previous push's).
 *
 * 1d: the history is channel-planar and contiguous ([ci][row]), compacted
 * when full, so that runs along the signal are plain arrays. 2d/3d: a ring
 * of row slots ([slot][ci][frame]), never moved; frame borders are zero and
 * stay zero, only interiors are written. */
#include <stdlib.h>
#include <string.h>

#include "stream-private.h"

/* Padded row index of input step i. */
int64_t cts_padded_row(const ct_stream *st, int64_t i) {
  return i + st->pad_before[0];
}

/* History rows still needed once outputs before j are done. */
int64_t cts_first_needed_row(const ct_stream *st, int64_t j) {
  int64_t row = cts_padded_row(st, ct_axis_first_input(st->axis[0], j));
  return row > 0 ? row : 0;
}

/* Largest number of rows the history holds after a push has computed what it
 * may: the transient at the start plus the steady-state window. */
int64_t cts_max_kept_rows(const ct_stream *st) {
  const ct_params *params = &st->layer->params;
  ct_axis a = st->axis[0];
  int64_t reach = a.d * (a.k - 1);
  int64_t horizon = (2 * a.p + reach + a.s) / a.s + 4;
  int64_t most = reach / a.s + 2;
  /* Past a point the walk below costs more than it saves: bound instead
   * (the memory limit then decides). */
  if (horizon > (1 << 16))
    return st->pad_before[0] + horizon + most + 1;
  for (int64_t n = 0; n <= horizon; n++) {
    int64_t kept =
        cts_padded_row(st, n) - cts_first_needed_row(st, ct_stream_emitted(params, n));
    if (kept > most)
      most = kept;
  }
  return most + 1;
}

ct_status cts_alloc_floats(float **out, int64_t count) {
  size_t bytes;
  if (!ct_bytes_for(count, sizeof(float), &bytes))
    return CT_ERR_OVERFLOW;
  *out = calloc(bytes ? bytes : 1, 1);
  return *out ? CT_OK : CT_ERR_NOMEM;
}

/* Appends count zero rows to the history (room must be there). */
void cts_zero_rows(ct_stream *st, int64_t count) {
  const int64_t channels = st->hist_channels;
  for (int64_t r = 0; r < count; r++)
    for (int64_t c = 0; c < channels; c++)
      memset(cts_stored_row(st, st->hist_first + st->hist_rows + r, c), 0,
             (size_t)st->padded_frame * sizeof(float));
  st->hist_rows += count;
}

/* Drops history rows no output still needs. */
void cts_drop_unneeded_rows(ct_stream *st) {
  int64_t keep_from = cts_first_needed_row(st, st->n_out);
  if (keep_from <= st->hist_first)
    return;
  int64_t drop = keep_from - st->hist_first;
  if (drop > st->hist_rows)
    drop = st->hist_rows;
  if (!st->ring) {
    const int64_t channels = st->hist_channels;
    for (int64_t c = 0; c < channels; c++) {
      float *base = st->hist + c * st->hist_cap * st->padded_frame;
      memmove(base, base + drop * st->padded_frame,
              (size_t)((st->hist_rows - drop) * st->padded_frame) * sizeof(float));
    }
  }
  st->hist_first += drop;
  st->hist_rows -= drop;
}

/* A larger history (the layer's window was underestimated, or a caller's
 * rows are kept in one piece), the rows it holds copied over. */
static ct_status grow_history(ct_stream *st, int64_t new_cap) {
  const int64_t channels = st->hist_channels;
  ct_stream grown = *st;
  int64_t count;
  grown.hist_cap = new_cap;
  if (!ct_mul_i64(grown.hist_cap, st->padded_frame, &count) ||
      !ct_mul_i64(count, channels, &count))
    return CT_ERR_OVERFLOW;
  ct_status status = cts_alloc_floats(&grown.hist, count);
  if (status != CT_OK)
    return status;
  for (int64_t u = st->hist_first; u < st->hist_first + st->hist_rows; u++)
    for (int64_t c = 0; c < channels; c++)
      memcpy(cts_stored_row(&grown, u, c), cts_stored_row(st, u, c),
             (size_t)st->padded_frame * sizeof(float));
  free(st->hist);
  st->hist = grown.hist;
  st->hist_cap = grown.hist_cap;
  return CT_OK;
}

ct_status cts_make_room(ct_stream *st) {
  if (st->hist_rows < st->hist_cap)
    return CT_OK;
  cts_drop_unneeded_rows(st);
  if (st->hist_rows < st->hist_cap)
    return CT_OK;
  return grow_history(st, st->hist_cap * 2);
}

/* 1d history appends: channel c's run of len floats in `pieces` parts. */
typedef struct {
  const ct_stream *st;
  const float *in;
  int64_t in_chan_stride, first_row, len, pieces;
} channel_copy_job;

static void run_channel_copy(void *ctx, int task, int worker) {
  (void)worker;
  const channel_copy_job *job = ctx;
  const int64_t c = task / job->pieces, piece = task % job->pieces;
  const int64_t part = ct_ceil_div(job->len, job->pieces);
  const int64_t begin = piece * part,
                end = begin + part < job->len ? begin + part : job->len;
  if (begin < end)
    memcpy(cts_stored_row(job->st, job->first_row, c) + begin,
           job->in + c * job->in_chan_stride + begin,
           (size_t)(end - begin) * sizeof(float));
}

/* 1d: appends count rows of src (channel c at src + c * src_chan_stride)
 * to the history. */
ct_status cts_append_1d(ct_stream *st, const float *src, int64_t src_chan_stride,
                        int64_t count) {
  if (count <= 0)
    return CT_OK;
  if (st->hist_cap - st->hist_rows < count)
    cts_drop_unneeded_rows(st);
  if (st->hist_cap - st->hist_rows < count) {
    int64_t cap = st->hist_cap * 2;
    if (cap < st->hist_rows + count)
      cap = st->hist_rows + count;
    ct_status status = grow_history(st, cap);
    if (status != CT_OK)
      return status;
  }
  const int64_t channels = st->layer->params.in_channels;
  channel_copy_job job = {.st = st,
                          .in = src,
                          .in_chan_stride = src_chan_stride,
                          .first_row = st->hist_first + st->hist_rows,
                          .len = count,
                          .pieces = 1};
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  if (threads > 1 && (double)count * channels >= (1 << 16)) {
    job.pieces = ct_ceil_div(2 * threads, channels);
    cts_run_on_pool(st, (int)(channels * job.pieces), run_channel_copy, &job);
  } else {
    for (int c = 0; c < channels; c++)
      run_channel_copy(&job, c, 0);
  }
  st->hist_rows += count;
  return CT_OK;
}

/* 2d/3d: count rows of src (channel c of row r at src + c * src_chan_stride
 * + r * in_frame) into the ring from padded row first_row on, lines placed
 * inside the zero borders. One task per (row, channel), or per piece of one
 * when a few large frames without borders are copied. */
typedef struct {
  const ct_stream *st;
  const float *src;
  int64_t src_chan_stride, first_row, pieces, piece_len;
} ring_copy_job;

static void run_ring_copy(void *ctx, int task, int worker) {
  (void)worker;
  const ring_copy_job *job = ctx;
  const ct_stream *st = job->st;
  const int64_t channels = st->layer->params.in_channels;
  const int64_t rc = task / job->pieces, piece = task % job->pieces;
  const int64_t r = rc / channels, c = rc % channels;
  const float *src = job->src + c * job->src_chan_stride + r * st->push_frame;
  float *dst = cts_stored_row(st, job->first_row + r, c);
  if (st->padded_frame == st->push_frame) { /* the caller's frames have borders */
    const int64_t begin = piece * job->piece_len;
    const int64_t end = begin + job->piece_len < st->padded_frame ? begin + job->piece_len
                                                                  : st->padded_frame;
    if (begin < end)
      memcpy(dst + begin, src + begin, (size_t)(end - begin) * sizeof(float));
    return;
  }
  /* A frame is lines along the last axis: one line of W in 2d, H lines in 3d. */
  const bool three_d = st->layer->params.rank == 3;
  const int64_t lines = three_d ? st->in_len[1] : 1;
  const int64_t line_len = three_d ? st->in_len[2] : st->in_len[1];
  const int64_t line_step = three_d ? st->padded_len[2] : 0;
  const int64_t line_start =
      three_d ? st->pad_before[1] * st->padded_len[2] + st->pad_before[2]
              : st->pad_before[1];
  for (int64_t y = 0; y < lines; y++)
    memcpy(dst + line_start + y * line_step, src + y * line_len,
           (size_t)line_len * sizeof(float));
}

void cts_copy_into_ring(ct_stream *st, const float *src, int64_t src_chan_stride,
                        int64_t first_row, int64_t count) {
  const int64_t copies = count * st->layer->params.in_channels;
  ring_copy_job job = {.st = st,
                       .src = src,
                       .src_chan_stride = src_chan_stride,
                       .first_row = first_row,
                       .pieces = 1,
                       .piece_len = st->push_frame};
  const int threads = st->pool ? ct_pool_size(st->pool) : 1;
  /* Frames of video are megabytes: a copy that big goes faster on every
   * core. */
  const bool parallel = threads > 1 && (double)copies * st->in_frame >= (1 << 16);
  if (parallel && st->padded_frame == st->push_frame && copies < 2 * threads) {
    job.pieces = ct_ceil_div(2 * threads, copies);
    job.piece_len = ct_ceil_div(st->push_frame, job.pieces);
  }
  const int64_t tasks = copies * job.pieces;
  if (parallel && tasks > 1)
    cts_run_on_pool(st, (int)tasks, run_ring_copy, &job);
  else
    for (int64_t t = 0; t < tasks; t++)
      run_ring_copy(&job, (int)t, 0);
}

/* Appends rows [from, end) of src (whose first row is padded row src_first)
 * to the history, which ends at `from` or is empty. */
ct_status cts_keep_rows(ct_stream *st, const float *src, int64_t src_chan_stride,
                        int64_t src_first, int64_t from, int64_t end) {
  if (st->hist_rows == 0) /* nothing older is needed: the window moves on */
    st->hist_first = from < end ? from : end;
  if (!st->ring)
    return cts_append_1d(st, src + (from - src_first), src_chan_stride, end - from);
  /* Reserve the rows first (room may move or grow the ring), then copy. */
  for (int64_t u = from; u < end; u++) {
    ct_status status = cts_make_room(st);
    if (status != CT_OK)
      return status;
    st->hist_rows++;
  }
  if (from < end)
    cts_copy_into_ring(st, src + (from - src_first) * st->push_frame, src_chan_stride,
                       from, end - from);
  return CT_OK;
}

/* The retained previous input is let go: what is still needed is copied. */
ct_status cts_release_prev(ct_stream *st) {
  if (st->prev_end <= st->prev_first)
    return CT_OK;
  cts_drop_unneeded_rows(st);
  int64_t from = cts_first_needed_row(st, st->n_out);
  if (from < st->prev_first)
    from = st->prev_first;
  const int64_t prev_first = st->prev_first, prev_end = st->prev_end;
  st->prev_first = st->prev_end = 0;
  return cts_keep_rows(st, st->prev_in, st->prev_chan_stride, prev_first, from, prev_end);
}

void ct_stream_retain_input(ct_stream *stream, bool retain) {
  if (!retain)
    cts_release_prev(stream);
  stream->retain_wanted = retain;
  stream->retain_input = retain && stream->in_place_ok;
}

ct_status ct_stream_take_padded_frames(ct_stream *stream, bool padded) {
  if (!stream->ring || stream->plan->tap_mode || stream->n_in > 0)
    return CT_ERR_INVALID;
  if (stream->padded_frame == stream->in_frame)
    return CT_OK; /* no borders: both layouts are the same */
  stream->push_frame = padded ? stream->padded_frame : stream->in_frame;
  stream->stage.in_frame = stream->push_frame;
  stream->in_place_ok = padded;
  stream->retain_input = padded && stream->retain_wanted;
  return CT_OK;
}

void ct_stream_pushed_frame_layout(const ct_stream *stream, int64_t *shape,
                                   int64_t *offset) {
  const bool padded = stream->push_frame != stream->in_frame;
  for (int a = 1; a < stream->layer->params.rank; a++) {
    shape[a - 1] = padded ? stream->padded_len[a] : stream->in_len[a];
    offset[a - 1] = padded ? stream->pad_before[a] : 0;
  }
}
