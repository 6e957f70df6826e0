/* AVX2 + FMA: 8 floats per vector; the scalar tail uses fmaf, which rounds
 * exactly as a lane of vfmadd. Built with -mavx2 -mfma, run only where the
 * CPU has both. */
#include <immintrin.h>
#include <math.h>

#define SUFFIX(name) name##_avx2
#define LEVEL_NAME "avx2"
#define VW 8
typedef __m256 vec;
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSTREAM(p, v) _mm256_stream_ps((p), (v))
#define VFENCE() _mm_sfence()
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(acc, a, b) _mm256_fmadd_ps((a), (b), (acc))
#define SFMA(acc, a, b) fmaf((a), (b), (acc))
#define VINTERLEAVE2(even, odd, out)                                                     \
  do {                                                                                   \
    __m256 e_ = _mm256_loadu_ps(even), o_ = _mm256_loadu_ps(odd);                        \
    __m256 lo_ = _mm256_unpacklo_ps(e_, o_), hi_ = _mm256_unpackhi_ps(e_, o_);           \
    _mm256_storeu_ps((out), _mm256_permute2f128_ps(lo_, hi_, 0x20));                     \
    _mm256_storeu_ps((out) + 8, _mm256_permute2f128_ps(lo_, hi_, 0x31));                 \
  } while (0)
/* Masks of the first n lanes, for the last partial vector of a run. */
#define VMASK_T __m256i
#define VMASK(n)                                                                         \
  _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)),                                        \
                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define VMLOAD(p, m) _mm256_maskload_ps((p), (m))
#define VMSTORE(p, m, v) _mm256_maskstore_ps((p), (m), (v))
/* Lanes of two vectors interleaved: the first and second halves. */
#define VPAIR_LO(e, o)                                                                   \
  _mm256_permute2f128_ps(_mm256_unpacklo_ps((e), (o)), _mm256_unpackhi_ps((e), (o)), 0x20)
#define VPAIR_HI(e, o)                                                                   \
  _mm256_permute2f128_ps(_mm256_unpacklo_ps((e), (o)), _mm256_unpackhi_ps((e), (o)), 0x31)
#define VSTORE_PAIR(p, e, o)                                                             \
  (VSTORE((p), VPAIR_LO((e), (o))), VSTORE((p) + VW, VPAIR_HI((e), (o))))
#include "dsp-x86.h"
#include "convert-x86.h"
#include "dsp-impl.h"
#include "convert-impl.h"
