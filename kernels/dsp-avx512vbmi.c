/* The avx512 level's conversions with AVX-512 VBMI byte permutes (3-byte
 * pixels, 64 at a time). Built with -mavx512f -mavx512bw -mavx512vbmi -mfma;
 * ct_dsp_fill puts them in the avx512 table only where the CPU has VBMI.
 * The compute entries are dsp-avx512.c's. */
#define SUFFIX(name) name##_avx512vbmi
#include "convert-x86.h"
#include "convert-impl.h"
