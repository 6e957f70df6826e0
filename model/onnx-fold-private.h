/* What the folders of model/onnx-fold.c (arithmetic, reductions) and
 * model/onnx-fold-shape.c (Constant, shapes, indexing, Cast) share: tensors
 * made against the load's budget, element access, axes. Internal to
 * model/. */
#ifndef CT_MODEL_ONNX_FOLD_PRIVATE_H
#define CT_MODEL_ONNX_FOLD_PRIVATE_H

#include "model/onnx-fold.h"
#include "model/onnx-tensor.h"

/* A float dtype (float32, float16, bfloat16, float64). */
gboolean ct_fold_is_float(int dtype);
/* A new tensor for node k's output, its elements zeroed, its size checked
 * against the element limit and the load's budget first. */
ct_otensor *ct_fold_new(ct_onnx *o, int k, int dtype, int rank, const gint64 *dims);
/* A tensor with t's elements and other dims (the same count). */
ct_otensor *ct_fold_reshaped(ct_onnx *o, const ct_otensor *t, int rank,
                             const gint64 *dims);
/* Stores element i: a float rounded to float32 for float32/16 tensors, as
 * ONNX computes them; an integer. Copies element j of s to i of d. */
void ct_fold_put_f(ct_otensor *t, gint64 i, double v);
void ct_fold_put_i(ct_otensor *t, gint64 i, gint64 v);
void ct_fold_copy(ct_otensor *d, gint64 i, const ct_otensor *s, gint64 j);
/* Node k's first output is t. */
void ct_fold_set_output(ct_onnx *o, int k, ct_otensor *t);
/* Constant input i (NULL if absent and not required). */
gboolean ct_fold_in(ct_onnx *o, int k, int i, gboolean required, ct_otensor **out);
/* t is a list of integers (rank 0 or 1), else refused; role names it. */
gboolean ct_fold_int_list(ct_onnx *o, int k, const ct_otensor *t, const char *role);
/* An axis in [-rank, rank) made non-negative; n of them, each once. */
gboolean ct_fold_axis(ct_onnx *o, int k, gint64 axis, int rank, int *out);
gboolean ct_fold_axes(ct_onnx *o, int k, const gint64 *v, int n, int rank, int *axes);
/* Axes as the node gives them: attribute "axes" or constant input i (when
 * i >= 0); *n = -1 when absent. */
gboolean ct_fold_raw_axes(ct_onnx *o, int k, int input, gint64 *v, int *n);
/* Row-major strides of dims; a multi-index advanced over dims (FALSE after
 * the last). */
void ct_fold_strides(const gint64 *dims, int rank, gint64 *strides);
gboolean ct_fold_next(gint64 *idx, const gint64 *dims, int rank);
/* An integer wrapped to an integer dtype's width, as C converts. */
gint64 ct_fold_wrap_int(gint64 v, int dtype);

/* The folders of onnx-fold-shape.c. */
gboolean ct_fold_constant(ct_onnx *o, int k);
gboolean ct_fold_constant_of_shape(ct_onnx *o, int k);
gboolean ct_fold_shape(ct_onnx *o, int k);
gboolean ct_fold_gather(ct_onnx *o, int k);
gboolean ct_fold_concat(ct_onnx *o, int k);
gboolean ct_fold_slice(ct_onnx *o, int k);
gboolean ct_fold_transpose(ct_onnx *o, int k);
gboolean ct_fold_reshape(ct_onnx *o, int k);
gboolean ct_fold_unsqueeze(ct_onnx *o, int k);
gboolean ct_fold_squeeze(ct_onnx *o, int k);
gboolean ct_fold_cast(ct_onnx *o, int k);

#endif
