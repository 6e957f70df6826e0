/* The convtranspose command-line tool, run as a user would: golden vectors
 * from PyTorch at several chunk sizes, the PyTorch documentation examples at
 * full size, audio files, `info`, and every error path.
 *
 * Usage: test-cli CONVTRANSPOSE SOURCE_ROOT */
#include "kernels/reference.h"
#include "kernels/stream.h"
#include "model/model.h"
#include "tests/common/safetensors-writer.h"
#include "tests/tap.h"
#include "tools/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <sndfile.h>

static const char *cli_path, *source_root;
static gchar *tmp_dir;

/* ---- helpers ----------------------------------------------------------- */

typedef struct {
  int exit_code; /* -1 when killed by a signal */
  gchar *out, *err;
} Run;

static void run_clear(Run *r) {
  g_free(r->out);
  g_free(r->err);
  memset(r, 0, sizeof *r);
}

/* Runs the CLI with a NULL-terminated argument list. */
static Run run_argv(const char *const *args) {
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer)cli_path);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add(argv, (gpointer)args[i]);
  g_ptr_array_add(argv, NULL);
  Run r = {.exit_code = -1};
  int status = 0;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, (gchar **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                    &r.out, &r.err, &status, &error)) {
    tap_diag("cannot run %s: %s", cli_path, error->message);
    g_error_free(error);
    r.out = g_strdup("");
    r.err = g_strdup("");
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  }
  g_ptr_array_free(argv, TRUE);
  return r;
}

#define RUN(...) run_argv((const char *const[]){__VA_ARGS__, NULL})

static gchar *tmp_path(const char *name) {
  return g_build_filename(tmp_dir, name, NULL);
}

static gchar *golden_path(const char *name) {
  return g_build_filename(source_root, "tests", "golden", name, NULL);
}

/* A whole .npy file, parsed and converted to float32. */
typedef struct {
  gboolean ok;
  gchar *message;
  CtNpy npy;
  float *data;
} Array;

static Array load_array(const char *path) {
  Array a = {0};
  gchar *contents = NULL;
  gsize size = 0;
  GError *error = NULL;
  if (g_file_get_contents(path, &contents, &size, &error) &&
      ct_npy_parse((const guint8 *)contents, size, &a.npy, &error) &&
      (a.data = ct_npy_to_f32(&a.npy, &error)) != NULL) {
    a.ok = TRUE;
  } else {
    a.message = g_strdup(error ? error->message : "?");
  }
  a.npy.data = NULL; /* contents goes away */
  g_clear_error(&error);
  g_free(contents);
  return a;
}

static void array_clear(Array *a) {
  g_free(a->data);
  g_free(a->message);
  memset(a, 0, sizeof *a);
}

static gboolean same_shape(const CtNpy *a, const CtNpy *b) {
  if (a->ndim != b->ndim)
    return FALSE;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return FALSE;
  return TRUE;
}

static gboolean shape_is(const CtNpy *a, int ndim, const gint64 *shape) {
  if (a->ndim != ndim)
    return FALSE;
  for (int i = 0; i < ndim; i++)
    if (a->shape[i] != shape[i])
      return FALSE;
  return TRUE;
}

/* max |a - b| and max |ref| */
static void compare(const float *out, const float *ref, gint64 n, double *max_err,
                    double *max_ref) {
  *max_err = 0;
  *max_ref = 0;
  for (gint64 i = 0; i < n; i++) {
    double e = fabs((double)out[i] - (double)ref[i]);
    if (!(e <= *max_err)) /* NaN counts as infinitely wrong */
      *max_err = isnan(e) ? INFINITY : e;
    if (fabs((double)ref[i]) > *max_ref)
      *max_ref = fabs((double)ref[i]);
  }
}

static gboolean within_contract(double max_err, double max_ref) {
  return max_err <= 1e-4 * (max_ref > 1 ? max_ref : 1);
}

/* xorshift64*, fixed seed unless CT_TEST_SEED is set. */
static guint64 rng_state = 0x9E3779B97F4A7C15ull;
static guint64 rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}
static float rng_float(void) {
  return (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static void fill_random(float *v, gint64 n) {
  for (gint64 i = 0; i < n; i++)
    v[i] = rng_float();
}

static gint64 product(const gint64 *v, int n) {
  gint64 p = 1;
  for (int i = 0; i < n; i++)
    p *= v[i];
  return p;
}

static gboolean file_exists(const char *path) {
  return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* Entries of dir whose name starts with prefix (left-behind temporaries). */
static int count_prefixed(const char *dir, const char *prefix) {
  GDir *d = g_dir_open(dir, 0, NULL);
  int n = 0;
  const gchar *name;
  while (d && (name = g_dir_read_name(d)))
    if (g_str_has_prefix(name, prefix))
      n++;
  if (d)
    g_dir_close(d);
  return n;
}

static gboolean one_error_line(const char *err) {
  const char *nl = strchr(err, '\n');
  return g_str_has_prefix(err, "convtranspose: ") && nl && nl[1] == '\0';
}

/* ---- running the CLI with its streams wired up --------------------------- */

/* How spawn_cli connects the CLI: standard output is always a pipe whose
 * bytes (binary) land in Spawned.out. */
typedef struct {
  const char *cwd;        /* NULL: this process's */
  const char *fifo;       /* a FIFO read while the CLI runs, into Spawned.fifo */
  gsize fifo_close_after; /* > 0: stop reading (close it) after this many bytes */
  gboolean stderr_tty;    /* the CLI's stderr is a terminal (a pty) */
  gint64 fsize_limit;     /* > 0: RLIMIT_FSIZE of the CLI, in bytes */
} SpawnOpts;

typedef struct {
  int exit_code; /* -1 when killed by a signal, or not run */
  GByteArray *out, *fifo;
  gchar *err;
  long max_rss_kb; /* the CLI's peak resident set */
} Spawned;

static void spawned_clear(Spawned *s) {
  if (s->out)
    g_byte_array_unref(s->out);
  if (s->fifo)
    g_byte_array_unref(s->fifo);
  g_free(s->err);
  memset(s, 0, sizeof *s);
}

static void limit_file_size(gpointer data) {
  const struct rlimit lim = {(rlim_t) * (const gint64 *)data,
                             (rlim_t) * (const gint64 *)data};
  setrlimit(RLIMIT_FSIZE, &lim);
  signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG instead */
}

/* Appends what fd has to buf; FALSE at its end (or an error: a pty whose
 * other side closed reads EIO). */
/* Reads what fd has, up to `limit` bytes in all (0: no limit): a reader
 * that leaves early must not keep up with the writer until the end. */
static gboolean drain_fd_upto(int fd, GByteArray *buf, gsize limit) {
  guint8 block[65536];
  for (;;) {
    if (limit && buf->len >= limit)
      return TRUE;
    ssize_t n =
        read(fd, block, limit ? MIN(sizeof block, limit - buf->len) : sizeof block);
    if (n > 0) {
      g_byte_array_append(buf, block, (guint)n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    return n < 0 && errno == EAGAIN;
  }
}

static gboolean drain_fd(int fd, GByteArray *buf) {
  return drain_fd_upto(fd, buf, 0);
}

/* Runs the CLI, collecting its stdout, stderr and the FIFO concurrently
 * (a CLI writing into a full pipe must not wait on us), then reaps it with
 * wait4 for its peak memory. */
static Spawned spawn_cli(const char *const *args, const SpawnOpts *opts) {
  static const SpawnOpts none = {0};
  if (!opts)
    opts = &none;
  Spawned s = {.exit_code = -1, .out = g_byte_array_new(), .fifo = g_byte_array_new()};
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer)cli_path);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add(argv, (gpointer)args[i]);
  g_ptr_array_add(argv, NULL);

  int tty_master = -1, tty_slave = -1;
  if (opts->stderr_tty) {
    tty_master = posix_openpt(O_RDWR | O_NOCTTY);
    if (tty_master >= 0 && grantpt(tty_master) == 0 && unlockpt(tty_master) == 0)
      tty_slave = open(ptsname(tty_master), O_RDWR | O_NOCTTY);
  }
  /* Opened before the CLI, non-blocking: its open for writing then returns
   * at once, and a FIFO no one writes to reads as empty. */
  int fifo = opts->fifo ? open(opts->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
  GPid pid = 0;
  int out_fd = -1, err_fd = -1;
  GError *error = NULL;
  gint64 limit = opts->fsize_limit;
  gboolean started =
      (!opts->stderr_tty || tty_slave >= 0) &&
      g_spawn_async_with_pipes_and_fds(
          opts->cwd, (const gchar *const *)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
          limit > 0 ? limit_file_size : NULL, &limit, -1, -1, tty_slave, NULL, NULL, 0,
          &pid, NULL, &out_fd, tty_slave >= 0 ? NULL : &err_fd, &error);
  g_ptr_array_free(argv, TRUE);
  if (tty_slave >= 0)
    close(tty_slave); /* the master reads EIO once the CLI has closed its side */
  if (!started) {
    tap_diag("cannot run %s: %s", cli_path, error ? error->message : "no pty");
    g_clear_error(&error);
    if (fifo >= 0)
      close(fifo);
    if (tty_master >= 0)
      close(tty_master);
    s.err = g_strdup("");
    return s;
  }
  if (tty_master >= 0)
    err_fd = tty_master;
  GByteArray *err = g_byte_array_new();
  g_unix_set_fd_nonblocking(out_fd, TRUE, NULL);
  g_unix_set_fd_nonblocking(err_fd, TRUE, NULL);
  const gint64 deadline = g_get_monotonic_time() + 300 * G_TIME_SPAN_SECOND;
  while (out_fd >= 0 || err_fd >= 0) {
    struct pollfd p[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {fifo, POLLIN, 0}};
    if (poll(p, 3, 200) < 0 && errno != EINTR)
      break;
    if (g_get_monotonic_time() > deadline) {
      tap_diag("the CLI ran for 300 s: killed");
      kill(pid, SIGKILL);
      break;
    }
    if (p[0].revents && !drain_fd(out_fd, s.out)) {
      close(out_fd);
      out_fd = -1;
    }
    if (p[1].revents && !drain_fd(err_fd, err)) {
      close(err_fd);
      err_fd = -1;
    }
    /* POLLHUP only once a writer came and went: then the FIFO is done. */
    if (fifo >= 0 && p[2].revents &&
        (!drain_fd_upto(fifo, s.fifo, opts->fifo_close_after) ||
         (opts->fifo_close_after && s.fifo->len >= opts->fifo_close_after))) {
      close(fifo);
      fifo = -1;
    }
  }
  if (fifo >= 0) {
    drain_fd(fifo, s.fifo);
    close(fifo);
  }
  if (out_fd >= 0)
    close(out_fd);
  if (err_fd >= 0)
    close(err_fd);
  int status = 0;
  struct rusage usage = {0};
  if (wait4(pid, &status, 0, &usage) == pid && WIFEXITED(status))
    s.exit_code = WEXITSTATUS(status);
  g_spawn_close_pid(pid);
  s.max_rss_kb = usage.ru_maxrss;
  g_byte_array_append(err, (const guint8 *)"", 1);
  s.err = (gchar *)g_byte_array_free(err, FALSE);
  return s;
}

#define SPAWN(opts, ...) spawn_cli((const char *const[]){__VA_ARGS__, NULL}, opts)

static GByteArray *file_bytes(const char *path) {
  gchar *contents = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &contents, &len, NULL))
    return NULL;
  GByteArray *b = g_byte_array_new_take((guint8 *)contents, len);
  return b;
}

/* libsndfile stamps float WAV and AIFF files with the time of writing (in
 * their PEAK chunk): two runs compare equal once it is zeroed. */
static void zero_peak_time(GByteArray *b) {
  for (guint i = 0; b && i + 16 <= MIN(b->len, 4096u); i++)
    if (memcmp(b->data + i, "PEAK", 4) == 0) {
      memset(b->data + i + 12, 0, 4);
      return;
    }
}

static gboolean same_bytes(GByteArray *a, GByteArray *b) {
  zero_peak_time(a);
  zero_peak_time(b);
  return a && b && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static gboolean is_kind(const char *path, mode_t kind, gboolean follow) {
  struct stat st;
  return (follow ? stat(path, &st) : lstat(path, &st)) == 0 &&
         (st.st_mode & S_IFMT) == kind;
}

/* ---- golden vectors ----------------------------------------------------- */

/* Runs one case at one chunking and loads its output. */
static Array run_golden(const char *name, const char *prefix, char **extra,
                        const char *chunk, const char *out_path, gchar **err) {
  gchar *model = g_strdup_printf("%s/tests/golden/%s.safetensors", source_root, name);
  gchar *input = g_strdup_printf("%s/tests/golden/%s.in.npy", source_root, name);
  GPtrArray *args = g_ptr_array_new();
  g_ptr_array_add(args, "apply");
  g_ptr_array_add(args, model);
  g_ptr_array_add(args, input);
  g_ptr_array_add(args, (gpointer)out_path);
  if (prefix) {
    g_ptr_array_add(args, "--layer");
    g_ptr_array_add(args, (gpointer)prefix);
  }
  for (int i = 0; extra && extra[i]; i++)
    g_ptr_array_add(args, extra[i]);
  if (chunk) {
    g_ptr_array_add(args, "--chunk");
    g_ptr_array_add(args, (gpointer)chunk);
  }
  g_ptr_array_add(args, NULL);
  g_unlink(out_path);
  Run r = run_argv((const char *const *)args->pdata);
  Array a = {0};
  if (r.exit_code == 0) {
    a = load_array(out_path);
  } else {
    a.message = g_strdup_printf("exit %d: %s", r.exit_code, r.err);
  }
  *err = g_strdup(r.err);
  run_clear(&r);
  g_ptr_array_free(args, TRUE);
  g_free(model);
  g_free(input);
  return a;
}

static void check_golden(void) {
  gchar *tsv_path = golden_path("cases.tsv");
  gchar *tsv = NULL;
  if (!tap_ok(g_file_get_contents(tsv_path, &tsv, NULL, NULL),
              "golden cases list %s exists", tsv_path)) {
    g_free(tsv_path);
    return;
  }
  g_free(tsv_path);
  gchar **lines = g_strsplit(tsv, "\n", -1);
  gchar *out_path = tmp_path("golden.out.npy");
  int cases = 0;
  for (int li = 0; lines[li]; li++) {
    gchar *line = g_strchomp(lines[li]);
    if (line[0] == '#' || line[0] == '\0')
      continue;
    gchar **f = g_strsplit(line, "\t", -1);
    if (g_strv_length(f) < 3) {
      tap_ok(FALSE, "cases.tsv line %d has NAME, LAYER_PREFIX, EXTRA_CLI_ARGS", li + 1);
      g_strfreev(f);
      continue;
    }
    cases++;
    const char *name = f[0];
    const char *prefix = strcmp(f[1], "-") ? f[1] : NULL;
    gchar **extra = NULL;
    if (strcmp(f[2], "-") != 0 && !g_shell_parse_argv(f[2], NULL, &extra, NULL))
      extra = NULL;
    gchar *ref_path = g_strdup_printf("%s/tests/golden/%s.out.npy", source_root, name);
    Array ref = load_array(ref_path);
    g_free(ref_path);

    gchar *err = NULL;
    Array base = run_golden(name, prefix, extra, NULL, out_path, &err);
    double max_err = INFINITY, max_ref = 0;
    gboolean shape_ok = base.ok && ref.ok && same_shape(&base.npy, &ref.npy);
    if (shape_ok)
      compare(base.data, ref.data, ref.npy.count, &max_err, &max_ref);
    gchar *got_shape =
        base.ok ? ct_npy_shape_string(base.npy.shape, base.npy.ndim) : NULL;
    gchar *ref_shape = ref.ok ? ct_npy_shape_string(ref.npy.shape, ref.npy.ndim) : NULL;
    tap_ok(shape_ok && within_contract(max_err, max_ref) && err[0] == '\0',
           "golden %s: shape %s, max error %.3g (max |ref| %.3g)%s%s", name,
           got_shape ? got_shape : "?", max_err, max_ref, base.ok ? "" : " -- ",
           base.ok ? "" : base.message);
    if (!shape_ok && ref.ok)
      tap_diag("expected shape %s", ref_shape);
    if (!ref.ok)
      tap_diag("reference: %s", ref.message);
    g_free(got_shape);
    g_free(ref_shape);
    g_free(err);

    /* Other chunkings: bitwise identical to the default chunk. The random
     * one goes up to a little past the longest input axis (the streamed
     * axis is one of them), so it can also exceed the signal. */
    gint64 len0 = 1;
    {
      gchar *in_path = g_strdup_printf("%s/tests/golden/%s.in.npy", source_root, name);
      Array in = load_array(in_path);
      for (int d = 0; in.ok && d < in.npy.ndim; d++)
        len0 = MAX(len0, in.npy.shape[d]);
      array_clear(&in);
      g_free(in_path);
    }
    gchar random_chunk[32];
    g_snprintf(random_chunk, sizeof random_chunk, "%" G_GINT64_FORMAT,
               1 + (gint64)(rng_next() % (guint64)(len0 + 2)));
    const char *chunks[] = {"1", "2", "3", "7", random_chunk};
    GString *bad = g_string_new(NULL);
    for (gsize c = 0; c < G_N_ELEMENTS(chunks); c++) {
      Array other = run_golden(name, prefix, extra, chunks[c], out_path, &err);
      gboolean same =
          other.ok && base.ok && same_shape(&other.npy, &base.npy) &&
          memcmp(other.data, base.data, (gsize)base.npy.count * sizeof(float)) == 0;
      if (!same)
        g_string_append_printf(bad, " --chunk %s (%s)", chunks[c],
                               other.ok ? "differs" : other.message);
      array_clear(&other);
      g_free(err);
    }
    tap_ok(base.ok && bad->len == 0,
           "golden %s: --chunk 1, 2, 3, 7, %s bitwise identical to the default%s", name,
           random_chunk, bad->str);
    g_string_free(bad, TRUE);
    array_clear(&base);
    array_clear(&ref);
    g_strfreev(extra);
    g_strfreev(f);
  }
  tap_ok(cases > 0, "cases.tsv lists %d golden cases", cases);
  g_unlink(out_path);
  g_free(out_path);
  g_strfreev(lines);
  g_free(tsv);
}

/* ---- PyTorch documentation examples at full size --------------------------- */

static ct_layer *load_model(const char *path, const CtOverrides *overrides) {
  GError *error = NULL;
  ct_layer *layer = ct_model_load(path, NULL, overrides, &error);
  if (!layer) {
    tap_diag("%s", error->message);
    g_error_free(error);
  }
  return layer;
}

/* Writes a random batched input, runs the CLI, and checks the output shape;
 * then checks every batch item against the reference, or (for speed) the
 * first and last against the one-shot forward, which must agree bitwise.
 * Big files live in the temporary directory only while checked. */
static void check_doc(const char *model_name, int rank, const gint64 *in_shape,
                      const gint64 *want, const char *const *extra,
                      CtOverrides *overrides, gboolean use_reference) {
  gchar *model = golden_path(model_name);
  gchar *in_path = tmp_path("doc.in.npy"), *out_path = tmp_path("doc.out.npy");
  const int ndim = rank + 2;
  const gint64 count = product(in_shape, ndim);
  float *input = g_malloc((gsize)count * sizeof(float));
  fill_random(input, count);
  gboolean ok = ct_npy_save_f32(in_path, in_shape, ndim, input, NULL);
  const char *args[16] = {"apply", model, in_path, out_path};
  int n = 4;
  for (int i = 0; extra && extra[i]; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  gint64 t0 = g_get_monotonic_time();
  Run r = run_argv(args);
  gint64 t1 = g_get_monotonic_time();
  gchar *want_str = ct_npy_shape_string(want, ndim);
  gchar *in_str = ct_npy_shape_string(in_shape, ndim);
  /* The output may be 1 GB: map it rather than read it. */
  GMappedFile *mapped =
      r.exit_code == 0 ? g_mapped_file_new(out_path, FALSE, NULL) : NULL;
  CtNpy out;
  GError *error = NULL;
  gboolean parsed =
      mapped && ct_npy_parse((const guint8 *)g_mapped_file_get_contents(mapped),
                             g_mapped_file_get_length(mapped), &out, &error);
  tap_ok(ok && parsed && shape_is(&out, ndim, want),
         "%s on %s input -> %s output (%.1f s)%s%s", model_name, in_str, want_str,
         (double)(t1 - t0) / 1e6, r.exit_code ? " -- " : "", r.exit_code ? r.err : "");
  g_clear_error(&error);

  ct_layer *layer = parsed ? load_model(model, overrides) : NULL;
  if (layer && shape_is(&out, ndim, want)) {
    const ct_params *p = ct_layer_params(layer);
    const gint64 in_item = product(in_shape + 1, ndim - 1);
    const gint64 out_item = product(want + 1, ndim - 1);
    float *expect = g_malloc((gsize)out_item * sizeof(float));
    float *got = g_malloc((gsize)out_item * sizeof(float));
    /* Every item for the reference (cheap in 1d); first and last otherwise. */
    gint64 items[64];
    int n_items = 0;
    for (gint64 b = 0; b < in_shape[0]; b++)
      if (use_reference || b == 0 || b == in_shape[0] - 1)
        items[n_items++] = b;
    double worst = 0, worst_ref = 0;
    gboolean good = TRUE;
    for (int k = 0; k < n_items; k++) {
      const gint64 b = items[k];
      ct_status st =
          use_reference
              ? ct_reference_forward(p, ct_layer_weight(layer), ct_layer_bias(layer),
                                     in_shape + 2, input + b * in_item, expect)
              : ct_forward(layer, in_shape + 2, input + b * in_item, expect, NULL, 0);
      ct_npy_read_f32(&out, b * out_item, out_item, got);
      double e, m;
      compare(got, expect, out_item, &e, &m);
      worst = MAX(worst, e);
      worst_ref = MAX(worst_ref, m);
      if (st != CT_OK)
        good = FALSE;
      else if (use_reference ? !within_contract(e, m)
                             : memcmp(got, expect, (gsize)out_item * sizeof(float)) != 0)
        good = FALSE;
    }
    tap_ok(good, "%s: %d batch items %s (max error %.3g, max |ref| %.3g)", model_name,
           n_items,
           use_reference ? "match the reference"
                         : "bitwise equal to the one-shot forward",
           worst, worst_ref);
    g_free(expect);
    g_free(got);
  } else {
    tap_ok(FALSE, "%s: values (no output to check)", model_name);
  }
  ct_layer_free(layer);
  if (mapped)
    g_mapped_file_unref(mapped);
  run_clear(&r);
  g_free(want_str);
  g_free(in_str);
  g_free(input);
  g_unlink(in_path);
  g_unlink(out_path);
  g_free(in_path);
  g_free(out_path);
  g_free(model);
}

static void check_docs(void) {
  const gint64 in1[] = {20, 16, 50}, out1[] = {20, 33, 99};
  check_doc("doc_1d.safetensors", 1, in1, out1, NULL, NULL, TRUE);

  /* The documentation's ConvTranspose2d(16, 33, 3, stride=2): the file's
   * weights with padding and output_padding back to 0. */
  const gint64 in2[] = {20, 16, 50, 100}, out2[] = {20, 33, 101, 201};
  const char *const extra2[] = {"--padding", "0", "--output-padding=0", NULL};
  CtOverrides ov2 = {0};
  ct_axis_override_parse("0", &ov2.padding, NULL);
  ct_axis_override_parse("0", &ov2.output_padding, NULL);
  check_doc("doc_2d.safetensors", 2, in2, out2, extra2, &ov2, FALSE);

  const gint64 in3[] = {20, 16, 10, 50, 100}, out3[] = {20, 33, 19, 100, 200};
  check_doc("doc_3d.safetensors", 3, in3, out3, NULL, NULL, FALSE);
}

/* ---- audio ------------------------------------------------------------- */

static const int AUDIO_RATE = 48000, AUDIO_FRAMES = 48000;

/* A 2->2 1d layer, k4 s2 p1 (L_out = 2L), with bias. */
static float audio_weight[2 * 2 * 4], audio_bias[2];

static gboolean write_stereo_wav(const char *path, float *planar) {
  SF_INFO info = {
      .samplerate = AUDIO_RATE, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
  SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
  if (!sf)
    return FALSE;
  float *inter = g_malloc(sizeof(float) * 2 * AUDIO_FRAMES);
  for (int i = 0; i < AUDIO_FRAMES; i++) {
    /* A chirp-like signal plus noise, within [-0.6, 0.6]. */
    planar[i] = 0.5f * sinf((float)i * 0.01f * (1.0f + (float)i / AUDIO_FRAMES)) +
                0.1f * rng_float();
    planar[AUDIO_FRAMES + i] = 0.6f * rng_float();
    inter[2 * i] = planar[i];
    inter[2 * i + 1] = planar[AUDIO_FRAMES + i];
  }
  gboolean ok = sf_writef_float(sf, inter, AUDIO_FRAMES) == AUDIO_FRAMES;
  ok = sf_close(sf) == 0 && ok;
  g_free(inter);
  return ok;
}

/* Reads an audio file back as planar floats. */
static float *read_audio(const char *path, SF_INFO *info) {
  memset(info, 0, sizeof *info);
  SNDFILE *sf = sf_open(path, SFM_READ, info);
  if (!sf)
    return NULL;
  const gint64 frames = info->frames, ch = info->channels;
  float *inter = g_malloc(sizeof(float) * (gsize)(frames * ch) + 1);
  sf_count_t got = sf_readf_float(sf, inter, frames);
  sf_close(sf);
  float *planar = g_malloc(sizeof(float) * (gsize)(frames * ch) + 1);
  for (gint64 i = 0; i < got; i++)
    for (gint64 c = 0; c < ch; c++)
      planar[c * frames + i] = inter[i * ch + c];
  g_free(inter);
  if (got != frames) {
    g_free(planar);
    return NULL;
  }
  return planar;
}

static void check_audio(void) {
  for (int i = 0; i < 16; i++)
    audio_weight[i] = 0.5f * rng_float();
  audio_bias[0] = 0.01f;
  audio_bias[1] = -0.02f;
  gchar *model = tmp_path("stereo.safetensors");
  const int64_t k4 = 4;
  tap_ok(st_write_layer(model, 1, 2, 2, &k4, audio_weight, 2, audio_bias,
                        "\"stride\":\"2\",\"padding\":\"1\""),
         "wrote a 2->2 stride-2 model");
  gchar *wav = tmp_path("in.wav");
  float *input = g_malloc(sizeof(float) * 2 * AUDIO_FRAMES);
  tap_ok(write_stereo_wav(wav, input), "wrote a stereo 48 kHz float WAV");

  ct_params params;
  ct_params_init(&params, 1);
  params.in_channels = params.out_channels = 2;
  params.kernel[0] = 4;
  params.stride[0] = 2;
  params.padding[0] = 1;
  char msg[256];
  ct_layer *layer = ct_layer_new(&params, audio_weight, audio_bias, msg, sizeof msg);
  const gint64 in_len = AUDIO_FRAMES, out_len = 2 * AUDIO_FRAMES;
  float *expect = g_malloc(sizeof(float) * 2 * (gsize)out_len);
  tap_ok(layer && ct_forward(layer, &in_len, input, expect, msg, sizeof msg) == CT_OK,
         "one-shot forward of the same data");

  /* WAV out: rate doubles, values equal to the forward. */
  gchar *out = tmp_path("out.wav");
  Run r = RUN("apply", model, wav, out);
  gchar *want_line =
      g_strdup_printf("applied 1d layer 2->2 (stride 2) to %s: 2 x 48000 @ "
                      "48000 Hz -> 2 x 96000 @ 96000 Hz, wrote %s\n",
                      wav, out);
  tap_ok(r.exit_code == 0 && strcmp(r.out, want_line) == 0 && r.err[0] == '\0',
         "apply WAV: summary line on stdout, nothing on stderr%s%s",
         r.exit_code ? " -- " : "", r.err);
  if (strcmp(r.out, want_line) != 0)
    tap_diag("stdout: %s", r.out);
  g_free(want_line);
  run_clear(&r);
  SF_INFO info;
  float *got = read_audio(out, &info);
  tap_ok(got && info.samplerate == 96000 && info.channels == 2 &&
             info.frames == out_len && info.format == (SF_FORMAT_WAV | SF_FORMAT_FLOAT),
         "output WAV: 32-bit float, 2 channels, 96000 Hz, %lld frames",
         (long long)info.frames);
  double err = INFINITY, max_ref = 0;
  if (got && info.frames == out_len)
    compare(got, expect, 2 * out_len, &err, &max_ref);
  tap_ok(err <= 1e-6, "output WAV equals ct_forward (max error %.3g)", err);
  g_free(got);

  /* Whatever --chunk, the same samples. */
  Run r2 = RUN("apply", model, wav, out, "--chunk", "333", "--threads", "2");
  got = read_audio(out, &info);
  if (got && info.frames == out_len)
    compare(got, expect, 2 * out_len, &err, &max_ref);
  tap_ok(r2.exit_code == 0 && got && err <= 1e-6, "--chunk 333 --threads 2: same output");
  run_clear(&r2);
  g_free(got);

  /* Other containers by extension. */
  static const struct {
    const char *name;
    int major;
    gboolean lossy;
  } formats[] = {
      {"out.flac", SF_FORMAT_FLAC, TRUE},  {"out.FLAC", SF_FORMAT_FLAC, TRUE},
      {"out.aiff", SF_FORMAT_AIFF, FALSE}, {"out.aif", SF_FORMAT_AIFF, FALSE},
      {"out.au", SF_FORMAT_AU, FALSE},     {"out.caf", SF_FORMAT_CAF, FALSE},
      {"out.ogg", SF_FORMAT_OGG, TRUE},    {"out", SF_FORMAT_WAV, FALSE},
      {"out.w64", SF_FORMAT_W64, FALSE},   {"out.rf64", SF_FORMAT_RF64, FALSE},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(formats); i++) {
    gchar *path = tmp_path(formats[i].name);
    Run rf = RUN("apply", model, wav, path);
    got = read_audio(path, &info);
    err = INFINITY;
    if (got && info.frames == out_len)
      compare(got, expect, 2 * out_len, &err, &max_ref);
    /* FLAC is 24-bit (error <= 2^-23 after clipping, and the data is within
     * [-1, 1] here); Vorbis only needs to be close in energy, so just its
     * length and format are checked. */
    gboolean values_ok = formats[i].major == SF_FORMAT_OGG ? TRUE
                         : formats[i].lossy                ? err <= 2.5e-7
                                                           : err <= 1e-6;
    tap_ok(rf.exit_code == 0 && got &&
               (info.format & SF_FORMAT_TYPEMASK) == formats[i].major &&
               info.samplerate == 96000 && info.channels == 2 && info.frames == out_len &&
               values_ok,
           "%s: format 0x%x, %d Hz, error %.3g%s%s", formats[i].name, info.format,
           info.samplerate, err, rf.exit_code ? " -- " : "", rf.err);
    run_clear(&rf);
    g_free(got);
    g_unlink(path);
    g_free(path);
  }

  /* FLAC clips what does not fit in [-1, 1]. */
  float loud[2] = {8.0f, -8.0f};
  gchar *loud_model = tmp_path("loud.safetensors");
  st_write_layer(loud_model, 1, 2, 2, &k4, audio_weight, 2, loud,
                 "\"stride\":\"2\",\"padding\":\"1\"");
  gchar *flac = tmp_path("loud.flac");
  Run rl = RUN("apply", loud_model, wav, flac);
  got = read_audio(flac, &info);
  gboolean clipped = got != NULL && info.frames == out_len;
  for (gint64 i = 0; clipped && i < out_len; i++)
    clipped = got[i] > 0.99f && got[out_len + i] < -0.99f;
  tap_ok(rl.exit_code == 0 && clipped, "FLAC output clipped to [-1, 1], not wrapped");
  run_clear(&rl);
  g_free(got);
  g_unlink(flac);
  g_free(flac);
  g_unlink(loud_model);
  g_free(loud_model);

  /* Audio in, .npy out: [Cout, L_out]. */
  gchar *npy_out = tmp_path("audio.npy");
  Run rn = RUN("apply", model, wav, npy_out, "--chunk=1000");
  Array a = load_array(npy_out);
  const gint64 want[2] = {2, out_len};
  tap_ok(rn.exit_code == 0 && a.ok && shape_is(&a.npy, 2, want) &&
             memcmp(a.data, expect, sizeof(float) * 2 * (gsize)out_len) == 0,
         "WAV in, .npy out: [2, 96000], bitwise equal to ct_forward");
  array_clear(&a);
  run_clear(&rn);
  g_unlink(npy_out);
  g_free(npy_out);

  g_free(expect);
  ct_layer_free(layer);
  g_free(input);
  g_unlink(out);
  g_free(out);
  g_unlink(wav);
  g_free(wav);
  g_unlink(model);
  g_free(model);
}

/* ---- info -------------------------------------------------------------- */

static gboolean has_line(const char *text, const char *line) {
  gchar *needle = g_strdup_printf("\n%s\n", line);
  gchar *padded = g_strdup_printf("\n%s", text);
  gboolean found = strstr(padded, needle) != NULL;
  g_free(needle);
  g_free(padded);
  return found;
}

static void check_info(void) {
  gchar *doc1 = golden_path("doc_1d.safetensors");
  Run r = RUN("info", doc1);
  const char *lines[] = {"dimensionality: 1d (ConvTranspose1d)",
                         "in_channels: 16",
                         "out_channels: 33",
                         "groups: 1",
                         "kernel: 3",
                         "stride: 2",
                         "padding: 1",
                         "output_padding: 0",
                         "dilation: 1",
                         "bias: yes",
                         "latency: 1 output steps, 1 input steps"};
  gboolean all = r.exit_code == 0 && r.err[0] == '\0';
  for (gsize i = 0; i < G_N_ELEMENTS(lines); i++)
    if (!has_line(r.out, lines[i])) {
      tap_diag("missing line '%s'", lines[i]);
      all = FALSE;
    }
  tap_ok(all, "info doc_1d: every field, 'latency: 1 output steps, 1 input steps'");
  if (!all)
    tap_diag("stdout: %s", r.out);
  run_clear(&r);

  /* D > p: the end crop reaches past the kernel (k7 s4 p5: D = 7). */
  gchar *crop = golden_path("stride4_crop_1d.safetensors");
  r = RUN("info", crop);
  tap_ok(r.exit_code == 0 && has_line(r.out, "latency: 7 output steps, 2 input steps"),
         "info stride4_crop_1d: latency 7 output steps, 2 input steps");
  run_clear(&r);
  /* Overrides are shown as apply would use them. */
  r = RUN("info", doc1, "--padding=0");
  tap_ok(r.exit_code == 0 && has_line(r.out, "padding: 0") &&
             has_line(r.out, "latency: 0 output steps, 0 input steps"),
         "info --padding=0: padding 0, latency 0");
  run_clear(&r);

  gchar *axes = golden_path("axes_3d.safetensors");
  r = RUN("info", axes);
  tap_ok(r.exit_code == 0 && has_line(r.out, "dimensionality: 3d (ConvTranspose3d)") &&
             has_line(r.out, "kernel: 3,3,5") && has_line(r.out, "stride: 1,2,2") &&
             has_line(r.out, "dilation: 1,2,1"),
         "info axes_3d: per-axis lists");
  run_clear(&r);

  gchar *prefix = golden_path("prefix_1d.safetensors");
  r = RUN("info", "--layer", "ups.0", prefix);
  tap_ok(r.exit_code == 0 && has_line(r.out, "layer: ups.0") &&
             strstr(r.out, "latency: "),
         "info --layer before MODEL");
  run_clear(&r);
  r = RUN("info", doc1, "--chunk", "4");
  tap_ok(r.exit_code == 2 && one_error_line(r.err), "info refuses --chunk (usage error)");
  run_clear(&r);

  r = RUN("--help");
  tap_ok(r.exit_code == 0 && strstr(r.out, "convtranspose apply MODEL INPUT OUTPUT"),
         "--help prints usage on stdout");
  tap_ok(strstr(r.out, "convtranspose --version") != NULL, "--help names --version");
  run_clear(&r);
  r = RUN("--version");
  tap_ok(r.exit_code == 0 && strcmp(r.out, "convtranspose " PROJECT_VERSION "\n") == 0 &&
             r.err[0] == '\0',
         "--version prints 'convtranspose " PROJECT_VERSION "': %s", r.out);
  run_clear(&r);
  r = RUN("apply", "--help");
  tap_ok(r.exit_code == 0 && strstr(r.out, "Usage:"), "apply --help prints usage");
  run_clear(&r);
  r = run_argv((const char *const[]){NULL});
  tap_ok(r.exit_code == 2 && strstr(r.err, "Usage:") && r.out[0] == '\0',
         "no arguments: usage on stderr, exit 2");
  run_clear(&r);
  g_free(doc1);
  g_free(crop);
  g_free(axes);
  g_free(prefix);
}

/* Load warnings (an unknown metadata key) go to stderr, one line each, for
 * info and apply alike, and the command goes on. */
static void check_load_warnings(void) {
  const float w[2] = {1, 2}, x[5] = {1, 2, 3, 4, 5};
  const int64_t k2 = 2;
  gchar *model = tmp_path("warn.safetensors"), *in = tmp_path("warn.in.npy"),
        *out = tmp_path("warn.out.npy");
  const gint64 shape[2] = {1, 5};
  gboolean written = st_write_layer(model, 1, 1, 1, &k2, w, 1, NULL,
                                    "\"strides\":\"2\",\"format\":\"pt\"") &&
                     ct_npy_save_f32(in, shape, 2, x, NULL);
  gchar *want =
      g_strdup_printf("convtranspose: warning: %s: ignoring metadata key "
                      "\"strides\" (did you mean \"stride\"?): the known keys "
                      "are stride, padding, output_padding, dilation and groups\n",
                      model);
  Run r = RUN("info", model);
  tap_ok(written && r.exit_code == 0 && strcmp(r.err, want) == 0 &&
             has_line(r.out, "stride: 1"),
         "info: an unknown metadata key is one warning line on stderr, and ignored");
  if (strcmp(r.err, want) != 0)
    tap_diag("stderr: %s", r.err);
  run_clear(&r);
  r = RUN("apply", model, in, out);
  Array a = load_array(out);
  tap_ok(r.exit_code == 0 && g_str_has_prefix(r.err, want) && a.ok && a.npy.count == 6,
         "apply: the same warning, then the output (stride 1: 6 outputs)");
  array_clear(&a);
  run_clear(&r);
  g_unlink(model);
  g_unlink(in);
  g_unlink(out);
  g_free(want);
  g_free(model);
  g_free(in);
  g_free(out);
}

/* ---- errors ------------------------------------------------------------- */

/* Runs the CLI expecting failure with `code` (or any non-zero for -1):
 * one line on stderr, and OUTPUT (args' "@OUT") neither created nor, when
 * it existed before, modified; no temporary left beside it. */
static void expect_failure(const char *what, int code, const char *out_path,
                           const char *const *args) {
  for (int pre = 0; pre < 2; pre++) {
    static const char sentinel[] = "pre-existing output, must survive\n";
    g_unlink(out_path);
    /* Where OUTPUT cannot exist (a missing directory) only the first pass. */
    if (pre && !g_file_set_contents(out_path, sentinel, -1, NULL))
      break;
    Run r = run_argv(args);
    gchar *dir = g_path_get_dirname(out_path), *base = g_path_get_basename(out_path);
    gchar *temp_prefix = g_strdup_printf(".%s.", base);
    gchar *contents = NULL;
    gboolean out_ok;
    if (pre)
      out_ok = g_file_get_contents(out_path, &contents, NULL, NULL) &&
               strcmp(contents, sentinel) == 0;
    else
      out_ok = !file_exists(out_path);
    const int leftovers = count_prefixed(dir, temp_prefix);
    gboolean good = (code < 0 ? r.exit_code > 0 : r.exit_code == code) &&
                    one_error_line(r.err) && out_ok && leftovers == 0;
    gchar *err_line = g_strchomp(g_strdup(r.err));
    tap_ok(good, "%s%s: exit %d, \"%s\"%s%s", what, pre ? " (OUTPUT exists)" : "",
           r.exit_code, err_line, out_ok ? "" : ", OUTPUT touched",
           leftovers ? ", temporary left behind" : "");
    g_free(err_line);
    g_free(contents);
    g_free(temp_prefix);
    g_free(dir);
    g_free(base);
    run_clear(&r);
    g_unlink(out_path);
  }
}

#define FAILS(what, code, out, ...)                                                      \
  expect_failure(what, code, out, (const char *const[]){__VA_ARGS__, NULL})

/* A .npy with a hand-written header dict and n float32 zeros of data. */
static void write_raw_npy(const char *path, const char *dict, gsize data_bytes) {
  GByteArray *b = g_byte_array_new();
  const gsize len = strlen(dict);
  const guint8 head[10] = {0x93, 'N', 'U', 'M',         'P',
                           'Y',  1,   0,   (guint8)len, (guint8)(len >> 8)};
  g_byte_array_append(b, head, 10);
  g_byte_array_append(b, (const guint8 *)dict, (guint)len);
  for (gsize i = 0; i < data_bytes; i++)
    g_byte_array_append(b, (const guint8 *)"\0", 1);
  g_file_set_contents(path, (const gchar *)b->data, b->len, NULL);
  g_byte_array_unref(b);
}

static void check_errors(void) {
  gchar *model = golden_path("doc_1d.safetensors");   /* 16 -> 33, k3 s2 p1 */
  gchar *model2d = golden_path("doc_2d.safetensors"); /* 2d */
  gchar *crop = golden_path("crop_to_one_1d.safetensors");
  gchar *good_in = golden_path("doc_1d.in.npy"); /* [2, 16, 50] */
  gchar *out = tmp_path("err.out.npy");
  gchar *p = NULL;

  /* The good invocation works (so each failure below is the one named). */
  Run r = RUN("apply", model, good_in, out);
  tap_ok(r.exit_code == 0 && file_exists(out) && r.err[0] == '\0' &&
             g_str_has_prefix(r.out, "applied 1d layer 16->33 (stride 2) to "),
         "control: the valid apply succeeds");
  run_clear(&r);
  g_unlink(out);

  gchar *missing = tmp_path("no-such-model.safetensors");
  FAILS("missing model", 1, out, "apply", missing, good_in, out);
  g_free(missing);
  gchar *bad_model = tmp_path("bad.safetensors");
  st_write_raw(bad_model, G_MAXINT64, "{}", 2, NULL, 0);
  FAILS("malformed model (header length past the end)", 1, out, "apply", bad_model,
        good_in, out);
  st_write_raw(bad_model, 2, "[]", 2, NULL, 0);
  FAILS("malformed model (header not an object)", 1, out, "apply", bad_model, good_in,
        out);
  FAILS("--layer naming no tensor", 1, out, "apply", model, good_in, out, "--layer",
        "nope");

  gchar *missing_in = tmp_path("no-such-input.npy");
  FAILS("missing .npy input", 1, out, "apply", model, missing_in, out);
  g_free(missing_in);
  gchar *missing_wav = tmp_path("no-such-input.wav");
  FAILS("missing audio input", 1, out, "apply", model, missing_wav, out);
  g_free(missing_wav);

  gchar *in = tmp_path("err.in.npy");
  const char *hd = "{'descr': '<f4', 'fortran_order': False, 'shape': (16, 4), }";
  write_raw_npy(in, hd, 64 * 4);
  r = RUN("apply", model, in, out);
  tap_ok(r.exit_code == 0, "control: a hand-written [16, 4] input works");
  run_clear(&r);
  g_file_set_contents(in, "PK\x03\x04 this is a zip file", -1, NULL);
  FAILS("npy: bad magic", 1, out, "apply", model, in, out);
  write_raw_npy(in, hd, 64 * 4 - 3);
  FAILS("npy: truncated data", 1, out, "apply", model, in, out);
  g_file_set_contents(in, "\x93NUMPY\x01\x00\x40\x00{'descr'", 18, NULL);
  FAILS("npy: truncated header", 1, out, "apply", model, in, out);
  write_raw_npy(in, "{'descr': '>f4', 'fortran_order': False, 'shape': (16, 4), }", 256);
  FAILS("npy: big-endian", 1, out, "apply", model, in, out);
  write_raw_npy(in, "{'descr': '<i4', 'fortran_order': False, 'shape': (16, 4), }", 256);
  FAILS("npy: int32 dtype", 1, out, "apply", model, in, out);
  write_raw_npy(in, "{'descr': '<f4', 'fortran_order': True, 'shape': (16, 4), }", 256);
  FAILS("npy: Fortran order", 1, out, "apply", model, in, out);
  g_file_set_contents(in, "", 0, NULL);
  FAILS("npy: empty file", 1, out, "apply", model, in, out);

  write_raw_npy(in, "{'descr': '<f4', 'fortran_order': False, 'shape': (15, 4), }", 240);
  FAILS("wrong channel count (15, layer takes 16)", 1, out, "apply", model, in, out);
  write_raw_npy(in, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 16, 4), }",
                1024);
  FAILS("wrong ndim (4 for a 1d layer)", 1, out, "apply", model, in, out);
  write_raw_npy(in, "{'descr': '<f4', 'fortran_order': False, 'shape': (64,), }", 256);
  FAILS("wrong ndim (1 for a 1d layer)", 1, out, "apply", model, in, out);
  write_raw_npy(in, "{'descr': '<f4', 'fortran_order': False, 'shape': (16, 0), }", 0);
  FAILS("empty signal (length 0)", 1, out, "apply", model, in, out);

  /* crop_to_one_1d: k7 s4 p5, so L = 1 gives L_out = -3. */
  gchar *crop_in = golden_path("crop_to_one_1d.in.npy");
  Array ci = load_array(crop_in);
  if (ci.ok) {
    gint64 shape[CT_NPY_MAX_DIMS];
    memcpy(shape, ci.npy.shape, sizeof shape);
    shape[ci.npy.ndim - 1] = 1;
    ct_npy_save_f32(in, shape, ci.npy.ndim, ci.data, NULL);
  }
  array_clear(&ci);
  FAILS("input too short for the layer", 1, out, "apply", crop, in, out);
  r = RUN("apply", crop, in, out);
  tap_ok(strstr(r.err, "too short") != NULL, "the too-short message says so: %s", r.err);
  run_clear(&r);
  g_free(crop_in);

  /* Unwritable destinations (root can write anywhere, so also a missing
   * directory and a path through a regular file). */
  gchar *nodir = tmp_path("no-such-dir/out.npy");
  FAILS("output directory missing", 1, nodir, "apply", model, good_in, nodir);
  g_free(nodir);
  gchar *file_dir = tmp_path("plain-file");
  g_file_set_contents(file_dir, "x", 1, NULL);
  gchar *through_file = g_build_filename(file_dir, "out.npy", NULL);
  r = RUN("apply", model, good_in, through_file);
  tap_ok(r.exit_code == 1 && one_error_line(r.err), "output under a regular file: %s",
         r.err);
  run_clear(&r);
  g_free(through_file);
  g_unlink(file_dir);
  g_free(file_dir);
  gchar *ro_dir = tmp_path("read-only.npy");
  g_mkdir(ro_dir, 0755);
  gchar *ro_out = g_build_filename(ro_dir, "out.npy", NULL);
  if (geteuid() != 0) {
    g_chmod(ro_dir, 0555);
    r = RUN("apply", model, good_in, ro_out);
    tap_ok(r.exit_code == 1 && one_error_line(r.err) && !file_exists(ro_out),
           "read-only output directory: %s", r.err);
    run_clear(&r);
    g_chmod(ro_dir, 0755);
  } else {
    tap_ok(TRUE, "read-only output directory: # SKIP running as root");
  }
  g_free(ro_out);
  /* OUTPUT naming a directory: refused, directory untouched. */
  r = RUN("apply", model, good_in, ro_dir);
  tap_ok(r.exit_code == 1 && one_error_line(r.err) &&
             g_file_test(ro_dir, G_FILE_TEST_IS_DIR) &&
             count_prefixed(tmp_dir, ".read-only.npy.") == 0,
         "OUTPUT is a directory: %s", r.err);
  run_clear(&r);
  g_rmdir(ro_dir);
  g_free(ro_dir);

  FAILS("--chunk 0", 2, out, "apply", model, good_in, out, "--chunk", "0");
  FAILS("--chunk abc", 2, out, "apply", model, good_in, out, "--chunk", "abc");
  FAILS("--chunk=-3", 2, out, "apply", model, good_in, out, "--chunk=-3");
  FAILS("--chunk without a value", 2, out, "apply", model, good_in, out, "--chunk");
  FAILS("--threads -1", 2, out, "apply", model, good_in, out, "--threads", "-1");
  FAILS("--stride 0", 2, out, "apply", model, good_in, out, "--stride", "0");
  FAILS("--stride x", 2, out, "apply", model, good_in, out, "--stride", "x");
  FAILS("--dilation 0", 2, out, "apply", model, good_in, out, "--dilation=0");
  FAILS("--groups 0", 2, out, "apply", model, good_in, out, "--groups", "0");
  FAILS("--padding -1", 2, out, "apply", model, good_in, out, "--padding", "-1");
  FAILS("--stride 1,2 for a 1d layer", -1, out, "apply", model, good_in, out, "--stride",
        "1,2");
  FAILS("--groups 5 (16 channels not divisible)", 1, out, "apply", model, good_in, out,
        "--groups", "5");
  FAILS("--output-padding 2 >= stride", 1, out, "apply", model, good_in, out,
        "--output-padding", "2");
  FAILS("unknown option", 2, out, "apply", model, good_in, out, "--frobnicate");
  FAILS("unknown short option", 2, out, "apply", model, good_in, out, "-x");
  FAILS("too few arguments", 2, out, "apply", model, out);
  FAILS("too many arguments", 2, out, "apply", model, good_in, out, "extra");
  FAILS("unknown command", 2, out, "transmogrify", model, good_in, out);
  FAILS("option before the command", 2, out, "--chunk", "4", "apply", model, good_in,
        out);
  p = tmp_path("err.wav");
  FAILS(".npy input, audio OUTPUT", 2, p, "apply", model, good_in, p);

  /* Audio: a 2d layer, wrong channels, garbage. */
  gchar *wav = tmp_path("err-in.wav");
  SF_INFO info = {
      .samplerate = 8000, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
  SNDFILE *sf = sf_open(wav, SFM_WRITE, &info);
  float frames[2 * 64] = {0};
  if (sf) {
    sf_writef_float(sf, frames, 64);
    sf_close(sf);
  }
  FAILS("audio input for a 2d layer", 1, p, "apply", model2d, wav, p);
  FAILS("audio input with 2 channels for a 16-channel layer", 1, p, "apply", model, wav,
        p);
  gchar *junk = tmp_path("junk.wav");
  g_file_set_contents(junk, "RIFF....WAVEjunkjunkjunk", -1, NULL);
  FAILS("malformed audio input", 1, p, "apply", model, junk, p);
  g_unlink(junk);
  g_free(junk);
  g_unlink(wav);
  g_free(wav);
  g_free(p);

  /* bench: contract lines and JSON; unknown cases and options refused. */
  r = RUN("bench", "--case", "K1_audio_fir2x", "--threads", "1");
  const gboolean bench_lines =
      r.exit_code == 0 && g_regex_match_simple("^K1_audio_fir2x mode=oneshot ms=[0-9.]+ "
                                               "gflops=[0-9.]+\nK1_audio_fir2x "
                                               "mode=stream ms=[0-9.]+ gflops=[0-9.]+\n$",
                                               r.out, 0, 0);
  tap_ok(bench_lines, "bench: one line per mode, as the contract writes them");
  if (!bench_lines) { /* its output as TAP comments */
    gchar **lines = g_strsplit(r.out, "\n", -1);
    for (gchar **line = lines; *line; line++)
      g_print("# %s\n", *line);
    g_strfreev(lines);
  }
  run_clear(&r);
  r = RUN("bench", "--case=K1_audio_fir2x", "--json");
  JsonParser *parser = json_parser_new();
  gboolean parsed =
      r.exit_code == 0 && json_parser_load_from_data(parser, r.out, -1, NULL);
  JsonNode *root = parsed ? json_parser_get_root(parser) : NULL;
  JsonArray *rows =
      root && JSON_NODE_HOLDS_ARRAY(root) ? json_node_get_array(root) : NULL;
  gboolean keys = rows && json_array_get_length(rows) == 2;
  for (guint i = 0; keys && i < 2; i++) {
    JsonObject *o = json_array_get_object_element(rows, i);
    keys = o && json_object_has_member(o, "name") && json_object_has_member(o, "mode") &&
           json_object_has_member(o, "ms") && json_object_has_member(o, "gflops");
  }
  tap_ok(keys, "bench --json: an array of {name, mode, ms, gflops}");
  g_object_unref(parser);
  run_clear(&r);
  r = RUN("bench", "--case", "K9_nope");
  tap_ok(r.exit_code != 0 && r.out[0] == '\0' && strstr(r.err, "unknown case K9_nope") &&
             one_error_line(r.err),
         "bench: unknown case refused in one line");
  run_clear(&r);
  r = RUN("bench", "--frobnicate");
  tap_ok(r.exit_code == 2 && one_error_line(r.err), "bench: unknown option, exit 2");
  run_clear(&r);

  g_unlink(in);
  g_free(in);
  g_unlink(bad_model);
  g_free(bad_model);
  g_free(out);
  g_free(good_in);
  g_free(crop);
  g_free(model2d);
  g_free(model);
}

/* ---- OUTPUT that is not a regular file ------------------------------------ */

/* A 2->2 1d layer, k4 s2 p1, for the audio cases outside check_audio. */
static gchar *write_stereo_model(const char *name) {
  static float weight[2 * 2 * 4], bias[2] = {0.01f, -0.02f};
  for (int i = 0; i < 16; i++)
    weight[i] = 0.25f * (float)((i * 7) % 5 - 2);
  const int64_t k4 = 4;
  gchar *path = tmp_path(name);
  st_write_layer(path, 1, 2, 2, &k4, weight, 2, bias,
                 "\"stride\":\"2\",\"padding\":\"1\"");
  return path;
}

/* A random [n, 16, len] input for doc_1d. */
static gchar *write_doc_input(const char *name, gint64 n, gint64 len) {
  const gint64 shape[3] = {n, 16, len};
  float *data = g_malloc(sizeof(float) * (gsize)(n * 16 * len));
  fill_random(data, n * 16 * len);
  gchar *path = tmp_path(name);
  ct_npy_save_f32(path, shape, 3, data, NULL);
  g_free(data);
  return path;
}

static gboolean says(const char *err, int errnum) {
  return strstr(err, g_strerror(errnum)) != NULL;
}

static gboolean link_reads(const char *link, const char *to) {
  gchar *got = g_file_read_link(link, NULL);
  gboolean same = got && strcmp(got, to) == 0;
  g_free(got);
  return same;
}

/* OUTPUT as /dev/full, through a symbolic link: the data must go into the
 * device, which is full. The link goes first: a CLI that renamed over it
 * would replace /dev/full itself, so that one is tried only if the link
 * survived. */
static void check_dev_full(const char *model, const char *in, const char *amodel,
                           const char *wav) {
  if (!is_kind("/dev/full", S_IFCHR, TRUE)) {
    tap_ok(TRUE, "/dev/full # SKIP no /dev/full here");
    return;
  }
  gboolean links_ok = TRUE;
  const char *names[] = {"full-link.npy", "full-link.wav"};
  for (int k = 0; k < 2; k++) {
    gchar *link = tmp_path(names[k]);
    symlink("/dev/full", link);
    Spawned r = SPAWN(NULL, "apply", k ? amodel : model, k ? wav : in, link);
    gboolean good = r.exit_code == 1 && one_error_line(r.err) && says(r.err, ENOSPC) &&
                    is_kind(link, S_IFLNK, FALSE) && link_reads(link, "/dev/full") &&
                    is_kind("/dev/full", S_IFCHR, FALSE);
    tap_ok(good, "OUTPUT a link to /dev/full (%s): exit %d, %s, \"%s\"",
           k ? "audio" : ".npy", r.exit_code,
           is_kind(link, S_IFLNK, FALSE) ? "link kept" : "link REPLACED by a file",
           g_strchomp(r.err));
    links_ok = links_ok && good;
    spawned_clear(&r);
    g_unlink(link);
    g_free(link);
  }
  for (int k = 0; k < 2; k++) {
    if (!links_ok) {
      tap_ok(FALSE, "OUTPUT /dev/full (%s): not tried, the CLI replaced a link to it",
             k ? "audio" : ".npy");
      continue;
    }
    Spawned r = SPAWN(NULL, "apply", k ? amodel : model, k ? wav : in, "/dev/full");
    const gboolean good = r.exit_code == 1 && one_error_line(r.err) &&
                          says(r.err, ENOSPC) && is_kind("/dev/full", S_IFCHR, FALSE);
    tap_ok(good, "OUTPUT /dev/full (%s): exit %d, still a device, \"%s\"",
           k ? "audio" : ".npy", r.exit_code, g_strchomp(r.err));
    spawned_clear(&r);
  }
}

static void check_output_kinds(void) {
  gchar *model = golden_path("doc_1d.safetensors"), *in = golden_path("doc_1d.in.npy");
  gchar *amodel = write_stereo_model("kinds.safetensors");
  gchar *wav = tmp_path("kinds-in.wav");
  float *planar = g_malloc(sizeof(float) * 2 * AUDIO_FRAMES);
  write_stereo_wav(wav, planar);
  g_free(planar);

  /* What a regular OUTPUT receives, to compare every other kind with. */
  gchar *ref_npy_path = tmp_path("kinds-ref.npy"),
        *ref_wav_path = tmp_path("kinds-ref.wav");
  Run r0 = RUN("apply", model, in, ref_npy_path);
  Run r1 = RUN("apply", amodel, wav, ref_wav_path);
  GByteArray *ref_npy = file_bytes(ref_npy_path), *ref_wav = file_bytes(ref_wav_path);
  tap_ok(r0.exit_code == 0 && r1.exit_code == 0 && ref_npy && ref_wav,
         "control: regular .npy and WAV outputs written");
  run_clear(&r0);
  run_clear(&r1);

  check_dev_full(model, in, amodel, wav);

  /* A FIFO: read back while the CLI writes, still a FIFO afterwards. WAV
   * needs seeking, so it takes the other path (a spool). */
  const char *fifo_names[] = {"out-fifo.npy", "out-fifo.wav"};
  for (int k = 0; k < 2; k++) {
    gchar *fifo = tmp_path(fifo_names[k]);
    mkfifo(fifo, 0600);
    SpawnOpts opts = {.fifo = fifo};
    Spawned r = SPAWN(&opts, "apply", k ? amodel : model, k ? wav : in, fifo);
    tap_ok(r.exit_code == 0 && same_bytes(r.fifo, k ? ref_wav : ref_npy) &&
               is_kind(fifo, S_IFIFO, FALSE),
           "OUTPUT a FIFO (%s): %u bytes read from it, equal to the regular file's, "
           "%s%s%s",
           k ? "WAV" : ".npy", r.fifo->len,
           is_kind(fifo, S_IFIFO, FALSE) ? "still a FIFO" : "REPLACED by a file",
           r.exit_code ? " -- " : "", r.err);
    spawned_clear(&r);
    g_unlink(fifo);
    g_free(fifo);
  }

  /* "-": standard output (a pipe), the summary line on stderr instead, and
   * no file named "-" made in the working directory. */
  gchar *dash = tmp_path("-");
  for (int k = 0; k < 2; k++) {
    SpawnOpts opts = {.cwd = tmp_dir};
    Spawned r = SPAWN(&opts, "apply", k ? amodel : model, k ? wav : in, "-");
    tap_ok(r.exit_code == 0 && same_bytes(r.out, k ? ref_wav : ref_npy) &&
               g_str_has_prefix(r.err, "applied ") && !file_exists(dash),
           "OUTPUT - (%s): %u bytes on stdout, equal to the regular file's, summary on "
           "stderr%s",
           k ? "WAV" : ".npy", r.out->len, file_exists(dash) ? ", made a file '-'" : "");
    spawned_clear(&r);
    g_unlink(dash);
  }
  g_free(dash);

  /* Symbolic links: the target gets the output, the link stays a link;
   * the temporary file lives beside the target (no leftovers in either
   * directory). A chain of links, and dangling ones: the target is made. */
  gchar *sub = tmp_path("linked");
  g_mkdir(sub, 0755);
  gchar *target = g_build_filename(sub, "target.npy", NULL);
  gchar *link = tmp_path("link.npy"), *chain = tmp_path("chain.npy");
  g_file_set_contents(target, "old contents", -1, NULL);
  symlink("linked/target.npy", link);
  symlink("link.npy", chain);
  const char *via[] = {link, chain};
  for (int k = 0; k < 2; k++) {
    Run r = RUN("apply", model, in, via[k]);
    GByteArray *got = file_bytes(target);
    tap_ok(r.exit_code == 0 && is_kind(link, S_IFLNK, FALSE) &&
               is_kind(chain, S_IFLNK, FALSE) && link_reads(link, "linked/target.npy") &&
               same_bytes(got, ref_npy) && count_prefixed(tmp_dir, ".") == 0 &&
               count_prefixed(sub, ".") == 0,
           "OUTPUT a %s: links kept, the target holds the output, no temporaries%s%s",
           k ? "chain of two links" : "symbolic link", r.exit_code ? " -- " : "", r.err);
    if (got)
      g_byte_array_unref(got);
    run_clear(&r);
  }
  const char *dangling[][3] = {{"dangle.npy", "linked/new.npy", "new.npy"},
                               {"dangle.wav", "linked/new.wav", "new.wav"}};
  for (int k = 0; k < 2; k++) {
    gchar *d = tmp_path(dangling[k][0]);
    gchar *made = g_build_filename(sub, dangling[k][2], NULL);
    symlink(dangling[k][1], d);
    Run r = RUN("apply", k ? amodel : model, k ? wav : in, d);
    GByteArray *got = file_bytes(made);
    tap_ok(r.exit_code == 0 && is_kind(d, S_IFLNK, FALSE) &&
               link_reads(d, dangling[k][1]) && same_bytes(got, k ? ref_wav : ref_npy) &&
               count_prefixed(sub, ".") == 0,
           "OUTPUT a dangling link (%s): its target is made, the link kept%s%s",
           k ? "WAV" : ".npy", r.exit_code ? " -- " : "", r.err);
    if (got)
      g_byte_array_unref(got);
    run_clear(&r);
    g_unlink(made);
    g_unlink(d);
    g_free(made);
    g_free(d);
  }

  /* A write that fails part-way (past RLIMIT_FSIZE: EFBIG) leaves no
   * partial regular file: none at OUTPUT or a link's target, an old file
   * untouched, no temporary in either directory. */
  static const char sentinel[] = "pre-existing output, must survive\n";
  gchar *ptarget = g_build_filename(sub, "ptarget.npy", NULL);
  gchar *plink = tmp_path("plink.npy"), *pdangle = tmp_path("pdangle.wav");
  gchar *pnew = g_build_filename(sub, "pnew.wav", NULL);
  gchar *pnpy = tmp_path("partial.npy"), *pwav = tmp_path("partial.wav");
  symlink("linked/ptarget.npy", plink);
  symlink("linked/pnew.wav", pdangle);
  const struct {
    const char *what, *out, *check; /* check: the file that must be as before */
    gboolean audio, existed;
  } partial[] = {
      {"new .npy file", pnpy, pnpy, FALSE, FALSE},
      {"existing .npy file", pnpy, pnpy, FALSE, TRUE},
      {"new WAV file", pwav, pwav, TRUE, FALSE},
      {"link to an existing file", plink, ptarget, FALSE, TRUE},
      {"dangling link (WAV)", pdangle, pnew, TRUE, FALSE},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(partial); i++) {
    g_unlink(partial[i].check);
    if (partial[i].existed)
      g_file_set_contents(partial[i].check, sentinel, -1, NULL);
    SpawnOpts opts = {.fsize_limit = 4096};
    Spawned r = SPAWN(&opts, "apply", partial[i].audio ? amodel : model,
                      partial[i].audio ? wav : in, partial[i].out);
    gchar *contents = NULL;
    gboolean kept = partial[i].existed
                        ? g_file_get_contents(partial[i].check, &contents, NULL, NULL) &&
                              strcmp(contents, sentinel) == 0
                        : !file_exists(partial[i].check);
    const gboolean good =
        r.exit_code == 1 && one_error_line(r.err) && says(r.err, EFBIG) && kept &&
        is_kind(plink, S_IFLNK, FALSE) && is_kind(pdangle, S_IFLNK, FALSE) &&
        count_prefixed(tmp_dir, ".") == 0 && count_prefixed(sub, ".") == 0;
    tap_ok(good, "write failing part-way, %s: exit %d, nothing partial left, \"%s\"",
           partial[i].what, r.exit_code, g_strchomp(r.err));
    g_free(contents);
    spawned_clear(&r);
    g_unlink(partial[i].check);
  }
  /* A FIFO whose reader goes away (EPIPE), with more output than the pipe
   * holds: a one-line error, and still a FIFO. */
  gchar *big = write_doc_input("kinds-big.npy", 20, 200); /* 1 MB of output */
  gchar *pfifo = tmp_path("pfifo.npy");
  mkfifo(pfifo, 0600);
  SpawnOpts early = {.fifo = pfifo, .fifo_close_after = 1};
  Spawned rp = SPAWN(&early, "apply", model, big, pfifo);
  const gboolean epipe = rp.exit_code == 1 && one_error_line(rp.err) &&
                         says(rp.err, EPIPE) && is_kind(pfifo, S_IFIFO, FALSE);
  tap_ok(epipe, "OUTPUT a FIFO whose reader leaves: exit %d, %s, \"%s\"", rp.exit_code,
         is_kind(pfifo, S_IFIFO, FALSE) ? "still a FIFO" : "REPLACED by a file",
         g_strchomp(rp.err));
  spawned_clear(&rp);
  const gchar *const doomed[] = {pfifo,  big,  plink,   pdangle,      pnpy,
                                 pwav,   pnew, ptarget, link,         chain,
                                 target, wav,  amodel,  ref_npy_path, ref_wav_path};
  for (gsize i = 0; i < G_N_ELEMENTS(doomed); i++)
    g_unlink(doomed[i]);
  g_rmdir(sub);
  g_free(pfifo);
  g_free(big);
  g_free(plink);
  g_free(pdangle);
  g_free(pnpy);
  g_free(pwav);
  g_free(pnew);
  g_free(ptarget);
  g_free(link);
  g_free(chain);
  g_free(target);
  g_free(sub);
  g_byte_array_unref(ref_npy);
  g_byte_array_unref(ref_wav);
  g_free(ref_npy_path);
  g_free(ref_wav_path);
  g_free(wav);
  g_free(amodel);
  g_free(model);
  g_free(in);
}

/* Writes bytes into a FIFO once a reader has opened it (within a minute). */
typedef struct {
  const char *path;
  GByteArray *bytes;
} FifoFeed;

static gpointer feed_fifo(gpointer data) {
  const FifoFeed *feed = data;
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 6000; tries++) {
    fd = open(feed->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
      g_usleep(10000); /* ENXIO: no reader yet */
  }
  if (fd >= 0) {
    g_unix_set_fd_nonblocking(fd, FALSE, NULL);
    gsize done = 0;
    while (done < feed->bytes->len) {
      ssize_t n = write(fd, feed->bytes->data + done, feed->bytes->len - done);
      if (n <= 0)
        break;
      done += (gsize)n;
    }
    close(fd);
  }
  return NULL;
}

/* ---- audio in blocks ------------------------------------------------------- */

/* A 1->1 1d layer, k4 s2 p1 (L_out = 2L). */
static gchar *write_mono_model(const char *name) {
  static const float weight[4] = {0.25f, -0.5f, 0.75f, 0.125f}, bias[1] = {0.01f};
  const int64_t k4 = 4;
  gchar *path = tmp_path(name);
  st_write_layer(path, 1, 1, 1, &k4, weight, 1, bias,
                 "\"stride\":\"2\",\"padding\":\"1\"");
  return path;
}

/* frames of 16-bit mono at 8 kHz, written a block at a time. */
static gboolean write_mono_wav(const char *path, gint64 frames, int format) {
  SF_INFO info = {.samplerate = 8000, .channels = 1, .format = format};
  SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
  if (!sf)
    return FALSE;
  float block[4096];
  gboolean ok = TRUE;
  for (gint64 done = 0; ok && done < frames;) {
    const gint64 n = MIN(frames - done, 4096);
    for (gint64 i = 0; i < n; i++)
      block[i] = 0.5f * sinf((float)(done + i) * 0.05f) + 0.1f * rng_float();
    ok = sf_writef_float(sf, block, n) == n;
    done += n;
  }
  return sf_close(sf) == 0 && ok;
}

static gboolean library_writes(int format) {
  SF_INFO probe = {.samplerate = 16000, .channels = 1, .format = format};
  int count = 0;
  gboolean listed = FALSE;
  sf_command(NULL, SFC_GET_FORMAT_MAJOR_COUNT, &count, sizeof count);
  for (int i = 0; i < count; i++) {
    SF_FORMAT_INFO fi = {.format = i};
    sf_command(NULL, SFC_GET_FORMAT_MAJOR, &fi, sizeof fi);
    listed = listed || fi.format == (format & SF_FORMAT_TYPEMASK);
  }
  return listed && sf_format_check(&probe);
}

/* libsndfile 1.1's MPEG and Opus values, for older headers. */
enum { FORMAT_MPEG = 0x230000, FORMAT_MPEG_LAYER_III = 0x0082, FORMAT_OPUS = 0x0064 };

/* Peak memory does not grow with the file: 20 minutes and 1 minute of
 * 8 kHz mono (in 16-bit WAV, out 32-bit float at 16 kHz). Holding the
 * signal in memory, as the CLI once did, costs the long file 110 MB more. */
static void check_bounded_memory(const char *model) {
  const gint64 minutes[2] = {1, 20};
  long rss[2] = {0, 0};
  gboolean ran = TRUE;
  for (int k = 0; k < 2; k++) {
    gchar *in = tmp_path("long.wav"), *out = tmp_path("long-out.wav");
    const gint64 frames = minutes[k] * 60 * 8000;
    gboolean wrote = write_mono_wav(in, frames, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    Spawned r = SPAWN(NULL, "apply", model, in, out);
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(out, SFM_READ, &info);
    if (sf)
      sf_close(sf);
    gboolean good = wrote && r.exit_code == 0 && sf && info.frames == 2 * frames;
    tap_ok(good,
           "%" G_GINT64_FORMAT " min of audio: %lld frames out, peak RSS %ld KB%s%s",
           minutes[k], (long long)info.frames, r.max_rss_kb, r.exit_code ? " -- " : "",
           r.err);
    ran = ran && good;
    rss[k] = r.max_rss_kb;
    spawned_clear(&r);
    g_unlink(in);
    g_unlink(out);
    g_free(in);
    g_free(out);
  }
  tap_ok(ran && rss[1] < rss[0] + 16 * 1024,
         "peak RSS independent of length: 20 min %ld KB, 1 min %ld KB (bound: +16 MB)",
         rss[1], rss[0]);
}

static void check_audio_stream(void) {
  gchar *model = write_mono_model("mono.safetensors");
  check_bounded_memory(model);

  /* Every --chunk gives the same bytes, whatever the format, and the
   * samples of the one-shot forward. */
  gchar *smodel = write_stereo_model("blocks.safetensors");
  gchar *wav = tmp_path("blocks-in.wav");
  float *input = g_malloc(sizeof(float) * 2 * AUDIO_FRAMES);
  write_stereo_wav(wav, input);
  ct_layer *layer = load_model(smodel, NULL);
  const gint64 in_len = AUDIO_FRAMES, out_len = 2 * AUDIO_FRAMES;
  float *expect = g_malloc(sizeof(float) * 2 * (gsize)out_len);
  tap_ok(layer && ct_forward(layer, &in_len, input, expect, NULL, 0) == CT_OK,
         "one-shot forward of the block test's input");
  const char *outs[] = {"blocks.wav", "blocks.flac", "blocks.npy"};
  const char *chunks[] = {NULL, "1", "7", "4096", "4097", "100000"};
  GByteArray *first[3] = {NULL, NULL, NULL};
  for (gsize o = 0; o < G_N_ELEMENTS(outs); o++) {
    gchar *out = tmp_path(outs[o]);
    GString *bad = g_string_new(NULL);
    for (gsize c = 0; c < G_N_ELEMENTS(chunks); c++) {
      Run r = chunks[c] ? RUN("apply", smodel, wav, out, "--chunk", chunks[c])
                        : RUN("apply", smodel, wav, out);
      GByteArray *got = r.exit_code == 0 ? file_bytes(out) : NULL;
      if (c == 0)
        first[o] = got;
      else if (!same_bytes(got, first[o]))
        g_string_append_printf(bad, " --chunk %s", chunks[c]);
      if (c > 0 && got)
        g_byte_array_unref(got);
      run_clear(&r);
    }
    tap_ok(first[o] && bad->len == 0,
           "%s: --chunk 1, 7, 4096, 4097, 100000 byte-identical to the default%s%s",
           outs[o], bad->len ? ": differ:" : "", bad->str);
    g_string_free(bad, TRUE);
    g_unlink(out);
    g_free(out);
  }
  gchar *wav_out = tmp_path("blocks.wav");
  g_file_set_contents(wav_out, first[0] ? (const gchar *)first[0]->data : "",
                      first[0] ? first[0]->len : 0, NULL);
  SF_INFO info;
  float *got = read_audio(wav_out, &info);
  tap_ok(got && info.frames == out_len &&
             memcmp(got, expect, sizeof(float) * 2 * (gsize)out_len) == 0,
         "WAV output bitwise equal to the one-shot forward");
  g_free(got);
  g_unlink(wav_out);
  g_free(wav_out);
  for (int o = 0; o < 3; o++)
    if (first[o])
      g_byte_array_unref(first[o]);

  /* A file shorter than its header says (a FLAC whose STREAMINFO claims
   * twice its samples) gives what the samples it holds give. */
  gchar *honest = tmp_path("short-honest.flac"), *liar = tmp_path("short-liar.flac");
  write_mono_wav(honest, 10000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  GByteArray *flac = file_bytes(honest);
  gboolean patched = flac && flac->len > 26 && memcmp(flac->data, "fLaC", 4) == 0;
  if (patched) { /* total samples: the low 32 of 36 bits at bytes 22..25 */
    const guint32 total = 20000;
    for (int i = 0; i < 4; i++)
      flac->data[22 + i] = (guint8)(total >> (24 - 8 * i));
    patched = g_file_set_contents(liar, (const gchar *)flac->data, flac->len, NULL);
  }
  SF_INFO liar_info = {0};
  SNDFILE *sf = patched ? sf_open(liar, SFM_READ, &liar_info) : NULL;
  if (sf)
    sf_close(sf);
  tap_ok(sf && liar_info.frames == 20000, "a FLAC declaring 20000 of its 10000 frames");
  for (int k = 0; k < 2; k++) {
    gchar *a = tmp_path(k ? "short-a.wav" : "short-a.npy");
    gchar *b = tmp_path(k ? "short-b.wav" : "short-b.npy");
    Run ra = RUN("apply", model, honest, a), rb = RUN("apply", model, liar, b);
    GByteArray *ga = file_bytes(a), *gb = file_bytes(b);
    tap_ok(ra.exit_code == 0 && rb.exit_code == 0 && same_bytes(ga, gb) &&
               strstr(rb.out, "1 x 10000 @ 8000 Hz -> 1 x 20000 @ 16000 Hz"),
           "short input, %s OUTPUT: the output of its 10000 frames%s%s",
           k ? "WAV" : ".npy", rb.exit_code ? " -- " : "", rb.err);
    if (ga)
      g_byte_array_unref(ga);
    if (gb)
      g_byte_array_unref(gb);
    run_clear(&ra);
    run_clear(&rb);
    g_unlink(a);
    g_unlink(b);
    g_free(a);
    g_free(b);
  }
  if (flac)
    g_byte_array_unref(flac);

  /* An INPUT that is a FIFO (no length, read once): the same output. */
  gchar *fifo_in = tmp_path("in-fifo.flac"), *from_fifo = tmp_path("from-fifo.npy");
  gchar *from_file = tmp_path("from-file.npy");
  mkfifo(fifo_in, 0600);
  GByteArray *in_bytes = file_bytes(honest);
  GThread *feeder = g_thread_new("feeder", feed_fifo, &(FifoFeed){fifo_in, in_bytes});
  Run rf = RUN("apply", model, fifo_in, from_fifo);
  g_thread_join(feeder);
  Run rr = RUN("apply", model, honest, from_file);
  GByteArray *gf = file_bytes(from_fifo), *gr = file_bytes(from_file);
  tap_ok(rf.exit_code == 0 && same_bytes(gf, gr), "INPUT a FIFO: the same output%s%s",
         rf.exit_code ? " -- " : "", rf.err);
  run_clear(&rf);
  run_clear(&rr);
  if (gf)
    g_byte_array_unref(gf);
  if (gr)
    g_byte_array_unref(gr);
  g_byte_array_unref(in_bytes);
  g_unlink(fifo_in);
  g_unlink(from_fifo);
  g_unlink(from_file);
  g_free(fifo_in);
  g_free(from_fifo);
  g_free(from_file);

  /* The extension's format, where libsndfile writes it. */
  gchar *mono_in = tmp_path("fmt-in.wav");
  write_mono_wav(mono_in, 8000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  static const struct {
    const char *name;
    int format;     /* what the file must be (major, and subtype if set) */
    gboolean exact; /* lossless: the one-shot's frames */
  } formats[] = {
      {"fmt.w64", SF_FORMAT_W64 | SF_FORMAT_FLOAT, TRUE},
      {"fmt.rf64", SF_FORMAT_RF64 | SF_FORMAT_FLOAT, TRUE},
      {"fmt", SF_FORMAT_WAV | SF_FORMAT_FLOAT, TRUE},
      {"fmt.WAV", SF_FORMAT_WAV | SF_FORMAT_FLOAT, TRUE},
      {"fmt.mp3", FORMAT_MPEG | FORMAT_MPEG_LAYER_III, FALSE},
      {"fmt.opus", SF_FORMAT_OGG | FORMAT_OPUS, FALSE},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(formats); i++) {
    if (!library_writes(formats[i].format)) {
      tap_ok(TRUE, "%s # SKIP this libsndfile cannot write it", formats[i].name);
      continue;
    }
    gchar *out = tmp_path(formats[i].name);
    Run r = RUN("apply", model, mono_in, out);
    SF_INFO fi = {0};
    SNDFILE *f = sf_open(out, SFM_READ, &fi);
    if (f)
      sf_close(f);
    const int mask = SF_FORMAT_TYPEMASK | SF_FORMAT_SUBMASK;
    tap_ok(r.exit_code == 0 && f && (fi.format & mask) == formats[i].format &&
               fi.samplerate == 16000 && fi.channels == 1 &&
               (!formats[i].exact || fi.frames == 16000),
           "%s written as format 0x%x (want 0x%x), %d Hz, %lld frames%s%s",
           formats[i].name, fi.format, formats[i].format, fi.samplerate,
           (long long)fi.frames, r.exit_code ? " -- " : "", r.err);
    run_clear(&r);
    g_unlink(out);
    g_free(out);
  }

  /* Refused before anything is computed, nothing left behind: an unknown
   * extension (the message lists the known ones), and an encoder's limit
   * (MP3 stops at 48 kHz; this layer makes 96 kHz of the 48 kHz input). */
  gchar *xyz = tmp_path("out.xyz");
  FAILS("unknown extension .xyz", 2, xyz, "apply", model, mono_in, xyz);
  Run rx = RUN("apply", model, mono_in, xyz);
  tap_ok(strstr(rx.err, ".wav") && strstr(rx.err, ".flac") && strstr(rx.err, ".npy"),
         "the message lists the extensions: %s", g_strchomp(rx.err));
  run_clear(&rx);
  gchar *missing = tmp_path("no-such-input.wav");
  rx = RUN("apply", model, missing, xyz);
  const gboolean first_refusal = rx.exit_code == 2 && strstr(rx.err, ".xyz");
  tap_ok(first_refusal, "the extension is refused before INPUT is read: %s",
         g_strchomp(rx.err));
  run_clear(&rx);
  g_free(missing);
  g_free(xyz);
  if (library_writes(FORMAT_MPEG | FORMAT_MPEG_LAYER_III)) {
    gchar *mp3 = tmp_path("out96k.mp3");
    FAILS("MP3 at 96 kHz", 1, mp3, "apply", smodel, wav, mp3);
    g_free(mp3);
  } else {
    tap_ok(TRUE, "MP3 at 96 kHz # SKIP this libsndfile writes no MP3");
  }

  /* A progress line on a terminal (and none elsewhere, see check_audio). */
  gchar *prog_out = tmp_path("progress.wav"), *prog_in = tmp_path("progress-in.wav");
  write_mono_wav(prog_in, 8000 * 60, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  SpawnOpts tty = {.stderr_tty = TRUE};
  Spawned rp = SPAWN(&tty, "apply", model, prog_in, prog_out);
  const gsize elen = strlen(rp.err);
  tap_ok(rp.exit_code == 0 && strstr(rp.err, "\r100% (60.0 of 60.0 s of audio)") &&
             elen > 1 && rp.err[elen - 1] == '\r' && rp.err[elen - 2] == ' ',
         "stderr a terminal: a progress line, erased at the end");
  spawned_clear(&rp);
  g_unlink(prog_in);
  g_unlink(prog_out);
  g_free(prog_in);
  g_free(prog_out);

  g_unlink(mono_in);
  g_free(mono_in);
  g_unlink(honest);
  g_unlink(liar);
  g_free(honest);
  g_free(liar);
  g_free(expect);
  ct_layer_free(layer);
  g_free(input);
  g_unlink(wav);
  g_free(wav);
  g_unlink(smodel);
  g_free(smodel);
  g_unlink(model);
  g_free(model);
}

/* Options anywhere, both spellings, and an output that replaces a file. */
static void check_option_syntax(void) {
  gchar *model = golden_path("override_2d.safetensors");
  gchar *in = golden_path("override_2d.in.npy");
  gchar *ref_path = golden_path("override_2d.out.npy");
  gchar *out = tmp_path("syntax.npy");
  g_file_set_contents(out, "old contents", -1, NULL);
  Run r = RUN("apply", "--stride=1,2", model, "--padding", "[1,0]", in, "--chunk=2", out);
  Array got = load_array(out), ref = load_array(ref_path);
  tap_ok(r.exit_code == 0 && got.ok && ref.ok && same_shape(&got.npy, &ref.npy),
         "options between positionals, --opt=value and [list] forms; OUTPUT replaced%s%s",
         r.exit_code ? " -- " : "", r.err);
  struct stat st;
  mode_t mask = umask(0);
  umask(mask);
  tap_ok(g_stat(out, &st) == 0 && (st.st_mode & 0777) == (0666 & ~mask),
         "OUTPUT has the mode a plain create gives (%o)", (unsigned)(st.st_mode & 0777));
  array_clear(&got);
  array_clear(&ref);
  run_clear(&r);
  g_unlink(out);
  g_free(out);
  g_free(ref_path);
  g_free(in);
  g_free(model);
}

/* info on an ONNX network: its interface and nodes, by content; the layer
 * options refused; a refusal is the reader's one line. */
static void check_info_network(void) {
  gchar *espcn = golden_path("networks/espcn.opset11.onnx");
  Run r = RUN("info", espcn);
  tap_ok(r.exit_code == 0 && strstr(r.out, "network: 2d, 7 nodes\n") &&
             strstr(r.out, "input: \"input\", 1 channels\n") &&
             strstr(r.out, "output: \"output\", 1 channels\n") &&
             strstr(r.out, "    0  /body/body.0/Conv") &&
             strstr(r.out, "DepthToSpace  4 -> 1\n") && r.err[0] == '\0',
         "info NET.onnx: the interface and one line per node");
  /* Lookahead 2 + 1 + 1 rows (5x5, 3x3, 3x3 convolutions), doubled by the
   * depth-to-space. */
  tap_ok(has_line(r.out, "size: [H, W] -> [2H, 2W]") &&
             has_line(r.out, "rate: 2 output steps per input step along H (streamed)") &&
             has_line(r.out, "latency: 8 output steps, 4 input steps"),
         "info NET.onnx: the size of every axis, the rate and the graph's latency");
  run_clear(&r);
  static const struct {
    const char *file, *size, *rate;
  } geometry[] = {
      {"networks/hifigan_small.opset13.onnx", "size: [L] -> [8L]",
       "rate: 8 output steps per input step along L (streamed)"},
      {"networks/pool_1d.opset13.onnx", "size: [L] -> [L/4]",
       "rate: 1/4 output steps per input step along L (streamed)"},
      {"networks/unet1d.opset13.onnx", "size: [L] -> [L]",
       "rate: 1 output steps per input step along L (streamed)"},
      {"networks/residual3d.opset17.onnx", "size: [T, H, W] -> [2T, 2H, 2W]",
       "rate: 2 output steps per input step along T (streamed)"},
      {"networks/asym_pads_2d.opset13.onnx", "size: [H, W] -> [2H + 2, 3W + 3]",
       "rate: 2 output steps per input step along H (streamed)"},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(geometry); i++) {
    gchar *path = golden_path(geometry[i].file);
    r = RUN("info", path);
    tap_ok(r.exit_code == 0 && has_line(r.out, geometry[i].size) &&
               has_line(r.out, geometry[i].rate) && strstr(r.out, "\nlatency: "),
           "info %s: \"%s\", \"%s\"", geometry[i].file, geometry[i].size,
           geometry[i].rate);
    run_clear(&r);
    g_free(path);
  }
  r = RUN("info", espcn);
  run_clear(&r);
  /* The content decides: the network under another name. */
  gchar *renamed = tmp_path("espcn.safetensors");
  gchar *bytes = NULL;
  gsize len = 0;
  g_file_get_contents(espcn, &bytes, &len, NULL);
  g_file_set_contents(renamed, bytes, (gssize)len, NULL);
  r = RUN("info", renamed);
  tap_ok(r.exit_code == 0 && strstr(r.out, "network: 2d, 7 nodes"),
         "info takes an ONNX network named .safetensors as a network");
  run_clear(&r);
  r = RUN("info", espcn, "--stride", "2");
  tap_ok(r.exit_code == 2 && strstr(r.err, "is an ONNX network: --layer, --stride"),
         "info NET.onnx --stride: a usage error (%s)", r.err);
  run_clear(&r);
  gchar *lstm = golden_path("networks/refusals/lstm.onnx");
  r = RUN("info", lstm);
  tap_ok(r.exit_code == 1 && g_str_has_prefix(r.err, "convtranspose: ") &&
             strstr(r.err, "node 10 \"/lstm/LSTM\" (LSTM)") && r.out[0] == '\0',
         "info on a refused network: the reader's line (%s)", r.err);
  run_clear(&r);
  r = RUN("apply", espcn, "in.npy", "out.npy", "--layer", "up");
  tap_ok(r.exit_code == 2 && strstr(r.err, "is an ONNX network: --layer"),
         "apply NET.onnx --layer: a usage error (%s)", r.err);
  run_clear(&r);
  g_unlink(renamed);
  g_free(bytes);
  g_free(renamed);
  g_free(lstm);
  g_free(espcn);
}

/* apply on networks: golden .npy inputs give PyTorch's output, the same
 * bytes for every chunk and thread count; audio through a 2 -> 1 channel
 * x2 network at twice the rate, as the .npy path computes it; a signal the
 * network cannot take is one line and no OUTPUT. */
static void check_apply_network(void) {
  static const char *const nets[] = {"espcn.opset11", "hifigan_small_wn.opset17",
                                     "unet1d.opset13", "residual3d.opset17",
                                     "pool_ceil_dil_1d.opset13"};
  for (gsize i = 0; i < G_N_ELEMENTS(nets); i++) {
    gchar *name = g_strndup(nets[i], strchr(nets[i], '.') - nets[i]);
    gchar *model =
        g_strdup_printf("%s/tests/golden/networks/%s.onnx", source_root, nets[i]);
    gchar *in = g_strdup_printf("%s/tests/golden/networks/%s.in.npy", source_root, name);
    gchar *ref_path =
        g_strdup_printf("%s/tests/golden/networks/%s.out.npy", source_root, name);
    gchar *out = tmp_path("net-out.npy"), *out2 = tmp_path("net-out2.npy");
    Run r = RUN("apply", model, in, out);
    Array got = load_array(out), ref = load_array(ref_path);
    double err = 0, max_ref = 0;
    const gboolean shaped =
        r.exit_code == 0 && got.ok && ref.ok && same_shape(&got.npy, &ref.npy);
    if (shaped)
      compare(got.data, ref.data, ref.npy.count, &err, &max_ref);
    tap_ok(shaped && within_contract(err, max_ref) && strstr(r.out, "applied ") &&
               strstr(r.out, " network "),
           "apply %s: PyTorch's output (max |diff| %.3g)%s%s", nets[i], err,
           r.exit_code ? " -- " : "", r.err);
    run_clear(&r);
    GByteArray *first = file_bytes(out);
    gboolean same = first != NULL;
    static const char *const runs[][2] = {{"1", "1"}, {"1", "3"}, {"3", "2"}, {"7", "1"}};
    for (gsize k = 0; same && k < G_N_ELEMENTS(runs); k++) {
      g_unlink(out2);
      r = RUN("apply", model, in, out2, "--chunk", runs[k][0], "--threads", runs[k][1]);
      GByteArray *again = file_bytes(out2);
      same = r.exit_code == 0 && again && same_bytes(first, again);
      if (!same)
        tap_diag("--chunk %s --threads %s: exit %d %s", runs[k][0], runs[k][1],
                 r.exit_code, r.err);
      if (again)
        g_byte_array_unref(again);
      run_clear(&r);
    }
    tap_ok(same, "apply %s: --chunk 1, 3, 7 on 1-3 threads write the same bytes",
           nets[i]);
    if (first)
      g_byte_array_unref(first);
    array_clear(&got);
    array_clear(&ref);
    g_unlink(out);
    g_unlink(out2);
    g_free(out);
    g_free(out2);
    g_free(ref_path);
    g_free(in);
    g_free(model);
    g_free(name);
  }

  /* Audio: the Snake net takes stereo and gives mono at twice the rate. */
  gchar *snake = golden_path("networks/snake_net.opset13.onnx");
  gchar *wav = tmp_path("net-in.wav"), *npy = tmp_path("net-in.npy");
  gchar *out_wav = tmp_path("net-out.wav"), *out_npy = tmp_path("net-out.npy");
  float *planar = g_malloc(sizeof(float) * 2 * AUDIO_FRAMES);
  gboolean ok = write_stereo_wav(wav, planar);
  /* The same samples as an array ([C, L], as the WAV holds them). */
  const gint64 shape[2] = {2, AUDIO_FRAMES};
  gsize header_len = 0;
  guint8 *header = ct_npy_header_f32(shape, 2, &header_len, NULL);
  GByteArray *arr = g_byte_array_new();
  g_byte_array_append(arr, header, (guint)header_len);
  g_byte_array_append(arr, (const guint8 *)planar, sizeof(float) * 2 * AUDIO_FRAMES);
  ok = ok && g_file_set_contents(npy, (const gchar *)arr->data, arr->len, NULL);
  g_byte_array_unref(arr);
  g_free(header);
  Run r = RUN("apply", snake, wav, out_wav, "--chunk", "480");
  Run rn = RUN("apply", snake, npy, out_npy);
  SF_INFO info;
  float *heard = r.exit_code == 0 ? read_audio(out_wav, &info) : NULL;
  Array want = load_array(out_npy);
  const gint64 want_shape[2] = {1, 2 * AUDIO_FRAMES};
  gboolean audio_ok =
      ok && heard && want.ok && info.channels == 1 && info.samplerate == 2 * AUDIO_RATE &&
      info.frames == 2 * AUDIO_FRAMES && shape_is(&want.npy, 2, want_shape);
  for (gint64 i = 0; audio_ok && i < 2 * AUDIO_FRAMES; i++)
    audio_ok = heard[i] == want.data[i];
  tap_ok(
      audio_ok,
      "apply NET.onnx on a WAV: 2 -> 1 channels at %d Hz, the .npy path's samples%s%s%s",
      2 * AUDIO_RATE, r.exit_code ? " -- " : "", r.err, rn.err);
  run_clear(&r);
  run_clear(&rn);
  array_clear(&want);
  g_free(heard);
  g_free(planar);

  /* An odd length through the U-Net: its branches end apart. */
  gchar *unet = golden_path("networks/unet1d.opset13.onnx");
  gchar *odd = tmp_path("net-odd.npy"), *odd_out = tmp_path("net-odd-out.npy");
  const gint64 odd_shape[2] = {2, 21};
  header = ct_npy_header_f32(odd_shape, 2, &header_len, NULL);
  arr = g_byte_array_new();
  g_byte_array_append(arr, header, (guint)header_len);
  float zeros[42] = {0};
  g_byte_array_append(arr, (const guint8 *)zeros, sizeof zeros);
  g_file_set_contents(odd, (const gchar *)arr->data, arr->len, NULL);
  g_byte_array_unref(arr);
  g_free(header);
  g_unlink(odd_out);
  r = RUN("apply", unet, odd, odd_out);
  const gboolean refused = r.exit_code == 1 && one_error_line(r.err) &&
                           strstr(r.err, odd) && strstr(r.err, "Concat") &&
                           !file_exists(odd_out) &&
                           count_prefixed(tmp_dir, ".net-odd-out.npy.") == 0;
  tap_ok(refused,
         "apply a U-Net to an odd length: one line naming the input and the node, no "
         "OUTPUT (%s)",
         g_strchomp(r.err));
  run_clear(&r);
  g_unlink(odd);
  const gchar *const doomed[] = {wav, npy, out_wav, out_npy};
  for (gsize i = 0; i < G_N_ELEMENTS(doomed); i++)
    g_unlink(doomed[i]);
  g_free(odd);
  g_free(odd_out);
  g_free(unet);
  g_free(wav);
  g_free(npy);
  g_free(out_wav);
  g_free(out_npy);
  g_free(snake);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CONVTRANSPOSE SOURCE_ROOT\n", argv[0]);
    return 2;
  }
  /* Absolute: some runs happen in another working directory. */
  cli_path = g_canonicalize_filename(argv[1], NULL);
  source_root = g_canonicalize_filename(argv[2], NULL);
  const char *seed = g_getenv("CT_TEST_SEED");
  if (seed)
    rng_state = g_ascii_strtoull(seed, NULL, 0) | 1;
  tap_diag("random seed 0x%" G_GINT64_MODIFIER "x (set CT_TEST_SEED to repeat)",
           rng_state);
  tmp_dir = g_dir_make_tmp("ct-cli-XXXXXX", NULL);
  if (!tmp_dir) {
    tap_ok(FALSE, "cannot create a temporary directory");
    return tap_done();
  }
  check_info();
  check_info_network();
  check_apply_network();
  check_load_warnings();
  check_errors();
  check_option_syntax();
  check_audio();
  check_output_kinds();
  check_audio_stream();
  check_golden();
  check_docs();
  if (!tap_ok(count_prefixed(tmp_dir, "") == 0, "temporary directory left empty")) {
    GDir *d = g_dir_open(tmp_dir, 0, NULL);
    const gchar *name;
    while (d && (name = g_dir_read_name(d)))
      tap_diag("left: %s", name);
    if (d)
      g_dir_close(d);
  }
  g_rmdir(tmp_dir);
  g_free(tmp_dir);
  return tap_done();
}
