/* libFuzzer target: the ONNX reader (model/onnx.c) on any bytes.
 *
 * The input becomes an in-memory file (memfd) loaded by path through
 * /proc/self/fd, as the loaders load a model. Beyond "never crash, never
 * read out of bounds", it checks the reader's promises: a refusal is one
 * GError in CT_MODEL_ERROR whose single line names the file; a loaded
 * network is a consistent description (every node reads values made before
 * it, its channel rules hold, its parameters are in range); and the loader
 * that sniffs the content agrees with the reader on ONNX content. GLib's
 * warnings (a GError set twice) are fatal. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/model.h"
#include "model/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

static void check(gboolean ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz-onnx: property violated: %s (%s)\n", what,
            detail ? detail : "");
    abort();
  }
}

static void set_content(const uint8_t *data, size_t size) {
  if (memfd < 0) {
    /* A GError set twice (or any GLib warning) is a bug: abort on it. */
    g_log_set_always_fatal(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL);
    memfd = memfd_create("fuzz-onnx", MFD_CLOEXEC);
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
static void check_refusal(const GError *error) {
  check(error != NULL, "a NULL network comes with an error", NULL);
  check(error->domain == CT_MODEL_ERROR, "error domain", error->message);
  check(g_utf8_validate(error->message, -1, NULL), "message is UTF-8", NULL);
  for (const char *p = error->message; *p; p++)
    check((guchar)*p >= 0x20 && *p != 0x7f, "message is one line without control bytes",
          error->message);
  check(g_str_has_prefix(error->message, path), "message names the file", error->message);
}

static gint64 channels(const ct_network *net, int v) {
  return net->values[v].channels;
}

/* The window parameters of a convolution or pool, axis by axis. */
static void check_window(const ct_node *n, int rank, gboolean pool) {
  for (int a = 0; a < rank; a++) {
    check(n->kernel[a] >= 1 && n->kernel[a] <= CT_MAX_PARAM, "kernel in range", n->op);
    check(n->stride[a] >= 1 && n->stride[a] <= CT_MAX_PARAM, "stride in range", n->op);
    check(n->dilation[a] >= 1 && n->dilation[a] <= CT_MAX_PARAM, "dilation in range",
          n->op);
    check(n->pad_begin[a] >= 0 && n->pad_end[a] >= 0, "pads not negative", n->op);
    check(n->output_padding[a] >= 0, "output padding not negative", n->op);
    if (pool) {
      const gint64 extent = (n->kernel[a] - 1) * n->dilation[a] + 1;
      check(n->pad_begin[a] < extent && n->pad_end[a] < extent, "pool pads within window",
            n->op);
    }
  }
}

static void check_node(const ct_network *net, const ct_node *n) {
  const gint64 cin = channels(net, n->inputs[0]), cout = channels(net, n->outputs[0]);
  switch (n->kind) {
  case CT_NODE_CONV:
  case CT_NODE_CONV_TRANSPOSE:
    check(n->n_inputs == 1 && n->n_outputs == 1, "a convolution reads and makes one",
          n->op);
    check(n->groups >= 1 && cin % n->groups == 0 && cout % n->groups == 0,
          "groups divide the channels", n->op);
    check(n->weight != NULL, "a convolution has a weight", n->op);
    check_window(n, net->rank, FALSE);
    break;
  case CT_NODE_MAX_POOL:
  case CT_NODE_AVERAGE_POOL:
    check(n->n_inputs == 1 && n->n_outputs == 1 && cin == cout, "a pool keeps channels",
          n->op);
    check_window(n, net->rank, TRUE);
    break;
  case CT_NODE_PAD:
    /* Negative pads crop. */
    for (int a = 0; a <= net->rank; a++)
      check(n->pad_axes_begin[a] >= -CT_MAX_PARAM &&
                n->pad_axes_begin[a] <= CT_MAX_PARAM &&
                n->pad_axes_end[a] >= -CT_MAX_PARAM && n->pad_axes_end[a] <= CT_MAX_PARAM,
            "pads in range", n->op);
    check(cout == cin + n->pad_axes_begin[0] + n->pad_axes_end[0], "Pad's channels",
          n->op);
    break;
  case CT_NODE_UNARY:
    check(n->n_inputs == 1 && cin == cout, "a unary node keeps channels", n->op);
    check(n->op_code >= CT_UNARY_IDENTITY && n->op_code <= CT_UNARY_COS, "unary op",
          n->op);
    break;
  case CT_NODE_BINARY:
    check(n->op_code >= CT_BINARY_ADD && n->op_code <= CT_BINARY_PRELU, "binary op",
          n->op);
    check(cin == cout, "a binary node keeps channels", n->op);
    if (n->has_constant) {
      check(n->n_inputs == 1 && n->constant.data != NULL, "one value and a constant",
            n->op);
      for (int a = 0; a < net->rank + 2; a++)
        check(a == 1 ? n->constant.dims[a] == 1 || n->constant.dims[a] == cin
                     : n->constant.dims[a] == 1,
              "a constant varies along the channels only", n->op);
    } else {
      check(n->n_inputs == 2 && channels(net, n->inputs[1]) == cin, "two values alike",
            n->op);
    }
    break;
  case CT_NODE_AFFINE:
    check(n->scale && n->shift && cin == cout, "an affine node keeps channels", n->op);
    break;
  case CT_NODE_CONCAT: {
    gint64 sum = 0;
    for (int i = 0; i < n->n_inputs; i++)
      sum += channels(net, n->inputs[i]);
    check(n->n_inputs >= 2 && sum == cout, "Concat's channels add up", n->op);
    break;
  }
  case CT_NODE_SPLIT: {
    gint64 sum = 0;
    for (int i = 0; i < n->n_outputs; i++) {
      check(n->split_channels[i] == channels(net, n->outputs[i]), "Split's parts", n->op);
      sum += n->split_channels[i];
    }
    check(sum == cin, "Split's parts add up", n->op);
    break;
  }
  case CT_NODE_DEPTH_TO_SPACE:
    check(net->rank == 2 && n->block_size >= 1 &&
              cin == cout * n->block_size * n->block_size,
          "DepthToSpace's channels", n->op);
    break;
  default:
    check(FALSE, "a known node kind", n->op);
  }
}

/* Every node reads values made before it and makes new ones. */
static void check_network(const ct_network *net) {
  check(net->rank >= 1 && net->rank <= CT_MAX_RANK, "rank 1 to 3", NULL);
  check(net->input >= 0 && net->input < net->n_values && net->output >= 0 &&
            net->output < net->n_values,
        "input and output are values", NULL);
  for (int v = 0; v < net->n_values; v++)
    check(net->values[v].name && net->values[v].channels >= 1 &&
              net->values[v].channels <= CT_MAX_PARAM,
          "a value has a name and channels", NULL);
  gboolean *made = g_new0(gboolean, net->n_values);
  made[net->input] = TRUE;
  for (int i = 0; i < net->n_nodes; i++) {
    const ct_node *n = &net->nodes[i];
    check(n->op && n->n_inputs >= 1 && n->n_outputs >= 1, "a node reads and makes", NULL);
    for (int j = 0; j < n->n_inputs; j++)
      check(n->inputs[j] >= 0 && n->inputs[j] < net->n_values && made[n->inputs[j]],
            "a node reads values made before it", n->op);
    for (int j = 0; j < n->n_outputs; j++) {
      check(n->outputs[j] >= 0 && n->outputs[j] < net->n_values && !made[n->outputs[j]],
            "a node makes new values", n->op);
      made[n->outputs[j]] = TRUE;
    }
    check_node(net, n);
  }
  check(made[net->output], "the output is made", NULL);
  g_free(made);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  set_content(data, size);
  GError *error = NULL;
  ct_network *net = ct_onnx_load(path, &error);
  if (net) {
    check(error == NULL, "no error with a network", NULL);
    check_network(net);
  } else {
    check_refusal(error);
  }
  g_clear_error(&error);
  /* The sniffing loader: ONNX content goes to the same reader. */
  CtLoadedModel *m = ct_model_open(path, NULL, NULL, NULL, &error);
  if (m) {
    check(m->kind == CT_MODEL_LAYER || net, "ct_model_open agrees with ct_onnx_load",
          NULL);
  } else {
    check_refusal(error);
    CtFileKind kind = CT_FILE_SAFETENSORS;
    check(!net || (ct_model_sniff(path, &kind, NULL) && kind != CT_FILE_ONNX),
          "ct_model_open agrees with ct_onnx_load", error->message);
  }
  ct_model_close(m);
  g_clear_error(&error);
  ct_onnx_free(net);
  return 0;
}
