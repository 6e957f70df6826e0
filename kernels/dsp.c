#include "dsp.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

extern const ct_dsp ct_dsp_table_c;
#ifdef CT_HAVE_X86_LEVELS
extern const ct_dsp ct_dsp_table_avx2;
extern const ct_dsp ct_dsp_table_avx512;
#endif

static const ct_dsp *forced;

const ct_dsp *ct_dsp_for_level(ct_dsp_level level) {
  switch (level) {
  case CT_DSP_C:
    return &ct_dsp_table_c;
#ifdef CT_HAVE_X86_LEVELS
  case CT_DSP_AVX2:
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
               ? &ct_dsp_table_avx2
               : NULL;
  case CT_DSP_AVX512:
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")
               ? &ct_dsp_table_avx512
               : NULL;
#endif
  default:
    return NULL;
  }
}

const ct_dsp *ct_dsp_default(void) {
  if (forced)
    return forced;
  const char *wanted = getenv("CT_DSP");
  for (int level = CT_DSP_LEVELS - 1; level >= 0; level--) {
    const ct_dsp *dsp = ct_dsp_for_level((ct_dsp_level)level);
    if (dsp && (!wanted || strcmp(wanted, dsp->name) == 0))
      return dsp;
  }
  return &ct_dsp_table_c;
}

void ct_dsp_force(const ct_dsp *dsp) {
  forced = dsp;
}
