/* Loading a layer from a .safetensors file (contract section 3).
 *
 * Order of work: checked reads of the length prefix and the header; a strict
 * JSON scan of the header (syntax, depth, duplicate names, integer range);
 * json-glib for the tree; validation of every entry and of the data tiling
 * like safetensors' own reader; then the layer's hyper-parameters, and only
 * last the layer's own tensor bytes, converted to float32 (a weight-normalised
 * pair folded into one weight on the way). */
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

GQuark ct_model_error_quark(void) {
  return g_quark_from_static_string("ct-model-error-quark");
}

/* safetensors' own limit (MAX_HEADER_SIZE in the reference reader). */
#define HEADER_LIMIT 100000000
/* Deeper JSON is never needed (a header nests 3 levels) and json-glib
 * recurses per level, so a hostile header must not reach it. */
#define JSON_MAX_DEPTH 64
/* json-glib needs about 300 bytes per object and 100 per other value, so a
 * 100 MB header of "{}" would take 10 GB and end in an abort. These limits
 * keep its tree near 1 GB at worst, far above any real checkpoint (about 10
 * values and one object per tensor). */
#define JSON_MAX_VALUES 10000000
#define JSON_MAX_OBJECTS 1000000
/* How much of a name or value a message quotes, and how many names a
 * "no tensor" message lists. */
#define QUOTE_MAX 80
#define LIST_MAX 8

/* ------------------------------------------------------------------------ */
/* dtypes */

typedef enum {
  DT_BOOL,
  DT_U8,
  DT_I8,
  DT_F8_E5M2,
  DT_F8_E4M3,
  DT_I16,
  DT_U16,
  DT_F16,
  DT_BF16,
  DT_I32,
  DT_U32,
  DT_F32,
  DT_F64,
  DT_I64,
  DT_U64,
  DT_COUNT
} dtype;

static const struct {
  const char *name;
  int size;
} dtypes[DT_COUNT] = {
    [DT_BOOL] = {"BOOL", 1},       [DT_U8] = {"U8", 1},           [DT_I8] = {"I8", 1},
    [DT_F8_E5M2] = {"F8_E5M2", 1}, [DT_F8_E4M3] = {"F8_E4M3", 1}, [DT_I16] = {"I16", 2},
    [DT_U16] = {"U16", 2},         [DT_F16] = {"F16", 2},         [DT_BF16] = {"BF16", 2},
    [DT_I32] = {"I32", 4},         [DT_U32] = {"U32", 4},         [DT_F32] = {"F32", 4},
    [DT_F64] = {"F64", 8},         [DT_I64] = {"I64", 8},         [DT_U64] = {"U64", 8},
};

static int dtype_lookup(const char *name) {
  for (int i = 0; i < DT_COUNT; i++) {
    if (strcmp(dtypes[i].name, name) == 0)
      return i;
  }
  return -1;
}

static gboolean dtype_is_float(int dt) {
  return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16 || dt == DT_F64;
}

/* ------------------------------------------------------------------------ */
/* float conversion: explicit little-endian decoding, so the host's byte order
 * and the data's alignment do not matter. */

static float f32_from_bits(guint32 bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static float f16_to_f32(guint16 h) {
  guint32 sign = (guint32)(h >> 15) << 31;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0)
      return f32_from_bits(sign); /* signed zero */
    /* Subnormal: renormalise; every f16 subnormal is a normal float32. */
    int e = -14;
    while (!(mant & 0x400)) {
      mant <<= 1;
      e--;
    }
    mant &= 0x3ff;
    return f32_from_bits(sign | (guint32)(e + 127) << 23 | mant << 13);
  }
  if (exp == 31) /* inf, or nan with its payload kept */
    return f32_from_bits(sign | 0x7f800000u | mant << 13);
  return f32_from_bits(sign | (exp - 15 + 127) << 23 | mant << 13);
}

static float bf16_to_f32(guint16 h) {
  return f32_from_bits((guint32)h << 16); /* bf16 is float32's top half */
}

static float f64_to_f32(double d) {
  /* Converting an out-of-range double is undefined in C; do what IEEE
   * round-to-nearest does: up to half an ulp past FLT_MAX rounds down to
   * FLT_MAX, beyond that to infinity. */
  const double overflow_at = (double)FLT_MAX + ldexp(1.0, 103);
  if (d >= overflow_at)
    return INFINITY;
  if (d <= -overflow_at)
    return -INFINITY;
  if (d > FLT_MAX)
    return FLT_MAX;
  if (d < -FLT_MAX)
    return -FLT_MAX;
  return (float)d;
}

static void convert(int dt, const guint8 *src, float *dst, size_t count) {
  for (size_t i = 0; i < count; i++) {
    switch (dt) {
    case DT_F16:
      dst[i] = f16_to_f32((guint16)(src[2 * i] | src[2 * i + 1] << 8));
      break;
    case DT_BF16:
      dst[i] = bf16_to_f32((guint16)(src[2 * i] | src[2 * i + 1] << 8));
      break;
    case DT_F32: {
      const guint8 *p = src + 4 * i;
      dst[i] = f32_from_bits((guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 |
                             (guint32)p[3] << 24);
      break;
    }
    default: { /* DT_F64 */
      const guint8 *p = src + 8 * i;
      guint64 bits = 0;
      for (int b = 7; b >= 0; b--)
        bits = bits << 8 | p[b];
      double d;
      memcpy(&d, &bits, sizeof d);
      dst[i] = f64_to_f32(d);
      break;
    }
    }
  }
}

/* The same values as convert, as doubles (exact for every float dtype): the
 * weight-norm fold computes in double. */
static void convert_f64(int dt, const guint8 *src, double *dst, size_t count) {
  if (dt == DT_F64) {
    for (size_t i = 0; i < count; i++) {
      guint64 bits = 0;
      for (int b = 7; b >= 0; b--)
        bits = bits << 8 | src[8 * i + (size_t)b];
      memcpy(&dst[i], &bits, sizeof(double));
    }
    return;
  }
  enum { CHUNK = 256 };
  float tmp[CHUNK];
  const size_t es = dt == DT_F32 ? 4 : 2;
  for (size_t done = 0; done < count; done += CHUNK) {
    size_t n = count - done < CHUNK ? count - done : CHUNK;
    convert(dt, src + done * es, tmp, n);
    for (size_t i = 0; i < n; i++)
      dst[done + i] = tmp[i];
  }
}

/* ------------------------------------------------------------------------ */
/* messages */

/* Appends s with control characters escaped and long text cut, so a hostile
 * name cannot break a one-line message; in double quotes if quote. */
static void append_escaped(GString *out, const char *s, gboolean quote) {
  if (quote)
    g_string_append_c(out, '"');
  /* A user's text (an override) need not be UTF-8; a GError message must be. */
  const gboolean utf8 = g_utf8_validate(s, -1, NULL);
  const char *p = s;
  while (*p) {
    if (p - s >= QUOTE_MAX) {
      g_string_append(out, "...");
      break;
    }
    guchar c = (guchar)*p;
    if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80) ||
        (quote && (c == '"' || c == '\\'))) {
      g_string_append_printf(out, c == '"' || c == '\\' ? "\\%c" : "\\x%02x", c);
      p++;
      continue;
    }
    /* Whole UTF-8 sequences, so a cut never splits a character. */
    const char *next = g_utf8_next_char(p);
    g_string_append_len(out, p, next - p);
    p = next;
  }
  if (quote)
    g_string_append_c(out, '"');
}

typedef struct {
  gchar *display; /* the path, for messages */
  GError **error;
  GPtrArray *warnings;   /* NULL: not wanted */
  GStringChunk *scratch; /* quoted strings live until the load ends */
  int fd;
  struct stat st;
  gint64 file_size, header_len, data_start, data_len;
  gchar *header;
} loader;

static const char *Q(loader *ld, const char *s) {
  GString *tmp = g_string_new(NULL);
  append_escaped(tmp, s, TRUE);
  const char *r = g_string_chunk_insert_len(ld->scratch, tmp->str, (gssize)tmp->len);
  g_string_free(tmp, TRUE);
  return r;
}

static gboolean fail(loader *ld, CtModelError code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static gboolean fail(loader *ld, CtModelError code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(ld->error, CT_MODEL_ERROR, code, "%s: %s", ld->display, msg);
  g_free(msg);
  return FALSE;
}

/* One line naming the file, for ct_model_load_full's warnings. */
static void warn(loader *ld, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void warn(loader *ld, const char *fmt, ...) {
  if (!ld->warnings)
    return;
  va_list ap;
  va_start(ap, fmt);
  gchar *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_ptr_array_add(ld->warnings, g_strdup_printf("%s: %s", ld->display, msg));
  g_free(msg);
}

/* ------------------------------------------------------------------------ */
/* checked reads */

/* Reads exactly len bytes at offset; errno-style code in *err, 0 for a file
 * that ended early (it shrank under us). */
static gboolean read_exact(int fd, void *buf, size_t len, gint64 offset, int *err) {
  guint8 *p = buf;
  while (len > 0) {
    size_t want = len < (1u << 30) ? len : (1u << 30);
    ssize_t got = pread(fd, p, want, (off_t)offset);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      *err = errno;
      return FALSE;
    }
    if (got == 0) {
      *err = 0;
      return FALSE;
    }
    p += got;
    len -= (size_t)got;
    offset += got;
  }
  return TRUE;
}

static gboolean read_at(loader *ld, void *buf, size_t len, gint64 offset) {
  int err;
  if (read_exact(ld->fd, buf, len, offset, &err))
    return TRUE;
  if (err == 0)
    return fail(ld, CT_MODEL_ERROR_IO,
                "the file ended early while being read (%lld bytes "
                "at offset %lld): it changed on disk",
                (long long)len, (long long)offset);
  return fail(ld, CT_MODEL_ERROR_IO, "cannot read: %s", g_strerror(err));
}

/* ------------------------------------------------------------------------ */
/* strict JSON scan */

/* json-glib 1.6 accepts comments, single quotes, octal and hex numbers, a
 * "var x =" prefix and several top-level values, recurses without a depth
 * limit, silently keeps the last of duplicate names (finding each duplicate
 * with a linear search: quadratic on a hostile header) and wraps integers
 * past int64. This scan admits only RFC 8259 JSON without those hazards, so
 * json-glib only ever sees input it handles exactly. */
typedef struct {
  const char *s;
  size_t n, pos;
  const char *why;                   /* static reason on failure */
  GString *keys[JSON_MAX_DEPTH + 1]; /* member being read, per object level */
  /* set when the failure is a duplicate name */
  gchar *dup_name, *dup_parent;
  int dup_depth;
  gint64 top_members, n_values, n_objects;
  gboolean over_limit; /* valid JSON perhaps, but too much of it */
} json_scan;

static gboolean scan_fail(json_scan *js, const char *why) {
  js->why = why;
  return FALSE;
}

static void skip_ws(json_scan *js) {
  while (js->pos < js->n) {
    char c = js->s[js->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    js->pos++;
  }
}

static gboolean scan_hex4(json_scan *js, guint *cp) {
  if (js->n - js->pos < 4)
    return scan_fail(js, "incomplete \\u escape");
  guint v = 0;
  for (int i = 0; i < 4; i++) {
    int d = g_ascii_xdigit_value(js->s[js->pos + i]);
    if (d < 0)
      return scan_fail(js, "bad \\u escape");
    v = v << 4 | (guint)d;
  }
  js->pos += 4;
  *cp = v;
  return TRUE;
}

/* At the opening quote; decodes into out when out is not NULL. */
static gboolean scan_string(json_scan *js, GString *out) {
  js->pos++;
  if (out)
    g_string_truncate(out, 0);
  for (;;) {
    size_t start = js->pos;
    while (js->pos < js->n && js->s[js->pos] != '"' && js->s[js->pos] != '\\' &&
           (guchar)js->s[js->pos] >= 0x20)
      js->pos++;
    if (out)
      g_string_append_len(out, js->s + start, (gssize)(js->pos - start));
    if (js->pos >= js->n)
      return scan_fail(js, "unterminated string");
    char c = js->s[js->pos];
    if (c == '"') {
      js->pos++;
      return TRUE;
    }
    if (c != '\\')
      return scan_fail(js, "control character in a string");
    js->pos++;
    if (js->pos >= js->n)
      return scan_fail(js, "unterminated string");
    c = js->s[js->pos++];
    gunichar cp;
    switch (c) {
    case '"':
    case '\\':
    case '/':
      cp = (gunichar)c;
      break;
    case 'b':
      cp = '\b';
      break;
    case 'f':
      cp = '\f';
      break;
    case 'n':
      cp = '\n';
      break;
    case 'r':
      cp = '\r';
      break;
    case 't':
      cp = '\t';
      break;
    case 'u': {
      guint hi;
      if (!scan_hex4(js, &hi))
        return FALSE;
      if (hi >= 0xdc00 && hi <= 0xdfff)
        return scan_fail(js, "unpaired surrogate in a \\u escape");
      if (hi >= 0xd800 && hi <= 0xdbff) {
        guint lo;
        if (js->n - js->pos < 2 || js->s[js->pos] != '\\' || js->s[js->pos + 1] != 'u')
          return scan_fail(js, "unpaired surrogate in a \\u escape");
        js->pos += 2;
        if (!scan_hex4(js, &lo))
          return FALSE;
        if (lo < 0xdc00 || lo > 0xdfff)
          return scan_fail(js, "unpaired surrogate in a \\u escape");
        cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
      } else {
        cp = hi;
      }
      /* json-glib keeps strings NUL-terminated: "a\u0000b" would become "a". */
      if (cp == 0)
        return scan_fail(js, "\\u0000 in a string is not supported");
      break;
    }
    default:
      js->pos--;
      return scan_fail(js, "bad escape in a string");
    }
    if (out)
      g_string_append_unichar(out, cp);
  }
}

static gboolean is_digit(json_scan *js) {
  return js->pos < js->n && g_ascii_isdigit(js->s[js->pos]);
}

static gboolean scan_number(json_scan *js) {
  size_t start = js->pos;
  if (js->s[js->pos] == '-')
    js->pos++;
  size_t int_start = js->pos;
  if (!is_digit(js))
    return scan_fail(js, "bad number");
  if (js->s[js->pos] == '0') {
    js->pos++;
  } else {
    while (is_digit(js))
      js->pos++;
  }
  size_t int_len = js->pos - int_start;
  gboolean integral = TRUE;
  if (js->pos < js->n && js->s[js->pos] == '.') {
    js->pos++;
    if (!is_digit(js))
      return scan_fail(js, "bad number");
    while (is_digit(js))
      js->pos++;
    integral = FALSE;
  }
  if (js->pos < js->n && (js->s[js->pos] == 'e' || js->s[js->pos] == 'E')) {
    js->pos++;
    if (js->pos < js->n && (js->s[js->pos] == '+' || js->s[js->pos] == '-'))
      js->pos++;
    if (!is_digit(js))
      return scan_fail(js, "bad number");
    while (is_digit(js))
      js->pos++;
    integral = FALSE;
  }
  /* json-glib stores integers as int64 and wraps larger ones. */
  if (integral &&
      (int_len > 19 ||
       (int_len == 19 && memcmp(js->s + int_start, "9223372036854775807", 19) > 0))) {
    js->pos = start;
    return scan_fail(js, "integer out of the 64-bit range");
  }
  return TRUE;
}

static gboolean scan_literal(json_scan *js, const char *word) {
  size_t len = strlen(word);
  if (js->n - js->pos < len || memcmp(js->s + js->pos, word, len) != 0)
    return scan_fail(js, "unexpected character");
  js->pos += len;
  return TRUE;
}

static gboolean scan_value(json_scan *js, int depth);

static gboolean scan_object(json_scan *js, int depth) {
  js->pos++;
  if (!js->keys[depth])
    js->keys[depth] = g_string_new(NULL);
  GString *key = js->keys[depth];
  g_string_truncate(key, 0);
  skip_ws(js);
  if (js->pos < js->n && js->s[js->pos] == '}') {
    js->pos++;
    return TRUE;
  }
  GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  gboolean ok = FALSE;
  for (;;) {
    skip_ws(js);
    if (js->pos >= js->n || js->s[js->pos] != '"') {
      scan_fail(js, "expected a member name");
      break;
    }
    size_t name_pos = js->pos;
    if (!scan_string(js, key))
      break;
    if (!g_hash_table_add(seen, g_strndup(key->str, key->len))) {
      js->pos = name_pos;
      js->dup_name = g_strndup(key->str, key->len);
      js->dup_depth = depth;
      /* keys[0] exists only when the top level is an object. */
      if (depth == 1 && js->keys[0])
        js->dup_parent = g_strndup(js->keys[depth - 1]->str, js->keys[depth - 1]->len);
      scan_fail(js, "duplicate name");
      break;
    }
    if (depth == 0)
      js->top_members++;
    skip_ws(js);
    if (js->pos >= js->n || js->s[js->pos] != ':') {
      scan_fail(js, "expected ':'");
      break;
    }
    js->pos++;
    if (!scan_value(js, depth))
      break;
    skip_ws(js);
    if (js->pos < js->n && js->s[js->pos] == ',') {
      js->pos++;
      continue;
    }
    if (js->pos < js->n && js->s[js->pos] == '}') {
      js->pos++;
      ok = TRUE;
    } else {
      scan_fail(js, "expected ',' or '}'");
    }
    break;
  }
  g_hash_table_destroy(seen);
  return ok;
}

static gboolean scan_array(json_scan *js, int depth) {
  js->pos++;
  skip_ws(js);
  if (js->pos < js->n && js->s[js->pos] == ']') {
    js->pos++;
    return TRUE;
  }
  for (;;) {
    if (!scan_value(js, depth))
      return FALSE;
    skip_ws(js);
    if (js->pos < js->n && js->s[js->pos] == ',') {
      js->pos++;
      continue;
    }
    if (js->pos < js->n && js->s[js->pos] == ']') {
      js->pos++;
      return TRUE;
    }
    return scan_fail(js, "expected ',' or ']'");
  }
}

/* A value inside a container at level depth (-1 for the top level). */
static gboolean scan_value(json_scan *js, int depth) {
  skip_ws(js);
  if (js->pos >= js->n)
    return scan_fail(js, "unexpected end");
  char c = js->s[js->pos];
  if (++js->n_values > JSON_MAX_VALUES ||
      (c == '{' && ++js->n_objects > JSON_MAX_OBJECTS)) {
    js->over_limit = TRUE;
    return scan_fail(js, c == '{' && js->n_objects > JSON_MAX_OBJECTS
                             ? "it holds more than 1000000 objects"
                             : "it holds more than 10000000 values");
  }
  if (c == '{' || c == '[') {
    if (depth + 1 >= JSON_MAX_DEPTH) {
      js->over_limit = TRUE;
      return scan_fail(js, "it nests deeper than 64 levels");
    }
    return c == '{' ? scan_object(js, depth + 1) : scan_array(js, depth + 1);
  }
  if (c == '"')
    return scan_string(js, NULL);
  if (c == '-' || g_ascii_isdigit(c))
    return scan_number(js);
  if (c == 't')
    return scan_literal(js, "true");
  if (c == 'f')
    return scan_literal(js, "false");
  if (c == 'n')
    return scan_literal(js, "null");
  return scan_fail(js, "unexpected character");
}

/* ------------------------------------------------------------------------ */
/* header */

typedef struct {
  const char *name; /* owned by the JSON tree */
  JsonObject *entry;
  int dtype;
  gint64 begin, end;
  guint index; /* position in the header, for stable order */
} tensor_info;

static gboolean node_int(JsonNode *node, gint64 *out) {
  if (!node || JSON_NODE_TYPE(node) != JSON_NODE_VALUE ||
      json_node_get_value_type(node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int(node);
  return TRUE;
}

static void append_shape(GString *out, JsonArray *shape) {
  guint n = json_array_get_length(shape);
  g_string_append_c(out, '[');
  for (guint i = 0; i < n; i++) {
    if (i == LIST_MAX) {
      g_string_append(out, ", ...");
      break;
    }
    gint64 v = 0;
    node_int(json_array_get_element(shape, i), &v);
    g_string_append_printf(out, "%s%lld", i ? ", " : "", (long long)v);
  }
  g_string_append_c(out, ']');
}

static const char *shape_text(loader *ld, JsonArray *shape) {
  GString *tmp = g_string_new(NULL);
  append_shape(tmp, shape);
  const char *r = g_string_chunk_insert_len(ld->scratch, tmp->str, (gssize)tmp->len);
  g_string_free(tmp, TRUE);
  return r;
}

/* Checks one entry as safetensors' TensorInfo: dtype, shape, data_offsets,
 * and the byte size dtype x shape. */
static gboolean check_entry(loader *ld, tensor_info *t, JsonNode *node) {
  if (JSON_NODE_TYPE(node) != JSON_NODE_OBJECT)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "entry of tensor %s is not an object",
                Q(ld, t->name));
  JsonObject *e = json_node_get_object(node);
  t->entry = e;

  JsonNode *dn = json_object_get_member(e, "dtype");
  if (!dn)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has no \"dtype\"", Q(ld, t->name));
  if (JSON_NODE_TYPE(dn) != JSON_NODE_VALUE ||
      json_node_get_value_type(dn) != G_TYPE_STRING)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s: \"dtype\" is not a string",
                Q(ld, t->name));
  t->dtype = dtype_lookup(json_node_get_string(dn));
  if (t->dtype < 0)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has unknown dtype %s",
                Q(ld, t->name), Q(ld, json_node_get_string(dn)));

  JsonNode *sn = json_object_get_member(e, "shape");
  if (!sn)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has no \"shape\"", Q(ld, t->name));
  if (JSON_NODE_TYPE(sn) != JSON_NODE_ARRAY)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s: \"shape\" is not a list",
                Q(ld, t->name));
  JsonArray *shape = json_node_get_array(sn);
  gint64 count = 1;
  gboolean overflow = FALSE;
  for (guint i = 0; i < json_array_get_length(shape); i++) {
    gint64 dim;
    if (!node_int(json_array_get_element(shape, i), &dim))
      return fail(ld, CT_MODEL_ERROR_FORMAT,
                  "tensor %s: \"shape\" must be a list of integers", Q(ld, t->name));
    if (dim < 0)
      return fail(ld, CT_MODEL_ERROR_FORMAT,
                  "tensor %s has a negative size %lld in its shape", Q(ld, t->name),
                  (long long)dim);
    /* Keep scanning after an overflow: a negative size is the clearer fault. */
    if (!overflow && !ct_mul_i64(count, dim, &count))
      overflow = TRUE;
  }
  gint64 bytes = 0;
  if (overflow || !ct_mul_i64(count, dtypes[t->dtype].size, &bytes))
    return fail(ld, CT_MODEL_ERROR_FORMAT, "the size of tensor %s (shape %s) overflows",
                Q(ld, t->name), shape_text(ld, shape));

  JsonNode *on = json_object_get_member(e, "data_offsets");
  if (!on)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has no \"data_offsets\"",
                Q(ld, t->name));
  JsonArray *offs =
      JSON_NODE_TYPE(on) == JSON_NODE_ARRAY ? json_node_get_array(on) : NULL;
  if (!offs || json_array_get_length(offs) != 2 ||
      !node_int(json_array_get_element(offs, 0), &t->begin) ||
      !node_int(json_array_get_element(offs, 1), &t->end) || t->begin < 0 || t->end < 0)
    return fail(
        ld, CT_MODEL_ERROR_FORMAT,
        "tensor %s: \"data_offsets\" must be two non-negative integers [begin, end]",
        Q(ld, t->name));
  if (t->begin > t->end)
    return fail(ld, CT_MODEL_ERROR_FORMAT,
                "tensor %s: data_offsets [%lld, %lld] end before they begin",
                Q(ld, t->name), (long long)t->begin, (long long)t->end);
  if (t->end - t->begin != bytes)
    return fail(ld, CT_MODEL_ERROR_FORMAT,
                "tensor %s has %lld bytes (data_offsets [%lld, %lld]) but dtype %s and "
                "shape %s need %lld",
                Q(ld, t->name), (long long)(t->end - t->begin), (long long)t->begin,
                (long long)t->end, dtypes[t->dtype].name, shape_text(ld, shape),
                (long long)bytes);
  if (t->end > ld->data_len)
    return fail(ld, CT_MODEL_ERROR_FORMAT,
                "tensor %s: data_offsets [%lld, %lld] lie outside the data (%lld bytes "
                "after the header)",
                Q(ld, t->name), (long long)t->begin, (long long)t->end,
                (long long)ld->data_len);
  return TRUE;
}

static int by_offsets(const void *a, const void *b) {
  const tensor_info *x = *(tensor_info *const *)a, *y = *(tensor_info *const *)b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* safetensors' own reader demands that the tensors tile the data exactly. */
static gboolean check_tiling(loader *ld, tensor_info *tensors, guint n) {
  tensor_info **order = g_new(tensor_info *, n ? n : 1);
  for (guint i = 0; i < n; i++)
    order[i] = &tensors[i];
  qsort(order, n, sizeof *order, by_offsets);
  gint64 at = 0;
  const tensor_info *prev = NULL;
  gboolean ok = TRUE;
  for (guint i = 0; i < n && ok; i++) {
    const tensor_info *t = order[i];
    if (t->begin < at)
      ok = fail(
          ld, CT_MODEL_ERROR_FORMAT,
          "tensors %s (data bytes %lld..%lld) and %s (data bytes %lld..%lld) overlap",
          Q(ld, prev->name), (long long)prev->begin, (long long)prev->end, Q(ld, t->name),
          (long long)t->begin, (long long)t->end);
    else if (t->begin > at)
      ok = fail(ld, CT_MODEL_ERROR_FORMAT,
                "data bytes %lld..%lld belong to no tensor (a hole before tensor %s)",
                (long long)at, (long long)t->begin, Q(ld, t->name));
    at = t->end;
    prev = t;
  }
  if (ok && at != ld->data_len)
    ok = fail(ld, CT_MODEL_ERROR_FORMAT,
              "the tensors end at data byte %lld but the file goes on to data byte %lld "
              "(a safetensors file ends where its last tensor ends)",
              (long long)at, (long long)ld->data_len);
  g_free(order);
  return ok;
}

/* Reads, scans and validates the whole header; fills the parser's tree. */
static gboolean load_header(loader *ld, JsonParser *parser, JsonObject **metadata,
                            tensor_info **tensors_out, guint *n_out) {
  if (ld->file_size < 8)
    return fail(ld, CT_MODEL_ERROR_FORMAT,
                "truncated (%lld bytes, a safetensors file has at least 8)",
                (long long)ld->file_size);
  guint8 prefix[8];
  if (!read_at(ld, prefix, 8, 0))
    return FALSE;
  guint64 n = 0;
  for (int b = 7; b >= 0; b--)
    n = n << 8 | prefix[b];
  if (n > HEADER_LIMIT)
    return fail(ld, CT_MODEL_ERROR_FORMAT,
                "header length %llu exceeds the limit of %d bytes", (unsigned long long)n,
                HEADER_LIMIT);
  if ((gint64)n > ld->file_size - 8)
    return fail(
        ld, CT_MODEL_ERROR_FORMAT,
        "header length %llu runs past the end of the file (%lld bytes): truncated",
        (unsigned long long)n, (long long)ld->file_size);
  ld->header_len = (gint64)n;
  ld->data_start = 8 + ld->header_len;
  ld->data_len = ld->file_size - ld->data_start;
  ld->header = g_try_malloc((gsize)n + 1);
  if (!ld->header)
    return fail(ld, CT_MODEL_ERROR_IO, "out of memory for a header of %llu bytes",
                (unsigned long long)n);
  if (!read_at(ld, ld->header, (size_t)n, 8))
    return FALSE;
  ld->header[n] = '\0';

  const gchar *bad;
  if (!g_utf8_validate_len(ld->header, (gsize)n, &bad)) {
    if (*bad == '\0')
      return fail(ld, CT_MODEL_ERROR_FORMAT,
                  "header is not valid JSON (a NUL byte at byte %lld of the header)",
                  (long long)(bad - ld->header));
    return fail(ld, CT_MODEL_ERROR_FORMAT,
                "header is not valid UTF-8 (at byte %lld of the header)",
                (long long)(bad - ld->header));
  }

  json_scan js = {.s = ld->header, .n = (size_t)n};
  gboolean ok = scan_value(&js, -1);
  if (ok) {
    skip_ws(&js);
    if (js.pos < js.n)
      ok = scan_fail(&js, "unexpected data after the JSON value");
  }
  if (!ok) {
    if (js.dup_name) {
      if (js.dup_depth == 0 && strcmp(js.dup_name, "__metadata__") == 0)
        fail(ld, CT_MODEL_ERROR_FORMAT, "\"__metadata__\" is given twice");
      else if (js.dup_depth == 0)
        fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s is given twice", Q(ld, js.dup_name));
      else if (js.dup_parent && strcmp(js.dup_parent, "__metadata__") == 0)
        fail(ld, CT_MODEL_ERROR_FORMAT, "metadata key %s is given twice",
             Q(ld, js.dup_name));
      else if (js.dup_parent)
        fail(ld, CT_MODEL_ERROR_FORMAT, "key %s is given twice in the entry of tensor %s",
             Q(ld, js.dup_name), Q(ld, js.dup_parent));
      else
        fail(ld, CT_MODEL_ERROR_FORMAT,
             "key %s is given twice (at byte %lld of the header)", Q(ld, js.dup_name),
             (long long)js.pos);
    } else if (js.over_limit) {
      fail(ld, CT_MODEL_ERROR_FORMAT,
           "header is too complex for this loader (%s; at byte %lld of the header)",
           js.why, (long long)js.pos);
    } else {
      fail(ld, CT_MODEL_ERROR_FORMAT,
           "header is not valid JSON (%s at byte %lld of the header)", js.why,
           (long long)js.pos);
    }
  }
  for (int i = 0; i <= JSON_MAX_DEPTH; i++) {
    if (js.keys[i])
      g_string_free(js.keys[i], TRUE);
  }
  g_free(js.dup_name);
  g_free(js.dup_parent);
  if (!ok)
    return FALSE;

  size_t first = strspn(ld->header, " \t\r\n");
  if (ld->header[first] != '{') {
    char c = ld->header[first];
    return fail(ld, CT_MODEL_ERROR_FORMAT, "header is JSON but not an object (it is %s)",
                c == '['   ? "a list"
                : c == '"' ? "a string"
                           : "a single value");
  }

  GError *jerr = NULL;
  if (!json_parser_load_from_data(parser, ld->header, (gssize)n, &jerr)) {
    /* Not expected after the scan; reported rather than trusted. */
    fail(ld, CT_MODEL_ERROR_FORMAT, "header is not valid JSON (%s)", jerr->message);
    g_error_free(jerr);
    return FALSE;
  }
  JsonObject *root = json_node_get_object(json_parser_get_root(parser));
  /* The scan refused duplicates, so the tree must hold every member. */
  if ((gint64)json_object_get_size(root) != js.top_members)
    return fail(ld, CT_MODEL_ERROR_FORMAT, "a tensor name is given twice");

  GList *names = json_object_get_members(root);
  guint count = 0;
  tensor_info *tensors = g_new0(tensor_info, js.top_members ? js.top_members : 1);
  ok = TRUE;
  for (GList *l = names; l && ok; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member(root, name);
    if (strcmp(name, "__metadata__") == 0) {
      if (JSON_NODE_TYPE(node) != JSON_NODE_OBJECT) {
        ok = fail(ld, CT_MODEL_ERROR_FORMAT, "\"__metadata__\" is not an object");
        break;
      }
      JsonObject *md = json_node_get_object(node);
      GList *keys = json_object_get_members(md);
      for (GList *k = keys; k && ok; k = k->next) {
        JsonNode *v = json_object_get_member(md, k->data);
        if (JSON_NODE_TYPE(v) != JSON_NODE_VALUE ||
            json_node_get_value_type(v) != G_TYPE_STRING)
          ok = fail(
              ld, CT_MODEL_ERROR_FORMAT,
              "metadata value of %s is not a string (safetensors metadata holds only "
              "strings)",
              Q(ld, k->data));
      }
      g_list_free(keys);
      *metadata = md;
      continue;
    }
    tensor_info *t = &tensors[count];
    t->name = name;
    t->index = count++;
    ok = check_entry(ld, t, node);
  }
  g_list_free(names);
  if (ok)
    ok = check_tiling(ld, tensors, count);
  if (!ok) {
    g_free(tensors);
    return FALSE;
  }
  *tensors_out = tensors;
  *n_out = count;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* integer lists: "2", "1,2,2", "[1,2,2]" */

typedef enum {
  LIST_OK,
  LIST_EMPTY,
  LIST_SYNTAX,
  LIST_NEGATIVE,
  LIST_TOO_LARGE,
  LIST_TOO_MANY,
} list_status;

static const char *list_reason(list_status st) {
  switch (st) {
  case LIST_EMPTY:
    return "is empty";
  case LIST_NEGATIVE:
    return "has a negative value";
  case LIST_TOO_LARGE:
    return "has a value above 2147483647";
  case LIST_TOO_MANY:
    return "has more than 3 values";
  default:
    return "is not an integer or a list of integers (e.g. \"2\", \"1,2,2\" or "
           "\"[1,2,2]\")";
  }
}

static list_status parse_int_list(const char *text, gint64 values[CT_MAX_RANK],
                                  int *n_values, gboolean *bracketed) {
  const char *p = text ? text : "";
  int n = 0;
  while (g_ascii_isspace(*p))
    p++;
  if (!*p)
    return LIST_EMPTY;
  *bracketed = *p == '[';
  if (*bracketed)
    p++;
  for (;;) {
    while (g_ascii_isspace(*p))
      p++;
    if (*p == '-' && g_ascii_isdigit(p[1]))
      return LIST_NEGATIVE;
    if (!g_ascii_isdigit(*p))
      return LIST_SYNTAX;
    gint64 v = 0;
    while (g_ascii_isdigit(*p)) {
      v = v * 10 + (*p++ - '0');
      if (v > CT_MAX_PARAM)
        return LIST_TOO_LARGE;
    }
    if (n == CT_MAX_RANK)
      return LIST_TOO_MANY;
    values[n++] = v;
    while (g_ascii_isspace(*p))
      p++;
    if (*p != ',')
      break;
    p++;
  }
  if (*bracketed) {
    if (*p != ']')
      return LIST_SYNTAX;
    p++;
    while (g_ascii_isspace(*p))
      p++;
  }
  if (*p)
    return LIST_SYNTAX;
  *n_values = n;
  return LIST_OK;
}

gboolean ct_axis_override_parse(const gchar *text, CtAxisOverride *out, GError **error) {
  gint64 values[CT_MAX_RANK];
  int n = 0;
  gboolean bracketed = FALSE;
  list_status st = parse_int_list(text, values, &n, &bracketed);
  if (st != LIST_OK) {
    GString *q = g_string_new(NULL);
    append_escaped(q, text ? text : "", TRUE);
    g_set_error(error, CT_MODEL_ERROR, CT_MODEL_ERROR_LAYER, "%s %s", q->str,
                list_reason(st));
    g_string_free(q, TRUE);
    return FALSE;
  }
  /* out is left alone on failure, so a caller keeps its previous value. */
  *out = (CtAxisOverride){.set = TRUE, .n_values = n};
  memcpy(out->values, values, (size_t)n * sizeof values[0]);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* the layer */

static tensor_info *find_tensor(tensor_info *tensors, guint n, const char *name) {
  for (guint i = 0; i < n; i++) {
    if (strcmp(tensors[i].name, name) == 0)
      return &tensors[i];
  }
  return NULL;
}

static gboolean missing_weight(loader *ld, const char *name, tensor_info *tensors,
                               guint n) {
  if (n == 0)
    return fail(ld, CT_MODEL_ERROR_LAYER, "no tensor %s (the file holds no tensors)",
                Q(ld, name));
  GString *list = g_string_new(NULL);
  for (guint i = 0; i < n && i < LIST_MAX; i++) {
    if (i)
      g_string_append(list, ", ");
    append_escaped(list, tensors[i].name, tensors[i].name[0] == '\0');
  }
  if (n > LIST_MAX)
    g_string_append_printf(list, ", ... (%u in all)", n);
  fail(ld, CT_MODEL_ERROR_LAYER, "no tensor %s (tensors in the file: %s)", Q(ld, name),
       list->str);
  g_string_free(list, TRUE);
  return FALSE;
}

static gint64 *tensor_shape(tensor_info *t, int *rank) {
  JsonArray *shape = json_object_get_array_member(t->entry, "shape");
  guint n = json_array_get_length(shape);
  gint64 *dims = g_new(gint64, n ? n : 1);
  for (guint i = 0; i < n; i++)
    node_int(json_array_get_element(shape, i), &dims[i]);
  *rank = (int)n;
  return dims;
}

static const char *dims_text(loader *ld, const gint64 *dims, int rank) {
  GString *tmp = g_string_new("[");
  for (int i = 0; i < rank; i++)
    g_string_append_printf(tmp, "%s%lld", i ? ", " : "", (long long)dims[i]);
  g_string_append_c(tmp, ']');
  const char *r = g_string_chunk_insert_len(ld->scratch, tmp->str, (gssize)tmp->len);
  g_string_free(tmp, TRUE);
  return r;
}

/* ------------------------------------------------------------------------ */
/* weight normalisation */

/* torch.nn.utils.weight_norm (and parametrizations.weight_norm) store a
 * layer's weight as g and v, weight = g * v / ||v||, the norm taken over
 * every axis where g has size 1: g is v's shape with size 1 on every axis
 * but `dim` (default 0), or a scalar for dim=None. The pair is folded on
 * load, in double, into the float32 weight PyTorch computes. */

/* The values of a validated float tensor as doubles, in order, a block at a
 * time. */
typedef void (*values_fn)(void *ctx, const double *values, gint64 n);

static gboolean scan_values(loader *ld, const tensor_info *t, values_fn fn, void *ctx) {
  enum { BLOCK = 1 << 16 };
  const int es = dtypes[t->dtype].size;
  const gint64 count = (t->end - t->begin) / es, per_block = BLOCK / es;
  guint8 *buf = g_malloc(BLOCK);
  double *values = g_malloc((size_t)per_block * sizeof(double));
  gboolean ok = TRUE;
  for (gint64 done = 0; ok && done < count; done += per_block) {
    const gint64 k = count - done < per_block ? count - done : per_block;
    ok = read_at(ld, buf, (size_t)(k * es), ld->data_start + t->begin + done * es);
    if (ok) {
      convert_f64(t->dtype, buf, values, (size_t)k);
      fn(ctx, values, k);
    }
  }
  g_free(buf);
  g_free(values);
  return ok;
}

/* v's values in order belong to runs of `inner` values per index of the
 * kept axis, n_groups of them repeating (one group: the norm of all). */
typedef struct {
  gint64 inner, n_groups;
  gint64 group, left; /* where the walk is */
  double *acc;        /* per group: the sum of squares, then g / norm */
  float *out;         /* the folded weight, filled in order */
  gint64 filled;
} fold_walk;

static void walk_start(fold_walk *f) {
  f->group = 0;
  f->left = f->inner;
  f->filled = 0;
}

static void walk_step(fold_walk *f) {
  if (--f->left == 0) {
    f->group = f->group + 1 == f->n_groups ? 0 : f->group + 1;
    f->left = f->inner;
  }
}

static void sum_squares(void *ctx, const double *v, gint64 n) {
  fold_walk *f = ctx;
  for (gint64 i = 0; i < n; i++, walk_step(f))
    f->acc[f->group] += v[i] * v[i];
}

static void scale_values(void *ctx, const double *v, gint64 n) {
  fold_walk *f = ctx;
  for (gint64 i = 0; i < n; i++, walk_step(f))
    f->out[f->filled++] = f64_to_f32(v[i] * f->acc[f->group]);
}

static void store_values(void *ctx, const double *v, gint64 n) {
  fold_walk *f = ctx; /* g, into acc's second half */
  memcpy(f->acc + f->n_groups + f->filled, v, (size_t)n * sizeof(double));
  f->filled += n;
}

/* The axis g keeps (-1: the norm of the whole of v), or FALSE with an error
 * when g's shape is not one weight_norm gives. */
static gboolean norm_axis(loader *ld, tensor_info *g, const char *g_name,
                          const char *v_name, const gint64 *vdims, int vrank, int *axis) {
  int grank;
  gint64 *gdims = tensor_shape(g, &grank);
  gboolean ok = grank == 0 || grank == vrank;
  *axis = -1;
  for (int a = 0; ok && grank && a < vrank; a++) {
    if (gdims[a] == vdims[a] && vdims[a] != 1) {
      ok = *axis < 0;
      *axis = a;
    } else {
      ok = gdims[a] == 1;
    }
  }
  if (!ok)
    fail(ld, CT_MODEL_ERROR_LAYER,
         "%s has shape %s, which does not fit %s of shape %s: weight_norm's g is v's "
         "shape with size 1 on every axis but its dim, or a scalar (dim=None)",
         Q(ld, g_name), dims_text(ld, gdims, grank), Q(ld, v_name),
         dims_text(ld, vdims, vrank));
  g_free(gdims);
  return ok;
}

/* weight = g * v / ||v||, as float32; NULL with an error on a norm that is
 * zero or not finite (PyTorch would give NaN or infinity). */
static float *fold_weight_norm(loader *ld, tensor_info *g, const char *g_name,
                               tensor_info *v, const char *v_name, const gint64 *vdims,
                               int vrank) {
  int axis;
  if (!norm_axis(ld, g, g_name, v_name, vdims, vrank, &axis))
    return NULL;
  fold_walk f = {.inner = 1, .n_groups = axis < 0 ? 1 : vdims[axis]};
  gint64 count = 1;
  for (int a = 0; a < vrank; a++) {
    count *= vdims[a]; /* checked with the layer's weight count */
    if (a > axis)
      f.inner *= vdims[a];
  }
  size_t acc_bytes, out_bytes;
  if (!ct_bytes_for(2 * f.n_groups, sizeof(double), &acc_bytes) ||
      !ct_bytes_for(count, sizeof(float), &out_bytes) ||
      !(f.acc = g_try_malloc0(acc_bytes)) || !(f.out = malloc(out_bytes))) {
    g_free(f.acc);
    fail(ld, CT_MODEL_ERROR_LAYER, "out of memory for weight %s (%lld values)",
         Q(ld, v_name), (long long)count);
    return NULL;
  }
  walk_start(&f);
  gboolean ok = scan_values(ld, g, store_values, &f);
  walk_start(&f);
  ok = ok && scan_values(ld, v, sum_squares, &f);
  for (gint64 i = 0; ok && i < f.n_groups; i++) {
    const double norm = sqrt(f.acc[i]);
    gchar *where = axis < 0
                       ? g_strdup("the whole tensor")
                       : g_strdup_printf("index %lld of axis %d", (long long)i, axis);
    if (!isfinite(norm))
      ok = fail(ld, CT_MODEL_ERROR_LAYER,
                "the norm of %s over %s is not finite (it holds an inf or a nan, or "
                "values too large to square), so weight = g * v / ||v|| is not a number",
                Q(ld, v_name), where);
    else if (norm == 0)
      ok = fail(ld, CT_MODEL_ERROR_LAYER,
                "%s is all zeros over %s, so weight = g * v / ||v|| divides by a zero "
                "norm (PyTorch gives NaN)",
                Q(ld, v_name), where);
    else
      f.acc[i] = f.acc[f.n_groups + i] / norm;
    g_free(where);
  }
  walk_start(&f);
  ok = ok && scan_values(ld, v, scale_values, &f);
  g_free(f.acc);
  if (!ok) {
    free(f.out);
    return NULL;
  }
  return f.out;
}

/* The tensors a layer's weight may come from, in the order they are tried
 * (the export tool's order): the weight itself, or a weight-normalised
 * pair (g, v) of either of PyTorch's two forms. */
static const char *const weight_forms[][2] = {
    {"weight", NULL},
    {"weight_g", "weight_v"},
    {"parametrizations.weight.original0", "parametrizations.weight.original1"},
};
enum { N_WEIGHT_FORMS = G_N_ELEMENTS(weight_forms) };

typedef struct {
  tensor_info *t; /* the weight, or v */
  tensor_info *g; /* NULL for a plain weight */
  gchar *name;    /* of t */
  gchar *g_name;  /* of g, or NULL */
} weight_source;

static gchar *layer_name(const char *prefix, const char *suffix) {
  return prefix ? g_strdup_printf("%s.%s", prefix, suffix) : g_strdup(suffix);
}

/* Picks the first form present; the tensors of later forms are ignored with
 * a warning, a pair missing one half is refused. */
static gboolean find_weight(loader *ld, tensor_info *tensors, guint n, const char *prefix,
                            weight_source *src) {
  gchar *names[N_WEIGHT_FORMS][2] = {{NULL}};
  tensor_info *found[N_WEIGHT_FORMS][2] = {{NULL}};
  int form = -1;
  for (int f = 0; f < N_WEIGHT_FORMS; f++) {
    for (int h = 0; h < 2 && weight_forms[f][h]; h++) {
      names[f][h] = layer_name(prefix, weight_forms[f][h]);
      found[f][h] = find_tensor(tensors, n, names[f][h]);
      if (found[f][h] && form < 0)
        form = f;
    }
  }
  gboolean ok = TRUE;
  if (form < 0) {
    ok = missing_weight(ld, names[0][0], tensors, n);
  } else if (form > 0 && (!found[form][0] || !found[form][1])) {
    const int have = found[form][0] ? 0 : 1;
    /* spectral_norm's state also has a weight_v (and weight_orig, weight_u). */
    gchar *orig = layer_name(prefix, "weight_orig");
    gchar *hint = have == 1 && form == 1 && find_tensor(tensors, n, orig)
                      ? g_strdup_printf("; with %s it looks like torch.nn.utils."
                                        "spectral_norm, which is not supported (remove "
                                        "it before saving)",
                                        Q(ld, orig))
                      : g_strdup("");
    ok = fail(ld, CT_MODEL_ERROR_LAYER,
              "%s without %s: a weight-normalised layer needs both (weight = g * v / "
              "||v||)%s",
              Q(ld, names[form][have]), Q(ld, names[form][1 - have]), hint);
    g_free(hint);
    g_free(orig);
  }
  if (ok) {
    GString *ignored = g_string_new(NULL);
    for (int f = form + 1; f < N_WEIGHT_FORMS; f++)
      for (int h = 0; h < 2 && weight_forms[f][h]; h++)
        if (found[f][h])
          g_string_append_printf(ignored, "%s%s", ignored->len ? ", " : "",
                                 Q(ld, names[f][h]));
    if (ignored->len)
      warn(ld, "the weight is %s%s%s; ignoring %s", Q(ld, names[form][form ? 1 : 0]),
           form ? " with " : "", form ? Q(ld, names[form][0]) : "", ignored->str);
    g_string_free(ignored, TRUE);
    *src = (weight_source){
        .t = found[form][form ? 1 : 0],
        .g = form ? found[form][0] : NULL,
        .name = g_strdup(names[form][form ? 1 : 0]),
        .g_name = form ? g_strdup(names[form][0]) : NULL,
    };
  }
  for (int f = 0; f < N_WEIGHT_FORMS; f++)
    for (int h = 0; h < 2; h++)
      g_free(names[f][h]);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* metadata keys */

static const char *const known_keys[] = {"stride", "padding", "output_padding",
                                         "dilation", "groups"};

static gboolean is_known_key(const char *key) {
  for (gsize i = 0; i < G_N_ELEMENTS(known_keys); i++)
    if (strcmp(key, known_keys[i]) == 0)
      return TRUE;
  return FALSE;
}

/* Levenshtein distance, for suggestions; long strings count as far. */
static int edit_distance(const char *a, const char *b) {
  enum { MAX = 32 };
  const size_t n = strlen(a), m = strlen(b);
  if (n > MAX || m > MAX)
    return MAX;
  int prev[MAX + 1], cur[MAX + 1];
  for (size_t j = 0; j <= m; j++)
    prev[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int best = prev[j - 1] + (g_ascii_tolower(a[i - 1]) != g_ascii_tolower(b[j - 1]));
      if (prev[j] + 1 < best)
        best = prev[j] + 1;
      if (cur[j - 1] + 1 < best)
        best = cur[j - 1] + 1;
      cur[j] = best;
    }
    memcpy(prev, cur, sizeof cur);
  }
  return prev[m];
}

/* The known key an unknown one was likely meant to be ("strides", "Stride",
 * "pad", "group"), or NULL. */
static const char *suggest_key(const char *key) {
  for (gsize i = 0; i < G_N_ELEMENTS(known_keys); i++)
    if (edit_distance(key, known_keys[i]) <= 2 ||
        (strlen(key) >= 3 && g_str_has_prefix(known_keys[i], key)))
      return known_keys[i];
  return NULL;
}

/* Why a key that PyTorch's layer has is not needed, or "". */
static const char *key_note(const char *key) {
  static const char *const from_tensors[] = {"in_channels", "out_channels", "kernel_size",
                                             "bias"};
  for (gsize i = 0; i < G_N_ELEMENTS(from_tensors); i++)
    if (strcmp(key, from_tensors[i]) == 0)
      return " (the channels, the kernel and the bias come from the tensors)";
  if (strcmp(key, "padding_mode") == 0)
    return " (the padding is zeros, PyTorch's padding_mode='zeros', the only mode "
           "supported)";
  return "";
}

/* Warns of the keys of this layer that are not hyper-parameters (a typo
 * would otherwise silently leave a default): with a prefix P, "P.KEY";
 * without, bare keys. safetensors.torch.save_file's "format" and the keys of
 * other layers ("Q.stride", or "P.sub.stride") are not this layer's. Bare
 * hyper-parameters with a prefix are warned of only when no bare layer
 * could own them. */
static void check_metadata_keys(loader *ld, JsonObject *metadata, const char *prefix,
                                tensor_info *tensors, guint n) {
  if (!metadata)
    return;
  gboolean bare_layer = FALSE;
  for (int f = 0; f < N_WEIGHT_FORMS; f++)
    for (int h = 0; h < 2 && weight_forms[f][h]; h++)
      bare_layer = bare_layer || find_tensor(tensors, n, weight_forms[f][h]);
  const size_t plen = prefix ? strlen(prefix) : 0;
  GList *keys = json_object_get_members(metadata);
  for (GList *l = keys; l; l = l->next) {
    const char *key = l->data, *own = key;
    if (prefix) {
      if (strncmp(key, prefix, plen) != 0 || key[plen] != '.') {
        if (is_known_key(key) && !bare_layer) {
          gchar *meant = layer_name(prefix, key);
          warn(ld,
               "ignoring metadata key %s: the file has no layer without a prefix, and "
               "the keys of layer %s are %s and so on",
               Q(ld, key), Q(ld, prefix), Q(ld, meant));
          g_free(meant);
        }
        continue;
      }
      own = key + plen + 1;
    } else if (strcmp(key, "format") == 0) {
      continue;
    }
    if (strchr(own, '.') || is_known_key(own))
      continue;
    const char *like = suggest_key(own);
    gchar *meant = like ? layer_name(prefix, like) : NULL;
    gchar *dot = prefix ? layer_name(prefix, "") : NULL;
    gchar *after = dot ? g_strdup_printf(", each after %s", Q(ld, dot)) : g_strdup("");
    g_free(dot);
    warn(ld,
         "ignoring metadata key %s%s%s%s%s: the known keys are stride, padding, "
         "output_padding, dilation and groups%s",
         Q(ld, key), key_note(own), meant ? " (did you mean " : "",
         meant ? Q(ld, meant) : "", meant ? "?)" : "", after);
    g_free(meant);
    g_free(after);
  }
  g_list_free(keys);
}

static const char *param_names[] = {"stride", "padding", "output_padding", "dilation"};

/* One per-axis hyper-parameter: metadata first, then the override. */
static gboolean apply_axis_param(loader *ld, JsonObject *metadata, const char *prefix,
                                 int which, const CtAxisOverride *ov, int rank,
                                 int64_t dst[CT_MAX_RANK]) {
  const char *name = param_names[which];
  if (metadata) {
    gchar *key = prefix ? g_strdup_printf("%s.%s", prefix, name) : g_strdup(name);
    const char *text = json_object_has_member(metadata, key)
                           ? json_object_get_string_member(metadata, key)
                           : NULL;
    gboolean ok = TRUE;
    if (text) {
      gint64 values[CT_MAX_RANK];
      int n = 0;
      gboolean bracketed = FALSE;
      list_status st = parse_int_list(text, values, &n, &bracketed);
      if (st != LIST_OK)
        ok = fail(ld, CT_MODEL_ERROR_LAYER, "metadata %s = %s %s", Q(ld, key),
                  Q(ld, text), list_reason(st));
      /* A bare integer applies to every axis; a list needs one per axis. */
      else if ((n != 1 || bracketed) && n != rank)
        ok = fail(ld, CT_MODEL_ERROR_LAYER,
                  "metadata %s = %s has %d value%s, but the layer has %d spatial axes",
                  Q(ld, key), Q(ld, text), n, n == 1 ? "" : "s", rank);
      for (int a = 0; ok && a < rank; a++)
        dst[a] = values[n == 1 ? 0 : a];
    }
    g_free(key);
    if (!ok)
      return FALSE;
  }
  if (ov && ov->set) {
    if (ov->n_values != 1 && ov->n_values != rank)
      return fail(ld, CT_MODEL_ERROR_LAYER,
                  "%s override has %d values, but the layer has %d spatial axes (give 1 "
                  "or %d)",
                  name, ov->n_values, rank, rank);
    for (int a = 0; a < rank; a++)
      dst[a] = ov->values[ov->n_values == 1 ? 0 : a];
  }
  return TRUE;
}

static gboolean get_groups(loader *ld, JsonObject *metadata, const char *prefix,
                           const CtOverrides *ov, int64_t *groups) {
  *groups = 1;
  if (metadata) {
    gchar *key = prefix ? g_strdup_printf("%s.groups", prefix) : g_strdup("groups");
    const char *text = json_object_has_member(metadata, key)
                           ? json_object_get_string_member(metadata, key)
                           : NULL;
    gboolean ok = TRUE;
    if (text) {
      gint64 values[CT_MAX_RANK];
      int n = 0;
      gboolean bracketed = FALSE;
      list_status st = parse_int_list(text, values, &n, &bracketed);
      if (st == LIST_OK && (n != 1 || bracketed))
        st = LIST_SYNTAX;
      if (st != LIST_OK)
        ok = fail(ld, CT_MODEL_ERROR_LAYER, "metadata %s = %s is not an integer%s",
                  Q(ld, key), Q(ld, text),
                  st == LIST_NEGATIVE    ? " (it is negative)"
                  : st == LIST_TOO_LARGE ? " in range (at most 2147483647)"
                                         : "");
      else
        *groups = values[0];
    }
    g_free(key);
    if (!ok)
      return FALSE;
  }
  if (ov && ov->groups_set)
    *groups = ov->groups;
  if (*groups < 1 || *groups > CT_MAX_PARAM)
    return fail(ld, CT_MODEL_ERROR_LAYER, "groups %lld must be between 1 and 2147483647",
                (long long)*groups);
  return TRUE;
}

/* Reads a validated float tensor and converts it to float32, a block at a
 * time so no second full-size buffer is needed. malloc'd: the layer adopts
 * it (ct_layer_adopt). */
static float *read_tensor(loader *ld, const tensor_info *t, const char *role) {
  const int es = dtypes[t->dtype].size;
  const gint64 count = (t->end - t->begin) / es;
  size_t bytes;
  float *out = NULL;
  if (ct_bytes_for(count, sizeof(float), &bytes))
    out = malloc(bytes ? bytes : 1);
  if (!out) {
    fail(ld, CT_MODEL_ERROR_LAYER, "out of memory for %s %s (%lld values)", role,
         Q(ld, t->name), (long long)count);
    return NULL;
  }
  enum { BLOCK = 1 << 16 };
  guint8 *buf = g_malloc(BLOCK);
  const gint64 per_block = BLOCK / es;
  for (gint64 done = 0; done < count;) {
    gint64 k = count - done < per_block ? count - done : per_block;
    if (!read_at(ld, buf, (size_t)(k * es), ld->data_start + t->begin + done * es)) {
      g_free(buf);
      free(out);
      return NULL;
    }
    convert(t->dtype, buf, out + done, (size_t)k);
    done += k;
  }
  g_free(buf);
  return out;
}

static ct_layer *build_layer(loader *ld, JsonObject *metadata, tensor_info *tensors,
                             guint n, const char *prefix, const CtOverrides *ov) {
  weight_source src = {0};
  gchar *bname = prefix ? g_strdup_printf("%s.bias", prefix) : g_strdup("bias");
  tensor_info *bt = find_tensor(tensors, n, bname);
  gint64 *wdims = NULL, *bdims = NULL;
  float *weight = NULL, *bias = NULL;
  ct_layer *layer = NULL;
  int wrank = 0, brank = 0;
  ct_params params;

  if (!find_weight(ld, tensors, n, prefix, &src))
    goto out;
  /* A weight-normalised layer's shape and dtype are those of v. */
  tensor_info *const wt = src.t;
  const char *const wname = src.name;
  wdims = tensor_shape(wt, &wrank);
  if (wrank < 3 || wrank > 5) {
    fail(
        ld, CT_MODEL_ERROR_LAYER,
        "weight %s has rank %d (shape %s), but a ConvTranspose weight has rank 3, 4 or 5 "
        "([in_channels, out_channels/groups, kernel...] for 1d, 2d or 3d)",
        Q(ld, wname), wrank, dims_text(ld, wdims, wrank));
    goto out;
  }
  if (!dtype_is_float(wt->dtype)) {
    fail(ld, CT_MODEL_ERROR_LAYER,
         "unsupported dtype %s for weight %s (F32, F16, BF16 or F64 are supported)",
         dtypes[wt->dtype].name, Q(ld, wname));
    goto out;
  }
  for (int i = 0; i < wrank; i++) {
    if (wdims[i] == 0) {
      fail(ld, CT_MODEL_ERROR_LAYER, "weight %s has a zero size in its shape %s",
           Q(ld, wname), dims_text(ld, wdims, wrank));
      goto out;
    }
  }
  if (src.g && !dtype_is_float(src.g->dtype)) {
    fail(ld, CT_MODEL_ERROR_LAYER,
         "unsupported dtype %s for %s (F32, F16, BF16 or F64 are supported)",
         dtypes[src.g->dtype].name, Q(ld, src.g_name));
    goto out;
  }
  if (bt) {
    bdims = tensor_shape(bt, &brank);
    if (!dtype_is_float(bt->dtype)) {
      fail(ld, CT_MODEL_ERROR_LAYER,
           "unsupported dtype %s for bias %s (F32, F16, BF16 or F64 are supported)",
           dtypes[bt->dtype].name, Q(ld, bname));
      goto out;
    }
  }

  const int rank = wrank - 2;
  ct_params_init(&params, rank);
  params.in_channels = wdims[0];
  for (int a = 0; a < rank; a++)
    params.kernel[a] = wdims[2 + a];
  const CtAxisOverride *axis_ov[4] = {
      ov ? &ov->stride : NULL,
      ov ? &ov->padding : NULL,
      ov ? &ov->output_padding : NULL,
      ov ? &ov->dilation : NULL,
  };
  int64_t *axis_dst[4] = {params.stride, params.padding, params.output_padding,
                          params.dilation};
  for (int i = 0; i < 4; i++) {
    if (!apply_axis_param(ld, metadata, prefix, i, axis_ov[i], rank, axis_dst[i]))
      goto out;
  }
  if (!get_groups(ld, metadata, prefix, ov, &params.groups))
    goto out;
  if (!ct_mul_i64(wdims[1], params.groups, &params.out_channels)) {
    fail(ld, CT_MODEL_ERROR_LAYER, "out_channels %lld x groups %lld overflows",
         (long long)wdims[1], (long long)params.groups);
    goto out;
  }
  if (bt && (brank != 1 || bdims[0] != params.out_channels)) {
    fail(ld, CT_MODEL_ERROR_LAYER,
         "bias %s has shape %s, but the layer has %lld output channels (weight %s, "
         "groups %lld), so it must be [%lld]",
         Q(ld, bname), dims_text(ld, bdims, brank), (long long)params.out_channels,
         dims_text(ld, wdims, wrank), (long long)params.groups,
         (long long)params.out_channels);
    goto out;
  }
  char msg[256];
  if (ct_params_validate(&params, msg, sizeof msg) != CT_OK) {
    fail(ld, CT_MODEL_ERROR_LAYER, "%s", msg);
    goto out;
  }

  /* Only now, with everything valid (the weight count within the limits),
   * read the layer's own bytes. */
  weight = src.g ? fold_weight_norm(ld, src.g, src.g_name, wt, wname, wdims, wrank)
                 : read_tensor(ld, wt, "weight");
  if (!weight)
    goto out;
  if (bt) {
    bias = read_tensor(ld, bt, "bias");
    if (!bias)
      goto out;
  }
  struct stat now;
  if (fstat(ld->fd, &now) != 0 || now.st_size != ld->st.st_size ||
      now.st_mtim.tv_sec != ld->st.st_mtim.tv_sec ||
      now.st_mtim.tv_nsec != ld->st.st_mtim.tv_nsec) {
    fail(ld, CT_MODEL_ERROR_IO, "the file changed on disk while being read");
    goto out;
  }
  /* The layer takes the buffers (freeing them if it fails). */
  layer = ct_layer_adopt(&params, weight, bias, msg, sizeof msg);
  weight = bias = NULL;
  if (!layer)
    fail(ld, CT_MODEL_ERROR_LAYER, "%s", msg);

out:
  free(weight);
  free(bias);
  g_free(wdims);
  g_free(bdims);
  g_free(src.name);
  g_free(src.g_name);
  g_free(bname);
  return layer;
}

ct_layer *ct_model_load(const gchar *path, const gchar *layer_prefix,
                        const CtOverrides *overrides, GError **error) {
  return ct_model_load_full(path, layer_prefix, overrides, NULL, error);
}

ct_layer *ct_model_load_full(const gchar *path, const gchar *layer_prefix,
                             const CtOverrides *overrides, GPtrArray *warnings,
                             GError **error) {
  if (!path || !*path) {
    g_set_error_literal(error, CT_MODEL_ERROR, CT_MODEL_ERROR_IO, "no model file given");
    return NULL;
  }
  loader ld = {
      .display = g_filename_display_name(path),
      .error = error,
      .warnings = warnings,
      .scratch = g_string_chunk_new(256),
      .fd = -1,
  };
  /* "P." and "P" name the same layer. */
  gchar *prefix = NULL;
  if (layer_prefix && *layer_prefix) {
    prefix = g_strdup(layer_prefix);
    size_t len = strlen(prefix);
    if (len > 1 && prefix[len - 1] == '.')
      prefix[len - 1] = '\0';
  }
  JsonParser *parser = NULL;
  tensor_info *tensors = NULL;
  guint n_tensors = 0;
  JsonObject *metadata = NULL;
  ct_layer *layer = NULL;

  /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
  ld.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (ld.fd < 0) {
    int e = errno;
    fail(&ld, CT_MODEL_ERROR_IO, "cannot open: %s", g_strerror(e));
    goto out;
  }
  if (fstat(ld.fd, &ld.st) != 0) {
    int e = errno;
    fail(&ld, CT_MODEL_ERROR_IO, "cannot stat: %s", g_strerror(e));
    goto out;
  }
  if (S_ISDIR(ld.st.st_mode)) {
    fail(&ld, CT_MODEL_ERROR_IO, "is a directory, not a model file");
    goto out;
  }
  if (!S_ISREG(ld.st.st_mode)) {
    fail(&ld, CT_MODEL_ERROR_IO, "not a regular file");
    goto out;
  }
  int flags = fcntl(ld.fd, F_GETFL);
  if (flags >= 0)
    fcntl(ld.fd, F_SETFL, flags & ~O_NONBLOCK);
  ld.file_size = (gint64)ld.st.st_size;

  parser = json_parser_new();
  if (!load_header(&ld, parser, &metadata, &tensors, &n_tensors))
    goto out;
  check_metadata_keys(&ld, metadata, prefix, tensors, n_tensors);
  layer = build_layer(&ld, metadata, tensors, n_tensors, prefix, overrides);

out:
  if (ld.fd >= 0)
    close(ld.fd);
  if (parser)
    g_object_unref(parser);
  g_free(tensors);
  g_free(ld.header);
  g_free(prefix);
  g_string_chunk_free(ld.scratch);
  g_free(ld.display);
  return layer;
}
