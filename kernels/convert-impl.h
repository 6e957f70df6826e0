/* The conversion entries of kernels/dsp.h (arguments in convert.h), written
 * once: each entry is the portable C loop, which a level speeds up by
 * defining a vector body that converts a leading part of the row. Included
 * by dsp-c.c (no vector bodies) and by the x86 levels after convert-x86.h,
 * with SUFFIX(name) giving per-level names. The C loops also finish what the
 * vector bodies leave, so every value anywhere in a row comes from the same
 * operations: a float division (unpack), a clamp, multiply, add and
 * truncation (pack), or a copy (audio). C11 does not contract a * b + c
 * into a fused operation, so no level rounds differently. */
#include <stdbool.h>
#include <string.h>

#include "convert.h"
#include "dsp.h"

/* The contract's quantisation of one value: clamp to [0, 1] (NaN to 0),
 * scale, round to nearest by adding one half and truncating. */
static inline int32_t SUFFIX(level)(float v, float scale) {
  float x = v > 0.0f ? v : 0.0f;
  x = x < 1.0f ? x : 1.0f;
  return (int32_t)(x * scale + 0.5f);
}

static void SUFFIX(zero_borders)(const ct_unpack *u) {
  for (int c = 0; c < u->comps; c++) {
    memset(u->dst[c] - u->left, 0, (size_t)u->left * sizeof(float));
    memset(u->dst[c] + u->n, 0, (size_t)u->right * sizeof(float));
  }
}

static void SUFFIX(unpack_u8)(const ct_unpack *u) {
  SUFFIX(zero_borders)(u);
  int64_t x = 0;
#ifdef CVT_UNPACK_U8_VEC
  x = CVT_UNPACK_U8_VEC(u);
#endif
  const int64_t ps = u->pstride;
  for (int c = 0; c < u->comps; c++) {
    const uint8_t *src = u->src + u->offset[c];
    float *dst = u->dst[c];
    for (int64_t i = x; i < u->n; i++)
      dst[i] = (float)src[i * ps] / 255.0f;
  }
}

static void SUFFIX(unpack_u16)(const ct_unpack *u) {
  SUFFIX(zero_borders)(u);
  int64_t x = 0;
#ifdef CVT_UNPACK_U16_VEC
  x = CVT_UNPACK_U16_VEC(u);
#endif
  const int64_t ps = u->pstride;
  for (int c = 0; c < u->comps; c++) {
    const uint8_t *src = u->src + u->offset[c];
    float *dst = u->dst[c];
    for (int64_t i = x; i < u->n; i++) {
      const uint8_t *w = src + i * ps; /* little-endian whatever the host */
      dst[i] = (float)(uint16_t)(w[0] | w[1] << 8) / 65535.0f;
    }
  }
}

/* Bytes [x * pstride, n * pstride) that no component covers (`width` bytes
 * from each offset) set to the fill value. */
static void SUFFIX(fill_gaps)(const ct_pack *p, int64_t x, int width) {
  bool covered[CT_CONVERT_MAX_PSTRIDE] = {false};
  bool gaps = false;
  for (int c = 0; c < p->comps; c++)
    for (int b = 0; b < width; b++)
      covered[p->offset[c] + b] = true;
  for (int b = 0; b < p->pstride; b++)
    gaps |= !covered[b];
  for (int64_t i = x; gaps && i < p->n; i++)
    for (int b = 0; b < p->pstride; b++)
      if (!covered[b])
        p->dst[i * p->pstride + b] = p->fill;
}

static void SUFFIX(pack_u8)(const ct_pack *p) {
  int64_t x = 0;
#ifdef CVT_PACK_U8_VEC
  x = CVT_PACK_U8_VEC(p);
#endif
  SUFFIX(fill_gaps)(p, x, 1);
  const int64_t ps = p->pstride;
  for (int c = 0; c < p->comps; c++) {
    const float *src = p->src[c];
    uint8_t *dst = p->dst + p->offset[c];
    for (int64_t i = x; i < p->n; i++)
      dst[i * ps] = (uint8_t)SUFFIX(level)(src[i], 255.0f);
  }
}

static void SUFFIX(pack_u16)(const ct_pack *p) {
  int64_t x = 0;
#ifdef CVT_PACK_U16_VEC
  x = CVT_PACK_U16_VEC(p);
#endif
  SUFFIX(fill_gaps)(p, x, 2);
  const int64_t ps = p->pstride;
  for (int c = 0; c < p->comps; c++) {
    const float *src = p->src[c];
    uint8_t *dst = p->dst + p->offset[c];
    for (int64_t i = x; i < p->n; i++) {
      const int32_t v = SUFFIX(level)(src[i], 65535.0f);
      dst[i * ps] = (uint8_t)(v & 0xff);
      dst[i * ps + 1] = (uint8_t)(v >> 8);
    }
  }
}

static void SUFFIX(deinterleave_f32)(const ct_channels *a) {
  const int64_t ch = a->channels, ps = a->plane_stride;
  if (ch == 1) {
    memcpy(a->dst, a->src, (size_t)a->n * sizeof(float));
    return;
  }
  int64_t i = 0;
#ifdef CVT_DEINTERLEAVE_VEC
  i = CVT_DEINTERLEAVE_VEC(a);
#endif
  if (ch == 2) {
    for (; i < a->n; i++) {
      a->dst[i] = a->src[2 * i];
      a->dst[ps + i] = a->src[2 * i + 1];
    }
    return;
  }
  /* A channel at a time: each plane written in order. */
  for (int64_t c = 0; c < ch; c++) {
    const float *src = a->src + c;
    float *dst = a->dst + c * ps;
    for (int64_t j = i; j < a->n; j++)
      dst[j] = src[j * ch];
  }
}

static void SUFFIX(interleave_f32)(const ct_channels *a) {
  const int64_t ch = a->channels, ps = a->plane_stride;
  if (ch == 1) {
    memcpy(a->dst, a->src, (size_t)a->n * sizeof(float));
    return;
  }
  int64_t i = 0;
#ifdef CVT_INTERLEAVE_VEC
  i = CVT_INTERLEAVE_VEC(a);
#endif
  if (ch == 2) {
    for (; i < a->n; i++) {
      a->dst[2 * i] = a->src[i];
      a->dst[2 * i + 1] = a->src[ps + i];
    }
    return;
  }
  /* A channel at a time: each plane read in order. */
  for (int64_t c = 0; c < ch; c++) {
    const float *src = a->src + c * ps;
    float *dst = a->dst + c;
    for (int64_t j = i; j < a->n; j++)
      dst[j * ch] = src[j];
  }
}

void SUFFIX(ct_convert_fill)(ct_dsp *dsp);
void SUFFIX(ct_convert_fill)(ct_dsp *dsp) {
  dsp->unpack_u8 = SUFFIX(unpack_u8);
  dsp->unpack_u16 = SUFFIX(unpack_u16);
  dsp->pack_u8 = SUFFIX(pack_u8);
  dsp->pack_u16 = SUFFIX(pack_u16);
  dsp->deinterleave_f32 = SUFFIX(deinterleave_f32);
  dsp->interleave_f32 = SUFFIX(interleave_f32);
}
