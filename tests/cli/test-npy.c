/* tools/npy: round trips, every header version, and refusal of malformed or
 * unsupported files, including every truncation and random corruptions (run
 * under ASan, an out-of-bounds read would show here). */
#include "tools/npy.h"
#include "tests/tap.h"

#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

/* A .npy image from a header dict and raw data, with the given version;
 * the buffer is exactly as long as the file so ASan sees any overread. */
static guint8 *make_npy(int major, const char *dict, const void *data, gsize data_size,
                        gsize *size) {
  const gsize prefix = major == 1 ? 10 : 12;
  const gsize dict_len = strlen(dict);
  *size = prefix + dict_len + data_size;
  guint8 *buf = g_malloc(*size ? *size : 1);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (guint8)major;
  buf[7] = 0;
  buf[8] = (guint8)(dict_len & 0xff);
  buf[9] = (guint8)((dict_len >> 8) & 0xff);
  if (major > 1) {
    buf[10] = (guint8)((dict_len >> 16) & 0xff);
    buf[11] = (guint8)((dict_len >> 24) & 0xff);
  }
  memcpy(buf + prefix, dict, dict_len);
  if (data_size)
    memcpy(buf + prefix + dict_len, data, data_size);
  return buf;
}

/* Parses a copy of exactly size bytes (so overreads are caught). */
static gboolean parse_copy(const guint8 *data, gsize size, CtNpy *npy, GError **error) {
  guint8 *copy = g_memdup2(data, size ? size : 1);
  gboolean ok = ct_npy_parse(size ? copy : NULL, size, npy, error);
  /* The parse result points into copy: keep only metadata checks after. */
  npy->data = NULL;
  g_free(copy);
  return ok;
}

/* Expects a refusal whose message contains `needle`. */
static void expect_refused(const char *what, const guint8 *data, gsize size, int code,
                           const char *needle) {
  CtNpy npy;
  GError *error = NULL;
  gboolean ok = parse_copy(data, size, &npy, &error);
  gboolean good = !ok && error && error->domain == CT_NPY_ERROR &&
                  (code < 0 || error->code == code) &&
                  (!needle || strstr(error->message, needle) != NULL);
  tap_ok(good, "refused: %s (%s)", what, error ? error->message : "accepted");
  g_clear_error(&error);
}

static void expect_dict_refused(const char *what, const char *dict, gsize data_size,
                                int code, const char *needle) {
  static const guint8 zeros[64];
  gsize size;
  guint8 *buf = make_npy(1, dict, zeros, data_size, &size);
  expect_refused(what, buf, size, code, needle);
  g_free(buf);
}

static void check_round_trip(const char *dir) {
  const gint64 shape[3] = {2, 3, 4};
  float values[24];
  for (int i = 0; i < 24; i++)
    values[i] = (float)i * 0.25f - 3.0f;
  values[5] = -0.0f;
  values[7] = INFINITY;
  gchar *path = g_build_filename(dir, "round.npy", NULL);
  GError *error = NULL;
  tap_ok(ct_npy_save_f32(path, shape, 3, values, &error), "save [2, 3, 4] float32");
  g_clear_error(&error);
  gchar *contents = NULL;
  gsize size = 0;
  g_file_get_contents(path, &contents, &size, NULL);
  CtNpy npy;
  gboolean ok = contents && ct_npy_parse((const guint8 *)contents, size, &npy, &error);
  tap_ok(ok && npy.major == 1 && npy.minor == 0 && npy.dtype == CT_NPY_F32 &&
             npy.ndim == 3 && npy.shape[0] == 2 && npy.shape[1] == 3 &&
             npy.shape[2] == 4 && npy.count == 24,
         "parse back: version 1.0, float32, shape [2, 3, 4]");
  tap_ok(ok && npy.data_offset % 64 == 0 && contents[npy.data_offset - 1] == '\n',
         "header padded to a multiple of 64 bytes, ending with a newline");
  float back[24] = {0};
  if (ok)
    ct_npy_read_f32(&npy, 0, 24, back);
  tap_ok(ok && memcmp(back, values, sizeof values) == 0, "values bitwise equal");
  tap_ok(contents && size > 10 &&
             strstr(contents + 10, "{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (2, 3, 4), }") != NULL,
         "header text is numpy's own");
  g_free(contents);
  g_clear_error(&error);

  /* Rank 1 is written "(5,)": "(5)" would be an int in Python. */
  const gint64 one[1] = {5};
  gsize len;
  guint8 *header = ct_npy_header_f32(one, 1, &len, NULL);
  gchar *text = g_strndup((const gchar *)header + 10, len - 10);
  tap_ok(strstr(text, "'shape': (5,)") != NULL && len % 64 == 0,
         "rank-1 header writes (5,)");
  g_free(text);
  g_free(header);

  /* A scalar and an empty array round trip too. */
  const gint64 empty[2] = {0, 7};
  const float scalar = 1.5f;
  ok = ct_npy_save_f32(path, NULL, 0, &scalar, NULL);
  contents = NULL;
  ok = ok && g_file_get_contents(path, &contents, &size, NULL) &&
       ct_npy_parse((const guint8 *)contents, size, &npy, NULL);
  tap_ok(ok && npy.ndim == 0 && npy.count == 1, "0-d array round trip");
  g_free(contents);
  ok = ct_npy_save_f32(path, empty, 2, values, NULL);
  contents = NULL;
  ok = ok && g_file_get_contents(path, &contents, &size, NULL) &&
       ct_npy_parse((const guint8 *)contents, size, &npy, NULL);
  tap_ok(ok && npy.ndim == 2 && npy.count == 0 && npy.data_size == 0,
         "empty [0, 7] array round trip");
  g_free(contents);
  g_unlink(path);
  g_free(path);
}

static void check_versions_and_dtypes(void) {
  const float f[3] = {1.0f, -2.5f, 3.25f};
  const double d[3] = {0.1, -1e30, 1e-3};
  for (int major = 1; major <= 3; major++) {
    gsize size;
    guint8 *buf =
        make_npy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", f,
                 sizeof f, &size);
    CtNpy npy;
    GError *error = NULL;
    guint8 *copy = g_memdup2(buf, size);
    gboolean ok = ct_npy_parse(copy, size, &npy, &error);
    float out[3] = {0};
    if (ok)
      ct_npy_read_f32(&npy, 0, 3, out);
    tap_ok(ok && npy.major == major && memcmp(out, f, sizeof f) == 0,
           "version %d.0 header parsed (%s)", major, error ? error->message : "ok");
    g_clear_error(&error);
    g_free(copy);
    g_free(buf);
  }
  /* float64 converts to float32; the data may be unaligned. */
  gsize size;
  guint8 *buf = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", d,
                         sizeof d, &size);
  CtNpy npy;
  gboolean ok = ct_npy_parse(buf, size, &npy, NULL);
  float *all = ok ? ct_npy_to_f32(&npy, NULL) : NULL;
  tap_ok(ok && npy.dtype == CT_NPY_F64 && all && all[0] == (float)d[0] &&
             all[1] == (float)d[1] && all[2] == (float)d[2],
         "float64 converted to float32 (unaligned data)");
  float part[2] = {0};
  if (ok)
    ct_npy_read_f32(&npy, 1, 2, part);
  tap_ok(ok && part[0] == (float)d[1] && part[1] == (float)d[2],
         "partial read at offset");
  g_free(all);
  g_free(buf);

  /* Native-order marks, double quotes, spacing, key order, trailing comma
   * absent, Python 2's long suffix. */
  const char *accepted[] = {
      "{'descr': '|f4', 'fortran_order': False, 'shape': (3,), }",
      "{'descr': '=f4', 'fortran_order': False, 'shape': (3,), }",
      "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}",
      "{'shape': (3,), 'fortran_order': False, 'descr': '<f4'}   \n",
      "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 3 , ) , }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(accepted); i++) {
    guint8 *b = make_npy(1, accepted[i], f, sizeof f, &size);
    GError *error = NULL;
    tap_ok(parse_copy(b, size, &npy, &error) && npy.count == 3, "accepted: %s%s%s",
           accepted[i], error ? " -> " : "", error ? error->message : "");
    g_clear_error(&error);
    g_free(b);
  }
}

static void check_refusals(void) {
  const int F = CT_NPY_ERROR_FORMAT, U = CT_NPY_ERROR_UNSUPPORTED;
  expect_refused("empty file", (const guint8 *)"", 0, F, "empty");
  expect_refused("bad magic", (const guint8 *)"\x93NUMPZ\x01\x00\x10\x00", 10, F,
                 "magic");
  expect_refused("text file", (const guint8 *)"hello world, not numpy", 22, F, "magic");
  expect_refused("magic only", (const guint8 *)"\x93NUMPY", 6, F, "truncated");
  expect_refused("version 1.0 without header length",
                 (const guint8 *)"\x93NUMPY\x01\x00\x10", 9, F, "truncated");
  expect_refused("version 2.0 without header length",
                 (const guint8 *)"\x93NUMPY\x02\x00\x10\x00\x00", 11, F, "truncated");
  expect_refused("version 4.0", (const guint8 *)"\x93NUMPY\x04\x00\x00\x00", 10, U,
                 "version 4.0");
  expect_refused("version 1.1", (const guint8 *)"\x93NUMPY\x01\x01\x00\x00", 10, U,
                 "version 1.1");
  expect_refused("header length past the end",
                 (const guint8 *)"\x93NUMPY\x01\x00\xff\x00{'descr'", 18, F, "truncated");
  expect_refused("huge header length (2.0)",
                 (const guint8 *)"\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14, F,
                 "too large");

  const char *ok_head = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  expect_dict_refused("big-endian float32",
                      "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, U,
                      "big-endian");
  expect_dict_refused("big-endian float64",
                      "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 16, U,
                      "big-endian");
  expect_dict_refused("int32 dtype",
                      "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8, U,
                      "'<i4' is not supported");
  expect_dict_refused("float16 dtype",
                      "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4, U,
                      "not supported");
  expect_dict_refused("unicode dtype",
                      "{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }", 32, U,
                      "not supported");
  expect_dict_refused(
      "structured dtype",
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, U,
      "structured");
  expect_dict_refused("Fortran order",
                      "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, U,
                      "Fortran");
  expect_dict_refused("fortran_order not a bool",
                      "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2), }", 16, F,
                      "True or False");
  expect_dict_refused("not a dict", "['descr', '<f4']", 0, F, "dictionary");
  expect_dict_refused("missing shape", "{'descr': '<f4', 'fortran_order': False}", 4, F,
                      "missing key 'shape'");
  expect_dict_refused("missing descr", "{'fortran_order': False, 'shape': (1,)}", 4, F,
                      "missing key 'descr'");
  expect_dict_refused("duplicate key",
                      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': "
                      "(1,)}",
                      4, F, "twice");
  expect_dict_refused("unknown key",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                      4, F, "unexpected key");
  expect_dict_refused("unterminated string", "{'descr': '<f4", 0, F, "unterminated");
  expect_dict_refused("unterminated dict",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4, F,
                      NULL);
  expect_dict_refused("shape (5) is not a tuple",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (5)}", 20, F,
                      "tuple");
  expect_dict_refused("shape as a list",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': [5]}", 20, F,
                      "tuple");
  expect_dict_refused("negative length",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 0, F,
                      "non-negative");
  expect_dict_refused("float length",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}", 0, F,
                      NULL);
  expect_dict_refused("unclosed shape",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", 0, F,
                      NULL);
  expect_dict_refused("length past int64",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': "
                      "(99999999999999999999,)}",
                      0, F, "too large");
  expect_dict_refused("element count overflows",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': "
                      "(4294967296, 4294967296)}",
                      0, F, "overflows");
  expect_dict_refused("byte size overflows",
                      "{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(4611686018427387904,)}",
                      0, F, "overflows");
  expect_dict_refused(
      "too many dimensions",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,"
      "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)}",
      4, U, "dimensions");
  expect_dict_refused("data shorter than the shape", ok_head, 15, F, "truncated");
  expect_dict_refused("data longer than the shape", ok_head, 17, F, "trailing");
  expect_dict_refused("text after the dict",
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", 4, F,
                      "after");
  expect_dict_refused("escape in a string",
                      "{'descr': '<\\x66\\x34', 'fortran_order': False, 'shape': (1,)}",
                      4, F, NULL);
}

/* xorshift64*, fixed seed: the same corruptions every run. */
static guint64 rng = 0x2545F4914F6CDD1Dull;
static guint64 next_random(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1Dull;
}

static void check_robustness(void) {
  const float f[6] = {1, 2, 3, 4, 5, 6};
  gsize size;
  guint8 *good =
      make_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", f,
               sizeof f, &size);
  CtNpy npy;
  gboolean all_refused = TRUE;
  for (gsize n = 0; n < size; n++) {
    GError *error = NULL;
    if (parse_copy(good, n, &npy, &error))
      all_refused = FALSE;
    g_clear_error(&error);
  }
  tap_ok(all_refused, "every truncation (0..%" G_GSIZE_FORMAT " bytes) refused",
         size - 1);

  /* Random byte flips: anything accepted must still describe a consistent
   * file; nothing may crash or read outside the buffer (ASan). */
  gboolean consistent = TRUE;
  int accepted = 0;
  for (int iter = 0; iter < 20000; iter++) {
    guint8 *copy = g_memdup2(good, size);
    int flips = 1 + (int)(next_random() % 4);
    for (int k = 0; k < flips; k++)
      copy[next_random() % size] = (guint8)next_random();
    gsize n = next_random() % 8 == 0 ? next_random() % (size + 1) : size;
    GError *error = NULL;
    guint8 *exact = g_memdup2(copy, n ? n : 1);
    if (ct_npy_parse(n ? exact : NULL, n, &npy, &error)) {
      accepted++;
      if (npy.data_offset + npy.data_size != n ||
          npy.count * (gint64)npy.itemsize != (gint64)npy.data_size)
        consistent = FALSE;
      else if (npy.count > 0) {
        float *out = ct_npy_to_f32(&npy, NULL);
        g_free(out);
      }
    }
    g_clear_error(&error);
    g_free(exact);
    g_free(copy);
  }
  tap_ok(consistent, "20000 corrupted files: no crash, %d accepted, all consistent",
         accepted);
  g_free(good);
}

int main(void) {
  gchar *dir = g_dir_make_tmp("ct-npy-XXXXXX", NULL);
  check_round_trip(dir);
  check_versions_and_dtypes();
  check_refusals();
  check_robustness();
  g_rmdir(dir);
  g_free(dir);
  return tap_done();
}
