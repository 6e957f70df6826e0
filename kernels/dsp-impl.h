/* The primitives of kernels/dsp.h, written once for any vector width.
 * Included by dsp-c.c, dsp-avx2.c and dsp-avx512.c after defining:
 *   SUFFIX(name)      per-level function names
 *   VW                floats per vector
 *   vec, VLOAD, VSTORE, VSET1
 *   VFMA(acc, a, b)   acc + a*b (fused on SIMD levels)
 *   SFMA(acc, a, b)   the same for one float, rounding exactly as VFMA */
#include <string.h>

#include "dsp.h"

/* An MR x (NV vectors) tile of outputs over all k: accumulators stay in
 * registers, each B vector is loaded once and used MR times. */
#define DEFINE_TILE(MR, NV)                                                              \
  static inline void SUFFIX(tile_##MR##x##NV)(const ct_run_gemm *g, int64_t row,         \
                                              int64_t col) {                             \
    vec acc[MR][NV];                                                                     \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                   \
          VSET1(g->bias[row + r]);                                                       \
    }                                                                                    \
    const float *a = g->a + row * g->k;                                                  \
    for (int64_t k = 0; k < g->k; k++) {                                                 \
      const float *b = g->rows[k] + col;                                                 \
      vec bv[NV];                                                                        \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bv[v] = VLOAD(b + v * VW);    \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                             \
        vec av = VSET1(a[r * g->k + k]);                                                 \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                 \
            VFMA(acc[r][v], av, bv[v]);                                                  \
      }                                                                                  \
    }                                                                                    \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                               \
          VSTORE(g->dst + (row + r) * g->dst_stride + col + v * VW, acc[r][v]);          \
    }                                                                                    \
  }

DEFINE_TILE(4, 2)
DEFINE_TILE(3, 2)
DEFINE_TILE(2, 2)
DEFINE_TILE(1, 4)
DEFINE_TILE(1, 2)
DEFINE_TILE(4, 1)
DEFINE_TILE(3, 1)
DEFINE_TILE(2, 1)
DEFINE_TILE(1, 1)

/* Outputs past the last whole vector, one at a time, same sum, same order. */
static void SUFFIX(tail)(const ct_run_gemm *g, int64_t row, int64_t rows, int64_t col) {
  for (int64_t r = row; r < row + rows; r++)
    for (int64_t i = col; i < g->n; i++) {
      float acc = g->bias[r];
      const float *a = g->a + r * g->k;
      for (int64_t k = 0; k < g->k; k++)
        acc = SFMA(acc, a[k], g->rows[k][i]);
      g->dst[r * g->dst_stride + i] = acc;
    }
}

static void SUFFIX(run_gemm)(const ct_run_gemm *g) {
  const int64_t wide = g->n / (2 * VW) * (2 * VW), whole = g->n / VW * VW;
  for (int64_t row = 0; row < g->m;) {
    const int64_t rows = g->m - row >= 4 ? 4 : g->m - row;
    int64_t col = 0;
    if (rows == 1) {
      for (; col + 4 * VW <= g->n; col += 4 * VW)
        SUFFIX(tile_1x4)(g, row, col);
    }
    for (; col < wide; col += 2 * VW) {
      switch (rows) {
      case 4:
        SUFFIX(tile_4x2)(g, row, col);
        break;
      case 3:
        SUFFIX(tile_3x2)(g, row, col);
        break;
      case 2:
        SUFFIX(tile_2x2)(g, row, col);
        break;
      default:
        SUFFIX(tile_1x2)(g, row, col);
        break;
      }
    }
    for (; col < whole; col += VW) {
      switch (rows) {
      case 4:
        SUFFIX(tile_4x1)(g, row, col);
        break;
      case 3:
        SUFFIX(tile_3x1)(g, row, col);
        break;
      case 2:
        SUFFIX(tile_2x1)(g, row, col);
        break;
      default:
        SUFFIX(tile_1x1)(g, row, col);
        break;
      }
    }
    SUFFIX(tail)(g, row, rows, col);
    row += rows;
  }
}

/* Phases back into output order. Pure copies: no rounding involved. */
static void SUFFIX(interleave)(const ct_interleave *il) {
  const int64_t n = il->n, s = il->s, first = il->first;
  if (s == 1) {
    memcpy(il->out, il->phases[0] + (first - il->phase_start[0]),
           (size_t)n * sizeof(float));
    return;
  }
  int64_t x = 0;
  if (s == 2) {
    /* out[2i] and out[2i + 1] come from the phases of even and odd x. */
    const int64_t re = first % 2, ro = (first + 1) % 2;
    const float *even = il->phases[re] + (first / 2 - il->phase_start[re]);
    const float *odd = il->phases[ro] + ((first + 1) / 2 - il->phase_start[ro]);
    const int64_t pairs = n / 2;
    int64_t i = 0;
#ifdef VINTERLEAVE2
    for (; i + VW <= pairs; i += VW)
      VINTERLEAVE2(even + i, odd + i, il->out + 2 * i);
#endif
    for (; i < pairs; i++) {
      il->out[2 * i] = even[i];
      il->out[2 * i + 1] = odd[i];
    }
    x = 2 * pairs;
  }
  for (; x < n; x++) {
    const int64_t q = x + first, r = q % s;
    il->out[x] = il->phases[r][q / s - il->phase_start[r]];
  }
}

const ct_dsp SUFFIX(ct_dsp_table) = {
    .name = LEVEL_NAME,
    .run_gemm = SUFFIX(run_gemm),
    .interleave = SUFFIX(interleave),
};
