#include "model/hyperparams.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* integer lists: "2", "1,2,2", "[1,2,2]" */

const char *ct_int_list_reason(ct_list_status st) {
  switch (st) {
  case CT_LIST_EMPTY:
    return "is empty";
  case CT_LIST_NEGATIVE:
    return "has a negative value";
  case CT_LIST_TOO_LARGE:
    return "has a value above 2147483647";
  case CT_LIST_TOO_MANY:
    return "has more than 3 values";
  default:
    return "is not an integer or a list of integers (e.g. \"2\", \"1,2,2\" or "
           "\"[1,2,2]\")";
  }
}

ct_list_status ct_int_list_parse(const char *text, gint64 values[CT_MAX_RANK],
                                 int *n_values, gboolean *bracketed) {
  const char *p = text ? text : "";
  int n = 0;
  while (g_ascii_isspace(*p))
    p++;
  if (!*p)
    return CT_LIST_EMPTY;
  *bracketed = *p == '[';
  if (*bracketed)
    p++;
  for (;;) {
    while (g_ascii_isspace(*p))
      p++;
    if (*p == '-' && g_ascii_isdigit(p[1]))
      return CT_LIST_NEGATIVE;
    if (!g_ascii_isdigit(*p))
      return CT_LIST_SYNTAX;
    gint64 v = 0;
    while (g_ascii_isdigit(*p)) {
      v = v * 10 + (*p++ - '0');
      if (v > CT_MAX_PARAM)
        return CT_LIST_TOO_LARGE;
    }
    if (n == CT_MAX_RANK)
      return CT_LIST_TOO_MANY;
    values[n++] = v;
    while (g_ascii_isspace(*p))
      p++;
    if (*p != ',')
      break;
    p++;
  }
  if (*bracketed) {
    if (*p != ']')
      return CT_LIST_SYNTAX;
    p++;
    while (g_ascii_isspace(*p))
      p++;
  }
  if (*p)
    return CT_LIST_SYNTAX;
  *n_values = n;
  return CT_LIST_OK;
}

gchar *ct_layer_key(const char *prefix, const char *suffix) {
  return prefix ? g_strdup_printf("%s.%s", prefix, suffix) : g_strdup(suffix);
}

/* ------------------------------------------------------------------------ */
/* unknown keys */

static const char *const known_keys[] = {"stride", "padding", "output_padding",
                                         "dilation", "groups"};

static gboolean is_known_key(const char *key) {
  for (gsize i = 0; i < G_N_ELEMENTS(known_keys); i++)
    if (strcmp(key, known_keys[i]) == 0)
      return TRUE;
  return FALSE;
}

/* Levenshtein distance, for suggestions; long strings count as far. */
static int edit_distance(const char *a, const char *b) {
  enum { MAX = 32 };
  const size_t n = strlen(a), m = strlen(b);
  if (n > MAX || m > MAX)
    return MAX;
  int prev[MAX + 1], cur[MAX + 1];
  for (size_t j = 0; j <= m; j++)
    prev[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int best = prev[j - 1] + (g_ascii_tolower(a[i - 1]) != g_ascii_tolower(b[j - 1]));
      if (prev[j] + 1 < best)
        best = prev[j] + 1;
      if (cur[j - 1] + 1 < best)
        best = cur[j - 1] + 1;
      cur[j] = best;
    }
    memcpy(prev, cur, sizeof cur);
  }
  return prev[m];
}

/* The known key an unknown one was likely meant to be ("strides", "Stride",
 * "pad", "group"), or NULL. */
static const char *suggest_key(const char *key) {
  for (gsize i = 0; i < G_N_ELEMENTS(known_keys); i++)
    if (edit_distance(key, known_keys[i]) <= 2 ||
        (strlen(key) >= 3 && g_str_has_prefix(known_keys[i], key)))
      return known_keys[i];
  return NULL;
}

/* Why a key that PyTorch's layer has is not needed, or "". */
static const char *key_note(const char *key) {
  static const char *const from_tensors[] = {"in_channels", "out_channels", "kernel_size",
                                             "bias"};
  for (gsize i = 0; i < G_N_ELEMENTS(from_tensors); i++)
    if (strcmp(key, from_tensors[i]) == 0)
      return " (the channels, the kernel and the bias come from the tensors)";
  if (strcmp(key, "padding_mode") == 0)
    return " (the padding is zeros, PyTorch's padding_mode='zeros', the only mode "
           "supported)";
  return "";
}

/* A typo would otherwise silently leave a default. With a prefix P the
 * layer's keys are "P.KEY"; without, bare keys. safetensors.torch.save_file's
 * "format" and the keys of other layers ("Q.stride", or "P.sub.stride") are
 * not this layer's. Bare hyper-parameters with a prefix are warned of only
 * when no bare layer could own them. */
void ct_hyperparams_warn_unknown(ct_load *ld, JsonObject *metadata, const char *prefix,
                                 gboolean bare_layer) {
  if (!metadata)
    return;
  const size_t plen = prefix ? strlen(prefix) : 0;
  GList *keys = json_object_get_members(metadata);
  for (GList *l = keys; l; l = l->next) {
    const char *key = l->data, *own = key;
    if (prefix) {
      if (strncmp(key, prefix, plen) != 0 || key[plen] != '.') {
        if (is_known_key(key) && !bare_layer) {
          gchar *meant = ct_layer_key(prefix, key);
          ct_warn(ld,
                  "ignoring metadata key %s: the file has no layer without a prefix, "
                  "and the keys of layer %s are %s and so on",
                  ct_quote(ld, key), ct_quote(ld, prefix), ct_quote(ld, meant));
          g_free(meant);
        }
        continue;
      }
      own = key + plen + 1;
    } else if (strcmp(key, "format") == 0) {
      continue;
    }
    if (strchr(own, '.') || is_known_key(own))
      continue;
    const char *like = suggest_key(own);
    gchar *meant = like ? ct_layer_key(prefix, like) : NULL;
    gchar *dot = prefix ? ct_layer_key(prefix, "") : NULL;
    gchar *after =
        dot ? g_strdup_printf(", each after %s", ct_quote(ld, dot)) : g_strdup("");
    g_free(dot);
    ct_warn(ld,
            "ignoring metadata key %s%s%s%s%s: the known keys are stride, padding, "
            "output_padding, dilation and groups%s",
            ct_quote(ld, key), key_note(own), meant ? " (did you mean " : "",
            meant ? ct_quote(ld, meant) : "", meant ? "?)" : "", after);
    g_free(meant);
    g_free(after);
  }
  g_list_free(keys);
}

/* ------------------------------------------------------------------------ */
/* values */

/* The metadata's value for one of the layer's keys, parsed as a list. */
typedef struct {
  gchar *key;       /* "P.name", g_free'd by the caller */
  const char *text; /* NULL: no such key */
  ct_list_status st;
  gint64 values[CT_MAX_RANK];
  int n;
  gboolean bracketed;
} metadata_value;

static void metadata_value_get(JsonObject *metadata, const char *prefix, const char *name,
                               metadata_value *mv) {
  *mv = (metadata_value){.key = ct_layer_key(prefix, name)};
  if (metadata && json_object_has_member(metadata, mv->key))
    mv->text = json_object_get_string_member(metadata, mv->key);
  if (mv->text)
    mv->st = ct_int_list_parse(mv->text, mv->values, &mv->n, &mv->bracketed);
}

/* One per-axis hyper-parameter: metadata first, then the override. */
static gboolean apply_axis_param(ct_load *ld, JsonObject *metadata, const char *prefix,
                                 const char *name, const CtAxisOverride *ov, int rank,
                                 int64_t dst[CT_MAX_RANK]) {
  metadata_value mv;
  metadata_value_get(metadata, prefix, name, &mv);
  gboolean ok = TRUE;
  if (mv.text && mv.st != CT_LIST_OK)
    ok = ct_fail(ld, CT_MODEL_ERROR_LAYER, "metadata %s = %s %s", ct_quote(ld, mv.key),
                 ct_quote(ld, mv.text), ct_int_list_reason(mv.st));
  /* A bare integer applies to every axis; a list needs one per axis. */
  else if (mv.text && (mv.n != 1 || mv.bracketed) && mv.n != rank)
    ok = ct_fail(ld, CT_MODEL_ERROR_LAYER,
                 "metadata %s = %s has %d value%s, but the layer has %d spatial axes",
                 ct_quote(ld, mv.key), ct_quote(ld, mv.text), mv.n, mv.n == 1 ? "" : "s",
                 rank);
  for (int a = 0; ok && mv.text && a < rank; a++)
    dst[a] = mv.values[mv.n == 1 ? 0 : a];
  g_free(mv.key);
  if (!ok)
    return FALSE;
  if (ov && ov->set) {
    if (ov->n_values != 1 && ov->n_values != rank)
      return ct_fail(ld, CT_MODEL_ERROR_LAYER,
                     "%s override has %d values, but the layer has %d spatial axes "
                     "(give 1 or %d)",
                     name, ov->n_values, rank, rank);
    for (int a = 0; a < rank; a++)
      dst[a] = ov->values[ov->n_values == 1 ? 0 : a];
  }
  return TRUE;
}

static gboolean apply_groups(ct_load *ld, JsonObject *metadata, const char *prefix,
                             const CtOverrides *ov, int64_t *groups) {
  metadata_value mv;
  metadata_value_get(metadata, prefix, "groups", &mv);
  ct_list_status st = mv.st;
  if (st == CT_LIST_OK && (mv.n != 1 || mv.bracketed))
    st = CT_LIST_SYNTAX;
  gboolean ok = TRUE;
  *groups = 1;
  if (mv.text && st != CT_LIST_OK)
    ok = ct_fail(ld, CT_MODEL_ERROR_LAYER, "metadata %s = %s is not an integer%s",
                 ct_quote(ld, mv.key), ct_quote(ld, mv.text),
                 st == CT_LIST_NEGATIVE    ? " (it is negative)"
                 : st == CT_LIST_TOO_LARGE ? " in range (at most 2147483647)"
                                           : "");
  else if (mv.text)
    *groups = mv.values[0];
  g_free(mv.key);
  if (!ok)
    return FALSE;
  if (ov && ov->groups_set)
    *groups = ov->groups;
  if (*groups < 1 || *groups > CT_MAX_PARAM)
    return ct_fail(ld, CT_MODEL_ERROR_LAYER,
                   "groups %lld must be between 1 and 2147483647", (long long)*groups);
  return TRUE;
}

gboolean ct_hyperparams_apply(ct_load *ld, JsonObject *metadata, const char *prefix,
                              const CtOverrides *ov, ct_params *params) {
  const struct {
    const char *name;
    const CtAxisOverride *ov;
    int64_t *dst;
  } axis[] = {
      {"stride", ov ? &ov->stride : NULL, params->stride},
      {"padding", ov ? &ov->padding : NULL, params->padding},
      {"output_padding", ov ? &ov->output_padding : NULL, params->output_padding},
      {"dilation", ov ? &ov->dilation : NULL, params->dilation},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(axis); i++) {
    if (!apply_axis_param(ld, metadata, prefix, axis[i].name, axis[i].ov, params->rank,
                          axis[i].dst))
      return FALSE;
  }
  return apply_groups(ld, metadata, prefix, ov, &params->groups);
}
