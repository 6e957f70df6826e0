/* The tests' one safetensors writer (GLib only, no GStreamer): well-formed
 * files of any tensors, dtypes, shapes, names (prefixed checkpoint layers)
 * and metadata, and, below them, the bare framing (length, header, data)
 * for files that are broken on purpose. */
#ifndef CT_TEST_SAFETENSORS_WRITER_H
#define CT_TEST_SAFETENSORS_WRITER_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_NDIM 8

/* One tensor, e.g. {.name = "weight", .ndim = 3, .shape = {2, 2, 4}, .data = w}
 * for floats w: the fields left out are the F32 defaults. */
typedef struct {
  const char *name; /* written as a JSON string, escaped */
  int ndim;         /* 0: a scalar */
  int64_t shape[ST_MAX_NDIM];
  /* Values in host order, one of the dtype's width each (float for F32,
   * double for F64, uint16_t bit patterns for F16 and BF16, ...); written
   * little-endian. NULL: zeros. */
  const void *data;
  const char *dtype; /* NULL: "F32"; any text, known to the writer or not */
  /* 0: what dtype and shape need. Otherwise exactly this many bytes, for
   * dtypes the writer does not know or sizes that disagree with the shape. */
  size_t n_bytes;
} StTensor;

/* Little-endian bytes appended to d: the n low bytes of v, a float, a double. */
void st_put_le(GByteArray *d, guint64 v, int n);
void st_put_f32(GByteArray *d, float v);
void st_put_f64(GByteArray *d, double v);

/* A file's bytes: `length` as the 8-byte little-endian header length (any
 * value, true or not), header_size bytes of header, data_size bytes of data. */
GByteArray *st_frame(guint64 length, const void *header, size_t header_size,
                     const void *data, size_t data_size);

/* A well-formed file: the header names the tensors in order, data_offsets
 * tiling the data, and is padded with spaces to a multiple of 8 bytes as the
 * reference writer pads it. metadata: the members of "__metadata__" as JSON
 * text, e.g. "\"stride\":\"2\",\"padding\":\"1\"" (NULL: no __metadata__). */
GByteArray *st_build(const char *metadata, const StTensor *tensors, int n_tensors);

/* st_build or st_frame written to path; FALSE if it cannot be written. */
gboolean st_write(const char *path, const char *metadata, const StTensor *tensors,
                  int n_tensors);
gboolean st_write_raw(const char *path, guint64 length, const void *header,
                      size_t header_size, const void *data, size_t data_size);

/* A ConvTranspose layer: F32 "weight" [cin, cout_per_group, kernel[0..rank)]
 * and, unless bias is NULL, "bias" [cout]. */
gboolean st_write_layer(const char *path, int rank, int64_t cin, int64_t cout_per_group,
                        const int64_t *kernel, const float *weight, int64_t cout,
                        const float *bias, const char *metadata);

#endif
