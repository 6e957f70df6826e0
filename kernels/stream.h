/* The ConvTranspose stream: a layer streamed along the first spatial axis
 * (samples for 1d, rows for 2d, frames for 3d), a streaming stage
 * (stage.h), and the one-shot forward built on it.
 *
 * Buffers are channel-planar float32: channel c of a chunk of n steps starts
 * at data + c * chan_stride and holds n frames of frame_size values each
 * (row-major over the remaining axes). A frame is 1 value for 1d, a row of W
 * for 2d, an H x W image for 3d.
 *
 * Every output is computed by the same code from the same inputs in the same
 * order, whichever push it falls in, so the concatenated output of any
 * chunking is bitwise equal to the one-shot output. */
#ifndef CT_STREAM_H
#define CT_STREAM_H

#include <stdbool.h>

#include "layer.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_stream ct_stream;

/* Streams whose state (kept input steps and scratch) and plans would exceed
 * this are refused by ct_stream_new with a message, before allocating. */
#define CT_STREAM_MAX_BYTES 2000000000.0

/* A stream for frames of the given shape (rank - 1 lengths: none for 1d,
 * {W} for 2d, {H, W} for 3d). The layer must outlive the stream. */
ct_stream *ct_stream_new(const ct_layer *layer, const int64_t *frame_shape, char *msg,
                         size_t msg_size);
void ct_stream_free(ct_stream *stream);

/* The stream as a stage (stage.h): the same object, driven through the
 * interface every stage shares. ct_stage_free frees the stream. */
struct ct_stage *ct_stream_stage(ct_stream *stream);
const ct_layer *ct_stream_layer(const ct_stream *stream);

int64_t ct_stream_in_frame_size(const ct_stream *stream);
int64_t ct_stream_out_frame_size(const ct_stream *stream);
/* Output frame shape, rank - 1 lengths. */
const int64_t *ct_stream_out_frame_shape(const ct_stream *stream);

/* Steps the next push of n_steps will emit (what becomes final and certain),
 * and what finish will emit now. -1 on overflow. */
int64_t ct_stream_push_out_steps(const ct_stream *stream, int64_t n_steps);
int64_t ct_stream_finish_out_steps(const ct_stream *stream);

/* Steps consumed and emitted since the last reset. */
int64_t ct_stream_steps_in(const ct_stream *stream);
int64_t ct_stream_steps_out(const ct_stream *stream);

/* Feeds n_steps (0 allowed) and writes the steps that became final to out,
 * which must hold ct_stream_push_out_steps(n_steps) steps per channel. */
ct_status ct_stream_push(ct_stream *stream, const float *in, int64_t in_chan_stride,
                         int64_t n_steps, float *out, int64_t out_chan_stride,
                         int64_t *n_out);

/* Ends the signal: writes the tail (cropped per the layer) to out, which must
 * hold ct_stream_finish_out_steps() steps, then resets the stream. A signal
 * too short for any output emits nothing. */
ct_status ct_stream_finish(ct_stream *stream, float *out, int64_t out_chan_stride,
                           int64_t *n_out);

/* Threads that share the work of each push (>= 1, counting the caller). The
 * output is bitwise the same for any count: threads split output channels
 * and rows, never a sum. */
ct_status ct_stream_set_threads(ct_stream *stream, int n_threads);
int ct_stream_threads(const ct_stream *stream);
/* Shares a pool the caller owns and frees after the stream (or after giving
 * the stream another pool); NULL: single-threaded. */
ct_status ct_stream_use_pool(ct_stream *stream, ct_pool *pool);
/* The caller reads every output right after it is made (converts it to
 * pixels, say): outputs stay in the cache, never sent to memory with
 * non-temporal stores however large (same values either way). */
void ct_stream_set_outputs_read_soon(ct_stream *stream, bool soon);

/* Receives output steps [first, first + n_steps) (absolute step numbers):
 * channel c of step first + i at data[c * chan_stride + i * frame], frame =
 * ct_stream_out_frame_size. */
typedef void (*ct_stream_sink)(void *ctx, int64_t first, int64_t n_steps,
                               const float *data, int64_t chan_stride);
/* Hands the outputs to `sink` in batches of a few steps, each on the thread
 * that computed it while it is still in that core's cache, instead of
 * writing them to the caller's buffer (push and finish then take out =
 * NULL). A caller that converts the floats (to 8-bit video, say) thus never
 * sends a whole float frame through memory. Batches of different steps may
 * reach the sink at the same time from different threads; every step
 * reaches it once, with the same values as without a sink. 1d and 2d
 * layers (CT_ERR_INVALID for 3d); a NULL sink writes to out again. */
ct_status ct_stream_set_sink(ct_stream *stream, ct_stream_sink sink, void *ctx);

/* Zero-copy streaming of 2d/3d frames without borders (no padding on the
 * frame axes, or bordered frames: ct_stream_take_padded_frames): the caller promises that
 * each pushed input stays valid and unchanged until the next push, finish or reset has
 * returned, and the stream reads the rows it still needs from there instead of copying
 * them. Off by default; turning it off copies what is still needed. */
void ct_stream_retain_input(ct_stream *stream, bool retain);

/* Frames with their zero borders: push then takes each input frame laid out
 * as ct_stream_pushed_frame_layout says (the frame axes' lengths including
 * the borders the layer's padding needs, the data at the offsets, zero
 * everywhere else), and a 2d/3d layer with padding reads the rows in place
 * instead of copying each into bordered storage; ct_stream_in_frame_size
 * gives the bordered size. Between signals only (CT_ERR_INVALID
 * mid-signal), 2d/3d only, and not for layers of one output channel and
 * many input channels (tap mode multiplies each row as it arrives):
 * CT_ERR_INVALID there. Bordered frames are what lets a padded layer
 * retain its input (ct_stream_retain_input, before or after this call). */
ct_status ct_stream_take_padded_frames(ct_stream *stream, bool padded);
/* Lengths and data offsets of the frame axes (rank - 1 of each) as push
 * takes them. */
void ct_stream_pushed_frame_layout(const ct_stream *stream, int64_t *shape,
                                   int64_t *offset);

/* Forgets everything pushed since the last reset, without output. */
void ct_stream_reset(ct_stream *stream);

/* One-shot forward of a whole [Cin, L0, ...] input into [Cout, L0_out, ...]
 * (shapes without batch; in_shape has rank lengths). */
ct_status ct_forward(const ct_layer *layer, const int64_t *in_shape, const float *in,
                     float *out, char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif
