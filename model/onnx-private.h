/* What the files of the ONNX reader share: one load's state (the decoded
 * file, the graph's names and nodes, the network being built, the budgets),
 * the tensors it holds, and the messages that name a node. Internal to
 * model/; the decoded types are protobuf-c's, generated at build time from
 * Debian's onnx.proto. */
#ifndef CT_MODEL_ONNX_PRIVATE_H
#define CT_MODEL_ONNX_PRIVATE_H

#include <glib.h>

#include "kernels/network.h"
#include "model/load-context.h"
#include "onnx.pb-c.h"

/* Dimensions of any tensor the reader holds (a value has rank + 2 <= 5; a
 * constant subgraph's reshapes may go a little further). */
#define CT_ONNX_MAX_DIMS 8
/* Elements of any one tensor: a layer's weight limit. */
#define CT_ONNX_MAX_ELEMENTS CT_MAX_WEIGHTS
/* The opsets whose operators this reader knows. */
#define CT_ONNX_MIN_OPSET 9
#define CT_ONNX_MAX_OPSET 17

/* ONNX's TensorProto.DataType codes. */
enum {
  CT_ONNX_FLOAT = 1,
  CT_ONNX_UINT8 = 2,
  CT_ONNX_INT8 = 3,
  CT_ONNX_UINT16 = 4,
  CT_ONNX_INT16 = 5,
  CT_ONNX_INT32 = 6,
  CT_ONNX_INT64 = 7,
  CT_ONNX_STRING = 8,
  CT_ONNX_BOOL = 9,
  CT_ONNX_FLOAT16 = 10,
  CT_ONNX_DOUBLE = 11,
  CT_ONNX_UINT32 = 12,
  CT_ONNX_UINT64 = 13,
  CT_ONNX_BFLOAT16 = 16,
};

/* Where a tensor's elements are: little-endian bytes of its dtype (raw_data,
 * external data), or one of TensorProto's typed arrays, or an array of the
 * reader's own (a folded result: float for float32/16 tensors, double,
 * int64 for every integer type and bool). */
typedef enum {
  CT_SRC_RAW,
  CT_SRC_F32,
  CT_SRC_F64,
  CT_SRC_I32, /* int32_data: small integers, or float16/bfloat16 bits */
  CT_SRC_I64,
  CT_SRC_U64,
} ct_src;

typedef struct {
  int dtype; /* CT_ONNX_* */
  int rank;
  gint64 dims[CT_ONNX_MAX_DIMS];
  gint64 count;
  ct_src src;
  const void *data;
  float *f32; /* its float32 copy kept by the network, once made */
} ct_otensor;

/* A name of the graph: a value computed from the input, or a constant. */
typedef struct {
  const char *name;
  int producer; /* the node that makes it, or -1 (initializer, graph input) */
  int value;    /* its ct_value once made, else -1 */
  const Onnx__TensorProto *initializer; /* an initializer's declaration */
  ct_otensor *constant;                 /* known at load */
  gboolean is_input;                    /* the graph input */
  gboolean used;                        /* read by a live node, or the output */
  int readers;                          /* reads by live nodes */
  int reader;                           /* the last live node that reads it */
} ct_oname;

typedef struct {
  const Onnx__NodeProto *proto;
  ct_oname **inputs, **outputs; /* NULL where the name is empty (absent) */
  int n_inputs, n_outputs;
  gboolean live;     /* the graph output depends on it */
  gboolean constant; /* every input is known at load */
  gboolean done;     /* folded or translated (maybe with others, as one) */
} ct_onode;

typedef struct {
  ct_load *ld;
  const char *path; /* as given, for external data */
  int opset;
  Onnx__GraphProto *graph;
  ct_oname *names; /* sorted by name */
  gint64 n_names;
  ct_onode *nodes; /* in file order */
  int n_nodes;
  int *order; /* live nodes, each after the nodes it reads */
  int n_order;
  ct_oname *input, *output;
  const Onnx__ValueInfoProto *input_info, *output_info; /* their declarations */
  int rank;                                             /* spatial axes */
  /* The network being built, and the memory it keeps. */
  GPtrArray *keep;    /* blocks the network owns */
  GPtrArray *temp;    /* blocks freed when the load ends */
  GPtrArray *values;  /* ct_value *, temp */
  GPtrArray *net;     /* ct_node *, temp */
  gint64 fold_budget; /* elements constant folding may still make */
  gint64 keep_budget; /* bytes the network may still take */
  /* The declared spatial sizes of the values (onnx-sizes.c), rank per
   * value, for the first sized_nodes nodes of net. */
  GArray *sizes;
  guint sized_nodes;
} ct_onnx;

/* Memory: for the network (kept, within the load's budget: a file cannot
 * make a network many times its own size) or for the load only (temp);
 * zeroed. NULL with the error set when the size is absurd or memory runs
 * out. */
void *ct_onnx_keep(ct_onnx *o, gint64 count, gsize size);
void *ct_onnx_temp(ct_onnx *o, gint64 count, gsize size);
const char *ct_onnx_keep_string(ct_onnx *o, const char *s);

/* "node 12 \"/conv/Conv\" (Conv)", for messages. */
const char *ct_onnx_node_text(ct_onnx *o, int node);
/* Fails with "PATH: node 12 \"/conv/Conv\" (Conv): why". */
gboolean ct_onnx_node_fail(ct_onnx *o, int node, CtModelError code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

/* The constant an input holds (an initializer is read on first use), or
 * NULL: a value computed from the graph input, or the error set (*failed). */
ct_otensor *ct_onnx_constant(ct_onnx *o, ct_oname *n, gboolean *failed);

/* The network: a value with its channels (-1 with the error set); a node
 * of the file's node k (NULL with the error set). */
int ct_onnx_add_value(ct_onnx *o, const char *name, gint64 channels);
ct_node *ct_onnx_add_node(ct_onnx *o, int k, ct_node_kind kind, int n_inputs,
                          int n_outputs);

#endif
