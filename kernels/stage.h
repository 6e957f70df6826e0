/* A streaming stage: the one interface of everything that streams along
 * the first spatial axis. The ConvTranspose stream (stream.h) is one; a
 * regular convolution, a pointwise operation and a chain of stages are
 * stages the same way, so an element or a graph drives any of them alike.
 * docs/architecture.md draws the parts.
 *
 * Data is channel-planar float32: channel c of a chunk of n steps starts
 * at data + c * chan_stride and holds n frames (the non-streamed axes,
 * row-major) of in_frame (out_frame) floats each.
 *
 * The contract every stage keeps:
 *   - push(n) consumes n steps (0 allowed) and writes exactly the outputs
 *     that became final and certain: push_out_steps(n) of them. Nothing
 *     that is final waits for a later push.
 *   - finish() writes the tail (finish_out_steps() steps) and resets; the
 *     concatenation of every output is the stage's one-shot output for the
 *     whole input, bitwise, however the input was cut and on any number of
 *     threads.
 *   - reset() forgets the signal without output.
 *   - latency: an output step is held back at most latency_out_steps
 *     output steps (latency_in_steps input steps) behind the input that
 *     completes it.
 * Pure C11. */
#ifndef CT_STAGE_H
#define CT_STAGE_H

#include "geometry.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_stage ct_stage;

typedef struct ct_stage_ops {
  const char *kind; /* "convtranspose", ... */
  ct_status (*push)(ct_stage *stage, const float *in, int64_t in_chan_stride,
                    int64_t n_steps, float *out, int64_t out_chan_stride, int64_t *n_out);
  ct_status (*finish)(ct_stage *stage, float *out, int64_t out_chan_stride,
                      int64_t *n_out);
  void (*reset)(ct_stage *stage);
  /* The emission rule: steps the next push of n_steps emits (-1 on
   * overflow), and steps finish would emit now. */
  int64_t (*push_out_steps)(const ct_stage *stage, int64_t n_steps);
  int64_t (*finish_out_steps)(const ct_stage *stage);
  /* The same rule as a function of the whole signal, whatever the state:
   * steps emitted once n_in steps have been pushed, and the one-shot
   * output length of n_in steps (-1 on overflow). A graph composes its
   * stages' rules from these. */
  int64_t (*emitted)(const ct_stage *stage, int64_t n_in);
  int64_t (*length)(const ct_stage *stage, int64_t n_in);
  /* Threads (a pool the caller owns and frees after the stage; NULL: one). */
  ct_status (*use_pool)(ct_stage *stage, ct_pool *pool);
  void (*destroy)(ct_stage *stage);
} ct_stage_ops;

struct ct_stage {
  const ct_stage_ops *ops;
  int rank; /* spatial axes; axis 0 is streamed */
  int64_t in_channels, out_channels;
  /* The non-streamed axes of a step (rank - 1 lengths) and their floats. */
  int64_t in_frame_shape[CT_MAX_RANK - 1], out_frame_shape[CT_MAX_RANK - 1];
  int64_t in_frame, out_frame;
  /* Output steps per input step, rate_up / rate_down in the long run (a
   * ConvTranspose of stride s: s / 1; a strided convolution: 1 / s). */
  int64_t rate_up, rate_down;
  int64_t latency_out_steps, latency_in_steps;
};

static inline ct_status ct_stage_push(ct_stage *stage, const float *in,
                                      int64_t in_chan_stride, int64_t n_steps, float *out,
                                      int64_t out_chan_stride, int64_t *n_out) {
  return stage->ops->push(stage, in, in_chan_stride, n_steps, out, out_chan_stride,
                          n_out);
}

static inline ct_status ct_stage_finish(ct_stage *stage, float *out,
                                        int64_t out_chan_stride, int64_t *n_out) {
  return stage->ops->finish(stage, out, out_chan_stride, n_out);
}

static inline void ct_stage_reset(ct_stage *stage) {
  stage->ops->reset(stage);
}

static inline int64_t ct_stage_push_out_steps(const ct_stage *stage, int64_t n_steps) {
  return stage->ops->push_out_steps(stage, n_steps);
}

static inline int64_t ct_stage_finish_out_steps(const ct_stage *stage) {
  return stage->ops->finish_out_steps(stage);
}

static inline int64_t ct_stage_emitted(const ct_stage *stage, int64_t n_in) {
  return stage->ops->emitted(stage, n_in);
}

static inline int64_t ct_stage_length(const ct_stage *stage, int64_t n_in) {
  return stage->ops->length(stage, n_in);
}

static inline ct_status ct_stage_use_pool(ct_stage *stage, ct_pool *pool) {
  return stage->ops->use_pool(stage, pool);
}

static inline void ct_stage_free(ct_stage *stage) {
  if (stage)
    stage->ops->destroy(stage);
}

#ifdef __cplusplus
}
#endif

#endif
