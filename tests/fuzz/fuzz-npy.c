/* libFuzzer target: the .npy parser (tools/npy.c) on any bytes.
 *
 * ct_npy_parse promises never to read outside the buffer and to describe
 * exactly the data that follows the header; the fuzzer checks both, reads
 * every element through ct_npy_read_f32, and checks that the header the
 * writer makes for the parsed shape parses back to the same shape. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(gboolean ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz-npy: property violated: %s (%s)\n", what, detail ? detail : "");
    abort();
  }
}

/* The CLI prints a message as one line on stderr: UTF-8 (GError's rule),
 * no control characters (a key quoted from the header could hold any). */
static gboolean one_line(const char *msg) {
  if (!g_utf8_validate(msg, -1, NULL))
    return FALSE;
  for (const char *p = msg; *p; p++)
    if ((guchar)*p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  CtNpy npy;
  GError *error = NULL;
  if (!ct_npy_parse(data, size, &npy, &error)) {
    check(error != NULL && error->domain == CT_NPY_ERROR, "refusal has an error",
          error ? error->message : NULL);
    check(one_line(error->message), "message is one line of UTF-8 text", NULL);
    g_error_free(error);
    return 0;
  }
  check(error == NULL, "no error on success", NULL);
  check(npy.ndim >= 0 && npy.ndim <= CT_NPY_MAX_DIMS, "rank in range", NULL);
  check(npy.itemsize == 4 || npy.itemsize == 8, "item size", NULL);
  check(npy.data_offset <= size && npy.data_size == size - npy.data_offset,
        "the data is exactly the rest of the file", NULL);
  check(npy.data == data + npy.data_offset, "data pointer", NULL);
  gint64 count = 1;
  for (gint i = 0; i < npy.ndim; i++) {
    check(npy.shape[i] >= 0, "lengths are non-negative", NULL);
    count *= npy.shape[i];
  }
  check(count == npy.count && (gsize)count * npy.itemsize == npy.data_size,
        "count x itemsize = data size", NULL);

  /* Every element, in a few uneven pieces; the buffer is exactly the size. */
  float *all = ct_npy_to_f32(&npy, &error);
  check(all != NULL, "to_f32", error ? error->message : NULL);
  float tail[7];
  for (gint64 first = 0; first < npy.count; first += 7) {
    gint64 n = MIN(7, npy.count - first);
    ct_npy_read_f32(&npy, first, n, tail);
    check(memcmp(tail, all + first, (gsize)n * sizeof(float)) == 0,
          "piecewise reads match the whole", NULL);
  }
  g_free(all);

  /* The writer's header for this shape parses back to it. */
  gsize header_len;
  guint8 *header = ct_npy_header_f32(npy.shape, npy.ndim, &header_len, &error);
  check(header != NULL, "header for a parsed shape", error ? error->message : NULL);
  gsize data_bytes = (gsize)npy.count * 4;
  if (data_bytes <= 1 << 20) {
    guint8 *file = g_malloc(header_len + data_bytes);
    memcpy(file, header, header_len);
    memset(file + header_len, 0, data_bytes);
    CtNpy back;
    check(ct_npy_parse(file, header_len + data_bytes, &back, &error),
          "the written header parses", error ? error->message : NULL);
    check(back.ndim == npy.ndim &&
              memcmp(back.shape, npy.shape, sizeof(gint64) * (gsize)npy.ndim) == 0 &&
              back.dtype == CT_NPY_F32 && back.data_offset % 64 == 0,
          "round trip of the shape", NULL);
    g_free(file);
  }
  g_free(header);
  return 0;
}
