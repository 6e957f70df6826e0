#include "tests/common/onnx-writer.h"

#include <stdarg.h>
#include <string.h>

pb *pb_new(void) {
  return g_byte_array_new();
}

void pb_varint(pb *b, guint64 v) {
  do {
    guint8 c = (guint8)(v & 0x7f);
    v >>= 7;
    if (v)
      c |= 0x80;
    g_byte_array_append(b, &c, 1);
  } while (v);
}

void pb_key(pb *b, guint field, guint wire_type) {
  pb_varint(b, (guint64)field << 3 | wire_type);
}

void pb_int(pb *b, guint field, gint64 v) {
  pb_key(b, field, PB_VARINT);
  pb_varint(b, (guint64)v);
}

void pb_float(pb *b, guint field, float v) {
  guint32 u;
  memcpy(&u, &v, 4);
  guint8 le[4] = {(guint8)u, (guint8)(u >> 8), (guint8)(u >> 16), (guint8)(u >> 24)};
  pb_key(b, field, PB_32BIT);
  g_byte_array_append(b, le, 4);
}

void pb_bytes(pb *b, guint field, const void *data, gsize len) {
  pb_key(b, field, PB_LEN);
  pb_varint(b, len);
  if (len)
    g_byte_array_append(b, data, (guint)len);
}

void pb_str(pb *b, guint field, const char *s) {
  pb_bytes(b, field, s, strlen(s));
}

void pb_sub(pb *b, guint field, pb *sub) {
  pb_bytes(b, field, sub->data, sub->len);
  g_byte_array_free(sub, TRUE);
}

void pb_packed_ints(pb *b, guint field, const gint64 *v, int n) {
  pb *p = pb_new();
  for (int i = 0; i < n; i++)
    pb_varint(p, (guint64)v[i]);
  pb_sub(b, field, p);
}

pb *onnx_tensor(const char *name, int dtype, const gint64 *dims, int rank,
                const void *raw, gsize raw_len) {
  pb *t = pb_new();
  if (rank > 0)
    pb_packed_ints(t, ONNX_TENSOR_DIMS, dims, rank);
  pb_int(t, ONNX_TENSOR_DATA_TYPE, dtype);
  if (name)
    pb_str(t, ONNX_TENSOR_NAME, name);
  if (raw)
    pb_bytes(t, ONNX_TENSOR_RAW_DATA, raw, raw_len);
  return t;
}

static gint64 count_of(const gint64 *dims, int rank) {
  gint64 n = 1;
  for (int i = 0; i < rank; i++)
    n *= dims[i];
  return n;
}

pb *onnx_tensor_f32(const char *name, const gint64 *dims, int rank, const float *values) {
  const gint64 n = count_of(dims, rank);
  GByteArray *raw = g_byte_array_new();
  for (gint64 i = 0; i < n; i++) {
    guint32 u;
    memcpy(&u, &values[i], 4);
    guint8 le[4] = {(guint8)u, (guint8)(u >> 8), (guint8)(u >> 16), (guint8)(u >> 24)};
    g_byte_array_append(raw, le, 4);
  }
  pb *t = onnx_tensor(name, ONNX_FLOAT, dims, rank, raw->data ? raw->data : (guint8 *)"",
                      raw->len);
  g_byte_array_free(raw, TRUE);
  return t;
}

pb *onnx_tensor_i64(const char *name, const gint64 *dims, int rank,
                    const gint64 *values) {
  pb *t = onnx_tensor(name, ONNX_INT64, dims, rank, NULL, 0);
  pb_packed_ints(t, ONNX_TENSOR_INT64_DATA, values, (int)count_of(dims, rank));
  return t;
}

static pb *attr(const char *name, int type) {
  pb *a = pb_new();
  pb_str(a, ONNX_ATTR_NAME, name);
  pb_int(a, ONNX_ATTR_TYPE, type);
  return a;
}

pb *onnx_attr_int(const char *name, gint64 v) {
  pb *a = attr(name, 2);
  pb_int(a, ONNX_ATTR_I, v);
  return a;
}

pb *onnx_attr_float(const char *name, float v) {
  pb *a = attr(name, 1);
  pb_float(a, ONNX_ATTR_F, v);
  return a;
}

pb *onnx_attr_ints(const char *name, const gint64 *v, int n) {
  pb *a = attr(name, 7);
  pb_packed_ints(a, ONNX_ATTR_INTS, v, n);
  return a;
}

pb *onnx_attr_string(const char *name, const char *s) {
  pb *a = attr(name, 3);
  pb_str(a, ONNX_ATTR_S, s);
  return a;
}

pb *onnx_attr_tensor(const char *name, pb *tensor) {
  pb *a = attr(name, 4);
  pb_sub(a, ONNX_ATTR_T, tensor);
  return a;
}

pb *onnx_node(const char *op, const char *name, const char *const *inputs,
              const char *const *outputs, ...) {
  pb *n = pb_new();
  for (int i = 0; inputs && inputs[i]; i++)
    pb_str(n, ONNX_NODE_INPUT, inputs[i]);
  for (int i = 0; outputs && outputs[i]; i++)
    pb_str(n, ONNX_NODE_OUTPUT, outputs[i]);
  if (name)
    pb_str(n, ONNX_NODE_NAME, name);
  pb_str(n, ONNX_NODE_OP_TYPE, op);
  va_list ap;
  va_start(ap, outputs);
  for (pb *a; (a = va_arg(ap, pb *));)
    pb_sub(n, ONNX_NODE_ATTRIBUTE, a);
  va_end(ap);
  return n;
}

pb *onnx_value_info(const char *name, int elem_type, const gint64 *dims, int rank) {
  pb *shape = pb_new();
  for (int i = 0; i < rank; i++) {
    pb *d = pb_new();
    if (dims[i] >= 0) {
      pb_int(d, 1, dims[i]);
    } else {
      gchar *param = g_strdup_printf("d%d", i);
      pb_str(d, 2, param);
      g_free(param);
    }
    pb_sub(shape, 1, d);
  }
  pb *tensor = pb_new();
  pb_int(tensor, 1, elem_type);
  pb_sub(tensor, 2, shape);
  pb *type = pb_new();
  pb_sub(type, 1, tensor);
  pb *vi = pb_new();
  pb_str(vi, 1, name);
  pb_sub(vi, 2, type);
  return vi;
}

pb *onnx_model(gint64 ir_version, gint64 opset, pb *graph) {
  pb *m = pb_new();
  pb_int(m, ONNX_MODEL_IR_VERSION, ir_version);
  pb_str(m, 2, "ct-test");
  pb_sub(m, ONNX_MODEL_GRAPH, graph);
  pb *o = pb_new();
  pb_str(o, 1, "");
  pb_int(o, 2, opset);
  pb_sub(m, ONNX_MODEL_OPSET_IMPORT, o);
  return m;
}
