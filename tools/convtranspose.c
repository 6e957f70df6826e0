/* convtranspose: apply a PyTorch ConvTranspose{1,2,3}d layer, or a network
 * exported to ONNX, to .npy arrays and audio files, through the same
 * streaming stages the GStreamer elements use.
 *
 * Contract: shared design, section 5. Every failure is one line on stderr
 * starting "convtranspose: ", exit 2 for usage errors and 1 otherwise, and
 * leaves no OUTPUT behind: a regular OUTPUT is written to a temporary file
 * beside it (beside a symbolic link's target) and renamed over it only once
 * complete; devices, FIFOs and "-" (standard output) are written through. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "audio.h"
#include "bench.h"
#include "kernels/graph.h"
#include "kernels/stream.h"
#include "npy.h"
#include "model/model.h"
#include "model/onnx.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define CLI_ERROR (cli_error_quark())
static G_DEFINE_QUARK(convtranspose - cli - error - quark, cli_error)

    typedef enum {
      CLI_ERROR_USAGE,  /* exit 2 */
      CLI_ERROR_FAILED, /* exit 1 */
    } CliError;

static const char usage_text[] =
    "Usage:\n"
    "  convtranspose info  MODEL [--layer P]\n"
    "  convtranspose apply MODEL INPUT OUTPUT [--layer P] [--chunk N] [--threads N]\n"
    "                      [--stride S] [--padding P] [--output-padding O]\n"
    "                      [--dilation D] [--groups G]\n"
    "  convtranspose bench [--case NAME[,NAME...]] [--threads N] [--json]\n"
    "  convtranspose --version\n"
    "\n"
    "Applies a PyTorch ConvTranspose1d/2d/3d layer stored in a .safetensors MODEL,\n"
    "or a whole network exported by torch.onnx.export (an .onnx MODEL: info lists\n"
    "its nodes, sizes, rate and latency); the file's content, not its name, decides.\n"
    "The per-layer options (--layer, --stride, ...) are for layers only.\n"
    "\n"
    "INPUT is a .npy array (float32 or float64, C order) of shape [C, S1..] or\n"
    "[N, C, S1..] with C = in_channels, written to OUTPUT as a float32 .npy; or,\n"
    "for a 1d layer or network, any audio file libsndfile reads, streamed block by\n"
    "block and written at rate * stride (a network: its rate) in the format of\n"
    "OUTPUT's extension: .wav (or no extension) 32-bit float WAV, .w64, .rf64,\n"
    ".aiff/.aif, .au/.snd, .caf float, .flac FLAC 24-bit, .ogg/.oga Ogg Vorbis,\n"
    ".opus Ogg Opus, .mp3 MP3 (where this libsndfile writes them), .npy a [C, L]\n"
    "array.\n"
    "\n"
    "OUTPUT - is standard output. Devices and FIFOs are written through, symbolic\n"
    "links into their target; a regular file is replaced only once complete.\n"
    "\n"
    "Options (anywhere after the command; --opt VALUE or --opt=VALUE):\n"
    "  --layer P           use tensors P.weight and P.bias (and P.* metadata)\n"
    "  --chunk N           stream N steps of the first spatial axis at a time\n"
    "                      (default 65536 samples, 64 rows or 4 frames)\n"
    "  --threads N         worker threads, 0 = all cores\n"
    "  --stride S          override the file: one integer for every axis or a\n"
    "  --padding P         comma-separated list with one per axis (e.g. 1,2,2)\n"
    "  --output-padding O\n"
    "  --dilation D\n"
    "  --groups G          override the file's groups\n"
    "  -h, --help          show this help\n"
    "  --version           show the version\n";

/* Everything after the command. */
typedef struct {
  GPtrArray *positional;
  const gchar *layer;
  gint64 chunk; /* 0: default */
  gint64 threads;
  CtOverrides overrides;
} Options;

/* ---- messages ---------------------------------------------------------- */

/* The contract's one line: newlines inside a message (from a library) would
 * break it, so they become spaces. */
static void print_error_line(const gchar *message) {
  gchar *line = g_strdup(message);
  for (gchar *p = line; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  fprintf(stderr, "convtranspose: %s\n", g_strchomp(line));
  g_free(line);
}

/* ct_model_load, printing the loader's warnings (unknown metadata keys, ...)
 * on stderr, one line each. */
static ct_layer *load_layer(const gchar *model, const Options *o, GError **error) {
  GPtrArray *warnings = g_ptr_array_new_with_free_func(g_free);
  ct_layer *layer = ct_model_load_full(model, o->layer, &o->overrides, warnings, error);
  for (guint i = 0; i < warnings->len; i++)
    fprintf(stderr, "convtranspose: warning: %s\n", (const char *)warnings->pdata[i]);
  g_ptr_array_unref(warnings);
  return layer;
}

static gboolean usage_error(GError **error, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean usage_error(GError **error, const gchar *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *message = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "%s (see convtranspose --help)",
              message);
  g_free(message);
  return FALSE;
}

static gboolean failed(GError **error, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean failed(GError **error, const gchar *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *message = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, CLI_ERROR, CLI_ERROR_FAILED, message);
  g_free(message);
  return FALSE;
}

/* "2" or "2,1,1" */
static gchar *axis_list(const int64_t *values, int rank) {
  GString *s = g_string_new(NULL);
  for (int a = 0; a < rank; a++)
    g_string_append_printf(s, "%s%lld", a ? "," : "", (long long)values[a]);
  return g_string_free(s, FALSE);
}

/* "20 x 16 x 50" */
static gchar *dims_string(const gint64 *dims, gint n) {
  GString *s = g_string_new(NULL);
  for (gint i = 0; i < n; i++)
    g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? " x " : "", dims[i]);
  return g_string_free(s, FALSE);
}

static gboolean has_extension(const gchar *path, const gchar *ext) {
  gsize n = strlen(path), e = strlen(ext);
  return n > e && path[n - e - 1] == '.' && g_ascii_strcasecmp(path + n - e, ext) == 0;
}

/* ---- options ----------------------------------------------------------- */

typedef enum {
  OPT_LAYER,
  OPT_CHUNK,
  OPT_THREADS,
  OPT_STRIDE,
  OPT_PADDING,
  OPT_OUTPUT_PADDING,
  OPT_DILATION,
  OPT_GROUPS,
} OptionId;

typedef struct {
  const gchar *name;
  OptionId id;
  gboolean for_info; /* every option is for apply */
} OptionSpec;

/* info takes the layer-shaping options too, so it can show what apply would
 * use with the same overrides. */
static const OptionSpec option_specs[] = {
    {"layer", OPT_LAYER, TRUE},       {"chunk", OPT_CHUNK, FALSE},
    {"threads", OPT_THREADS, FALSE},  {"stride", OPT_STRIDE, TRUE},
    {"padding", OPT_PADDING, TRUE},   {"output-padding", OPT_OUTPUT_PADDING, TRUE},
    {"dilation", OPT_DILATION, TRUE}, {"groups", OPT_GROUPS, TRUE},
};

static gboolean parse_integer(const gchar *name, const gchar *text, gint64 min,
                              gint64 *out, GError **error) {
  if (!g_ascii_string_to_signed(text, 10, min, G_MAXINT64, out, NULL))
    return usage_error(error, "--%s: '%s' is not an integer >= %" G_GINT64_FORMAT, name,
                       text, min);
  return TRUE;
}

static gboolean parse_axis(const gchar *name, const gchar *text, gint64 min,
                           CtAxisOverride *out, GError **error) {
  GError *local = NULL;
  if (!ct_axis_override_parse(text, out, &local)) {
    usage_error(error, "--%s: %s", name, local->message);
    g_error_free(local);
    return FALSE;
  }
  for (gint i = 0; i < out->n_values; i++)
    if (out->values[i] < min)
      return usage_error(error,
                         "--%s: '%s': every value must be at least %" G_GINT64_FORMAT,
                         name, text, min);
  return TRUE;
}

static gboolean set_option(Options *o, const OptionSpec *spec, const gchar *value,
                           GError **error) {
  CtOverrides *ov = &o->overrides;
  switch (spec->id) {
  case OPT_LAYER:
    o->layer = value;
    return TRUE;
  case OPT_CHUNK:
    return parse_integer(spec->name, value, 1, &o->chunk, error);
  case OPT_THREADS:
    return parse_integer(spec->name, value, 0, &o->threads, error);
  case OPT_STRIDE:
    return parse_axis(spec->name, value, 1, &ov->stride, error);
  case OPT_PADDING:
    return parse_axis(spec->name, value, 0, &ov->padding, error);
  case OPT_OUTPUT_PADDING:
    return parse_axis(spec->name, value, 0, &ov->output_padding, error);
  case OPT_DILATION:
    return parse_axis(spec->name, value, 1, &ov->dilation, error);
  case OPT_GROUPS:
    ov->groups_set = TRUE;
    return parse_integer(spec->name, value, 1, &ov->groups, error);
  }
  return FALSE;
}

/* A hand loop rather than GOptionContext: options go anywhere after the
 * command, "--opt value" and "--opt=value" both work, values may start with
 * '-' ("--threads -1" must say "not >= 0", not "unknown option"), and every
 * error is our one line. Sets *help when -h/--help was given. */
static gboolean parse_options(const gchar *command, gboolean for_info, int argc,
                              char **argv, Options *o, gboolean *help, GError **error) {
  gboolean only_positional = FALSE;
  for (int i = 0; i < argc; i++) {
    const gchar *arg = argv[i];
    if (only_positional || arg[0] != '-' || arg[1] == '\0') {
      g_ptr_array_add(o->positional, (gpointer)arg);
      continue;
    }
    if (strcmp(arg, "--") == 0) {
      only_positional = TRUE;
      continue;
    }
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      *help = TRUE;
      return TRUE;
    }
    if (arg[1] != '-')
      return usage_error(error, "unknown option '%s'", arg);
    const gchar *name = arg + 2, *eq = strchr(name, '=');
    gsize name_len = eq ? (gsize)(eq - name) : strlen(name);
    const OptionSpec *spec = NULL;
    for (gsize k = 0; k < G_N_ELEMENTS(option_specs); k++)
      if (strlen(option_specs[k].name) == name_len &&
          strncmp(option_specs[k].name, name, name_len) == 0)
        spec = &option_specs[k];
    if (!spec)
      return usage_error(error, "unknown option '%.*s'", (int)(name_len + 2), arg);
    if (for_info && !spec->for_info)
      return usage_error(error, "option '--%s' does not apply to '%s'", spec->name,
                         command);
    const gchar *value;
    if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return usage_error(error, "option '--%s' needs a value", spec->name);
    }
    if (!set_option(o, spec, value, error))
      return FALSE;
  }
  return TRUE;
}

/* ---- where the result goes ------------------------------------------------ */

/* Read by the signal handler, so an interrupted run leaves nothing behind. */
static char *volatile pending_temp_path;

static void remove_temp_on_signal(int sig) {
  char *path = pending_temp_path;
  if (path)
    unlink(path);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_signal_cleanup(void) {
  const int signals[] = {SIGINT, SIGTERM, SIGHUP};
  for (gsize i = 0; i < G_N_ELEMENTS(signals); i++) {
    struct sigaction action = {0};
    action.sa_handler = remove_temp_on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(signals[i], &action, NULL);
  }
}

typedef enum {
  OUT_FILE,   /* a regular file, or none yet: replaced by rename, atomically */
  OUT_STREAM, /* a device or FIFO, or "-": written through, never replaced */
} OutputKind;

typedef struct {
  const gchar *name; /* OUTPUT as given, for messages */
  OutputKind kind;
  gboolean is_stdout; /* "-" */
  gboolean on_stdout; /* the stream is standard output's file: no summary there */
  gchar *target;      /* OUT_FILE: the file to create or replace, links followed */
  gchar *temp_path;   /* OUT_FILE: the temporary file beside target */
  int fd;             /* the temporary file, the spool or the stream; or -1 */
  gboolean spooled;   /* fd is an unnamed file, copied to the stream at the end */
} Output;

static gboolean errno_failed(GError **error, int saved, const gchar *what,
                             const gchar *path) {
  return failed(error, "%s: %s: %s", path, what, g_strerror(saved));
}

/* Where a dangling symbolic link (or a chain of them) leads: the output is
 * created there, as a shell redirection would. */
static gchar *dangling_link_target(const gchar *link, GError **error) {
  gchar *path = g_strdup(link);
  for (int hops = 0; hops < 40; hops++) { /* the kernel's own limit */
    struct stat st;
    gchar *to;
    if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) ||
        !(to = g_file_read_link(path, NULL)))
      return path; /* creating it names any other problem */
    gchar *next;
    if (g_path_is_absolute(to)) {
      next = to;
    } else {
      gchar *dir = g_path_get_dirname(path);
      next = g_build_filename(dir, to, NULL);
      g_free(dir);
      g_free(to);
    }
    g_free(path);
    path = next;
  }
  g_free(path);
  failed(error, "%s: too many levels of symbolic links", link);
  return NULL;
}

/* Decides how OUTPUT is written, before anything is computed. */
static gboolean output_resolve(Output *o, const gchar *name, GError **error) {
  memset(o, 0, sizeof *o);
  o->name = name;
  o->fd = -1;
  if (strcmp(name, "-") == 0) {
    if (isatty(STDOUT_FILENO))
      return failed(error, "refusing to write binary data to a terminal: redirect "
                           "standard output or name an OUTPUT file");
    o->kind = OUT_STREAM;
    o->is_stdout = o->on_stdout = TRUE;
    return TRUE;
  }
  struct stat st;
  o->kind = OUT_FILE;
  if (stat(name, &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return failed(error, "%s: OUTPUT is a directory", name);
    if (!S_ISREG(st.st_mode)) {
      o->kind = OUT_STREAM;
      return TRUE;
    }
    /* Replace the link's target, not the link: rename in its directory. */
    struct stat lst;
    if (lstat(name, &lst) == 0 && S_ISLNK(lst.st_mode)) {
      char *real = realpath(name, NULL);
      if (!real)
        return errno_failed(error, errno, "cannot follow the symbolic link", name);
      o->target = g_strdup(real);
      free(real);
    } else {
      o->target = g_strdup(name);
    }
    return TRUE;
  }
  if (errno == ELOOP)
    return failed(error, "%s: too many levels of symbolic links", name);
  struct stat lst;
  if (errno == ENOENT && lstat(name, &lst) == 0 && S_ISLNK(lst.st_mode))
    o->target = dangling_link_target(name, error);
  else
    o->target = g_strdup(name); /* creating it names any problem */
  return o->target != NULL;
}

/* Creates .TARGET.XXXXXX beside the target: the same directory, hence the
 * same file system, so the final rename is atomic. */
static gboolean temp_create(Output *o, GError **error) {
  gchar *dir = g_path_get_dirname(o->target), *base = g_path_get_basename(o->target);
  gchar *name = g_strdup_printf(".%s.XXXXXX", base);
  o->temp_path = g_build_filename(dir, name, NULL);
  g_free(name);
  g_free(base);
  /* 0666 through the umask: the file gets the mode a plain create would. */
  o->fd = g_mkstemp_full(o->temp_path, O_RDWR | O_CLOEXEC, 0666);
  if (o->fd < 0) {
    int saved = errno;
    failed(error, "%s: cannot create a file in %s: %s", o->name, dir, g_strerror(saved));
    g_free(dir);
    g_clear_pointer(&o->temp_path, g_free);
    return FALSE;
  }
  g_free(dir);
  pending_temp_path = o->temp_path;
  return TRUE;
}

/* A file without a name in the temporary directory: nothing to clean up,
 * however the process ends. */
static int anonymous_temp(const gchar *for_path, GError **error) {
  const gchar *dir = g_get_tmp_dir();
  int fd = -1;
#ifdef O_TMPFILE
  fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
#endif
  if (fd < 0) { /* no O_TMPFILE here, or not on this file system */
    gchar *path = g_build_filename(dir, "convtranspose-XXXXXX", NULL);
    fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
      g_unlink(path);
    g_free(path);
  }
  if (fd < 0) {
    int saved = errno;
    failed(error, "%s: cannot create a temporary file in %s: %s", for_path, dir,
           g_strerror(saved));
  }
  return fd;
}

static gboolean stream_open(Output *o, GError **error) {
  o->fd = o->is_stdout ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0)
                       : open(o->name, O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (o->fd < 0)
    return errno_failed(error, errno, "cannot open OUTPUT", o->name);
  /* /dev/stdout and the like: the summary line must not go into the data. */
  struct stat a, b;
  if (!o->is_stdout && fstat(o->fd, &a) == 0 && fstat(STDOUT_FILENO, &b) == 0)
    o->on_stdout = a.st_dev == b.st_dev && a.st_ino == b.st_ino;
  return TRUE;
}

/* Opens where the bytes go. A writer that must seek (audio headers are
 * completed at the end) gets, for a stream, an unnamed spool file that
 * output_finish copies through; a sequential writer gets the stream itself. */
static gboolean output_open(Output *o, gboolean seekable, GError **error) {
  if (o->kind == OUT_FILE)
    return temp_create(o, error);
  if (!seekable)
    return stream_open(o, error);
  o->fd = anonymous_temp(o->name, error);
  o->spooled = o->fd >= 0;
  return o->spooled;
}

static gboolean write_all(int fd, const guint8 *data, gsize n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return FALSE;
    data += w;
    n -= (gsize)w;
  }
  return TRUE;
}

/* Copies the spool into the stream, which is opened only now: a failure
 * before this point never touches it. */
static gboolean spool_copy(Output *o, GError **error) {
  const int spool = o->fd;
  o->fd = -1;
  gboolean ok = stream_open(o, error);
  enum { COPY_BYTES = 1 << 20 };
  guint8 *buf = ok ? g_malloc(COPY_BYTES) : NULL;
  for (off_t at = 0; ok;) {
    const ssize_t n = pread(spool, buf, COPY_BYTES, at);
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0)
      break;
    if (n < 0)
      ok = errno_failed(error, errno, "cannot read the temporary file", o->name);
    else if (!write_all(o->fd, buf, (gsize)n))
      ok = errno_failed(error, errno, "write failed", o->name);
    else
      at += n;
  }
  g_free(buf);
  close(spool);
  return ok;
}

/* Removes the temporary file (after a failure); safe to call twice. */
static void output_discard(Output *o) {
  if (o->fd >= 0)
    close(o->fd);
  o->fd = -1;
  if (o->temp_path) {
    pending_temp_path = NULL;
    g_unlink(o->temp_path);
    g_clear_pointer(&o->temp_path, g_free);
  }
}

/* Completes the output after a writer that succeeded (ok) or not: copies
 * the spool through or closes the fd and renames the temporary file into
 * place; on failure leaves nothing. */
static gboolean output_finish(Output *o, gboolean ok, GError **error) {
  if (ok && o->spooled)
    ok = spool_copy(o, error);
  if (o->fd >= 0) {
    if (close(o->fd) != 0 && ok)
      ok = errno_failed(error, errno, "write failed", o->name);
    o->fd = -1;
  }
  if (ok && o->temp_path && g_rename(o->temp_path, o->target) != 0)
    ok = errno_failed(error, errno, "cannot replace OUTPUT", o->name);
  if (!ok) {
    output_discard(o);
    return FALSE;
  }
  pending_temp_path = NULL;
  g_clear_pointer(&o->temp_path, g_free);
  return TRUE;
}

static void output_clear(Output *o) {
  output_discard(o);
  g_clear_pointer(&o->target, g_free);
}

/* The summary line goes to stdout, unless the data does. */
static FILE *summary_stream(const Output *o) {
  return o->on_stdout ? stderr : stdout;
}

/* ---- streaming one signal ------------------------------------------------ */

/* Supplies steps [first, first + n) of batch item `item` as channel-planar
 * floats; *chan_stride is the distance between channels. */
typedef const float *(*ChunkSource)(gpointer ctx, gint64 item, gint64 first, gint64 n,
                                    gint64 *chan_stride);

/* A layer's stream or a network's graph, driven as one stage. */
typedef struct {
  ct_stage *stage;
  ct_graph *graph; /* a network's, for its errors; NULL for a layer */
} Runner;

/* Why a push or finish failed, in words. */
static const gchar *stage_failure(const Runner *r, ct_status status) {
  if (r->graph && ct_graph_error(r->graph)[0])
    return ct_graph_error(r->graph);
  return status == CT_ERR_NOMEM ? "out of memory" : "streaming failed (size overflow)";
}

/* Streams one signal through the stage in chunks of `chunk` steps and
 * writes its [Cout, out_len, frame...] output to out. The stage is left
 * reset for the next item. */
static gboolean stream_signal(const Runner *r, ChunkSource source, gpointer ctx,
                              gint64 item, gint64 in_len, gint64 chunk, float *out,
                              gint64 out_len, GError **error) {
  ct_stage *stage = r->stage;
  const gint64 out_frame = stage->out_frame;
  const gint64 out_stride = out_len * out_frame;
  gint64 done = 0, emitted = 0, n_out = 0;
  ct_status status = CT_OK;
  while (status == CT_OK && done < in_len) {
    const gint64 n = MIN(chunk, in_len - done);
    gint64 in_stride;
    const float *in = source(ctx, item, done, n, &in_stride);
    /* Never trust a count that would write past the buffer. */
    const gint64 expect = ct_stage_push_out_steps(stage, n);
    if (expect < 0 || expect > out_len - emitted)
      return failed(error,
                    "internal error: the stream would emit %" G_GINT64_FORMAT
                    " steps past the output length",
                    expect);
    status = ct_stage_push(stage, in, in_stride, n, out + emitted * out_frame, out_stride,
                           &n_out);
    emitted += n_out;
    done += n;
  }
  if (status == CT_OK) {
    const gint64 expect = ct_stage_finish_out_steps(stage);
    if (expect < 0 || expect > out_len - emitted)
      return failed(error, "internal error: the stream tail exceeds the output length");
    status = ct_stage_finish(stage, out + emitted * out_frame, out_stride, &n_out);
    emitted += n_out;
  }
  if (status != CT_OK) {
    failed(error, "%s", stage_failure(r, status));
    ct_stage_reset(stage);
    return FALSE;
  }
  ct_stage_reset(stage);
  if (emitted != out_len)
    return failed(error,
                  "internal error: the stream emitted %" G_GINT64_FORMAT
                  " steps, expected %" G_GINT64_FORMAT,
                  emitted, out_len);
  return TRUE;
}

/* ---- apply ----------------------------------------------------------------- */

typedef struct {
  const CtNpy *npy;
  gint64 channels, in_len, in_frame;
  float *scratch; /* channels x chunk x in_frame */
} NpySource;

static const float *npy_chunk(gpointer ctx, gint64 item, gint64 first, gint64 n,
                              gint64 *chan_stride) {
  NpySource *s = ctx;
  const gint64 per_channel = s->in_len * s->in_frame;
  for (gint64 c = 0; c < s->channels; c++)
    ct_npy_read_f32(s->npy, (item * s->channels + c) * per_channel + first * s->in_frame,
                    n * s->in_frame, s->scratch + c * n * s->in_frame);
  *chan_stride = n * s->in_frame;
  return s->scratch;
}

static gint64 default_chunk(int rank) {
  /* Long enough to amortise each push, short enough that the converted
   * input chunk stays at a few MB for typical shapes. */
  return rank == 1 ? 65536 : rank == 2 ? 64 : 4;
}

/* Allocates count floats, or fails with a message naming what they are for. */
static float *alloc_floats(gint64 count, const gchar *what, GError **error) {
  size_t bytes;
  float *p =
      ct_bytes_for(count, sizeof(float), &bytes) ? g_try_malloc(bytes ? bytes : 1) : NULL;
  if (!p)
    failed(error, "out of memory for the %s (%" G_GINT64_FORMAT " values)", what, count);
  return p;
}

typedef struct {
  const gchar *model, *input, *output;
  /* One of the two: a layer (params its geometry) or a network. */
  const ct_layer *layer;
  const ct_params *params;
  const ct_network *network;
  int rank;
  gint64 in_channels, out_channels;
  ct_pool *pool; /* NULL: one thread */
  gint64 chunk;
  gint threads;      /* >= 1 */
  gboolean to_npy;   /* else audio_format */
  gint audio_format; /* libsndfile's, for audio OUTPUT */
} ApplyJob;

/* The job's stage for frames of frame_shape, on the job's threads. */
static gboolean new_runner(const ApplyJob *job, const int64_t *frame_shape, Runner *r,
                           char *msg, size_t msg_size) {
  *r = (Runner){0};
  if (job->network) {
    r->graph = ct_graph_new(job->network, frame_shape, msg, msg_size);
    r->stage = r->graph ? ct_graph_stage(r->graph) : NULL;
  } else {
    ct_stream *stream = ct_stream_new(job->layer, frame_shape, msg, msg_size);
    r->stage = stream ? ct_stream_stage(stream) : NULL;
  }
  if (r->stage && ct_stage_use_pool(r->stage, job->pool) != CT_OK) {
    snprintf(msg, msg_size, "out of memory for %d threads", job->threads);
    ct_stage_free(r->stage);
    r->stage = NULL;
  }
  return r->stage != NULL;
}

static void runner_clear(Runner *r) {
  ct_stage_free(r->stage);
  *r = (Runner){0};
}

/* "2d layer 3->3 (stride 2, 2)", "1d network 80->1 (x256)", for the
 * summary line. */
static gchar *job_description(const ApplyJob *job, const ct_stage *stage) {
  if (job->network)
    return g_strdup_printf("%dd network %" G_GINT64_FORMAT "->%" G_GINT64_FORMAT
                           " (%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT
                           " output steps per input step, %d nodes)",
                           job->rank, job->in_channels, job->out_channels, stage->rate_up,
                           stage->rate_down, job->network->n_nodes);
  gchar *strides = axis_list(job->params->stride, job->rank);
  gchar *d =
      g_strdup_printf("%dd layer %" G_GINT64_FORMAT "->%" G_GINT64_FORMAT " (stride %s)",
                      job->rank, job->in_channels, job->out_channels, strides);
  g_free(strides);
  return d;
}

/* The output's length along the streamed axis for in_len input steps (a
 * 1d layer, or a network), or FALSE with the reason in msg (a layer: the
 * formula's words; a network: an input too short for it). */
static gboolean output_length(const ApplyJob *job, const ct_stage *stage, gint64 in_len,
                              gint64 *out_len, char *msg, size_t msg_size) {
  if (!job->network) {
    int64_t len = 0;
    const gboolean ok =
        ct_output_shape(job->params, &in_len, &len, msg, msg_size) == CT_OK;
    *out_len = len;
    return ok;
  }
  *out_len = ct_stage_length(stage, in_len);
  if (*out_len < 0) {
    snprintf(msg, msg_size, "the output length overflows");
    return FALSE;
  }
  if (*out_len == 0 && in_len > 0) {
    snprintf(msg, msg_size,
             "%" G_GINT64_FORMAT " input steps are too few for the network: its output "
             "would be empty",
             in_len);
    return FALSE;
  }
  return TRUE;
}

static gboolean write_npy_header(FILE *f, const gchar *output, const gint64 *shape,
                                 gint ndim, gsize *len, GError **error) {
  guint8 *header = ct_npy_header_f32(shape, ndim, len, error);
  if (!header) {
    g_prefix_error(error, "%s: ", output);
    return FALSE;
  }
  gboolean ok = fwrite(header, 1, *len, f) == *len;
  int saved = errno;
  g_free(header);
  if (!ok)
    return failed(error, "%s: write failed: %s", output, g_strerror(saved));
  return TRUE;
}

/* A FILE over a duplicate of the output's fd, so that closing it leaves
 * the output's own fd (a spool is still to be copied). */
static FILE *output_file(const Output *o, GError **error) {
  const int fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!f) {
    errno_failed(error, errno, "cannot write", o->name);
    if (fd >= 0)
      close(fd);
  }
  return f;
}

/* Flushes and closes it; ok is whether everything so far succeeded. */
static gboolean close_file(FILE *f, const gchar *name, gboolean ok, GError **error) {
  if (fflush(f) != 0 && ok)
    ok = errno_failed(error, errno, "write failed", name);
  if (fclose(f) != 0 && ok)
    ok = errno_failed(error, errno, "write failed", name);
  return ok;
}

static gboolean apply_npy(const ApplyJob *job, Output *output, GError **error) {
  const int rank = job->rank;
  const gchar *what = job->network ? "network" : "layer";
  GError *local = NULL;
  int fd = g_open(job->input, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    int saved = errno;
    return failed(error, "%s: cannot open INPUT: %s", job->input, g_strerror(saved));
  }
  /* Mapped, not read: a large input is paged in as the stream reaches it. */
  GMappedFile *mapped = g_mapped_file_new_from_fd(fd, FALSE, &local);
  close(fd);
  if (!mapped) {
    failed(error, "%s: cannot read INPUT: %s", job->input, local->message);
    g_error_free(local);
    return FALSE;
  }
  CtNpy npy;
  gboolean ok = TRUE;
  NpySource source = {.npy = &npy};
  float *out = NULL;
  Runner runner = {0};
  FILE *f = NULL;
  gchar *shape_str = NULL;

  if (!ct_npy_parse((const guint8 *)g_mapped_file_get_contents(mapped),
                    g_mapped_file_get_length(mapped), &npy, &local)) {
    ok = failed(error, "%s: %s", job->input, local->message);
    g_error_free(local);
    goto out;
  }
  shape_str = ct_npy_shape_string(npy.shape, npy.ndim);
  const gboolean batched = npy.ndim == rank + 2;
  if (npy.ndim != rank + 1 && !batched) {
    static const char *const expected[] = {"", "[C, L] or [N, C, L]",
                                           "[C, H, W] or [N, C, H, W]",
                                           "[C, T, H, W] or [N, C, T, H, W]"};
    ok = failed(error, "%s: shape %s does not fit a %dd %s: expected %s with C = %lld",
                job->input, shape_str, rank, what, expected[rank],
                (long long)job->in_channels);
    goto out;
  }
  const gint64 batch = batched ? npy.shape[0] : 1;
  const gint64 *in_dims = npy.shape + (batched ? 1 : 0); /* [C, S1..] */
  if (in_dims[0] != job->in_channels) {
    ok = failed(error,
                "%s: shape %s has %" G_GINT64_FORMAT " channels, the %s takes %lld%s",
                job->input, shape_str, in_dims[0], what, (long long)job->in_channels,
                job->network ? "" : " (in_channels)");
    goto out;
  }
  const gint64 *in_spatial = in_dims + 1;
  int64_t out_spatial[CT_MAX_RANK];
  char msg[256];
  if (!job->network &&
      ct_output_shape(job->params, in_spatial, out_spatial, msg, sizeof msg) != CT_OK) {
    ok = failed(error, "%s: shape %s: %s", job->input, shape_str, msg);
    goto out;
  }
  if (!new_runner(job, in_spatial + 1, &runner, msg, sizeof msg) ||
      (job->network && !output_length(job, runner.stage, in_spatial[0], &out_spatial[0],
                                      msg, sizeof msg))) {
    ok = failed(error, "%s: shape %s: %s", job->input, shape_str, msg);
    goto out;
  }
  for (int a = 1; a < rank; a++)
    out_spatial[a] = runner.stage->out_frame_shape[a - 1];
  gint64 out_shape[CT_MAX_RANK + 2], out_item;
  gint out_ndim = 0;
  if (batched)
    out_shape[out_ndim++] = batch;
  out_shape[out_ndim++] = job->out_channels;
  for (int a = 0; a < rank; a++)
    out_shape[out_ndim++] = out_spatial[a];
  if (!ct_product_i64(out_shape + (batched ? 1 : 0), rank + 1, &out_item) ||
      !ct_product_i64(out_shape, out_ndim, &(gint64){0})) {
    ok = failed(error, "%s: the output of shape %s is too large", job->input, shape_str);
    goto out;
  }

  const gint64 in_frame = runner.stage->in_frame;
  const gint64 chunk = MIN(job->chunk, in_spatial[0]);
  source.channels = job->in_channels;
  source.in_len = in_spatial[0];
  source.in_frame = in_frame;
  gint64 scratch_count;
  if (!ct_mul_i64(job->in_channels * in_frame, chunk, &scratch_count) ||
      !(source.scratch = alloc_floats(scratch_count, "input chunk", error)) ||
      !(out = alloc_floats(out_item, "output", error))) {
    if (error && !*error)
      failed(error, "%s: the input chunk is too large", job->input);
    ok = FALSE;
    goto out;
  }

  /* The header is known up front and items come in order: no seeking. */
  if (!output_open(output, FALSE, error)) {
    ok = FALSE;
    goto out;
  }
  if (!(f = output_file(output, error))) {
    ok = FALSE;
    goto out;
  }
  gsize header_len;
  ok = write_npy_header(f, job->output, out_shape, out_ndim, &header_len, error);
  for (gint64 item = 0; ok && item < batch; item++) {
    ok = stream_signal(&runner, npy_chunk, &source, item, in_spatial[0], chunk, out,
                       out_spatial[0], error);
    if (!ok)
      g_prefix_error(error, "%s: ", job->input);
    if (ok && !ct_npy_write_f32_data(f, out, (gsize)out_item, error)) {
      g_prefix_error(error, "%s: ", job->output);
      ok = FALSE;
    }
  }
  ok = close_file(f, job->output, ok, error);
  f = NULL;
  ok = output_finish(output, ok, error);
  if (ok) {
    gchar *in_desc = dims_string(npy.shape, npy.ndim);
    gchar *out_desc = dims_string(out_shape, out_ndim);
    gchar *model_desc = job_description(job, runner.stage);
    fprintf(summary_stream(output), "applied %s to %s: %s -> %s, wrote %s\n", model_desc,
            job->input, in_desc, out_desc, job->output);
    g_free(in_desc);
    g_free(out_desc);
    g_free(model_desc);
  }

out:
  if (f)
    fclose(f);
  output_discard(output);
  g_free(shape_str);
  g_free(out);
  g_free(source.scratch);
  runner_clear(&runner);
  g_mapped_file_unref(mapped);
  return ok;
}

/* ---- apply to audio --------------------------------------------------- */

/* A progress line on a terminal's stderr, redrawn when the percentage
 * changes and erased at the end; nothing when stderr is a file or pipe. */
typedef struct {
  gboolean on;
  gint64 total;
  gint rate;
  int shown, width;
} Progress;

static void progress_start(Progress *p, gint64 total, gint rate) {
  *p = (Progress){.on = total > 0 && isatty(STDERR_FILENO),
                  .total = total,
                  .rate = rate,
                  .shown = -1};
}

static void progress_show(Progress *p, gint64 done) {
  if (!p->on)
    return;
  const int percent = (int)((double)done / (double)p->total * 100.0);
  if (percent == p->shown)
    return;
  p->shown = percent;
  const int n = fprintf(stderr, "\r%3d%% (%.1f of %.1f s of audio)", percent,
                        (double)done / p->rate, (double)p->total / p->rate);
  p->width = MAX(p->width, n - 1);
}

static void progress_clear(Progress *p) {
  if (p->on && p->width > 0)
    fprintf(stderr, "\r%*s\r", p->width, "");
  p->width = 0;
}

/* Where an audio apply's samples go: an audio file, or a [Cout, L] .npy
 * array whose channels are written each at its place, block by block. */
typedef struct {
  const gchar *name;
  CtAudioWriter *audio;
  FILE *npy; /* over the output's (seekable) fd */
  gint64 channels;
  gint64 npy_data, npy_len; /* offset of the data, L in the header */
  gint64 written;           /* steps so far */
} AudioSink;

static gboolean sink_write(AudioSink *s, const float *data, gint64 chan_stride, gint64 n,
                           GError **error) {
  if (s->audio) {
    if (!ct_audio_writer_write(s->audio, data, chan_stride, n, error)) {
      g_prefix_error(error, "%s: ", s->name);
      return FALSE;
    }
  } else {
    /* In bounds: the data's size (npy_len * channels floats after npy_data)
     * was checked, and written + n <= npy_len. */
    for (gint64 c = 0; c < s->channels; c++) {
      const gint64 at =
          s->npy_data + (c * s->npy_len + s->written) * (gint64)sizeof(float);
      if (fseeko(s->npy, (off_t)at, SEEK_SET) != 0)
        return errno_failed(error, errno, "write failed", s->name);
      if (!ct_npy_write_f32_data(s->npy, data + c * chan_stride, (gsize)n, error)) {
        g_prefix_error(error, "%s: ", s->name);
        return FALSE;
      }
    }
  }
  s->written += n;
  return TRUE;
}

/* Copies n bytes within fd from src to dst <= src, front to back, so that
 * a block is read before anything overwrites it. */
static gboolean move_down(int fd, off_t src, off_t dst, gint64 n, guint8 *buf,
                          gsize buf_size) {
  while (n > 0) {
    const gsize len = (gsize)MIN(n, (gint64)buf_size);
    ssize_t done = pread(fd, buf, len, src);
    if (done == (ssize_t)len)
      done = pwrite(fd, buf, len, dst);
    if (done != (ssize_t)len) {
      if (done >= 0)
        errno = EIO; /* short */
      return FALSE;
    }
    src += (off_t)len;
    dst += (off_t)len;
    n -= (gint64)len;
  }
  return TRUE;
}

/* The input ended before the length its header declared: the array
 * becomes [Cout, len], each channel moved down to its place (the new
 * header is no longer than the old one), the file cut after the last. */
static gboolean sink_shrink_npy(AudioSink *s, int fd, gint64 len, GError **error) {
  if (fflush(s->npy) != 0)
    return errno_failed(error, errno, "write failed", s->name);
  const gint64 shape[2] = {s->channels, len};
  gsize header_len;
  guint8 *header = ct_npy_header_f32(shape, 2, &header_len, error);
  if (!header) {
    g_prefix_error(error, "%s: ", s->name);
    return FALSE;
  }
  enum { MOVE_BYTES = 1 << 16 };
  guint8 *buf = g_malloc(MOVE_BYTES);
  const gint64 f = (gint64)sizeof(float);
  gboolean ok = TRUE;
  for (gint64 c = 0; ok && c < s->channels; c++)
    ok = move_down(fd, (off_t)(s->npy_data + c * s->npy_len * f),
                   (off_t)((gint64)header_len + c * len * f), len * f, buf, MOVE_BYTES);
  ok = ok && pwrite(fd, header, header_len, 0) == (ssize_t)header_len &&
       ftruncate(fd, (off_t)((gint64)header_len + s->channels * len * f)) == 0;
  if (!ok)
    errno_failed(error, errno, "write failed", s->name);
  g_free(buf);
  g_free(header);
  return ok;
}

/* Pipes and devices have no length and cannot be read twice: their bytes
 * go to an unnamed temporary file first. Returns it, or -1. */
static int copy_input(const gchar *path, GError **error) {
  int in = g_open(path, O_RDONLY | O_CLOEXEC, 0);
  if (in < 0) {
    errno_failed(error, errno, "cannot open INPUT", path);
    return -1;
  }
  int fd = anonymous_temp(path, error);
  enum { COPY_BYTES = 1 << 20 };
  guint8 *buf = g_malloc(COPY_BYTES);
  gboolean ok = fd >= 0;
  while (ok) {
    ssize_t n = read(in, buf, COPY_BYTES);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      ok = errno_failed(error, errno, "cannot read INPUT", path);
    else if (n == 0)
      break;
    else if (!write_all(fd, buf, (gsize)n))
      ok = errno_failed(error, errno, "cannot copy INPUT to a temporary file", path);
  }
  g_free(buf);
  close(in);
  if (ok && lseek(fd, 0, SEEK_SET) != 0)
    ok = errno_failed(error, errno, "cannot read back INPUT's copy", path);
  if (!ok && fd >= 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* Makes room for n steps of channels planar floats in *buf (capacity *cap
 * steps per channel, the channel stride). */
static gboolean ensure_steps(float **buf, gint64 *cap, gint64 channels, gint64 n,
                             const gchar *what, GError **error) {
  if (n <= *cap)
    return TRUE;
  gint64 count;
  if (!ct_mul_i64(channels, n, &count))
    return failed(error, "the %s is too large", what);
  float *grown = alloc_floats(count, what, error);
  if (!grown)
    return FALSE;
  g_free(*buf);
  *buf = grown;
  *cap = n;
  return TRUE;
}

/* Streams the file through the layer one --chunk block at a time: read,
 * push, write what the push emitted; memory does not grow with the file. */
static gboolean apply_audio(const ApplyJob *job, Output *output, GError **error) {
  const gchar *what = job->network ? "network" : "layer";
  if (job->rank != 1)
    return failed(error,
                  "%s: audio input needs a 1d %s, this %s is %dd (use a .npy INPUT)",
                  job->input, what, what, job->rank);
  struct stat st;
  int copy = -1;
  if (stat(job->input, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) &&
      (copy = copy_input(job->input, error)) < 0)
    return FALSE;
  CtAudioInfo info;
  GError *local = NULL;
  CtAudioReader *reader = ct_audio_reader_open(job->input, copy, &info, &local);
  if (!reader) {
    failed(error, "%s: %s", job->input, local->message);
    g_error_free(local);
    if (copy >= 0)
      close(copy);
    return FALSE;
  }
  gboolean ok = FALSE;
  Runner runner = {0};
  float *in = NULL, *out = NULL;
  gint64 in_cap = 0, out_cap = 0;
  AudioSink sink = {.name = job->output, .channels = job->out_channels};
  Progress progress = {0};
  const gint64 declared = info.frames;
  gint64 out_len = 0, out_rate = 0, in_len = 0;
  char msg[256];

  if (info.channels != job->in_channels) {
    failed(error, "%s: has %d channels, the %s takes %lld%s", job->input, info.channels,
           what, (long long)job->in_channels, job->network ? "" : " (in_channels)");
    goto out;
  }
  if (!new_runner(job, NULL, &runner, msg, sizeof msg)) {
    failed(error, "%s: %s", job->input, msg);
    goto out;
  }
  /* rate * up / down: exact, or the file could not say its rate. */
  const ct_stage *stage = runner.stage;
  if (!ct_mul_i64(info.rate, stage->rate_up, &out_rate) || out_rate % stage->rate_down ||
      out_rate / stage->rate_down > G_MAXINT) {
    failed(error, "%s: output rate %d Hz x %lld/%lld is %s", job->input, info.rate,
           (long long)stage->rate_up, (long long)stage->rate_down,
           out_rate % stage->rate_down ? "not a whole number of Hz" : "too high");
    goto out;
  }
  out_rate /= stage->rate_down;
  if (!output_length(job, stage, declared, &out_len, msg, sizeof msg)) {
    failed(error, "%s: %" G_GINT64_FORMAT " frames: %s", job->input, declared, msg);
    goto out;
  }
  /* libsndfile's own limit; a .npy OUTPUT has none. */
  if (!job->to_npy && job->out_channels > 1024) {
    failed(error,
           "%s: %lld output channels are more than an audio file holds (use a .npy "
           "OUTPUT)",
           job->output, (long long)job->out_channels);
    goto out;
  }
  const gint64 chunk = MIN(job->chunk, declared);
  if (!ensure_steps(&in, &in_cap, job->in_channels, chunk, "input block", error))
    goto out;

  /* Both writers seek (audio headers are completed at the end; channels of
   * an array lie apart): a stream OUTPUT gets a spool. The writer opens
   * before anything is computed, so an encoder's refusal comes first. */
  if (!output_open(output, TRUE, error))
    goto out;
  if (job->to_npy) {
    const gint64 shape[2] = {job->out_channels, out_len};
    gsize header_len;
    gint64 data_bytes, end;
    if (!ct_mul_i64(job->out_channels, out_len, &data_bytes) ||
        !ct_mul_i64(data_bytes, sizeof(float), &data_bytes)) {
      failed(error, "%s: the output is too large", job->output);
      goto out;
    }
    if (!(sink.npy = output_file(output, error)) ||
        !write_npy_header(sink.npy, job->output, shape, 2, &header_len, error))
      goto out;
    if (!ct_add_i64((gint64)header_len, data_bytes, &end)) {
      failed(error, "%s: the output is too large", job->output);
      goto out;
    }
    sink.npy_data = (gint64)header_len;
    sink.npy_len = out_len;
  } else {
    sink.audio =
        ct_audio_writer_open_fd(output->fd, job->audio_format, (gint)job->out_channels,
                                (gint)out_rate, out_len, error);
    if (!sink.audio) {
      g_prefix_error(error, "%s: ", job->output);
      goto out;
    }
  }

  progress_start(&progress, declared, info.rate);
  gint64 n_out = 0;
  for (;;) {
    const gint64 n = ct_audio_reader_read(reader, in, in_cap, chunk, &local);
    if (n < 0) {
      failed(error, "%s: %s", job->input, local->message);
      g_error_free(local);
      goto out;
    }
    if (n == 0)
      break;
    in_len += n;
    const gint64 expect = ct_stage_push_out_steps(runner.stage, n);
    if (expect < 0 || expect > out_len - sink.written) {
      failed(error,
             "internal error: the stream would emit %" G_GINT64_FORMAT
             " steps past the output length",
             expect);
      goto out;
    }
    /* At least one step: push never gets a NULL buffer. */
    if (!ensure_steps(&out, &out_cap, job->out_channels, MAX(expect, 1), "output block",
                      error))
      goto out;
    ct_status status = ct_stage_push(runner.stage, in, in_cap, n, out, out_cap, &n_out);
    if (status != CT_OK) {
      failed(error, "%s: %s", job->input, stage_failure(&runner, status));
      goto out;
    }
    if (!sink_write(&sink, out, out_cap, n_out, error))
      goto out;
    progress_show(&progress, in_len);
  }
  /* A file shorter than declared ends early; is it still long enough? */
  if (in_len != declared &&
      !output_length(job, stage, in_len, &out_len, msg, sizeof msg)) {
    failed(error,
           "%s: %" G_GINT64_FORMAT " frames (of %" G_GINT64_FORMAT " declared): %s",
           job->input, in_len, declared, msg);
    goto out;
  }
  const gint64 tail = ct_stage_finish_out_steps(runner.stage);
  if (tail < 0 || tail > out_len - sink.written) {
    failed(error, "internal error: the stream tail exceeds the output length");
    goto out;
  }
  if (!ensure_steps(&out, &out_cap, job->out_channels, MAX(tail, 1), "output block",
                    error))
    goto out;
  const ct_status status = ct_stage_finish(runner.stage, out, out_cap, &n_out);
  if (status != CT_OK) {
    failed(error, "%s: %s", job->input, stage_failure(&runner, status));
    goto out;
  }
  if (!sink_write(&sink, out, out_cap, n_out, error))
    goto out;
  if (sink.written != out_len) {
    failed(error,
           "internal error: the stream emitted %" G_GINT64_FORMAT
           " steps, expected %" G_GINT64_FORMAT,
           sink.written, (gint64)out_len);
    goto out;
  }
  progress_clear(&progress);
  if (sink.audio) {
    ok = ct_audio_writer_close(sink.audio, error);
    sink.audio = NULL;
    if (!ok)
      g_prefix_error(error, "%s: ", job->output);
    ok = output_finish(output, ok, error);
  } else {
    ok = out_len == sink.npy_len || sink_shrink_npy(&sink, output->fd, out_len, error);
    ok = close_file(sink.npy, job->output, ok, error);
    sink.npy = NULL;
    ok = output_finish(output, ok, error);
  }
  if (ok) {
    gchar *model_desc = job_description(job, runner.stage);
    fprintf(summary_stream(output),
            "applied %s to %s: %d x %" G_GINT64_FORMAT
            " @ %d Hz -> %lld x %lld @ %" G_GINT64_FORMAT " Hz, wrote %s\n",
            model_desc, job->input, info.channels, in_len, info.rate,
            (long long)job->out_channels, (long long)out_len, out_rate, job->output);
    g_free(model_desc);
  }

out:
  progress_clear(&progress);
  if (sink.audio)
    ct_audio_writer_close(sink.audio, NULL);
  if (sink.npy)
    fclose(sink.npy);
  output_discard(output);
  g_free(in);
  g_free(out);
  runner_clear(&runner);
  ct_audio_reader_free(reader);
  if (copy >= 0)
    close(copy);
  return ok;
}

/* The extension of OUTPUT's file name (after its last dot, not a leading
 * one), or NULL. */
static const gchar *output_extension(const gchar *path) {
  const gchar *slash = strrchr(path, '/');
  const gchar *base = slash ? slash + 1 : path;
  const gchar *dot = strrchr(base, '.');
  return dot && dot != base && dot[1] ? dot + 1 : NULL;
}

/* The format OUTPUT's name asks for, checked before anything else is done.
 * A name without an extension (also "-", a device) gets the default: .npy
 * for a .npy INPUT, 32-bit float WAV for audio. */
static gboolean choose_output_format(ApplyJob *job, gboolean npy_in, GError **error) {
  const gchar *ext = output_extension(job->output);
  job->to_npy = npy_in || (ext && g_ascii_strcasecmp(ext, "npy") == 0);
  if (npy_in && ext && g_ascii_strcasecmp(ext, "npy") != 0)
    return usage_error(error,
                       "%s: a .npy INPUT is written as .npy, so OUTPUT must end in .npy "
                       "(an array has no sample rate for an audio file)",
                       job->output);
  if (job->to_npy)
    return TRUE;
  GError *local = NULL;
  if (ct_audio_format_for_extension(ext, &job->audio_format, &local))
    return TRUE;
  if (g_error_matches(local, CT_AUDIO_ERROR, CT_AUDIO_ERROR_UNKNOWN_EXTENSION)) {
    gchar *list = ct_audio_writable_extensions();
    usage_error(error,
                "%s: unknown output extension '.%s': audio is written as %s (no "
                "extension: WAV), arrays as .npy",
                job->output, ext, list);
    g_free(list);
  } else {
    failed(error, "%s: %s", job->output, local->message);
  }
  g_error_free(local);
  return FALSE;
}

/* TRUE when no per-layer option is given with a network. */
static gboolean refuse_layer_options(const Options *o, const gchar *model,
                                     GError **error) {
  const CtOverrides *ov = &o->overrides;
  if ((o->layer && *o->layer) || ov->stride.set || ov->padding.set ||
      ov->output_padding.set || ov->dilation.set || ov->groups_set)
    return usage_error(error,
                       "%s is an ONNX network: --layer, --stride, --padding, "
                       "--output-padding, --dilation and --groups apply to a single "
                       ".safetensors layer",
                       model);
  return TRUE;
}

static gboolean run_apply(const Options *o, GError **error) {
  if (o->positional->len != 3)
    return usage_error(error, "apply takes MODEL INPUT OUTPUT (%u argument%s given)",
                       o->positional->len, o->positional->len == 1 ? "" : "s");
  ApplyJob job = {
      .model = g_ptr_array_index(o->positional, 0),
      .input = g_ptr_array_index(o->positional, 1),
      .output = g_ptr_array_index(o->positional, 2),
  };
  const gboolean npy_in = has_extension(job.input, "npy");
  /* A reader of OUTPUT that goes away is then a write error (EPIPE),
   * reported in one line like any other, not a silent death. */
  signal(SIGPIPE, SIG_IGN);
  Output output = {.fd = -1};
  if (!choose_output_format(&job, npy_in, error) ||
      !output_resolve(&output, job.output, error)) {
    output_clear(&output);
    return FALSE;
  }
  ct_layer *layer = NULL;
  ct_network *network = NULL;
  CtFileKind kind;
  /* The content decides; a file that cannot be read is the layer loader's
   * to report. */
  if (ct_model_sniff(job.model, &kind, NULL) && kind == CT_FILE_ONNX) {
    if (refuse_layer_options(o, job.model, error))
      network = ct_onnx_load(job.model, error);
  } else {
    layer = load_layer(job.model, o, error);
  }
  gboolean ok = layer || network;
  /* A plain reason for a missing input, before libsndfile words it. */
  if (ok && g_access(job.input, R_OK) != 0)
    ok = errno_failed(error, errno, "cannot open INPUT", job.input);
  if (ok) {
    job.layer = layer;
    job.network = network;
    if (layer) {
      job.params = ct_layer_params(layer);
      job.rank = job.params->rank;
      job.in_channels = job.params->in_channels;
      job.out_channels = job.params->out_channels;
    } else {
      job.rank = network->rank;
      job.in_channels = network->values[network->input].channels;
      job.out_channels = network->values[network->output].channels;
    }
    job.chunk = o->chunk ? o->chunk : default_chunk(job.rank);
    job.threads = o->threads ? (gint)MIN(o->threads, 1024) : (gint)g_get_num_processors();
    if (job.threads > 1 && !(job.pool = ct_pool_new(job.threads)))
      ok = failed(error, "cannot start %d threads", job.threads);
  }
  if (ok)
    ok = npy_in ? apply_npy(&job, &output, error) : apply_audio(&job, &output, error);
  output_clear(&output);
  /* The pool outlives the stages (freed in apply_*). */
  if (job.pool)
    ct_pool_free(job.pool);
  ct_layer_free(layer);
  ct_onnx_free(network);
  return ok;
}

/* ---- info -------------------------------------------------------------- */

/* "4" or "4 + 4" (the channels of a node's inputs or outputs) */
static gchar *channels_list(const ct_network *net, const int *values, int n) {
  GString *s = g_string_new(NULL);
  for (int i = 0; i < n; i++)
    g_string_append_printf(s, "%s%lld", i ? " + " : "",
                           (long long)net->values[values[i]].channels);
  return g_string_free(s, FALSE);
}

/* "2H", "H/2", "2H - 4", "H": out = (num / den) in + offset. */
static gchar *size_term(const char *axis, gint64 num, gint64 den, gint64 offset) {
  for (gint64 d = den; d > 1; d--)
    while (num % d == 0 && den % d == 0 && d <= den) {
      num /= d;
      den /= d;
    }
  GString *t = g_string_new(NULL);
  if (num == 0) {
    g_string_append_printf(t, "%" G_GINT64_FORMAT, offset);
    return g_string_free(t, FALSE);
  }
  if (num != 1)
    g_string_append_printf(t, "%" G_GINT64_FORMAT, num);
  g_string_append(t, axis);
  if (den != 1)
    g_string_append_printf(t, "/%" G_GINT64_FORMAT, den);
  if (offset != 0)
    g_string_append_printf(t, " %c %" G_GINT64_FORMAT, offset < 0 ? '-' : '+',
                           offset < 0 ? -offset : offset);
  return g_string_free(t, FALSE);
}

/* The graph's geometry for info: every axis's output size as a function of
 * its input size (measured at sizes 240 and 480, multiples of the usual
 * strides, so the rounding of other sizes is not shown), the rate along
 * the streamed axis, and the latency. */
static void print_network_geometry(const ct_network *net) {
  static const char *const names[3][3] = {{"L"}, {"H", "W"}, {"T", "H", "W"}};
  const int rank = net->rank;
  char msg[256] = "";
  enum { SIZE1 = 240, SIZE2 = 480 };
  int64_t frame[CT_MAX_RANK - 1] = {SIZE1, SIZE1};
  ct_graph *base = ct_graph_new(net, frame, msg, sizeof msg);
  if (!base) {
    printf("size: not known: %s\n", msg);
    return;
  }
  const ct_stage *st = ct_graph_stage(base);
  GString *in = g_string_new("["), *out = g_string_new("[");
  gboolean known = TRUE;
  for (int a = 0; a < rank; a++) {
    gint64 o1, o2;
    if (a == 0) {
      o1 = ct_stage_length(st, SIZE1);
      o2 = ct_stage_length(st, SIZE2);
    } else {
      int64_t wide[CT_MAX_RANK - 1] = {SIZE1, SIZE1};
      wide[a - 1] = SIZE2;
      ct_graph *g = ct_graph_new(net, wide, msg, sizeof msg);
      o1 = st->out_frame_shape[a - 1];
      o2 = g ? ct_graph_stage(g)->out_frame_shape[a - 1] : -1;
      ct_graph_free(g);
    }
    known = known && o1 >= 0 && o2 >= 0;
    gchar *term = size_term(names[rank - 1][a], o2 - o1, SIZE2 - SIZE1,
                            o1 - (o2 - o1) * SIZE1 / (SIZE2 - SIZE1));
    g_string_append_printf(in, "%s%s", a ? ", " : "", names[rank - 1][a]);
    g_string_append_printf(out, "%s%s", a ? ", " : "", term);
    g_free(term);
  }
  g_string_append(in, "]");
  g_string_append(out, "]");
  if (known)
    printf("size: %s -> %s\n", in->str, out->str);
  if (st->rate_down == 1)
    printf("rate: %lld output steps per input step along %s (streamed)\n",
           (long long)st->rate_up, names[rank - 1][0]);
  else
    printf("rate: %lld/%lld output steps per input step along %s (streamed)\n",
           (long long)st->rate_up, (long long)st->rate_down, names[rank - 1][0]);
  printf("latency: %lld output steps, %lld input steps\n",
         (long long)ct_graph_latency_output_steps(base),
         (long long)ct_graph_latency_input_steps(base));
  g_string_free(in, TRUE);
  g_string_free(out, TRUE);
  ct_graph_free(base);
}

/* A network: its interface and one line per node (file index, name, op,
 * channels in -> out), then its geometry. */
static gboolean run_info_network(const Options *o, const gchar *model, GError **error) {
  if (!refuse_layer_options(o, model, error))
    return FALSE;
  ct_network *net = ct_onnx_load(model, error);
  if (!net)
    return FALSE;
  const ct_value *in = &net->values[net->input], *out = &net->values[net->output];
  printf("model: %s\n", model);
  printf("network: %dd, %d nodes\n", net->rank, net->n_nodes);
  printf("input: \"%s\", %lld channels\n", in->name, (long long)in->channels);
  printf("output: \"%s\", %lld channels\n", out->name, (long long)out->channels);
  int name_width = 4, op_width = 2;
  for (int i = 0; i < net->n_nodes; i++) {
    const ct_node *n = &net->nodes[i];
    name_width = MAX(name_width, (int)MIN(strlen(n->name ? n->name : "-"), 48));
    op_width = MAX(op_width, (int)MIN(strlen(n->op), 32));
  }
  printf("%5s  %-*s  %-*s  %s\n", "node", name_width, "name", op_width, "op", "channels");
  for (int i = 0; i < net->n_nodes; i++) {
    const ct_node *n = &net->nodes[i];
    gchar *ins = channels_list(net, n->inputs, n->n_inputs);
    gchar *outs = channels_list(net, n->outputs, n->n_outputs);
    printf("%5d  %-*s  %-*s  %s -> %s\n", n->index, name_width, n->name ? n->name : "-",
           op_width, n->op, ins, outs);
    g_free(ins);
    g_free(outs);
  }
  print_network_geometry(net);
  ct_onnx_free(net);
  return TRUE;
}

static gboolean run_info(const Options *o, GError **error) {
  if (o->positional->len != 1)
    return usage_error(error, "info takes MODEL (%u arguments given)",
                       o->positional->len);
  const gchar *model = g_ptr_array_index(o->positional, 0);
  CtFileKind kind;
  /* The content decides; a file that cannot be read is the layer loader's
   * to report, as before. */
  if (ct_model_sniff(model, &kind, NULL) && kind == CT_FILE_ONNX)
    return run_info_network(o, model, error);
  ct_layer *layer = load_layer(model, o, error);
  if (!layer)
    return FALSE;
  const ct_params *p = ct_layer_params(layer);
  gchar *lists[5] = {
      axis_list(p->kernel, p->rank),   axis_list(p->stride, p->rank),
      axis_list(p->padding, p->rank),  axis_list(p->output_padding, p->rank),
      axis_list(p->dilation, p->rank),
  };
  printf("model: %s\n", model);
  if (o->layer && *o->layer)
    printf("layer: %s\n", o->layer);
  printf("dimensionality: %dd (ConvTranspose%dd)\n", p->rank, p->rank);
  printf("in_channels: %lld\n", (long long)p->in_channels);
  printf("out_channels: %lld\n", (long long)p->out_channels);
  printf("groups: %lld\n", (long long)p->groups);
  printf("kernel: %s\n", lists[0]);
  printf("stride: %s\n", lists[1]);
  printf("padding: %s\n", lists[2]);
  printf("output_padding: %s\n", lists[3]);
  printf("dilation: %s\n", lists[4]);
  printf("bias: %s\n", ct_layer_bias(layer) ? "yes" : "no");
  printf("latency: %lld output steps, %lld input steps\n",
         (long long)ct_latency_output_steps(p), (long long)ct_latency_input_steps(p));
  for (gsize i = 0; i < G_N_ELEMENTS(lists); i++)
    g_free(lists[i]);
  ct_layer_free(layer);
  return TRUE;
}

/* ---- bench ------------------------------------------------------------ */

/* bench [--case NAME[,NAME...]] [--threads N] [--json] */
static int run_bench(int argc, char **argv) {
  const gchar *case_list = NULL;
  gint64 threads = 0;
  gboolean json = FALSE;
  GError *error = NULL;
  for (int i = 0; i < argc && !error; i++) {
    const gchar *arg = argv[i], *eq = strchr(arg, '=');
    gchar *name = eq ? g_strndup(arg, (gsize)(eq - arg)) : g_strdup(arg);
    const gchar *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    gboolean takes_value = g_str_equal(name, "--case") || g_str_equal(name, "--threads");
    if (g_str_equal(name, "--json") && !eq) {
      json = TRUE;
    } else if (!takes_value) {
      usage_error(&error, "bench: unknown option '%s'", arg);
    } else if (!value) {
      usage_error(&error, "bench: %s needs a value", name);
    } else {
      if (!eq)
        i++;
      if (g_str_equal(name, "--case"))
        case_list = value;
      else
        parse_integer("threads", value, 0, &threads, &error);
    }
    g_free(name);
  }
  if (!error && !ct_bench_run(case_list, (gint)MIN(threads, 1024), json, &error)) {
    print_error_line(error->message);
    g_error_free(error);
    return EXIT_FAILED;
  }
  if (error) {
    print_error_line(error->message);
    g_error_free(error);
    return EXIT_USAGE;
  }
  return 0;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }
  const gchar *command = argv[1];
  if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0 ||
      strcmp(command, "help") == 0) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (strcmp(command, "--version") == 0) {
    printf("convtranspose %s\n", PROJECT_VERSION);
    return fflush(stdout) == 0 ? 0 : EXIT_FAILED;
  }
  if (strcmp(command, "bench") == 0)
    return run_bench(argc - 2, argv + 2);

  GError *error = NULL;
  gboolean ok = FALSE;
  gboolean help = FALSE;
  Options o = {.positional = g_ptr_array_new()};
  const gboolean is_info = strcmp(command, "info") == 0;
  if (!is_info && strcmp(command, "apply") != 0) {
    usage_error(&error, "unknown command '%s': expected info, apply or bench", command);
  } else if (parse_options(command, is_info, argc - 2, argv + 2, &o, &help, &error)) {
    if (help) {
      fputs(usage_text, stdout);
      ok = TRUE;
    } else {
      install_signal_cleanup();
      ok = is_info ? run_info(&o, &error) : run_apply(&o, &error);
    }
  }
  g_ptr_array_free(o.positional, TRUE);
  if (ok) {
    if (fflush(stdout) != 0) {
      print_error_line("cannot write to standard output");
      return EXIT_FAILED;
    }
    return 0;
  }
  int status = error && error->domain == CLI_ERROR && error->code == CLI_ERROR_USAGE
                   ? EXIT_USAGE
                   : EXIT_FAILED;
  print_error_line(error ? error->message : "failed");
  g_clear_error(&error);
  return status;
}
