/* The safetensors container: the 8-byte little-endian header length, the
 * JSON header (checked by model/json-strict.h, parsed by json-glib), the
 * table of tensors validated as safetensors' own reader does (dtype, shape,
 * byte size, offsets that tile the data exactly), and the checked reads of
 * a tensor's values. Internal to model/. */
#ifndef CT_MODEL_SAFETENSORS_H
#define CT_MODEL_SAFETENSORS_H

#include <json-glib/json-glib.h>

#include "model/load-context.h"

typedef struct {
  const char *name; /* owned by the JSON tree */
  JsonObject *entry;
  int dtype;         /* ct_dtype */
  gint64 begin, end; /* data_offsets, validated */
  guint index;       /* position in the header, for stable order */
} ct_tensor;

typedef struct {
  JsonParser *parser;   /* owns the tree */
  JsonObject *metadata; /* __metadata__, every value a string; NULL if none */
  ct_tensor *tensors;   /* in header order */
  guint n_tensors;
  gint64 data_start, data_len; /* the bytes after the header */
} ct_safetensors;

/* Reads and validates the header of ld's file into st (cleared first); FALSE
 * with the load's error set. st must be cleared in either case. */
gboolean ct_safetensors_open(ct_load *ld, ct_safetensors *st);
void ct_safetensors_clear(ct_safetensors *st);

/* The tensor called name, or NULL. */
ct_tensor *ct_safetensors_find(const ct_safetensors *st, const char *name);
/* The validated shape, g_free'd by the caller; *rank set. */
gint64 *ct_tensor_shape(const ct_tensor *t, int *rank);

/* The values of a float tensor as float32, read and converted a block at a
 * time so no second full-size buffer is needed. malloc'd: a layer adopts it
 * (ct_layer_adopt). role ("weight", "bias") is for the messages. */
float *ct_safetensors_read_f32(ct_load *ld, const ct_safetensors *st, const ct_tensor *t,
                               const char *role);
/* The values of a float tensor as doubles, in order, a block at a time. */
typedef void (*ct_values_fn)(void *ctx, const double *values, gint64 n);
gboolean ct_safetensors_scan_f64(ct_load *ld, const ct_safetensors *st,
                                 const ct_tensor *t, ct_values_fn fn, void *ctx);

#endif
