#include "model/json-strict.h"

#include <string.h>

/* Deeper JSON is never needed (a header nests 3 levels) and json-glib
 * recurses per level, so a hostile header must not reach it. */
#define JSON_MAX_DEPTH 64
/* json-glib needs about 300 bytes per object and 100 per other value, so a
 * 100 MB header of "{}" would take 10 GB and end in an abort. These limits
 * keep its tree near 1 GB at worst, far above any real checkpoint (about 10
 * values and one object per tensor). */
#define JSON_MAX_VALUES 10000000
#define JSON_MAX_OBJECTS 1000000

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
  gint64 n_values, n_objects;
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

ct_json_verdict ct_json_strict_check(const char *text, size_t len, ct_json_fault *fault) {
  json_scan js = {.s = text, .n = len};
  gboolean ok = scan_value(&js, -1);
  if (ok) {
    skip_ws(&js);
    if (js.pos < js.n)
      ok = scan_fail(&js, "unexpected data after the JSON value");
  }
  for (int i = 0; i <= JSON_MAX_DEPTH; i++) {
    if (js.keys[i])
      g_string_free(js.keys[i], TRUE);
  }
  *fault = (ct_json_fault){.why = js.why,
                           .pos = js.pos,
                           .name = js.dup_name,
                           .parent = js.dup_parent,
                           .depth = js.dup_depth};
  if (ok)
    return CT_JSON_STRICT;
  return js.dup_name     ? CT_JSON_DUPLICATE
         : js.over_limit ? CT_JSON_TOO_COMPLEX
                         : CT_JSON_NOT_STRICT;
}

void ct_json_fault_clear(ct_json_fault *fault) {
  g_free(fault->name);
  g_free(fault->parent);
  fault->name = fault->parent = NULL;
}
