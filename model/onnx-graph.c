/* The order is Kahn's, always taking the lowest file index ready next: a
 * file already in order (as ONNX requires) keeps its order exactly. */
#include "model/onnx-graph.h"

#include <string.h>

#include "model/onnx-fold.h"
#include "model/onnx-nodes.h"
#include "model/onnx-tensor.h"

/* ---- names and nodes ----------------------------------------------------- */

/* Names are found in a sorted array, not a hash table: the file chooses
 * them, and names made to collide must not make the load quadratic. */

/* A definition of a name: an initializer, a graph input, a node's output;
 * seq is its place among the file's definitions (initializers, inputs,
 * nodes in order), so that of two alike the first is the one made first. */
typedef struct {
  const char *name;
  gint64 seq;
  int node; /* -1: an initializer or input */
  int output;
  const Onnx__TensorProto *initializer;
  gboolean input;
} definition;

static int by_name(const void *pa, const void *pb) {
  const definition *a = pa, *b = pb;
  const int c = strcmp(a->name, b->name);
  return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static int oname_cmp(const void *key, const void *elem) {
  return strcmp(key, ((const ct_oname *)elem)->name);
}

static ct_oname *find_name(ct_onnx *o, const char *name) {
  return bsearch(name, o->names, (size_t)o->n_names, sizeof(ct_oname), oname_cmp);
}

static const char *what_defines(ct_onnx *o, const definition *d) {
  if (d->node >= 0)
    return ct_onnx_node_text(o, d->node);
  return d->input ? "a graph input" : "an initializer";
}

/* "\"a\", \"b\", ... (5 in all)" */
static const char *names_text(ct_onnx *o, Onnx__ValueInfoProto **infos, size_t n,
                              const gboolean *pick) {
  GString *s = g_string_new(NULL);
  size_t shown = 0, total = 0;
  for (size_t i = 0; i < n; i++) {
    if (pick && !pick[i])
      continue;
    total++;
    if (shown == CT_LIST_MAX)
      continue;
    if (shown++)
      g_string_append(s, ", ");
    ct_escape_append(s, infos[i]->name ? infos[i]->name : "", TRUE, CT_QUOTE_MAX);
  }
  if (total > shown)
    g_string_append_printf(s, ", ... (%zu in all)", total);
  return ct_keep(o->ld, s);
}

/* The nodes' own checks, and every definition of a name in defs. */
static gboolean collect(ct_onnx *o, definition **defs, gint64 *n_defs) {
  const Onnx__GraphProto *g = o->graph;
  if (g->n_node > G_MAXINT / 2)
    return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "has too many nodes (%zu)", g->n_node);
  o->n_nodes = (int)g->n_node;
  if (!(o->nodes = ct_onnx_temp(o, o->n_nodes, sizeof(ct_onode))))
    return FALSE;
  gint64 n = (gint64)(g->n_initializer + g->n_input);
  for (int k = 0; k < o->n_nodes; k++) {
    const Onnx__NodeProto *p = g->node[k];
    o->nodes[k].proto = p;
    if (!p->op_type || !*p->op_type)
      return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "node %d has no op_type", k);
    if (p->n_input > G_MAXINT / 2 || p->n_output > G_MAXINT / 2)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT, "has too many inputs");
    n += (gint64)p->n_output;
  }
  definition *d = ct_onnx_temp(o, n, sizeof(definition));
  if (!d)
    return FALSE;
  gint64 m = 0;
  for (size_t i = 0; i < g->n_initializer; i++, m++) {
    d[m] = (definition){.name = g->initializer[i]->name,
                        .seq = m,
                        .node = -1,
                        .initializer = g->initializer[i]};
    if (!d[m].name || !*d[m].name)
      return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "initializer %zu has no name", i);
  }
  for (size_t i = 0; i < g->n_input; i++, m++) {
    d[m] = (definition){
        .name = g->input[i]->name, .seq = m, .node = -1, .output = (int)i, .input = TRUE};
    if (!d[m].name || !*d[m].name)
      return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "graph input %zu has no name", i);
  }
  for (int k = 0; k < o->n_nodes; k++) {
    const Onnx__NodeProto *p = g->node[k];
    for (size_t i = 0; i < p->n_output; i++) {
      if (!*p->output[i])
        continue; /* an optional output not asked for */
      d[m] = (definition){.name = p->output[i], .seq = m, .node = k, .output = (int)i};
      m++;
    }
  }
  *defs = d;
  *n_defs = m;
  return TRUE;
}

/* One name per run of alike definitions; two that make one value refused
 * (an initializer listed as a graph input too, as before IR version 4, is
 * one). real[i]: graph input i is the network's input, not an
 * initializer's listing. */
static gboolean make_names(ct_onnx *o, definition *d, gint64 n, gboolean *real) {
  qsort(d, (size_t)n, sizeof *d, by_name);
  if (!(o->names = ct_onnx_temp(o, n, sizeof(ct_oname))))
    return FALSE;
  for (gint64 i = 0; i < n;) {
    gint64 j = i + 1;
    while (j < n && strcmp(d[j].name, d[i].name) == 0)
      j++;
    ct_oname *on = &o->names[o->n_names++];
    *on = (ct_oname){.name = d[i].name, .producer = -1, .value = -1};
    for (gint64 r = i; r < j; r++) {
      const definition *x = &d[r], *first = &d[i];
      const char *q = NULL;
      if (r > i && !(x->input && first->initializer && !on->is_input))
        q = ct_quote(o->ld, x->name);
      if (q && x->node >= 0)
        return ct_onnx_node_fail(
            o, x->node, CT_MODEL_ERROR_FORMAT,
            "makes %s, which %s already makes (a value is made once)", q,
            x->node == first->node ? "this node" : what_defines(o, first));
      if (q)
        return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "%s %s is given twice",
                       x->input ? "graph input" : "initializer", q);
      if (x->initializer)
        on->initializer = x->initializer;
      else if (x->node >= 0)
        on->producer = x->node;
      else if (!on->initializer)
        on->is_input = real[x->output] = TRUE;
      if (x->node >= 0)
        o->nodes[x->node].outputs[x->output] = on;
    }
    i = j;
  }
  return TRUE;
}

static gboolean index_names(ct_onnx *o) {
  const Onnx__GraphProto *g = o->graph;
  definition *defs = NULL;
  gint64 n_defs = 0;
  gboolean *real;
  if (!collect(o, &defs, &n_defs))
    return FALSE;
  for (int k = 0; k < o->n_nodes; k++) {
    ct_onode *nd = &o->nodes[k];
    nd->n_inputs = (int)nd->proto->n_input;
    nd->n_outputs = (int)nd->proto->n_output;
    if (!(nd->inputs = ct_onnx_temp(o, nd->n_inputs, sizeof(ct_oname *))) ||
        !(nd->outputs = ct_onnx_temp(o, nd->n_outputs, sizeof(ct_oname *))))
      return FALSE;
  }
  if (!(real = ct_onnx_temp(o, (gint64)g->n_input, sizeof(gboolean))) ||
      !make_names(o, defs, n_defs, real))
    return FALSE;
  size_t n_real = 0;
  for (size_t i = 0; i < g->n_input; i++)
    if (real[i]) {
      n_real++;
      o->input_info = g->input[i];
      o->input = find_name(o, g->input[i]->name);
    }
  if (n_real == 0)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph has no input; a network takes one, [N, C, S1(, S2(, S3))]");
  if (n_real > 1)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph has %zu inputs (%s); a network takes exactly one, [N, C, "
                   "S1(, S2(, S3))]",
                   n_real, names_text(o, g->input, g->n_input, real));
  for (int k = 0; k < o->n_nodes; k++) {
    ct_onode *nd = &o->nodes[k];
    for (int i = 0; i < nd->n_inputs; i++) {
      const char *name = nd->proto->input[i];
      if (!*name)
        continue; /* an optional input left out */
      if (!(nd->inputs[i] = find_name(o, name)))
        return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_FORMAT,
                                 "reads %s, which no node, initializer or graph input "
                                 "makes",
                                 ct_quote(o->ld, name));
    }
  }
  return TRUE;
}

/* ---- order --------------------------------------------------------------- */

/* A min-heap of node indices. */
typedef struct {
  int *v;
  int n;
} heap;

static void heap_push(heap *h, int x) {
  int i = h->n++;
  while (i > 0 && h->v[(i - 1) / 2] > x) {
    h->v[i] = h->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->v[i] = x;
}

static int heap_pop(heap *h) {
  const int top = h->v[0], last = h->v[--h->n];
  int i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= h->n)
      break;
    if (c + 1 < h->n && h->v[c + 1] < h->v[c])
      c++;
    if (h->v[c] >= last)
      break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n > 0)
    h->v[i] = last;
  return top;
}

/* One cycle among the nodes not ordered, in words. */
static gboolean fail_cycle(ct_onnx *o, const int *indegree) {
  int *seen, *walk, *via; /* step + 1 on the walk; the nodes; the input read */
  if (!(seen = ct_onnx_temp(o, o->n_nodes, sizeof(int))) ||
      !(walk = ct_onnx_temp(o, o->n_nodes + 1, sizeof(int))) ||
      !(via = ct_onnx_temp(o, o->n_nodes + 1, sizeof(int))))
    return FALSE;
  int k = 0;
  while (indegree[k] == 0)
    k++;
  int n = 0;
  while (!seen[k]) {
    seen[k] = ++n;
    walk[n - 1] = k;
    const ct_onode *nd = &o->nodes[k];
    for (int i = 0; i < nd->n_inputs; i++) {
      const ct_oname *in = nd->inputs[i];
      if (in && in->producer >= 0 && indegree[in->producer] > 0) {
        via[n - 1] = i;
        k = in->producer;
        break;
      }
    }
  }
  GString *s = g_string_new(NULL);
  const int first = seen[k] - 1;
  for (int j = first; j < n; j++) {
    if (j - first == CT_LIST_MAX) {
      g_string_append(s, ", ...");
      break;
    }
    const ct_onode *nd = &o->nodes[walk[j]];
    g_string_append_printf(s, "%s%s reads ", j > first ? ", which " : "",
                           ct_onnx_node_text(o, walk[j]));
    ct_escape_append(s, nd->inputs[via[j]]->name, TRUE, CT_QUOTE_MAX);
  }
  g_string_append_printf(s, ", made by %s", ct_onnx_node_text(o, k));
  return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "the nodes form a cycle: %s",
                 ct_keep(o->ld, s));
}

static gboolean order_nodes(ct_onnx *o) {
  const int n = o->n_nodes;
  gint64 n_edges = 0;
  for (int k = 0; k < n; k++)
    for (int i = 0; i < o->nodes[k].n_inputs; i++)
      n_edges += o->nodes[k].inputs[i] && o->nodes[k].inputs[i]->producer >= 0;
  int *indegree, *start, *fill, *readers, *order; /* start: each producer's readers */
  heap h = {NULL, 0};
  if (!(indegree = ct_onnx_temp(o, n, sizeof(int))) ||
      !(start = ct_onnx_temp(o, n + 1, sizeof(int))) ||
      !(fill = ct_onnx_temp(o, n + 1, sizeof(int))) ||
      !(readers = ct_onnx_temp(o, n_edges, sizeof(int))) ||
      !(h.v = ct_onnx_temp(o, n, sizeof(int))) ||
      !(order = ct_onnx_temp(o, n, sizeof(int))))
    return FALSE;
  for (int k = 0; k < n; k++)
    for (int i = 0; i < o->nodes[k].n_inputs; i++) {
      const ct_oname *in = o->nodes[k].inputs[i];
      if (in && in->producer >= 0) {
        indegree[k]++;
        start[in->producer + 1]++;
      }
    }
  for (int k = 0; k < n; k++)
    start[k + 1] += start[k];
  memcpy(fill, start, (size_t)n * sizeof(int));
  for (int k = 0; k < n; k++)
    for (int i = 0; i < o->nodes[k].n_inputs; i++) {
      const ct_oname *in = o->nodes[k].inputs[i];
      if (in && in->producer >= 0)
        readers[fill[in->producer]++] = k;
    }
  for (int k = 0; k < n; k++)
    if (indegree[k] == 0)
      heap_push(&h, k);
  int done = 0;
  while (h.n > 0) {
    const int k = heap_pop(&h);
    order[done++] = k;
    for (int e = start[k]; e < start[k + 1]; e++)
      if (--indegree[readers[e]] == 0)
        heap_push(&h, readers[e]);
  }
  if (done < n)
    return fail_cycle(o, indegree);
  o->order = order;
  o->n_order = n;
  return TRUE;
}

/* Marks the nodes the output depends on and the names they read; keeps
 * only those in the order. */
static gboolean mark_live(ct_onnx *o) {
  int *stack = ct_onnx_temp(o, o->n_nodes + 1, sizeof(int));
  if (!stack)
    return FALSE;
  int top = 0;
  o->output->used = TRUE;
  if (o->output->producer >= 0) {
    o->nodes[o->output->producer].live = TRUE;
    stack[top++] = o->output->producer;
  }
  while (top > 0) {
    const ct_onode *nd = &o->nodes[stack[--top]];
    for (int i = 0; i < nd->n_inputs; i++) {
      ct_oname *in = nd->inputs[i];
      if (!in)
        continue;
      in->used = TRUE;
      in->readers++;
      in->reader = (int)(nd - o->nodes);
      if (in->producer >= 0 && !o->nodes[in->producer].live) {
        o->nodes[in->producer].live = TRUE;
        stack[top++] = in->producer;
      }
    }
  }
  int n = 0;
  for (int j = 0; j < o->n_order; j++)
    if (o->nodes[o->order[j]].live)
      o->order[n++] = o->order[j];
  o->n_order = n;
  return TRUE;
}

gboolean ct_onnx_graph_index(ct_onnx *o) {
  const Onnx__GraphProto *g = o->graph;
  if (!index_names(o))
    return FALSE;
  /* Every initializer's sizes are checked, read or not. */
  for (gint64 i = 0; i < o->n_names; i++) {
    gboolean failed;
    ct_onnx_constant(o, &o->names[i], &failed);
    if (failed)
      return FALSE;
  }
  if (g->n_output == 0)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK, "the graph has no output");
  if (g->n_output > 1)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph has %zu outputs (%s); a network has exactly one",
                   g->n_output, names_text(o, g->output, g->n_output, NULL));
  o->output_info = g->output[0];
  const char *out = o->output_info->name;
  if (!out || !*out)
    return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "the graph output has no name");
  o->output = find_name(o, out);
  if (!o->output)
    return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
                   "the graph output %s is made by no node, initializer or input",
                   ct_quote(o->ld, out));
  return order_nodes(o) && mark_live(o);
}

/* ---- the interface ------------------------------------------------------- */

/* The tensor type an input or output declares, or NULL with the error set
 * (unless optional and absent). */
static const Onnx__TypeProto__Tensor *tensor_type(ct_onnx *o,
                                                  const Onnx__ValueInfoProto *info,
                                                  const char *role, gboolean optional,
                                                  gboolean *ok) {
  const char *q = ct_quote(o->ld, info->name);
  *ok = TRUE;
  if (!info->type && optional)
    return NULL;
  *ok = FALSE;
  if (!info->type) {
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "the graph %s %s declares no type", role, q);
    return NULL;
  }
  if (info->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
      !info->type->tensor_type) {
    ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
            "the graph %s %s is not a tensor (a sequence, map, optional or sparse "
            "value); it must be a float32 tensor",
            role, q);
    return NULL;
  }
  const Onnx__TypeProto__Tensor *t = info->type->tensor_type;
  const int et = t->has_elem_type ? t->elem_type : 0;
  if (et != CT_ONNX_FLOAT) {
    ct_fail(o->ld, CT_MODEL_ERROR_NETWORK, "the graph %s %s is %s; it must be float32",
            role, q, ct_onnx_dtype_name(o, et));
    return NULL;
  }
  *ok = TRUE;
  return t;
}

/* "[batch, 8, len]" */
static const char *shape_text(ct_onnx *o, const Onnx__TensorShapeProto *s) {
  GString *t = g_string_new("[");
  for (size_t i = 0; i < s->n_dim; i++) {
    const Onnx__TensorShapeProto__Dimension *d = s->dim[i];
    if (i)
      g_string_append(t, ", ");
    if (i == CT_LIST_MAX) {
      g_string_append(t, "...");
      break;
    }
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
      g_string_append_printf(t, "%lld", (long long)d->dim_value);
    else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
      ct_escape_append(t, d->dim_param ? d->dim_param : "", FALSE, CT_QUOTE_MAX);
    else
      g_string_append_c(t, '?');
  }
  g_string_append_c(t, ']');
  return ct_keep(o->ld, t);
}

/* A dim's fixed size, or -1. */
static gint64 fixed_dim(const Onnx__TensorShapeProto *s, size_t i) {
  const Onnx__TensorShapeProto__Dimension *d = s->dim[i];
  return d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
             ? d->dim_value
             : -1;
}

gboolean ct_onnx_graph_interface(ct_onnx *o) {
  gboolean ok;
  const Onnx__TypeProto__Tensor *t = tensor_type(o, o->input_info, "input", FALSE, &ok);
  if (!ok)
    return FALSE;
  const char *q = ct_quote(o->ld, o->input->name);
  if (!t->shape)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph input %s declares no shape, so its rank is unknown", q);
  const size_t r = t->shape->n_dim;
  if (r < 3 || r > CT_MAX_RANK + 2)
    return ct_fail(
        o->ld, CT_MODEL_ERROR_NETWORK,
        "the graph input %s has rank %zu (%s); a network takes rank 3, 4 or 5: "
        "[N, C, S1(, S2(, S3))]",
        q, r, shape_text(o, t->shape));
  const gint64 c = fixed_dim(t->shape, 1);
  if (c < 1 || c > CT_MAX_PARAM)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph input %s (%s) has no fixed channel count (dim 1)", q,
                   shape_text(o, t->shape));
  o->rank = (int)r - 2;
  o->input->value = ct_onnx_add_value(o, o->input->name, c);
  if (o->input->value < 0)
    return FALSE;
  t = tensor_type(o, o->output_info, "output", TRUE, &ok);
  if (!ok)
    return FALSE;
  if (t && t->shape && t->shape->n_dim != r)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph output %s has rank %zu (%s), the input rank %zu: a network "
                   "keeps the rank",
                   ct_quote(o->ld, o->output->name), t->shape->n_dim,
                   shape_text(o, t->shape), r);
  return TRUE;
}

/* ---- operators ----------------------------------------------------------- */

gboolean ct_onnx_graph_check_ops(ct_onnx *o) {
  for (int j = 0; j < o->n_order; j++) {
    const int k = o->order[j];
    const Onnx__NodeProto *p = o->nodes[k].proto;
    if (p->domain && *p->domain && strcmp(p->domain, "ai.onnx") != 0)
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK,
                               "its operator is in domain %s; this reader takes ONNX's "
                               "own operators only",
                               ct_quote(o->ld, p->domain));
    if (!ct_onnx_fold_knows(p->op_type) && !ct_onnx_nodes_knows(p->op_type))
      return ct_onnx_node_fail(o, k, CT_MODEL_ERROR_NETWORK, "%s",
                               ct_onnx_nodes_refusal(o, k));
  }
  return TRUE;
}

gboolean ct_onnx_graph_build(ct_onnx *o) {
  for (int j = 0; j < o->n_order; j++) {
    const int k = o->order[j];
    ct_onode *nd = &o->nodes[k];
    if (nd->done)
      continue; /* taken with an earlier node */
    nd->constant = TRUE;
    for (int i = 0; i < nd->n_inputs; i++)
      if (nd->inputs[i] && !nd->inputs[i]->constant && !nd->inputs[i]->initializer)
        nd->constant = FALSE;
    if (!(nd->constant ? ct_onnx_fold(o, k) : ct_onnx_translate(o, k)))
      return FALSE;
    nd->done = TRUE;
  }
  const char *q = ct_quote(o->ld, o->output->name);
  if (o->output->value < 0)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph output %s is a constant: it does not depend on the input",
                   q);
  const ct_value *v = o->values->pdata[o->output->value];
  gboolean ok;
  const Onnx__TypeProto__Tensor *t = tensor_type(o, o->output_info, "output", TRUE, &ok);
  const gint64 c = t && t->shape ? fixed_dim(t->shape, 1) : -1;
  if (c >= 0 && c != v->channels)
    return ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
                   "the graph output %s declares %lld channels (%s), but its nodes make "
                   "%lld",
                   q, (long long)c, shape_text(o, t->shape), (long long)v->channels);
  return TRUE;
}

void ct_onnx_graph_clear(ct_onnx *o) {
  o->names = NULL; /* temp: freed with the load */
  o->n_names = 0;
}
