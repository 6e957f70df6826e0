/* ONNX tensors (initializers, Constant values, attribute tensors): their
 * data type, dims and data checked against each other without converting
 * anything, data read from the file's own fields or from external data in
 * the model's folder, and the elements as the reader needs them. Internal to
 * model/. */
#ifndef CT_MODEL_ONNX_TENSOR_H
#define CT_MODEL_ONNX_TENSOR_H

#include "model/onnx-private.h"

/* "float32", "int64", ...; "data type 42" for an unknown one. */
const char *ct_onnx_dtype_name(ct_onnx *o, int dtype);
/* Bytes per element, or 0 for a type the reader does not take (strings,
 * complex numbers, unknown codes). */
int ct_onnx_dtype_size(int dtype);
gboolean ct_onnx_dtype_is_float(int dtype);

/* Whose a tensor is, for messages: an initializer (its name), or node
 * k's value attribute (initializer NULL). */
typedef struct {
  const char *initializer;
  int node;
} ct_tensor_owner;

/* Checks t and describes it in *out, its elements left where they are (or
 * read from external data). */
gboolean ct_otensor_read(ct_onnx *o, const Onnx__TensorProto *t, const ct_tensor_owner *w,
                         ct_otensor *out);

/* Element k as a double (every dtype), or as an int64 (integer dtypes and
 * bool; a float is truncated, and must be finite and in range). */
double ct_otensor_f64(const ct_otensor *t, gint64 k);
gint64 ct_otensor_i64(const ct_otensor *t, gint64 k);
/* Every element of a float tensor as float32 (float64 rounded to nearest). */
void ct_otensor_to_f32(const ct_otensor *t, float *out);

/* "[2, 3]" of t's dims. */
const char *ct_otensor_dims_text(ct_onnx *o, const ct_otensor *t);

#endif
