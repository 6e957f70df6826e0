/* A validated layer: hyper-parameters plus private copies of its weights,
 * packed once into the layout the kernels read. */
#ifndef CT_LAYER_H
#define CT_LAYER_H

#include "geometry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_layer ct_layer;

/* Number of weight values: Cin * Cout/groups * prod(kernel); -1 on overflow.
 * params must have passed ct_params_validate. */
int64_t ct_weight_count(const ct_params *params);

/* Validates params and copies weight ([Cin, Cout/g, k...], PyTorch's layout)
 * and bias ([Cout] or NULL). NULL with a reason in msg on failure. */
ct_layer *ct_layer_new(const ct_params *params, const float *weight, const float *bias,
                       char *msg, size_t msg_size);
void ct_layer_free(ct_layer *layer);

const ct_params *ct_layer_params(const ct_layer *layer);
const float *ct_layer_weight(const ct_layer *layer); /* PyTorch layout */
const float *ct_layer_bias(const ct_layer *layer);   /* NULL without bias */

#ifdef __cplusplus
}
#endif

#endif
