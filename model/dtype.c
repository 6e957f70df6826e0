/* Explicit little-endian decoding, so the host's byte order and the data's
 * alignment do not matter. */
#include "model/dtype.h"

#include <float.h>
#include <math.h>
#include <string.h>

static const struct {
  const char *name;
  int size;
} dtypes[CT_DT_COUNT] = {
    [CT_DT_BOOL] = {"BOOL", 1},       [CT_DT_U8] = {"U8", 1},
    [CT_DT_I8] = {"I8", 1},           [CT_DT_F8_E5M2] = {"F8_E5M2", 1},
    [CT_DT_F8_E4M3] = {"F8_E4M3", 1}, [CT_DT_I16] = {"I16", 2},
    [CT_DT_U16] = {"U16", 2},         [CT_DT_F16] = {"F16", 2},
    [CT_DT_BF16] = {"BF16", 2},       [CT_DT_I32] = {"I32", 4},
    [CT_DT_U32] = {"U32", 4},         [CT_DT_F32] = {"F32", 4},
    [CT_DT_F64] = {"F64", 8},         [CT_DT_I64] = {"I64", 8},
    [CT_DT_U64] = {"U64", 8},
};

int ct_dtype_lookup(const char *name) {
  for (int i = 0; i < CT_DT_COUNT; i++) {
    if (strcmp(dtypes[i].name, name) == 0)
      return i;
  }
  return -1;
}

const char *ct_dtype_name(int dt) {
  return dtypes[dt].name;
}

int ct_dtype_size(int dt) {
  return dtypes[dt].size;
}

gboolean ct_dtype_is_float(int dt) {
  return dt == CT_DT_F32 || dt == CT_DT_F16 || dt == CT_DT_BF16 || dt == CT_DT_F64;
}

static float f32_from_bits(guint32 bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static float f16_to_f32(guint16 h) {
  guint32 sign = (guint32)(h >> 15) << 31;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0)
      return f32_from_bits(sign); /* signed zero */
    /* Subnormal: renormalise; every f16 subnormal is a normal float32. */
    int e = -14;
    while (!(mant & 0x400)) {
      mant <<= 1;
      e--;
    }
    mant &= 0x3ff;
    return f32_from_bits(sign | (guint32)(e + 127) << 23 | mant << 13);
  }
  if (exp == 31) /* inf, or nan with its payload kept */
    return f32_from_bits(sign | 0x7f800000u | mant << 13);
  return f32_from_bits(sign | (exp - 15 + 127) << 23 | mant << 13);
}

static float bf16_to_f32(guint16 h) {
  return f32_from_bits((guint32)h << 16); /* bf16 is float32's top half */
}

float ct_f64_to_f32(double d) {
  /* Converting an out-of-range double is undefined in C; do what IEEE
   * round-to-nearest does: up to half an ulp past FLT_MAX rounds down to
   * FLT_MAX, beyond that to infinity. */
  const double overflow_at = (double)FLT_MAX + ldexp(1.0, 103);
  if (d >= overflow_at)
    return INFINITY;
  if (d <= -overflow_at)
    return -INFINITY;
  if (d > FLT_MAX)
    return FLT_MAX;
  if (d < -FLT_MAX)
    return -FLT_MAX;
  return (float)d;
}

static double f64_at(const guint8 *p) {
  guint64 bits = 0;
  for (int b = 7; b >= 0; b--)
    bits = bits << 8 | p[b];
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

void ct_dtype_to_f32(int dt, const guint8 *src, float *dst, size_t count) {
  for (size_t i = 0; i < count; i++) {
    switch (dt) {
    case CT_DT_F16:
      dst[i] = f16_to_f32((guint16)(src[2 * i] | src[2 * i + 1] << 8));
      break;
    case CT_DT_BF16:
      dst[i] = bf16_to_f32((guint16)(src[2 * i] | src[2 * i + 1] << 8));
      break;
    case CT_DT_F32: {
      const guint8 *p = src + 4 * i;
      dst[i] = f32_from_bits((guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 |
                             (guint32)p[3] << 24);
      break;
    }
    default: /* CT_DT_F64 */
      dst[i] = ct_f64_to_f32(f64_at(src + 8 * i));
      break;
    }
  }
}

void ct_dtype_to_f64(int dt, const guint8 *src, double *dst, size_t count) {
  if (dt == CT_DT_F64) {
    for (size_t i = 0; i < count; i++)
      dst[i] = f64_at(src + 8 * i);
    return;
  }
  enum { CHUNK = 256 };
  float tmp[CHUNK];
  const size_t es = (size_t)ct_dtype_size(dt);
  for (size_t done = 0; done < count; done += CHUNK) {
    size_t n = count - done < CHUNK ? count - done : CHUNK;
    ct_dtype_to_f32(dt, src + done * es, tmp, n);
    for (size_t i = 0; i < n; i++)
      dst[done + i] = tmp[i];
  }
}
