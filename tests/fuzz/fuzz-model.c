/* libFuzzer target: the safetensors loader (model/) on any bytes.
 *
 * The input becomes the content of an in-memory file (memfd), loaded by path
 * through /proc/self/fd as the element and the CLI load a model: no disk
 * I/O per run. Beyond "never crash, never read out of bounds", it checks the
 * contract's promises: a refusal is one GError in CT_MODEL_ERROR whose single
 * line names the file; a loaded layer validates, runs, and (when its values
 * are tame) agrees with the reference implementation. */
#include <glib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/reference.h"
#include "kernels/stream.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

static void check(gboolean ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz-model: property violated: %s (%s)\n", what,
            detail ? detail : "");
    abort();
  }
}

static void set_content(const uint8_t *data, size_t size) {
  if (memfd < 0) {
    memfd = memfd_create("fuzz-model", MFD_CLOEXEC);
    check(memfd >= 0, "memfd_create", NULL);
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
  }
  check(ftruncate(memfd, 0) == 0, "ftruncate", NULL);
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(memfd, data + done, size - done, (off_t)done);
    check(n > 0, "pwrite", NULL);
    done += (size_t)n;
  }
}

/* A refusal: exactly one error, in our domain, one line, naming the file. */
static void check_refusal(GError *error) {
  check(error != NULL, "a NULL layer comes with an error", NULL);
  check(error->domain == CT_MODEL_ERROR, "error domain", error->message);
  check(g_utf8_validate(error->message, -1, NULL), "message is UTF-8", NULL);
  for (const char *p = error->message; *p; p++)
    check((guchar)*p >= 0x20 && *p != 0x7f, "message is one line without control bytes",
          error->message);
  check(g_str_has_prefix(error->message, path), "message names the file", error->message);
}

/* Geometry small enough to run in microseconds (the loader accepts any layer
 * PyTorch would; how the elements cope with huge ones is tested elsewhere). */
static gboolean cheap(const ct_params *p, const int64_t *out_shape) {
  int64_t values = p->out_channels;
  if (p->in_channels > 64 || p->out_channels > 64)
    return FALSE;
  for (int a = 0; a < p->rank; a++) {
    if (p->padding[a] > 64 || p->stride[a] > 64 || p->dilation[a] > 64 ||
        p->kernel[a] > 64 || out_shape[a] < 1 || out_shape[a] > 4096)
      return FALSE;
    values *= out_shape[a];
  }
  return values <= 1 << 16;
}

/* Runs the layer on a small input; compares with the reference when the
 * weights are finite and moderate (order of summation cannot matter then). */
static void exercise(const ct_layer *layer) {
  const ct_params *p = ct_layer_params(layer);
  char msg[256];
  check(ct_params_validate(p, msg, sizeof msg) == CT_OK, "loaded params validate", msg);
  int64_t in_shape[CT_MAX_RANK] = {3, 2, 2}, out_shape[CT_MAX_RANK];
  if (ct_output_shape(p, in_shape, out_shape, NULL, 0) != CT_OK || !cheap(p, out_shape))
    return;
  int64_t n_in = p->in_channels, n_out = p->out_channels;
  for (int a = 0; a < p->rank; a++) {
    n_in *= in_shape[a];
    n_out *= out_shape[a];
  }
  float *in = g_new(float, n_in), *out = g_new(float, n_out), *ref = g_new(float, n_out);
  for (int64_t i = 0; i < n_in; i++)
    in[i] = (float)((i * 7919) % 17) / 8.0f - 1.0f;
  check(ct_forward(layer, in_shape, in, out, msg, sizeof msg) == CT_OK, "forward", msg);
  const float *w = ct_layer_weight(layer), *b = ct_layer_bias(layer);
  int64_t n_w = ct_weight_count(p);
  gboolean tame = n_w > 0;
  for (int64_t i = 0; tame && i < n_w; i++)
    tame = isfinite(w[i]) && fabsf(w[i]) <= 1e3f;
  for (int64_t i = 0; tame && b && i < p->out_channels; i++)
    tame = isfinite(b[i]) && fabsf(b[i]) <= 1e3f;
  if (tame) {
    /* The same sums over absolute values bound each output's rounding error:
     * at most 2 n eps of its magnitude for n terms. */
    float *abs_in = g_new(float, n_in), *abs_w = g_new(float, n_w), *abs_b = NULL;
    float *mag = g_new(float, n_out);
    for (int64_t i = 0; i < n_in; i++)
      abs_in[i] = fabsf(in[i]);
    for (int64_t i = 0; i < n_w; i++)
      abs_w[i] = fabsf(w[i]);
    if (b) {
      abs_b = g_new(float, p->out_channels);
      for (int64_t i = 0; i < p->out_channels; i++)
        abs_b[i] = fabsf(b[i]);
    }
    check(ct_reference_forward(p, w, b, in_shape, in, ref) == CT_OK, "reference", NULL);
    check(ct_reference_forward(p, abs_w, abs_b, in_shape, abs_in, mag) == CT_OK,
          "reference", NULL);
    const double terms = (double)n_w / (double)p->out_channels + 1; /* Cin/g x k */
    for (int64_t i = 0; i < n_out; i++)
      check(fabs(out[i] - ref[i]) <= (1e-5 + 2.4e-7 * terms) * mag[i] + 1e-30,
            "forward agrees with the reference", NULL);
    g_free(abs_in);
    g_free(abs_w);
    g_free(abs_b);
    g_free(mag);
  }
  g_free(in);
  g_free(out);
  g_free(ref);
}

/* The prefix of the first "<prefix>.weight" name in the header (or of a
 * weight-normalised pair's tensor), if any, so layers of whole checkpoints
 * are reached too. */
static gchar *guess_prefix(const uint8_t *data, size_t size) {
  static const char *const keys[] = {".weight\"", ".weight_v\"", ".weight_g\"",
                                     ".parametrizations.weight.original"};
  size_t limit = size < 4096 ? size : 4096;
  for (size_t i = 8; i < limit; i++) {
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
      const size_t klen = strlen(keys[k]);
      if (i + klen > limit || memcmp(data + i, keys[k], klen) != 0)
        continue;
      size_t start = i;
      while (start > 8 && data[start - 1] != '"')
        start--;
      if (start > 8 && start < i)
        return g_strndup((const char *)data + start, i - start);
      return NULL;
    }
  }
  return NULL;
}

/* Warnings, like refusals, are single UTF-8 lines naming the file. */
static void check_warnings(GPtrArray *warnings) {
  for (guint i = 0; i < warnings->len; i++) {
    const char *w = g_ptr_array_index(warnings, i);
    check(g_utf8_validate(w, -1, NULL), "warning is UTF-8", NULL);
    for (const char *p = w; *p; p++)
      check((guchar)*p >= 0x20 && *p != 0x7f, "warning is one line without control bytes",
            w);
    check(g_str_has_prefix(w, path), "warning names the file", w);
  }
  g_ptr_array_set_size(warnings, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  set_content(data, size);
  gchar *prefix = guess_prefix(data, size);
  const gchar *prefixes[2] = {NULL, prefix};
  GPtrArray *warnings = g_ptr_array_new_with_free_func(g_free);
  for (int i = 0; i < (prefix ? 2 : 1); i++) {
    GError *error = NULL;
    ct_layer *layer = ct_model_load_full(path, prefixes[i], NULL, warnings, &error);
    check_warnings(warnings);
    if (!layer) {
      check_refusal(error);
      g_error_free(error);
      continue;
    }
    check(error == NULL, "no error with a layer", NULL);
    exercise(layer);
    ct_layer_free(layer);
    /* Overrides, chosen by the last byte, on the file that loaded. */
    CtOverrides ov = {0};
    switch (data[size - 1] % 4) {
    case 0:
      ct_axis_override_parse("2", &ov.stride, NULL);
      break;
    case 1:
      ct_axis_override_parse("[1,2,1]", &ov.padding, NULL);
      break;
    case 2:
      ct_axis_override_parse("1", &ov.output_padding, NULL);
      ct_axis_override_parse("2", &ov.dilation, NULL);
      break;
    default:
      ov.groups_set = TRUE;
      ov.groups = 2;
      break;
    }
    layer = ct_model_load(path, prefixes[i], &ov, &error);
    if (layer) {
      exercise(layer);
      ct_layer_free(layer);
    } else {
      check_refusal(error);
      g_error_free(error);
    }
  }
  g_ptr_array_unref(warnings);
  g_free(prefix);
  return 0;
}
