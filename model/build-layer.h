/* Building the ct_layer of one layer of a validated safetensors file: its
 * weight (plain, or a weight-normalised pair), bias and hyper-parameters,
 * checked against each other and the kernels' limits before any of its
 * tensor bytes is read. Internal to model/. */
#ifndef CT_MODEL_BUILD_LAYER_H
#define CT_MODEL_BUILD_LAYER_H

#include "kernels/layer.h"
#include "model/safetensors.h"

/* The layer named prefix (NULL: the bare names), or NULL with the error set.
 * Warnings (unknown metadata keys, weight tensors ignored) go to ld. */
ct_layer *ct_build_layer(ct_load *ld, const ct_safetensors *st, const char *prefix,
                         const CtOverrides *ov);

#endif
