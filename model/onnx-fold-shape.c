/* Folding of the operators that make, reshape, index and convert
 * constants: Constant, ConstantOfShape, Shape, Gather, Concat, Slice (ONNX's
 * clamping, steps of any sign and size), Transpose, Reshape, Unsqueeze,
 * Squeeze, Cast (a float that fits no integer is refused). */
#include "model/onnx-fold-private.h"

#include <string.h>

#include "model/onnx-attrs.h"
#include "model/onnx-nodes.h"

static const char *const NO_ATTRS[] = {NULL};

/* ---- Constant, ConstantOfShape, Shape ------------------------------------ */

static ct_otensor *from_list(ct_onnx *o, int k, int dtype, int rank, gint64 count) {
  gint64 dims[1] = {count};
  return ct_fold_new(o, k, dtype, rank, dims);
}

gboolean ct_fold_constant(ct_onnx *o, int k) {
  static const char *const attrs[] = {"value",        "value_float",   "value_floats",
                                      "value_int",    "value_ints",    "sparse_value",
                                      "value_string", "value_strings", NULL};
  const Onnx__NodeProto *p = o->nodes[k].proto;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  if (p->n_attribute != 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT,
                             "has %zu attributes; a Constant has exactly one",
                             p->n_attribute);
  const Onnx__AttributeProto *a = p->attribute[0];
  const char *name = a->name;
  ct_otensor *t = NULL;
  if (strcmp(name, "value") == 0) {
    const Onnx__TensorProto *tp;
    if (!ct_attr_tensor(o, k, "value", &tp) || !(t = ct_onnx_temp(o, 1, sizeof *t)))
      return FALSE;
    const ct_tensor_owner w = {NULL, k};
    if (!ct_otensor_read(o, tp, &w, t))
      return FALSE;
  } else if (strcmp(name, "value_float") == 0 || strcmp(name, "value_int") == 0) {
    const gboolean f = name[6] == 'f';
    float fv;
    gint64 iv;
    if (f ? !ct_attr_float(o, k, name, 0, &fv) : !ct_attr_int(o, k, name, 0, &iv))
      return FALSE;
    if (!(t = ct_fold_new(o, k, f ? CT_ONNX_FLOAT : CT_ONNX_INT64, 0, NULL)))
      return FALSE;
    if (f)
      ct_fold_put_f(t, 0, fv);
    else
      ct_fold_put_i(t, 0, iv);
  } else if (strcmp(name, "value_floats") == 0) {
    if (!(t = from_list(o, k, CT_ONNX_FLOAT, 1, (gint64)a->n_floats)))
      return FALSE;
    for (size_t i = 0; i < a->n_floats; i++)
      ct_fold_put_f(t, (gint64)i, a->floats[i]);
  } else if (strcmp(name, "value_ints") == 0) {
    if (!(t = from_list(o, k, CT_ONNX_INT64, 1, (gint64)a->n_ints)))
      return FALSE;
    for (size_t i = 0; i < a->n_ints; i++)
      ct_fold_put_i(t, (gint64)i, a->ints[i]);
  } else {
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK, "holds a %s, which this reader does not take",
        strcmp(name, "sparse_value") == 0 ? "sparse tensor" : "string");
  }
  ct_fold_set_output(o, k, t);
  return TRUE;
}

gboolean ct_fold_constant_of_shape(ct_onnx *o, int k) {
  static const char *const attrs[] = {"value", NULL};
  const Onnx__TensorProto *tp;
  ct_otensor *shape, value = {0};
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_attr_tensor(o, k, "value", &tp) || !ct_fold_in(o, k, 0, TRUE, &shape) ||
      !ct_fold_int_list(o, k, shape, "shape"))
    return FALSE;
  if (tp) {
    const ct_tensor_owner w = {NULL, k};
    if (!ct_otensor_read(o, tp, &w, &value))
      return FALSE;
    if (value.count != 1)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its value has dims %s; it must be one element",
                               ct_otensor_dims_text(o, &value));
  }
  if (shape->count > CT_ONNX_MAX_DIMS)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "would make a constant of %lld dimensions, more than %d",
                             (long long)shape->count, CT_ONNX_MAX_DIMS);
  gint64 dims[CT_ONNX_MAX_DIMS];
  for (int i = 0; i < shape->count; i++)
    dims[i] = ct_otensor_i64(shape, i);
  ct_otensor *t =
      ct_fold_new(o, k, tp ? value.dtype : CT_ONNX_FLOAT, (int)shape->count, dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; tp && i < t->count; i++)
    ct_fold_copy(t, i, &value, 0);
  ct_fold_set_output(o, k, t);
  return TRUE;
}

gboolean ct_fold_shape(ct_onnx *o, int k) {
  static const char *const before15[] = {NULL}, *const since15[] = {"start", "end", NULL};
  ct_otensor *x;
  gint64 start, end;
  if (!ct_attrs_check(o, k, o->opset < 15 ? before15 : since15) ||
      !ct_onnx_outputs(o, k, 1, "") || !ct_fold_in(o, k, 0, TRUE, &x) ||
      !ct_attr_int(o, k, "start", 0, &start) || !ct_attr_int(o, k, "end", x->rank, &end))
    return FALSE;
  /* Shape's start and end are clamped, not refused. */
  start = CLAMP(start < 0 ? start + x->rank : start, 0, x->rank);
  end = CLAMP(end < 0 ? end + x->rank : end, 0, x->rank);
  ct_otensor *t = from_list(o, k, CT_ONNX_INT64, 1, MAX(end - start, 0));
  if (!t)
    return FALSE;
  for (gint64 i = start; i < end; i++)
    ct_fold_put_i(t, i - start, x->dims[i]);
  ct_fold_set_output(o, k, t);
  return TRUE;
}

/* ---- indexing: Gather, Concat, Slice, Transpose -------------------------- */

gboolean ct_fold_gather(ct_onnx *o, int k) {
  static const char *const attrs[] = {"axis", NULL};
  ct_otensor *data, *idx;
  gint64 axis_attr;
  int axis = 0;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_fold_in(o, k, 0, TRUE, &data) || !ct_fold_in(o, k, 1, TRUE, &idx) ||
      !ct_attr_int(o, k, "axis", 0, &axis_attr) ||
      !ct_fold_int_list(o, k, idx, "indices") ||
      !ct_fold_axis(o, k, axis_attr, data->rank, &axis))
    return FALSE;
  gint64 dims[CT_ONNX_MAX_DIMS * 2];
  int r = 0;
  for (int i = 0; i < axis; i++)
    dims[r++] = data->dims[i];
  for (int i = 0; i < idx->rank; i++)
    dims[r++] = idx->dims[i];
  for (int i = axis + 1; i < data->rank; i++)
    dims[r++] = data->dims[i];
  ct_otensor *t = ct_fold_new(o, k, data->dtype, r, dims);
  if (!t)
    return FALSE;
  gint64 outer = 1, inner = 1;
  for (int i = 0; i < axis; i++)
    outer *= data->dims[i];
  for (int i = axis + 1; i < data->rank; i++)
    inner *= data->dims[i];
  const gint64 n = data->dims[axis];
  gint64 at = 0;
  for (gint64 a = 0; a < outer; a++)
    for (gint64 j = 0; j < idx->count; j++) {
      gint64 x = ct_otensor_i64(idx, j);
      if (x < -n || x >= n)
        return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                                 "index %lld is out of range for an axis of %lld",
                                 (long long)x, (long long)n);
      x = x < 0 ? x + n : x;
      for (gint64 i = 0; i < inner; i++)
        ct_fold_copy(t, at++, data, (a * n + x) * inner + i);
    }
  ct_fold_set_output(o, k, t);
  return TRUE;
}

gboolean ct_fold_concat(ct_onnx *o, int k) {
  static const char *const attrs[] = {"axis", NULL};
  const ct_onode *nd = &o->nodes[k];
  gint64 axis_attr;
  ct_otensor *first;
  int axis = 0;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_attr_int(o, k, "axis", 0, &axis_attr) || !ct_fold_in(o, k, 0, TRUE, &first) ||
      !ct_fold_axis(o, k, axis_attr, MAX(first->rank, 1), &axis))
    return FALSE;
  if (first->rank == 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "concatenates scalars");
  gint64 dims[CT_ONNX_MAX_DIMS];
  memcpy(dims, first->dims, sizeof dims);
  dims[axis] = 0;
  for (int i = 0; i < nd->n_inputs; i++) {
    ct_otensor *x;
    if (!ct_fold_in(o, k, i, TRUE, &x))
      return FALSE;
    gboolean same = x->rank == first->rank && x->dtype == first->dtype;
    for (int a = 0; same && a < x->rank; a++)
      same = a == axis || x->dims[a] == first->dims[a];
    if (!same)
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_NETWORK,
          "its inputs %s and %s (dims %s, %s) do not concatenate along "
          "axis %d",
          ct_onnx_dtype_name(o, first->dtype), ct_onnx_dtype_name(o, x->dtype),
          ct_otensor_dims_text(o, first), ct_otensor_dims_text(o, x), axis);
    dims[axis] += x->dims[axis];
  }
  ct_otensor *t = ct_fold_new(o, k, first->dtype, first->rank, dims);
  if (!t)
    return FALSE;
  gint64 outer = 1, inner = 1;
  for (int a = 0; a < axis; a++)
    outer *= dims[a];
  for (int a = axis + 1; a < first->rank; a++)
    inner *= dims[a];
  gint64 at = 0;
  for (gint64 a = 0; a < outer; a++)
    for (int i = 0; i < nd->n_inputs; i++) {
      const ct_otensor *x = nd->inputs[i]->constant;
      const gint64 block = x->dims[axis] * inner;
      for (gint64 j = 0; j < block; j++)
        ct_fold_copy(t, at++, x, a * block + j);
    }
  ct_fold_set_output(o, k, t);
  return TRUE;
}

/* One axis of a Slice, ONNX's clamping: the start and end of the elements
 * taken and their count. */
static gint64 slice_axis(gint64 dim, gint64 start, gint64 end, gint64 step,
                         gint64 *first) {
  if (start < 0)
    start += dim;
  if (end < 0)
    end += dim;
  if (step > 0) {
    start = CLAMP(start, 0, dim);
    end = CLAMP(end, 0, dim);
  } else {
    start = CLAMP(start, 0, dim - 1);
    end = CLAMP(end, -1, dim - 1);
  }
  *first = start;
  /* |step| beyond dim + 1 takes at most one element, as dim + 1 does. */
  const gint64 s = step > 0 ? MIN(step, dim + 1) : MIN(-(step + 1), dim) + 1;
  const gint64 span = step > 0 ? end - start : start - end;
  return span > 0 ? (span + s - 1) / s : 0;
}

gboolean ct_fold_slice(ct_onnx *o, int k) {
  static const char *const before10[] = {"starts", "ends", "axes", NULL};
  ct_otensor *x;
  gint64 lists[4][CT_ONNX_MAX_DIMS];
  int n[4] = {-1, -1, -1, -1};
  if (!ct_attrs_check(o, k, o->opset < 10 ? before10 : NO_ATTRS) ||
      !ct_onnx_outputs(o, k, 1, "") || !ct_fold_in(o, k, 0, TRUE, &x))
    return FALSE;
  static const char *const roles[] = {"starts", "ends", "axes", "steps"};
  for (int j = 0; j < 4; j++) {
    if (o->opset < 10) {
      if (j < 3 && !ct_attr_ints(o, k, roles[j], lists[j], CT_ONNX_MAX_DIMS, &n[j]))
        return FALSE;
      continue;
    }
    ct_otensor *t;
    if (!ct_fold_in(o, k, j + 1, j < 2, &t) ||
        (t && !ct_fold_int_list(o, k, t, roles[j])))
      return FALSE;
    if (t && t->count > CT_ONNX_MAX_DIMS)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "its %s has too many values",
                               roles[j]);
    n[j] = t ? (int)t->count : -1;
    for (int i = 0; t && i < n[j]; i++)
      lists[j][i] = ct_otensor_i64(t, i);
  }
  if (n[0] < 0 || n[1] != n[0] || (n[2] >= 0 && n[2] != n[0]) ||
      (n[3] >= 0 && n[3] != n[0]))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its starts, ends, axes and steps differ in length");
  gint64 first[CT_ONNX_MAX_DIMS], step[CT_ONNX_MAX_DIMS], dims[CT_ONNX_MAX_DIMS];
  gboolean seen[CT_ONNX_MAX_DIMS] = {FALSE};
  for (int a = 0; a < x->rank; a++) {
    first[a] = 0;
    step[a] = 1;
    dims[a] = x->dims[a];
  }
  for (int i = 0; i < n[0]; i++) {
    int a = 0;
    if (!ct_fold_axis(o, k, n[2] >= 0 ? lists[2][i] : i, x->rank, &a))
      return FALSE;
    if (seen[a])
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "slices axis %d twice", a);
    seen[a] = TRUE;
    step[a] = n[3] >= 0 ? lists[3][i] : 1;
    if (step[a] == 0)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "has a step of 0");
    dims[a] = slice_axis(x->dims[a], lists[0][i], lists[1][i], step[a], &first[a]);
  }
  ct_otensor *t = ct_fold_new(o, k, x->dtype, x->rank, dims);
  if (!t)
    return FALSE;
  gint64 idx[CT_ONNX_MAX_DIMS] = {0}, strides[CT_ONNX_MAX_DIMS];
  ct_fold_strides(x->dims, x->rank, strides);
  for (gint64 i = 0; i < t->count; i++) {
    gint64 src = 0;
    for (int a = 0; a < x->rank; a++)
      src += (first[a] + idx[a] * step[a]) * strides[a];
    ct_fold_copy(t, i, x, src);
    ct_fold_next(idx, dims, x->rank);
  }
  ct_fold_set_output(o, k, t);
  return TRUE;
}

gboolean ct_fold_transpose(ct_onnx *o, int k) {
  static const char *const attrs[] = {"perm", NULL};
  ct_otensor *x;
  gint64 perm[CT_ONNX_MAX_DIMS];
  int n;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_fold_in(o, k, 0, TRUE, &x) ||
      !ct_attr_ints(o, k, "perm", perm, CT_ONNX_MAX_DIMS, &n))
    return FALSE;
  if (n < 0) {
    n = x->rank;
    for (int a = 0; a < n; a++)
      perm[a] = n - 1 - a;
  }
  gboolean seen[CT_ONNX_MAX_DIMS] = {FALSE}, ok = n == x->rank;
  for (int a = 0; ok && a < n; a++) {
    ok = perm[a] >= 0 && perm[a] < n && !seen[perm[a]];
    if (ok)
      seen[perm[a]] = TRUE;
  }
  if (!ok)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "perm %s is not a permutation of the %d axes",
                             ct_dims_text(o->ld, perm, MAX(n, 0)), x->rank);
  gint64 dims[CT_ONNX_MAX_DIMS], strides[CT_ONNX_MAX_DIMS], idx[CT_ONNX_MAX_DIMS] = {0};
  for (int a = 0; a < n; a++)
    dims[a] = x->dims[perm[a]];
  ct_fold_strides(x->dims, x->rank, strides);
  ct_otensor *t = ct_fold_new(o, k, x->dtype, n, dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; i < t->count; i++) {
    gint64 src = 0;
    for (int a = 0; a < n; a++)
      src += idx[a] * strides[perm[a]];
    ct_fold_copy(t, i, x, src);
    ct_fold_next(idx, dims, n);
  }
  ct_fold_set_output(o, k, t);
  return TRUE;
}

/* ---- shapes: Reshape, Unsqueeze, Squeeze, Identity ----------------------- */

gboolean ct_fold_reshape(ct_onnx *o, int k) {
  static const char *const before14[] = {NULL}, *const since14[] = {"allowzero", NULL};
  ct_otensor *x, *shape;
  gint64 allowzero;
  if (!ct_attrs_check(o, k, o->opset < 14 ? before14 : since14) ||
      !ct_onnx_outputs(o, k, 1, "") || !ct_fold_in(o, k, 0, TRUE, &x) ||
      !ct_fold_in(o, k, 1, TRUE, &shape) || !ct_fold_int_list(o, k, shape, "shape") ||
      !ct_attr_int(o, k, "allowzero", 0, &allowzero))
    return FALSE;
  if (shape->count > CT_ONNX_MAX_DIMS)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "reshapes to %lld dimensions, more than %d",
                             (long long)shape->count, CT_ONNX_MAX_DIMS);
  const int r = (int)shape->count;
  gint64 dims[CT_ONNX_MAX_DIMS], known = 1;
  int infer = -1;
  for (int a = 0; a < r; a++) {
    dims[a] = ct_otensor_i64(shape, a);
    if (dims[a] == 0 && !allowzero) {
      if (a >= x->rank)
        return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                                 "its shape copies dim %d, which its input lacks", a);
      dims[a] = x->dims[a];
    }
    if (dims[a] == -1 && infer < 0) {
      infer = a;
      continue;
    }
    if (dims[a] < 0 || !ct_mul_i64(known, dims[a], &known))
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "its shape %s is not valid",
                               ct_otensor_dims_text(o, shape));
  }
  if (infer >= 0) {
    if (known == 0 || x->count % known != 0)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "cannot reshape %lld elements to %s", (long long)x->count,
                               ct_otensor_dims_text(o, shape));
    dims[infer] = x->count / known;
    known = x->count;
  }
  if (known != x->count)
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK, "reshapes %lld elements (dims %s) to dims %s",
        (long long)x->count, ct_otensor_dims_text(o, x), ct_dims_text(o->ld, dims, r));
  ct_otensor *t = ct_fold_reshaped(o, x, r, dims);
  if (!t)
    return FALSE;
  ct_fold_set_output(o, k, t);
  return TRUE;
}

static gboolean fold_unsqueeze(ct_onnx *o, int k, gboolean squeeze) {
  static const char *const before13[] = {"axes", NULL};
  ct_otensor *x;
  gint64 raw[CT_ONNX_MAX_DIMS];
  int axes[CT_ONNX_MAX_DIMS], n;
  if (!ct_attrs_check(o, k, o->opset < 13 ? before13 : NO_ATTRS) ||
      !ct_onnx_outputs(o, k, 1, "") || !ct_fold_in(o, k, 0, TRUE, &x) ||
      !ct_fold_raw_axes(o, k, o->opset < 13 ? -1 : 1, raw, &n))
    return FALSE;
  const gboolean given = n >= 0;
  if (!squeeze && !given)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no axes");
  /* Unsqueeze's axes index its output, Squeeze's its input. */
  const int out_rank = squeeze ? x->rank : x->rank + n;
  if (out_rank > CT_ONNX_MAX_DIMS)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "would make a constant of %d dimensions, more than %d",
                             out_rank, CT_ONNX_MAX_DIMS);
  if (given && !ct_fold_axes(o, k, raw, n, out_rank, axes))
    return FALSE;
  gboolean mark[CT_ONNX_MAX_DIMS] = {FALSE};
  for (int i = 0; i < n; i++)
    mark[axes[i]] = TRUE;
  gint64 dims[CT_ONNX_MAX_DIMS];
  int r = 0;
  if (squeeze) {
    for (int d = 0; d < x->rank; d++) {
      if (given && mark[d] && x->dims[d] != 1)
        return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                                 "squeezes axis %d of dims %s, which is not 1", d,
                                 ct_otensor_dims_text(o, x));
      if (!(given ? mark[d] : x->dims[d] == 1))
        dims[r++] = x->dims[d];
    }
  } else {
    for (int d = 0, j = 0; d < out_rank; d++)
      dims[r++] = mark[d] ? 1 : x->dims[j++];
  }
  ct_otensor *t = ct_fold_reshaped(o, x, r, dims);
  if (!t)
    return FALSE;
  ct_fold_set_output(o, k, t);
  return TRUE;
}

gboolean ct_fold_squeeze(ct_onnx *o, int k) {
  return fold_unsqueeze(o, k, TRUE);
}

gboolean ct_fold_unsqueeze(ct_onnx *o, int k) {
  return fold_unsqueeze(o, k, FALSE);
}

/* ---- Cast ---------------------------------------------------------------- */

/* An integer in the range of an integer dtype, wrapped as C does. */
gint64 ct_fold_wrap_int(gint64 v, int dtype) {
  switch (dtype) {
  case CT_ONNX_INT8:
    return (gint8)(guint8)(guint64)v;
  case CT_ONNX_UINT8:
    return (guint8)(guint64)v;
  case CT_ONNX_INT16:
    return (gint16)(guint16)(guint64)v;
  case CT_ONNX_UINT16:
    return (guint16)(guint64)v;
  case CT_ONNX_INT32:
    return (gint32)(guint32)(guint64)v;
  case CT_ONNX_UINT32:
    return (guint32)(guint64)v;
  case CT_ONNX_BOOL:
    return v != 0;
  default:
    return v;
  }
}

gboolean ct_fold_cast(ct_onnx *o, int k) {
  static const char *const attrs[] = {"to", NULL};
  ct_otensor *x;
  gint64 to;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_fold_in(o, k, 0, TRUE, &x) || !ct_attr_int(o, k, "to", 0, &to))
    return FALSE;
  if (to < 0 || to > G_MAXINT32 || ct_onnx_dtype_size((int)to) == 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "casts to %s, which this reader does not take",
                             ct_onnx_dtype_name(o, (int)CLAMP(to, -1, G_MAXINT32)));
  ct_otensor *t = ct_fold_new(o, k, (int)to, x->rank, x->dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; i < x->count; i++) {
    if (ct_fold_is_float(t->dtype)) {
      ct_fold_put_f(t, i, ct_otensor_f64(x, i));
    } else if (!ct_fold_is_float(x->dtype)) {
      ct_fold_put_i(t, i, ct_fold_wrap_int(ct_otensor_i64(x, i), t->dtype));
    } else {
      const double d = ct_otensor_f64(x, i);
      if (t->dtype == CT_ONNX_BOOL) {
        ct_fold_put_i(t, i, d != 0);
        continue;
      }
      /* Out of int64's range a float has no integer; it is refused. */
      if (!(d > -9.2233720368547758e18 && d < 9.2233720368547758e18))
        return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                                 "casts %g to %s, which cannot hold it", d,
                                 ct_onnx_dtype_name(o, t->dtype));
      ct_fold_put_i(t, i, ct_fold_wrap_int((gint64)d, t->dtype));
    }
  }
  ct_fold_set_output(o, k, t);
  return TRUE;
}
