/* The primitives of kernels/dsp.h, written once for any vector width.
 * Included by dsp-c.c, dsp-avx2.c and dsp-avx512.c after defining:
 *   SUFFIX(name)      per-level function names
 *   VW                floats per vector
 *   vec, VLOAD, VSTORE, VSET1
 *   VFMA(acc, a, b)   acc + a*b (fused on SIMD levels)
 *   SFMA(acc, a, b)   the same for one float, rounding exactly as VFMA */
#include <stdbool.h>
#include <string.h>

#include "dsp.h"

/* An MR x (NV vectors) tile of outputs over products [k0, k1): accumulators
 * stay in registers, each input vector is loaded once and used MR times.
 * The first block starts from the bias, later ones from the partial sums
 * stored by the previous block: storing and reloading a float is exact, so
 * the sum is the same chain of fused multiply-adds however K is cut. */
/* Where output row r lives: a row of dst, or where dst_rows says. */
static inline float *SUFFIX(dst_row)(const ct_run_gemm *g, int64_t r) {
  return g->dst_rows ? g->dst_rows[r] : g->dst + r * g->dst_stride;
}

#define DEFINE_TILE_WITH(NAME, MR, NV, B_ROW)                                            \
  static inline void SUFFIX(NAME)(const ct_run_gemm *g, int64_t row, int64_t col,        \
                                  int64_t k0, int64_t k1, const float *panel) {          \
    vec acc[MR][NV];                                                                     \
    float *dst[MR];                                                                      \
    (void)panel;                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
      dst[r] = SUFFIX(dst_row)(g, row + r) + col;                                        \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                   \
          k0 == 0 ? VSET1(g->bias[row + r]) : VLOAD(dst[r] + v * VW);                    \
    }                                                                                    \
    const float *a = g->a + row * g->k; /* row is a multiple of CT_GEMM_MR */            \
    for (int64_t k = k0; k < k1; k++) {                                                  \
      const float *b = B_ROW;                                                            \
      vec bv[NV];                                                                        \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bv[v] = VLOAD(b + v * VW);    \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                             \
        vec av = VSET1(a[k * CT_GEMM_MR + r]);                                           \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                 \
            VFMA(acc[r][v], av, bv[v]);                                                  \
      }                                                                                  \
    }                                                                                    \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                               \
          VSTORE(dst[r] + v * VW, acc[r][v]);                                            \
    }                                                                                    \
  }

/* Input read through the product's row pointer, or from a packed panel of
 * 2-vector-wide columns, product after product (contiguous). */
#define DEFINE_TILE(MR, NV) DEFINE_TILE_WITH(tile_##MR##x##NV, MR, NV, g->rows[k] + col)
#define DEFINE_PACKED_TILE(MR)                                                           \
  DEFINE_TILE_WITH(packed_##MR, MR, 2, panel + (k - k0) * 2 * VW)

DEFINE_PACKED_TILE(6)
DEFINE_PACKED_TILE(5)
DEFINE_PACKED_TILE(4)
DEFINE_PACKED_TILE(3)
DEFINE_PACKED_TILE(2)
DEFINE_PACKED_TILE(1)

/* At least 8 accumulators where the rows allow: a fused multiply-add has
 * a latency of about four cycles and two issue per cycle. */
DEFINE_TILE(1, 8)
DEFINE_TILE(2, 4)
DEFINE_TILE(3, 3)
DEFINE_TILE(6, 2)
DEFINE_TILE(5, 2)
DEFINE_TILE(4, 2)
DEFINE_TILE(3, 2)
DEFINE_TILE(2, 2)
DEFINE_TILE(1, 4)
DEFINE_TILE(1, 2)
DEFINE_TILE(6, 1)
DEFINE_TILE(5, 1)
DEFINE_TILE(4, 1)
DEFINE_TILE(3, 1)
DEFINE_TILE(2, 1)
DEFINE_TILE(1, 1)

/* Outputs past the last whole vector, one at a time, same sum, same order. */
static void SUFFIX(tail)(const ct_run_gemm *g, int64_t row, int64_t rows, int64_t col,
                         int64_t end, int64_t k0, int64_t k1) {
  for (int64_t r = row; r < row + rows; r++)
    for (int64_t i = col; i < end; i++) {
      float *dst = SUFFIX(dst_row)(g, r) + i;
      float acc = k0 == 0 ? g->bias[r] : *dst;
      const float *a = g->a + (r / CT_GEMM_MR) * CT_GEMM_MR * g->k + r % CT_GEMM_MR;
      for (int64_t k = k0; k < k1; k++)
        acc = SFMA(acc, a[k * CT_GEMM_MR], g->rows[k][i]);
      *dst = acc;
    }
}

#ifdef VMASK
/* The last partial vector of MR rows, with masked loads and stores. */
#define DEFINE_MASKED_TILE(MR)                                                           \
  static inline void SUFFIX(masked_##MR)(const ct_run_gemm *g, int64_t row, int64_t col, \
                                         int64_t n, int64_t k0, int64_t k1) {            \
    const VMASK_T mask = VMASK(n);                                                       \
    float *dst[MR];                                                                      \
    vec acc[MR];                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
      dst[r] = SUFFIX(dst_row)(g, row + r) + col;                                        \
      acc[r] = k0 == 0 ? VSET1(g->bias[row + r]) : VMLOAD(dst[r], mask);                 \
    }                                                                                    \
    const float *a = g->a + row * g->k;                                                  \
    for (int64_t k = k0; k < k1; k++) {                                                  \
      const vec b = VMLOAD(g->rows[k] + col, mask);                                      \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r] =                      \
          VFMA(acc[r], VSET1(a[k * CT_GEMM_MR + r]), b);                                 \
    }                                                                                    \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) VMSTORE(dst[r], mask, acc[r]);  \
  }
DEFINE_MASKED_TILE(6)
DEFINE_MASKED_TILE(5)
DEFINE_MASKED_TILE(4)
DEFINE_MASKED_TILE(3)
DEFINE_MASKED_TILE(2)
DEFINE_MASKED_TILE(1)

static void SUFFIX(masked_tail)(const ct_run_gemm *g, int64_t row, int64_t rows,
                                int64_t col, int64_t n, int64_t k0, int64_t k1) {
  switch (rows) {
  case 6:
    SUFFIX(masked_6)(g, row, col, n, k0, k1);
    break;
  case 5:
    SUFFIX(masked_5)(g, row, col, n, k0, k1);
    break;
  case 4:
    SUFFIX(masked_4)(g, row, col, n, k0, k1);
    break;
  case 3:
    SUFFIX(masked_3)(g, row, col, n, k0, k1);
    break;
  case 2:
    SUFFIX(masked_2)(g, row, col, n, k0, k1);
    break;
  default:
    SUFFIX(masked_1)(g, row, col, n, k0, k1);
    break;
  }
}
#endif

/* Rows [row, row + rows) (rows <= 6) over columns [col, end), products
 * [k0, k1): widest tiles first. */
static void SUFFIX(tiles)(const ct_run_gemm *g, int64_t row, int64_t rows, int64_t col,
                          int64_t end, int64_t k0, int64_t k1) {
  if (rows == 1) {
    for (; col + 8 * VW <= end; col += 8 * VW)
      SUFFIX(tile_1x8)(g, row, col, k0, k1, NULL);
    for (; col + 4 * VW <= end; col += 4 * VW)
      SUFFIX(tile_1x4)(g, row, col, k0, k1, NULL);
  } else if (rows == 2) {
    for (; col + 4 * VW <= end; col += 4 * VW)
      SUFFIX(tile_2x4)(g, row, col, k0, k1, NULL);
  } else if (rows == 3) {
    for (; col + 3 * VW <= end; col += 3 * VW)
      SUFFIX(tile_3x3)(g, row, col, k0, k1, NULL);
  }
  for (; col + 2 * VW <= end; col += 2 * VW) {
    switch (rows) {
    case 6:
      SUFFIX(tile_6x2)(g, row, col, k0, k1, NULL);
      break;
    case 5:
      SUFFIX(tile_5x2)(g, row, col, k0, k1, NULL);
      break;
    case 4:
      SUFFIX(tile_4x2)(g, row, col, k0, k1, NULL);
      break;
    case 3:
      SUFFIX(tile_3x2)(g, row, col, k0, k1, NULL);
      break;
    case 2:
      SUFFIX(tile_2x2)(g, row, col, k0, k1, NULL);
      break;
    default:
      SUFFIX(tile_1x2)(g, row, col, k0, k1, NULL);
      break;
    }
  }
  for (; col + VW <= end; col += VW) {
    switch (rows) {
    case 6:
      SUFFIX(tile_6x1)(g, row, col, k0, k1, NULL);
      break;
    case 5:
      SUFFIX(tile_5x1)(g, row, col, k0, k1, NULL);
      break;
    case 4:
      SUFFIX(tile_4x1)(g, row, col, k0, k1, NULL);
      break;
    case 3:
      SUFFIX(tile_3x1)(g, row, col, k0, k1, NULL);
      break;
    case 2:
      SUFFIX(tile_2x1)(g, row, col, k0, k1, NULL);
      break;
    default:
      SUFFIX(tile_1x1)(g, row, col, k0, k1, NULL);
      break;
    }
  }
#ifdef VMASK
  /* The last partial vector with masked loads and stores: same chain of
   * fused multiply-adds per lane as everywhere else. */
  if (col < end) {
    SUFFIX(masked_tail)(g, row, rows, col, end - col, k0, k1);
    col = end;
  }
#endif
  SUFFIX(tail)(g, row, rows, col, end, k0, k1);
}

/* Copies the block's input, 2-vector-wide columns at a time, into a
 * contiguous panel: many channels' rows otherwise alias in the cache. Each
 * row is read from start to end before the next, one stream the hardware
 * prefetcher follows, not k streams of 128 bytes at a time. */
static int64_t SUFFIX(pack_panel)(const ct_run_gemm *g, int64_t jc, int64_t end,
                                  int64_t k0, int64_t k1) {
  const int64_t tiles = (end - jc) / (2 * VW);
  for (int64_t k = k0; k < k1; k++)
    for (int64_t t = 0; t < tiles; t++)
      memcpy(g->pack + (t * (k1 - k0) + (k - k0)) * 2 * VW, g->rows[k] + jc + t * 2 * VW,
             2 * VW * sizeof(float));
  return tiles;
}

static void SUFFIX(packed_tile)(const ct_run_gemm *g, int64_t row, int64_t rows,
                                int64_t col, int64_t k0, int64_t k1, const float *panel) {
  switch (rows) {
  case 6:
    SUFFIX(packed_6)(g, row, col, k0, k1, panel);
    break;
  case 5:
    SUFFIX(packed_5)(g, row, col, k0, k1, panel);
    break;
  case 4:
    SUFFIX(packed_4)(g, row, col, k0, k1, panel);
    break;
  case 3:
    SUFFIX(packed_3)(g, row, col, k0, k1, panel);
    break;
  case 2:
    SUFFIX(packed_2)(g, row, col, k0, k1, panel);
    break;
  default:
    SUFFIX(packed_1)(g, row, col, k0, k1, panel);
    break;
  }
}

static void SUFFIX(run_gemm)(const ct_run_gemm *g) {
  /* Packing pays off when several row tiles reuse the panel. */
  const bool pack = g->pack && g->m > 6;
  /* Few products: wider panels in the same scratch, so each input row is
   * read in longer stretches (what the prefetchers follow). */
  const int64_t kc = g->k < CT_GEMM_KC ? g->k : CT_GEMM_KC;
  int64_t nc = CT_GEMM_KC * CT_GEMM_NC / (kc > 0 ? kc : 1) / (2 * VW) * (2 * VW);
  if (nc > 8 * CT_GEMM_NC)
    nc = 8 * CT_GEMM_NC;
  for (int64_t jc = 0; jc < g->n; jc += nc) {
    const int64_t end = jc + nc < g->n ? jc + nc : g->n;
    for (int64_t kc = 0; kc < g->k; kc += CT_GEMM_KC) {
      const int64_t k1 = kc + CT_GEMM_KC < g->k ? kc + CT_GEMM_KC : g->k;
      const int64_t packed = pack ? SUFFIX(pack_panel)(g, jc, end, kc, k1) : 0;
      const int64_t rest = jc + packed * 2 * VW;
      for (int64_t row = 0; row < g->m; row += CT_GEMM_MR) {
        const int64_t rows = g->m - row < CT_GEMM_MR ? g->m - row : CT_GEMM_MR;
        for (int64_t t = 0; t < packed; t++)
          SUFFIX(packed_tile)
        (g, row, rows, jc + t * 2 * VW, kc, k1, g->pack + t * (k1 - kc) * 2 * VW);
        SUFFIX(tiles)(g, row, rows, rest, end, kc, k1);
      }
    }
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
#ifdef VTRANSPOSE8_STORE
  if (s == 8) {
    /* Blocks of 8 positions of all 8 phases, transposed in registers:
     * scalar only up to the first phase-0 output and after the last
     * block. */
    const int64_t head = (8 - first % 8) % 8 < n ? (8 - first % 8) % 8 : n;
    for (; x < head; x++) {
      const int64_t q = x + first, r = q % 8;
      il->out[x] = il->phases[r][q / 8 - il->phase_start[r]];
    }
    for (; x + 8 * VW <= n; x += 8 * VW) {
      const int64_t m = (x + first) / 8;
      const float *src[8];
      for (int r = 0; r < 8; r++)
        src[r] = il->phases[r] + (m - il->phase_start[r]);
      VTRANSPOSE8_STORE(src, il->out + x);
    }
    for (; x < n; x++) {
      const int64_t q = x + first, r = q % 8;
      il->out[x] = il->phases[r][q / 8 - il->phase_start[r]];
    }
    return;
  }
#endif
  if (x < n) { /* other strides: one phase at a time, no division per output */
    for (int64_t r = 0; r < s; r++) {
      int64_t x0 = ((r - first) % s + s) % s;
      if (x0 < x)
        x0 += (x - x0 + s - 1) / s * s;
      const float *src = il->phases[r] + ((x0 + first) / s - il->phase_start[r]);
      for (int64_t i = x0; i < n; i += s)
        il->out[i] = *src++;
    }
  }
}

/* Pairs of rows (2c, 2c + 1) are channel c's two phases of a stride-2 run
 * that read the same inputs: each input vector is loaded once for both, and
 * the results are interleaved in registers and stored once, in output
 * order: dst[c * dst_stride + 2 * i + r]. One pass over all products (the
 * caller keeps k <= CT_GEMM_KC), each output the same chain of fused
 * multiply-adds from its bias as run_gemm computes. */
#define DEFINE_PAIR_TILE(MR, NV)                                                         \
  static inline void SUFFIX(pair_##MR##x##NV)(const ct_run_gemm *g, int64_t row,         \
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
        vec av = VSET1(a[k * CT_GEMM_MR + r]);                                           \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                 \
            VFMA(acc[r][v], av, bv[v]);                                                  \
      }                                                                                  \
    }                                                                                    \
    _Pragma("GCC unroll 8") for (int c = 0; c < MR / 2; c++) {                           \
      float *o = g->dst + (row / 2 + c) * g->dst_stride + 2 * col;                       \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                               \
          VSTORE_PAIR(o + 2 * v * VW, acc[2 * c][v], acc[2 * c + 1][v]);                 \
    }                                                                                    \
  }
DEFINE_PAIR_TILE(6, 2)
DEFINE_PAIR_TILE(4, 2)
DEFINE_PAIR_TILE(2, 4)
DEFINE_PAIR_TILE(2, 2)
DEFINE_PAIR_TILE(6, 1)
DEFINE_PAIR_TILE(4, 1)
DEFINE_PAIR_TILE(2, 1)

#ifdef VMASK
/* The last n < VW positions of a pair tile, masked: 2n outputs per channel
 * over the two interleaved vectors. */
#define DEFINE_MASKED_PAIR_TILE(MR)                                                      \
  static inline void SUFFIX(masked_pair_##MR)(const ct_run_gemm *g, int64_t row,         \
                                              int64_t col, int64_t n) {                  \
    const VMASK_T mask = VMASK(n);                                                       \
    const VMASK_T lo_mask = VMASK(2 * n < VW ? 2 * n : VW);                              \
    const VMASK_T hi_mask = VMASK(2 * n > VW ? 2 * n - VW : 0);                          \
    vec acc[MR];                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r] =                        \
        VSET1(g->bias[row + r]);                                                         \
    const float *a = g->a + row * g->k;                                                  \
    for (int64_t k = 0; k < g->k; k++) {                                                 \
      const vec b = VMLOAD(g->rows[k] + col, mask);                                      \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r] =                      \
          VFMA(acc[r], VSET1(a[k * CT_GEMM_MR + r]), b);                                 \
    }                                                                                    \
    _Pragma("GCC unroll 8") for (int c = 0; c < MR / 2; c++) {                           \
      float *o = g->dst + (row / 2 + c) * g->dst_stride + 2 * col;                       \
      VMSTORE(o, lo_mask, VPAIR_LO(acc[2 * c], acc[2 * c + 1]));                         \
      VMSTORE(o + VW, hi_mask, VPAIR_HI(acc[2 * c], acc[2 * c + 1]));                    \
    }                                                                                    \
  }
DEFINE_MASKED_PAIR_TILE(6)
DEFINE_MASKED_PAIR_TILE(4)
DEFINE_MASKED_PAIR_TILE(2)
#endif

static void SUFFIX(run_pairs)(const ct_run_gemm *g) {
  for (int64_t jc = 0; jc < g->n; jc += CT_GEMM_NC) {
    const int64_t end = jc + CT_GEMM_NC < g->n ? jc + CT_GEMM_NC : g->n;
    for (int64_t row = 0; row < g->m; row += CT_GEMM_MR) {
      const int64_t rows = g->m - row < CT_GEMM_MR ? g->m - row : CT_GEMM_MR;
      int64_t col = jc;
      if (rows == 2)
        for (; col + 4 * VW <= end; col += 4 * VW)
          SUFFIX(pair_2x4)(g, row, col);
      for (; col + 2 * VW <= end; col += 2 * VW) {
        if (rows == 6)
          SUFFIX(pair_6x2)(g, row, col);
        else if (rows == 4)
          SUFFIX(pair_4x2)(g, row, col);
        else
          SUFFIX(pair_2x2)(g, row, col);
      }
      for (; col + VW <= end; col += VW) {
        if (rows == 6)
          SUFFIX(pair_6x1)(g, row, col);
        else if (rows == 4)
          SUFFIX(pair_4x1)(g, row, col);
        else
          SUFFIX(pair_2x1)(g, row, col);
      }
#ifdef VMASK
      if (col < end) {
        if (rows == 6)
          SUFFIX(masked_pair_6)(g, row, col, end - col);
        else if (rows == 4)
          SUFFIX(masked_pair_4)(g, row, col, end - col);
        else
          SUFFIX(masked_pair_2)(g, row, col, end - col);
        col = end;
      }
#endif
      /* The last positions one at a time: same sum, same order. */
      for (int64_t r = row; r < row + rows; r++) {
        const float *a = g->a + (r / CT_GEMM_MR) * CT_GEMM_MR * g->k + r % CT_GEMM_MR;
        for (int64_t i = col; i < end; i++) {
          float acc = g->bias[r];
          for (int64_t k = 0; k < g->k; k++)
            acc = SFMA(acc, a[k * CT_GEMM_MR], g->rows[k][i]);
          g->dst[(r / 2) * g->dst_stride + 2 * i + r % 2] = acc;
        }
      }
    }
  }
}

const ct_dsp SUFFIX(ct_dsp_table) = {
    .name = LEVEL_NAME,
    .run_gemm = SUFFIX(run_gemm),
    .interleave = SUFFIX(interleave),
    .run_pairs = SUFFIX(run_pairs),
};
