/* What one load carries: the open model file, read only through checked
 * reads, and the messages (the error, the warnings), each naming the file.
 * Internal to model/. */
#ifndef CT_MODEL_LOAD_CONTEXT_H
#define CT_MODEL_LOAD_CONTEXT_H

#include <glib.h>
#include <sys/stat.h>

#include "model/model.h"

/* How much of a name or value a message quotes, and how many items (names,
 * sizes) it lists. */
#define CT_QUOTE_MAX 80
#define CT_LIST_MAX 8

typedef struct {
  gchar *display; /* the path, for messages */
  GError **error;
  GPtrArray *warnings;   /* NULL: not wanted */
  GStringChunk *scratch; /* quoted strings live until the load ends */
  int fd;
  struct stat st; /* when opened, to notice a change on disk */
  gint64 file_size;
} ct_load;

/* Appends at most max bytes of s (then "...") with control characters
 * escaped, so hostile text cannot break a one-line message; in double quotes
 * (and with quotes and backslashes escaped) if quote. */
void ct_escape_append(GString *out, const char *s, gboolean quote, gsize max);
/* s quoted and escaped, for a message; lives until the load ends. */
const char *ct_quote(ct_load *ld, const char *s);
/* The text of tmp, freed, kept until the load ends. */
const char *ct_keep(ct_load *ld, GString *tmp);
/* "[2, 3, 4]". */
const char *ct_dims_text(ct_load *ld, const gint64 *dims, int rank);

/* Sets the load's error, "PATH: message"; returns FALSE. */
gboolean ct_fail(ct_load *ld, CtModelError code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* Adds the warning "PATH: message", if warnings are wanted. */
void ct_warn(ct_load *ld, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Opens path as a regular file into ld (fd, st, file_size), without hanging
 * on a FIFO; fails on a directory or a device. */
gboolean ct_open_file(ct_load *ld, const gchar *path);
/* Reads exactly len bytes at offset, or fails (a file that ends early
 * changed on disk: its size was known). */
gboolean ct_read_at(ct_load *ld, void *buf, size_t len, gint64 offset);
/* Fails unless the file's size and time are still those it was opened with. */
gboolean ct_check_unchanged(ct_load *ld);

#endif
