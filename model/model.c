/* The model loader's entry: opens the file, reads its container, builds the
 * layer. Today's only container is safetensors (model/safetensors.c); the
 * layer comes from model/build-layer.c. */
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "model/build-layer.h"
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

/* Opens path as a regular file, without hanging on a FIFO. */
static gboolean open_file(ct_load *ld, const gchar *path) {
  /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
  ld->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (ld->fd < 0) {
    int e = errno;
    return ct_fail(ld, CT_MODEL_ERROR_IO, "cannot open: %s", g_strerror(e));
  }
  if (fstat(ld->fd, &ld->st) != 0) {
    int e = errno;
    return ct_fail(ld, CT_MODEL_ERROR_IO, "cannot stat: %s", g_strerror(e));
  }
  if (S_ISDIR(ld->st.st_mode))
    return ct_fail(ld, CT_MODEL_ERROR_IO, "is a directory, not a model file");
  if (!S_ISREG(ld->st.st_mode))
    return ct_fail(ld, CT_MODEL_ERROR_IO, "not a regular file");
  int flags = fcntl(ld->fd, F_GETFL);
  if (flags >= 0)
    fcntl(ld->fd, F_SETFL, flags & ~O_NONBLOCK);
  ld->file_size = (gint64)ld->st.st_size;
  return TRUE;
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
  if (open_file(&ld, path) && ct_safetensors_open(&ld, &st))
    layer = ct_build_layer(&ld, &st, prefix, overrides);

  if (ld.fd >= 0)
    close(ld.fd);
  ct_safetensors_clear(&st);
  g_free(prefix);
  g_string_chunk_free(ld.scratch);
  g_free(ld.display);
  return layer;
}
