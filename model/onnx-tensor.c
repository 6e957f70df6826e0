/* A tensor's data is exactly one of: raw_data (little-endian bytes), the
 * typed array ONNX assigns to its data type, or external data, which is
 * read only from a regular file inside the model's own folder (after
 * symbolic links are resolved). Sizes are checked against the dims before
 * anything is allocated. */
#include "model/onnx-tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/dtype.h"

static const struct {
  const char *name;
  int size; /* 0: not taken */
  int ct;   /* the matching ct_dtype, for raw bytes */
} dtypes[] = {
    [0] = {"undefined", 0, -1},
    [CT_ONNX_FLOAT] = {"float32", 4, CT_DT_F32},
    [CT_ONNX_UINT8] = {"uint8", 1, CT_DT_U8},
    [CT_ONNX_INT8] = {"int8", 1, CT_DT_I8},
    [CT_ONNX_UINT16] = {"uint16", 2, CT_DT_U16},
    [CT_ONNX_INT16] = {"int16", 2, CT_DT_I16},
    [CT_ONNX_INT32] = {"int32", 4, CT_DT_I32},
    [CT_ONNX_INT64] = {"int64", 8, CT_DT_I64},
    [CT_ONNX_STRING] = {"string", 0, -1},
    [CT_ONNX_BOOL] = {"bool", 1, CT_DT_BOOL},
    [CT_ONNX_FLOAT16] = {"float16", 2, CT_DT_F16},
    [CT_ONNX_DOUBLE] = {"float64", 8, CT_DT_F64},
    [CT_ONNX_UINT32] = {"uint32", 4, CT_DT_U32},
    [CT_ONNX_UINT64] = {"uint64", 8, CT_DT_U64},
    [14] = {"complex64", 0, -1},
    [15] = {"complex128", 0, -1},
    [CT_ONNX_BFLOAT16] = {"bfloat16", 2, CT_DT_BF16},
};

static gboolean known(int dtype) {
  return dtype >= 0 && dtype < (int)G_N_ELEMENTS(dtypes);
}

const char *ct_onnx_dtype_name(ct_onnx *o, int dtype) {
  if (known(dtype))
    return dtypes[dtype].name;
  GString *s = g_string_new(NULL);
  g_string_printf(s, "data type %d", dtype);
  return ct_keep(o->ld, s);
}

int ct_onnx_dtype_size(int dtype) {
  return known(dtype) ? dtypes[dtype].size : 0;
}

gboolean ct_onnx_dtype_is_float(int dtype) {
  return dtype == CT_ONNX_FLOAT || dtype == CT_ONNX_FLOAT16 || dtype == CT_ONNX_DOUBLE ||
         dtype == CT_ONNX_BFLOAT16;
}

const char *ct_otensor_dims_text(ct_onnx *o, const ct_otensor *t) {
  return ct_dims_text(o->ld, t->dims, t->rank);
}

/* ---- elements ---------------------------------------------------------- */

static gint64 raw_int(const guint8 *p, int dtype) {
  const int size = dtypes[dtype].size;
  guint64 u = 0;
  for (int b = size - 1; b >= 0; b--)
    u = u << 8 | p[b];
  switch (dtype) {
  case CT_ONNX_INT8:
    return (gint64)(gint8)(guint8)u;
  case CT_ONNX_INT16:
    return (gint64)(gint16)(guint16)u;
  case CT_ONNX_INT32:
    return (gint64)(gint32)(guint32)u;
  case CT_ONNX_BOOL:
    return u != 0;
  default: /* unsigned, and int64 (uint64 was checked to fit) */
    return (gint64)u;
  }
}

/* A float16/bfloat16 element from its 16 bits. */
static float half_bits(int dtype, guint16 bits) {
  guint8 b[2] = {(guint8)(bits & 0xff), (guint8)(bits >> 8)};
  float f;
  ct_dtype_to_f32(dtypes[dtype].ct, b, &f, 1);
  return f;
}

double ct_otensor_f64(const ct_otensor *t, gint64 k) {
  switch (t->src) {
  case CT_SRC_RAW: {
    const guint8 *p = (const guint8 *)t->data + k * dtypes[t->dtype].size;
    if (ct_onnx_dtype_is_float(t->dtype)) {
      double d;
      ct_dtype_to_f64(dtypes[t->dtype].ct, p, &d, 1);
      return d;
    }
    return (double)raw_int(p, t->dtype);
  }
  case CT_SRC_F32:
    return ((const float *)t->data)[k];
  case CT_SRC_F64:
    return ((const double *)t->data)[k];
  case CT_SRC_I32: {
    gint32 v = ((const gint32 *)t->data)[k];
    if (t->dtype == CT_ONNX_FLOAT16 || t->dtype == CT_ONNX_BFLOAT16)
      return half_bits(t->dtype, (guint16)((guint32)v & 0xffff));
    return t->dtype == CT_ONNX_BOOL ? v != 0 : v;
  }
  case CT_SRC_I64:
    return (double)((const gint64 *)t->data)[k];
  default:
    return (double)((const guint64 *)t->data)[k];
  }
}

gint64 ct_otensor_i64(const ct_otensor *t, gint64 k) {
  switch (t->src) {
  case CT_SRC_RAW:
    if (!ct_onnx_dtype_is_float(t->dtype))
      return raw_int((const guint8 *)t->data + k * dtypes[t->dtype].size, t->dtype);
    break;
  case CT_SRC_I32:
    if (t->dtype != CT_ONNX_FLOAT16 && t->dtype != CT_ONNX_BFLOAT16) {
      gint32 v = ((const gint32 *)t->data)[k];
      return t->dtype == CT_ONNX_BOOL ? v != 0 : v;
    }
    break;
  case CT_SRC_I64:
    return ((const gint64 *)t->data)[k];
  case CT_SRC_U64:
    return (gint64)((const guint64 *)t->data)[k];
  default:
    break;
  }
  /* Callers pass float tensors only where the value was checked. */
  double d = ct_otensor_f64(t, k);
  return isfinite(d) && fabs(d) < 9.2e18 ? (gint64)d : 0;
}

void ct_otensor_to_f32(const ct_otensor *t, float *out) {
  if (t->src == CT_SRC_RAW && ct_onnx_dtype_is_float(t->dtype)) {
    ct_dtype_to_f32(dtypes[t->dtype].ct, t->data, out, (size_t)t->count);
    return;
  }
  if (t->src == CT_SRC_F32) {
    if (t->count > 0)
      memcpy(out, t->data, (size_t)t->count * sizeof(float));
    return;
  }
  for (gint64 k = 0; k < t->count; k++)
    out[k] = ct_f64_to_f32(ct_otensor_f64(t, k));
}

/* "initializer \"w\"" or "the value of node 3 (Constant)", made only for a
 * message. */
static const char *who(ct_onnx *o, const ct_tensor_owner *w) {
  if (w->node >= 0) {
    GString *s = g_string_new("the value of ");
    g_string_append(s, ct_onnx_node_text(o, w->node));
    return ct_keep(o->ld, s);
  }
  GString *s = g_string_new("initializer ");
  ct_escape_append(s, w->initializer, TRUE, CT_QUOTE_MAX);
  return ct_keep(o->ld, s);
}

/* ---- external data ----------------------------------------------------- */

static gboolean parse_size(ct_onnx *o, const ct_tensor_owner *w, const char *key,
                           const char *text, gint64 *out) {
  guint64 v;
  /* Digits only: no sign, no space, no base prefix. */
  gboolean ok = text && *text && strspn(text, "0123456789") == strlen(text) &&
                g_ascii_string_to_unsigned(text, 10, 0, G_MAXINT64, &v, NULL);
  if (!ok)
    return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
                   "%s: external data %s %s is not a byte count", who(o, w), key,
                   ct_quote(o->ld, text ? text : ""));
  *out = (gint64)v;
  return TRUE;
}

/* The location, resolved, if it lies inside the model's folder; NULL with
 * the error set. */
static gchar *external_path(ct_onnx *o, const ct_tensor_owner *w, const char *location) {
  const char *q = ct_quote(o->ld, location);
  gchar **parts = g_strsplit(location, "/", -1);
  gboolean up = FALSE;
  for (gchar **p = parts; *p; p++)
    up = up || strcmp(*p, "..") == 0;
  g_strfreev(parts);
  if (!*location)
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT, "%s: external data with an empty location",
            who(o, w));
  else if (location[0] == '/')
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            "%s: external data location %s is an absolute path; it must be a file in "
            "the model's folder",
            who(o, w), q);
  else if (up)
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            "%s: external data location %s leads out of the model's folder (\"..\")",
            who(o, w), q);
  if (!*location || location[0] == '/' || up)
    return NULL;
  gchar *dir = g_path_get_dirname(o->path);
  gchar *joined = g_build_filename(dir, location, NULL);
  char *real_dir = realpath(dir, NULL);
  char *real = realpath(joined, NULL);
  int e = errno;
  gchar *result = NULL;
  if (!real_dir || !real) {
    ct_fail(o->ld, CT_MODEL_ERROR_IO, "%s: cannot open external data %s: %s", who(o, w),
            q, g_strerror(e));
  } else if (!g_str_has_prefix(real, real_dir) ||
             (real[strlen(real_dir)] != '/' && strcmp(real_dir, "/") != 0)) {
    /* A symbolic link inside the folder may point anywhere. */
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            "%s: external data %s lies outside the model's folder (it resolves to %s)",
            who(o, w), q, ct_quote(o->ld, real));
  } else {
    result = g_strdup(real);
  }
  free(real_dir);
  free(real);
  g_free(joined);
  g_free(dir);
  return result;
}

static gboolean read_external(ct_onnx *o, const Onnx__TensorProto *t,
                              const ct_tensor_owner *w, gint64 bytes, ct_otensor *out) {
  const char *location = NULL, *offset_text = NULL, *length_text = NULL;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    const char *key = e->key ? e->key : "";
    const char *value = e->value ? e->value : "";
    if (strcmp(key, "location") == 0)
      location = value;
    else if (strcmp(key, "offset") == 0)
      offset_text = value;
    else if (strcmp(key, "length") == 0)
      length_text = value;
  }
  if (!location)
    return ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
                   "%s: its data is external but has no location", who(o, w));
  gint64 offset = 0, length = -1;
  if (offset_text && !parse_size(o, w, "offset", offset_text, &offset))
    return FALSE;
  if (length_text && !parse_size(o, w, "length", length_text, &length))
    return FALSE;
  gchar *path = external_path(o, w, location);
  if (!path)
    return FALSE;
  ct_load ext = *o->ld; /* the same messages, another file */
  ext.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  int e = errno;
  gboolean ok = FALSE;
  const char *q = ct_quote(o->ld, location);
  if (ext.fd < 0) {
    ct_fail(o->ld, CT_MODEL_ERROR_IO, "%s: cannot open external data %s: %s", who(o, w),
            q, g_strerror(e));
  } else if (fstat(ext.fd, &ext.st) != 0 || !S_ISREG(ext.st.st_mode)) {
    ct_fail(o->ld, CT_MODEL_ERROR_IO, "%s: external data %s is not a regular file",
            who(o, w), q);
  } else if (length >= 0 && length != bytes) {
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            "%s: external data length %lld does not match its %s dims %s (%lld bytes)",
            who(o, w), (long long)length, ct_onnx_dtype_name(o, out->dtype),
            ct_otensor_dims_text(o, out), (long long)bytes);
  } else if (offset > ext.st.st_size || bytes > ext.st.st_size - offset) {
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            "%s: external data %s has %lld bytes; %lld at offset %lld run past its end",
            who(o, w), q, (long long)ext.st.st_size, (long long)bytes, (long long)offset);
  } else if (length < 0 && ext.st.st_size - offset != bytes) {
    ct_fail(o->ld, CT_MODEL_ERROR_FORMAT,
            "%s: external data %s holds %lld bytes after offset %lld, but its %s dims %s "
            "need %lld",
            who(o, w), q, (long long)(ext.st.st_size - offset), (long long)offset,
            ct_onnx_dtype_name(o, out->dtype), ct_otensor_dims_text(o, out),
            (long long)bytes);
  } else {
    void *buf = ct_onnx_temp(o, bytes ? bytes : 1, 1);
    ok = buf && ct_read_at(&ext, buf, (size_t)bytes, offset);
    /* Its float32 copy counts as the file's own weights do. */
    o->keep_budget += 2 * bytes;
    out->src = CT_SRC_RAW;
    out->data = buf;
  }
  if (ext.fd >= 0)
    close(ext.fd);
  g_free(path);
  return ok;
}

/* ---- reading ----------------------------------------------------------- */

/* The typed array ONNX assigns to a data type, and how many it holds. */
static size_t typed_count(const Onnx__TensorProto *t, int dtype, ct_src *src,
                          const void **data) {
  switch (dtype) {
  case CT_ONNX_FLOAT:
    *src = CT_SRC_F32;
    *data = t->float_data;
    return t->n_float_data;
  case CT_ONNX_DOUBLE:
    *src = CT_SRC_F64;
    *data = t->double_data;
    return t->n_double_data;
  case CT_ONNX_INT64:
    *src = CT_SRC_I64;
    *data = t->int64_data;
    return t->n_int64_data;
  case CT_ONNX_UINT32:
  case CT_ONNX_UINT64:
    *src = CT_SRC_U64;
    *data = t->uint64_data;
    return t->n_uint64_data;
  default:
    *src = CT_SRC_I32;
    *data = t->int32_data;
    return t->n_int32_data;
  }
}

gboolean ct_otensor_read(ct_onnx *o, const Onnx__TensorProto *t, const ct_tensor_owner *w,
                         ct_otensor *out) {
  *out = (ct_otensor){0};
  ct_load *ld = o->ld;
  const int dtype = t->has_data_type ? t->data_type : 0;
  if (dtype == 0)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "%s has no data type", who(o, w));
  if (ct_onnx_dtype_size(dtype) == 0)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "%s has data type %s, which is not supported", who(o, w),
                   ct_onnx_dtype_name(o, dtype));
  out->dtype = dtype;
  if (t->n_dims > CT_ONNX_MAX_DIMS)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "%s has %zu dimensions, more than the %d this reader takes", who(o, w),
                   t->n_dims, CT_ONNX_MAX_DIMS);
  out->rank = (int)t->n_dims;
  gint64 count = 1;
  gboolean overflow = FALSE;
  for (size_t i = 0; i < t->n_dims; i++) {
    out->dims[i] = t->dims[i];
    if (t->dims[i] < 0)
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "%s has a negative size in its dims %s",
                     who(o, w), ct_otensor_dims_text(o, out));
    overflow = overflow || !ct_mul_i64(count, t->dims[i], &count);
  }
  if (overflow)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "%s: the product of its dims %s overflows int64", who(o, w),
                   ct_otensor_dims_text(o, out));
  if (count > CT_ONNX_MAX_ELEMENTS)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "%s has %lld elements (dims %s), more than the limit of %lld",
                   who(o, w), (long long)count, ct_otensor_dims_text(o, out),
                   (long long)CT_ONNX_MAX_ELEMENTS);
  out->count = count;
  const gint64 bytes = count * ct_onnx_dtype_size(dtype);
  if (t->segment)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "%s is a segment of a larger tensor, which is not supported",
                   who(o, w));

  const size_t n_typed = t->n_float_data + t->n_int32_data + t->n_string_data +
                         t->n_int64_data + t->n_double_data + t->n_uint64_data;
  const gboolean external =
      t->has_data_location &&
      t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  if (t->has_data_location && !external &&
      t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "%s has an unknown data_location %d",
                   who(o, w), (int)t->data_location);
  if ((external || t->has_raw_data) && n_typed > 0)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "%s holds its data twice: in %s and in a typed field", who(o, w),
                   external ? "external data" : "raw_data");
  if (external && t->has_raw_data)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "%s holds its data twice: in external data and in raw_data",
                   who(o, w));
  if (external)
    return read_external(o, t, w, bytes, out);
  if (t->has_raw_data) {
    if ((gint64)t->raw_data.len != bytes)
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                     "%s has %zu bytes of raw_data, but its %s dims %s need %lld",
                     who(o, w), t->raw_data.len, ct_onnx_dtype_name(o, dtype),
                     ct_otensor_dims_text(o, out), (long long)bytes);
    out->src = CT_SRC_RAW;
    out->data = t->raw_data.data;
  } else {
    size_t n = typed_count(t, dtype, &out->src, &out->data);
    if (n != n_typed)
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                     "%s (%s) holds its data in a field of another data type", who(o, w),
                     ct_onnx_dtype_name(o, dtype));
    if ((gint64)n != count)
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                     "%s has %zu values, but its dims %s need %lld", who(o, w), n,
                     ct_otensor_dims_text(o, out), (long long)count);
  }
  if (dtype == CT_ONNX_UINT64) {
    for (gint64 k = 0; k < count; k++) {
      guint64 u = out->src == CT_SRC_RAW
                      ? (guint64)raw_int((const guint8 *)out->data + 8 * k, CT_ONNX_INT64)
                      : ((const guint64 *)out->data)[k];
      if (u > G_MAXINT64)
        return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                       "%s holds %llu, beyond the int64 range this reader computes in",
                       who(o, w), (unsigned long long)u);
    }
  }
  return TRUE;
}
