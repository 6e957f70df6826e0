/* x86 helpers shared by the AVX2 and AVX-512 levels (256-bit operations,
 * which both have). Included by dsp-avx2.c and dsp-avx512.c only. */
#ifndef CT_DSP_X86_H
#define CT_DSP_X86_H

#include <immintrin.h>

/* Eight rows of 8 floats (src[r] + 0..7) written as their 8x8 transpose:
 * out[8 * t + r] = src[r][t]. */
#define VTRANSPOSE8_STORE(src, out)                                                      \
  do {                                                                                   \
    __m256 r_[8], t_[8], u_[8];                                                          \
    for (int i_ = 0; i_ < 8; i_++)                                                       \
      r_[i_] = _mm256_loadu_ps((src)[i_]);                                               \
    for (int i_ = 0; i_ < 8; i_ += 2) {                                                  \
      t_[i_] = _mm256_unpacklo_ps(r_[i_], r_[i_ + 1]);                                   \
      t_[i_ + 1] = _mm256_unpackhi_ps(r_[i_], r_[i_ + 1]);                               \
    }                                                                                    \
    for (int i_ = 0; i_ < 8; i_ += 4) {                                                  \
      u_[i_] = _mm256_shuffle_ps(t_[i_], t_[i_ + 2], 0x44);                              \
      u_[i_ + 1] = _mm256_shuffle_ps(t_[i_], t_[i_ + 2], 0xEE);                          \
      u_[i_ + 2] = _mm256_shuffle_ps(t_[i_ + 1], t_[i_ + 3], 0x44);                      \
      u_[i_ + 3] = _mm256_shuffle_ps(t_[i_ + 1], t_[i_ + 3], 0xEE);                      \
    }                                                                                    \
    for (int i_ = 0; i_ < 4; i_++) {                                                     \
      _mm256_storeu_ps((out) + 8 * i_,                                                   \
                       _mm256_permute2f128_ps(u_[i_], u_[i_ + 4], 0x20));                \
      _mm256_storeu_ps((out) + 8 * (i_ + 4),                                             \
                       _mm256_permute2f128_ps(u_[i_], u_[i_ + 4], 0x31));                \
    }                                                                                    \
  } while (0)

#endif
