/* The tests' ONNX writer (GLib only): protobuf messages built field by
 * field, so that a file broken on purpose (a wrong wire type, a length past
 * the end, a cycle) is as easy to write as a valid one, and ONNX's messages
 * (tensors, attributes, nodes, value infos, the graph, the model) on top. A
 * message is a GByteArray; pb_sub appends one message into another as a
 * length-delimited field and frees it. */
#ifndef CT_TEST_ONNX_WRITER_H
#define CT_TEST_ONNX_WRITER_H

#include <glib.h>
#include <stdint.h>

typedef GByteArray pb;

/* Wire types. */
enum { PB_VARINT = 0, PB_64BIT = 1, PB_LEN = 2, PB_32BIT = 5 };

/* Field numbers of the messages the tests write (onnx.proto). */
enum {
  ONNX_MODEL_IR_VERSION = 1,
  ONNX_MODEL_GRAPH = 7,
  ONNX_MODEL_OPSET_IMPORT = 8,
  ONNX_GRAPH_NODE = 1,
  ONNX_GRAPH_NAME = 2,
  ONNX_GRAPH_INITIALIZER = 5,
  ONNX_GRAPH_INPUT = 11,
  ONNX_GRAPH_OUTPUT = 12,
  ONNX_NODE_INPUT = 1,
  ONNX_NODE_OUTPUT = 2,
  ONNX_NODE_NAME = 3,
  ONNX_NODE_OP_TYPE = 4,
  ONNX_NODE_ATTRIBUTE = 5,
  ONNX_NODE_DOMAIN = 7,
  ONNX_ATTR_NAME = 1,
  ONNX_ATTR_F = 2,
  ONNX_ATTR_I = 3,
  ONNX_ATTR_S = 4,
  ONNX_ATTR_T = 5,
  ONNX_ATTR_G = 6,
  ONNX_ATTR_INTS = 8,
  ONNX_ATTR_TYPE = 20,
  ONNX_TENSOR_DIMS = 1,
  ONNX_TENSOR_DATA_TYPE = 2,
  ONNX_TENSOR_FLOAT_DATA = 4,
  ONNX_TENSOR_INT64_DATA = 7,
  ONNX_TENSOR_NAME = 8,
  ONNX_TENSOR_RAW_DATA = 9,
  ONNX_TENSOR_EXTERNAL_DATA = 13,
  ONNX_TENSOR_DATA_LOCATION = 14,
};

/* ONNX data types the tests use. */
enum {
  ONNX_FLOAT = 1,
  ONNX_INT32 = 6,
  ONNX_INT64 = 7,
  ONNX_STRING = 8,
  ONNX_FLOAT16 = 10,
  ONNX_DOUBLE = 11
};

pb *pb_new(void);
void pb_varint(pb *b, guint64 v);
void pb_key(pb *b, guint field, guint wire_type);
/* A varint field (int64s as two's complement, as protobuf writes them). */
void pb_int(pb *b, guint field, gint64 v);
void pb_float(pb *b, guint field, float v);
void pb_bytes(pb *b, guint field, const void *data, gsize len);
void pb_str(pb *b, guint field, const char *s);
void pb_sub(pb *b, guint field, pb *sub);
void pb_packed_ints(pb *b, guint field, const gint64 *v, int n);

/* A tensor with raw_data (raw may be NULL with raw_len 0: no raw_data). */
pb *onnx_tensor(const char *name, int dtype, const gint64 *dims, int rank,
                const void *raw, gsize raw_len);
/* A float32 tensor of count values (count = product of dims). */
pb *onnx_tensor_f32(const char *name, const gint64 *dims, int rank, const float *values);
pb *onnx_tensor_i64(const char *name, const gint64 *dims, int rank, const gint64 *values);

pb *onnx_attr_int(const char *name, gint64 v);
pb *onnx_attr_float(const char *name, float v);
pb *onnx_attr_ints(const char *name, const gint64 *v, int n);
pb *onnx_attr_string(const char *name, const char *s);
pb *onnx_attr_tensor(const char *name, pb *tensor);

/* A node; inputs and outputs NULL-terminated lists; then attributes (pb *),
 * NULL-terminated. */
pb *onnx_node(const char *op, const char *name, const char *const *inputs,
              const char *const *outputs, ...) G_GNUC_NULL_TERMINATED;

/* A tensor value info; a dim < 0 is the symbolic "d<i>". */
pb *onnx_value_info(const char *name, int elem_type, const gint64 *dims, int rank);

/* The model: ir_version, ONNX's operator set at opset, the graph (freed). */
pb *onnx_model(gint64 ir_version, gint64 opset, pb *graph);

#endif
