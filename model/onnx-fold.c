/* Folding: the tensors folders make, the arithmetic (elementwise
 * operators with ONNX's broadcasting, reductions) and the dispatch; the
 * shape and index operators are in onnx-fold-shape.c. Every fold makes its
 * output through ct_fold_new, which checks the size against the element
 * limit and the load's budget before allocating; reshapes (Reshape,
 * Unsqueeze, Squeeze, Identity) share their input's elements. Integer
 * arithmetic is checked: an overflow or a division by zero is refused,
 * never wrapped. */
#include "model/onnx-fold-private.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model/dtype.h"
#include "model/onnx-attrs.h"
#include "model/onnx-nodes.h"
#include "model/onnx-tensor.h"

static const char *const NO_ATTRS[] = {NULL};

/* ---- tensors ------------------------------------------------------------- */

gboolean ct_fold_is_float(int dtype) {
  return ct_onnx_dtype_is_float(dtype);
}

/* A new tensor for node k's output, its elements zeroed. */
ct_otensor *ct_fold_new(ct_onnx *o, int k, int dtype, int rank, const gint64 *dims) {
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
  } else if (ct_fold_is_float(dtype)) {
    t->src = CT_SRC_F32;
    t->data = ct_onnx_temp(o, count, sizeof(float));
  } else {
    t->src = CT_SRC_I64;
    t->data = ct_onnx_temp(o, count, sizeof(gint64));
  }
  return t->data ? t : NULL;
}

/* A tensor with t's elements and other dims (same count). */
ct_otensor *ct_fold_reshaped(ct_onnx *o, const ct_otensor *t, int rank,
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
void ct_fold_put_f(ct_otensor *t, gint64 i, double v) {
  if (t->src == CT_SRC_F64)
    ((double *)t->data)[i] = v;
  else
    ((float *)t->data)[i] = ct_f64_to_f32(v);
}

void ct_fold_put_i(ct_otensor *t, gint64 i, gint64 v) {
  ((gint64 *)t->data)[i] = v;
}

/* Copies element j of s into element i of d (same dtype). */
void ct_fold_copy(ct_otensor *d, gint64 i, const ct_otensor *s, gint64 j) {
  if (ct_fold_is_float(d->dtype))
    ct_fold_put_f(d, i, ct_otensor_f64(s, j));
  else
    ct_fold_put_i(d, i, ct_otensor_i64(s, j));
}

void ct_fold_set_output(ct_onnx *o, int k, ct_otensor *t) {
  o->nodes[k].outputs[0]->constant = t;
}

/* Constant input i (all inputs of a folded node are), NULL if absent. */
gboolean ct_fold_in(ct_onnx *o, int k, int i, gboolean required, ct_otensor **out) {
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
gboolean ct_fold_int_list(ct_onnx *o, int k, const ct_otensor *t, const char *role) {
  if (ct_fold_is_float(t->dtype) || t->rank > 1)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "its %s is %s with dims %s, not a list of integers", role,
                             ct_onnx_dtype_name(o, t->dtype), ct_otensor_dims_text(o, t));
  return TRUE;
}

/* An axis in [-rank, rank) made non-negative, or the error. */
gboolean ct_fold_axis(ct_onnx *o, int k, gint64 axis, int rank, int *out) {
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
gboolean ct_fold_raw_axes(ct_onnx *o, int k, int input, gint64 *v, int *n) {
  if (!ct_attr_ints(o, k, "axes", v, CT_ONNX_MAX_DIMS, n))
    return FALSE;
  ct_otensor *t = NULL;
  if (*n < 0 && input >= 0 && !ct_fold_in(o, k, input, FALSE, &t))
    return FALSE;
  if (!t)
    return TRUE;
  if (!ct_fold_int_list(o, k, t, "axes"))
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
gboolean ct_fold_axes(ct_onnx *o, int k, const gint64 *v, int n, int rank, int *axes) {
  gboolean seen[CT_ONNX_MAX_DIMS] = {FALSE};
  for (int i = 0; i < n; i++) {
    if (!ct_fold_axis(o, k, v[i], rank, &axes[i]))
      return FALSE;
    if (seen[axes[i]])
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "axis %lld is given twice",
                               (long long)v[i]);
    seen[axes[i]] = TRUE;
  }
  return TRUE;
}

/* Row-major strides of dims. */
void ct_fold_strides(const gint64 *dims, int rank, gint64 *strides) {
  gint64 s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
}

/* Advances a multi-index over dims; FALSE after the last. */
gboolean ct_fold_next(gint64 *idx, const gint64 *dims, int rank) {
  for (int i = rank - 1; i >= 0; i--) {
    if (++idx[i] < dims[i])
      return TRUE;
    idx[i] = 0;
  }
  return FALSE;
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
      !ct_fold_in(o, k, 0, TRUE, &x))
    return FALSE;
  if (params.op_code == CT_UNARY_IDENTITY) {
    ct_fold_set_output(o, k, x);
    return TRUE;
  }
  const gboolean exact_int = params.op_code == CT_UNARY_NEG ||
                             params.op_code == CT_UNARY_ABS ||
                             params.op_code == CT_UNARY_RELU;
  if (!ct_fold_is_float(x->dtype) && !exact_int)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "applies %s to %s constants",
                             op, ct_onnx_dtype_name(o, x->dtype));
  ct_otensor *t = ct_fold_new(o, k, x->dtype, x->rank, x->dims);
  if (!t)
    return FALSE;
  for (gint64 i = 0; i < x->count; i++) {
    if (ct_fold_is_float(x->dtype)) {
      ct_fold_put_f(t, i, ct_unary_eval(&params, ct_otensor_f64(x, i)));
      continue;
    }
    const gint64 v = ct_otensor_i64(x, i);
    if (v == G_MININT64 && params.op_code != CT_UNARY_RELU)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "overflows int64");
    ct_fold_put_i(t, i,
                  params.op_code == CT_UNARY_NEG   ? -v
                  : params.op_code == CT_UNARY_ABS ? (v < 0 ? -v : v)
                                                   : MAX(v, 0));
  }
  ct_fold_set_output(o, k, t);
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
  const gboolean fa = ct_fold_is_float(a->dtype), fb = ct_fold_is_float(b->dtype);
  /* Pow takes any exponent; the others one type for both. */
  if (op == CT_BINARY_POW ? !fa && fb : a->dtype != b->dtype)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "combines %s and %s constants",
                             ct_onnx_dtype_name(o, a->dtype),
                             ct_onnx_dtype_name(o, b->dtype));
  const int r = MAX(a->rank, b->rank);
  gint64 dims[CT_ONNX_MAX_DIMS], sa[CT_ONNX_MAX_DIMS], sb[CT_ONNX_MAX_DIMS];
  gint64 stra[CT_ONNX_MAX_DIMS], strb[CT_ONNX_MAX_DIMS];
  ct_fold_strides(a->dims, a->rank, stra);
  ct_fold_strides(b->dims, b->rank, strb);
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
  ct_otensor *t = ct_fold_new(o, k, a->dtype, r, dims);
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
      ct_fold_put_f(t, i,
                    ct_binary_eval(op, ct_otensor_f64(a, ja), ct_otensor_f64(b, jb)));
    } else {
      gint64 v;
      if (!int_op(op, ct_otensor_i64(a, ja), ct_otensor_i64(b, jb), &v))
        return ct_onnx_node_fail(
            o, k, CT_MODEL_ERROR_NETWORK,
            "%s of the integers %lld and %lld overflows or divides by "
            "zero",
            o->nodes[k].proto->op_type, (long long)ct_otensor_i64(a, ja),
            (long long)ct_otensor_i64(b, jb));
      ct_fold_put_i(t, i, ct_fold_wrap_int(v, t->dtype));
    }
    ct_fold_next(idx, dims, r);
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
  if (!ct_fold_in(o, k, 0, TRUE, &acc))
    return FALSE;
  for (int i = 1; i < nd->n_inputs; i++) {
    ct_otensor *x;
    if (!ct_fold_in(o, k, i, TRUE, &x) || !fold_pair(o, k, op, acc, x, &acc))
      return FALSE;
  }
  ct_fold_set_output(o, k, acc);
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
      !ct_fold_in(o, k, 0, TRUE, &x) || !ct_attr_int(o, k, "keepdims", 1, &keep) ||
      !ct_attr_int(o, k, "noop_with_empty_axes", 0, &noop) ||
      !ct_fold_raw_axes(o, k, 1, raw, &n))
    return FALSE;
  n = MAX(n, 0);
  if (!ct_fold_axes(o, k, raw, n, x->rank, axes))
    return FALSE;
  if (!ct_fold_is_float(x->dtype))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "reduces %s constants; this reader folds float ones",
                             ct_onnx_dtype_name(o, x->dtype));
  if (n == 0 && noop) {
    ct_fold_set_output(o, k, x);
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
  ct_otensor *t = ct_fold_new(o, k, x->dtype, r, dims);
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
  ct_fold_strides(kept, x->rank, ostr);
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
    ct_fold_next(idx, x->dims, x->rank);
  }
  for (gint64 i = 0; i < t->count; i++)
    ct_fold_put_f(t, i,
                  kind == R_L2     ? sqrt(acc[i])
                  : kind == R_MEAN ? acc[i] / (double)group
                                   : acc[i]);
  ct_fold_set_output(o, k, t);
  return TRUE;
}

/* ---- dispatch ------------------------------------------------------------ */

typedef gboolean (*folder)(ct_onnx *o, int k);

static const struct {
  const char *op;
  folder fn;
} folders[] = {
    {"Constant", ct_fold_constant}, {"ConstantOfShape", ct_fold_constant_of_shape},
    {"Shape", ct_fold_shape},       {"Gather", ct_fold_gather},
    {"Concat", ct_fold_concat},     {"Reshape", ct_fold_reshape},
    {"Slice", ct_fold_slice},       {"Transpose", ct_fold_transpose},
    {"Cast", ct_fold_cast},         {"Unsqueeze", ct_fold_unsqueeze},
    {"Squeeze", ct_fold_squeeze},
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
