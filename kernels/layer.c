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

ct_layer *ct_layer_adopt(const ct_params *params, float *weight, float *bias, char *msg,
                         size_t msg_size) {
  ct_layer *layer = NULL;
  int64_t count = -1;
  if (ct_params_validate(params, msg, msg_size) != CT_OK)
    goto fail;
  count = ct_weight_count(params);
  if (count < 0) {
    snprintf(msg, msg_size, "weight size overflows");
    goto fail;
  }
  if (!weight || !(layer = calloc(1, sizeof *layer))) {
    snprintf(msg, msg_size, "out of memory for a layer of %lld weights",
             (long long)count);
    goto fail;
  }
  layer->params = *params;
  for (int a = params->rank; a < CT_MAX_RANK; a++) {
    layer->params.kernel[a] = layer->params.stride[a] = layer->params.dilation[a] = 1;
    layer->params.padding[a] = layer->params.output_padding[a] = 0;
  }
  layer->in_per_group = params->in_channels / params->groups;
  layer->out_per_group = params->out_channels / params->groups;
  layer->taps_per_pair = count / (params->in_channels * layer->out_per_group);
  layer->weight = weight;
  layer->bias = bias;
  for (int a = 0; a < CT_MAX_RANK; a++) {
    if (ct_phase_table_build(ct_params_axis(&layer->params, a), &layer->phases[a]) !=
        CT_OK) {
      snprintf(msg, msg_size, "out of memory for a layer of %lld weights",
               (long long)count);
      ct_layer_free(layer);
      return NULL;
    }
  }
  /* Planned once, here: every stream of the layer reads these plans. */
  const double plan_bytes = ct_plan_bytes_bound(layer);
  if (plan_bytes > CT_PLAN_MAX_BYTES) {
    snprintf(
        msg, msg_size,
        "the layer's plans would need %.0f MB (%lld weights, packed per phase), over "
        "the limit of %d MB",
        plan_bytes / 1e6, (long long)count, (int)(CT_PLAN_MAX_BYTES / 1000000));
    ct_layer_free(layer);
    return NULL;
  }
  if (!(layer->plan = ct_plan_build(layer))) {
    snprintf(msg, msg_size, "out of memory for the plans of a layer of %lld weights",
             (long long)count);
    ct_layer_free(layer);
    return NULL;
  }
  return layer;

fail:
  free(weight);
  free(bias);
  return NULL;
}

ct_layer *ct_layer_new(const ct_params *params, const float *weight, const float *bias,
                       char *msg, size_t msg_size) {
  if (ct_params_validate(params, msg, msg_size) != CT_OK)
    return NULL;
  int64_t count = ct_weight_count(params);
  float *w = copy_floats(weight, count);
  float *b = bias ? copy_floats(bias, params->out_channels) : NULL;
  if (!w || (bias && !b)) {
    snprintf(msg, msg_size, "out of memory for a layer of %lld weights",
             (long long)count);
    free(w);
    free(b);
    return NULL;
  }
  return ct_layer_adopt(params, w, b, msg, msg_size);
}

void ct_layer_free(ct_layer *layer) {
  if (!layer)
    return;
  ct_plan_free(layer->plan);
  for (int a = 0; a < CT_MAX_RANK; a++)
    ct_phase_table_clear(&layer->phases[a]);
  free(layer->weight);
  free(layer->bias);
  free(layer);
}

size_t ct_layer_bytes(const ct_layer *layer) {
  const ct_params *p = &layer->params;
  size_t bytes = sizeof *layer + (size_t)ct_weight_count(p) * sizeof(float) +
                 (layer->bias ? (size_t)p->out_channels * sizeof(float) : 0);
  for (int a = 0; a < CT_MAX_RANK; a++)
    bytes += (size_t)layer->phases[a].axis.k * sizeof(ct_tap) +
             (size_t)layer->phases[a].n_phases * sizeof(ct_phase);
  return bytes + (layer->plan ? layer->plan->bytes : 0);
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
