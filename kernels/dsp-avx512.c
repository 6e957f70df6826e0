/* AVX-512F: 16 floats per vector; the scalar tail uses fmaf, which rounds
 * exactly as a lane of vfmadd. Built with -mavx512f -mfma, run only where the
 * CPU has AVX-512F. */
#include <immintrin.h>
#include <math.h>

#define SUFFIX(name) name##_avx512
#define LEVEL_NAME "avx512"
#define VW 16
typedef __m512 vec;
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSTREAM(p, v) _mm512_stream_ps((p), (v))
#define VFENCE() _mm_sfence()
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(acc, a, b) _mm512_fmadd_ps((a), (b), (acc))
#define SFMA(acc, a, b) fmaf((a), (b), (acc))
#define VINTERLEAVE2(even, odd, out)                                                     \
  do {                                                                                   \
    const __m512i lo_idx_ =                                                              \
        _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);       \
    const __m512i hi_idx_ =                                                              \
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31); \
    __m512 e_ = _mm512_loadu_ps(even), o_ = _mm512_loadu_ps(odd);                        \
    _mm512_storeu_ps((out), _mm512_permutex2var_ps(e_, lo_idx_, o_));                    \
    _mm512_storeu_ps((out) + 16, _mm512_permutex2var_ps(e_, hi_idx_, o_));               \
  } while (0)
/* Masks of the first n lanes, for the last partial vector of a run. */
#define VMASK_T __mmask16
#define VMASK(n) ((__mmask16)((1u << (n)) - 1u))
#define VMLOAD(p, m) _mm512_maskz_loadu_ps((m), (p))
#define VMSTORE(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
/* Lanes of two vectors interleaved: the first and second halves. */
#define VPAIR_LO(e, o)                                                                   \
  _mm512_permutex2var_ps(                                                                \
      (e), _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),    \
      (o))
#define VPAIR_HI(e, o)                                                                   \
  _mm512_permutex2var_ps(                                                                \
      (e),                                                                               \
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31),   \
      (o))
#define VSTORE_PAIR(p, e, o)                                                             \
  (VSTORE((p), VPAIR_LO((e), (o))), VSTORE((p) + VW, VPAIR_HI((e), (o))))
#include "dsp-x86.h"
#include "convert-x86.h"
#include "dsp-impl.h"
#include "convert-impl.h"
