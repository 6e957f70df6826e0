/* The primitives of kernels/dsp.h, written once for any vector width.
 * Included by dsp-c.c, dsp-avx2.c and dsp-avx512.c after defining:
 *   SUFFIX(name)      per-level function names
 *   VW                floats per vector
 *   vec, VLOAD, VSTORE, VSET1
 *   VFMA(acc, a, b)   acc + a*b (fused on SIMD levels)
 *   SFMA(acc, a, b)   the same for one float, rounding exactly as VFMA
 * and optionally VSTREAM(p, v) (a non-temporal store of an aligned vector)
 * and VFENCE() (orders those stores before what follows). */
#include <stdbool.h>
#include <string.h>

#include "dsp.h"

#ifndef VSTREAM
#define VSTREAM(p, v) VSTORE((p), (v))
#define VFENCE() ((void)0)
#endif
#ifdef VPAIR_LO
#define VSTREAM_PAIR(p, e, o)                                                            \
  (VSTREAM((p), VPAIR_LO((e), (o))), VSTREAM((p) + VW, VPAIR_HI((e), (o))))
#else
#define VSTREAM_PAIR(p, e, o) VSTORE_PAIR((p), (e), (o))
#endif

/* Non-temporal stores pay only for whole 64-byte lines: a tile streams its
 * rows when they start a line and it writes whole lines of them. */
static inline bool SUFFIX(starts_line)(const float *p) {
  return ((uintptr_t)p & 63) == 0;
}
static inline bool SUFFIX(streams)(const ct_run_gemm *g, int nv) {
  return g->nontemporal && g->k <= CT_GEMM_KC && (nv * VW) % 16 == 0;
}

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
    const float *a = ct_packed_tile(g->a, row, g->k); /* row: a multiple of MR */        \
    for (int64_t k = k0; k < k1; k++) {                                                  \
      const float *b = B_ROW;                                                            \
      vec bv[NV];                                                                        \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bv[v] = VLOAD(b + v * VW);    \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                             \
        vec av = VSET1(a[ct_packed_in_tile(r, k)]);                                      \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                 \
            VFMA(acc[r][v], av, bv[v]);                                                  \
      }                                                                                  \
    }                                                                                    \
    const bool stream_ = SUFFIX(streams)(g, NV);                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
      if (stream_ && SUFFIX(starts_line)(dst[r])) {                                      \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                             \
            VSTREAM(dst[r] + v * VW, acc[r][v]);                                         \
      } else {                                                                           \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                             \
            VSTORE(dst[r] + v * VW, acc[r][v]);                                          \
      }                                                                                  \
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
      for (int64_t k = k0; k < k1; k++)
        acc = SFMA(acc, g->a[ct_packed_index(r, k, g->k)], g->rows[k][i]);
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
    const float *a = ct_packed_tile(g->a, row, g->k);                                    \
    for (int64_t k = k0; k < k1; k++) {                                                  \
      const vec b = VMLOAD(g->rows[k] + col, mask);                                      \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r] =                      \
          VFMA(acc[r], VSET1(a[ct_packed_in_tile(r, k)]), b);                            \
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
      /* The next call's rows (its panel) are fetched into L2 a slice per
       * row tile: spread over the computation, the requests never pile up
       * beyond what the memory system keeps track of. */
      const int64_t row_tiles = (g->m + CT_GEMM_MR - 1) / CT_GEMM_MR;
      const int64_t per_tile = (k1 - kc + row_tiles - 1) / row_tiles;
      /* The same share of the next call's columns as this panel is of ours. */
      const int64_t next_n = g->next_n > 0 ? g->next_n : g->n;
      const int64_t f0 = jc * next_n / g->n, f1 = rest * next_n / g->n;
      for (int64_t row = 0; row < g->m; row += CT_GEMM_MR) {
        const int64_t rows = g->m - row < CT_GEMM_MR ? g->m - row : CT_GEMM_MR;
        const int64_t pk0 = kc + row / CT_GEMM_MR * per_tile;
        for (int64_t k = pk0; g->next_rows && k < pk0 + per_tile && k < k1; k++)
          for (int64_t f = f0; f < f1; f += 16)            /* a line per 16 floats */
            __builtin_prefetch(g->next_rows[k] + f, 0, 2); /* into L2 */
        for (int64_t t = 0; t < packed; t++)
          SUFFIX(packed_tile)
        (g, row, rows, jc + t * 2 * VW, kc, k1, g->pack + t * (k1 - kc) * 2 * VW);
        SUFFIX(tiles)(g, row, rows, rest, end, kc, k1);
      }
    }
  }
  if (g->nontemporal)
    VFENCE();
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
    for (; x + 64 <= n; x += 64) {
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
 * order. One pass over all products (the caller keeps k <= CT_GEMM_KC),
 * each output the same chain of fused multiply-adds from its bias as
 * run_gemm computes. SHIFT 1 pairs phase 1 at position i with phase 0 at
 * i + 1 (the pairs one output earlier; see dsp.h). Output of channel c at
 * position col + i: out[c * out_stride + 2 * i + 0/1]. */
#define DEFINE_PAIR_TILE(MR, NV, SHIFT)                                                  \
  static inline void SUFFIX(pair_##MR##x##NV##_##SHIFT)(                                 \
      const ct_run_gemm *g, int64_t row, int64_t col, float *out, int64_t out_stride) {  \
    vec acc[MR][NV];                                                                     \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                   \
          VSET1(g->bias[row + r]);                                                       \
    }                                                                                    \
    const float *a = ct_packed_tile(g->a, row, g->k);                                    \
    for (int64_t k = 0; k < g->k; k++) {                                                 \
      const float *b = g->rows[k] + col;                                                 \
      vec bv[2][NV]; /* [phase]: SHIFT reads phase 0 one position on */                  \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                             \
        bv[1][v] = VLOAD(b + v * VW);                                                    \
        bv[0][v] = SHIFT ? VLOAD(b + 1 + v * VW) : bv[1][v];                             \
      }                                                                                  \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                             \
        vec av = VSET1(a[ct_packed_in_tile(r, k)]);                                      \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                 \
            VFMA(acc[r][v], av, bv[r % 2][v]);                                           \
      }                                                                                  \
    }                                                                                    \
    const bool stream_ = g->nontemporal;                                                 \
    _Pragma("GCC unroll 8") for (int c = 0; c < MR / 2; c++) {                           \
      float *o = out + c * out_stride;                                                   \
      const int first = SHIFT ? 2 * c + 1 : 2 * c, second = SHIFT ? 2 * c : 2 * c + 1;   \
      if (stream_ && SUFFIX(starts_line)(o)) {                                           \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                             \
            VSTREAM_PAIR(o + 2 * v * VW, acc[first][v], acc[second][v]);                 \
      } else {                                                                           \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                             \
            VSTORE_PAIR(o + 2 * v * VW, acc[first][v], acc[second][v]);                  \
      }                                                                                  \
    }                                                                                    \
  }
#define DEFINE_PAIR_TILES(SHIFT)                                                         \
  DEFINE_PAIR_TILE(6, 2, SHIFT)                                                          \
  DEFINE_PAIR_TILE(4, 2, SHIFT)                                                          \
  DEFINE_PAIR_TILE(2, 4, SHIFT)                                                          \
  DEFINE_PAIR_TILE(2, 2, SHIFT)                                                          \
  DEFINE_PAIR_TILE(6, 1, SHIFT)                                                          \
  DEFINE_PAIR_TILE(4, 1, SHIFT)                                                          \
  DEFINE_PAIR_TILE(2, 1, SHIFT)
DEFINE_PAIR_TILES(0)
DEFINE_PAIR_TILES(1)

#ifdef VMASK
/* The n < VW positions of a pair tile at col, masked: 2n outputs per
 * channel over the two interleaved vectors. */
#define DEFINE_MASKED_PAIR_TILE(MR)                                                      \
  static inline void SUFFIX(masked_pair_##MR)(const ct_run_gemm *g, int64_t row,         \
                                              int64_t col, int64_t n, float *out,        \
                                              int64_t out_stride) {                      \
    const VMASK_T mask = VMASK(n);                                                       \
    const VMASK_T lo_mask = VMASK(2 * n < VW ? 2 * n : VW);                              \
    const VMASK_T hi_mask = VMASK(2 * n > VW ? 2 * n - VW : 0);                          \
    const int shift = g->phase_pairs_shifted;                                            \
    vec acc[MR];                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r] =                        \
        VSET1(g->bias[row + r]);                                                         \
    const float *a = ct_packed_tile(g->a, row, g->k);                                    \
    for (int64_t k = 0; k < g->k; k++) {                                                 \
      const vec b1 = VMLOAD(g->rows[k] + col, mask);                                     \
      const vec b0 = shift ? VMLOAD(g->rows[k] + col + 1, mask) : b1;                    \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r] =                      \
          VFMA(acc[r], VSET1(a[ct_packed_in_tile(r, k)]), r % 2 ? b1 : b0);              \
    }                                                                                    \
    _Pragma("GCC unroll 8") for (int c = 0; c < MR / 2; c++) {                           \
      float *o = out + c * out_stride;                                                   \
      const vec first = acc[2 * c + shift], second = acc[2 * c + 1 - shift];             \
      VMSTORE(o, lo_mask, VPAIR_LO(first, second));                                      \
      VMSTORE(o + VW, hi_mask, VPAIR_HI(first, second));                                 \
    }                                                                                    \
  }
DEFINE_MASKED_PAIR_TILE(6)
DEFINE_MASKED_PAIR_TILE(4)
DEFINE_MASKED_PAIR_TILE(2)
#endif

/* Positions [col, end) of rows [row, row + rows) outside whole tiles: a
 * masked tile where the level has one, else (and after it) one at a time,
 * same sum, same order. */
static void SUFFIX(pair_rest)(const ct_run_gemm *g, int64_t row, int64_t rows,
                              int64_t col, int64_t end, float *out, int64_t out_stride) {
#ifdef VMASK
  for (; col < end; col += VW) {
    const int64_t n = end - col < VW ? end - col : VW;
    if (rows == 6)
      SUFFIX(masked_pair_6)(g, row, col, n, out, out_stride);
    else if (rows == 4)
      SUFFIX(masked_pair_4)(g, row, col, n, out, out_stride);
    else
      SUFFIX(masked_pair_2)(g, row, col, n, out, out_stride);
    out += 2 * n;
  }
#endif
  const int shift = g->phase_pairs_shifted;
  for (int64_t r = row; r < row + rows; r++) {
    /* Row r is the first of its pair's outputs when its phase is 0, or 1
     * when shifted; phase 0 of a shifted pair reads one position on. */
    const int phase = (int)(r % 2), lane = phase ^ shift, ahead = shift && phase == 0;
    for (int64_t i = col; i < end; i++) {
      float acc = g->bias[r];
      for (int64_t k = 0; k < g->k; k++)
        acc = SFMA(acc, g->a[ct_packed_index(r, k, g->k)], g->rows[k][i + ahead]);
      out[(r / 2 - row / 2) * out_stride + 2 * (i - col) + lane] = acc;
    }
  }
}

/* Where the stores of a channel's pairs first start a 64-byte line, if they
 * ever do: positions peeled off before the whole tiles. */
static int64_t SUFFIX(positions_to_line)(const float *out, int64_t n) {
  const uintptr_t addr = (uintptr_t)out;
  if (addr % (2 * sizeof(float)))
    return 0; /* every pair straddles: no position helps */
  const int64_t peel = (int64_t)((64 - addr % 64) % 64 / (2 * sizeof(float)));
  return peel < n ? peel : n;
}

/* The pair tile of MR rows and NV vectors, shifted or not. */
#define PAIR_TILE(MR, NV)                                                                \
  (shift ? SUFFIX(pair_##MR##x##NV##_1)(g, row, col, out, out_stride)                    \
         : SUFFIX(pair_##MR##x##NV##_0)(g, row, col, out, out_stride))

static void SUFFIX(pair_tiles)(const ct_run_gemm *g, int64_t row, int64_t rows,
                               int64_t col, int64_t end, float *out, int64_t out_stride,
                               int shift) {
  if (rows == 2)
    for (; col + 4 * VW <= end; col += 4 * VW, out += 8 * VW)
      PAIR_TILE(2, 4);
  for (; col + 2 * VW <= end; col += 2 * VW, out += 4 * VW)
    rows == 6 ? PAIR_TILE(6, 2) : rows == 4 ? PAIR_TILE(4, 2) : PAIR_TILE(2, 2);
  for (; col + VW <= end; col += VW, out += 2 * VW)
    rows == 6 ? PAIR_TILE(6, 1) : rows == 4 ? PAIR_TILE(4, 1) : PAIR_TILE(2, 1);
  SUFFIX(pair_rest)(g, row, rows, col, end, out, out_stride);
}
#undef PAIR_TILE

static void SUFFIX(run_phase_pairs)(const ct_run_gemm *g) {
  /* Whole tiles from where stores start a cache line: a vector store
   * across two lines costs two, and only whole lines stream. Tiles of few
   * rows store little for what they compute: not worth a masked head. */
  const int64_t peel =
      g->nontemporal || g->m >= CT_GEMM_MR ? SUFFIX(positions_to_line)(g->dst, g->n) : 0;
  for (int64_t jc = 0; jc < g->n; jc = jc < peel ? peel : jc + CT_GEMM_NC) {
    const int64_t stop = jc < peel ? peel : jc + CT_GEMM_NC;
    const int64_t end = stop < g->n ? stop : g->n;
    for (int64_t row = 0; row < g->m; row += CT_GEMM_MR) {
      const int64_t rows = g->m - row < CT_GEMM_MR ? g->m - row : CT_GEMM_MR;
      float *out = g->dst + (row / 2) * g->dst_stride + 2 * jc;
      if (jc < peel)
        SUFFIX(pair_rest)(g, row, rows, jc, end, out, g->dst_stride);
      else
        SUFFIX(pair_tiles)
      (g, row, rows, jc, end, out, g->dst_stride, g->phase_pairs_shifted);
    }
  }
  if (g->nontemporal)
    VFENCE();
}

const ct_dsp SUFFIX(ct_dsp_table) = {
    .name = LEVEL_NAME,
    .run_gemm = SUFFIX(run_gemm),
    .interleave = SUFFIX(interleave),
    .run_phase_pairs = SUFFIX(run_phase_pairs),
    .fast_shifted_pairs = VW >= 16,
};
