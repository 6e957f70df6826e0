/* See safetensors-writer.h. */
#include "tests/common/safetensors-writer.h"

#include <stdio.h>
#include <string.h>

void st_put_le(GByteArray *d, guint64 v, int n) {
  for (int i = 0; i < n; i++) {
    guint8 c = (guint8)(v >> (8 * i));
    g_byte_array_append(d, &c, 1);
  }
}

void st_put_f32(GByteArray *d, float v) {
  guint32 u;
  memcpy(&u, &v, sizeof u);
  st_put_le(d, u, 4);
}

void st_put_f64(GByteArray *d, double v) {
  guint64 u;
  memcpy(&u, &v, sizeof u);
  st_put_le(d, u, 8);
}

GByteArray *st_frame(guint64 length, const void *header, size_t header_size,
                     const void *data, size_t data_size) {
  GByteArray *b = g_byte_array_sized_new((guint)(8 + header_size + data_size));
  st_put_le(b, length, 8);
  if (header_size)
    g_byte_array_append(b, header, (guint)header_size);
  if (data_size)
    g_byte_array_append(b, data, (guint)data_size);
  return b;
}

/* Bytes per value of the safetensors dtypes; 0 for any other text. */
static int dtype_width(const char *dtype) {
  static const struct {
    const char *name;
    int width;
  } widths[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},
                {"U16", 2}, {"U8", 1},  {"BOOL", 1}};
  for (size_t i = 0; i < G_N_ELEMENTS(widths); i++)
    if (strcmp(widths[i].name, dtype) == 0)
      return widths[i].width;
  return 0;
}

static void append_json_string(GString *s, const char *text) {
  g_string_append_c(s, '"');
  for (const char *p = text; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf(s, "\\%c", *p);
    else if ((guchar)*p < 0x20)
      g_string_append_printf(s, "\\u%04x", (guchar)*p);
    else
      g_string_append_c(s, *p);
  }
  g_string_append_c(s, '"');
}

static size_t tensor_bytes(const StTensor *t, const char *dtype) {
  if (t->n_bytes)
    return t->n_bytes;
  size_t n = (size_t)dtype_width(dtype);
  for (int d = 0; d < t->ndim; d++)
    n *= (size_t)t->shape[d];
  return n;
}

/* The tensor's values, little-endian whatever the host's order. */
static void append_data(GByteArray *b, const StTensor *t, const char *dtype,
                        size_t size) {
  if (!t->data) {
    guint old = b->len;
    g_byte_array_set_size(b, old + (guint)size);
    memset(b->data + old, 0, size);
    return;
  }
  const guint8 *src = t->data;
  const size_t width = (size_t)dtype_width(dtype);
  size_t i = 0;
  for (; width > 1 && i + width <= size; i += width) {
    guint64 v = 0;
    if (width == 2) {
      guint16 u;
      memcpy(&u, src + i, 2);
      v = u;
    } else if (width == 4) {
      guint32 u;
      memcpy(&u, src + i, 4);
      v = u;
    } else {
      memcpy(&v, src + i, 8);
    }
    st_put_le(b, v, (int)width);
  }
  if (i < size) /* bytes, or what is left of an odd size */
    g_byte_array_append(b, src + i, (guint)(size - i));
}

GByteArray *st_build(const char *metadata, const StTensor *tensors, int n_tensors) {
  GString *header = g_string_new("{");
  if (metadata)
    g_string_append_printf(header, "\"__metadata__\":{%s}", metadata);
  size_t offset = 0;
  for (int i = 0; i < n_tensors; i++) {
    const StTensor *t = &tensors[i];
    const char *dtype = t->dtype ? t->dtype : "F32";
    const size_t size = tensor_bytes(t, dtype);
    if (metadata || i)
      g_string_append_c(header, ',');
    append_json_string(header, t->name);
    g_string_append(header, ":{\"dtype\":");
    append_json_string(header, dtype);
    g_string_append(header, ",\"shape\":[");
    for (int d = 0; d < t->ndim; d++)
      g_string_append_printf(header, "%s%" G_GINT64_FORMAT, d ? "," : "", t->shape[d]);
    g_string_append_printf(header, "],\"data_offsets\":[%zu,%zu]}", offset,
                           offset + size);
    offset += size;
  }
  g_string_append_c(header, '}');
  while (header->len % 8)
    g_string_append_c(header, ' ');
  GByteArray *b = st_frame(header->len, header->str, header->len, NULL, 0);
  for (int i = 0; i < n_tensors; i++) {
    const char *dtype = tensors[i].dtype ? tensors[i].dtype : "F32";
    append_data(b, &tensors[i], dtype, tensor_bytes(&tensors[i], dtype));
  }
  g_string_free(header, TRUE);
  return b;
}

/* Plain stdio: g_file_set_contents would write a temporary and rename it, a
 * new inode each time, which no test asks for. */
static gboolean write_bytes(const char *path, GByteArray *b) {
  FILE *f = fopen(path, "wb");
  gboolean ok = f && (b->len == 0 || fwrite(b->data, 1, b->len, f) == b->len);
  if (f)
    ok = fclose(f) == 0 && ok;
  g_byte_array_free(b, TRUE);
  return ok;
}

gboolean st_write(const char *path, const char *metadata, const StTensor *tensors,
                  int n_tensors) {
  return write_bytes(path, st_build(metadata, tensors, n_tensors));
}

gboolean st_write_raw(const char *path, guint64 length, const void *header,
                      size_t header_size, const void *data, size_t data_size) {
  return write_bytes(path, st_frame(length, header, header_size, data, data_size));
}

gboolean st_write_layer(const char *path, int rank, int64_t cin, int64_t cout_per_group,
                        const int64_t *kernel, const float *weight, int64_t cout,
                        const float *bias, const char *metadata) {
  StTensor t[2] = {{.name = "weight",
                    .ndim = rank + 2,
                    .shape = {cin, cout_per_group},
                    .data = weight},
                   {.name = "bias", .ndim = 1, .shape = {cout}, .data = bias}};
  for (int a = 0; a < rank; a++)
    t[0].shape[2 + a] = kernel[a];
  return st_write(path, metadata, t, bias ? 2 : 1);
}
