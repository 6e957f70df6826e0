/* Loading a layer from a .safetensors file (contract section 3), or either
 * a layer or a network (an .onnx graph, model/onnx.h), as the file's
 * content says (ct_model_open).
 *
 * The file is read with checked reads, validated whole, and the layer's own
 * tensors are converted to float32 into a private ct_layer: a file changed on
 * disk later cannot affect a loaded layer. Every refusal is one GError whose
 * message names the file and the fault; a layer past the kernels' resource
 * limits (kernels/geometry.h) is refused before its tensors are read. */
#ifndef CT_MODEL_H
#define CT_MODEL_H

#include <glib.h>

#include "kernels/layer.h"
#include "kernels/network.h"

G_BEGIN_DECLS

/* A per-axis hyper-parameter given by the user: either one value for every
 * axis (n_values == 1) or one value per axis (n_values == rank). */
typedef struct {
  gboolean set;
  gint n_values;
  gint64 values[CT_MAX_RANK];
} CtAxisOverride;

/* Explicit values that take precedence over the file's metadata. */
typedef struct {
  CtAxisOverride stride, padding, output_padding, dilation;
  gboolean groups_set;
  gint64 groups;
} CtOverrides;

#define CT_MODEL_ERROR (ct_model_error_quark())
GQuark ct_model_error_quark(void);

typedef enum {
  CT_MODEL_ERROR_IO,      /* cannot open or read the file */
  CT_MODEL_ERROR_FORMAT,  /* not a valid safetensors file */
  CT_MODEL_ERROR_LAYER,   /* valid file, but not a valid layer */
  CT_MODEL_ERROR_NETWORK, /* valid .onnx file, but not a network this project runs */
} CtModelError;

/* Parses "2" or "1,2,2" (also "[1,2,2]") into an override; FALSE with a
 * message on anything else (empty, non-integer, negative, more than 3). */
gboolean ct_axis_override_parse(const gchar *text, CtAxisOverride *out, GError **error);

/* Loads the layer named layer_prefix (NULL or "" for the bare names `weight`
 * and `bias`) from path. overrides may be NULL.
 *
 * The weight is `P.weight`, or else a weight-normalised pair folded on load
 * into weight = g * v / ||v||: `P.weight_g` and `P.weight_v`
 * (torch.nn.utils.weight_norm), or `P.parametrizations.weight.original0`
 * and `original1` (its parametrizations form); the first of these forms
 * present is used and the tensors of the others are ignored with a
 * warning. A pair missing a half, g of a shape weight_norm does not give,
 * or a v whose norm is zero or not finite is refused.
 *
 * warnings (may be NULL; a GPtrArray with g_free as its free function)
 * receives one g_strdup'd line per warning, naming the file: metadata keys
 * of this layer that are not hyper-parameters (ignored), weight tensors
 * ignored. They are added as found, even when the load then fails. */
ct_layer *ct_model_load_full(const gchar *path, const gchar *layer_prefix,
                             const CtOverrides *overrides, GPtrArray *warnings,
                             GError **error);
/* ct_model_load_full without warnings. */
ct_layer *ct_model_load(const gchar *path, const gchar *layer_prefix,
                        const CtOverrides *overrides, GError **error);

/* What a model file holds, by its content (never its name): an ONNX model
 * (a protobuf ModelProto) or, for anything else, safetensors, whose loader
 * then says what is wrong. ct_model_load refuses an ONNX file as such. */
typedef enum {
  CT_FILE_SAFETENSORS,
  CT_FILE_ONNX,
} CtFileKind;
/* Reads the first bytes of path; FALSE with an error if it cannot. */
gboolean ct_model_sniff(const gchar *path, CtFileKind *kind, GError **error);

/* A loaded model: a layer from a .safetensors file, or a network from an
 * .onnx file (model/onnx.h). */
typedef enum {
  CT_MODEL_LAYER,
  CT_MODEL_NETWORK,
} CtModelKind;
typedef struct {
  CtModelKind kind;
  ct_layer *layer;     /* CT_MODEL_LAYER */
  ct_network *network; /* CT_MODEL_NETWORK */
} CtLoadedModel;

/* Loads path as its content says: a layer exactly as ct_model_load_full
 * does, or a network as ct_onnx_load does. A network takes no layer prefix
 * and no overrides (they are refused). Free with ct_model_close. */
CtLoadedModel *ct_model_open(const gchar *path, const gchar *layer_prefix,
                             const CtOverrides *overrides, GPtrArray *warnings,
                             GError **error);
void ct_model_close(CtLoadedModel *model);

G_END_DECLS

#endif
