/* weight_norm stores a layer's weight as g and v, weight = g * v / ||v||,
 * the norm taken over every axis where g has size 1: g is v's shape with
 * size 1 on every axis but `dim` (default 0), or a scalar for dim=None. The
 * pair is folded on load, in double, into the float32 weight PyTorch
 * computes. */
#include "model/weight-norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/geometry.h"
#include "model/dtype.h"

/* v's values in order belong to runs of `inner` values per index of the
 * kept axis, n_groups of them repeating (one group: the norm of all). */
typedef struct {
  gint64 inner, n_groups;
  gint64 group, left; /* where the walk is */
  double *acc;        /* per group: the sum of squares, then g / norm */
  float *out;         /* the folded weight, filled in order */
  gint64 filled;
} fold_walk;

static void walk_start(fold_walk *f) {
  f->group = 0;
  f->left = f->inner;
  f->filled = 0;
}

static void walk_step(fold_walk *f) {
  if (--f->left == 0) {
    f->group = f->group + 1 == f->n_groups ? 0 : f->group + 1;
    f->left = f->inner;
  }
}

static void sum_squares(void *ctx, const double *v, gint64 n) {
  fold_walk *f = ctx;
  for (gint64 i = 0; i < n; i++, walk_step(f))
    f->acc[f->group] += v[i] * v[i];
}

static void scale_values(void *ctx, const double *v, gint64 n) {
  fold_walk *f = ctx;
  for (gint64 i = 0; i < n; i++, walk_step(f))
    f->out[f->filled++] = ct_f64_to_f32(v[i] * f->acc[f->group]);
}

static void store_values(void *ctx, const double *v, gint64 n) {
  fold_walk *f = ctx; /* g, into acc's second half */
  memcpy(f->acc + f->n_groups + f->filled, v, (size_t)n * sizeof(double));
  f->filled += n;
}

/* The axis g keeps (-1: the norm of the whole of v), or FALSE with an error
 * when g's shape is not one weight_norm gives. */
static gboolean norm_axis(ct_load *ld, const ct_tensor *g, const char *g_name,
                          const char *v_name, const gint64 *vdims, int vrank, int *axis) {
  int grank;
  gint64 *gdims = ct_tensor_shape(g, &grank);
  gboolean ok = grank == 0 || grank == vrank;
  *axis = -1;
  for (int a = 0; ok && grank && a < vrank; a++) {
    if (gdims[a] == vdims[a] && vdims[a] != 1) {
      ok = *axis < 0;
      *axis = a;
    } else {
      ok = gdims[a] == 1;
    }
  }
  if (!ok)
    ct_fail(ld, CT_MODEL_ERROR_LAYER,
            "%s has shape %s, which does not fit %s of shape %s: weight_norm's g is v's "
            "shape with size 1 on every axis but its dim, or a scalar (dim=None)",
            ct_quote(ld, g_name), ct_dims_text(ld, gdims, grank), ct_quote(ld, v_name),
            ct_dims_text(ld, vdims, vrank));
  g_free(gdims);
  return ok;
}

/* acc[i] = g[i] / ||v over group i||, or FALSE with the error set. */
static gboolean scale_per_group(ct_load *ld, fold_walk *f, int axis, const char *v_name) {
  gboolean ok = TRUE;
  for (gint64 i = 0; ok && i < f->n_groups; i++) {
    const double norm = sqrt(f->acc[i]);
    gchar *where = axis < 0
                       ? g_strdup("the whole tensor")
                       : g_strdup_printf("index %lld of axis %d", (long long)i, axis);
    if (!isfinite(norm))
      ok = ct_fail(ld, CT_MODEL_ERROR_LAYER,
                   "the norm of %s over %s is not finite (it holds an inf or a nan, or "
                   "values too large to square), so weight = g * v / ||v|| is not a "
                   "number",
                   ct_quote(ld, v_name), where);
    else if (norm == 0)
      ok = ct_fail(ld, CT_MODEL_ERROR_LAYER,
                   "%s is all zeros over %s, so weight = g * v / ||v|| divides by a "
                   "zero norm (PyTorch gives NaN)",
                   ct_quote(ld, v_name), where);
    else
      f->acc[i] = f->acc[f->n_groups + i] / norm;
    g_free(where);
  }
  return ok;
}

float *ct_weight_norm_fold(ct_load *ld, const ct_safetensors *st, const ct_tensor *g,
                           const char *g_name, const ct_tensor *v, const char *v_name,
                           const gint64 *vdims, int vrank) {
  int axis;
  if (!norm_axis(ld, g, g_name, v_name, vdims, vrank, &axis))
    return NULL;
  fold_walk f = {.inner = 1, .n_groups = axis < 0 ? 1 : vdims[axis]};
  gint64 count = 1;
  for (int a = 0; a < vrank; a++) {
    count *= vdims[a]; /* checked with the layer's weight count */
    if (a > axis)
      f.inner *= vdims[a];
  }
  size_t acc_bytes, out_bytes;
  if (!ct_bytes_for(2 * f.n_groups, sizeof(double), &acc_bytes) ||
      !ct_bytes_for(count, sizeof(float), &out_bytes) ||
      !(f.acc = g_try_malloc0(acc_bytes)) || !(f.out = malloc(out_bytes))) {
    g_free(f.acc);
    ct_fail(ld, CT_MODEL_ERROR_LAYER, "out of memory for weight %s (%lld values)",
            ct_quote(ld, v_name), (long long)count);
    return NULL;
  }
  walk_start(&f);
  gboolean ok = ct_safetensors_scan_f64(ld, st, g, store_values, &f);
  walk_start(&f);
  ok = ok && ct_safetensors_scan_f64(ld, st, v, sum_squares, &f);
  ok = ok && scale_per_group(ld, &f, axis, v_name);
  walk_start(&f);
  ok = ok && ct_safetensors_scan_f64(ld, st, v, scale_values, &f);
  g_free(f.acc);
  if (!ok) {
    free(f.out);
    return NULL;
  }
  return f.out;
}
