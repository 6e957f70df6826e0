#include "model/build-layer.h"

#include <stdlib.h>

#include "model/dtype.h"
#include "model/hyperparams.h"
#include "model/weight-norm.h"

/* The tensors a layer's weight may come from, in the order they are tried
 * (the export tool's order): the weight itself, or a weight-normalised
 * pair (g, v) of either of PyTorch's two forms. */
static const char *const weight_forms[][2] = {
    {"weight", NULL},
    {"weight_g", "weight_v"},
    {"parametrizations.weight.original0", "parametrizations.weight.original1"},
};
enum { N_WEIGHT_FORMS = G_N_ELEMENTS(weight_forms) };

typedef struct {
  const ct_tensor *t; /* the weight, or v */
  const ct_tensor *g; /* NULL for a plain weight */
  gchar *name;        /* of t */
  gchar *g_name;      /* of g, or NULL */
} weight_source;

static gboolean missing_weight(ct_load *ld, const char *name, const ct_safetensors *st) {
  const guint n = st->n_tensors;
  if (n == 0)
    return ct_fail(ld, CT_MODEL_ERROR_LAYER, "no tensor %s (the file holds no tensors)",
                   ct_quote(ld, name));
  GString *list = g_string_new(NULL);
  for (guint i = 0; i < n && i < CT_LIST_MAX; i++) {
    if (i)
      g_string_append(list, ", ");
    const char *tname = st->tensors[i].name;
    ct_escape_append(list, tname, tname[0] == '\0', CT_QUOTE_MAX);
  }
  if (n > CT_LIST_MAX)
    g_string_append_printf(list, ", ... (%u in all)", n);
  ct_fail(ld, CT_MODEL_ERROR_LAYER, "no tensor %s (tensors in the file: %s)",
          ct_quote(ld, name), list->str);
  g_string_free(list, TRUE);
  return FALSE;
}

/* A pair missing one half, with a hint when it is spectral_norm's state. */
static gboolean half_pair(ct_load *ld, const ct_safetensors *st, const char *prefix,
                          int form, gchar *names[2], int have) {
  /* spectral_norm's state also has a weight_v (and weight_orig, weight_u). */
  gchar *orig = ct_layer_key(prefix, "weight_orig");
  gchar *hint = have == 1 && form == 1 && ct_safetensors_find(st, orig)
                    ? g_strdup_printf("; with %s it looks like torch.nn.utils."
                                      "spectral_norm, which is not supported (remove "
                                      "it before saving)",
                                      ct_quote(ld, orig))
                    : g_strdup("");
  ct_fail(ld, CT_MODEL_ERROR_LAYER,
          "%s without %s: a weight-normalised layer needs both (weight = g * v / "
          "||v||)%s",
          ct_quote(ld, names[have]), ct_quote(ld, names[1 - have]), hint);
  g_free(hint);
  g_free(orig);
  return FALSE;
}

/* Picks the first form present; the tensors of later forms are ignored with
 * a warning, a pair missing one half is refused. */
static gboolean find_weight(ct_load *ld, const ct_safetensors *st, const char *prefix,
                            weight_source *src) {
  gchar *names[N_WEIGHT_FORMS][2] = {{NULL}};
  const ct_tensor *found[N_WEIGHT_FORMS][2] = {{NULL}};
  int form = -1;
  for (int f = 0; f < N_WEIGHT_FORMS; f++) {
    for (int h = 0; h < 2 && weight_forms[f][h]; h++) {
      names[f][h] = ct_layer_key(prefix, weight_forms[f][h]);
      found[f][h] = ct_safetensors_find(st, names[f][h]);
      if (found[f][h] && form < 0)
        form = f;
    }
  }
  gboolean ok = TRUE;
  if (form < 0)
    ok = missing_weight(ld, names[0][0], st);
  else if (form > 0 && (!found[form][0] || !found[form][1]))
    ok = half_pair(ld, st, prefix, form, names[form], found[form][0] ? 0 : 1);
  if (ok) {
    GString *ignored = g_string_new(NULL);
    for (int f = form + 1; f < N_WEIGHT_FORMS; f++)
      for (int h = 0; h < 2 && weight_forms[f][h]; h++)
        if (found[f][h])
          g_string_append_printf(ignored, "%s%s", ignored->len ? ", " : "",
                                 ct_quote(ld, names[f][h]));
    if (ignored->len)
      ct_warn(ld, "the weight is %s%s%s; ignoring %s",
              ct_quote(ld, names[form][form ? 1 : 0]), form ? " with " : "",
              form ? ct_quote(ld, names[form][0]) : "", ignored->str);
    g_string_free(ignored, TRUE);
    *src = (weight_source){
        .t = found[form][form ? 1 : 0],
        .g = form ? found[form][0] : NULL,
        .name = g_strdup(names[form][form ? 1 : 0]),
        .g_name = form ? g_strdup(names[form][0]) : NULL,
    };
  }
  for (int f = 0; f < N_WEIGHT_FORMS; f++)
    for (int h = 0; h < 2; h++)
      g_free(names[f][h]);
  return ok;
}

/* Whether a layer without a prefix is in the file: then bare metadata keys
 * are its own. */
static gboolean has_bare_layer(const ct_safetensors *st) {
  for (int f = 0; f < N_WEIGHT_FORMS; f++)
    for (int h = 0; h < 2 && weight_forms[f][h]; h++)
      if (ct_safetensors_find(st, weight_forms[f][h]))
        return TRUE;
  return FALSE;
}

static gboolean check_float(ct_load *ld, const ct_tensor *t, const char *role,
                            const char *name) {
  if (ct_dtype_is_float(t->dtype))
    return TRUE;
  return ct_fail(ld, CT_MODEL_ERROR_LAYER,
                 "unsupported dtype %s for %s%s%s (F32, F16, BF16 or F64 are supported)",
                 ct_dtype_name(t->dtype), role, *role ? " " : "", ct_quote(ld, name));
}

/* Rank, dtype and sizes of the weight (or v). */
static gboolean check_weight(ct_load *ld, const weight_source *src, const gint64 *wdims,
                             int wrank) {
  if (wrank < 3 || wrank > 5)
    return ct_fail(ld, CT_MODEL_ERROR_LAYER,
                   "weight %s has rank %d (shape %s), but a ConvTranspose weight has "
                   "rank 3, 4 or 5 ([in_channels, out_channels/groups, kernel...] for "
                   "1d, 2d or 3d)",
                   ct_quote(ld, src->name), wrank, ct_dims_text(ld, wdims, wrank));
  if (!check_float(ld, src->t, "weight", src->name))
    return FALSE;
  for (int i = 0; i < wrank; i++) {
    if (wdims[i] == 0)
      return ct_fail(ld, CT_MODEL_ERROR_LAYER,
                     "weight %s has a zero size in its shape %s", ct_quote(ld, src->name),
                     ct_dims_text(ld, wdims, wrank));
  }
  return !src->g || check_float(ld, src->g, "", src->g_name);
}

ct_layer *ct_build_layer(ct_load *ld, const ct_safetensors *st, const char *prefix,
                         const CtOverrides *ov) {
  ct_hyperparams_warn_unknown(ld, st->metadata, prefix, has_bare_layer(st));
  weight_source src = {0};
  gchar *bname = ct_layer_key(prefix, "bias");
  const ct_tensor *bt = ct_safetensors_find(st, bname);
  gint64 *wdims = NULL, *bdims = NULL;
  float *weight = NULL, *bias = NULL;
  ct_layer *layer = NULL;
  int wrank = 0, brank = 0;
  ct_params params;

  if (!find_weight(ld, st, prefix, &src))
    goto out;
  /* A weight-normalised layer's shape and dtype are those of v. */
  wdims = ct_tensor_shape(src.t, &wrank);
  if (!check_weight(ld, &src, wdims, wrank))
    goto out;
  if (bt) {
    bdims = ct_tensor_shape(bt, &brank);
    if (!check_float(ld, bt, "bias", bname))
      goto out;
  }

  ct_params_init(&params, wrank - 2);
  params.in_channels = wdims[0];
  for (int a = 0; a < params.rank; a++)
    params.kernel[a] = wdims[2 + a];
  if (!ct_hyperparams_apply(ld, st->metadata, prefix, ov, &params))
    goto out;
  if (!ct_mul_i64(wdims[1], params.groups, &params.out_channels)) {
    ct_fail(ld, CT_MODEL_ERROR_LAYER, "out_channels %lld x groups %lld overflows",
            (long long)wdims[1], (long long)params.groups);
    goto out;
  }
  if (bt && (brank != 1 || bdims[0] != params.out_channels)) {
    ct_fail(ld, CT_MODEL_ERROR_LAYER,
            "bias %s has shape %s, but the layer has %lld output channels (weight %s, "
            "groups %lld), so it must be [%lld]",
            ct_quote(ld, bname), ct_dims_text(ld, bdims, brank),
            (long long)params.out_channels, ct_dims_text(ld, wdims, wrank),
            (long long)params.groups, (long long)params.out_channels);
    goto out;
  }
  char msg[256];
  if (ct_params_validate(&params, msg, sizeof msg) != CT_OK) {
    ct_fail(ld, CT_MODEL_ERROR_LAYER, "%s", msg);
    goto out;
  }

  /* Only now, with everything valid (the weight count within the limits),
   * read the layer's own bytes. */
  weight = src.g ? ct_weight_norm_fold(ld, st, src.g, src.g_name, src.t, src.name, wdims,
                                       wrank)
                 : ct_safetensors_read_f32(ld, st, src.t, "weight");
  if (!weight)
    goto out;
  if (bt && !(bias = ct_safetensors_read_f32(ld, st, bt, "bias")))
    goto out;
  if (!ct_check_unchanged(ld))
    goto out;
  /* The layer takes the buffers (freeing them if it fails). */
  layer = ct_layer_adopt(&params, weight, bias, msg, sizeof msg);
  weight = bias = NULL;
  if (!layer)
    ct_fail(ld, CT_MODEL_ERROR_LAYER, "%s", msg);

out:
  free(weight);
  free(bias);
  g_free(wdims);
  g_free(bdims);
  g_free(src.name);
  g_free(src.g_name);
  g_free(bname);
  return layer;
}
