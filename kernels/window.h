/* Sliding windows streamed along the first spatial axis: convolutions of
 * any stride, dilation, group count and (asymmetric) padding, max pooling
 * and average pooling, as ONNX defines them. A stage (stage.h): output step
 * j reads padded input steps j * s .. j * s + d * (k - 1); it is emitted as
 * soon as the last of them has arrived, and the steps whose windows reach
 * the end padding at finish. Every output is computed from the same rows by
 * the same loop whichever push it falls in. Pure C11.
 *
 * (Stride-1 convolutions with symmetric padding run faster as transposed
 * convolutions, see graph.h; this stage serves the rest.) */
#ifndef CT_WINDOW_H
#define CT_WINDOW_H

#include <stdbool.h>

#include "stage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CT_WINDOW_CONV, CT_WINDOW_MAX, CT_WINDOW_AVERAGE } ct_window_op;

typedef struct ct_window_params {
  ct_window_op op;
  int rank;
  int64_t in_channels, out_channels, groups; /* pools: out = in, groups = in */
  int64_t kernel[CT_MAX_RANK], stride[CT_MAX_RANK], dilation[CT_MAX_RANK];
  int64_t pad_begin[CT_MAX_RANK], pad_end[CT_MAX_RANK];
  bool ceil_mode;         /* pools: the last partial window too */
  bool count_include_pad; /* average: divide by the whole window */
  const float *weight;    /* conv: [Cout][Cin/g][k...] */
  const float *bias;      /* conv: [Cout] or NULL */
} ct_window_params;

typedef struct ct_window ct_window;

/* A window stage for input frames of the given shape (rank - 1 lengths);
 * weights are copied. NULL with a reason in msg. */
ct_window *ct_window_new(const ct_window_params *params, const int64_t *frame_shape,
                         char *msg, size_t msg_size);
ct_stage *ct_window_stage(ct_window *window);

/* Output length of one axis for an input of in_len (0 when none). */
int64_t ct_window_output_length(const ct_window_params *params, int axis, int64_t in_len);

#ifdef __cplusplus
}
#endif

#endif
