/* The ONNX reader's entry: the file read whole (protobuf needs it so),
 * checked on the wire (model/onnx-wire.c), decoded by protobuf-c under a
 * memory cap, the model's version and opset checked, then the graph: its
 * names and order (model/onnx-graph.c), its interface (one float32 input of
 * rank 3 to 5, one output), constants folded (model/onnx-fold.c) and the
 * other nodes translated (model/onnx-nodes.c) into the network, which owns
 * every block it points to. */
#include "model/onnx.h"

#include <string.h>
#include <unistd.h>

#include "model/onnx-graph.h"
#include "model/onnx-private.h"
#include "model/onnx-tensor.h"
#include "model/onnx-wire.h"

/* protobuf's own limit for one message. */
#define FILE_LIMIT ((gint64)G_MAXINT32)
/* What decoding may allocate: a fixed allowance (a graph of many small
 * nodes) and twice the file (weights are copied out of it once). */
#define DECODE_BASE ((guint64)256 << 20)
/* What the network may keep: a fixed allowance and twice the file (float16
 * weights double as float32). */
#define KEEP_BASE ((gint64)64 << 20)

/* A network and the blocks it owns; ct_network first, so one pointer is
 * both. */
typedef struct {
  ct_network net;
  GPtrArray *blocks;
} network_owner;

/* ---- memory and messages (onnx-private.h) -------------------------------- */

static void *alloc_in(ct_onnx *o, GPtrArray *blocks, gint64 count, gsize size) {
  size_t bytes;
  if (count < 0 || !ct_bytes_for(count ? count : 1, size ? size : 1, &bytes)) {
    ct_fail(o->ld, CT_MODEL_ERROR_NETWORK, "a size overflows (%lld x %zu bytes)",
            (long long)count, size);
    return NULL;
  }
  void *p = g_try_malloc0(bytes);
  if (!p) {
    ct_fail(o->ld, CT_MODEL_ERROR_IO, "out of memory (%zu bytes)", bytes);
    return NULL;
  }
  g_ptr_array_add(blocks, p);
  return p;
}

void *ct_onnx_keep(ct_onnx *o, gint64 count, gsize size) {
  gint64 bytes;
  if (count < 0 || !ct_mul_i64(count, (gint64)size, &bytes) || bytes > o->keep_budget) {
    ct_fail(o->ld, CT_MODEL_ERROR_NETWORK,
            "its network would take more memory than a file of %lld bytes may make "
            "(%lld MiB and twice the file)",
            (long long)o->ld->file_size, (long long)(KEEP_BASE >> 20));
    return NULL;
  }
  o->keep_budget -= bytes;
  return alloc_in(o, o->keep, count, size);
}

void *ct_onnx_temp(ct_onnx *o, gint64 count, gsize size) {
  return alloc_in(o, o->temp, count, size);
}

const char *ct_onnx_keep_string(ct_onnx *o, const char *s) {
  const size_t len = strlen(s) + 1;
  gchar *copy = ct_onnx_keep(o, (gint64)len, 1);
  if (copy)
    memcpy(copy, s, len);
  return copy;
}

const char *ct_onnx_node_text(ct_onnx *o, int node) {
  const Onnx__NodeProto *n = o->nodes[node].proto;
  GString *s = g_string_new(NULL);
  g_string_printf(s, "node %d ", node);
  if (n->name && *n->name) {
    ct_escape_append(s, n->name, TRUE, CT_QUOTE_MAX);
    g_string_append_c(s, ' ');
  }
  g_string_append_c(s, '(');
  ct_escape_append(s, n->op_type ? n->op_type : "", FALSE, CT_QUOTE_MAX);
  g_string_append_c(s, ')');
  return ct_keep(o->ld, s);
}

gboolean ct_onnx_node_fail(ct_onnx *o, int node, CtModelError code, const char *fmt,
                           ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *why = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  ct_fail(o->ld, code, "%s: %s", ct_onnx_node_text(o, node), why);
  g_free(why);
  return FALSE;
}

ct_otensor *ct_onnx_constant(ct_onnx *o, ct_oname *n, gboolean *failed) {
  *failed = FALSE;
  if (!n->constant && n->initializer) {
    ct_otensor *t = ct_onnx_temp(o, 1, sizeof *t);
    const ct_tensor_owner w = {n->name, -1};
    if (!t || !ct_otensor_read(o, n->initializer, &w, t)) {
      *failed = TRUE;
      return NULL;
    }
    n->constant = t;
  }
  return n->constant;
}

int ct_onnx_add_value(ct_onnx *o, const char *name, gint64 channels) {
  const char *kept = ct_onnx_keep_string(o, name);
  if (!kept)
    return -1;
  ct_value *v = g_new0(ct_value, 1);
  v->name = kept;
  v->channels = channels;
  g_ptr_array_add(o->values, v);
  return (int)o->values->len - 1;
}

ct_node *ct_onnx_add_node(ct_onnx *o, int k, ct_node_kind kind, int n_inputs,
                          int n_outputs) {
  const Onnx__NodeProto *p = o->nodes[k].proto;
  const char *name = NULL, *op;
  int *inputs, *outputs;
  if ((p->name && *p->name && !(name = ct_onnx_keep_string(o, p->name))) ||
      !(op = ct_onnx_keep_string(o, p->op_type)) ||
      !(inputs = ct_onnx_keep(o, n_inputs, sizeof(int))) ||
      !(outputs = ct_onnx_keep(o, n_outputs, sizeof(int))))
    return NULL;
  ct_node *n = g_new0(ct_node, 1);
  g_ptr_array_add(o->net, n);
  *n = (ct_node){.kind = kind,
                 .name = name,
                 .op = op,
                 .index = k,
                 .n_inputs = n_inputs,
                 .n_outputs = n_outputs,
                 .inputs = inputs,
                 .outputs = outputs};
  return n;
}

/* ---- the file ------------------------------------------------------------ */

typedef struct {
  guint64 used, limit;
  gboolean refused; /* an allocation was refused */
} counted;

/* protobuf-c's allocations, counted, and refused past the limit (a second
 * guard: the wire check's bound already holds them). */
static void *counted_alloc(void *data, size_t size) {
  counted *c = data;
  if (size > c->limit - c->used || size > G_MAXSIZE - 16) {
    c->refused = TRUE;
    return NULL;
  }
  guint8 *p = g_try_malloc(size + 16);
  if (!p)
    return NULL;
  memcpy(p, &size, sizeof size);
  c->used += size;
  return p + 16;
}

static void counted_free(void *data, void *ptr) {
  counted *c = data;
  if (!ptr)
    return;
  guint8 *p = (guint8 *)ptr - 16;
  size_t size;
  memcpy(&size, p, sizeof size);
  c->used -= size;
  g_free(p);
}

static Onnx__ModelProto *decode(ct_onnx *o, const guint8 *bytes, gsize len,
                                ProtobufCAllocator *allocator) {
  guint64 need = 0;
  if (!ct_onnx_wire_check(o->ld, &onnx__model_proto__descriptor, bytes, len, &need))
    return NULL;
  counted *c = allocator->allocator_data;
  if (need > c->limit) {
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            "decoding this file would take about %llu MiB, more than the %llu MiB "
            "allowed for a file of %zu bytes",
            (unsigned long long)(need >> 20), (unsigned long long)(c->limit >> 20), len);
    return NULL;
  }
  Onnx__ModelProto *m = onnx__model_proto__unpack(allocator, len, bytes);
  if (!m)
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            c->refused ? "decoding it took more memory than allowed"
                       : "not a valid ONNX file: protobuf-c cannot decode it");
  return m;
}

static guint8 *read_file(ct_onnx *o) {
  ct_load *ld = o->ld;
  if (ld->file_size > FILE_LIMIT) {
    ct_fail(ld, CT_MODEL_ERROR_FORMAT,
            "is %lld bytes, more than the 2 GiB protobuf allows for one message",
            (long long)ld->file_size);
    return NULL;
  }
  if (ld->file_size == 0) {
    ct_fail(ld, CT_MODEL_ERROR_FORMAT, "is empty, not an ONNX model");
    return NULL;
  }
  guint8 *bytes = g_try_malloc((gsize)ld->file_size);
  if (!bytes) {
    ct_fail(ld, CT_MODEL_ERROR_IO, "out of memory for a file of %lld bytes",
            (long long)ld->file_size);
    return NULL;
  }
  if (!ct_read_at(ld, bytes, (size_t)ld->file_size, 0) || !ct_check_unchanged(ld)) {
    g_free(bytes);
    return NULL;
  }
  return bytes;
}

/* The model's IR version and the version of ONNX's own operator set. */
static gboolean check_model(ct_onnx *o, Onnx__ModelProto *m) {
  ct_load *ld = o->ld;
  if (!m->has_ir_version)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "not an ONNX model: it has no ir_version");
  if (m->ir_version < 3)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "IR version %lld is older than 3, the first with operator sets",
                   (long long)m->ir_version);
  if (!m->graph)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "not an ONNX model: it holds no graph");
  gboolean found = FALSE;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *s = m->opset_import[i];
    if (s->domain && *s->domain && strcmp(s->domain, "ai.onnx") != 0)
      continue;
    if (found)
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                     "imports ONNX's operator set twice (opset_import)");
    found = TRUE;
    if (!s->has_version)
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                     "imports ONNX's operator set without a version");
    if (s->version < CT_ONNX_MIN_OPSET || s->version > CT_ONNX_MAX_OPSET)
      return ct_fail(ld, CT_MODEL_ERROR_NETWORK,
                     "uses opset %lld; this reader takes opsets %d to %d",
                     (long long)s->version, CT_ONNX_MIN_OPSET, CT_ONNX_MAX_OPSET);
    o->opset = (int)s->version;
  }
  if (!found)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "imports no ONNX operator set (opset_import)");
  o->graph = m->graph;
  if (o->graph->n_sparse_initializer)
    return ct_fail(ld, CT_MODEL_ERROR_NETWORK, "has sparse initializers, not supported");
  return TRUE;
}

/* The network, in the owner's blocks. */
static gboolean assemble(ct_onnx *o, network_owner *own) {
  ct_network *net = &own->net;
  net->rank = o->rank;
  net->n_values = (int)o->values->len;
  net->n_nodes = (int)o->net->len;
  net->values = ct_onnx_keep(o, net->n_values, sizeof(ct_value));
  net->nodes = ct_onnx_keep(o, net->n_nodes, sizeof(ct_node));
  if (!net->values || !net->nodes)
    return FALSE;
  for (int i = 0; i < net->n_values; i++)
    net->values[i] = *(ct_value *)o->values->pdata[i];
  for (int i = 0; i < net->n_nodes; i++)
    net->nodes[i] = *(ct_node *)o->net->pdata[i];
  net->input = o->input->value;
  net->output = o->output->value;
  return TRUE;
}

ct_network *ct_onnx_load(const gchar *path, GError **error) {
  if (!path || !*path) {
    g_set_error_literal(error, CT_MODEL_ERROR, CT_MODEL_ERROR_IO, "no model file given");
    return NULL;
  }
  ct_load ld = {
      .display = g_filename_display_name(path),
      .error = error,
      .scratch = g_string_chunk_new(256),
      .fd = -1,
  };
  network_owner *own = g_new0(network_owner, 1);
  own->blocks = g_ptr_array_new_with_free_func(g_free);
  ct_onnx o = {
      .ld = &ld,
      .path = path,
      .keep = own->blocks,
      .temp = g_ptr_array_new_with_free_func(g_free),
      .values = g_ptr_array_new_with_free_func(g_free),
      .net = g_ptr_array_new_with_free_func(g_free),
  };
  counted c = {0};
  ProtobufCAllocator allocator = {counted_alloc, counted_free, &c};
  Onnx__ModelProto *model = NULL;
  guint8 *bytes = NULL;
  gboolean ok = ct_open_file(&ld, path) && (bytes = read_file(&o)) != NULL;
  if (ok) {
    c.limit = DECODE_BASE + 2 * (guint64)ld.file_size;
    /* Folding may make what the file holds many times over, no more. */
    o.fold_budget = ((gint64)1 << 20) + 2 * ld.file_size;
    o.keep_budget = KEEP_BASE + 2 * ld.file_size;
    model = decode(&o, bytes, (gsize)ld.file_size, &allocator);
    g_free(bytes);
    ok = model && check_model(&o, model) && ct_onnx_graph_index(&o) &&
         ct_onnx_graph_interface(&o) && ct_onnx_graph_check_ops(&o) &&
         ct_onnx_graph_build(&o) && assemble(&o, own);
  }
  if (ld.fd >= 0)
    close(ld.fd);
  ct_onnx_graph_clear(&o);
  if (model)
    protobuf_c_message_free_unpacked(&model->base, &allocator);
  g_ptr_array_unref(o.temp);
  g_ptr_array_unref(o.values);
  g_ptr_array_unref(o.net);
  if (o.sizes)
    g_array_unref(o.sizes);
  g_string_chunk_free(ld.scratch);
  g_free(ld.display);
  if (!ok) {
    ct_onnx_free(&own->net);
    return NULL;
  }
  return &own->net;
}

void ct_onnx_free(ct_network *network) {
  if (!network)
    return;
  network_owner *own = (network_owner *)network;
  g_ptr_array_unref(own->blocks);
  g_free(own);
}

gboolean ct_onnx_sniff(const guint8 *data, gsize len) {
  return ct_onnx_wire_sniff(&onnx__model_proto__descriptor, data, len);
}

/* ---- names for listings -------------------------------------------------- */

const char *ct_node_kind_name(ct_node_kind kind) {
  static const char *const names[] = {
      [CT_NODE_CONV] = "Conv",
      [CT_NODE_CONV_TRANSPOSE] = "ConvTranspose",
      [CT_NODE_MAX_POOL] = "MaxPool",
      [CT_NODE_AVERAGE_POOL] = "AveragePool",
      [CT_NODE_PAD] = "Pad",
      [CT_NODE_UNARY] = "Unary",
      [CT_NODE_BINARY] = "Binary",
      [CT_NODE_AFFINE] = "Affine",
      [CT_NODE_CONCAT] = "Concat",
      [CT_NODE_SPLIT] = "Split",
      [CT_NODE_DEPTH_TO_SPACE] = "DepthToSpace",
  };
  return (unsigned)kind < G_N_ELEMENTS(names) ? names[kind] : "?";
}

const char *ct_unary_op_name(ct_unary_op op) {
  static const char *const names[] = {
      [CT_UNARY_IDENTITY] = "Identity",
      [CT_UNARY_RELU] = "Relu",
      [CT_UNARY_LEAKY_RELU] = "LeakyRelu",
      [CT_UNARY_ELU] = "Elu",
      [CT_UNARY_SELU] = "Selu",
      [CT_UNARY_CELU] = "Celu",
      [CT_UNARY_SIGMOID] = "Sigmoid",
      [CT_UNARY_HARD_SIGMOID] = "HardSigmoid",
      [CT_UNARY_HARD_SWISH] = "HardSwish",
      [CT_UNARY_TANH] = "Tanh",
      [CT_UNARY_SOFTPLUS] = "Softplus",
      [CT_UNARY_SOFTSIGN] = "Softsign",
      [CT_UNARY_ERF] = "Erf",
      [CT_UNARY_CLIP] = "Clip",
      [CT_UNARY_NEG] = "Neg",
      [CT_UNARY_ABS] = "Abs",
      [CT_UNARY_SQRT] = "Sqrt",
      [CT_UNARY_RECIPROCAL] = "Reciprocal",
      [CT_UNARY_EXP] = "Exp",
      [CT_UNARY_LOG] = "Log",
      [CT_UNARY_SIN] = "Sin",
      [CT_UNARY_COS] = "Cos",
  };
  return (unsigned)op < G_N_ELEMENTS(names) ? names[op] : "?";
}

const char *ct_binary_op_name(ct_binary_op op) {
  static const char *const names[] = {
      [CT_BINARY_ADD] = "Add", [CT_BINARY_SUB] = "Sub",     [CT_BINARY_MUL] = "Mul",
      [CT_BINARY_DIV] = "Div", [CT_BINARY_POW] = "Pow",     [CT_BINARY_MAX] = "Max",
      [CT_BINARY_MIN] = "Min", [CT_BINARY_PRELU] = "PRelu",
  };
  return (unsigned)op < G_N_ELEMENTS(names) ? names[op] : "?";
}
