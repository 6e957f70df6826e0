/* What the compute paths see of a layer. Not for users of the library. */
#ifndef CT_LAYER_PRIVATE_H
#define CT_LAYER_PRIVATE_H

#include "layer.h"
#include "plan.h"

struct ct_layer {
  ct_params params;
  int64_t in_per_group, out_per_group;
  int64_t taps_per_pair;              /* prod(kernel) */
  float *weight;                      /* PyTorch layout, as given */
  float *bias;                        /* NULL without bias */
  ct_phase_table phases[CT_MAX_RANK]; /* identity tables past the rank */
  ct_plan *plan;                      /* built once, shared by every stream */
};

#endif
