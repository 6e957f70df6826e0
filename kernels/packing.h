/* The packed weight layout: how the weights of a matrix product are laid
 * out for the micro-kernels (dsp-impl.h), in one place. The layer's plans
 * (plan.c) pack through it and the kernels read through it; nothing else
 * knows the formula.
 *
 * An m x k matrix (m output rows, k products each) is cut into tiles of
 * CT_GEMM_MR rows; a tile holds its rows' products k by k, so that a tile
 * broadcasts consecutive addresses as the kernel walks the products: row
 * r, product j at (r / MR * k + j) * MR + r % MR. The last tile is padded
 * with zero rows. */
#ifndef CT_PACKING_H
#define CT_PACKING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Rows per tile: the tile the SIMD kernels hold in registers. */
enum { CT_GEMM_MR = 6 };

/* Floats of an m x k packed matrix. */
static inline int64_t ct_gemm_packed_size(int64_t m, int64_t k) {
  return (m + CT_GEMM_MR - 1) / CT_GEMM_MR * CT_GEMM_MR * k;
}

/* Where row r, product j of a packed matrix of k products per row lives. */
static inline int64_t ct_packed_index(int64_t r, int64_t j, int64_t k) {
  return (r / CT_GEMM_MR * k + j) * CT_GEMM_MR + r % CT_GEMM_MR;
}

/* The tile that starts at row `row` (a multiple of CT_GEMM_MR): row
 * row + i, product j at tile[ct_packed_in_tile(i, j)]. */
static inline const float *ct_packed_tile(const float *a, int64_t row, int64_t k) {
  return a + ct_packed_index(row, 0, k);
}
static inline int64_t ct_packed_in_tile(int64_t i, int64_t j) {
  return j * CT_GEMM_MR + i;
}

#ifdef __cplusplus
}
#endif

#endif
