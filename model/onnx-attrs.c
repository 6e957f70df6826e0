/* An attribute's type is its `type` field; files from before that field
 * (IR version 1) are read by which value is present. */
#include "model/onnx-attrs.h"

#include <stdlib.h>
#include <string.h>

typedef Onnx__AttributeProto__AttributeType attr_type;

static const char *type_text(attr_type t) {
  switch (t) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
    return "a float";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
    return "an integer";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
    return "a string";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
    return "a tensor";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
    return "a graph";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
    return "a list of floats";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
    return "a list of integers";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
    return "a list of strings";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
    return "a list of tensors";
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
    return "a list of graphs";
  default:
    return "of another type";
  }
}

static int by_name(const void *a, const void *b) {
  const Onnx__AttributeProto *x = *(const Onnx__AttributeProto *const *)a;
  const Onnx__AttributeProto *y = *(const Onnx__AttributeProto *const *)b;
  const int c = strcmp(x->name, y->name);
  return c ? c : (x > y) - (x < y);
}

/* An attribute given twice (the later), or NULL: sorted, not hashed, so
 * that a node of many attributes costs n log n whatever their names. */
static const Onnx__AttributeProto *repeated(const Onnx__NodeProto *n) {
  const Onnx__AttributeProto **sorted =
      g_new(const Onnx__AttributeProto *, n->n_attribute + 1);
  size_t m = 0;
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name)
      sorted[m++] = n->attribute[i];
  qsort(sorted, m, sizeof *sorted, by_name);
  const Onnx__AttributeProto *twice = NULL;
  for (size_t i = 1; i < m && !twice; i++)
    if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
      twice = sorted[i];
  g_free(sorted);
  return twice;
}

gboolean ct_attrs_check(ct_onnx *o, int k, const char *const *known) {
  const Onnx__NodeProto *n = o->nodes[k].proto;
  const Onnx__AttributeProto *twice = repeated(n);
  for (size_t i = 0; i < n->n_attribute; i++) {
    const Onnx__AttributeProto *a = n->attribute[i];
    if (!a->name || !*a->name)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "attribute %zu has no name",
                               i);
    if (a->ref_attr_name && *a->ref_attr_name)
      return ct_onnx_node_fail(
          o, k, CT_MODEL_ERROR_FORMAT,
          "attribute %s refers to a function's attribute, which only "
          "a function body may do",
          ct_quote(o->ld, a->name));
    if (a == twice)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "attribute %s is given twice",
                               ct_quote(o->ld, a->name));
    gboolean ok = FALSE;
    for (const char *const *s = known; *s && !ok; s++)
      ok = strcmp(*s, a->name) == 0;
    if (!ok)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "attribute %s is not one of %s's (opset %d)",
                               ct_quote(o->ld, a->name), n->op_type, o->opset);
  }
  return TRUE;
}

const Onnx__AttributeProto *ct_attr(ct_onnx *o, int k, const char *name) {
  const Onnx__NodeProto *n = o->nodes[k].proto;
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
      return n->attribute[i];
  return NULL;
}

/* The attribute called name if it has type want (or, without a type, the
 * value present says so); NULL when absent; *ok FALSE on a type mismatch. */
static const Onnx__AttributeProto *typed(ct_onnx *o, int k, const char *name,
                                         attr_type want, gboolean present, gboolean *ok) {
  const Onnx__AttributeProto *a = ct_attr(o, k, name);
  *ok = TRUE;
  if (!a)
    return NULL;
  if (a->has_type ? a->type == want : present)
    return a;
  *ok = ct_onnx_node_fail(
      o, k, CT_MODEL_ERROR_FORMAT, "attribute %s is %s, not %s", ct_quote(o->ld, name),
      a->has_type ? type_text(a->type) : "of an unknown type", type_text(want));
  return NULL;
}

gboolean ct_attr_int(ct_onnx *o, int k, const char *name, gint64 def, gint64 *out) {
  const Onnx__AttributeProto *a = ct_attr(o, k, name);
  gboolean ok;
  a = typed(o, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, a && a->has_i, &ok);
  *out = a ? a->i : def;
  return ok;
}

gboolean ct_attr_float(ct_onnx *o, int k, const char *name, float def, float *out) {
  const Onnx__AttributeProto *a = ct_attr(o, k, name);
  gboolean ok;
  a = typed(o, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, a && a->has_f, &ok);
  *out = a ? a->f : def;
  return ok;
}

gboolean ct_attr_string(ct_onnx *o, int k, const char *name, const char *def,
                        const char **out) {
  const Onnx__AttributeProto *a = ct_attr(o, k, name);
  gboolean ok;
  a = typed(o, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, a && a->has_s,
            &ok);
  *out = def;
  if (!a || !ok)
    return ok;
  if (a->s.len && memchr(a->s.data, 0, a->s.len))
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "attribute %s holds a NUL byte",
                             ct_quote(o->ld, name));
  GString *s = g_string_new_len((const char *)a->s.data, (gssize)a->s.len);
  *out = ct_keep(o->ld, s);
  return TRUE;
}

gboolean ct_attr_ints(ct_onnx *o, int k, const char *name, gint64 *out, int max, int *n) {
  const Onnx__AttributeProto *a = ct_attr(o, k, name);
  gboolean ok;
  /* Without a type, an empty list looks like nothing: take it as a list. */
  a = typed(o, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
            a && !a->has_i && !a->has_f && !a->has_s && !a->t && !a->n_floats, &ok);
  *n = -1;
  if (!a || !ok)
    return ok;
  if (a->n_ints > (size_t)max)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                             "attribute %s has %zu values, more than the %d it can have "
                             "here",
                             ct_quote(o->ld, name), a->n_ints, max);
  if (a->n_ints)
    memcpy(out, a->ints, a->n_ints * sizeof *out);
  *n = (int)a->n_ints;
  return TRUE;
}

gboolean ct_attr_tensor(ct_onnx *o, int k, const char *name,
                        const Onnx__TensorProto **out) {
  const Onnx__AttributeProto *a = ct_attr(o, k, name);
  gboolean ok;
  a = typed(o, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, a && a->t, &ok);
  *out = NULL;
  if (a && ok && !a->t)
    return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "attribute %s holds no tensor",
                             ct_quote(o->ld, name));
  if (a && ok)
    *out = a->t;
  return ok;
}
