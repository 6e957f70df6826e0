/* Order of work: checked reads of the length prefix and the header; the
 * pre-check of model/json-strict.c for what json-glib would take but JSON
 * forbids; json-glib for the tree (and every other syntax error); then every
 * entry and the data tiling, like safetensors' own reader. */
#include "model/safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/geometry.h"
#include "model/dtype.h"
#include "model/json-strict.h"

/* safetensors' own limit (MAX_HEADER_SIZE in the reference reader). */
#define HEADER_LIMIT 100000000
/* Tensor data is read and converted this many bytes at a time. */
#define READ_BLOCK (1 << 16)
/* How much of json-glib's message a refusal quotes (it is about 80 bytes). */
#define PARSER_MESSAGE_MAX 200

static gboolean node_int(JsonNode *node, gint64 *out) {
  if (!node || JSON_NODE_TYPE(node) != JSON_NODE_VALUE ||
      json_node_get_value_type(node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int(node);
  return TRUE;
}

static const char *shape_text(ct_load *ld, JsonArray *shape) {
  GString *tmp = g_string_new("[");
  guint n = json_array_get_length(shape);
  for (guint i = 0; i < n; i++) {
    if (i == CT_LIST_MAX) {
      g_string_append(tmp, ", ...");
      break;
    }
    gint64 v = 0;
    node_int(json_array_get_element(shape, i), &v);
    g_string_append_printf(tmp, "%s%lld", i ? ", " : "", (long long)v);
  }
  g_string_append_c(tmp, ']');
  return ct_keep(ld, tmp);
}

/* The byte size dtype x shape of a tensor, or FALSE with the error set. */
static gboolean entry_bytes(ct_load *ld, const ct_tensor *t, JsonArray *shape,
                            gint64 *bytes) {
  gint64 count = 1;
  gboolean overflow = FALSE;
  for (guint i = 0; i < json_array_get_length(shape); i++) {
    gint64 dim;
    if (!node_int(json_array_get_element(shape, i), &dim))
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                     "tensor %s: \"shape\" must be a list of integers",
                     ct_quote(ld, t->name));
    if (dim < 0)
      return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                     "tensor %s has a negative size %lld in its shape",
                     ct_quote(ld, t->name), (long long)dim);
    /* Keep scanning after an overflow: a negative size is the clearer fault. */
    if (!overflow && !ct_mul_i64(count, dim, &count))
      overflow = TRUE;
  }
  if (overflow || !ct_mul_i64(count, ct_dtype_size(t->dtype), bytes))
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "the size of tensor %s (shape %s) overflows", ct_quote(ld, t->name),
                   shape_text(ld, shape));
  return TRUE;
}

/* Checks one entry as safetensors' TensorInfo: dtype, shape, data_offsets,
 * and the byte size dtype x shape. */
static gboolean check_entry(ct_load *ld, const ct_safetensors *st, ct_tensor *t,
                            JsonNode *node) {
  const char *name = ct_quote(ld, t->name);
  if (JSON_NODE_TYPE(node) != JSON_NODE_OBJECT)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "entry of tensor %s is not an object",
                   name);
  JsonObject *e = json_node_get_object(node);
  t->entry = e;

  JsonNode *dn = json_object_get_member(e, "dtype");
  if (!dn)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has no \"dtype\"", name);
  if (JSON_NODE_TYPE(dn) != JSON_NODE_VALUE ||
      json_node_get_value_type(dn) != G_TYPE_STRING)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s: \"dtype\" is not a string",
                   name);
  t->dtype = ct_dtype_lookup(json_node_get_string(dn));
  if (t->dtype < 0)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has unknown dtype %s", name,
                   ct_quote(ld, json_node_get_string(dn)));

  JsonNode *sn = json_object_get_member(e, "shape");
  if (!sn)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has no \"shape\"", name);
  if (JSON_NODE_TYPE(sn) != JSON_NODE_ARRAY)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s: \"shape\" is not a list", name);
  JsonArray *shape = json_node_get_array(sn);
  gint64 bytes = 0;
  if (!entry_bytes(ld, t, shape, &bytes))
    return FALSE;

  JsonNode *on = json_object_get_member(e, "data_offsets");
  if (!on)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s has no \"data_offsets\"", name);
  JsonArray *offs =
      JSON_NODE_TYPE(on) == JSON_NODE_ARRAY ? json_node_get_array(on) : NULL;
  if (!offs || json_array_get_length(offs) != 2 ||
      !node_int(json_array_get_element(offs, 0), &t->begin) ||
      !node_int(json_array_get_element(offs, 1), &t->end) || t->begin < 0 || t->end < 0)
    return ct_fail(
        ld, CT_MODEL_ERROR_FORMAT,
        "tensor %s: \"data_offsets\" must be two non-negative integers [begin, end]",
        name);
  if (t->begin > t->end)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "tensor %s: data_offsets [%lld, %lld] end before they begin", name,
                   (long long)t->begin, (long long)t->end);
  if (t->end - t->begin != bytes)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "tensor %s has %lld bytes (data_offsets [%lld, %lld]) but dtype %s "
                   "and shape %s need %lld",
                   name, (long long)(t->end - t->begin), (long long)t->begin,
                   (long long)t->end, ct_dtype_name(t->dtype), shape_text(ld, shape),
                   (long long)bytes);
  if (t->end > st->data_len)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "tensor %s: data_offsets [%lld, %lld] lie outside the data (%lld "
                   "bytes after the header)",
                   name, (long long)t->begin, (long long)t->end, (long long)st->data_len);
  return TRUE;
}

static int by_offsets(const void *a, const void *b) {
  const ct_tensor *x = *(const ct_tensor *const *)a, *y = *(const ct_tensor *const *)b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* safetensors' own reader demands that the tensors tile the data exactly. */
static gboolean check_tiling(ct_load *ld, const ct_safetensors *st) {
  const guint n = st->n_tensors;
  const ct_tensor **order = g_new(const ct_tensor *, n ? n : 1);
  for (guint i = 0; i < n; i++)
    order[i] = &st->tensors[i];
  qsort(order, n, sizeof *order, by_offsets);
  gint64 at = 0;
  const ct_tensor *prev = NULL;
  gboolean ok = TRUE;
  for (guint i = 0; i < n && ok; i++) {
    const ct_tensor *t = order[i];
    if (t->begin < at)
      ok = ct_fail(
          ld, CT_MODEL_ERROR_FORMAT,
          "tensors %s (data bytes %lld..%lld) and %s (data bytes %lld..%lld) overlap",
          ct_quote(ld, prev->name), (long long)prev->begin, (long long)prev->end,
          ct_quote(ld, t->name), (long long)t->begin, (long long)t->end);
    else if (t->begin > at)
      ok = ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "data bytes %lld..%lld belong to no tensor (a hole before tensor %s)",
                   (long long)at, (long long)t->begin, ct_quote(ld, t->name));
    at = t->end;
    prev = t;
  }
  if (ok && at != st->data_len)
    ok = ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                 "the tensors end at data byte %lld but the file goes on to data byte "
                 "%lld (a safetensors file ends where its last tensor ends)",
                 (long long)at, (long long)st->data_len);
  g_free(order);
  return ok;
}

/* The length prefix and the header text (NUL-terminated, g_free'd by the
 * caller), or NULL with the error set. */
static gchar *read_header(ct_load *ld, ct_safetensors *st, gsize *len) {
  if (ld->file_size < 8) {
    ct_fail(ld, CT_MODEL_ERROR_FORMAT,
            "truncated (%lld bytes, a safetensors file has at least 8)",
            (long long)ld->file_size);
    return NULL;
  }
  guint8 prefix[8];
  if (!ct_read_at(ld, prefix, 8, 0))
    return NULL;
  guint64 n = 0;
  for (int b = 7; b >= 0; b--)
    n = n << 8 | prefix[b];
  if (n > HEADER_LIMIT) {
    ct_fail(ld, CT_MODEL_ERROR_FORMAT, "header length %llu exceeds the limit of %d bytes",
            (unsigned long long)n, HEADER_LIMIT);
    return NULL;
  }
  if ((gint64)n > ld->file_size - 8) {
    ct_fail(ld, CT_MODEL_ERROR_FORMAT,
            "header length %llu runs past the end of the file (%lld bytes): truncated",
            (unsigned long long)n, (long long)ld->file_size);
    return NULL;
  }
  st->data_start = 8 + (gint64)n;
  st->data_len = ld->file_size - st->data_start;
  gchar *header = g_try_malloc((gsize)n + 1);
  if (!header) {
    ct_fail(ld, CT_MODEL_ERROR_IO, "out of memory for a header of %llu bytes",
            (unsigned long long)n);
    return NULL;
  }
  if (!ct_read_at(ld, header, (size_t)n, 8)) {
    g_free(header);
    return NULL;
  }
  header[n] = '\0';
  *len = (gsize)n;
  return header;
}

/* The strict check's finding, in safetensors' words. */
static gboolean fail_json(ct_load *ld, ct_json_verdict verdict, const ct_json_fault *f) {
  if (verdict == CT_JSON_TOO_COMPLEX)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "header is too complex for this loader (%s; at byte %lld of the "
                   "header)",
                   f->why, (long long)f->pos);
  if (verdict != CT_JSON_DUPLICATE)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "header is not valid JSON (%s at byte %lld of the header)", f->why,
                   (long long)f->pos);
  if (f->depth == 0 && strcmp(f->name, "__metadata__") == 0)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "\"__metadata__\" is given twice");
  if (f->depth == 0)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "tensor %s is given twice",
                   ct_quote(ld, f->name));
  if (f->parent && strcmp(f->parent, "__metadata__") == 0)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "metadata key %s is given twice",
                   ct_quote(ld, f->name));
  if (f->parent)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "key %s is given twice in the entry of tensor %s",
                   ct_quote(ld, f->name), ct_quote(ld, f->parent));
  return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                 "key %s is given twice (at byte %lld of the header)",
                 ct_quote(ld, f->name), (long long)f->pos);
}

/* json-glib's refusal, with the place: of text that is not UTF-8 (a NUL byte
 * included) it says only that, so the loader finds the byte. */
static gboolean fail_parse(ct_load *ld, const GError *jerr, const gchar *header,
                           gsize n) {
  const gchar *bad;
  if (g_error_matches(jerr, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA) &&
      !g_utf8_validate_len(header, n, &bad))
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   *bad ? "header is not valid UTF-8 (at byte %lld of the header)"
                        : "header is not valid JSON (a NUL byte at byte %lld of the "
                          "header)",
                   (long long)(bad - header));
  /* "<data>:1:7: Parse error: unexpected ...": the line and column are kept,
   * json-glib's name for the text is not. The message may quote the file. */
  const char *msg = jerr->message;
  if (g_str_has_prefix(msg, "<data>:"))
    msg += strlen("<data>:");
  GString *text = g_string_new(NULL);
  ct_escape_append(text, msg, FALSE, PARSER_MESSAGE_MAX);
  ct_fail(ld, CT_MODEL_ERROR_FORMAT, "header is not valid JSON (json-glib: %s)",
          text->str);
  g_string_free(text, TRUE);
  return FALSE;
}

/* The header as a JSON object (in st->parser), or NULL with the error set. */
static JsonObject *parse_header(ct_load *ld, ct_safetensors *st, const gchar *header,
                                gsize n) {
  ct_json_fault fault;
  ct_json_verdict verdict = ct_json_strict_check(header, n, &fault);
  if (verdict != CT_JSON_STRICT)
    fail_json(ld, verdict, &fault);
  ct_json_fault_clear(&fault);
  if (verdict != CT_JSON_STRICT)
    return NULL;

  st->parser = json_parser_new();
  GError *jerr = NULL;
  if (!json_parser_load_from_data(st->parser, header, (gssize)n, &jerr)) {
    fail_parse(ld, jerr, header, n);
    g_error_free(jerr);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(st->parser);
  /* json-glib takes text without a value (empty, or white space only). */
  if (!root) {
    ct_fail(ld, CT_MODEL_ERROR_FORMAT, "header is not valid JSON (it holds no value)");
    return NULL;
  }
  if (JSON_NODE_TYPE(root) != JSON_NODE_OBJECT) {
    ct_fail(ld, CT_MODEL_ERROR_FORMAT, "header is JSON but not an object (it is %s)",
            JSON_NODE_TYPE(root) == JSON_NODE_ARRAY           ? "a list"
            : json_node_get_value_type(root) == G_TYPE_STRING ? "a string"
                                                              : "a single value");
    return NULL;
  }
  return json_node_get_object(root);
}

/* safetensors metadata holds only strings. */
static gboolean check_metadata(ct_load *ld, JsonNode *node) {
  if (JSON_NODE_TYPE(node) != JSON_NODE_OBJECT)
    return ct_fail(ld, CT_MODEL_ERROR_FORMAT, "\"__metadata__\" is not an object");
  JsonObject *md = json_node_get_object(node);
  GList *keys = json_object_get_members(md);
  gboolean ok = TRUE;
  for (GList *k = keys; k && ok; k = k->next) {
    JsonNode *v = json_object_get_member(md, k->data);
    if (JSON_NODE_TYPE(v) != JSON_NODE_VALUE ||
        json_node_get_value_type(v) != G_TYPE_STRING)
      ok = ct_fail(ld, CT_MODEL_ERROR_FORMAT,
                   "metadata value of %s is not a string (safetensors metadata holds "
                   "only strings)",
                   ct_quote(ld, k->data));
  }
  g_list_free(keys);
  return ok;
}

gboolean ct_safetensors_open(ct_load *ld, ct_safetensors *st) {
  *st = (ct_safetensors){0};
  gsize n;
  gchar *header = read_header(ld, st, &n);
  if (!header)
    return FALSE;
  JsonObject *root = parse_header(ld, st, header, n);
  g_free(header);
  if (!root)
    return FALSE;

  GList *names = json_object_get_members(root);
  st->tensors = g_new0(ct_tensor, g_list_length(names) + 1);
  gboolean ok = TRUE;
  for (GList *l = names; l && ok; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member(root, name);
    if (strcmp(name, "__metadata__") == 0) {
      ok = check_metadata(ld, node);
      if (ok)
        st->metadata = json_node_get_object(node);
      continue;
    }
    ct_tensor *t = &st->tensors[st->n_tensors];
    t->name = name;
    t->index = st->n_tensors++;
    ok = check_entry(ld, st, t, node);
  }
  g_list_free(names);
  return ok && check_tiling(ld, st);
}

void ct_safetensors_clear(ct_safetensors *st) {
  if (st->parser)
    g_object_unref(st->parser);
  g_free(st->tensors);
  *st = (ct_safetensors){0};
}

ct_tensor *ct_safetensors_find(const ct_safetensors *st, const char *name) {
  for (guint i = 0; i < st->n_tensors; i++) {
    if (strcmp(st->tensors[i].name, name) == 0)
      return &st->tensors[i];
  }
  return NULL;
}

gint64 *ct_tensor_shape(const ct_tensor *t, int *rank) {
  JsonArray *shape = json_object_get_array_member(t->entry, "shape");
  guint n = json_array_get_length(shape);
  gint64 *dims = g_new(gint64, n ? n : 1);
  for (guint i = 0; i < n; i++)
    node_int(json_array_get_element(shape, i), &dims[i]);
  *rank = (int)n;
  return dims;
}

/* Reads a validated tensor's bytes a block at a time, handing each block of
 * whole elements to fn. */
typedef void (*block_fn)(void *ctx, const guint8 *bytes, gint64 done, gint64 n);

static gboolean read_blocks(ct_load *ld, const ct_safetensors *st, const ct_tensor *t,
                            block_fn fn, void *ctx) {
  const int es = ct_dtype_size(t->dtype);
  const gint64 count = (t->end - t->begin) / es, per_block = READ_BLOCK / es;
  guint8 *buf = g_malloc(READ_BLOCK);
  gboolean ok = TRUE;
  for (gint64 done = 0; ok && done < count; done += per_block) {
    const gint64 k = count - done < per_block ? count - done : per_block;
    ok = ct_read_at(ld, buf, (size_t)(k * es), st->data_start + t->begin + done * es);
    if (ok)
      fn(ctx, buf, done, k);
  }
  g_free(buf);
  return ok;
}

typedef struct {
  int dtype;
  float *out;
} f32_ctx;

static void to_f32(void *ctx, const guint8 *bytes, gint64 done, gint64 n) {
  f32_ctx *c = ctx;
  ct_dtype_to_f32(c->dtype, bytes, c->out + done, (size_t)n);
}

float *ct_safetensors_read_f32(ct_load *ld, const ct_safetensors *st, const ct_tensor *t,
                               const char *role) {
  const gint64 count = (t->end - t->begin) / ct_dtype_size(t->dtype);
  size_t bytes;
  f32_ctx c = {.dtype = t->dtype};
  if (ct_bytes_for(count, sizeof(float), &bytes))
    c.out = malloc(bytes ? bytes : 1);
  if (!c.out) {
    ct_fail(ld, CT_MODEL_ERROR_LAYER, "out of memory for %s %s (%lld values)", role,
            ct_quote(ld, t->name), (long long)count);
    return NULL;
  }
  if (!read_blocks(ld, st, t, to_f32, &c)) {
    free(c.out);
    return NULL;
  }
  return c.out;
}

typedef struct {
  int dtype;
  double *values;
  ct_values_fn fn;
  void *ctx;
} f64_ctx;

static void to_f64(void *ctx, const guint8 *bytes, gint64 done, gint64 n) {
  f64_ctx *c = ctx;
  ct_dtype_to_f64(c->dtype, bytes, c->values, (size_t)n);
  c->fn(c->ctx, c->values, n);
}

gboolean ct_safetensors_scan_f64(ct_load *ld, const ct_safetensors *st,
                                 const ct_tensor *t, ct_values_fn fn, void *ctx) {
  f64_ctx c = {.dtype = t->dtype, .fn = fn, .ctx = ctx};
  c.values = g_malloc((size_t)(READ_BLOCK / ct_dtype_size(t->dtype)) * sizeof(double));
  gboolean ok = read_blocks(ld, st, t, to_f64, &c);
  g_free(c.values);
  return ok;
}
