/* json-glib parses the header and reports its syntax errors. What it takes
 * but RFC 8259 JSON (and so safetensors' own reader) forbids was found by
 * trying each form on json-glib 1.6.6 (Debian 12); tests/model/test_model.c
 * shows each one to json-glib alone and to the loader. This check walks the
 * text token by token, with no grammar (that is json-glib's), and refuses
 * those forms, each for the reason given where it is checked. Where it meets
 * what json-glib refuses itself (a bare word, a stray character, a NUL
 * byte, a scalar after the value) it stops: json-glib parses no further
 * than that, so it says why. Trailing or missing commas and colons, unclosed
 * containers, unterminated strings, NaN and invalid UTF-8 are never looked
 * at here. */
#include "model/json-strict.h"

#include <string.h>

/* Deeper JSON is never needed (a header nests 3 levels). */
#define MAX_DEPTH 64
/* json-glib needs about 300 bytes per object and 100 per other value, so a
 * 100 MB header of "{}" would take 10 GB and end in an abort. These limits
 * keep its tree near 1 GB at worst, far above any real checkpoint (about 10
 * values and one object per tensor). */
#define MAX_VALUES 10000000
#define MAX_OBJECTS 1000000

typedef struct {
  GHashTable *names; /* an object's member names so far; NULL for a list */
  gchar *member;     /* an object's member being read */
} level;

typedef struct {
  const char *s;
  size_t n, pos;
  ct_json_fault *fault;
  level open[MAX_DEPTH]; /* the containers open at pos */
  int depth;
  gint64 n_values, n_objects;
  gboolean done;      /* the top-level value is complete */
  gboolean hand_over; /* json-glib refuses the text by pos: stop */
  GString *name;      /* the last string, decoded */
} scan;

static ct_json_verdict refuse(scan *sc, ct_json_verdict verdict, const char *why) {
  sc->fault->why = why;
  sc->fault->pos = sc->pos;
  return verdict;
}

/* json-glib refuses the text at pos (or before): nothing after it matters. */
static ct_json_verdict hand_over(scan *sc) {
  sc->hand_over = TRUE;
  return CT_JSON_STRICT;
}

static gboolean is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The four hex digits of a \u escape at pos, or -1. */
static int hex4(scan *sc, size_t pos) {
  if (sc->n - pos < 4)
    return -1;
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int d = g_ascii_xdigit_value(sc->s[pos + i]);
    if (d < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

/* A \u escape at pos (its backslash), decoded into sc->name; NULL, or why
 * it is refused. */
static const char *unicode_escape(scan *sc) {
  int hi = hex4(sc, sc->pos + 2);
  /* json-glib silently takes fewer or non-hex digits ("\u00g9" gives ""). */
  if (hi < 0)
    return "a \\u escape without four hex digits";
  sc->pos += 6;
  gunichar cp = (gunichar)hi;
  if (hi >= 0xd800 && hi <= 0xdfff) {
    /* json-glib turns an unpaired surrogate followed by text ("\ud800x")
     * into bytes that are not UTF-8. */
    int lo = hi <= 0xdbff && sc->n - sc->pos >= 6 && sc->s[sc->pos] == '\\' &&
                     sc->s[sc->pos + 1] == 'u'
                 ? hex4(sc, sc->pos + 2)
                 : -1;
    if (lo < 0xdc00 || lo > 0xdfff)
      return "an unpaired surrogate in a \\u escape";
    sc->pos += 6;
    cp = 0x10000 + (((gunichar)hi - 0xd800) << 10) + ((gunichar)lo - 0xdc00);
  }
  /* json-glib ends the string there ("a\u0000b" becomes "a"). */
  if (cp == 0)
    return "\\u0000 in a string is not supported";
  g_string_append_unichar(sc->name, cp);
  return NULL;
}

/* A string at its opening quote, decoded into sc->name. An unterminated one
 * is left to json-glib. */
static ct_json_verdict string(scan *sc) {
  g_string_truncate(sc->name, 0);
  sc->pos++;
  while (sc->pos < sc->n) {
    const guchar c = (guchar)sc->s[sc->pos];
    if (c == '"') {
      sc->pos++;
      return CT_JSON_STRICT;
    }
    /* json-glib refuses any text with a NUL byte, as not UTF-8. */
    if (c == 0)
      return hand_over(sc);
    /* json-glib takes the other control characters raw in strings. */
    if (c < 0x20)
      return refuse(sc, CT_JSON_NOT_STRICT, "a control character in a string");
    if (c != '\\') {
      g_string_append_c(sc->name, (char)c);
      sc->pos++;
      continue;
    }
    if (sc->pos + 1 >= sc->n)
      break;
    static const char escapes[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
    const char e = sc->s[sc->pos + 1];
    const char *known = e ? strchr(escapes, e) : NULL;
    if (known) {
      g_string_append_c(sc->name, decoded[known - escapes]);
      sc->pos += 2;
      continue;
    }
    /* json-glib takes any other escape: "\x" as "x", "\1" as octal. */
    if (e != 'u')
      return refuse(sc, CT_JSON_NOT_STRICT, "an escape JSON does not define");
    const size_t at = sc->pos;
    const char *why = unicode_escape(sc);
    if (why) {
      sc->pos = at;
      return refuse(sc, CT_JSON_NOT_STRICT, why);
    }
  }
  sc->pos = sc->n;
  return CT_JSON_STRICT;
}

static size_t digits(const char *p, size_t len) {
  size_t i = 0;
  while (i < len && g_ascii_isdigit(p[i]))
    i++;
  return i;
}

/* A number: json-glib's scanner takes octal ("010" is 8), hex ("0x10",
 * "$10"), binary ("0b1"), ".5", "1." and "- 1", and wraps integers past
 * 64 bits silently (2^63 becomes -2^63). The token is what a scanner would
 * take as one: digits, letters, points and signs. */
static ct_json_verdict number(scan *sc) {
  size_t end = sc->pos;
  while (end < sc->n && (g_ascii_isalnum(sc->s[end]) || sc->s[end] == '.' ||
                         sc->s[end] == '+' || sc->s[end] == '-'))
    end++;
  const char *p = sc->s + sc->pos;
  const size_t len = end - sc->pos;
  size_t i = p[0] == '-';
  const size_t int_start = i, int_len = digits(p + i, len - i);
  gboolean ok = int_len == 1 || (int_len > 1 && p[i] != '0');
  i += int_len;
  const gboolean integral = i == len;
  if (ok && i < len && p[i] == '.') {
    const size_t f = digits(p + i + 1, len - i - 1);
    ok = f > 0;
    i += 1 + f;
  }
  if (ok && i < len && (p[i] == 'e' || p[i] == 'E')) {
    i += i + 1 < len && (p[i + 1] == '+' || p[i + 1] == '-') ? 2 : 1;
    const size_t x = digits(p + i, len - i);
    ok = x > 0;
    i += x;
  }
  if (!ok || i != len)
    return refuse(sc, CT_JSON_NOT_STRICT, "a number JSON does not allow");
  /* -2^63 itself comes out right, but one bound for both signs is simpler
   * and no real file needs it. */
  if (integral &&
      (int_len > 19 ||
       (int_len == 19 && memcmp(p + int_start, "9223372036854775807", 19) > 0)))
    return refuse(sc, CT_JSON_NOT_STRICT, "an integer out of the 64-bit range");
  sc->pos = end;
  return CT_JSON_STRICT;
}

/* One more value; json-glib's tree must stay within memory. */
static ct_json_verdict count_value(scan *sc, gboolean object) {
  if (++sc->n_values > MAX_VALUES)
    return refuse(sc, CT_JSON_TOO_COMPLEX, "it holds more than 10000000 values");
  if (object && ++sc->n_objects > MAX_OBJECTS)
    return refuse(sc, CT_JSON_TOO_COMPLEX, "it holds more than 1000000 objects");
  sc->done = sc->depth == 0;
  return CT_JSON_STRICT;
}

/* Whether the bare word at pos is word. */
static gboolean word_is(const scan *sc, const char *word) {
  size_t end = sc->pos;
  while (end < sc->n && (g_ascii_isalnum(sc->s[end]) || sc->s[end] == '_'))
    end++;
  return end - sc->pos == strlen(word) &&
         memcmp(sc->s + sc->pos, word, end - sc->pos) == 0;
}

/* A bare word: JSON's three, or one json-glib refuses but for "var". */
static ct_json_verdict word(scan *sc) {
  static const char *const json_words[] = {"true", "false", "null"};
  for (gsize i = 0; i < G_N_ELEMENTS(json_words); i++) {
    if (word_is(sc, json_words[i])) {
      sc->pos += strlen(json_words[i]);
      return count_value(sc, FALSE);
    }
  }
  /* json-glib takes a "var NAME =" prefix. */
  if (word_is(sc, "var"))
    return refuse(sc, CT_JSON_NOT_STRICT, "a \"var\" prefix");
  return hand_over(sc);
}

static ct_json_verdict open_container(scan *sc, gboolean object) {
  ct_json_verdict v = count_value(sc, object);
  if (v != CT_JSON_STRICT)
    return v;
  /* json-glib recurses once per level without a limit: 100000 levels
   * overflow an 8 MB stack. */
  if (sc->depth == MAX_DEPTH)
    return refuse(sc, CT_JSON_TOO_COMPLEX, "it nests deeper than 64 levels");
  sc->open[sc->depth++] = (level){
      .names =
          object ? g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL) : NULL,
  };
  sc->done = FALSE;
  sc->pos++;
  return CT_JSON_STRICT;
}

static void close_container(scan *sc) {
  if (sc->depth > 0) {
    level *l = &sc->open[--sc->depth];
    if (l->names)
      g_hash_table_destroy(l->names);
    g_free(l->member);
  }
  sc->done = sc->depth == 0;
  sc->pos++;
}

/* The string just read, a member name if an object's and followed by ':'. */
static ct_json_verdict after_string(scan *sc, size_t start) {
  level *l = sc->depth ? &sc->open[sc->depth - 1] : NULL;
  size_t next = sc->pos;
  while (next < sc->n && is_ws(sc->s[next]))
    next++;
  if (!l || !l->names || next >= sc->n || sc->s[next] != ':')
    return count_value(sc, FALSE);
  /* json-glib keeps the last of two members of the same name, silently
   * (and finds each by a linear search: quadratic on a hostile header). */
  if (!g_hash_table_add(l->names, g_strndup(sc->name->str, sc->name->len))) {
    ct_json_fault *f = sc->fault;
    f->name = g_strndup(sc->name->str, sc->name->len);
    f->depth = sc->depth - 1;
    if (f->depth == 1 && sc->open[0].names)
      f->parent = g_strdup(sc->open[0].member);
    sc->pos = start;
    return refuse(sc, CT_JSON_DUPLICATE, "a name given twice");
  }
  g_free(l->member);
  l->member = g_strndup(sc->name->str, sc->name->len);
  return CT_JSON_STRICT;
}

static ct_json_verdict token(scan *sc) {
  const char c = sc->s[sc->pos];
  if (sc->done) {
    /* json-glib reads more objects or lists after the first ("{}[]", "{} var
     * x = {}") and ignores them; anything else there it refuses. */
    if (c == '{' || c == '[' || word_is(sc, "var"))
      return refuse(sc, CT_JSON_NOT_STRICT, "a second value after the first");
    if (c != '/') /* a comment is checked below */
      return hand_over(sc);
  }
  if (c == '{' || c == '[')
    return open_container(sc, c == '{');
  if (c == '}' || c == ']') {
    close_container(sc);
    return CT_JSON_STRICT;
  }
  if (c == ':' || c == ',') {
    sc->pos++;
    return CT_JSON_STRICT;
  }
  if (c == '"') {
    const size_t start = sc->pos;
    ct_json_verdict v = string(sc);
    return v == CT_JSON_STRICT ? after_string(sc, start) : v;
  }
  if (c == '-' || c == '.' || c == '$' || g_ascii_isdigit(c)) {
    ct_json_verdict v = number(sc);
    return v == CT_JSON_STRICT ? count_value(sc, FALSE) : v;
  }
  if (g_ascii_isalpha(c))
    return word(sc);
  /* json-glib skips C comments, and the text between two slashes too (its
   * one-line comment runs from a slash to the next). */
  if (c == '/')
    return refuse(sc, CT_JSON_NOT_STRICT, "a comment");
  /* json-glib takes single-quoted strings. */
  if (c == '\'')
    return refuse(sc, CT_JSON_NOT_STRICT, "a single-quoted string");
  /* json-glib skips a byte order mark; safetensors' reader refuses one. */
  if (sc->pos == 0 && sc->n >= 3 && memcmp(sc->s, "\xef\xbb\xbf", 3) == 0)
    return refuse(sc, CT_JSON_NOT_STRICT, "a byte order mark");
  /* Every other character JSON does not allow here, json-glib refuses (each
   * byte was tried in and between values). */
  return hand_over(sc);
}

ct_json_verdict ct_json_strict_check(const char *text, size_t len, ct_json_fault *fault) {
  *fault = (ct_json_fault){0};
  scan sc = {.s = text, .n = len, .fault = fault, .name = g_string_new(NULL)};
  ct_json_verdict v = CT_JSON_STRICT;
  while (v == CT_JSON_STRICT && !sc.hand_over && sc.pos < sc.n) {
    if (is_ws(sc.s[sc.pos]))
      sc.pos++;
    else
      v = token(&sc);
  }
  while (sc.depth > 0)
    close_container(&sc);
  g_string_free(sc.name, TRUE);
  return v;
}

void ct_json_fault_clear(ct_json_fault *fault) {
  g_free(fault->name);
  g_free(fault->parent);
  fault->name = fault->parent = NULL;
}
