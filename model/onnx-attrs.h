/* A node's attributes, read with their types checked: a node with an
 * attribute its operator does not have, or one given twice, is refused, so
 * that nothing the file says is ignored. Internal to model/. */
#ifndef CT_MODEL_ONNX_ATTRS_H
#define CT_MODEL_ONNX_ATTRS_H

#include "model/onnx-private.h"

/* Refuses any attribute of node k not in known (NULL-terminated), any given
 * twice, any without a name or referring to a function's attribute. */
gboolean ct_attrs_check(ct_onnx *o, int k, const char *const *known);
/* The attribute called name, or NULL. */
const Onnx__AttributeProto *ct_attr(ct_onnx *o, int k, const char *name);

/* Each sets *out to the attribute's value, or to def when it is absent, and
 * fails when it has another type. */
gboolean ct_attr_int(ct_onnx *o, int k, const char *name, gint64 def, gint64 *out);
gboolean ct_attr_float(ct_onnx *o, int k, const char *name, float def, float *out);
/* A string, def when absent; the text lives until the load ends. */
gboolean ct_attr_string(ct_onnx *o, int k, const char *name, const char *def,
                        const char **out);
/* A list of at most max integers; *n = -1 when absent. */
gboolean ct_attr_ints(ct_onnx *o, int k, const char *name, gint64 *out, int max, int *n);
/* A tensor, NULL when absent. */
gboolean ct_attr_tensor(ct_onnx *o, int k, const char *name,
                        const Onnx__TensorProto **out);

#endif
