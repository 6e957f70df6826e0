/* Folding a weight-normalised pair (torch.nn.utils.weight_norm, or its
 * parametrizations form) into the layer's weight: weight = g * v / ||v||.
 * Internal to model/. */
#ifndef CT_MODEL_WEIGHT_NORM_H
#define CT_MODEL_WEIGHT_NORM_H

#include "model/safetensors.h"

/* The folded float32 weight of v's shape vdims (malloc'd, for
 * ct_layer_adopt), or NULL with the error set: g of a shape weight_norm does
 * not give, or a norm that is zero or not finite (PyTorch would give NaN or
 * infinity). v's element count must already be checked. */
float *ct_weight_norm_fold(ct_load *ld, const ct_safetensors *st, const ct_tensor *g,
                           const char *g_name, const ct_tensor *v, const char *v_name,
                           const gint64 *vdims, int vrank);

#endif
