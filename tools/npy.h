/* NumPy .npy files: a bounds-checked parser working on a memory buffer (so it
 * can be fuzzed, and fed a mapped file), and a float32 writer.
 *
 * Read: format versions 1.0, 2.0 and 3.0; dtypes float32 and float64,
 * little-endian (or native, on a little-endian host); C order; any shape
 * whose byte size fits in memory. Write: float32, C order, version 1.0 with
 * the header padded to a multiple of 64 bytes, as numpy itself writes. */
#ifndef CT_NPY_H
#define CT_NPY_H

#include <stdio.h>

#include <glib.h>

G_BEGIN_DECLS

/* More than numpy's own limit of 64 would never be a layer input; 32 keeps
 * CtNpy small and still refuses nothing realistic. */
#define CT_NPY_MAX_DIMS 32

/* Headers larger than this are refused before being scanned: numpy writes a
 * few hundred bytes at most, and its own reader refuses past 10000. */
#define CT_NPY_MAX_HEADER (1u << 20)

#define CT_NPY_ERROR (ct_npy_error_quark())
GQuark ct_npy_error_quark(void);

typedef enum {
  CT_NPY_ERROR_FORMAT,      /* not a well-formed .npy file */
  CT_NPY_ERROR_UNSUPPORTED, /* well-formed, but a dtype or layout we do not read */
  CT_NPY_ERROR_IO,          /* writing failed */
} CtNpyError;

typedef enum {
  CT_NPY_F32,
  CT_NPY_F64,
} CtNpyDtype;

typedef struct {
  guint8 major, minor; /* format version */
  CtNpyDtype dtype;
  gsize itemsize; /* 4 or 8 */
  gint ndim;
  gint64 shape[CT_NPY_MAX_DIMS];
  gint64 count;       /* product of shape */
  gsize data_offset;  /* bytes before the data */
  gsize data_size;    /* count * itemsize, exactly what follows the header */
  const guint8 *data; /* into the parsed buffer: valid while it is */
} CtNpy;

/* Parses a whole .npy file held in data[0..size). Never reads outside it.
 * out->data points into data; nothing is allocated. */
gboolean ct_npy_parse(const guint8 *data, gsize size, CtNpy *out, GError **error);

/* Converts elements [first, first + count) (C order) to float32 into dst.
 * The range must lie within npy->count. */
void ct_npy_read_f32(const CtNpy *npy, gint64 first, gint64 count, float *dst);

/* The whole array as a newly allocated float32 buffer (g_free it); NULL with
 * an error when it does not fit in memory. */
float *ct_npy_to_f32(const CtNpy *npy, GError **error);

/* The complete header (magic to final newline) of a float32 C-order array of
 * the given shape; g_free it. NULL with an error for a rank above
 * CT_NPY_MAX_DIMS or a negative length. */
guint8 *ct_npy_header_f32(const gint64 *shape, gint ndim, gsize *len, GError **error);

/* Writes count float32 values little-endian to f. */
gboolean ct_npy_write_f32_data(FILE *f, const float *data, gsize count, GError **error);

/* Writes a whole float32 .npy file to path (not atomically: the CLI does its
 * own temporary file; this is for tests and tools). */
gboolean ct_npy_save_f32(const gchar *path, const gint64 *shape, gint ndim,
                         const float *data, GError **error);

/* "[2, 3, 4]" for messages; g_free it. */
gchar *ct_npy_shape_string(const gint64 *shape, gint ndim);

G_END_DECLS

#endif
