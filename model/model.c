/* The model loader's entry: opens the file, reads its container, builds the
 * layer (model/safetensors.c, model/build-layer.c); or, by the file's
 * content, hands an ONNX network to model/onnx.c. */
#include "model/model.h"

#include <string.h>
#include <unistd.h>

#include "model/build-layer.h"
#include "model/onnx.h"
#include "model/hyperparams.h"
#include "model/load-context.h"
#include "model/safetensors.h"

GQuark ct_model_error_quark(void) {
  return g_quark_from_static_string("ct-model-error-quark");
}

gboolean ct_axis_override_parse(const gchar *text, CtAxisOverride *out, GError **error) {
  gint64 values[CT_MAX_RANK];
  int n = 0;
  gboolean bracketed = FALSE;
  ct_list_status st = ct_int_list_parse(text, values, &n, &bracketed);
  if (st != CT_LIST_OK) {
    GString *q = g_string_new(NULL);
    ct_escape_append(q, text ? text : "", TRUE, CT_QUOTE_MAX);
    g_set_error(error, CT_MODEL_ERROR, CT_MODEL_ERROR_LAYER, "%s %s", q->str,
                ct_int_list_reason(st));
    g_string_free(q, TRUE);
    return FALSE;
  }
  /* out is left alone on failure, so a caller keeps its previous value. */
  *out = (CtAxisOverride){.set = TRUE, .n_values = n};
  memcpy(out->values, values, (size_t)n * sizeof values[0]);
  return TRUE;
}

/* How many bytes the sniff reads: enough for a safetensors header's first
 * byte and an ONNX file's first two fields (a longer first field is cut
 * short, which still sniffs as ONNX). */
#define SNIFF_BYTES 64

static CtFileKind sniff_bytes(const guint8 *b, gsize n, gint64 file_size) {
  /* A safetensors file is its header's length, then the header's '{'. */
  guint64 len = 0;
  for (int i = 7; n > 8 && i >= 0; i--)
    len = len << 8 | b[i];
  if (n > 8 && b[8] == '{' && len <= (guint64)file_size - 8)
    return CT_FILE_SAFETENSORS;
  return ct_onnx_sniff(b, n) ? CT_FILE_ONNX : CT_FILE_SAFETENSORS;
}

static gboolean sniff_open(ct_load *ld, CtFileKind *kind) {
  guint8 b[SNIFF_BYTES];
  const gsize n = (gsize)MIN(ld->file_size, (gint64)sizeof b);
  if (!ct_read_at(ld, b, n, 0))
    return FALSE;
  *kind = sniff_bytes(b, n, ld->file_size);
  return TRUE;
}

/* A layer is asked for and the file holds a network: say so. TRUE when the
 * load stops (an ONNX file, or the file cannot be read). */
static gboolean refuse_onnx(ct_load *ld) {
  CtFileKind kind;
  if (!sniff_open(ld, &kind))
    return TRUE;
  if (kind == CT_FILE_ONNX)
    return !ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                    "is an ONNX network, not a single .safetensors layer");
  return FALSE;
}

gboolean ct_model_sniff(const gchar *path, CtFileKind *kind, GError **error) {
  ct_load ld = {
      .display = g_filename_display_name(path ? path : ""),
      .error = error,
      .fd = -1,
  };
  gboolean ok = path && *path ? ct_open_file(&ld, path) && sniff_open(&ld, kind)
                              : ct_fail(&ld, CT_MODEL_ERROR_IO, "no model file given");
  if (ld.fd >= 0)
    close(ld.fd);
  g_free(ld.display);
  return ok;
}

CtLoadedModel *ct_model_open(const gchar *path, const gchar *layer_prefix,
                             const CtOverrides *overrides, GPtrArray *warnings,
                             GError **error) {
  CtFileKind kind = CT_FILE_SAFETENSORS;
  if (path && *path && !ct_model_sniff(path, &kind, error))
    return NULL;
  CtLoadedModel *m = g_new0(CtLoadedModel, 1);
  if (kind == CT_FILE_SAFETENSORS) {
    m->kind = CT_MODEL_LAYER;
    m->layer = ct_model_load_full(path, layer_prefix, overrides, warnings, error);
    if (m->layer)
      return m;
    g_free(m);
    return NULL;
  }
  const gboolean shaped = overrides && (overrides->stride.set || overrides->padding.set ||
                                        overrides->output_padding.set ||
                                        overrides->dilation.set || overrides->groups_set);
  if ((layer_prefix && *layer_prefix) || shaped) {
    gchar *display = g_filename_display_name(path);
    g_set_error(error, CT_MODEL_ERROR, CT_MODEL_ERROR_NETWORK,
                "%s: is an ONNX network: a layer prefix and hyper-parameter overrides "
                "apply to a single .safetensors layer only",
                display);
    g_free(display);
    g_free(m);
    return NULL;
  }
  m->kind = CT_MODEL_NETWORK;
  m->network = ct_onnx_load(path, error);
  if (m->network)
    return m;
  g_free(m);
  return NULL;
}

void ct_model_close(CtLoadedModel *model) {
  if (!model)
    return;
  ct_layer_free(model->layer);
  ct_onnx_free(model->network);
  g_free(model);
}

ct_layer *ct_model_load(const gchar *path, const gchar *layer_prefix,
                        const CtOverrides *overrides, GError **error) {
  return ct_model_load_full(path, layer_prefix, overrides, NULL, error);
}

ct_layer *ct_model_load_full(const gchar *path, const gchar *layer_prefix,
                             const CtOverrides *overrides, GPtrArray *warnings,
                             GError **error) {
  if (!path || !*path) {
    g_set_error_literal(error, CT_MODEL_ERROR, CT_MODEL_ERROR_IO, "no model file given");
    return NULL;
  }
  ct_load ld = {
      .display = g_filename_display_name(path),
      .error = error,
      .warnings = warnings,
      .scratch = g_string_chunk_new(256),
      .fd = -1,
  };
  /* "P." and "P" name the same layer. */
  gchar *prefix = NULL;
  if (layer_prefix && *layer_prefix) {
    prefix = g_strdup(layer_prefix);
    size_t len = strlen(prefix);
    if (len > 1 && prefix[len - 1] == '.')
      prefix[len - 1] = '\0';
  }
  ct_safetensors st = {0};
  ct_layer *layer = NULL;
  if (ct_open_file(&ld, path) && !refuse_onnx(&ld) && ct_safetensors_open(&ld, &st))
    layer = ct_build_layer(&ld, &st, prefix, overrides);

  if (ld.fd >= 0)
    close(ld.fd);
  ct_safetensors_clear(&st);
  g_free(prefix);
  g_string_chunk_free(ld.scratch);
  g_free(ld.display);
  return layer;
}
