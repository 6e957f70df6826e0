#include "dsp.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

/* Each level's compute entries (dsp-impl.h) and conversion fill
 * (convert-impl.h). */
extern const ct_dsp ct_dsp_table_c;
void ct_convert_fill_c(ct_dsp *dsp);
#ifdef CT_HAVE_X86_LEVELS
extern const ct_dsp ct_dsp_table_avx2;
extern const ct_dsp ct_dsp_table_avx512;
void ct_convert_fill_avx2(ct_dsp *dsp);
void ct_convert_fill_avx512(ct_dsp *dsp);
void ct_convert_fill_avx512vbmi(ct_dsp *dsp);
#endif

bool ct_dsp_fill(ct_dsp *dsp, ct_dsp_level level, unsigned features) {
  switch (level) {
  case CT_DSP_C:
    *dsp = ct_dsp_table_c;
    ct_convert_fill_c(dsp);
    return true;
#ifdef CT_HAVE_X86_LEVELS
  case CT_DSP_AVX2:
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
      return false;
    *dsp = ct_dsp_table_avx2;
    ct_convert_fill_avx2(dsp);
    return true;
  case CT_DSP_AVX512:
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("fma"))
      return false;
    *dsp = ct_dsp_table_avx512;
    /* The byte permutes of 3-byte pixels need VBMI (Ice Lake, Zen 4 and
     * later; not Skylake-X): without it, the level's shuffles. */
    if ((features & CT_CPU_AVX512VBMI) && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vbmi"))
      ct_convert_fill_avx512vbmi(dsp);
    else
      ct_convert_fill_avx512(dsp);
    return true;
#endif
  default:
    return false;
  }
}

static ct_dsp tables[CT_DSP_LEVELS];
static bool runs[CT_DSP_LEVELS];
static once_flag filled = ONCE_FLAG_INIT;
static const ct_dsp *forced;

static void fill_tables(void) {
  for (int level = 0; level < CT_DSP_LEVELS; level++)
    runs[level] = ct_dsp_fill(&tables[level], (ct_dsp_level)level, CT_CPU_ALL);
}

const ct_dsp *ct_dsp_for_level(ct_dsp_level level) {
  if ((unsigned)level >= CT_DSP_LEVELS)
    return NULL;
  call_once(&filled, fill_tables);
  return runs[level] ? &tables[level] : NULL;
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
  return ct_dsp_for_level(CT_DSP_C);
}

void ct_dsp_force(const ct_dsp *dsp) {
  forced = dsp;
}
