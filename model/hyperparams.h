/* A layer's hyper-parameters from the metadata (contract section 3): the
 * per-axis integer lists of stride, padding, output_padding and dilation,
 * groups, the user's overrides over them, and warnings for the keys of the
 * layer that are none of these. Internal to model/. */
#ifndef CT_MODEL_HYPERPARAMS_H
#define CT_MODEL_HYPERPARAMS_H

#include <json-glib/json-glib.h>

#include "kernels/layer.h"
#include "model/load-context.h"

typedef enum {
  CT_LIST_OK,
  CT_LIST_EMPTY,
  CT_LIST_SYNTAX,
  CT_LIST_NEGATIVE,
  CT_LIST_TOO_LARGE,
  CT_LIST_TOO_MANY,
} ct_list_status;

/* Parses "2", "1,2,2" or "[1,2,2]": up to CT_MAX_RANK integers from 0 to
 * CT_MAX_PARAM; *bracketed tells a one-value list "[2]" from "2". */
ct_list_status ct_int_list_parse(const char *text, gint64 values[CT_MAX_RANK],
                                 int *n_values, gboolean *bracketed);
/* What is wrong, to follow the quoted text in a message. */
const char *ct_int_list_reason(ct_list_status st);

/* Prefix "P" gives the keys "P.stride" and so on; NULL the bare keys. */
gchar *ct_layer_key(const char *prefix, const char *suffix);

/* Warns of the metadata keys of this layer that are not hyper-parameters.
 * bare_layer: the file also holds a layer without a prefix. */
void ct_hyperparams_warn_unknown(ct_load *ld, JsonObject *metadata, const char *prefix,
                                 gboolean bare_layer);
/* Sets params' stride, padding, output_padding, dilation and groups (rank
 * already set): PyTorch's defaults, then the metadata (may be NULL), then the
 * overrides (may be NULL). */
gboolean ct_hyperparams_apply(ct_load *ld, JsonObject *metadata, const char *prefix,
                              const CtOverrides *ov, ct_params *params);

#endif
