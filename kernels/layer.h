/* A validated layer: hyper-parameters, a private copy of its weights, the
 * polyphase tables of its axes and its plans (plan.h: the weights packed
 * as the kernels read them), built once here and shared, read-only, by
 * every stream of the layer. */
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
/* As ct_layer_new, but takes ownership of weight and bias (from malloc)
 * instead of copying them, and frees them on failure too: a loader that
 * converted the weights itself need not hold them twice. */
ct_layer *ct_layer_adopt(const ct_params *params, float *weight, float *bias, char *msg,
                         size_t msg_size);
void ct_layer_free(ct_layer *layer);

/* Layers whose plans would take more than this are refused. */
#define CT_PLAN_MAX_BYTES 2000000000.0

/* Bytes the layer holds: weights, bias, phase tables and plans. */
size_t ct_layer_bytes(const ct_layer *layer);

const ct_params *ct_layer_params(const ct_layer *layer);
const float *ct_layer_weight(const ct_layer *layer); /* PyTorch layout */
const float *ct_layer_bias(const ct_layer *layer);   /* NULL without bias */

#ifdef __cplusplus
}
#endif

#endif
