/* The compute primitives, one table per instruction-set level, filled once.
 *
 * A transposed convolution in polyphase form is, for every output run (a
 * contiguous stretch of one phase along the last axis), a small matrix
 * product: out[co][i] = bias[co] + sum_k a[co][k] * rows[k][i], where k walks
 * (taps, input channels) in a fixed order and rows[k] points at the input
 * run that product reads. Every level computes each output as
 * that sum in that order (fused multiply-adds on SIMD levels), whatever its
 * position in a vector or tail, so results never depend on how work is cut. */
#ifndef CT_DSP_H
#define CT_DSP_H

#include <stdbool.h>
#include <stdint.h>

#include "convert.h"
#include "packing.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_run_gemm {
  int64_t m;                /* output channels */
  int64_t k;                /* products per output */
  int64_t n;                /* outputs per channel (run length) */
  const float *a;           /* weights, packed (packing.h) */
  const float *bias;        /* [m] */
  const float *const *rows; /* [k] input runs */
  float *dst;               /* [m][n] */
  int64_t dst_stride;       /* between channels */
  float *const *dst_rows;   /* run_gemm: if not NULL, row r at dst_rows[r] instead */
  float *pack;              /* CT_GEMM_KC * CT_GEMM_NC floats of scratch, or NULL */
  /* The output is more than the caches hold and nobody reads it soon: whole
   * cache lines go out with non-temporal stores, which skip reading each
   * line from memory before overwriting it (values are the same). */
  bool nontemporal;
  /* run_phase_pairs: pairs of phase 1 at position i and phase 0 at i + 1 instead
   * of phase 0 and 1 at i, stored in that order from dst + 2 * i. Both give
   * every output the same sum; the caller picks the one whose stores fall
   * on even addresses. */
  bool phase_pairs_shifted;
  /* run_gemm: if not NULL, the input runs of the call that will follow
   * ([k], next_n columns; 0: n), prefetched into L2 a slice per row tile
   * while this call computes: input read straight from memory then arrives
   * in time. */
  const float *const *next_rows;
  int64_t next_n;
} ct_run_gemm;

/* Cache blocking of large products: a block of KC products x NC columns of
 * input stays in L2 while every tile of output channels walks it. */
enum { CT_GEMM_KC = 256, CT_GEMM_NC = 128 };

/* out[x] for x in [0, n): phase r = (x + first) % s takes
 * phases[r][(x + first) / s - phase_start[r]]. */
typedef struct ct_interleave {
  int64_t n, s, first;
  const float *const *phases;
  const int64_t *phase_start;
  float *out;
} ct_interleave;

typedef struct ct_dsp {
  const char *name;
  void (*run_gemm)(const ct_run_gemm *args);
  void (*interleave)(const ct_interleave *args);
  /* A stride-2 run whose two phases read the same inputs: rows in pairs
   * (channel c, phase 0 / 1), results written interleaved in output order,
   * dst[(row / 2) * dst_stride + 2 * i + row % 2] (see phase_pairs_shifted); m
   * even, k <= CT_GEMM_KC; bias per row; pack unused. */
  void (*run_phase_pairs)(const ct_run_gemm *args);
  /* Whether shifted pairs (ct_run_gemm.phase_pairs_shifted) run as fast as
   * unshifted ones: their second set of input vectors needs the registers
   * AVX-512 has. Elsewhere they are correct but slower. */
  bool fast_shifted_pairs;
  /* Conversions between the elements' buffers and channel-planar floats
   * (arguments and exact results in convert.h): bitwise the same at every
   * level. Video: 8-bit and 16-bit components of packed pixels to float
   * rows with zero borders, and back (clamped, scaled, rounded). Audio:
   * interleaved float32 frames to channel planes, and back. */
  void (*unpack_u8)(const ct_unpack *args);
  void (*unpack_u16)(const ct_unpack *args);
  void (*pack_u8)(const ct_pack *args);
  void (*pack_u16)(const ct_pack *args);
  void (*deinterleave_f32)(const ct_channels *args);
  void (*interleave_f32)(const ct_channels *args);
} ct_dsp;

typedef enum {
  CT_DSP_C = 0,
  CT_DSP_AVX2 = 1,
  CT_DSP_AVX512 = 2,
  CT_DSP_LEVELS
} ct_dsp_level;

/* The table of a level, or NULL if this build or CPU cannot run it. Filled
 * once, on first use, for this CPU. */
const ct_dsp *ct_dsp_for_level(ct_dsp_level level);

/* CPU features some entries use beyond their level's own: where the CPU
 * lacks one, the table is filled with the level's other versions. */
enum {
  CT_CPU_AVX512VBMI = 1 << 0, /* byte permutes (3-byte pixels), avx512 level */
  CT_CPU_ALL = CT_CPU_AVX512VBMI
};
/* Fills *dsp with the table of `level` as for a CPU that has only the
 * features of `features` (CT_CPU_*) it really has: how checkasm reaches
 * the versions another CPU would run. False (dsp untouched) if this build
 * or CPU cannot run the level. */
bool ct_dsp_fill(ct_dsp *dsp, ct_dsp_level level, unsigned features);
/* The best level this CPU runs, or the one named by the environment
 * variable CT_DSP (c, avx2, avx512) when it can run. */
const ct_dsp *ct_dsp_default(void);
/* Forces the default for later layers (tests); NULL restores the automatic
 * choice. */
void ct_dsp_force(const ct_dsp *dsp);

#ifdef __cplusplus
}
#endif

#endif
