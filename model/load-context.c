#include "model/load-context.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

void ct_escape_append(GString *out, const char *s, gboolean quote, gsize max) {
  if (quote)
    g_string_append_c(out, '"');
  /* A user's text (an override) need not be UTF-8; a GError message must be. */
  const gboolean utf8 = g_utf8_validate(s, -1, NULL);
  const char *p = s;
  while (*p) {
    if ((gsize)(p - s) >= max) {
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

const char *ct_keep(ct_load *ld, GString *tmp) {
  const char *r = g_string_chunk_insert_len(ld->scratch, tmp->str, (gssize)tmp->len);
  g_string_free(tmp, TRUE);
  return r;
}

const char *ct_quote(ct_load *ld, const char *s) {
  GString *tmp = g_string_new(NULL);
  ct_escape_append(tmp, s, TRUE, CT_QUOTE_MAX);
  return ct_keep(ld, tmp);
}

const char *ct_dims_text(ct_load *ld, const gint64 *dims, int rank) {
  GString *tmp = g_string_new("[");
  for (int i = 0; i < rank; i++)
    g_string_append_printf(tmp, "%s%lld", i ? ", " : "", (long long)dims[i]);
  g_string_append_c(tmp, ']');
  return ct_keep(ld, tmp);
}

gboolean ct_fail(ct_load *ld, CtModelError code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(ld->error, CT_MODEL_ERROR, code, "%s: %s", ld->display, msg);
  g_free(msg);
  return FALSE;
}

void ct_warn(ct_load *ld, const char *fmt, ...) {
  if (!ld->warnings)
    return;
  va_list ap;
  va_start(ap, fmt);
  gchar *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_ptr_array_add(ld->warnings, g_strdup_printf("%s: %s", ld->display, msg));
  g_free(msg);
}

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

gboolean ct_read_at(ct_load *ld, void *buf, size_t len, gint64 offset) {
  int err;
  if (read_exact(ld->fd, buf, len, offset, &err))
    return TRUE;
  if (err == 0)
    return ct_fail(ld, CT_MODEL_ERROR_IO,
                   "the file ended early while being read (%lld bytes "
                   "at offset %lld): it changed on disk",
                   (long long)len, (long long)offset);
  return ct_fail(ld, CT_MODEL_ERROR_IO, "cannot read: %s", g_strerror(err));
}

gboolean ct_check_unchanged(ct_load *ld) {
  struct stat now;
  if (fstat(ld->fd, &now) != 0 || now.st_size != ld->st.st_size ||
      now.st_mtim.tv_sec != ld->st.st_mtim.tv_sec ||
      now.st_mtim.tv_nsec != ld->st.st_mtim.tv_nsec)
    return ct_fail(ld, CT_MODEL_ERROR_IO, "the file changed on disk while being read");
  return TRUE;
}

/* Opens path as a regular file, without hanging on a FIFO. */
gboolean ct_open_file(ct_load *ld, const gchar *path) {
  /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
  ld->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (ld->fd < 0) {
    int e = errno;
    return ct_fail(ld, CT_MODEL_ERROR_IO, "cannot open: %s", g_strerror(e));
  }
  if (fstat(ld->fd, &ld->st) != 0) {
    int e = errno;
    return ct_fail(ld, CT_MODEL_ERROR_IO, "cannot stat: %s", g_strerror(e));
  }
  if (S_ISDIR(ld->st.st_mode))
    return ct_fail(ld, CT_MODEL_ERROR_IO, "is a directory, not a model file");
  if (!S_ISREG(ld->st.st_mode))
    return ct_fail(ld, CT_MODEL_ERROR_IO, "not a regular file");
  int flags = fcntl(ld->fd, F_GETFL);
  if (flags >= 0)
    fcntl(ld->fd, F_SETFL, flags & ~O_NONBLOCK);
  ld->file_size = (gint64)ld->st.st_size;
  return TRUE;
}
