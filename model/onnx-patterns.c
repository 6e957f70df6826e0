/* torch 1.13's pixel_shuffle at opset 9 and 10 for x [N, C, H, W], r the
 * factor: Unsqueeze(axes 2, 3) [N, C, 1, 1, H, W]; Reshape [0, -1, r, r, 0,
 * 0] [N, C/r^2, r, r, H, W]; Transpose [0, 1, 4, 2, 5, 3] [N, C/r^2, H, r,
 * W, r]; Reshape [0, 0, -1, 1, 0, 0]; Reshape [0, 0, 0, 0, -1, 1];
 * Squeeze(axes 3, 5) [N, C/r^2, H r, W r]: output channel c at (h r + i,
 * w r + j) is input channel c r^2 + i r + j at (h, w), DepthToSpace CRD. */
#include "model/onnx-patterns.h"

#include <string.h>

#include "model/onnx-attrs.h"
#include "model/onnx-fold.h"
#include "model/onnx-tensor.h"
#include "model/onnx-translate.h"

/* The constant name holds: an initializer, an earlier fold, or a Constant
 * node not yet reached in the order (folded now: it reads nothing). */
static const ct_otensor *constant_of(ct_onnx *o, ct_oname *n, gboolean *ok) {
  gboolean failed;
  const ct_otensor *t = ct_onnx_constant(o, n, &failed);
  if (failed || t) {
    *ok = !failed;
    return t;
  }
  if (n->producer < 0)
    return NULL;
  ct_onode *p = &o->nodes[n->producer];
  if (p->done || strcmp(p->proto->op_type, "Constant") != 0 || p->n_inputs != 0)
    return NULL;
  if (!(*ok = ct_onnx_fold(o, n->producer)))
    return NULL;
  p->done = TRUE;
  return n->constant;
}

/* The integers a constant holds, if exactly want. */
static gboolean holds(const ct_otensor *t, const gint64 *want, int n) {
  if (!t || ct_onnx_dtype_is_float(t->dtype) || t->rank != 1 || t->count != n)
    return FALSE;
  for (int i = 0; i < n; i++)
    if (ct_otensor_i64(t, i) != want[i])
      return FALSE;
  return TRUE;
}

/* The list an attribute (or, from opset 13, constant input 1) gives. */
static gboolean axes_are(ct_onnx *o, int k, const gint64 *want, int n, gboolean *ok) {
  const Onnx__AttributeProto *a = ct_attr(o, k, "axes");
  if (a) {
    if (a->n_ints != (size_t)n)
      return FALSE;
    for (int i = 0; i < n; i++)
      if (a->ints[i] != want[i])
        return FALSE;
    return TRUE;
  }
  ct_oname *in = o->nodes[k].n_inputs > 1 ? o->nodes[k].inputs[1] : NULL;
  return in && holds(constant_of(o, in, ok), want, n);
}

/* Node k, if it is op with inputs [value, optional constant] and no other
 * attribute than allowed; NULL otherwise. */
static const ct_onode *step(ct_onnx *o, int k, const char *op,
                            const char *const *allowed) {
  const ct_onode *nd = &o->nodes[k];
  if (nd->done || strcmp(nd->proto->op_type, op) != 0 || nd->n_outputs != 1 ||
      !nd->outputs[0] || nd->n_inputs < 1 || nd->n_inputs > 2)
    return NULL;
  const Onnx__NodeProto *p = nd->proto;
  for (size_t i = 0; i < p->n_attribute; i++) {
    gboolean known = FALSE;
    for (const char *const *s = allowed; *s && !known; s++)
      known = p->attribute[i]->name && strcmp(p->attribute[i]->name, *s) == 0;
    if (!known)
      return NULL;
  }
  return nd;
}

/* The one live node that reads node k's output, if only one does and the
 * output is not the graph's. */
static int next_of(ct_onnx *o, int k) {
  const ct_oname *out = o->nodes[k].outputs[0];
  return out && out->readers == 1 && out != o->output ? out->reader : -1;
}

gboolean ct_onnx_pixel_shuffle(ct_onnx *o, int k, gboolean *ok) {
  static const char *const none[] = {NULL}, *const axes[] = {"axes", NULL},
                           *const perm[] = {"perm", NULL};
  *ok = TRUE;
  const ct_onode *nd = step(o, k, "Unsqueeze", axes);
  if (o->rank != 2 || !nd || !nd->inputs[0] || nd->inputs[0]->value < 0 ||
      !axes_are(o, k, (const gint64[]){2, 3}, 2, ok))
    return FALSE;
  int chain[6] = {k};
  static const char *const ops[] = {"Unsqueeze", "Reshape", "Transpose",
                                    "Reshape",   "Reshape", "Squeeze"};
  for (int i = 1; i < 6 && *ok; i++) {
    const int next = next_of(o, chain[i - 1]);
    const char *const *allowed = i == 2 ? perm : i == 5 ? axes : none;
    if (next < 0 || !(nd = step(o, next, ops[i], allowed)) ||
        nd->inputs[0] != o->nodes[chain[i - 1]].outputs[0])
      return FALSE;
    chain[i] = next;
  }
  /* The factor r from the first Reshape, then every constant exactly. */
  const ct_otensor *s1 = o->nodes[chain[1]].n_inputs == 2
                             ? constant_of(o, o->nodes[chain[1]].inputs[1], ok)
                             : NULL;
  if (!*ok || !s1 || s1->count != 6 || ct_onnx_dtype_is_float(s1->dtype))
    return FALSE;
  const gint64 r = ct_otensor_i64(s1, 2);
  const gint64 c = ct_onnx_channels(o, o->nodes[k].inputs[0]->value);
  if (r < 1 || r > CT_MAX_PARAM || c % (r * r) != 0 ||
      !holds(s1, (const gint64[]){0, -1, r, r, 0, 0}, 6))
    return FALSE;
  const Onnx__AttributeProto *p = ct_attr(o, chain[2], "perm");
  static const gint64 want_perm[] = {0, 1, 4, 2, 5, 3};
  if (!p || p->n_ints != 6 || memcmp(p->ints, want_perm, sizeof want_perm) != 0)
    return FALSE;
  const gint64 *shapes[2] = {(const gint64[]){0, 0, -1, 1, 0, 0},
                             (const gint64[]){0, 0, 0, 0, -1, 1}};
  for (int i = 0; i < 2; i++) {
    const ct_onode *rs = &o->nodes[chain[3 + i]];
    if (rs->n_inputs != 2 || !holds(constant_of(o, rs->inputs[1], ok), shapes[i], 6))
      return FALSE;
  }
  if (!*ok || !axes_are(o, chain[5], (const gint64[]){3, 5}, 2, ok) || !*ok)
    return FALSE;
  /* One node, of the Unsqueeze's index, making the Squeeze's output. */
  ct_node *n = ct_onnx_add_node(o, k, CT_NODE_DEPTH_TO_SPACE, 1, 1);
  const char *op = n ? ct_onnx_keep_string(o, "DepthToSpace") : NULL;
  if (!op) {
    *ok = FALSE;
    return TRUE;
  }
  n->op = op;
  n->block_size = r;
  n->depth_to_space_mode = CT_DEPTH_TO_SPACE_CRD;
  n->inputs[0] = o->nodes[k].inputs[0]->value;
  ct_oname *out = o->nodes[chain[5]].outputs[0];
  out->value = n->outputs[0] = ct_onnx_add_value(o, out->name, c / (r * r));
  *ok = out->value >= 0;
  for (int i = 0; i < 6; i++)
    o->nodes[chain[i]].done = TRUE;
  return TRUE;
}
