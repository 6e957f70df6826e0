/* A ct_network evaluated once over a whole input, in double, with plain
 * loops straight from the operators' definitions (ONNX's, as PyTorch
 * computes them): the test's check that the reader's description of a
 * network means what the file means. Tests only; no streaming. */
#ifndef CT_TEST_NETWORK_REFERENCE_H
#define CT_TEST_NETWORK_REFERENCE_H

#include <stdint.h>

#include "kernels/network.h"

/* A tensor [N, C, S1(, S2(, S3))]. */
typedef struct {
  int rank; /* spatial axes */
  int64_t n, c, s[CT_MAX_RANK];
  double *data;
} ref_tensor;

/* The network's output for in (float32, shape [N, C, S...] with C the
 * input's channels) into *out (data malloc'd); 0, or -1 with msg set. */
int ref_network_run(const ct_network *net, const int64_t *in_shape, const float *in,
                    ref_tensor *out, char *msg, size_t msg_size);
void ref_tensor_clear(ref_tensor *t);

#endif
