#include "npy.h"

#include <errno.h>
#include <string.h>

G_DEFINE_QUARK(ct - npy - error - quark, ct_npy_error)

static const guint8 npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* A cursor over the header text; every read checks p < end, and the text is
 * not NUL-terminated. */
typedef struct {
  const char *p, *end;
} Scan;

static void skip_space(Scan *s) {
  while (s->p < s->end &&
         (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static gboolean eat(Scan *s, char c) {
  skip_space(s);
  if (s->p < s->end && *s->p == c) {
    s->p++;
    return TRUE;
  }
  return FALSE;
}

static gboolean peek(Scan *s, char c) {
  skip_space(s);
  return s->p < s->end && *s->p == c;
}

/* A Python string literal without escapes (keys and dtype strings never have
 * any), copied into buf. */
static gboolean scan_string(Scan *s, char *buf, gsize buf_size, GError **error) {
  skip_space(s);
  if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: expected a quoted string");
    return FALSE;
  }
  const char quote = *s->p++;
  gsize n = 0;
  while (s->p < s->end && *s->p != quote) {
    if (*s->p == '\\' || n + 1 >= buf_size) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "malformed header: unexpected string in the header dictionary");
      return FALSE;
    }
    buf[n++] = *s->p++;
  }
  if (s->p >= s->end) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: unterminated string");
    return FALSE;
  }
  s->p++;
  buf[n] = '\0';
  return TRUE;
}

static gboolean scan_word(Scan *s, const char *word) {
  skip_space(s);
  gsize n = strlen(word);
  if ((gsize)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return FALSE;
  const char *after = s->p + n;
  if (after < s->end && (g_ascii_isalnum(*after) || *after == '_'))
    return FALSE;
  s->p = after;
  return TRUE;
}

/* A non-negative decimal integer (Python 2's numpy wrote a trailing L). */
static gboolean scan_length(Scan *s, gint64 *value, GError **error) {
  skip_space(s);
  if (s->p >= s->end || !g_ascii_isdigit(*s->p)) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: shape must be a tuple of non-negative integers");
    return FALSE;
  }
  gint64 v = 0;
  while (s->p < s->end && g_ascii_isdigit(*s->p)) {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s->p - '0', &v)) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "shape has a length too large to represent");
      return FALSE;
    }
    s->p++;
  }
  if (s->p < s->end && (*s->p == 'L' || *s->p == 'l'))
    s->p++;
  *value = v;
  return TRUE;
}

static gboolean scan_shape(Scan *s, CtNpy *out, GError **error) {
  if (!eat(s, '(')) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: 'shape' must be a tuple");
    return FALSE;
  }
  out->ndim = 0;
  gboolean trailing_comma = FALSE;
  while (!eat(s, ')')) {
    if (out->ndim == CT_NPY_MAX_DIMS) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
                  "arrays of more than %d dimensions are not supported", CT_NPY_MAX_DIMS);
      return FALSE;
    }
    if (!scan_length(s, &out->shape[out->ndim++], error))
      return FALSE;
    trailing_comma = eat(s, ',');
    if (!trailing_comma && !peek(s, ')')) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "malformed header: bad 'shape' tuple");
      return FALSE;
    }
  }
  /* "(5)" is an integer in Python, not a tuple; numpy refuses it too. */
  if (out->ndim == 1 && !trailing_comma) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: 'shape' must be a tuple, e.g. (5,)");
    return FALSE;
  }
  return TRUE;
}

static gboolean parse_descr(const char *descr, CtNpy *out, GError **error) {
  char order = '=';
  const char *code = descr;
  if (*code == '<' || *code == '>' || *code == '=' || *code == '|')
    order = *code++;
  /* '=' and '|' (and no mark) mean the writer's native order: taken as the
   * host's, which for a float is all numpy itself would do. */
  gboolean little = order == '<' || (order != '>' && G_BYTE_ORDER == G_LITTLE_ENDIAN);
  if (strcmp(code, "f4") == 0 || strcmp(code, "f8") == 0) {
    if (!little) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
                  "big-endian data ('%s') is not supported: save it as little-endian "
                  "('<%s')",
                  descr, code);
      return FALSE;
    }
    out->dtype = code[1] == '4' ? CT_NPY_F32 : CT_NPY_F64;
    out->itemsize = code[1] == '4' ? 4 : 8;
    return TRUE;
  }
  g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
              "dtype '%s' is not supported: only float32 ('<f4') and float64 ('<f8')",
              descr);
  return FALSE;
}

/* The header dictionary, e.g.
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * with exactly these three keys, in any order. */
static gboolean parse_header(Scan *s, CtNpy *out, GError **error) {
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE, fortran = FALSE;
  char descr[64] = "";
  if (!eat(s, '{')) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: not a dictionary");
    return FALSE;
  }
  while (!eat(s, '}')) {
    char key[32];
    if (!scan_string(s, key, sizeof key, error))
      return FALSE;
    if (!eat(s, ':')) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "malformed header: expected ':' after '%s'", key);
      return FALSE;
    }
    gboolean *seen = strcmp(key, "descr") == 0           ? &have_descr
                     : strcmp(key, "fortran_order") == 0 ? &have_order
                     : strcmp(key, "shape") == 0         ? &have_shape
                                                         : NULL;
    if (!seen) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "malformed header: unexpected key '%s'", key);
      return FALSE;
    }
    if (*seen) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "malformed header: key '%s' given twice", key);
      return FALSE;
    }
    *seen = TRUE;
    if (seen == &have_descr) {
      if (peek(s, '[')) {
        g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
                    "structured dtypes are not supported: only float32 and float64");
        return FALSE;
      }
      if (!scan_string(s, descr, sizeof descr, error))
        return FALSE;
    } else if (seen == &have_order) {
      if (scan_word(s, "True"))
        fortran = TRUE;
      else if (!scan_word(s, "False")) {
        g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                    "malformed header: 'fortran_order' must be True or False");
        return FALSE;
      }
    } else if (!scan_shape(s, out, error)) {
      return FALSE;
    }
    if (!eat(s, ',') && !peek(s, '}')) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "malformed header: expected ',' or '}' after '%s'", key);
      return FALSE;
    }
  }
  skip_space(s);
  if (s->p != s->end) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: unexpected text after the dictionary");
    return FALSE;
  }
  if (!have_descr || !have_order || !have_shape) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "malformed header: missing key '%s'",
                !have_descr   ? "descr"
                : !have_order ? "fortran_order"
                              : "shape");
    return FALSE;
  }
  if (!parse_descr(descr, out, error))
    return FALSE;
  if (fortran) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
                "Fortran-order arrays are not supported: save a C-contiguous array "
                "(numpy.ascontiguousarray)");
    return FALSE;
  }
  return TRUE;
}

static gboolean parse(const guint8 *data, gsize size, CtNpy *out, GError **error);

/* Messages quote header text, which may hold anything: they leave as one
 * line of valid UTF-8, control characters shown as '?'. */
gboolean ct_npy_parse(const guint8 *data, gsize size, CtNpy *out, GError **error) {
  GError *local = NULL;
  if (parse(data, size, out, &local))
    return TRUE;
  gchar *text = g_utf8_make_valid(local->message, -1);
  for (gchar *p = text; *p; p++)
    if ((guchar)*p < 0x20 || *p == 0x7f)
      *p = '?';
  g_set_error_literal(error, local->domain, local->code, text);
  g_free(text);
  g_error_free(local);
  return FALSE;
}

static gboolean parse(const guint8 *data, gsize size, CtNpy *out, GError **error) {
  memset(out, 0, sizeof *out);
  if (size == 0) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT, "empty file, not a .npy array");
    return FALSE;
  }
  const gsize head = MIN(size, sizeof npy_magic);
  if (memcmp(data, npy_magic, head) != 0) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT, "not a .npy file (bad magic)");
    return FALSE;
  }
  if (size < 8) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "truncated: %" G_GSIZE_FORMAT " bytes is too short for a .npy file",
                size);
    return FALSE;
  }
  out->major = data[6];
  out->minor = data[7];
  if (out->major < 1 || out->major > 3 || out->minor != 0) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
                "unsupported .npy format version %u.%u (1.0, 2.0 and 3.0 are read)",
                out->major, out->minor);
    return FALSE;
  }
  /* 1.0 has a 2-byte header length, 2.0 and 3.0 a 4-byte one. */
  const gsize prefix = out->major == 1 ? 10 : 12;
  if (size < prefix) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "truncated: %" G_GSIZE_FORMAT " bytes is too short for a .npy file",
                size);
    return FALSE;
  }
  guint64 header_len = (guint64)data[8] | (guint64)data[9] << 8;
  if (out->major > 1)
    header_len |= (guint64)data[10] << 16 | (guint64)data[11] << 24;
  if (header_len > CT_NPY_MAX_HEADER) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "header of %" G_GUINT64_FORMAT " bytes is too large (at most %u)",
                header_len, CT_NPY_MAX_HEADER);
    return FALSE;
  }
  if (header_len > size - prefix) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "truncated: the header needs %" G_GUINT64_FORMAT
                " bytes, the file has %" G_GSIZE_FORMAT,
                prefix + header_len, size);
    return FALSE;
  }
  Scan scan = {(const char *)data + prefix, (const char *)data + prefix + header_len};
  if (!parse_header(&scan, out, error))
    return FALSE;

  gint64 count = 1;
  for (gint i = 0; i < out->ndim; i++) {
    if (__builtin_mul_overflow(count, out->shape[i], &count)) {
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                  "shape's element count overflows");
      return FALSE;
    }
  }
  gsize bytes;
  if ((guint64)count > G_MAXSIZE ||
      __builtin_mul_overflow((gsize)count, out->itemsize, &bytes)) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT, "shape's byte size overflows");
    return FALSE;
  }
  out->count = count;
  out->data_offset = prefix + (gsize)header_len;
  out->data_size = bytes;
  const gsize present = size - out->data_offset;
  if (present != bytes) {
    gchar *shape = ct_npy_shape_string(out->shape, out->ndim);
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "%s: shape %s of %u-byte values needs %" G_GSIZE_FORMAT
                " data bytes, the file has %" G_GSIZE_FORMAT,
                present < bytes ? "truncated" : "trailing data", shape,
                (unsigned)out->itemsize, bytes, present);
    g_free(shape);
    return FALSE;
  }
  out->data = data + out->data_offset;
  return TRUE;
}

void ct_npy_read_f32(const CtNpy *npy, gint64 first, gint64 count, float *dst) {
  g_return_if_fail(first >= 0 && count >= 0 && count <= npy->count - first);
  const guint8 *src = npy->data + (gsize)first * npy->itemsize;
  /* memcpy through integers: the data may be unaligned, and is little-endian. */
  if (npy->dtype == CT_NPY_F32) {
    for (gint64 i = 0; i < count; i++) {
      guint32 bits;
      memcpy(&bits, src + 4 * i, 4);
      bits = GUINT32_FROM_LE(bits);
      memcpy(&dst[i], &bits, 4);
    }
  } else {
    for (gint64 i = 0; i < count; i++) {
      guint64 bits;
      double value;
      memcpy(&bits, src + 8 * i, 8);
      bits = GUINT64_FROM_LE(bits);
      memcpy(&value, &bits, 8);
      dst[i] = (float)value;
    }
  }
}

float *ct_npy_to_f32(const CtNpy *npy, GError **error) {
  gsize bytes;
  if ((guint64)npy->count > G_MAXSIZE / sizeof(float)) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT, "array too large for memory");
    return NULL;
  }
  bytes = (gsize)npy->count * sizeof(float);
  float *out = g_try_malloc(bytes ? bytes : 1);
  if (!out) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_FORMAT,
                "out of memory for %" G_GSIZE_FORMAT " bytes", bytes);
    return NULL;
  }
  ct_npy_read_f32(npy, 0, npy->count, out);
  return out;
}

gchar *ct_npy_shape_string(const gint64 *shape, gint ndim) {
  GString *s = g_string_new("[");
  for (gint i = 0; i < ndim; i++)
    g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c(s, ']');
  return g_string_free(s, FALSE);
}

guint8 *ct_npy_header_f32(const gint64 *shape, gint ndim, gsize *len, GError **error) {
  if (ndim < 0 || ndim > CT_NPY_MAX_DIMS) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
                "cannot write an array of %d dimensions", ndim);
    return NULL;
  }
  /* Python's repr of the dict numpy writes, keys sorted, tuple as repr(). */
  GString *s = g_string_new("{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (gint i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      g_string_free(s, TRUE);
      g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_UNSUPPORTED,
                  "cannot write a negative length");
      return NULL;
    }
    g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  }
  g_string_append(s, ndim == 1 ? ",), }" : "), }");
  /* Pad with spaces so that magic + length + dict + newline is a multiple of
   * 64 bytes, which keeps the data aligned for memory mapping. */
  gsize total = 10 + s->len + 1;
  gsize pad = (64 - total % 64) % 64;
  for (gsize i = 0; i < pad; i++)
    g_string_append_c(s, ' ');
  g_string_append_c(s, '\n');
  const gsize header_len = s->len; /* < 65536: at most 32 lengths of 19 digits */
  guint8 *out = g_malloc(10 + header_len);
  memcpy(out, npy_magic, 6);
  out[6] = 1;
  out[7] = 0;
  out[8] = (guint8)(header_len & 0xff);
  out[9] = (guint8)(header_len >> 8);
  memcpy(out + 10, s->str, header_len);
  g_string_free(s, TRUE);
  *len = 10 + header_len;
  return out;
}

gboolean ct_npy_write_f32_data(FILE *f, const float *data, gsize count, GError **error) {
  gboolean ok;
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  ok = fwrite(data, sizeof(float), count, f) == count;
#else
  /* Swap through a small buffer on big-endian hosts. */
  guint32 block[1024];
  ok = TRUE;
  for (gsize done = 0; ok && done < count;) {
    gsize n = MIN(count - done, G_N_ELEMENTS(block));
    for (gsize i = 0; i < n; i++) {
      guint32 bits;
      memcpy(&bits, &data[done + i], 4);
      block[i] = GUINT32_TO_LE(bits);
    }
    ok = fwrite(block, sizeof(guint32), n, f) == n;
    done += n;
  }
#endif
  if (!ok)
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_IO, "write failed: %s",
                g_strerror(errno));
  return ok;
}

gboolean ct_npy_save_f32(const gchar *path, const gint64 *shape, gint ndim,
                         const float *data, GError **error) {
  gsize header_len;
  guint8 *header = ct_npy_header_f32(shape, ndim, &header_len, error);
  if (!header)
    return FALSE;
  gint64 count = 1;
  for (gint i = 0; i < ndim; i++)
    count *= shape[i];
  FILE *f = fopen(path, "wb");
  if (!f) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_IO, "%s: %s", path, g_strerror(errno));
    g_free(header);
    return FALSE;
  }
  gboolean ok = fwrite(header, 1, header_len, f) == header_len;
  g_free(header);
  if (!ok)
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_IO, "%s: %s", path, g_strerror(errno));
  ok = ok && ct_npy_write_f32_data(f, data, (gsize)count, error);
  if (fclose(f) != 0 && ok) {
    g_set_error(error, CT_NPY_ERROR, CT_NPY_ERROR_IO, "%s: %s", path, g_strerror(errno));
    ok = FALSE;
  }
  return ok;
}
