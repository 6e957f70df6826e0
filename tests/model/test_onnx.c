/* Tests of the ONNX reader (model/onnx.h): every golden network of
 * tests/golden/networks loads (torch's PixelShuffle at opset 9 as one
 * DepthToSpace), and its description, run by a plain reference
 * (network-reference.c), gives PyTorch's output; every refusal model is
 * refused with its node, op and reason; and files made here, valid or
 * broken on purpose (truncated at every length, wrong wire types, graphs
 * with holes and cycles, tensors whose sizes lie, external data outside the
 * folder, ...), are read or refused with one clear line, never a crash.
 *   test_onnx [GOLDEN_DIR]   (GOLDEN_DIR: tests/golden) */
#include "model/onnx.h"
#include "tests/common/onnx-writer.h"
#include "tests/common/safetensors-writer.h"
#include "tests/model/network-reference.h"
#include "tests/tap.h"
#include "tools/npy.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define DIMS(...) ((const gint64[]){__VA_ARGS__})

static gchar *tmp_dir;
static GPtrArray *tmp_files;

/* ------------------------------------------------------------------------ */
/* files */

static const char *write_named(const char *name, const void *bytes, gsize len) {
  gchar *path = g_build_filename(tmp_dir, name, NULL);
  FILE *f = fopen(path, "wb");
  if (!f || (len && fwrite(bytes, 1, len, f) != len))
    tap_diag("cannot write %s", path);
  if (f)
    fclose(f);
  g_ptr_array_add(tmp_files, path);
  return path;
}

static const char *write_bytes(const void *bytes, gsize len) {
  gchar *name = g_strdup_printf("m%u.onnx", tmp_files->len);
  const char *path = write_named(name, bytes, len);
  g_free(name);
  return path;
}

/* The model's bytes written to a file; m is freed. */
static const char *write_model(pb *m) {
  const char *path = write_bytes(m->data, m->len);
  g_byte_array_free(m, TRUE);
  return path;
}

static pb *model_of(pb *g) {
  return onnx_model(8, 13, g);
}

static pb *model_at(gint64 opset, pb *g) {
  return onnx_model(8, opset, g);
}

/* The graph's one input x [1, c, d] (rank + 2 dims, spatial ones symbolic)
 * and its output. */
static void io(pb *g, const char *in, gint64 c_in, const char *out, gint64 c_out,
               int rank) {
  gint64 dims[5] = {1, c_in, -1, -1, -1};
  pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info(in, ONNX_FLOAT, dims, rank + 2));
  dims[1] = c_out;
  pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info(out, ONNX_FLOAT, dims, rank + 2));
}

static void add_node(pb *g, pb *node) {
  pb_sub(g, ONNX_GRAPH_NODE, node);
}

static void add_init(pb *g, pb *tensor) {
  pb_sub(g, ONNX_GRAPH_INITIALIZER, tensor);
}

static void seq(float *v, int n, float start) {
  for (int i = 0; i < n; i++)
    v[i] = start + 0.125f * (float)(i % 13) - 0.5f;
}

/* x [1, 2, L] -> Conv(w [3, 2, 3], b [3], pads 1) -> Relu -> z [1, 3, L]. */
static pb *small_graph(void) {
  pb *g = pb_new();
  float w[18], b[3];
  seq(w, 18, 0);
  seq(b, 3, 0.25f);
  add_node(g, onnx_node("Conv", "conv", NAMES("x", "w", "b"), NAMES("y"),
                        onnx_attr_ints("kernel_shape", DIMS(3), 1),
                        onnx_attr_ints("pads", DIMS(1, 1), 2), NULL));
  add_node(g, onnx_node("Relu", "relu", NAMES("y"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("w", DIMS(3, 2, 3), 3, w));
  add_init(g, onnx_tensor_f32("b", DIMS(3), 1, b));
  io(g, "x", 2, "z", 3, 1);
  return g;
}

/* ------------------------------------------------------------------------ */
/* checks */

/* One line, UTF-8, without control bytes, starting with the path. */
static gboolean good_message(const GError *e, const char *path) {
  if (!e || e->domain != CT_MODEL_ERROR || !g_utf8_validate(e->message, -1, NULL))
    return FALSE;
  for (const char *p = e->message; *p; p++)
    if ((guchar)*p < 0x20 || *p == 0x7f)
      return FALSE;
  gchar *display = g_filename_display_name(path);
  gboolean ok = g_str_has_prefix(e->message, display);
  g_free(display);
  return ok;
}

/* Every node reads only values made before it; every index in range. */
static gboolean well_formed(const ct_network *net, GString *why) {
  if (net->rank < 1 || net->rank > CT_MAX_RANK || net->input < 0 ||
      net->input >= net->n_values || net->output < 0 || net->output >= net->n_values) {
    g_string_append(why, "rank, input or output out of range");
    return FALSE;
  }
  gboolean *made = g_new0(gboolean, net->n_values);
  gboolean ok = TRUE;
  made[net->input] = TRUE;
  for (int v = 0; v < net->n_values && ok; v++)
    ok = net->values[v].channels >= 1 && net->values[v].name;
  if (!ok)
    g_string_append(why, "a value without channels or name");
  for (int i = 0; i < net->n_nodes && ok; i++) {
    const ct_node *n = &net->nodes[i];
    for (int j = 0; j < n->n_inputs && ok; j++)
      ok = n->inputs[j] >= 0 && n->inputs[j] < net->n_values && made[n->inputs[j]];
    for (int j = 0; j < n->n_outputs && ok; j++) {
      ok = n->outputs[j] >= 0 && n->outputs[j] < net->n_values && !made[n->outputs[j]];
      if (ok)
        made[n->outputs[j]] = TRUE;
    }
    if (!ok)
      g_string_append_printf(why, "node %d (%s) reads or makes a value out of order",
                             n->index, n->op);
  }
  if (ok && !made[net->output]) {
    g_string_append(why, "the output is never made");
    ok = FALSE;
  }
  g_free(made);
  return ok;
}

/* Loads path, expecting a network; checks its structure. */
static ct_network *expect_loads(const char *path, const char *what) {
  GError *e = NULL;
  ct_network *net = ct_onnx_load(path, &e);
  GString *why = g_string_new(NULL);
  tap_ok(net && well_formed(net, why), "%s loads%s%s", what, net ? " " : ": ",
         net ? why->str : e->message);
  g_string_free(why, TRUE);
  g_clear_error(&e);
  return net;
}

/* Loads path, expecting a refusal whose message holds every fragment. */
static void expect_refused(const char *path, const char *what, const char *const *frags) {
  GError *e = NULL;
  ct_network *net = ct_onnx_load(path, &e);
  gboolean ok = !net && good_message(e, path);
  const char *missing = NULL;
  for (int i = 0; ok && frags && frags[i]; i++)
    if (!strstr(e->message, frags[i]))
      missing = frags[i], ok = FALSE;
  tap_ok(ok, "%s is refused: %s", what, e ? e->message : "(loaded)");
  if (missing)
    tap_diag("missing from the message: %s", missing);
  ct_onnx_free(net);
  g_clear_error(&e);
}

static void expect_model_refused(pb *m, const char *what, const char *const *frags) {
  expect_refused(write_model(m), what, frags);
}

static ct_network *expect_model_loads(pb *m, const char *what) {
  return expect_loads(write_model(m), what);
}

/* The output's spatial sizes of the reference run on zeros of in_shape. */
static gboolean run_sizes(const ct_network *net, const gint64 *in_shape, gint64 *sizes) {
  gint64 count = 1;
  for (int a = 0; a < net->rank + 2; a++)
    count *= in_shape[a];
  float *in = g_new0(float, count);
  ref_tensor out = {0};
  char msg[128];
  gboolean ok = ref_network_run(net, in_shape, in, &out, msg, sizeof msg) == 0;
  for (int a = 0; ok && a < net->rank; a++)
    sizes[a] = out.s[a];
  ref_tensor_clear(&out);
  g_free(in);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* golden networks */

static float *load_npy(const char *path, CtNpy *npy, GBytes **bytes) {
  GMappedFile *f = g_mapped_file_new(path, FALSE, NULL);
  float *out = NULL;
  *bytes = NULL;
  if (f) {
    *bytes = g_mapped_file_get_bytes(f);
    g_mapped_file_unref(f);
    gsize len;
    const guint8 *data = g_bytes_get_data(*bytes, &len);
    if (ct_npy_parse(data, len, npy, NULL))
      out = ct_npy_to_f32(npy, NULL);
  }
  return out;
}

/* The reference's output for NAME.in.npy against NAME.out.npy, within
 * 1e-4 of the output's magnitude (README of tests/golden/networks). */
static void check_golden_output(const ct_network *net, const char *dir, const char *name,
                                const char *file) {
  gchar *in_path = g_strdup_printf("%s/%s.in.npy", dir, name);
  gchar *out_path = g_strdup_printf("%s/%s.out.npy", dir, name);
  CtNpy in_npy, out_npy;
  GBytes *in_bytes, *out_bytes;
  float *in = load_npy(in_path, &in_npy, &in_bytes);
  float *want = load_npy(out_path, &out_npy, &out_bytes);
  char msg[256] = "";
  ref_tensor got = {0};
  gboolean ok = in && want && in_npy.ndim == net->rank + 2 &&
                ref_network_run(net, in_npy.shape, in, &got, msg, sizeof msg) == 0;
  double worst = 0, scale = 1;
  if (ok) {
    const gint64 shape[5] = {got.n, got.c, got.s[0], got.s[1], got.s[2]};
    for (int a = 0; a < net->rank + 2; a++)
      ok = ok && out_npy.ndim == net->rank + 2 && shape[a] == out_npy.shape[a];
    if (!ok)
      g_snprintf(msg, sizeof msg, "output shape differs from %s", out_path);
    for (gint64 i = 0; ok && i < out_npy.count; i++) {
      worst = fmax(worst, fabs(got.data[i] - want[i]));
      scale = fmax(scale, fabs(want[i]));
    }
  }
  tap_ok(ok && worst <= 1e-4 * scale,
         "%s: the reference run of its network gives "
         "PyTorch's output (max |diff| %.3g, tolerance %.3g)%s%s",
         file, worst, 1e-4 * scale, msg[0] ? ": " : "", msg);
  ref_tensor_clear(&got);
  g_free(in);
  g_free(want);
  if (in_bytes)
    g_bytes_unref(in_bytes);
  if (out_bytes)
    g_bytes_unref(out_bytes);
  g_free(in_path);
  g_free(out_path);
}

/* "f32[batch,8,len]" -> 8 (-1 if symbolic) */
static gint64 declared_channels(const char *field) {
  const char *open = strchr(field, '['), *comma = open ? strchr(open, ',') : NULL;
  if (!comma)
    return -1;
  gchar *end;
  gint64 c = g_ascii_strtoll(comma + 1, &end, 10);
  return end != comma + 1 && (*end == ',' || *end == ']') ? c : -1;
}

/* Ops always on values in the golden files (their count in ops.tsv is the
 * network's); ops only ever folded there (never a node). The arithmetic
 * ops and Concat are either, so there the network has at most as many. */
static const char *const signal_ops[] = {
    "Conv",         "ConvTranspose", "MaxPool",
    "AveragePool",  "Pad",           "BatchNormalization",
    "DepthToSpace", "Relu",          "LeakyRelu",
    "PRelu",        "Tanh",          "Sigmoid",
    "Elu",          "Selu",          "Celu",
    "HardSigmoid",  "HardSwish",     "Softplus",
    "Erf",          "Clip",          "Sqrt",
    "Exp",          "Log",           "Sin",
    "Cos",          "Neg",           "Abs",
    "Max",          "Min",           NULL};
static const char *const folded_ops[] = {
    "Constant", "ConstantOfShape", "Shape",     "Gather",
    "Reshape",  "Slice",           "Transpose", "Cast",
    "ReduceL2", "Unsqueeze",       "Squeeze",   NULL};

static gboolean listed(const char *const *list, const char *op) {
  for (; *list; list++)
    if (strcmp(*list, op) == 0)
      return TRUE;
  return FALSE;
}

/* The node kind an op becomes. */
static gboolean kind_fits(const ct_node *n) {
  static const struct {
    const char *op;
    ct_node_kind kind;
  } kinds[] = {
      {"Conv", CT_NODE_CONV},
      {"ConvTranspose", CT_NODE_CONV_TRANSPOSE},
      {"MaxPool", CT_NODE_MAX_POOL},
      {"AveragePool", CT_NODE_AVERAGE_POOL},
      {"Pad", CT_NODE_PAD},
      {"BatchNormalization", CT_NODE_AFFINE},
      {"Concat", CT_NODE_CONCAT},
      {"Split", CT_NODE_SPLIT},
      {"DepthToSpace", CT_NODE_DEPTH_TO_SPACE},
      {"Add", CT_NODE_BINARY},
      {"Sub", CT_NODE_BINARY},
      {"Mul", CT_NODE_BINARY},
      {"Div", CT_NODE_BINARY},
      {"Pow", CT_NODE_BINARY},
      {"Max", CT_NODE_BINARY},
      {"Min", CT_NODE_BINARY},
      {"PRelu", CT_NODE_BINARY},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++)
    if (strcmp(kinds[i].op, n->op) == 0)
      return n->kind == kinds[i].kind;
  return n->kind == CT_NODE_UNARY;
}

/* The node counts and kinds against the OPS column ("Convx38 Tanh"). */
static void check_golden_ops(const ct_network *net, const char *file, const char *ops) {
  gchar **tokens = g_strsplit(ops, " ", -1);
  GString *why = g_string_new(NULL);
  int listed_total = 0;
  for (gchar **t = tokens; *t; t++) {
    int count = 1;
    /* "Maxx2": the count follows the last 'x'. */
    gchar *x = strrchr(*t, 'x');
    if (x && x[1] >= '0' && x[1] <= '9') {
      count = atoi(x + 1);
      *x = '\0';
    }
    listed_total += count;
    int made = 0, last = -1;
    for (int i = 0; i < net->n_nodes; i++)
      if (strcmp(net->nodes[i].op, *t) == 0 && net->nodes[i].index != last) {
        made++;
        last = net->nodes[i].index;
      }
    const gboolean exact = listed(signal_ops, *t), none = listed(folded_ops, *t);
    if ((exact && made != count) || (none && made != 0) || made > count)
      g_string_append_printf(why, " %s: %d nodes for %d in the file;", *t, made, count);
  }
  for (int i = 0; i < net->n_nodes; i++)
    if (!kind_fits(&net->nodes[i]))
      g_string_append_printf(why, " node %d (%s) has kind %s;", net->nodes[i].index,
                             net->nodes[i].op, ct_node_kind_name(net->nodes[i].kind));
  tap_ok(why->len == 0 && net->n_nodes <= listed_total,
         "%s: its %d nodes match ops.tsv's operators and kinds%s", file, net->n_nodes,
         why->str);
  g_string_free(why, TRUE);
  g_strfreev(tokens);
}

static void test_golden(const char *golden) {
  gchar *dir = g_build_filename(golden, "networks", NULL);
  gchar *tsv = g_build_filename(dir, "ops.tsv", NULL), *text = NULL;
  if (!tap_ok(g_file_get_contents(tsv, &text, NULL, NULL), "read %s", tsv)) {
    g_free(tsv);
    g_free(dir);
    return;
  }
  gchar **lines = g_strsplit(text, "\n", -1);
  int n_files = 0;
  for (gchar **l = lines; *l; l++) {
    gchar **f = g_strsplit(*l, "\t", -1);
    if (**l == '#' || !**l || g_strv_length(f) < 6 ||
        g_str_has_prefix(f[0], "refusals/")) {
      g_strfreev(f);
      continue;
    }
    n_files++;
    gchar *path = g_build_filename(dir, f[0], NULL);
    gchar *name = g_strndup(f[0], (gsize)(strstr(f[0], ".opset") - f[0]));
    ct_network *net = expect_loads(path, f[0]);
    if (net) {
      const gint64 cin = declared_channels(f[2]), cout = declared_channels(f[3]);
      tap_ok(net->values[net->input].channels == cin &&
                 (cout < 0 || net->values[net->output].channels == cout),
             "%s: input %lld and output %lld channels, as declared (%s, %s)", f[0],
             (long long)net->values[net->input].channels,
             (long long)net->values[net->output].channels, f[2], f[3]);
      /* PixelShuffle below opset 11 is six nodes: one DepthToSpace here. */
      const gboolean shuffle = strcmp(f[0], "espcn.opset9.onnx") == 0;
      gchar *ops = g_strconcat(f[5], shuffle ? " DepthToSpace" : "", NULL);
      check_golden_ops(net, f[0], ops);
      g_free(ops);
      if (shuffle) {
        const ct_node *d = &net->nodes[5];
        tap_ok(net->n_nodes == 7 && d->kind == CT_NODE_DEPTH_TO_SPACE &&
                   d->depth_to_space_mode == CT_DEPTH_TO_SPACE_CRD &&
                   d->block_size == 2 && d->index == 5,
               "%s: Unsqueeze, Reshape, Transpose, Reshape, Reshape, Squeeze are one "
               "DepthToSpace CRD of blocksize 2",
               f[0]);
      }
      check_golden_output(net, dir, name, f[0]);
    }
    ct_onnx_free(net);
    g_free(name);
    g_free(path);
    g_strfreev(f);
  }
  tap_ok(n_files == 63, "ops.tsv lists the 63 golden networks (%d)", n_files);
  g_strfreev(lines);
  g_free(text);
  g_free(tsv);
  g_free(dir);
}

static void test_golden_refusals(const char *golden) {
  static const struct {
    const char *file;
    const char *frags[4];
  } cases[] = {
      {"lstm.onnx", {"node 10 \"/lstm/LSTM\" (LSTM)", "state across the whole signal"}},
      {"global_avg_pool.onnx",
       {"node 1 \"/1/GlobalAveragePool\" (GlobalAveragePool)", "whole signal"}},
      {"instance_norm.onnx",
       {"\"/1/InstanceNormalization\" (InstanceNormalization)",
        "statistics over the whole signal"}},
      {"softmax_streamed.onnx",
       {"\"/1/Softmax\" (Softmax)", "axis 2, the streamed axis", "whole signal"}},
      {"reshape_from_shape.onnx",
       {"node 0 \"/Shape\" (Shape)", "\"input\"", "Reshape/Shape computations"}},
      {"two_inputs.onnx", {"2 inputs", "\"input\", \"input2\"", "exactly one"}},
      {"int64_input.onnx", {"graph input \"input\" is int64", "float32"}},
      {"rank2_input.onnx", {"rank 2 ([2, 8])", "rank 3, 4 or 5"}},
  };
  gchar *tsv = g_build_filename(golden, "networks", "refusals", "refusals.tsv", NULL);
  gchar *text = NULL;
  g_file_get_contents(tsv, &text, NULL, NULL);
  int listed_n = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    gchar *path = g_build_filename(golden, "networks", "refusals", cases[i].file, NULL);
    expect_refused(path, cases[i].file, cases[i].frags);
    gchar *line = g_strconcat("\n", cases[i].file, "\t", NULL);
    listed_n += text && strstr(text, line) != NULL;
    g_free(line);
    g_free(path);
  }
  tap_ok(listed_n == (int)G_N_ELEMENTS(cases), "every refusal of refusals.tsv is tested");
  g_free(text);
  g_free(tsv);
}

/* ------------------------------------------------------------------------ */
/* malformed files */

/* Every prefix of a valid model is refused with a clear line, by the ONNX
 * reader and by the loader that sniffs. */
static void test_truncated(void) {
  pb *m = model_of(small_graph());
  const char *whole = write_bytes(m->data, m->len);
  ct_network *net = expect_loads(whole, "the small model");
  ct_onnx_free(net);
  gboolean ok = TRUE, open_ok = TRUE;
  for (guint len = 0; len < m->len; len++) {
    const char *path = write_bytes(m->data, len);
    GError *e = NULL;
    net = ct_onnx_load(path, &e);
    if (net || !good_message(e, path)) {
      tap_diag("cut at %u: %s", len, net ? "loaded" : e->message);
      ok = FALSE;
    }
    ct_onnx_free(net);
    g_clear_error(&e);
    CtLoadedModel *any = ct_model_open(path, NULL, NULL, NULL, &e);
    if (any || !good_message(e, path))
      open_ok = FALSE;
    ct_model_close(any);
    g_clear_error(&e);
    g_unlink(path);
  }
  tap_ok(ok,
         "the small model cut at every length 0..%u is refused, one line naming "
         "the file",
         m->len - 1);
  tap_ok(open_ok, "ct_model_open refuses every cut too");
  g_byte_array_free(m, TRUE);
}

/* Every byte of a valid model changed to a few values: loaded (well formed)
 * or refused with a clear line, never a crash. */
static void test_mutations(void) {
  pb *m = model_of(small_graph());
  const guint8 values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
  int loaded = 0, refused = 0;
  gboolean ok = TRUE;
  for (guint i = 0; i < m->len; i++)
    for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
      guint8 *copy = g_memdup2(m->data, m->len);
      if (copy[i] == values[v]) {
        g_free(copy);
        continue;
      }
      copy[i] = values[v];
      const char *path = write_bytes(copy, m->len);
      GError *e = NULL;
      ct_network *net = ct_onnx_load(path, &e);
      GString *why = g_string_new(NULL);
      if (net ? !well_formed(net, why) : !good_message(e, path)) {
        tap_diag("byte %u = 0x%02x: %s", i, values[v], net ? why->str : e->message);
        ok = FALSE;
      }
      loaded += net != NULL;
      refused += net == NULL;
      g_string_free(why, TRUE);
      ct_onnx_free(net);
      g_clear_error(&e);
      g_unlink(path);
      g_free(copy);
    }
  tap_ok(ok,
         "every byte of the small model mutated: %d loaded (well formed), %d refused "
         "(one line naming the file)",
         loaded, refused);
  g_byte_array_free(m, TRUE);
}

static void test_wire(void) {
  /* A node's input (a string) written as a varint. */
  pb *g = small_graph();
  pb *bad = pb_new();
  pb_int(bad, ONNX_NODE_INPUT, 7);
  pb_str(bad, ONNX_NODE_OP_TYPE, "Relu");
  pb_sub(g, ONNX_GRAPH_NODE, bad);
  expect_model_refused(model_of(g), "a node input written as a varint",
                       NAMES("not a valid ONNX file", "graph.node[2].input",
                             "a string, written with wire type varint"));
  /* ir_version (an int64) as length-delimited. */
  pb *m = pb_new();
  pb_str(m, ONNX_MODEL_IR_VERSION, "8");
  pb_sub(m, ONNX_MODEL_GRAPH, small_graph());
  expect_model_refused(m, "ir_version written as bytes",
                       NAMES("ModelProto.ir_version", "an int64, written with wire type "
                                                      "length-delimited"));
  /* A tensor's dims as 32-bit values. */
  g = small_graph();
  pb *t = pb_new();
  pb_key(t, ONNX_TENSOR_DIMS, PB_32BIT);
  pb_float(t, 99, 0);
  pb_sub(g, ONNX_GRAPH_INITIALIZER, t);
  expect_model_refused(model_of(g), "tensor dims written as 32-bit values",
                       NAMES("initializer[2].dims", "wire type"));
  /* A group (proto2's deprecated form). */
  m = model_of(small_graph());
  pb_key(m, 30, 3);
  expect_model_refused(m, "a group field", NAMES("group start", "not supported"));
  /* A length past the end. */
  m = model_of(small_graph());
  pb_key(m, 14, PB_LEN); /* metadata_props */
  pb_varint(m, 1000);
  expect_model_refused(m, "a length past the end",
                       NAMES("a length of 1000 bytes runs past the end"));
  /* An int32 out of range (data_type). */
  g = small_graph();
  t = pb_new();
  pb_int(t, ONNX_TENSOR_DATA_TYPE, (gint64)1 << 40);
  pb_sub(g, ONNX_GRAPH_INITIALIZER, t);
  expect_model_refused(model_of(g), "a data_type beyond int32",
                       NAMES("does not fit an int32"));
  /* A NUL inside a name. */
  g = small_graph();
  pb *n = pb_new();
  pb_bytes(n, ONNX_NODE_NAME, "a\0b", 3);
  pb_str(n, ONNX_NODE_OP_TYPE, "Relu");
  pb_sub(g, ONNX_GRAPH_NODE, n);
  expect_model_refused(model_of(g), "a name holding a NUL byte", NAMES("NUL byte"));
  /* Attributes holding graphs, nested 100 deep. */
  pb *inner = pb_new();
  for (int d = 0; d < 100; d++) {
    pb *node = pb_new();
    pb_str(node, ONNX_NODE_OP_TYPE, "If");
    pb *a = pb_new();
    pb_str(a, ONNX_ATTR_NAME, "then_branch");
    pb_sub(a, ONNX_ATTR_G, inner);
    pb_sub(node, ONNX_NODE_ATTRIBUTE, a);
    inner = pb_new();
    pb_sub(inner, ONNX_GRAPH_NODE, node);
  }
  m = pb_new();
  pb_int(m, ONNX_MODEL_IR_VERSION, 8);
  pb_sub(m, ONNX_MODEL_GRAPH, inner);
  expect_model_refused(m, "graphs nested 100 deep", NAMES("nested more than 64 deep"));
  /* A million empty attributes: 2 MB that protobuf-c would turn into far
   * more. */
  pb *node = pb_new();
  pb_str(node, ONNX_NODE_OP_TYPE, "Relu");
  for (int i = 0; i < 1000000; i++)
    pb_bytes(node, ONNX_NODE_ATTRIBUTE, NULL, 0);
  g = small_graph();
  pb_sub(g, ONNX_GRAPH_NODE, node);
  expect_model_refused(model_of(g), "a million empty attributes",
                       NAMES("decoding this file would take about", "MiB"));
  /* The graph given twice: protobuf-c would merge them. */
  m = model_of(small_graph());
  pb_sub(m, ONNX_MODEL_GRAPH, small_graph());
  expect_model_refused(m, "the graph given twice",
                       NAMES("ModelProto.graph", "given twice"));
  /* 20000 names that collide in GLib's string hash ("Ab" and "BA" hash
   * alike; so do all their concatenations): found in sorted order, in
   * n log n. */
  g = pb_new();
  gchar *prev = g_strdup("x");
  for (int i = 0; i < 20000; i++) {
    GString *name = g_string_new(NULL);
    for (int bit = 0; bit < 15; bit++)
      g_string_append(name, (i >> bit) & 1 ? "Ab" : "BA");
    add_node(g, onnx_node("Relu", NULL, NAMES(prev), NAMES(i == 19999 ? "z" : name->str),
                          NULL));
    g_free(prev);
    prev = g_string_free(name, FALSE);
  }
  g_free(prev);
  io(g, "x", 2, "z", 2, 1);
  tap_ok(g_str_hash("Ab") == g_str_hash("BA"), "\"Ab\" and \"BA\" collide in g_str_hash");
  gint64 start = g_get_monotonic_time();
  ct_network *chain =
      expect_model_loads(model_of(g), "a chain of 20000 nodes whose names "
                                      "collide in a string hash");
  tap_ok(chain && chain->n_nodes == 20000, "all 20000 nodes");
  tap_diag("loaded in %.2f s", (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);
  ct_onnx_free(chain);
  expect_refused(write_bytes(NULL, 0), "an empty file", NAMES("is empty"));
  expect_refused(write_bytes("\x08", 1), "a file of one tag", NULL);
}

static void test_graph_structure(void) {
  pb *g = small_graph();
  add_node(g, onnx_node("Relu", "ghost_reader", NAMES("ghost"), NAMES("q"), NULL));
  expect_model_refused(model_of(g), "a node input nothing makes",
                       NAMES("node 2 \"ghost_reader\" (Relu)", "reads \"ghost\"",
                             "no node, initializer or graph input"));
  g = pb_new();
  add_node(g, onnx_node("Relu", "a", NAMES("b_out"), NAMES("a_out"), NULL));
  add_node(g, onnx_node("Relu", "b", NAMES("a_out"), NAMES("b_out"), NULL));
  add_node(g, onnx_node("Add", "c", NAMES("x", "a_out"), NAMES("z"), NULL));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "a cycle",
                       NAMES("the nodes form a cycle",
                             "node 0 \"a\" (Relu) reads \"b_out\"",
                             "node 1 \"b\" (Relu) reads \"a_out\""));
  g = pb_new();
  add_node(g, onnx_node("Relu", "self", NAMES("s"), NAMES("s"), NULL));
  add_node(g, onnx_node("Add", "c", NAMES("x", "s"), NAMES("z"), NULL));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "a node reading its own output", NAMES("cycle"));
  g = small_graph();
  add_node(g, onnx_node("Relu", "again", NAMES("x"), NAMES("y"), NULL));
  expect_model_refused(
      model_of(g), "a value made twice",
      NAMES("node 2 \"again\" (Relu)", "makes \"y\"", "node 0 \"conv\""));
  g = small_graph();
  add_node(g, onnx_node("Relu", "shadow", NAMES("x"), NAMES("w"), NULL));
  expect_model_refused(model_of(g), "a node output named like an initializer",
                       NAMES("makes \"w\", which an initializer already makes"));
  g = pb_new();
  add_node(g, onnx_node("Relu", "r", NAMES("x"), NAMES("y"), NULL));
  pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info("x", ONNX_FLOAT, DIMS(1, 2, -1), 3));
  pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info("nowhere", ONNX_FLOAT, DIMS(1, 2, -1), 3));
  expect_model_refused(model_of(g), "a graph output nothing makes",
                       NAMES("graph output \"nowhere\" is made by no node"));
  g = small_graph();
  pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info("y", ONNX_FLOAT, DIMS(1, 3, -1), 3));
  expect_model_refused(model_of(g), "two graph outputs",
                       NAMES("2 outputs", "\"z\", \"y\""));
  g = pb_new();
  add_node(g, onnx_node("Relu", "r", NAMES("x"), NAMES("y"), NULL));
  add_init(g, onnx_tensor_f32("c", DIMS(1), 1, (const float[]){1}));
  io(g, "x", 2, "c", 1, 1);
  expect_model_refused(model_of(g), "a constant graph output",
                       NAMES("graph output \"c\" is a constant"));
  /* Nodes nothing needs are dropped, whatever they are. */
  g = small_graph();
  add_node(g, onnx_node("LSTM", "unused", NAMES("x"), NAMES("unused_out"), NULL));
  add_node(g, onnx_node("Shape", "unused_shape", NAMES("x"), NAMES("unused_s"), NULL));
  ct_network *net = expect_model_loads(model_of(g), "a model with unused LSTM and Shape");
  tap_ok(net && net->n_nodes == 2, "the unused nodes are dropped (%d nodes)",
         net ? net->n_nodes : -1);
  ct_onnx_free(net);
  /* Nodes out of file order are put in order. */
  g = pb_new();
  add_node(g, onnx_node("Relu", "second", NAMES("y"), NAMES("z"), NULL));
  add_node(g, onnx_node("Neg", "first", NAMES("x"), NAMES("y"), NULL));
  io(g, "x", 2, "z", 2, 1);
  net = expect_model_loads(model_of(g), "nodes out of order");
  tap_ok(net && net->n_nodes == 2 && net->nodes[0].index == 1 && net->nodes[1].index == 0,
         "they are ordered so that each reads what is made before it");
  ct_onnx_free(net);
}

static void test_tensors(void) {
  float w[18];
  seq(w, 18, 0);
  pb *g = pb_new();
  add_node(g, onnx_node("Conv", "conv", NAMES("x", "w"), NAMES("z"), NULL));
  add_init(g, onnx_tensor("w", ONNX_FLOAT, DIMS(3, 2, 3), 3, w, 17 * 4));
  io(g, "x", 2, "z", 3, 1);
  expect_model_refused(
      model_of(g), "raw_data shorter than the dims",
      NAMES("initializer \"w\" has 68 bytes of raw_data", "dims [3, 2, 3]", "need 72"));
  g = pb_new();
  add_node(g, onnx_node("Conv", "conv", NAMES("x", "w"), NAMES("z"), NULL));
  add_init(g, onnx_tensor("w", ONNX_FLOAT, DIMS((gint64)1 << 40, (gint64)1 << 40, 1), 3,
                          w, 4));
  io(g, "x", 2, "z", 3, 1);
  expect_model_refused(model_of(g), "dims whose product overflows int64",
                       NAMES("product of its dims", "overflows int64"));
  g = small_graph();
  add_init(g, onnx_tensor("huge", ONNX_FLOAT, DIMS(1000000, 1000000), 2, w, 4));
  expect_model_refused(
      model_of(g), "a 1e12-element initializer, before allocating",
      NAMES("initializer \"huge\" has 1000000000000 elements", "more than the limit"));
  g = small_graph();
  add_init(g, onnx_tensor("neg", ONNX_FLOAT, DIMS(2, -3), 2, w, 4));
  expect_model_refused(model_of(g), "a negative dim", NAMES("negative size"));
  g = small_graph();
  pb *t = onnx_tensor("typed", ONNX_FLOAT, DIMS(4), 1, NULL, 0);
  for (int i = 0; i < 3; i++)
    pb_float(t, ONNX_TENSOR_FLOAT_DATA, 1);
  add_init(g, t);
  expect_model_refused(model_of(g), "float_data shorter than the dims",
                       NAMES("has 3 values, but its dims [4] need 4"));
  g = small_graph();
  add_init(g, onnx_tensor("text", ONNX_STRING, DIMS(1), 1, NULL, 0));
  expect_model_refused(model_of(g), "a string initializer",
                       NAMES("data type string, which is not supported"));
  g = small_graph();
  t = onnx_tensor("both", ONNX_FLOAT, DIMS(1), 1, w, 4);
  pb_float(t, ONNX_TENSOR_FLOAT_DATA, 1);
  add_init(g, t);
  expect_model_refused(model_of(g), "data both raw and typed",
                       NAMES("holds its data twice"));
}

/* A Conv model whose weight is external data at location. */
static pb *external_model(const char *location, const char *offset, const char *length) {
  pb *g = pb_new();
  add_node(g, onnx_node("Conv", "conv", NAMES("x", "w"), NAMES("z"), NULL));
  pb *t = onnx_tensor("w", ONNX_FLOAT, DIMS(3, 2, 3), 3, NULL, 0);
  const char *keys[] = {"location", "offset", "length"};
  const char *values[] = {location, offset, length};
  for (int i = 0; i < 3; i++) {
    if (!values[i])
      continue;
    pb *e = pb_new();
    pb_str(e, 1, keys[i]);
    pb_str(e, 2, values[i]);
    pb_sub(t, ONNX_TENSOR_EXTERNAL_DATA, e);
  }
  pb_int(t, ONNX_TENSOR_DATA_LOCATION, 1);
  add_init(g, t);
  io(g, "x", 2, "z", 3, 1);
  return model_of(g);
}

static void test_external_data(void) {
  float w[18 + 2];
  seq(w, 20, 1);
  write_named("weights.bin", w, sizeof w);
  ct_network *net = expect_model_loads(external_model("weights.bin", "8", "72"),
                                       "external data in the model's folder");
  gboolean same =
      net && net->n_nodes == 1 && memcmp(net->nodes[0].weight, w + 2, 72) == 0;
  tap_ok(same, "its weight is the 72 bytes at offset 8 of the data file");
  ct_onnx_free(net);
  gchar *sub = g_build_filename(tmp_dir, "sub", NULL);
  g_mkdir(sub, 0700);
  gchar *inside = g_build_filename(sub, "w.bin", NULL);
  g_file_set_contents(inside, (const char *)w, 72, NULL);
  net = expect_model_loads(external_model("sub/w.bin", NULL, NULL),
                           "external data in a subfolder, no offset or length");
  ct_onnx_free(net);
  expect_model_refused(
      external_model("../weights.bin", NULL, NULL), "external data at ../",
      NAMES("initializer \"w\"", "\"../weights.bin\"", "out of the model's folder"));
  expect_model_refused(external_model("sub/../../x", NULL, NULL),
                       "external data at sub/../..", NAMES("out of the model's folder"));
  expect_model_refused(external_model("/etc/passwd", NULL, NULL),
                       "external data at an absolute path",
                       NAMES("\"/etc/passwd\" is an absolute path"));
  gchar *link = g_build_filename(tmp_dir, "escape.bin", NULL);
  gboolean linked = symlink("/etc/hostname", link) == 0;
  if (linked)
    expect_model_refused(external_model("escape.bin", NULL, NULL),
                         "external data through a symbolic link out of the folder",
                         NAMES("lies outside the model's folder"));
  expect_model_refused(external_model("missing.bin", NULL, NULL), "missing external data",
                       NAMES("cannot open external data \"missing.bin\""));
  expect_model_refused(external_model("weights.bin", "0", "64"),
                       "external data whose length disagrees with the dims",
                       NAMES("length 64 does not match"));
  expect_model_refused(external_model("weights.bin", "40", NULL),
                       "external data running past the data file's end",
                       NAMES("run past its end"));
  expect_model_refused(external_model("weights.bin", "-8", NULL),
                       "a negative external offset",
                       NAMES("offset \"-8\" is not a byte count"));
  expect_model_refused(external_model("sub", NULL, NULL),
                       "external data that is a folder", NAMES("not a regular file"));
  if (linked)
    g_unlink(link);
  g_unlink(inside);
  g_rmdir(sub);
  g_free(link);
  g_free(inside);
  g_free(sub);
}

static void test_interface(void) {
  pb *g = small_graph();
  pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info("x2", ONNX_FLOAT, DIMS(1, 2, 8), 3));
  expect_model_refused(model_of(g), "two graph inputs",
                       NAMES("2 inputs (\"x\", \"x2\")"));
  g = pb_new();
  add_node(g, onnx_node("Relu", "r", NAMES("x"), NAMES("y"), NULL));
  pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info("x", ONNX_INT64, DIMS(1, 2, -1), 3));
  pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info("y", ONNX_FLOAT, DIMS(1, 2, -1), 3));
  expect_model_refused(model_of(g), "a non-float input",
                       NAMES("graph input \"x\" is int64; it must be float32"));
  static const int ranks[] = {2, 6};
  for (int i = 0; i < 2; i++) {
    g = pb_new();
    add_node(g, onnx_node("Relu", "r", NAMES("x"), NAMES("y"), NULL));
    const gint64 dims[6] = {1, 2, 3, 4, 5, 6};
    pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info("x", ONNX_FLOAT, dims, ranks[i]));
    pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info("y", ONNX_FLOAT, dims, ranks[i]));
    gchar *frag = g_strdup_printf("has rank %d", ranks[i]);
    gchar *what = g_strdup_printf("a rank-%d input", ranks[i]);
    expect_model_refused(model_of(g), what, NAMES(frag, "rank 3, 4 or 5"));
    g_free(frag);
    g_free(what);
  }
  g = pb_new();
  add_node(g, onnx_node("Relu", "r", NAMES("x"), NAMES("y"), NULL));
  pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info("x", ONNX_FLOAT, DIMS(1, -1, -1), 3));
  pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info("y", ONNX_FLOAT, DIMS(1, -1, -1), 3));
  expect_model_refused(model_of(g), "a symbolic channel count",
                       NAMES("[1, d1, d2]", "no fixed channel count"));
  /* The declared output says 4 channels; the Conv makes 3. */
  g = pb_new();
  float w[18];
  seq(w, 18, 0);
  add_node(g, onnx_node("Conv", "conv", NAMES("x", "w"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("w", DIMS(3, 2, 3), 3, w));
  io(g, "x", 2, "z", 4, 1);
  expect_model_refused(model_of(g), "an output declaring other channels",
                       NAMES("declares 4 channels", "its nodes make 3"));
  g = pb_new();
  add_node(g, onnx_node("Identity", "id", NAMES("x"), NAMES("z"), NULL));
  io(g, "x", 3, "z", 3, 3);
  ct_network *net = expect_model_loads(model_of(g), "a rank-5 Identity network");
  tap_ok(net && net->rank == 3 && net->n_nodes == 1 &&
             net->nodes[0].kind == CT_NODE_UNARY &&
             net->nodes[0].op_code == CT_UNARY_IDENTITY,
         "it is one identity node over 3 spatial axes");
  ct_onnx_free(net);
  expect_model_refused(model_at(8, small_graph()), "opset 8",
                       NAMES("opset 8; this reader takes opsets 9 to 17"));
  expect_model_refused(model_at(18, small_graph()), "opset 18", NAMES("opset 18"));
  pb *m = pb_new();
  pb_int(m, ONNX_MODEL_IR_VERSION, 8);
  pb_sub(m, ONNX_MODEL_GRAPH, small_graph());
  expect_model_refused(m, "no opset_import", NAMES("imports no ONNX operator set"));
  g = pb_new();
  pb *n = onnx_node("Relu", "custom", NAMES("x"), NAMES("z"), NULL);
  pb_str(n, ONNX_NODE_DOMAIN, "com.example");
  add_node(g, n);
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "an operator of another domain",
                       NAMES("node 0 \"custom\" (Relu)", "domain \"com.example\""));
}

/* x [1, c, L] -> one node -> z; the node's extra initializers given. */
static pb *one_node(pb *node, gint64 c_in, gint64 c_out, int rank) {
  pb *g = pb_new();
  add_node(g, node);
  io(g, "x", c_in, "z", c_out, rank);
  return g;
}

static void test_attributes(void) {
  expect_model_refused(
      model_of(one_node(onnx_node("Relu", "r", NAMES("x"), NAMES("z"),
                                  onnx_attr_float("alpha", 0.5f), NULL),
                        2, 2, 1)),
      "an attribute the operator does not have",
      NAMES("node 0 \"r\" (Relu)", "attribute \"alpha\" is not one of Relu's"));
  expect_model_refused(
      model_of(one_node(onnx_node("LeakyRelu", "l", NAMES("x"), NAMES("z"),
                                  onnx_attr_ints("alpha", DIMS(1), 1), NULL),
                        2, 2, 1)),
      "an attribute of the wrong type",
      NAMES("attribute \"alpha\" is a list of integers, not a float"));
  expect_model_refused(
      model_of(one_node(onnx_node("LeakyRelu", "l", NAMES("x"), NAMES("z"),
                                  onnx_attr_float("alpha", 0.5f),
                                  onnx_attr_float("alpha", 0.25f), NULL),
                        2, 2, 1)),
      "an attribute given twice", NAMES("attribute \"alpha\" is given twice"));
  ct_network *net = expect_model_loads(
      model_of(one_node(onnx_node("LeakyRelu", "l", NAMES("x"), NAMES("z"),
                                  onnx_attr_float("alpha", 0.25f), NULL),
                        2, 2, 1)),
      "LeakyRelu with alpha");
  tap_ok(net && net->nodes[0].op_code == CT_UNARY_LEAKY_RELU &&
             net->nodes[0].alpha == 0.25f,
         "alpha is read");
  ct_onnx_free(net);
  net = expect_model_loads(
      model_of(one_node(onnx_node("Selu", "s", NAMES("x"), NAMES("z"), NULL), 2, 2, 1)),
      "Selu without attributes");
  tap_ok(net && fabsf(net->nodes[0].alpha - 1.6732632f) < 1e-6f &&
             fabsf(net->nodes[0].gamma - 1.0507010f) < 1e-6f,
         "its alpha and gamma are ONNX's defaults");
  ct_onnx_free(net);
}

/* A Conv of weight dims wd on input channels c, with attributes. */
static pb *conv_graph(const char *op, gint64 c, const gint64 *wd, gint64 c_out, pb *a1,
                      pb *a2) {
  gint64 count = wd[0] * wd[1] * wd[2];
  float *w = g_new(float, count);
  seq(w, (int)count, 0);
  pb *g = pb_new();
  add_node(g, onnx_node(op, "c", NAMES("x", "w"), NAMES("z"), a1, a2, NULL));
  add_init(g, onnx_tensor_f32("w", wd, 3, w));
  io(g, "x", c, "z", c_out, 1);
  g_free(w);
  return g;
}

static void test_convolutions(void) {
  expect_model_refused(model_of(conv_graph("Conv", 4, DIMS(3, 2, 3), 3, NULL, NULL)),
                       "a Conv weight for other input channels",
                       NAMES("node 0 \"c\" (Conv)",
                             "its weight [3, 2, 3] with group 1 takes "
                             "2 input channels",
                             "\"x\" has 4"));
  ct_network *net = expect_model_loads(
      model_of(conv_graph("Conv", 4, DIMS(6, 2, 3), 6, onnx_attr_int("group", 2), NULL)),
      "a grouped Conv");
  tap_ok(net && net->nodes[0].groups == 2 && net->values[net->output].channels == 6,
         "group 2, 6 output channels");
  ct_onnx_free(net);
  net = expect_model_loads(model_of(conv_graph("Conv", 2, DIMS(3, 2, 4), 3,
                                               onnx_attr_string("auto_pad", "SAME_UPPER"),
                                               onnx_attr_ints("dilations", DIMS(2), 1))),
                           "Conv with auto_pad SAME_UPPER, dilation 2, kernel 4");
  tap_ok(net && net->nodes[0].pad_begin[0] == 3 && net->nodes[0].pad_end[0] == 3,
         "SAME_UPPER pads (k - 1) d = 6 as 3 and 3");
  ct_onnx_free(net);
  net = expect_model_loads(
      model_of(conv_graph("Conv", 2, DIMS(3, 2, 4), 3,
                          onnx_attr_string("auto_pad", "SAME_LOWER"), NULL)),
      "Conv with auto_pad SAME_LOWER, kernel 4");
  tap_ok(net && net->nodes[0].pad_begin[0] == 2 && net->nodes[0].pad_end[0] == 1,
         "SAME_LOWER puts the odd one first (2, 1)");
  ct_onnx_free(net);
  expect_model_refused(model_of(conv_graph("Conv", 2, DIMS(3, 2, 3), 3,
                                           onnx_attr_string("auto_pad", "SAME_UPPER"),
                                           onnx_attr_ints("strides", DIMS(2), 1))),
                       "SAME with stride 2", NAMES("depends on the input's length"));
  expect_model_refused(model_of(conv_graph("Conv", 2, DIMS(3, 2, 3), 3,
                                           onnx_attr_string("auto_pad", "SAME_UPPER"),
                                           onnx_attr_ints("pads", DIMS(1, 1), 2))),
                       "pads and auto_pad together", NAMES("both pads and auto_pad"));
  expect_model_refused(
      model_of(conv_graph("Conv", 2, DIMS(3, 2, 3), 3,
                          onnx_attr_ints("pads", DIMS(1, 1, 1), 3), NULL)),
      "three pads for one axis", NAMES("attribute \"pads\" has 3 values"));
  expect_model_refused(
      model_of(conv_graph("Conv", 2, DIMS(3, 2, 3), 3,
                          onnx_attr_ints("kernel_shape", DIMS(5), 1), NULL)),
      "a kernel_shape that disagrees with the weight",
      NAMES("kernel_shape [5] does not match"));
  net =
      expect_model_loads(model_of(conv_graph("ConvTranspose", 2, DIMS(2, 3, 4), 3,
                                             onnx_attr_ints("strides", DIMS(2), 1),
                                             onnx_attr_string("auto_pad", "SAME_UPPER"))),
                         "ConvTranspose with SAME_UPPER, stride 2, kernel 4");
  tap_ok(net && net->nodes[0].pad_begin[0] == 1 && net->nodes[0].pad_end[0] == 1 &&
             net->nodes[0].output_padding[0] == 0,
         "its crop is k - s = 2, as 1 and 1");
  ct_onnx_free(net);
  net =
      expect_model_loads(model_of(conv_graph("ConvTranspose", 2, DIMS(2, 3, 1), 3,
                                             onnx_attr_ints("strides", DIMS(3), 1),
                                             onnx_attr_string("auto_pad", "SAME_LOWER"))),
                         "ConvTranspose with SAME_LOWER, stride 3, kernel 1");
  tap_ok(net && net->nodes[0].pad_begin[0] == 0 && net->nodes[0].output_padding[0] == 2,
         "a negative crop (1 - 3) becomes output_padding 2");
  ct_onnx_free(net);
  expect_model_refused(
      model_of(conv_graph("ConvTranspose", 2, DIMS(2, 3, 3), 3,
                          onnx_attr_ints("output_shape", DIMS(10), 1), NULL)),
      "ConvTranspose with output_shape and a free input length",
      NAMES("output_shape [10] fixes the output's size", "leaves its input's size free"));
  /* A declared input of 10: Conv k3 makes 8; ConvTranspose s2 k4 would
   * make 18, output_shape [16] crops 2 (1 and 1). */
  float w[48];
  seq(w, 48, 0);
  pb *g = pb_new();
  add_node(g, onnx_node("Conv", "c", NAMES("x", "w1"), NAMES("y"), NULL));
  add_node(g, onnx_node("ConvTranspose", "t", NAMES("y", "w2"), NAMES("z"),
                        onnx_attr_ints("strides", DIMS(2), 1),
                        onnx_attr_ints("output_shape", DIMS(16), 1), NULL));
  add_init(g, onnx_tensor_f32("w1", DIMS(2, 2, 3), 3, w));
  add_init(g, onnx_tensor_f32("w2", DIMS(2, 3, 4), 3, w));
  pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info("x", ONNX_FLOAT, DIMS(1, 2, 10), 3));
  pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info("z", ONNX_FLOAT, DIMS(1, 3, 16), 3));
  net = expect_model_loads(model_of(g), "ConvTranspose with output_shape after a Conv, "
                                        "input declared [1, 2, 10]");
  tap_ok(net && net->nodes[1].pad_begin[0] == 1 && net->nodes[1].pad_end[0] == 1 &&
             net->nodes[1].output_padding[0] == 0,
         "output_shape [16] at input 8 is a crop of 1 and 1");
  gint64 sizes[CT_MAX_RANK] = {0};
  tap_ok(
      net && run_sizes(net, DIMS(1, 2, 10), sizes) && sizes[0] == 16 &&
          run_sizes(net, DIMS(1, 2, 20), sizes) && sizes[0] == 36,
      "the output has 16 steps at the declared 10, and grows with the input (36 at 20)");
  ct_onnx_free(net);
  /* ONNX's own example: a 3 x 3 input, kernel 3, strides (3, 2), output
   * [10, 8]: one more than the full output on each axis. */
  g = pb_new();
  add_node(g, onnx_node("ConvTranspose", "t", NAMES("x", "w"), NAMES("z"),
                        onnx_attr_ints("strides", DIMS(3, 2), 2),
                        onnx_attr_ints("output_shape", DIMS(10, 8), 2), NULL));
  add_init(g, onnx_tensor_f32("w", DIMS(1, 2, 3, 3), 4, w));
  pb_sub(g, ONNX_GRAPH_INPUT, onnx_value_info("x", ONNX_FLOAT, DIMS(1, 1, 3, 3), 4));
  pb_sub(g, ONNX_GRAPH_OUTPUT, onnx_value_info("z", ONNX_FLOAT, DIMS(1, 2, 10, 8), 4));
  net = expect_model_loads(model_of(g), "ONNX's output_shape example (3 x 3 to 10 x 8)");
  tap_ok(net && net->nodes[0].output_padding[0] == 1 &&
             net->nodes[0].output_padding[1] == 1 && net->nodes[0].pad_begin[0] == 0,
         "it is output_padding (1, 1)");
  tap_ok(net && run_sizes(net, DIMS(1, 1, 3, 3), sizes) && sizes[0] == 10 &&
             sizes[1] == 8,
         "the reference run makes 10 x 8");
  ct_onnx_free(net);
  expect_model_refused(
      model_of(conv_graph("ConvTranspose", 4, DIMS(2, 3, 3), 3, NULL, NULL)),
      "a ConvTranspose weight for other input channels",
      NAMES("takes 2 input channels", "has 4"));
  /* The weight computed from the input. */
  g = pb_new();
  add_node(g, onnx_node("Conv", "c", NAMES("x", "x"), NAMES("z"), NULL));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "a weight computed from the input",
                       NAMES("its weight \"x\" is computed from the graph input"));
}

static void test_pools_and_pads(void) {
  pb *g = one_node(onnx_node("MaxPool", "p", NAMES("x"), NAMES("z"),
                             onnx_attr_ints("kernel_shape", DIMS(3, 2), 2),
                             onnx_attr_ints("pads", DIMS(1, 0, 1, 0), 4), NULL),
                   2, 2, 2);
  ct_network *net = expect_model_loads(model_of(g), "MaxPool 2d");
  tap_ok(net && net->nodes[0].kind == CT_NODE_MAX_POOL && net->nodes[0].kernel[1] == 2 &&
             net->nodes[0].pad_begin[0] == 1 && net->nodes[0].pad_end[1] == 0,
         "its kernel and pads per axis");
  ct_onnx_free(net);
  expect_model_refused(
      model_of(one_node(onnx_node("AveragePool", "p", NAMES("x"), NAMES("z"),
                                  onnx_attr_ints("kernel_shape", DIMS(2), 1),
                                  onnx_attr_ints("pads", DIMS(2, 0), 2), NULL),
                        2, 2, 1)),
      "a pool whose pad is as wide as its window", NAMES("not smaller than its window"));
  expect_model_refused(
      model_of(
          one_node(onnx_node("MaxPool", "p", NAMES("x"), NAMES("z"), NULL), 2, 2, 1)),
      "MaxPool without kernel_shape", NAMES("has no kernel_shape"));
  expect_model_refused(
      model_of(one_node(onnx_node("AveragePool", "p", NAMES("x"), NAMES("z"),
                                  onnx_attr_ints("kernel_shape", DIMS(2), 1),
                                  onnx_attr_ints("dilations", DIMS(2), 1), NULL),
                        2, 2, 1)),
      "AveragePool with dilations at opset 13 (they came with 19)",
      NAMES("attribute \"dilations\" is not one of AveragePool's (opset 13)"));
  expect_model_refused(
      model_at(9, one_node(onnx_node("MaxPool", "p", NAMES("x"), NAMES("z"),
                                     onnx_attr_ints("kernel_shape", DIMS(2), 1),
                                     onnx_attr_int("ceil_mode", 1), NULL),
                           2, 2, 1)),
      "MaxPool with ceil_mode at opset 9 (it came with 10)",
      NAMES("attribute \"ceil_mode\" is not one of MaxPool's (opset 9)"));
  /* Pad at opset 13 whose pads torch computes from Constants. */
  g = pb_new();
  add_node(
      g, onnx_node("Constant", "k1", NULL, NAMES("shape_len"),
                   onnx_attr_tensor("value", onnx_tensor_i64(NULL, DIMS(1), 1, DIMS(4))),
                   NULL));
  add_node(g, onnx_node("Constant", "k2", NULL, NAMES("given"),
                        onnx_attr_tensor("value",
                                         onnx_tensor_i64(NULL, DIMS(2), 1, DIMS(2, 1))),
                        NULL));
  add_node(
      g, onnx_node("ConstantOfShape", "zeros", NAMES("shape_len"), NAMES("zeros"),
                   onnx_attr_tensor("value", onnx_tensor_i64(NULL, DIMS(1), 1, DIMS(0))),
                   NULL));
  add_node(g, onnx_node("Concat", "cat", NAMES("given", "zeros"), NAMES("all"),
                        onnx_attr_int("axis", 0), NULL));
  add_node(g, onnx_node("Constant", "k3", NULL, NAMES("shape2"),
                        onnx_attr_tensor("value",
                                         onnx_tensor_i64(NULL, DIMS(2), 1, DIMS(-1, 2))),
                        NULL));
  add_node(g, onnx_node("Reshape", "rs", NAMES("all", "shape2"), NAMES("pairs"), NULL));
  add_node(
      g, onnx_node("Constant", "k4", NULL, NAMES("m1"),
                   onnx_attr_tensor("value", onnx_tensor_i64(NULL, DIMS(1), 1, DIMS(-1))),
                   NULL));
  add_node(
      g, onnx_node("Constant", "k5", NULL, NAMES("big"),
                   onnx_attr_tensor("value", onnx_tensor_i64(NULL, DIMS(1), 1,
                                                             DIMS(-9223372036854775807))),
                   NULL));
  add_node(
      g, onnx_node("Constant", "k6", NULL, NAMES("ax0"),
                   onnx_attr_tensor("value", onnx_tensor_i64(NULL, DIMS(1), 1, DIMS(0))),
                   NULL));
  add_node(g, onnx_node("Slice", "rev", NAMES("pairs", "m1", "big", "ax0", "m1"),
                        NAMES("rev"), NULL));
  add_node(g, onnx_node("Transpose", "tr", NAMES("rev"), NAMES("tr"),
                        onnx_attr_ints("perm", DIMS(1, 0), 2), NULL));
  add_node(g, onnx_node("Reshape", "flat", NAMES("tr", "m1"), NAMES("flat"), NULL));
  add_node(g, onnx_node("Cast", "cast", NAMES("flat"), NAMES("pads"),
                        onnx_attr_int("to", 7), NULL));
  add_node(g, onnx_node("Constant", "k7", NULL, NAMES("v"),
                        onnx_attr_tensor("value", onnx_tensor_f32(NULL, NULL, 0,
                                                                  (const float[]){0.5f})),
                        NULL));
  add_node(g, onnx_node("Pad", "pad", NAMES("x", "pads", "v"), NAMES("z"),
                        onnx_attr_string("mode", "constant"), NULL));
  io(g, "x", 2, "z", 2, 1);
  net = expect_model_loads(model_of(g), "Pad whose pads come from a constant subgraph");
  tap_ok(net && net->n_nodes == 1 && net->nodes[0].kind == CT_NODE_PAD &&
             net->nodes[0].pad_axes_begin[1] == 2 && net->nodes[0].pad_axes_end[1] == 1 &&
             net->nodes[0].pad_axes_begin[0] == 0 && net->nodes[0].pad_value == 0.5f,
         "the folded pads are (2, 1) on the streamed axis, value 0.5");
  ct_onnx_free(net);
  g = pb_new();
  add_node(g, onnx_node("Shape", "sh", NAMES("x"), NAMES("s"), NULL));
  add_node(g, onnx_node("Pad", "pad", NAMES("x", "s"), NAMES("z"), NULL));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "pads computed from Shape of the input",
                       NAMES("node 0 \"sh\" (Shape)", "Reshape/Shape computations"));
  g = one_node(onnx_node("Pad", "pad", NAMES("x"), NAMES("z"),
                         onnx_attr_ints("pads", DIMS(0, 1, 0, 0, 2, 0), 6),
                         onnx_attr_float("value", -1), NULL),
               2, 5, 1);
  net = expect_model_loads(model_at(9, g), "Pad at opset 9 on the channel axis");
  tap_ok(net && net->values[net->output].channels == 5 && net->nodes[0].pad_value == -1,
         "channels 2 + 1 + 2 = 5, value -1");
  ct_onnx_free(net);
  expect_model_refused(
      model_at(
          9, one_node(onnx_node("Pad", "pad", NAMES("x"), NAMES("z"),
                                onnx_attr_ints("pads", DIMS(1, 0, 0, 0, 0, 0), 6), NULL),
                      2, 2, 1)),
      "Pad on the batch axis", NAMES("pads the batch axis"));
  expect_model_refused(
      model_at(
          9, one_node(onnx_node("Pad", "pad", NAMES("x"), NAMES("z"),
                                onnx_attr_string("mode", "reflect"),
                                onnx_attr_ints("pads", DIMS(0, 0, 1, 0, 0, 1), 6), NULL),
                      2, 2, 1)),
      "Pad in reflect mode", NAMES("mode \"reflect\""));
  g = one_node(onnx_node("Pad", "pad", NAMES("x"), NAMES("z"),
                         onnx_attr_ints("pads", DIMS(0, -1, -2, 0, 0, 3), 6), NULL),
               3, 2, 1);
  net = expect_model_loads(model_at(9, g), "Pad with negative pads (a crop)");
  gint64 cropped = 0;
  gboolean crop_ok = net && net->values[net->output].channels == 2 &&
                     net->nodes[0].pad_axes_begin[1] == -2 &&
                     net->nodes[0].pad_axes_end[1] == 3;
  if (crop_ok) {
    float in[3 * 6];
    for (int i = 0; i < 18; i++)
      in[i] = (float)i;
    ref_tensor out = {0};
    char msg[64];
    /* Channels 1 and 2 of the input, their steps 2..5, then 3 zeros. */
    crop_ok = ref_network_run(net, DIMS(1, 3, 6), in, &out, msg, sizeof msg) == 0 &&
              out.c == 2 && out.s[0] == 7 && out.data[0] == 8 && out.data[3] == 11 &&
              out.data[4] == 0 && out.data[7] == 14;
    cropped = out.s[0];
    ref_tensor_clear(&out);
  }
  tap_ok(crop_ok,
         "channels 3 - 1 = 2, the streamed axis cropped by 2 and padded by 3 (%lld steps "
         "from 6)",
         (long long)cropped);
  ct_onnx_free(net);
  expect_model_refused(
      model_at(9, one_node(onnx_node("Pad", "pad", NAMES("x"), NAMES("z"),
                                     onnx_attr_ints("pads", DIMS(0, -1, 0, 0, -1, 0), 6),
                                     NULL),
                           2, 1, 1)),
      "Pad cropping every channel", NAMES("crops all 2 channels of \"x\" away"));
}

static void test_elementwise(void) {
  /* A constant varying along the streamed axis. */
  float c[8];
  seq(c, 8, 0);
  pb *g = pb_new();
  add_node(g, onnx_node("Add", "add", NAMES("x", "c"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("c", DIMS(1, 2, 4), 3, c));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "a constant varying along the signal",
                       NAMES("node 0 \"add\" (Add)",
                             "\"c\" (dims [1, 2, 4]) varies along the "
                             "streamed axis"));
  g = pb_new();
  add_node(g, onnx_node("Mul", "mul", NAMES("c", "x"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("c", DIMS(3, 1), 2, c));
  io(g, "x", 3, "z", 3, 1);
  ct_network *net = expect_model_loads(model_of(g), "Mul by a [3, 1] constant first");
  tap_ok(net && net->nodes[0].has_constant && !net->nodes[0].constant_second &&
             net->nodes[0].constant.dims[0] == 1 && net->nodes[0].constant.dims[1] == 3 &&
             net->nodes[0].constant.dims[2] == 1 &&
             net->nodes[0].constant.data[2] == c[2],
         "the constant is [1, 3, 1], on the left");
  ct_onnx_free(net);
  g = pb_new();
  add_node(g, onnx_node("Mul", "mul", NAMES("x", "c"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("c", DIMS(4, 1), 2, c));
  io(g, "x", 3, "z", 3, 1);
  expect_model_refused(model_of(g), "a constant of other channels",
                       NAMES("has 4 channels where the value has 3"));
  g = pb_new();
  add_node(g, onnx_node("Conv", "a", NAMES("x", "w"), NAMES("a"), NULL));
  add_node(g, onnx_node("Add", "add", NAMES("a", "x"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("w", DIMS(3, 2, 1), 3, c));
  io(g, "x", 2, "z", 3, 1);
  expect_model_refused(model_of(g), "Add of values with different channels",
                       NAMES("combines \"a\" (3 channels) and \"x\" (2 channels)"));
  /* Max of three: a chain of two binary nodes. */
  g = pb_new();
  add_node(g, onnx_node("Neg", "n", NAMES("x"), NAMES("n"), NULL));
  add_node(g, onnx_node("Max", "max", NAMES("x", "n", "k"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("k", NULL, 0, c));
  io(g, "x", 2, "z", 2, 1);
  net = expect_model_loads(model_of(g), "Max of two values and a scalar");
  tap_ok(net && net->n_nodes == 3 && net->nodes[1].kind == CT_NODE_BINARY &&
             net->nodes[1].n_inputs == 2 && net->nodes[2].has_constant &&
             net->nodes[2].constant.dims[1] == 1 && net->nodes[2].index == 1,
         "it is two binary nodes of the file's node 1");
  ct_onnx_free(net);
  /* Clip: attributes at opset 9, constant inputs from 11 (max absent). */
  g = one_node(
      onnx_node("Clip", "clip", NAMES("x"), NAMES("z"), onnx_attr_float("min", -1), NULL),
      2, 2, 1);
  net = expect_model_loads(model_at(9, g), "Clip at opset 9 with min only");
  tap_ok(net && net->nodes[0].clip_min == -1 && net->nodes[0].clip_max == FLT_MAX,
         "min -1, max the float range");
  ct_onnx_free(net);
  g = pb_new();
  add_node(g, onnx_node("Clip", "clip", NAMES("x", "lo", ""), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("lo", NULL, 0, (const float[]){0.25f}));
  io(g, "x", 2, "z", 2, 1);
  net = expect_model_loads(model_of(g), "Clip at opset 13 with an empty max");
  tap_ok(net && net->nodes[0].clip_min == 0.25f && isinf(net->nodes[0].clip_max),
         "min 0.25, no max");
  ct_onnx_free(net);
  g = pb_new();
  add_node(g, onnx_node("Clip", "clip", NAMES("x", "x"), NAMES("z"), NULL));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "Clip whose min is the signal",
                       NAMES("its min \"x\" is computed from the graph input"));
  /* BatchNormalization folded, in double. */
  const float gamma[2] = {2, 0.5f}, beta[2] = {1, -1}, mean[2] = {0.5f, -2},
              var[2] = {3, 0.25f};
  g = pb_new();
  add_node(g, onnx_node("Relu", "r", NAMES("x"), NAMES("r"), NULL));
  add_node(g, onnx_node("BatchNormalization", "bn", NAMES("r", "g", "b", "m", "v"),
                        NAMES("z"), onnx_attr_float("epsilon", 1e-3f), NULL));
  add_init(g, onnx_tensor_f32("g", DIMS(2), 1, gamma));
  add_init(g, onnx_tensor_f32("b", DIMS(2), 1, beta));
  add_init(g, onnx_tensor_f32("m", DIMS(2), 1, mean));
  add_init(g, onnx_tensor_f32("v", DIMS(2), 1, var));
  io(g, "x", 2, "z", 2, 1);
  net = expect_model_loads(model_of(g), "BatchNormalization after a Relu");
  gboolean bn_ok = net && net->n_nodes == 2 && net->nodes[1].kind == CT_NODE_AFFINE;
  for (int i = 0; bn_ok && i < 2; i++) {
    const double s = gamma[i] / sqrt((double)var[i] + (double)1e-3f);
    bn_ok = net->nodes[1].scale[i] == (float)s &&
            net->nodes[1].shift[i] == (float)(beta[i] - mean[i] * s);
  }
  tap_ok(bn_ok, "it is an affine node: scale = gamma / sqrt(var + eps), shift = beta - "
                "mean * scale, in double");
  ct_onnx_free(net);
  g = pb_new();
  add_node(g, onnx_node("BatchNormalization", "bn", NAMES("x", "g", "b", "m", "v"),
                        NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("g", DIMS(2), 1, gamma));
  add_init(g, onnx_tensor_f32("b", DIMS(2), 1, beta));
  add_init(g, onnx_tensor_f32("m", DIMS(2), 1, mean));
  add_init(g, onnx_tensor_f32("v", DIMS(2), 1, (const float[]){-1, 1}));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "a negative variance",
                       NAMES("channel 0: variance + epsilon", "not positive"));
  /* Dropout: the identity, unless in training mode or its mask is read. */
  g = pb_new();
  add_node(g, onnx_node("Dropout", "d", NAMES("x"), NAMES("z", "mask"), NULL));
  io(g, "x", 2, "z", 2, 1);
  net = expect_model_loads(model_of(g), "Dropout whose mask nothing reads");
  tap_ok(net && net->nodes[0].kind == CT_NODE_UNARY &&
             net->nodes[0].op_code == CT_UNARY_IDENTITY,
         "it is the identity");
  ct_onnx_free(net);
  g = pb_new();
  add_node(g, onnx_node("Dropout", "d", NAMES("x", "", "t"), NAMES("z"), NULL));
  add_init(g, onnx_tensor("t", 9, NULL, 0, "\x01", 1));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "Dropout in training mode", NAMES("training mode"));
  /* Weight norm over initializers, folded: w = g * v / ||v||. */
  float v[12], gw[3] = {2, 3, 4};
  seq(v, 12, 1);
  g = pb_new();
  add_node(g, onnx_node("ReduceL2", "norm", NAMES("v"), NAMES("n"),
                        onnx_attr_ints("axes", DIMS(1, 2), 2),
                        onnx_attr_int("keepdims", 1), NULL));
  add_node(g, onnx_node("Div", "div", NAMES("v", "n"), NAMES("vn"), NULL));
  add_node(g, onnx_node("Mul", "mul", NAMES("vn", "g"), NAMES("w"), NULL));
  add_node(g, onnx_node("Conv", "conv", NAMES("x", "w"), NAMES("z"), NULL));
  add_init(g, onnx_tensor_f32("v", DIMS(3, 2, 2), 3, v));
  add_init(g, onnx_tensor_f32("g", DIMS(3, 1, 1), 3, gw));
  io(g, "x", 2, "z", 3, 1);
  net = expect_model_loads(model_of(g), "a weight-normalised Conv");
  gboolean wn_ok = net && net->n_nodes == 1;
  for (int o = 0; wn_ok && o < 3; o++) {
    double ss = 0;
    for (int i = 0; i < 4; i++)
      ss += (double)v[4 * o + i] * v[4 * o + i];
    const float norm = (float)sqrt(ss);
    for (int i = 0; wn_ok && i < 4; i++)
      wn_ok = net->nodes[0].weight[4 * o + i] == (v[4 * o + i] / norm) * gw[o];
  }
  tap_ok(wn_ok, "its weight is g * (v / ||v||), each step rounded to float32");
  ct_onnx_free(net);
  g = pb_new();
  add_node(g, onnx_node("ReduceL2", "norm", NAMES("x"), NAMES("z"),
                        onnx_attr_ints("axes", DIMS(2), 1), NULL));
  io(g, "x", 2, "z", 2, 1);
  expect_model_refused(model_of(g), "ReduceL2 over the signal",
                       NAMES("(ReduceL2)", "reduces over a spatial axis"));
}

/* torch's PixelShuffle below opset 11, with one thing changed (or none). */
static pb *shuffle_graph(const gint64 *perm, gboolean leak, gboolean bad_constant) {
  pb *g = pb_new();
  add_node(g, onnx_node("Unsqueeze", "u", NAMES("x"), NAMES("u"),
                        onnx_attr_ints("axes", DIMS(2, 3), 2), NULL));
  add_node(g,
           onnx_node("Constant", "k1", NULL, NAMES("s1"),
                     onnx_attr_tensor("value", onnx_tensor_i64(NULL, DIMS(6), 1,
                                                               DIMS(0, -1, 3, 3, 0, 0))),
                     bad_constant ? onnx_attr_float("value_float", 1) : NULL, NULL));
  add_node(g, onnx_node("Reshape", "r1", NAMES("u", "s1"), NAMES("r1"), NULL));
  add_node(g, onnx_node("Transpose", "t", NAMES("r1"), NAMES("t"),
                        onnx_attr_ints("perm", perm, 6), NULL));
  add_node(g, onnx_node("Reshape", "r2", NAMES("t", "s2"), NAMES("r2"), NULL));
  add_node(g, onnx_node("Reshape", "r3", NAMES("r2", "s3"), NAMES("r3"), NULL));
  add_node(g, onnx_node("Squeeze", "s", NAMES("r3"), NAMES("z"),
                        onnx_attr_ints("axes", DIMS(3, 5), 2), NULL));
  add_init(g, onnx_tensor_i64("s2", DIMS(6), 1, DIMS(0, 0, -1, 1, 0, 0)));
  add_init(g, onnx_tensor_i64("s3", DIMS(6), 1, DIMS(0, 0, 0, 0, -1, 1)));
  if (leak) /* the transposed value read by another node too */
    add_node(g, onnx_node("Add", "leak", NAMES("z", "t"), NAMES("zz"), NULL));
  io(g, "x", 18, leak ? "zz" : "z", 2, 2);
  return g;
}

static void test_pixel_shuffle(void) {
  ct_network *net =
      expect_model_loads(model_at(9, shuffle_graph(DIMS(0, 1, 4, 2, 5, 3), FALSE, FALSE)),
                         "PixelShuffle(3) as torch writes it at opset 9");
  tap_ok(net && net->n_nodes == 1 && net->nodes[0].kind == CT_NODE_DEPTH_TO_SPACE &&
             net->nodes[0].block_size == 3 &&
             net->nodes[0].depth_to_space_mode == CT_DEPTH_TO_SPACE_CRD &&
             net->values[net->output].channels == 2,
         "it is one DepthToSpace CRD of blocksize 3, 18 -> 2 channels");
  /* The reference run: channel c r^2 + i r + j at (h, w) goes to channel c
   * at (h r + i, w r + j). */
  gboolean moved = FALSE;
  if (net) {
    float in[18 * 2 * 2];
    for (int i = 0; i < 72; i++)
      in[i] = (float)i;
    ref_tensor out = {0};
    char msg[64];
    moved = ref_network_run(net, DIMS(1, 18, 2, 2), in, &out, msg, sizeof msg) == 0 &&
            out.s[0] == 6 && out.s[1] == 6;
    /* output (c 1, h 4, w 5): h = 1 * 3 + 1, w = 1 * 3 + 2: input channel 9 + 3 + 2. */
    moved = moved && out.data[(1 * 6 + 4) * 6 + 5] == (float)((14 * 2 + 1) * 2 + 1);
    ref_tensor_clear(&out);
  }
  tap_ok(moved, "its reference run moves channel c r^2 + i r + j to (h r + i, w r + j)");
  ct_onnx_free(net);
  expect_model_refused(model_at(9, shuffle_graph(DIMS(0, 1, 4, 3, 5, 2), FALSE, FALSE)),
                       "the same with another Transpose",
                       NAMES("(Unsqueeze)", "DepthToSpace"));
  expect_model_refused(model_at(9, shuffle_graph(DIMS(0, 1, 4, 2, 5, 3), TRUE, FALSE)),
                       "the same with the transposed value read elsewhere",
                       NAMES("node 0 \"u\" (Unsqueeze)", "Reshape/Shape computations"));
  expect_model_refused(model_at(9, shuffle_graph(DIMS(0, 1, 4, 2, 5, 3), FALSE, TRUE)),
                       "the same with a broken Constant for the first Reshape",
                       NAMES("node 1 \"k1\" (Constant)", "has 2 attributes"));
}

static void test_channels(void) {
  pb *g = pb_new();
  add_node(g, onnx_node("Split", "s", NAMES("x", "parts"), NAMES("a", "b"),
                        onnx_attr_int("axis", 1), NULL));
  add_node(g, onnx_node("Concat", "c", NAMES("b", "a", "b"), NAMES("z"),
                        onnx_attr_int("axis", -2), NULL));
  add_init(g, onnx_tensor_i64("parts", DIMS(2), 1, DIMS(2, 4)));
  io(g, "x", 6, "z", 10, 1);
  ct_network *net = expect_model_loads(model_of(g), "Split [2, 4] then Concat(b, a, b)");
  tap_ok(net && net->n_nodes == 2 && net->nodes[0].kind == CT_NODE_SPLIT &&
             net->nodes[0].split_channels[0] == 2 &&
             net->nodes[0].split_channels[1] == 4 && net->nodes[1].n_inputs == 3 &&
             net->values[net->output].channels == 10,
         "split channels 2 and 4, concatenated 4 + 2 + 4 = 10");
  ct_onnx_free(net);
  expect_model_refused(
      model_of(one_node(onnx_node("Concat", "c", NAMES("x", "x"), NAMES("z"),
                                  onnx_attr_int("axis", 2), NULL),
                        2, 2, 1)),
      "Concat along the streamed axis",
      NAMES("concatenates along axis 2 (the streamed axis)"));
  expect_model_refused(
      model_of(
          one_node(onnx_node("Split", "s", NAMES("x"), NAMES("a", "z"), NULL), 2, 1, 1)),
      "Split along the batch (its default axis)",
      NAMES("splits along axis 0 (the batch axis)"));
  net = expect_model_loads(
      model_of(one_node(onnx_node("DepthToSpace", "d", NAMES("x"), NAMES("z"),
                                  onnx_attr_int("blocksize", 2),
                                  onnx_attr_string("mode", "CRD"), NULL),
                        8, 2, 2)),
      "DepthToSpace CRD");
  tap_ok(net && net->nodes[0].block_size == 2 &&
             net->nodes[0].depth_to_space_mode == CT_DEPTH_TO_SPACE_CRD &&
             net->values[net->output].channels == 2,
         "blocksize 2, CRD, 8 / 4 = 2 channels");
  ct_onnx_free(net);
  expect_model_refused(
      model_of(one_node(onnx_node("DepthToSpace", "d", NAMES("x"), NAMES("z"),
                                  onnx_attr_int("blocksize", 2), NULL),
                        8, 2, 1)),
      "DepthToSpace on a 1d signal", NAMES("defined on [N, C, H, W]"));
  expect_model_refused(
      model_of(one_node(onnx_node("DepthToSpace", "d", NAMES("x"), NAMES("z"),
                                  onnx_attr_int("blocksize", 2), NULL),
                        6, 2, 2)),
      "DepthToSpace of channels not a multiple of b^2",
      NAMES("not a multiple of blocksize^2"));
  expect_model_refused(model_of(one_node(onnx_node("Softmax", "s", NAMES("x"), NAMES("z"),
                                                   onnx_attr_int("axis", 1), NULL),
                                         8, 8, 1)),
                       "Softmax over the channels",
                       NAMES("over the channels", "not support"));
  expect_model_refused(model_of(one_node(onnx_node("Cast", "c", NAMES("x"), NAMES("z"),
                                                   onnx_attr_int("to", 7), NULL),
                                         2, 2, 1)),
                       "a Cast of the signal to int64", NAMES("casts \"x\"", "to int64"));
  expect_model_refused(
      model_of(
          one_node(onnx_node("Frobnicate", "f", NAMES("x"), NAMES("z"), NULL), 2, 2, 1)),
      "an unknown operator",
      NAMES("node 0 \"f\" (Frobnicate)", "is not an operator this reader supports"));
}

/* Weights shared by nodes are converted once; a file whose nodes would
 * copy far more than it holds is refused. */
static void test_memory(void) {
  float *w = g_new(float, 64 * 64 * 3);
  seq(w, 64 * 64 * 3, 0);
  pb *g = pb_new();
  for (int i = 0; i < 50; i++) {
    gchar *in = g_strdup_printf("v%d", i), *out = g_strdup_printf("v%d", i + 1);
    add_node(g, onnx_node("Conv", NULL, NAMES(i ? in : "x", "w"),
                          NAMES(i == 49 ? "z" : out), NULL));
    g_free(in);
    g_free(out);
  }
  add_init(g, onnx_tensor_f32("w", DIMS(64, 64, 3), 3, w));
  io(g, "x", 64, "z", 64, 1);
  ct_network *net = expect_model_loads(model_of(g), "50 Conv nodes sharing one weight");
  gboolean shared = net && net->n_nodes == 50;
  for (int i = 1; shared && i < 50; i++)
    shared = net->nodes[i].weight == net->nodes[0].weight;
  tap_ok(shared, "they share one float32 copy of it");
  ct_onnx_free(net);
  g_free(w);
  /* 60 BatchNormalizations of 2^18 channels: 2 MiB of scale and shift
   * each, from 4 MiB of statistics. */
  const gint64 c = 1 << 18;
  float *ones = g_new(float, c);
  for (gint64 i = 0; i < c; i++)
    ones[i] = 1;
  g = pb_new();
  for (int i = 0; i < 60; i++) {
    gchar *in = g_strdup_printf("v%d", i), *out = g_strdup_printf("v%d", i + 1);
    add_node(g, onnx_node("BatchNormalization", NULL,
                          NAMES(i ? in : "x", "s", "s", "s", "s"),
                          NAMES(i == 59 ? "z" : out), NULL));
    g_free(in);
    g_free(out);
  }
  add_init(g, onnx_tensor_f32("s", DIMS(c), 1, ones));
  io(g, "x", c, "z", c, 1);
  expect_model_refused(model_of(g), "a file whose nodes would copy 120 MiB from 1 MiB",
                       NAMES("would take more memory than a file of"));
  g_free(ones);
}

/* The content, not the name, decides. */
static void test_by_content(void) {
  gchar *st = g_build_filename(tmp_dir, "layer.onnx", NULL);
  const float w[4] = {1, 2, 3, 4};
  st_write_layer(st, 1, 1, 2, DIMS(2), w, 2, NULL, NULL);
  g_ptr_array_add(tmp_files, st);
  GError *e = NULL;
  CtLoadedModel *m = ct_model_open(st, NULL, NULL, NULL, &e);
  tap_ok(m && m->kind == CT_MODEL_LAYER && m->layer,
         "a .safetensors layer named .onnx opens as a layer%s%s", e ? ": " : "",
         e ? e->message : "");
  ct_model_close(m);
  g_clear_error(&e);
  pb *onnx = model_of(small_graph());
  const char *net_path = write_named("net.safetensors", onnx->data, onnx->len);
  g_byte_array_free(onnx, TRUE);
  m = ct_model_open(net_path, NULL, NULL, NULL, &e);
  tap_ok(m && m->kind == CT_MODEL_NETWORK && m->network && m->network->n_nodes == 2,
         "an ONNX network named .safetensors opens as a network%s%s", e ? ": " : "",
         e ? e->message : "");
  ct_model_close(m);
  g_clear_error(&e);
  CtFileKind kind = CT_FILE_SAFETENSORS;
  tap_ok(ct_model_sniff(net_path, &kind, NULL) && kind == CT_FILE_ONNX,
         "ct_model_sniff says ONNX");
  ct_layer *layer = ct_model_load(net_path, NULL, NULL, &e);
  tap_ok(!layer && good_message(e, net_path) &&
             strstr(e->message, "is an ONNX network, not a single .safetensors layer"),
         "ct_model_load says an ONNX file is a network: %s", e ? e->message : "(loaded)");
  g_clear_error(&e);
  m = ct_model_open(net_path, "layer1", NULL, NULL, &e);
  tap_ok(!m && e && strstr(e->message, "a layer prefix and hyper-parameter overrides"),
         "a layer prefix with a network is refused: %s", e ? e->message : "(opened)");
  ct_model_close(m);
  g_clear_error(&e);
  layer = ct_model_load(st, NULL, NULL, &e);
  tap_ok(layer != NULL, "ct_model_load still takes the layer named .onnx");
  ct_layer_free(layer);
  g_clear_error(&e);
  const char *junk = write_named("junk.onnx", "not a model at all", 18);
  m = ct_model_open(junk, NULL, NULL, NULL, &e);
  tap_ok(!m && good_message(e, junk),
         "a file that is neither is the safetensors loader's "
         "to refuse: %s",
         e ? e->message : "(opened)");
  ct_model_close(m);
  g_clear_error(&e);
}

int main(int argc, char **argv) {
  /* A GError set twice (or any GLib warning) is a bug: abort on it. */
  g_log_set_always_fatal(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL);
  GError *err = NULL;
  tmp_dir = g_dir_make_tmp("ct-onnx-XXXXXX", &err);
  if (!tmp_dir) {
    printf("Bail out! %s\n", err->message);
    return 1;
  }
  tmp_files = g_ptr_array_new_with_free_func(g_free);
  if (argc > 1) {
    test_golden(argv[1]);
    test_golden_refusals(argv[1]);
  }
  test_truncated();
  test_mutations();
  test_wire();
  test_graph_structure();
  test_tensors();
  test_external_data();
  test_interface();
  test_attributes();
  test_convolutions();
  test_pools_and_pads();
  test_elementwise();
  test_channels();
  test_pixel_shuffle();
  test_memory();
  test_by_content();
  for (guint i = 0; i < tmp_files->len; i++)
    g_unlink(g_ptr_array_index(tmp_files, i));
  g_ptr_array_free(tmp_files, TRUE);
  g_rmdir(tmp_dir);
  g_free(tmp_dir);
  return tap_done();
}
