/* A check of JSON text before json-glib parses it, for what json-glib 1.6
 * would take but RFC 8259 JSON (and so safetensors) forbids, and for what
 * would make json-glib crash or take gigabytes. Knows JSON only, not
 * safetensors: the caller words the messages. Internal to model/. */
#ifndef CT_MODEL_JSON_STRICT_H
#define CT_MODEL_JSON_STRICT_H

#include <glib.h>

typedef enum {
  CT_JSON_STRICT,      /* nothing found: json-glib may parse it */
  CT_JSON_NOT_STRICT,  /* not JSON */
  CT_JSON_DUPLICATE,   /* a name given twice in one object */
  CT_JSON_TOO_COMPLEX, /* past the nesting or size limits */
} ct_json_verdict;

typedef struct {
  const char *why; /* static text */
  size_t pos;      /* byte of the text */
  /* CT_JSON_DUPLICATE: the name, decoded; the object's depth (0: the
   * top-level object); at depth 1, the top-level member holding it. */
  gchar *name, *parent;
  int depth;
} ct_json_fault;

/* Looks at len bytes of text; fills fault unless CT_JSON_STRICT. */
ct_json_verdict ct_json_strict_check(const char *text, size_t len, ct_json_fault *fault);
void ct_json_fault_clear(ct_json_fault *fault);

#endif
