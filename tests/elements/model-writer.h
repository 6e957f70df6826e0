/* Writes small float32 layers as .safetensors files for the element tests. */
#ifndef CT_TEST_MODEL_WRITER_H
#define CT_TEST_MODEL_WRITER_H

#include <glib.h>
#include <stdint.h>
#include <string.h>

/* weight: [Cin, Cout/groups, k...] floats; bias: [cout] or NULL; metadata: a
 * JSON object body without braces, e.g. "\"stride\":\"2\"", or NULL. */
static inline gboolean write_test_model(const gchar *path, int rank, int64_t cin,
                                        int64_t cout_per_group, const int64_t *kernel,
                                        const float *weight, int64_t cout,
                                        const float *bias, const gchar *metadata) {
  int64_t n_weight = cin * cout_per_group;
  GString *shape = g_string_new(NULL);
  g_string_append_printf(shape, "[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT, cin,
                         cout_per_group);
  for (int a = 0; a < rank; a++) {
    n_weight *= kernel[a];
    g_string_append_printf(shape, ",%" G_GINT64_FORMAT, kernel[a]);
  }
  g_string_append(shape, "]");
  GString *header = g_string_new("{");
  if (metadata)
    g_string_append_printf(header, "\"__metadata__\":{%s},", metadata);
  g_string_append_printf(
      header,
      "\"weight\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[0,%" G_GINT64_FORMAT
      "]}",
      shape->str, n_weight * 4);
  if (bias)
    g_string_append_printf(header,
                           ",\"bias\":{\"dtype\":\"F32\",\"shape\":[%" G_GINT64_FORMAT
                           "],\"data_offsets\":[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                           "]}",
                           cout, n_weight * 4, (n_weight + cout) * 4);
  g_string_append(header, "}");
  while (header->len % 8)
    g_string_append_c(header, ' ');
  GByteArray *file = g_byte_array_new();
  guint64 len = GUINT64_TO_LE(header->len);
  g_byte_array_append(file, (const guint8 *)&len, 8);
  g_byte_array_append(file, (const guint8 *)header->str, (guint)header->len);
  g_byte_array_append(file, (const guint8 *)weight, (guint)(n_weight * 4));
  if (bias)
    g_byte_array_append(file, (const guint8 *)bias, (guint)(cout * 4));
  gboolean ok = g_file_set_contents(path, (const gchar *)file->data, file->len, NULL);
  g_byte_array_unref(file);
  g_string_free(header, TRUE);
  g_string_free(shape, TRUE);
  return ok;
}

#endif
