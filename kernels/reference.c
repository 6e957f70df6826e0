#include "reference.h"

#include <stdlib.h>

ct_status ct_reference_forward(const ct_params *params, const float *weight,
                               const float *bias, const int64_t *in_shape,
                               const float *in, float *out) {
  if (ct_params_validate(params, NULL, 0) != CT_OK)
    return CT_ERR_INVALID;
  int64_t L[3] = {1, 1, 1}, O[3] = {1, 1, 1};
  ct_axis ax[3];
  for (int a = 0; a < 3; a++) {
    ax[a] = ct_params_axis(params, a);
    if (a < params->rank)
      L[a] = in_shape[a];
  }
  if (ct_output_shape(params, in_shape, O, NULL, 0) != CT_OK)
    return CT_ERR_INVALID;
  for (int a = params->rank; a < 3; a++)
    O[a] = 1;
  const int64_t cin = params->in_channels, cout = params->out_channels;
  const int64_t cin_g = cin / params->groups, cout_g = cout / params->groups;
  const int64_t out_plane = O[0] * O[1] * O[2], in_plane = L[0] * L[1] * L[2];
  double *acc = calloc((size_t)(cout * out_plane), sizeof(double));
  if (!acc)
    return CT_ERR_NOMEM;
  for (int64_t co = 0; co < cout; co++)
    for (int64_t i = 0; i < out_plane; i++)
      acc[co * out_plane + i] = bias ? bias[co] : 0.0;
  for (int64_t ci = 0; ci < cin; ci++) {
    const int64_t g = ci / cin_g;
    for (int64_t i0 = 0; i0 < L[0]; i0++)
      for (int64_t i1 = 0; i1 < L[1]; i1++)
        for (int64_t i2 = 0; i2 < L[2]; i2++) {
          const double x = in[ci * in_plane + (i0 * L[1] + i1) * L[2] + i2];
          for (int64_t col = 0; col < cout_g; col++) {
            const int64_t co = g * cout_g + col;
            for (int64_t t0 = 0; t0 < ax[0].k; t0++) {
              /* full position i*s + t*d, cropped by p at the start */
              const int64_t j0 = i0 * ax[0].s + t0 * ax[0].d - ax[0].p;
              if (j0 < 0 || j0 >= O[0])
                continue;
              for (int64_t t1 = 0; t1 < ax[1].k; t1++) {
                const int64_t j1 = i1 * ax[1].s + t1 * ax[1].d - ax[1].p;
                if (j1 < 0 || j1 >= O[1])
                  continue;
                for (int64_t t2 = 0; t2 < ax[2].k; t2++) {
                  const int64_t j2 = i2 * ax[2].s + t2 * ax[2].d - ax[2].p;
                  if (j2 < 0 || j2 >= O[2])
                    continue;
                  const double w =
                      weight[((ci * cout_g + col) * ax[0].k + t0) * ax[1].k * ax[2].k +
                             t1 * ax[2].k + t2];
                  acc[co * out_plane + (j0 * O[1] + j1) * O[2] + j2] += w * x;
                }
              }
            }
          }
        }
  }
  for (int64_t i = 0; i < cout * out_plane; i++)
    out[i] = (float)acc[i];
  free(acc);
  return CT_OK;
}
