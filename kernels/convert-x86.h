/* x86 vector bodies of the conversion entries (kernels/convert-impl.h).
 * Included by the AVX2 and AVX-512 levels before convert-impl.h: AVX2
 * (with its SSSE3 byte shuffles) everywhere, 512-bit paths where the level
 * is built with __AVX512F__, the byte permutes where it is built with
 * __AVX512VBMI__ (dsp-avx512vbmi.c, chosen when the table is filled). Each
 * body converts a leading part of the row, whole vectors only, and returns
 * how many pixels (frames) it did; the C loop does the rest with the same
 * operations per value. */
#ifndef CT_CONVERT_X86_H
#define CT_CONVERT_X86_H

#include <immintrin.h>
#include <stdint.h>

#include "convert.h"

/* ---- Tables of byte positions in 3-byte pixels, as constant expressions. */

/* Within 16 pixels (48 bytes, three 16-byte blocks): byte `lane` of block
 * `blk` holds byte o of pixel i when 3 i + o = 16 blk + lane. */
#define CVT_FROM_BLOCK(o, blk, i)                                                        \
  ((3 * (i) + (o)) / 16 == (blk) ? (3 * (i) + (o)) % 16 : -1)
#define CVT_TO_BLOCK(blk, o, lane)                                                       \
  ((16 * (blk) + (lane)) % 3 == (o) ? (16 * (blk) + (lane)) / 3 : -1)
#define CVT_ROW16(F, a, b)                                                               \
  {                                                                                      \
    F(a, b, 0), F(a, b, 1), F(a, b, 2), F(a, b, 3), F(a, b, 4), F(a, b, 5), F(a, b, 6),  \
        F(a, b, 7), F(a, b, 8), F(a, b, 9), F(a, b, 10), F(a, b, 11), F(a, b, 12),       \
        F(a, b, 13), F(a, b, 14), F(a, b, 15)                                            \
  }
#define CVT_BLOCKS3(F, a)                                                                \
  { CVT_ROW16(F, a, 0), CVT_ROW16(F, a, 1), CVT_ROW16(F, a, 2) }

/* pshufb masks: [o][blk] gathers byte o of 16 pixels from block blk;
 * [blk][o] scatters byte o of 16 pixels into block blk (-1: zero). */
static const int8_t cvt_gather3[3][3][16] = {CVT_BLOCKS3(CVT_FROM_BLOCK, 0),
                                             CVT_BLOCKS3(CVT_FROM_BLOCK, 1),
                                             CVT_BLOCKS3(CVT_FROM_BLOCK, 2)};
static const int8_t cvt_scatter3[3][3][16] = {CVT_BLOCKS3(CVT_TO_BLOCK, 0),
                                              CVT_BLOCKS3(CVT_TO_BLOCK, 1),
                                              CVT_BLOCKS3(CVT_TO_BLOCK, 2)};

static inline __m256i cvt_mask2(const int8_t *m) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)m));
}

/* ---- Value conversions, giving the same floats and bytes as the C loop. */

/* v / d for integers 0 <= v <= 65535 and d = 255 or 65535 without a
 * division (which issues once in several cycles): q = v * (1 / d), then q
 * corrected by its exact residual v - q * d (a fused multiply-add). With
 * 1 / d correctly rounded this is the correctly rounded quotient, the float
 * the C division gives, for every such v (Markstein's correction;
 * checkasm compares all of them). */
static inline __m256 cvt_div8(__m256 v, float d) {
  const __m256 dv = _mm256_set1_ps(d), r = _mm256_set1_ps(1.0f / d);
  const __m256 q = _mm256_mul_ps(v, r);
  return _mm256_fmadd_ps(_mm256_fnmadd_ps(q, dv, v), r, q);
}

#ifdef __AVX512F__
static inline __m512 cvt_div16(__m512 v, float d) {
  const __m512 dv = _mm512_set1_ps(d), r = _mm512_set1_ps(1.0f / d);
  const __m512 q = _mm512_mul_ps(v, r);
  return _mm512_fmadd_ps(_mm512_fnmadd_ps(q, dv, v), r, q);
}
#endif

/* 8 bytes (the low half) as floats divided by 255. */
static inline void cvt_bytes8_to_floats(__m128i b, float *out) {
  _mm256_storeu_ps(out, cvt_div8(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)), 255.0f));
}

static inline void cvt_bytes16_to_floats(__m128i b, float *out) {
#ifdef __AVX512F__
  _mm512_storeu_ps(out, cvt_div16(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)), 255.0f));
#else
  cvt_bytes8_to_floats(b, out);
  cvt_bytes8_to_floats(_mm_srli_si128(b, 8), out + 8);
#endif
}

static inline void cvt_bytes32_to_floats(__m256i b, float *out) {
  cvt_bytes16_to_floats(_mm256_castsi256_si128(b), out);
  cvt_bytes16_to_floats(_mm256_extracti128_si256(b, 1), out + 16);
}

/* Levels of 8 floats: clamp (max and min return their second operand for
 * NaN, which sends NaN to 0 as the C comparison does), scale, add one half,
 * truncate. */
static inline __m256i cvt_levels8(const float *v, __m256 scale) {
  const __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(v), _mm256_setzero_ps()),
                                 _mm256_set1_ps(1.0f));
  return _mm256_cvttps_epi32(
      _mm256_add_ps(_mm256_mul_ps(x, scale), _mm256_set1_ps(0.5f)));
}

/* 32 levels of [0, 255] as bytes in order: saturating packs change nothing
 * in that range; they work within 128-bit lanes, which the permute undoes. */
static inline __m256i cvt_bytes32(const float *v) {
  const __m256 s = _mm256_set1_ps(255.0f);
  const __m256i q0 = cvt_levels8(v, s), q1 = cvt_levels8(v + 8, s);
  const __m256i q2 = cvt_levels8(v + 16, s), q3 = cvt_levels8(v + 24, s);
  const __m256i bytes =
      _mm256_packus_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

#ifdef __AVX512F__
static inline __m512i cvt_levels16(const float *v, __m512 scale) {
  const __m512 x = _mm512_min_ps(_mm512_max_ps(_mm512_loadu_ps(v), _mm512_setzero_ps()),
                                 _mm512_set1_ps(1.0f));
  return _mm512_cvttps_epi32(
      _mm512_add_ps(_mm512_mul_ps(x, scale), _mm512_set1_ps(0.5f)));
}
#endif

/* ---- unpack_u8 */

/* 3-byte pixels, 32 at a time: lane 0 of each vector holds a block of
 * pixels 0-15, lane 1 the same block of pixels 16-31, so one in-lane
 * shuffle per block gathers a component of all 32 in order. */
static int64_t SUFFIX(unpack3_u8)(const ct_unpack *u, int64_t x) {
  __m256i m[CT_CONVERT_MAX_COMPS][3];
  for (int c = 0; c < u->comps; c++)
    for (int b = 0; b < 3; b++)
      m[c][b] = cvt_mask2(cvt_gather3[u->offset[c]][b]);
  for (; x + 32 <= u->n; x += 32) {
    const uint8_t *p = u->src + 3 * x;
    __m256i v[3];
    for (int b = 0; b < 3; b++)
      v[b] = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 16 * b))),
          _mm_loadu_si128((const __m128i *)(p + 48 + 16 * b)), 1);
    for (int c = 0; c < u->comps; c++)
      cvt_bytes32_to_floats(
          _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(v[0], m[c][0]),
                                          _mm256_shuffle_epi8(v[1], m[c][1])),
                          _mm256_shuffle_epi8(v[2], m[c][2])),
          u->dst[c] + x);
  }
  return x;
}

#ifdef __AVX512VBMI__
/* Byte o of 64 pixels (192 bytes, three vectors) from the first two
 * vectors (a two-source permute) or, masked, the third. */
#define CVT_G01(o, i) (uint8_t)(3 * (i) + (o) < 128 ? 3 * (i) + (o) : 0)
#define CVT_G2(o, i) (uint8_t)(3 * (i) + (o) < 128 ? 0 : 3 * (i) + (o)-128)
#define CVT_GM2(o, i) | (3 * (i) + (o) >= 128 ? (uint64_t)1 << (i) : 0)
/* Byte t of output vector v takes pixel byte k = 64 v + t: byte k % 3 of
 * pixel k / 3, from the planes of bytes 0 and 1 (a two-source permute) or,
 * masked, of byte 2; in a plane, pixel p is at byte CVT_LANED(p), where
 * cvt_bytes64_lanes leaves it. */
#define CVT_LANED(p) (16 * ((p) % 16 / 4) + 4 * ((p) / 16) + (p) % 4)
#define CVT_S01(v, t)                                                                    \
  (uint8_t)((64 * (v) + (t)) % 3 == 1 ? 64 + CVT_LANED((64 * (v) + (t)) / 3)             \
                                      : CVT_LANED((64 * (v) + (t)) / 3))
#define CVT_S2(v, t) (uint8_t) CVT_LANED((64 * (v) + (t)) / 3)
#define CVT_SM2(v, t) | ((64 * (v) + (t)) % 3 == 2 ? (uint64_t)1 << (t) : 0)
#define CVT_L4(F, a, i) F(a, i) F(a, i + 1) F(a, i + 2) F(a, i + 3)
#define CVT_L16(F, a, i)                                                                 \
  CVT_L4(F, a, i) CVT_L4(F, a, i + 4) CVT_L4(F, a, i + 8) CVT_L4(F, a, i + 12)
#define CVT_L64(F, a)                                                                    \
  CVT_L16(F, a, 0) CVT_L16(F, a, 16) CVT_L16(F, a, 32) CVT_L16(F, a, 48)
#define CVT_G01_C(o, i) CVT_G01(o, i),
#define CVT_G2_C(o, i) CVT_G2(o, i),
#define CVT_S01_C(v, t) CVT_S01(v, t),
#define CVT_S2_C(v, t) CVT_S2(v, t),
#define CVT_TABLE3(F)                                                                    \
  {                                                                                      \
    {CVT_L64(F, 0)}, {CVT_L64(F, 1)}, {                                                  \
      CVT_L64(F, 2)                                                                      \
    }                                                                                    \
  }
#define CVT_MASK3(F)                                                                     \
  { 0 CVT_L64(F, 0), 0 CVT_L64(F, 1), 0 CVT_L64(F, 2) }
static const uint8_t cvt_g01[3][64] = CVT_TABLE3(CVT_G01_C);
static const uint8_t cvt_g2[3][64] = CVT_TABLE3(CVT_G2_C);
static const uint64_t cvt_gm2[3] = CVT_MASK3(CVT_GM2);
static const uint8_t cvt_s01[3][64] = CVT_TABLE3(CVT_S01_C);
static const uint8_t cvt_s2[3][64] = CVT_TABLE3(CVT_S2_C);
static const uint64_t cvt_sm2[3] = CVT_MASK3(CVT_SM2);

static int64_t SUFFIX(unpack3_u8_vbmi)(const ct_unpack *u, int64_t x) {
  __m512i g01[CT_CONVERT_MAX_COMPS], g2[CT_CONVERT_MAX_COMPS];
  __mmask64 gm2[CT_CONVERT_MAX_COMPS];
  for (int c = 0; c < u->comps; c++) {
    g01[c] = _mm512_loadu_si512(cvt_g01[u->offset[c]]);
    g2[c] = _mm512_loadu_si512(cvt_g2[u->offset[c]]);
    gm2[c] = cvt_gm2[u->offset[c]];
  }
  for (; x + 64 <= u->n; x += 64) {
    const uint8_t *p = u->src + 3 * x;
    const __m512i v0 = _mm512_loadu_si512(p), v1 = _mm512_loadu_si512(p + 64);
    const __m512i v2 = _mm512_loadu_si512(p + 128);
    for (int c = 0; c < u->comps; c++) {
      const __m512i b = _mm512_mask_permutexvar_epi8(
          _mm512_permutex2var_epi8(v0, g01[c], v1), gm2[c], g2[c], v2);
      float *out = u->dst[c] + x;
      /* Immediate lane numbers (also at -O0). */
      cvt_bytes16_to_floats(_mm512_extracti32x4_epi32(b, 0), out);
      cvt_bytes16_to_floats(_mm512_extracti32x4_epi32(b, 1), out + 16);
      cvt_bytes16_to_floats(_mm512_extracti32x4_epi32(b, 2), out + 32);
      cvt_bytes16_to_floats(_mm512_extracti32x4_epi32(b, 3), out + 48);
    }
  }
  return x;
}
#endif

/* 4-byte pixels: a component is a byte of each 32-bit lane. */
static int64_t SUFFIX(unpack4_u8)(const ct_unpack *u) {
  int64_t x = 0;
  __m128i shift[CT_CONVERT_MAX_COMPS];
  for (int c = 0; c < u->comps; c++)
    shift[c] = _mm_cvtsi32_si128(8 * u->offset[c]);
#ifdef __AVX512F__
  for (; x + 16 <= u->n; x += 16) {
    const __m512i v = _mm512_loadu_si512(u->src + 4 * x);
    for (int c = 0; c < u->comps; c++)
      _mm512_storeu_ps(
          u->dst[c] + x,
          cvt_div16(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srl_epi32(v, shift[c]),
                                                        _mm512_set1_epi32(0xff))),
                    255.0f));
  }
#endif
  for (; x + 8 <= u->n; x += 8) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)(u->src + 4 * x));
    for (int c = 0; c < u->comps; c++)
      _mm256_storeu_ps(
          u->dst[c] + x,
          cvt_div8(_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(v, shift[c]),
                                                       _mm256_set1_epi32(0xff))),
                   255.0f));
  }
  return x;
}

static int64_t SUFFIX(unpack_u8_vec)(const ct_unpack *u) {
  int64_t x = 0;
  switch (u->pstride) {
  case 1:
    for (; x + 16 <= u->n; x += 16)
      for (int c = 0; c < u->comps; c++)
        cvt_bytes16_to_floats(_mm_loadu_si128((const __m128i *)(u->src + x)),
                              u->dst[c] + x);
    break;
  case 3:
#ifdef __AVX512VBMI__
    x = SUFFIX(unpack3_u8_vbmi)(u, x);
#endif
    x = SUFFIX(unpack3_u8)(u, x);
    break;
  case 4:
    x = SUFFIX(unpack4_u8)(u);
    break;
  default:
    break;
  }
  return x;
}
#define CVT_UNPACK_U8_VEC(u) SUFFIX(unpack_u8_vec)(u)

/* ---- unpack_u16: 2-byte pixels (GRAY16_LE). */
static int64_t SUFFIX(unpack_u16_vec)(const ct_unpack *u) {
  int64_t x = 0;
  if (u->pstride != 2) /* offsets are then 0: every component reads the word */
    return 0;
#ifdef __AVX512F__
  for (; x + 16 <= u->n; x += 16) {
    const __m512 v =
        cvt_div16(_mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(
                      _mm256_loadu_si256((const __m256i *)(u->src + 2 * x)))),
                  65535.0f);
    for (int c = 0; c < u->comps; c++)
      _mm512_storeu_ps(u->dst[c] + x, v);
  }
#endif
  for (; x + 8 <= u->n; x += 8) {
    const __m256 v = cvt_div8(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(
                                  _mm_loadu_si128((const __m128i *)(u->src + 2 * x)))),
                              65535.0f);
    for (int c = 0; c < u->comps; c++)
      _mm256_storeu_ps(u->dst[c] + x, v);
  }
  return x;
}
#define CVT_UNPACK_U16_VEC(u) SUFFIX(unpack_u16_vec)(u)

/* ---- pack_u8 */

/* One byte per pixel. */
static int64_t SUFFIX(pack1_u8)(const float *src, uint8_t *dst, int64_t n) {
  int64_t x = 0;
#ifdef __AVX512F__
  const __m512 s = _mm512_set1_ps(255.0f);
  for (; x + 16 <= n; x += 16)
    _mm_storeu_si128((__m128i *)(dst + x),
                     _mm512_cvtusepi32_epi8(cvt_levels16(src + x, s)));
#else
  for (; x + 32 <= n; x += 32)
    _mm256_storeu_si256((__m256i *)(dst + x), cvt_bytes32(src + x));
#endif
  return x;
}

/* Where the levels of byte o of a pixel come from: a component's row, or
 * NULL for the fill. Resolved before the loops, so that the vectors of each
 * position stay in registers. */
static inline void cvt_positions3(const ct_pack *p, const float **at) {
  for (int o = 0; o < 3; o++)
    at[o] = NULL;
  for (int c = 0; c < p->comps; c++)
    at[p->offset[c]] = p->src[c];
}

/* 3-byte pixels, 32 at a time: each output block gathers its bytes from the
 * three position vectors with in-lane shuffles (lane 1: pixels 16-31), then
 * the lanes go back in memory order. */
static int64_t SUFFIX(pack3_u8)(const ct_pack *p, int64_t x) {
  __m256i m[3][3];
  for (int b = 0; b < 3; b++)
    for (int o = 0; o < 3; o++)
      m[b][o] = cvt_mask2(cvt_scatter3[b][o]);
  const float *at[3];
  cvt_positions3(p, at);
  const __m256i fill = _mm256_set1_epi8((char)p->fill);
  for (; x + 32 <= p->n; x += 32) {
    __m256i bytes[3], blk[3];
    for (int o = 0; o < 3; o++)
      bytes[o] = at[o] ? cvt_bytes32(at[o] + x) : fill;
    for (int b = 0; b < 3; b++)
      blk[b] = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(bytes[0], m[b][0]),
                                               _mm256_shuffle_epi8(bytes[1], m[b][1])),
                               _mm256_shuffle_epi8(bytes[2], m[b][2]));
    uint8_t *out = p->dst + 3 * x;
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(blk[0], blk[1], 0x20));
    _mm256_storeu_si256((__m256i *)(out + 32),
                        _mm256_permute2x128_si256(blk[2], blk[0], 0x30));
    _mm256_storeu_si256((__m256i *)(out + 64),
                        _mm256_permute2x128_si256(blk[1], blk[2], 0x31));
  }
  return x;
}

#ifdef __AVX512VBMI__
/* 64 levels of [0, 255] as bytes, with saturating packs that change nothing
 * in that range. They work within 128-bit lanes: byte 16 l + 4 j + e holds
 * level 16 j + 4 l + e (CVT_LANED), which the permutes take as it is. */
static inline __m512i cvt_bytes64_lanes(const float *v) {
  const __m512 s = _mm512_set1_ps(255.0f);
  return _mm512_packus_epi16(
      _mm512_packs_epi32(cvt_levels16(v, s), cvt_levels16(v + 16, s)),
      _mm512_packs_epi32(cvt_levels16(v + 32, s), cvt_levels16(v + 48, s)));
}

/* 3-byte pixels, 64 at a time: the bytes of each position as one vector,
 * then two permutes per output vector. */
static int64_t SUFFIX(pack3_u8_vbmi)(const ct_pack *p, int64_t x) {
  __m512i s01[3], s2[3];
  for (int v = 0; v < 3; v++) {
    s01[v] = _mm512_loadu_si512(cvt_s01[v]);
    s2[v] = _mm512_loadu_si512(cvt_s2[v]);
  }
  const float *at[3];
  cvt_positions3(p, at);
  const __m512i fill = _mm512_set1_epi8((char)p->fill);
  for (; x + 64 <= p->n; x += 64) {
    __m512i bytes[3];
    for (int o = 0; o < 3; o++)
      bytes[o] = at[o] ? cvt_bytes64_lanes(at[o] + x) : fill;
    for (int v = 0; v < 3; v++)
      _mm512_storeu_si512(p->dst + 3 * x + 64 * v,
                          _mm512_mask_permutexvar_epi8(
                              _mm512_permutex2var_epi8(bytes[0], s01[v], bytes[1]),
                              cvt_sm2[v], s2[v], bytes[2]));
  }
  return x;
}
#endif

/* 4-byte pixels: each 32-bit lane is a pixel, its levels shifted into their
 * bytes over the fill of the uncovered ones. */
static int64_t SUFFIX(pack4_u8)(const ct_pack *p) {
  uint32_t fill = 0;
  for (int b = 0; b < 4; b++)
    fill |= (uint32_t)p->fill << (8 * b);
  __m128i shift[CT_CONVERT_MAX_COMPS];
  for (int c = 0; c < p->comps; c++) {
    fill &= ~((uint32_t)0xff << (8 * p->offset[c]));
    shift[c] = _mm_cvtsi32_si128(8 * p->offset[c]);
  }
  int64_t x = 0;
#ifdef __AVX512F__
  const __m512 s16 = _mm512_set1_ps(255.0f);
  for (; x + 16 <= p->n; x += 16) {
    __m512i px = _mm512_set1_epi32((int)fill);
    for (int c = 0; c < p->comps; c++)
      px = _mm512_or_si512(px,
                           _mm512_sll_epi32(cvt_levels16(p->src[c] + x, s16), shift[c]));
    _mm512_storeu_si512(p->dst + 4 * x, px);
  }
#endif
  const __m256 s = _mm256_set1_ps(255.0f);
  for (; x + 8 <= p->n; x += 8) {
    __m256i px = _mm256_set1_epi32((int)fill);
    for (int c = 0; c < p->comps; c++)
      px = _mm256_or_si256(px, _mm256_sll_epi32(cvt_levels8(p->src[c] + x, s), shift[c]));
    _mm256_storeu_si256((__m256i *)(p->dst + 4 * x), px);
  }
  return x;
}

static int64_t SUFFIX(pack_u8_vec)(const ct_pack *p) {
  int64_t x = 0;
  switch (p->pstride) {
  case 1:
    x = SUFFIX(pack1_u8)(p->src[0], p->dst, p->n);
    break;
  case 3:
#ifdef __AVX512VBMI__
    x = SUFFIX(pack3_u8_vbmi)(p, x);
#endif
    x = SUFFIX(pack3_u8)(p, x);
    break;
  case 4:
    x = SUFFIX(pack4_u8)(p);
    break;
  default:
    break;
  }
  return x;
}
#define CVT_PACK_U8_VEC(p) SUFFIX(pack_u8_vec)(p)

/* ---- pack_u16: 2-byte pixels (GRAY16_LE); levels of [0, 65535] narrowed
 * with unsigned saturation, which changes nothing in that range. */
static int64_t SUFFIX(pack_u16_vec)(const ct_pack *p) {
  int64_t x = 0;
  if (p->pstride != 2)
    return 0;
  const float *src = p->src[0];
  uint8_t *dst = p->dst;
#ifdef __AVX512F__
  const __m512 s16 = _mm512_set1_ps(65535.0f);
  for (; x + 16 <= p->n; x += 16)
    _mm256_storeu_si256((__m256i *)(dst + 2 * x),
                        _mm512_cvtusepi32_epi16(cvt_levels16(src + x, s16)));
#endif
  const __m256 s = _mm256_set1_ps(65535.0f);
  for (; x + 8 <= p->n; x += 8) {
    const __m256i q = cvt_levels8(src + x, s);
    _mm_storeu_si128(
        (__m128i *)(dst + 2 * x),
        _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
  }
  return x;
}
#define CVT_PACK_U16_VEC(p) SUFFIX(pack_u16_vec)(p)

/* ---- Audio: interleaved frames <-> channel planes, 256-bit on both x86
 * levels (512-bit permutes measured no faster for 2 channels). */

/* Rows r0..r3, each [4 values | 4 values], transposed within each lane:
 * row k's lane l becomes element k of lane l of every output. */
#define CVT_TRANSPOSE4_LANES(r0, r1, r2, r3)                                             \
  do {                                                                                   \
    const __m256 t0_ = _mm256_unpacklo_ps((r0), (r1)),                                   \
                 t1_ = _mm256_unpacklo_ps((r2), (r3));                                   \
    const __m256 t2_ = _mm256_unpackhi_ps((r0), (r1)),                                   \
                 t3_ = _mm256_unpackhi_ps((r2), (r3));                                   \
    (r0) = _mm256_shuffle_ps(t0_, t1_, 0x44);                                            \
    (r1) = _mm256_shuffle_ps(t0_, t1_, 0xEE);                                            \
    (r2) = _mm256_shuffle_ps(t2_, t3_, 0x44);                                            \
    (r3) = _mm256_shuffle_ps(t2_, t3_, 0xEE);                                            \
  } while (0)

static inline __m256 cvt_load_halves(const float *lo, const float *hi) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi),
                              1);
}

/* An 8x8 block transposed in registers. */
static inline void cvt_transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

static int64_t SUFFIX(deinterleave_vec)(const ct_channels *a) {
  const float *src = a->src;
  float *dst = a->dst;
  const int64_t n = a->n, ps = a->plane_stride;
  int64_t i = 0;
  switch (a->channels) {
  case 2:
    for (; i + 8 <= n; i += 8) {
      /* Shuffles within lanes leave the 4-value groups in the order 0 2 1 3. */
      const __m256 lo = _mm256_loadu_ps(src + 2 * i),
                   hi = _mm256_loadu_ps(src + 2 * i + 8);
      _mm256_storeu_ps(dst + i,
                       _mm256_castpd_ps(_mm256_permute4x64_pd(
                           _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8)));
      _mm256_storeu_ps(dst + ps + i,
                       _mm256_castpd_ps(_mm256_permute4x64_pd(
                           _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8)));
    }
    break;
  case 4:
    /* Row k: frames k and k + 4; transposed, row c is channel c of all 8. */
    for (; i + 8 <= n; i += 8) {
      const float *f = src + 4 * i;
      __m256 r0 = cvt_load_halves(f, f + 16), r1 = cvt_load_halves(f + 4, f + 20);
      __m256 r2 = cvt_load_halves(f + 8, f + 24), r3 = cvt_load_halves(f + 12, f + 28);
      CVT_TRANSPOSE4_LANES(r0, r1, r2, r3);
      _mm256_storeu_ps(dst + i, r0);
      _mm256_storeu_ps(dst + ps + i, r1);
      _mm256_storeu_ps(dst + 2 * ps + i, r2);
      _mm256_storeu_ps(dst + 3 * ps + i, r3);
    }
    break;
  default:
    /* Up to 8 channels: 8 frames as the rows of an 8x8 block, each loaded
     * whole (into the next frame, while that stays in the buffer). */
    for (const int64_t ch = a->channels; ch <= 8 && (i + 7) * ch + 8 <= n * ch; i += 8) {
      __m256 r[8];
      for (int k = 0; k < 8; k++)
        r[k] = _mm256_loadu_ps(src + (i + k) * ch);
      cvt_transpose8(r);
      for (int c = 0; c < ch; c++)
        _mm256_storeu_ps(dst + c * ps + i, r[c]);
    }
    break;
  }
  return i;
}
#define CVT_DEINTERLEAVE_VEC(a) SUFFIX(deinterleave_vec)(a)

static int64_t SUFFIX(interleave_vec)(const ct_channels *a) {
  const float *src = a->src;
  float *dst = a->dst;
  const int64_t n = a->n, ps = a->plane_stride;
  int64_t i = 0;
  switch (a->channels) {
  case 2:
    for (; i + 8 <= n; i += 8) {
      const __m256 l = _mm256_loadu_ps(src + i), r = _mm256_loadu_ps(src + ps + i);
      const __m256 lo = _mm256_unpacklo_ps(l, r), hi = _mm256_unpackhi_ps(l, r);
      _mm256_storeu_ps(dst + 2 * i, _mm256_permute2f128_ps(lo, hi, 0x20));
      _mm256_storeu_ps(dst + 2 * i + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    break;
  case 4:
    /* The inverse of deinterleave's: row k comes back as frames k, k + 4. */
    for (; i + 8 <= n; i += 8) {
      __m256 r0 = _mm256_loadu_ps(src + i), r1 = _mm256_loadu_ps(src + ps + i);
      __m256 r2 = _mm256_loadu_ps(src + 2 * ps + i),
             r3 = _mm256_loadu_ps(src + 3 * ps + i);
      CVT_TRANSPOSE4_LANES(r0, r1, r2, r3);
      float *f = dst + 4 * i;
      const __m256 r[4] = {r0, r1, r2, r3};
      for (int k = 0; k < 4; k++) {
        _mm_storeu_ps(f + 4 * k, _mm256_castps256_ps128(r[k]));
        _mm_storeu_ps(f + 16 + 4 * k, _mm256_extractf128_ps(r[k], 1));
      }
    }
    break;
  default:
    /* Up to 8 channels: the transposed block's rows are frames, each stored
     * whole; the floats past a frame land in the next one, stored after it
     * (here or by the C loop), while that stays in the buffer. */
    for (const int64_t ch = a->channels; ch <= 8 && (i + 7) * ch + 8 <= n * ch; i += 8) {
      __m256 r[8];
      for (int c = 0; c < 8; c++)
        r[c] = c < ch ? _mm256_loadu_ps(src + c * ps + i) : _mm256_setzero_ps();
      cvt_transpose8(r);
      for (int k = 0; k < 8; k++)
        _mm256_storeu_ps(dst + (i + k) * ch, r[k]);
    }
    break;
  }
  return i;
}
#define CVT_INTERLEAVE_VEC(a) SUFFIX(interleave_vec)(a)

#endif
