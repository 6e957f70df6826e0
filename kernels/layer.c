#include "layer-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t ct_weight_count(const ct_params *params) {
  int64_t taps, count;
  if (!ct_product_i64(params->kernel, params->rank, &taps) ||
      !ct_mul_i64(params->in_channels, params->out_channels / params->groups, &count) ||
      !ct_mul_i64(count, taps, &count))
    return -1;
  return count;
}

static float *copy_floats(const float *src, int64_t count) {
  size_t bytes;
  if (!ct_bytes_for(count, sizeof(float), &bytes))
    return NULL;
  float *dst = malloc(bytes ? bytes : 1);
  if (dst)
    memcpy(dst, src, bytes);
  return dst;
}

ct_layer *ct_layer_new(const ct_params *params, const float *weight, const float *bias,
                       char *msg, size_t msg_size) {
  if (ct_params_validate(params, msg, msg_size) != CT_OK)
    return NULL;
  int64_t count = ct_weight_count(params);
  if (count < 0) {
    snprintf(msg, msg_size, "weight size overflows");
    return NULL;
  }
  ct_layer *layer = calloc(1, sizeof *layer);
  if (!layer) {
    snprintf(msg, msg_size, "out of memory");
    return NULL;
  }
  layer->params = *params;
  for (int a = params->rank; a < CT_MAX_RANK; a++) {
    layer->params.kernel[a] = layer->params.stride[a] = layer->params.dilation[a] = 1;
    layer->params.padding[a] = layer->params.output_padding[a] = 0;
  }
  layer->in_per_group = params->in_channels / params->groups;
  layer->out_per_group = params->out_channels / params->groups;
  layer->taps_per_pair = count / (params->in_channels * layer->out_per_group);
  layer->weight = copy_floats(weight, count);
  layer->packed = copy_floats(weight, count);
  layer->bias = bias ? copy_floats(bias, params->out_channels) : NULL;
  bool ok = layer->weight && layer->packed && (!bias || layer->bias);
  for (int a = 0; ok && a < CT_MAX_RANK; a++)
    ok = ct_phase_table_build(ct_params_axis(&layer->params, a), &layer->phases[a]) ==
         CT_OK;
  if (!ok) {
    snprintf(msg, msg_size, "out of memory for a layer of %lld weights",
             (long long)count);
    ct_layer_free(layer);
    return NULL;
  }
  /* weight[ci][co_l][taps] -> packed[co][ci_l][taps] */
  const int64_t taps = layer->taps_per_pair;
  for (int64_t ci = 0; ci < params->in_channels; ci++) {
    int64_t g = ci / layer->in_per_group, ci_l = ci % layer->in_per_group;
    for (int64_t co_l = 0; co_l < layer->out_per_group; co_l++) {
      int64_t co = g * layer->out_per_group + co_l;
      memcpy(layer->packed + (co * layer->in_per_group + ci_l) * taps,
             weight + (ci * layer->out_per_group + co_l) * taps,
             (size_t)taps * sizeof(float));
    }
  }
  return layer;
}

void ct_layer_free(ct_layer *layer) {
  if (!layer)
    return;
  for (int a = 0; a < CT_MAX_RANK; a++)
    ct_phase_table_clear(&layer->phases[a]);
  free(layer->weight);
  free(layer->packed);
  free(layer->bias);
  free(layer);
}

const ct_params *ct_layer_params(const ct_layer *layer) {
  return &layer->params;
}

const float *ct_layer_weight(const ct_layer *layer) {
  return layer->weight;
}

const float *ct_layer_bias(const ct_layer *layer) {
  return layer->bias;
}
