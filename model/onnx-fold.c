/* Every fold makes its output tensor through new_tensor, which checks the
 * size against the element limit and the load's budget before allocating;
 * reshapes (Reshape, Unsqueeze, Squeeze, Identity) share their input's
 * elements. Integer arithmetic is checked: an overflow or a division by
 * zero is refused, never wrapped. */
#include "model/onnx-fold.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model/dtype.h"
#include "model/onnx-attrs.h"
#include "model/onnx-nodes.h"
#include "model/onnx-tensor.h"

static const char *const NO_ATTRS[] = {NULL};

/* ---- tensors ------------------------------------------------------------- */

static gboolean is_float(int dtype) {
  return ct_onnx_dtype_is_float(dtype);
}

/* A new tensor for node k's output, its elements zeroed. */
static ct_otensor *new_tensor(ct_onnx *o, int k, int dtype, int rank,
                              const gint64 *dims) {
  if (rank > CT_ONNX_MAX_DIMS) {
    ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                      "would make a constant of %d dimensions, more than %d", rank,
                      CT_ONNX_MAX_DIMS);
    return NULL;
  }
  gint64 count = 1;
  gboolean overflow = FALSE;
  for (int i = 0; i < rank; i++)
    overflow = overflow || dims[i] < 0 || !ct_mul_i64(count, dims[i], &count);
  if (overflow || count > CT_ONNX_MAX_ELEMENTS || count > o->fold_budget) {
    ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                      "would make a constant of dims %s, more elements than this file "
                      "may make at load",
                      ct_dims_text(o->ld, dims, rank));
    return NULL;
  }
  o->fold_budget -= count;
  ct_otensor *t = ct_onnx_temp(o, 1, sizeof *t);
  if (!t)
    return NULL;
  t->dtype = dtype;
  t->rank = rank;
  t->count = count;
  if (rank > 0)
    memcpy(t->dims, dims, (size_t)rank * sizeof(gint64));
  if (dtype == CT_ONNX_DOUBLE) {
    t->src = CT_SRC_F64;
    t->data = ct_onnx_temp(o, count, sizeof(double));
  } else if (is_float(dtype)) {
    t->src = CT_SRC_F32;
    t->data = ct_onnx_temp(o, count, sizeof(float));
  } else {
    t->src = CT_SRC_I64;
    t->data = ct_onnx_temp(o, count, sizeof(gint64));
  }
  return t->data ? t : NULL;
}

/* A tensor with t's elements and other dims (same count). */
static ct_otensor *reshaped(ct_onnx *o, const ct_otensor *t, int rank,
                            const gint64 *dims) {
  ct_otensor *r = ct_onnx_temp(o, 1, sizeof *r);
  if (!r)
    return NULL;
  *r = *t;
  r->rank = rank;
  if (rank > 0)
    memcpy(r->dims, dims, (size_t)rank * sizeof(gint64));
  return r;
}

/* Stores a result: rounded to float32 for float32/16 tensors, as ONNX
 * computes them. */
static void put_f(ct_otensor *t, gint64 i, double v) {
  if (t->src == CT_SRC_F64)
    ((double *)t->data)[i] = v;
  else
    ((float *)t->data)[i] = ct_f64_to_f32(v);
}

static void put_i(ct_otensor *t, gint64 i, gint64 v) {
  ((gint64 *)t->data)[i] = v;
}

/* Copies element j of s into element i of d (same dtype). */
static void copy_elem(ct_otensor *d, gint64 i, const ct_otensor *s, gint64 j) {
  if (is_float(d->dtype))
    put_f(d, i, ct_otensor_f64(s, j));
  else
    put_i(d, i, ct_otensor_i64(s, j));
}

static void set_output(ct_onnx *o, int k, ct_otensor *t) {
  o->nodes[k].outputs[0]->constant = t;
}

/* Constant input i (all inputs of a folded node are), NULL if absent. */
static gboolean in(ct_onnx *o, int k, int i, gboolean required, ct_otensor **out) {
  const ct_onode *nd = &o->nodes[k];
  *out = NULL;
  ct_oname *n = i < nd->n_inputs ? nd->inputs[i] : NULL;
  if (!n)
    return !required ||
           ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has no input %d", i);
  gboolean failed;
  *out = ct_onnx_constant(o, n, &failed);
  return !failed;
}

/* A constant list of integers (shape, axes, pads, ...). */
static gboolean int_list(ct_onnx *o, int k, const ct_otensor *t, const char *role) {
  if (is_float(t->dtype) || t->rank > 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its %s is %s with dims %s, not a list of integers", role,
                             ct_onnx_dtype_name(o, t->dtype), ct_otensor_dims_text(o, t));
  return TRUE;
}

/* An axis in [-rank, rank) made non-negative, or the error. */
static gboolean norm_axis(ct_onnx *o, int k, gint64 axis, int rank, int *out) {
  const gint64 a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "axis %lld is out of range for a tensor of rank %d",
                             (long long)axis, rank);
  *out = (int)a;
  return TRUE;
}

/* Axes as the node gives them: an attribute (older opsets) or constant
 * input i; *n = -1 when absent. */
static gboolean raw_axes(ct_onnx *o, int k, int input, gint64 *v, int *n) {
  if (!ct_attr_ints(o, k, "axes", v, CT_ONNX_MAX_DIMS, n))
    return FALSE;
  ct_otensor *t = NULL;
  if (*n < 0 && input >= 0 && !in(o, k, input, FALSE, &t))
    return FALSE;
  if (!t)
    return TRUE;
  if (!int_list(o, k, t, "axes"))
    return FALSE;
  if (t->count > CT_ONNX_MAX_DIMS)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "has %lld axes, too many",
                             (long long)t->count);
  *n = (int)t->count;
  for (int i = 0; i < *n; i++)
    v[i] = ct_otensor_i64(t, i);
  return TRUE;
}

/* The n raw axes of a tensor of the given rank, each once, non-negative. */
static gboolean norm_axes(ct_onnx *o, int k, const gint64 *v, int n, int rank,
                          int *axes) {
  gboolean seen[CT_ONNX_MAX_DIMS] = {FALSE};
  for (int i = 0; i < n; i++) {
    if (!norm_axis(o, k, v[i], rank, &axes[i]))
      return FALSE;
    if (seen[axes[i]])
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "axis %lld is given twice",
                               (long long)v[i]);
    seen[axes[i]] = TRUE;
  }
  return TRUE;
}

/* Row-major strides of dims. */
static void strides_of(const gint64 *dims, int rank, gint64 *strides) {
  gint64 s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
}

/* Advances a multi-index over dims; FALSE after the last. */
static gboolean next_index(gint64 *idx, const gint64 *dims, int rank) {
  for (int i = rank - 1; i >= 0; i--) {
    if (++idx[i] < dims[i])
      return TRUE;
    idx[i] = 0;
  }
  return FALSE;
}

/* ---- Constant, ConstantOfShape, Shape ------------------------------------ */

static ct_otensor *from_list(ct_onnx *o, int k, int dtype, int rank, gint64 count) {
  gint64 dims[1] = {count};
  return new_tensor(o, k, dtype, rank, dims);
}

static gboolean fold_constant(ct_onnx *o, int k) {
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
    GString *what = g_string_new(NULL);
    g_string_printf(what, "the value of %s", ct_onnx_node_text(o, k));
    if (!ct_otensor_read(o, tp, ct_keep(o->ld, what), t))
      return FALSE;
  } else if (strcmp(name, "value_float") == 0 || strcmp(name, "value_int") == 0) {
    const gboolean f = name[6] == 'f';
    float fv;
    gint64 iv;
    if (f ? !ct_attr_float(o, k, name, 0, &fv) : !ct_attr_int(o, k, name, 0, &iv))
      return FALSE;
    if (!(t = new_tensor(o, k, f ? CT_ONNX_FLOAT : CT_ONNX_INT64, 0, NULL)))
      return FALSE;
    if (f)
      put_f(t, 0, fv);
    else
      put_i(t, 0, iv);
  } else if (strcmp(name, "value_floats") == 0) {
    if (!(t = from_list(o, k, CT_ONNX_FLOAT, 1, (gint64)a->n_floats)))
      return FALSE;
    for (size_t i = 0; i < a->n_floats; i++)
      put_f(t, (gint64)i, a->floats[i]);
  } else if (strcmp(name, "value_ints") == 0) {
    if (!(t = from_list(o, k, CT_ONNX_INT64, 1, (gint64)a->n_ints)))
      return FALSE;
    for (size_t i = 0; i < a->n_ints; i++)
      put_i(t, (gint64)i, a->ints[i]);
  } else {
    return ct_onnx_node_fail(
        o, k, CT_MODEL_ERROR_NETWORK, "holds a %s, which this reader does not take",
        strcmp(name, "sparse_value") == 0 ? "sparse tensor" : "string");
  }
  set_output(o, k, t);
  return TRUE;
}

static gboolean fold_constant_of_shape(ct_onnx *o, int k) {
  static const char *const attrs[] = {"value", NULL};
  const Onnx__TensorProto *tp;
  ct_otensor *shape, value = {0};
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_attr_tensor(o, k, "value", &tp) || !in(o, k, 0, TRUE, &shape) ||
      !int_list(o, k, shape, "shape"))
    return FALSE;
  if (tp) {
    GString *what = g_string_new(NULL);
    g_string_printf(what, "the value of %s", ct_onnx_node_text(o, k));
    if (!ct_otensor_read(o, tp, ct_keep(o->ld, what), &value))
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
      new_tensor(o, k, tp ? value.dtype : CT_ONNX_FLOAT, (int)shape->count, dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; tp && i < t->count; i++)
    copy_elem(t, i, &value, 0);
  set_output(o, k, t);
  return TRUE;
}

static gboolean fold_shape(ct_onnx *o, int k) {
  static const char *const before15[] = {NULL}, *const since15[] = {"start", "end", NULL};
  ct_otensor *x;
  gint64 start, end;
  if (!ct_attrs_check(o, k, o->opset < 15 ? before15 : since15) ||
      !ct_onnx_outputs(o, k, 1, "") || !in(o, k, 0, TRUE, &x) ||
      !ct_attr_int(o, k, "start", 0, &start) || !ct_attr_int(o, k, "end", x->rank, &end))
    return FALSE;
  /* Shape's start and end are clamped, not refused. */
  start = CLAMP(start < 0 ? start + x->rank : start, 0, x->rank);
  end = CLAMP(end < 0 ? end + x->rank : end, 0, x->rank);
  ct_otensor *t = from_list(o, k, CT_ONNX_INT64, 1, MAX(end - start, 0));
  if (!t)
    return FALSE;
  for (gint64 i = start; i < end; i++)
    put_i(t, i - start, x->dims[i]);
  set_output(o, k, t);
  return TRUE;
}

/* ---- indexing: Gather, Concat, Slice, Transpose -------------------------- */

static gboolean fold_gather(ct_onnx *o, int k) {
  static const char *const attrs[] = {"axis", NULL};
  ct_otensor *data, *idx;
  gint64 axis_attr;
  int axis = 0;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !in(o, k, 0, TRUE, &data) || !in(o, k, 1, TRUE, &idx) ||
      !ct_attr_int(o, k, "axis", 0, &axis_attr) || !int_list(o, k, idx, "indices") ||
      !norm_axis(o, k, axis_attr, data->rank, &axis))
    return FALSE;
  gint64 dims[CT_ONNX_MAX_DIMS * 2];
  int r = 0;
  for (int i = 0; i < axis; i++)
    dims[r++] = data->dims[i];
  for (int i = 0; i < idx->rank; i++)
    dims[r++] = idx->dims[i];
  for (int i = axis + 1; i < data->rank; i++)
    dims[r++] = data->dims[i];
  ct_otensor *t = new_tensor(o, k, data->dtype, r, dims);
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
        copy_elem(t, at++, data, (a * n + x) * inner + i);
    }
  set_output(o, k, t);
  return TRUE;
}

static gboolean fold_concat(ct_onnx *o, int k) {
  static const char *const attrs[] = {"axis", NULL};
  const ct_onode *nd = &o->nodes[k];
  gint64 axis_attr;
  ct_otensor *first;
  int axis = 0;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !ct_attr_int(o, k, "axis", 0, &axis_attr) || !in(o, k, 0, TRUE, &first) ||
      !norm_axis(o, k, axis_attr, MAX(first->rank, 1), &axis))
    return FALSE;
  if (first->rank == 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "concatenates scalars");
  gint64 dims[CT_ONNX_MAX_DIMS];
  memcpy(dims, first->dims, sizeof dims);
  dims[axis] = 0;
  for (int i = 0; i < nd->n_inputs; i++) {
    ct_otensor *x;
    if (!in(o, k, i, TRUE, &x))
      return FALSE;
    gboolean same =
        x->rank == first->rank && is_float(x->dtype) == is_float(first->dtype);
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
  ct_otensor *t = new_tensor(o, k, first->dtype, first->rank, dims);
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
        copy_elem(t, at++, x, a * block + j);
    }
  set_output(o, k, t);
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

static gboolean fold_slice(ct_onnx *o, int k) {
  static const char *const before10[] = {"starts", "ends", "axes", NULL};
  ct_otensor *x;
  gint64 lists[4][CT_ONNX_MAX_DIMS];
  int n[4] = {-1, -1, -1, -1};
  if (!ct_attrs_check(o, k, o->opset < 10 ? before10 : NO_ATTRS) ||
      !ct_onnx_outputs(o, k, 1, "") || !in(o, k, 0, TRUE, &x))
    return FALSE;
  static const char *const roles[] = {"starts", "ends", "axes", "steps"};
  for (int j = 0; j < 4; j++) {
    if (o->opset < 10) {
      if (j < 3 && !ct_attr_ints(o, k, roles[j], lists[j], CT_ONNX_MAX_DIMS, &n[j]))
        return FALSE;
      continue;
    }
    ct_otensor *t;
    if (!in(o, k, j + 1, j < 2, &t) || (t && !int_list(o, k, t, roles[j])))
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
    if (!norm_axis(o, k, n[2] >= 0 ? lists[2][i] : i, x->rank, &a))
      return FALSE;
    if (seen[a])
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "slices axis %d twice", a);
    seen[a] = TRUE;
    step[a] = n[3] >= 0 ? lists[3][i] : 1;
    if (step[a] == 0)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "has a step of 0");
    dims[a] = slice_axis(x->dims[a], lists[0][i], lists[1][i], step[a], &first[a]);
  }
  ct_otensor *t = new_tensor(o, k, x->dtype, x->rank, dims);
  if (!t)
    return FALSE;
  gint64 idx[CT_ONNX_MAX_DIMS] = {0}, strides[CT_ONNX_MAX_DIMS];
  strides_of(x->dims, x->rank, strides);
  for (gint64 i = 0; i < t->count; i++) {
    gint64 src = 0;
    for (int a = 0; a < x->rank; a++)
      src += (first[a] + idx[a] * step[a]) * strides[a];
    copy_elem(t, i, x, src);
    next_index(idx, dims, x->rank);
  }
  set_output(o, k, t);
  return TRUE;
}

static gboolean fold_transpose(ct_onnx *o, int k) {
  static const char *const attrs[] = {"perm", NULL};
  ct_otensor *x;
  gint64 perm[CT_ONNX_MAX_DIMS];
  int n;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !in(o, k, 0, TRUE, &x) || !ct_attr_ints(o, k, "perm", perm, CT_ONNX_MAX_DIMS, &n))
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
  strides_of(x->dims, x->rank, strides);
  ct_otensor *t = new_tensor(o, k, x->dtype, n, dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; i < t->count; i++) {
    gint64 src = 0;
    for (int a = 0; a < n; a++)
      src += idx[a] * strides[perm[a]];
    copy_elem(t, i, x, src);
    next_index(idx, dims, n);
  }
  set_output(o, k, t);
  return TRUE;
}

/* ---- shapes: Reshape, Unsqueeze, Squeeze, Identity ----------------------- */

static gboolean fold_reshape(ct_onnx *o, int k) {
  static const char *const before14[] = {NULL}, *const since14[] = {"allowzero", NULL};
  ct_otensor *x, *shape;
  gint64 allowzero;
  if (!ct_attrs_check(o, k, o->opset < 14 ? before14 : since14) ||
      !ct_onnx_outputs(o, k, 1, "") || !in(o, k, 0, TRUE, &x) ||
      !in(o, k, 1, TRUE, &shape) || !int_list(o, k, shape, "shape") ||
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
  ct_otensor *t = reshaped(o, x, r, dims);
  if (!t)
    return FALSE;
  set_output(o, k, t);
  return TRUE;
}

static gboolean fold_unsqueeze(ct_onnx *o, int k, gboolean squeeze) {
  static const char *const before13[] = {"axes", NULL};
  ct_otensor *x;
  gint64 raw[CT_ONNX_MAX_DIMS];
  int axes[CT_ONNX_MAX_DIMS], n;
  if (!ct_attrs_check(o, k, o->opset < 13 ? before13 : NO_ATTRS) ||
      !ct_onnx_outputs(o, k, 1, "") || !in(o, k, 0, TRUE, &x) ||
      !raw_axes(o, k, o->opset < 13 ? -1 : 1, raw, &n))
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
  if (given && !norm_axes(o, k, raw, n, out_rank, axes))
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
  ct_otensor *t = reshaped(o, x, r, dims);
  if (!t)
    return FALSE;
  set_output(o, k, t);
  return TRUE;
}

static gboolean fold_squeeze(ct_onnx *o, int k) {
  return fold_unsqueeze(o, k, TRUE);
}

static gboolean fold_unsqueeze_only(ct_onnx *o, int k) {
  return fold_unsqueeze(o, k, FALSE);
}

/* ---- Cast ---------------------------------------------------------------- */

/* An integer in the range of an integer dtype, wrapped as C does. */
static gint64 wrap_int(gint64 v, int dtype) {
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

static gboolean fold_cast(ct_onnx *o, int k) {
  static const char *const attrs[] = {"to", NULL};
  ct_otensor *x;
  gint64 to;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !in(o, k, 0, TRUE, &x) || !ct_attr_int(o, k, "to", 0, &to))
    return FALSE;
  if (to < 0 || to > G_MAXINT32 || ct_onnx_dtype_size((int)to) == 0)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "casts to %s, which this reader does not take",
                             ct_onnx_dtype_name(o, (int)CLAMP(to, -1, G_MAXINT32)));
  ct_otensor *t = new_tensor(o, k, (int)to, x->rank, x->dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; i < x->count; i++) {
    if (is_float(t->dtype)) {
      put_f(t, i, ct_otensor_f64(x, i));
    } else if (!is_float(x->dtype)) {
      put_i(t, i, wrap_int(ct_otensor_i64(x, i), t->dtype));
    } else {
      const double d = ct_otensor_f64(x, i);
      if (t->dtype == CT_ONNX_BOOL) {
        put_i(t, i, d != 0);
        continue;
      }
      /* Out of int64's range a float has no integer; it is refused. */
      if (!(d > -9.2233720368547758e18 && d < 9.2233720368547758e18))
        return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                                 "casts %g to %s, which cannot hold it", d,
                                 ct_onnx_dtype_name(o, t->dtype));
      put_i(t, i, wrap_int((gint64)d, t->dtype));
    }
  }
  set_output(o, k, t);
  return TRUE;
}

/* ---- elementwise --------------------------------------------------------- */

double ct_unary_eval(const ct_node *n, double x) {
  const double a = n->alpha, b = n->beta, g = n->gamma;
  switch ((ct_unary_op)n->op_code) {
  case CT_UNARY_IDENTITY:
    return x;
  case CT_UNARY_RELU:
    return x < 0 ? 0 : x;
  case CT_UNARY_LEAKY_RELU:
    return x < 0 ? a * x : x;
  case CT_UNARY_ELU:
    return x < 0 ? a * expm1(x) : x;
  case CT_UNARY_SELU:
    return g * (x <= 0 ? a * expm1(x) : x);
  case CT_UNARY_CELU:
    return x < 0 ? a * expm1(x / a) : x;
  case CT_UNARY_SIGMOID:
    return 1 / (1 + exp(-x));
  case CT_UNARY_HARD_SIGMOID:
    return fmax(0, fmin(1, a * x + b));
  case CT_UNARY_HARD_SWISH:
    return x * fmax(0, fmin(1, a * x + b));
  case CT_UNARY_TANH:
    return tanh(x);
  case CT_UNARY_SOFTPLUS:
    return log1p(exp(-fabs(x))) + fmax(x, 0);
  case CT_UNARY_SOFTSIGN:
    return x / (1 + fabs(x));
  case CT_UNARY_ERF:
    return erf(x);
  case CT_UNARY_CLIP:
    return isnan(x) ? x : fmin(fmax(x, n->clip_min), n->clip_max);
  case CT_UNARY_NEG:
    return -x;
  case CT_UNARY_ABS:
    return fabs(x);
  case CT_UNARY_SQRT:
    return sqrt(x);
  case CT_UNARY_RECIPROCAL:
    return 1 / x;
  case CT_UNARY_EXP:
    return exp(x);
  case CT_UNARY_LOG:
    return log(x);
  case CT_UNARY_SIN:
    return sin(x);
  case CT_UNARY_COS:
    return cos(x);
  }
  return x;
}

double ct_binary_eval(ct_binary_op op, double a, double b) {
  switch (op) {
  case CT_BINARY_ADD:
    return a + b;
  case CT_BINARY_SUB:
    return a - b;
  case CT_BINARY_MUL:
    return a * b;
  case CT_BINARY_DIV:
    return a / b;
  case CT_BINARY_POW:
    return pow(a, b);
  case CT_BINARY_MAX:
    return isnan(a) || isnan(b) ? NAN : fmax(a, b);
  case CT_BINARY_MIN:
    return isnan(a) || isnan(b) ? NAN : fmin(a, b);
  case CT_BINARY_PRELU:
    return a < 0 ? b * a : a;
  }
  return a;
}

static gboolean fold_unary(ct_onnx *o, int k, const ct_node *p) {
  const ct_node params = *p;
  ct_otensor *x;
  const char *op = o->nodes[k].proto->op_type;
  if ((strcmp(op, "Dropout") != 0 && !ct_onnx_outputs(o, k, 1, "")) ||
      !in(o, k, 0, TRUE, &x))
    return FALSE;
  if (params.op_code == CT_UNARY_IDENTITY) {
    set_output(o, k, x);
    return TRUE;
  }
  const gboolean exact_int = params.op_code == CT_UNARY_NEG ||
                             params.op_code == CT_UNARY_ABS ||
                             params.op_code == CT_UNARY_RELU;
  if (!is_float(x->dtype) && !exact_int)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "applies %s to %s constants",
                             op, ct_onnx_dtype_name(o, x->dtype));
  ct_otensor *t = new_tensor(o, k, x->dtype, x->rank, x->dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; i < x->count; i++) {
    if (is_float(x->dtype)) {
      put_f(t, i, ct_unary_eval(&params, ct_otensor_f64(x, i)));
      continue;
    }
    const gint64 v = ct_otensor_i64(x, i);
    if (v == G_MININT64 && params.op_code != CT_UNARY_RELU)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "overflows int64");
    put_i(t, i,
          params.op_code == CT_UNARY_NEG   ? -v
          : params.op_code == CT_UNARY_ABS ? (v < 0 ? -v : v)
                                           : MAX(v, 0));
  }
  set_output(o, k, t);
  return TRUE;
}

/* a op b on integers, checked; FALSE on overflow or division by zero. */
static gboolean int_op(ct_binary_op op, gint64 a, gint64 b, gint64 *r) {
  switch (op) {
  case CT_BINARY_ADD:
    return ct_add_i64(a, b, r);
  case CT_BINARY_SUB:
    if (b == G_MININT64)
      return FALSE;
    return ct_add_i64(a, -b, r);
  case CT_BINARY_MUL:
    return ct_mul_i64(a, b, r);
  case CT_BINARY_DIV:
    if (b == 0 || (a == G_MININT64 && b == -1))
      return FALSE;
    *r = a / b; /* ONNX's integer division truncates, as C's */
    return TRUE;
  case CT_BINARY_POW:
    if (b < 0)
      return FALSE;
    *r = 1;
    for (gint64 i = 0; i < b; i++)
      if (!ct_mul_i64(*r, a, r))
        return FALSE;
      else if (*r == 0 || *r == 1)
        break; /* 0 and 1 stay; (-1)^b below */
    if (a == -1)
      *r = b % 2 ? -1 : 1;
    return TRUE;
  case CT_BINARY_MAX:
    *r = MAX(a, b);
    return TRUE;
  case CT_BINARY_MIN:
    *r = MIN(a, b);
    return TRUE;
  case CT_BINARY_PRELU:
    if (a >= 0) {
      *r = a;
      return TRUE;
    }
    return ct_mul_i64(a, b, r);
  }
  return FALSE;
}

/* a op b with ONNX's broadcasting (dims aligned at the end, 1 stretches). */
static gboolean fold_pair(ct_onnx *o, int k, ct_binary_op op, const ct_otensor *a,
                          const ct_otensor *b, ct_otensor **out) {
  const gboolean fa = is_float(a->dtype), fb = is_float(b->dtype);
  /* Pow takes any exponent; the others one type for both. */
  if (op == CT_BINARY_POW ? !fa && fb : a->dtype != b->dtype)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "combines %s and %s constants",
                             ct_onnx_dtype_name(o, a->dtype),
                             ct_onnx_dtype_name(o, b->dtype));
  const int r = MAX(a->rank, b->rank);
  gint64 dims[CT_ONNX_MAX_DIMS], sa[CT_ONNX_MAX_DIMS], sb[CT_ONNX_MAX_DIMS];
  gint64 stra[CT_ONNX_MAX_DIMS], strb[CT_ONNX_MAX_DIMS];
  strides_of(a->dims, a->rank, stra);
  strides_of(b->dims, b->rank, strb);
  for (int d = 0; d < r; d++) {
    const int ia = d - (r - a->rank), ib = d - (r - b->rank);
    const gint64 da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its constants of dims %s and %s do not broadcast",
                               ct_otensor_dims_text(o, a), ct_otensor_dims_text(o, b));
    dims[d] = da == 1 ? db : da;
    sa[d] = ia >= 0 && da != 1 ? stra[ia] : 0;
    sb[d] = ib >= 0 && db != 1 ? strb[ib] : 0;
  }
  ct_otensor *t = new_tensor(o, k, a->dtype, r, dims);
  if (!t)
    return FALSE;
  gint64 idx[CT_ONNX_MAX_DIMS] = {0};
  for (gint64 i = 0; i < t->count; i++) {
    gint64 ja = 0, jb = 0;
    for (int d = 0; d < r; d++) {
      ja += idx[d] * sa[d];
      jb += idx[d] * sb[d];
    }
    if (fa) {
      put_f(t, i, ct_binary_eval(op, ct_otensor_f64(a, ja), ct_otensor_f64(b, jb)));
    } else {
      gint64 v;
      if (!int_op(op, ct_otensor_i64(a, ja), ct_otensor_i64(b, jb), &v))
        return ct_onnx_node_fail(
            o, k, CT_MODEL_ERROR_NETWORK,
            "%s of the integers %lld and %lld overflows or divides by "
            "zero",
            o->nodes[k].proto->op_type, (long long)ct_otensor_i64(a, ja),
            (long long)ct_otensor_i64(b, jb));
      put_i(t, i, wrap_int(v, t->dtype));
    }
    next_index(idx, dims, r);
  }
  *out = t;
  return TRUE;
}

static gboolean fold_binary(ct_onnx *o, int k) {
  ct_binary_op op;
  ct_onnx_binary_op(o->nodes[k].proto->op_type, &op);
  const ct_onode *nd = &o->nodes[k];
  const gboolean variadic = op == CT_BINARY_MAX || op == CT_BINARY_MIN;
  if (!ct_attrs_check(o, k, NO_ATTRS) || !ct_onnx_outputs(o, k, 1, ""))
    return FALSE;
  if (variadic ? nd->n_inputs < 1 : nd->n_inputs != 2)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has %d inputs", nd->n_inputs);
  ct_otensor *acc;
  if (!in(o, k, 0, TRUE, &acc))
    return FALSE;
  for (int i = 1; i < nd->n_inputs; i++) {
    ct_otensor *x;
    if (!in(o, k, i, TRUE, &x) || !fold_pair(o, k, op, acc, x, &acc))
      return FALSE;
  }
  set_output(o, k, acc);
  return TRUE;
}

/* ---- reductions ---------------------------------------------------------- */

typedef enum {
  R_L1,
  R_L2,
  R_SUM,
  R_SUM_SQUARE,
  R_MEAN,
  R_MAX,
  R_MIN,
  R_PROD
} reduce_kind;

static const struct {
  const char *op;
  reduce_kind kind;
} reductions[] = {
    {"ReduceL1", R_L1},     {"ReduceL2", R_L2},
    {"ReduceSum", R_SUM},   {"ReduceSumSquare", R_SUM_SQUARE},
    {"ReduceMean", R_MEAN}, {"ReduceMax", R_MAX},
    {"ReduceMin", R_MIN},   {"ReduceProd", R_PROD},
};

static gboolean fold_reduce(ct_onnx *o, int k) {
  static const char *const attrs[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
  const char *op = o->nodes[k].proto->op_type;
  size_t which = 0;
  while (strcmp(reductions[which].op, op) != 0)
    which++;
  const reduce_kind kind = reductions[which].kind;
  ct_otensor *x;
  gint64 keep, noop, raw[CT_ONNX_MAX_DIMS];
  int axes[CT_ONNX_MAX_DIMS], n;
  if (!ct_attrs_check(o, k, attrs) || !ct_onnx_outputs(o, k, 1, "") ||
      !in(o, k, 0, TRUE, &x) || !ct_attr_int(o, k, "keepdims", 1, &keep) ||
      !ct_attr_int(o, k, "noop_with_empty_axes", 0, &noop) || !raw_axes(o, k, 1, raw, &n))
    return FALSE;
  n = MAX(n, 0);
  if (!norm_axes(o, k, raw, n, x->rank, axes))
    return FALSE;
  if (!is_float(x->dtype))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "reduces %s constants; this reader folds float ones",
                             ct_onnx_dtype_name(o, x->dtype));
  if (n == 0 && noop) {
    set_output(o, k, x);
    return TRUE;
  }
  gboolean mark[CT_ONNX_MAX_DIMS] = {FALSE};
  for (int a = 0; a < x->rank; a++)
    mark[a] = n == 0;
  for (int i = 0; i < n; i++)
    mark[axes[i]] = TRUE;
  gint64 kept[CT_ONNX_MAX_DIMS], dims[CT_ONNX_MAX_DIMS];
  int r = 0;
  gint64 group = 1;
  for (int a = 0; a < x->rank; a++) {
    kept[a] = mark[a] ? 1 : x->dims[a];
    group *= mark[a] ? x->dims[a] : 1;
    if (!mark[a] || keep)
      dims[r++] = kept[a];
  }
  ct_otensor *t = new_tensor(o, k, x->dtype, r, dims);
  double *acc = t ? ct_onnx_temp(o, t->count, sizeof(double)) : NULL;
  if (!acc)
    return FALSE;
  const double start = kind == R_MAX    ? -INFINITY
                       : kind == R_MIN  ? INFINITY
                       : kind == R_PROD ? 1
                                        : 0;
  for (gint64 i = 0; i < t->count; i++)
    acc[i] = start;
  gint64 idx[CT_ONNX_MAX_DIMS] = {0}, ostr[CT_ONNX_MAX_DIMS];
  strides_of(kept, x->rank, ostr);
  /* In double, in order: the sums of an exported weight norm are exact to
   * far below float32's rounding. */
  for (gint64 i = 0; i < x->count; i++) {
    gint64 j = 0;
    for (int a = 0; a < x->rank; a++)
      j += mark[a] ? 0 : idx[a] * ostr[a];
    const double v = ct_otensor_f64(x, i);
    switch (kind) {
    case R_L1:
      acc[j] += fabs(v);
      break;
    case R_L2:
    case R_SUM_SQUARE:
      acc[j] += v * v;
      break;
    case R_SUM:
    case R_MEAN:
      acc[j] += v;
      break;
    case R_MAX:
      acc[j] = isnan(v) || isnan(acc[j]) ? NAN : fmax(acc[j], v);
      break;
    case R_MIN:
      acc[j] = isnan(v) || isnan(acc[j]) ? NAN : fmin(acc[j], v);
      break;
    case R_PROD:
      acc[j] *= v;
      break;
    }
    next_index(idx, x->dims, x->rank);
  }
  for (gint64 i = 0; i < t->count; i++)
    put_f(t, i,
          kind == R_L2     ? sqrt(acc[i])
          : kind == R_MEAN ? acc[i] / (double)group
                           : acc[i]);
  set_output(o, k, t);
  return TRUE;
}

/* ---- dispatch ------------------------------------------------------------ */

typedef gboolean (*folder)(ct_onnx *o, int k);

static const struct {
  const char *op;
  folder fn;
} folders[] = {
    {"Constant", fold_constant}, {"ConstantOfShape", fold_constant_of_shape},
    {"Shape", fold_shape},       {"Gather", fold_gather},
    {"Concat", fold_concat},     {"Reshape", fold_reshape},
    {"Slice", fold_slice},       {"Transpose", fold_transpose},
    {"Cast", fold_cast},         {"Unsqueeze", fold_unsqueeze_only},
    {"Squeeze", fold_squeeze},
};

static folder find(const char *op) {
  ct_binary_op code;
  for (size_t i = 0; i < G_N_ELEMENTS(folders); i++)
    if (strcmp(folders[i].op, op) == 0)
      return folders[i].fn;
  for (size_t i = 0; i < G_N_ELEMENTS(reductions); i++)
    if (strcmp(reductions[i].op, op) == 0)
      return fold_reduce;
  if (ct_onnx_binary_op(op, &code))
    return fold_binary;
  return NULL;
}

gboolean ct_onnx_fold_knows(const char *op) {
  return find(op) != NULL;
}

gboolean ct_onnx_fold(ct_onnx *o, int k) {
  const char *op = o->nodes[k].proto->op_type;
  folder fn = find(op);
  if (fn)
    return fn(o, k);
  ct_node params = {0};
  gboolean ok;
  if (ct_onnx_unary_params(o, k, &params, &ok))
    return ok && fold_unary(o, k, &params);
  return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                           "every input is a constant, and this reader folds only "
                           "elementwise, shape and index operators, not %s",
                           op);
}
