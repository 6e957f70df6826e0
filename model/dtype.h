/* safetensors' dtypes, and the conversion of the float ones (F32, F16, BF16,
 * F64) from their little-endian bytes to float32 (and to double, for the
 * weight-norm fold). Internal to model/. */
#ifndef CT_MODEL_DTYPE_H
#define CT_MODEL_DTYPE_H

#include <glib.h>

typedef enum {
  CT_DT_BOOL,
  CT_DT_U8,
  CT_DT_I8,
  CT_DT_F8_E5M2,
  CT_DT_F8_E4M3,
  CT_DT_I16,
  CT_DT_U16,
  CT_DT_F16,
  CT_DT_BF16,
  CT_DT_I32,
  CT_DT_U32,
  CT_DT_F32,
  CT_DT_F64,
  CT_DT_I64,
  CT_DT_U64,
  CT_DT_COUNT
} ct_dtype;

/* The dtype named name (safetensors' spelling, e.g. "BF16"), or -1. */
int ct_dtype_lookup(const char *name);
const char *ct_dtype_name(int dt);
/* Bytes per element. */
int ct_dtype_size(int dt);
/* F32, F16, BF16 or F64: the dtypes a layer's tensors may have. */
gboolean ct_dtype_is_float(int dt);

/* IEEE round-to-nearest of a double to float32, defined for every value. */
float ct_f64_to_f32(double d);
/* count elements of the float dtype dt at src (any alignment, little-endian)
 * to float32 or to double (exact for every float dtype). */
void ct_dtype_to_f32(int dt, const guint8 *src, float *dst, size_t count);
void ct_dtype_to_f64(int dt, const guint8 *src, double *dst, size_t count);

#endif
