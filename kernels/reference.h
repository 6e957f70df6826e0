/* The plain definition of a transposed convolution, for tests and for the
 * benchmark's correctness check only: every input element scatters into the
 * outputs its taps reach, accumulated in double. Slow and obviously right. */
#ifndef CT_REFERENCE_H
#define CT_REFERENCE_H

#include "geometry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* in: [Cin, L...], out: [Cout, L_out...] (no batch); weight in PyTorch's
 * layout; bias may be NULL. */
ct_status ct_reference_forward(const ct_params *params, const float *weight,
                               const float *bias, const int64_t *in_shape,
                               const float *in, float *out);

#ifdef __cplusplus
}
#endif

#endif
