/* One walk over the bytes, led by protobuf-c's own descriptors of the
 * schema: what it accepts here protobuf-c decodes, and the walk adds up what
 * protobuf-c will allocate for it (each message's struct, the scan records
 * of its fields, repeated arrays, string and byte copies, unknown fields),
 * generously, so that the bound holds. */
#include "model/onnx-wire.h"

#include <string.h>

/* Per field occurrence: protobuf-c's scan record (32 bytes) and its share of
 * the record slabs, which grow by doubling. */
#define FIELD_COST 64
/* Per allocation: what malloc itself keeps. */
#define ALLOC_COST 16
/* Per element of a repeated field: its slot in the array (at most a
 * ProtobufCBinaryData). */
#define ELEMENT_COST 16

enum { WT_VARINT = 0, WT_64BIT = 1, WT_LEN = 2, WT_START = 3, WT_END = 4, WT_32BIT = 5 };

typedef struct {
  const ProtobufCFieldDescriptor *field; /* NULL: a field the schema does not know */
  guint number, index;                   /* its number; occurrence, if repeated */
} path_step;

typedef struct {
  ct_load *ld;
  const guint8 *base; /* the file, for offsets */
  const ProtobufCMessageDescriptor *root;
  guint64 alloc;
  int depth;
  path_step path[CT_ONNX_MAX_DEPTH + 1];
} wire;

/* Reads a varint at p (at most len bytes); the number of bytes it takes, 0
 * if it runs past len (*cut) or is longer than 64 bits. */
static gsize read_varint(const guint8 *p, gsize len, guint64 *v, gboolean *cut) {
  guint64 r = 0;
  *cut = FALSE;
  for (gsize i = 0; i < 10; i++) {
    if (i == len) {
      *cut = TRUE;
      return 0;
    }
    /* The tenth byte may hold only the 64th bit. */
    if (i == 9 && p[i] > 1)
      return 0;
    r |= (guint64)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = r;
      return i + 1;
    }
  }
  return 0;
}

static const char *wire_type_name(int wt) {
  switch (wt) {
  case WT_VARINT:
    return "varint";
  case WT_64BIT:
    return "64-bit";
  case WT_LEN:
    return "length-delimited";
  case WT_START:
    return "group start";
  case WT_END:
    return "group end";
  case WT_32BIT:
    return "32-bit";
  default:
    return "undefined";
  }
}

/* The wire type a field of this type is written with when not packed. */
static int wire_type_of(ProtobufCType type) {
  switch (type) {
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return WT_32BIT;
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return WT_64BIT;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
    return WT_LEN;
  default:
    return WT_VARINT;
  }
}

static const char *type_name(ProtobufCType type) {
  switch (type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return "an int32";
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return "an int64";
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return "a uint32";
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return "a uint64";
  case PROTOBUF_C_TYPE_FLOAT:
    return "a float";
  case PROTOBUF_C_TYPE_DOUBLE:
    return "a double";
  case PROTOBUF_C_TYPE_BOOL:
    return "a bool";
  case PROTOBUF_C_TYPE_ENUM:
    return "an enum";
  case PROTOBUF_C_TYPE_STRING:
    return "a string";
  case PROTOBUF_C_TYPE_BYTES:
    return "bytes";
  default:
    return "a message";
  }
}

/* "graph.node[3].attribute[0].t", the fields leading to the fault. */
static const char *path_text(wire *w) {
  GString *s = g_string_new(w->root->short_name);
  for (int i = 0; i <= w->depth; i++) {
    const path_step *st = &w->path[i];
    if (st->number == 0)
      break;
    if (st->field)
      g_string_append_printf(s, ".%s", st->field->name);
    else
      g_string_append_printf(s, ".<field %u>", st->number);
    if (st->field && st->field->label == PROTOBUF_C_LABEL_REPEATED)
      g_string_append_printf(s, "[%u]", st->index);
  }
  return ct_keep(w->ld, s);
}

static gboolean fault(wire *w, const guint8 *at, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static gboolean fault(wire *w, const guint8 *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gchar *why = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  ct_fail(w->ld, CT_MODEL_ERROR_FORMAT, "not a valid ONNX file: at byte %lld (%s): %s",
          (long long)(at - w->base), path_text(w), why);
  g_free(why);
  return FALSE;
}

static gboolean bad_varint(wire *w, const guint8 *at, gboolean cut, const char *what) {
  return cut ? fault(w, at,
                     "%s runs past the end of its message (the file is cut short "
                     "or corrupt)",
                     what)
             : fault(w, at, "%s is longer than 64 bits", what);
}

/* A varint's value fits the field's type (protobuf-c would cut it silently). */
static gboolean check_range(wire *w, const guint8 *at, ProtobufCType type, guint64 v) {
  const gint64 s = (gint64)v;
  switch (type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_ENUM:
    if (s < G_MININT32 || s > G_MAXINT32)
      return fault(w, at, "%lld does not fit %s", (long long)s, type_name(type));
    return TRUE;
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_UINT32:
    if (v > G_MAXUINT32)
      return fault(w, at, "%llu does not fit %s", (unsigned long long)v, type_name(type));
    return TRUE;
  default:
    return TRUE;
  }
}

/* A packed array: whole elements, every varint in range. */
static gboolean check_packed(wire *w, const ProtobufCFieldDescriptor *f, const guint8 *p,
                             gsize len) {
  const int wt = wire_type_of(f->type);
  if (wt != WT_VARINT) {
    const gsize size = wt == WT_32BIT ? 4 : 8;
    if (len % size != 0)
      return fault(w, p,
                   "a packed array of %s of %" G_GSIZE_FORMAT " bytes is not a whole "
                   "number of %" G_GSIZE_FORMAT "-byte elements",
                   type_name(f->type), len, size);
    w->alloc += (len / size) * ELEMENT_COST;
    return TRUE;
  }
  for (gsize at = 0; at < len;) {
    guint64 v;
    gboolean cut;
    gsize n = read_varint(p + at, len - at, &v, &cut);
    if (n == 0)
      return bad_varint(w, p + at, cut, "an element of a packed array");
    if (!check_range(w, p + at, f->type, v))
      return FALSE;
    at += n;
    w->alloc += ELEMENT_COST;
  }
  return TRUE;
}

static gboolean check_message(wire *w, const ProtobufCMessageDescriptor *desc,
                              const guint8 *p, gsize len);

/* The payload of a length-delimited field at p, len bytes. */
static gboolean check_delimited(wire *w, const ProtobufCFieldDescriptor *f,
                                const guint8 *p, gsize len) {
  w->alloc += ALLOC_COST;
  if (!f) { /* kept by protobuf-c as an unknown field */
    w->alloc += len + 24;
    return TRUE;
  }
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    w->alloc += ELEMENT_COST;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING:
    /* A C string ends at its first NUL: two different names would read as
     * one. */
    if (len && memchr(p, 0, len))
      return fault(w, p, "a string holds a NUL byte");
    w->alloc += len + 1;
    return TRUE;
  case PROTOBUF_C_TYPE_BYTES:
    w->alloc += len;
    return TRUE;
  case PROTOBUF_C_TYPE_MESSAGE:
    if (w->depth == CT_ONNX_MAX_DEPTH)
      return fault(w, p, "messages nested more than %d deep", CT_ONNX_MAX_DEPTH);
    w->depth++;
    w->path[w->depth] = (path_step){0};
    gboolean ok = check_message(w, f->descriptor, p, len);
    w->path[w->depth] = (path_step){0};
    w->depth--;
    return ok;
  default:
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
      return fault(w, p, "the field is %s, written with wire type length-delimited",
                   type_name(f->type));
    return check_packed(w, f, p, len);
  }
}

static gboolean check_message(wire *w, const ProtobufCMessageDescriptor *desc,
                              const guint8 *p, gsize len) {
  w->alloc += desc->sizeof_message + ALLOC_COST;
  /* Occurrences of each field so far, for the path in messages. */
  guint counts[64] = {0};
  path_step *step = &w->path[w->depth];
  for (gsize at = 0; at < len;) {
    const guint8 *field_at = p + at;
    guint64 tag;
    gboolean cut;
    gsize n = read_varint(p + at, len - at, &tag, &cut);
    if (n == 0)
      return bad_varint(w, field_at, cut, "a field's tag");
    at += n;
    const guint64 number = tag >> 3;
    const int wt = (int)(tag & 7);
    *step = (path_step){.number = (guint)MIN(number, G_MAXUINT)};
    if (number == 0 || number > 536870911)
      return fault(w, field_at, "field number %llu is not a valid one (1 to 2^29 - 1)",
                   (unsigned long long)number);
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
    step->field = f;
    if (f) {
      const gsize k = (gsize)(f - desc->fields);
      step->index = k < G_N_ELEMENTS(counts) ? counts[k]++ : 0;
      /* protobuf-c merges a message given twice into the first, copying
       * the first's arrays each time: given many times, quadratic. No ONNX
       * writer gives one twice. */
      if (f->label != PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
          k < G_N_ELEMENTS(counts) && counts[k] > 1)
        return fault(w, field_at, "the message field is given twice (once is allowed)");
    }
    w->alloc += FIELD_COST;
    if (f && wt != wire_type_of(f->type) &&
        !(wt == WT_LEN && f->label == PROTOBUF_C_LABEL_REPEATED))
      return fault(w, field_at, "the field is %s, written with wire type %s (%d)",
                   type_name(f->type), wire_type_name(wt), wt);
    switch (wt) {
    case WT_VARINT: {
      guint64 v;
      gsize m = read_varint(p + at, len - at, &v, &cut);
      if (m == 0)
        return bad_varint(w, p + at, cut, "the value");
      if (f && !check_range(w, p + at, f->type, v))
        return FALSE;
      at += m;
      if (!f)
        w->alloc += 24 + 10 + ALLOC_COST;
      else if (f->label == PROTOBUF_C_LABEL_REPEATED)
        w->alloc += ELEMENT_COST;
      break;
    }
    case WT_64BIT:
    case WT_32BIT: {
      const gsize size = wt == WT_64BIT ? 8 : 4;
      if (len - at < size)
        return fault(w, p + at,
                     "a %" G_GSIZE_FORMAT "-byte value runs past the end of its "
                     "message (the file is cut short or corrupt)",
                     size);
      at += size;
      if (!f)
        w->alloc += 24 + size + ALLOC_COST;
      else if (f->label == PROTOBUF_C_LABEL_REPEATED)
        w->alloc += ELEMENT_COST;
      break;
    }
    case WT_LEN: {
      guint64 flen;
      gsize m = read_varint(p + at, len - at, &flen, &cut);
      if (m == 0)
        return bad_varint(w, p + at, cut, "the length");
      at += m;
      if (flen > len - at)
        return fault(
            w, p + at,
            "a length of %llu bytes runs past the end of its message (%" G_GSIZE_FORMAT
            " bytes left: the file is cut short or corrupt)",
            (unsigned long long)flen, len - at);
      if (!check_delimited(w, f, p + at, (gsize)flen))
        return FALSE;
      at += (gsize)flen;
      break;
    }
    default:
      /* Groups are proto2's deprecated form; protobuf-c cannot skip them. */
      return fault(w, field_at, "wire type %s (%d) is not supported", wire_type_name(wt),
                   wt);
    }
  }
  *step = (path_step){0};
  return TRUE;
}

gboolean ct_onnx_wire_check(ct_load *ld, const ProtobufCMessageDescriptor *desc,
                            const guint8 *data, gsize len, guint64 *alloc_bytes) {
  wire w = {.ld = ld, .base = data, .root = desc};
  gboolean ok = check_message(&w, desc, data, len);
  *alloc_bytes = w.alloc;
  return ok;
}

/* One field at p: TRUE if its tag is one of desc's with its wire type; *next
 * is where the next field starts, or 0 if this one does not end inside the
 * len bytes. */
static gboolean sniff_field(const ProtobufCMessageDescriptor *desc, const guint8 *p,
                            gsize len, gsize *next) {
  guint64 tag, v;
  gboolean cut;
  *next = 0;
  gsize n = read_varint(p, len, &tag, &cut);
  if (n == 0)
    return cut;
  const int wt = (int)(tag & 7);
  const guint64 number = tag >> 3;
  if (number == 0 || number > G_MAXUINT)
    return FALSE;
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
  if (!f || (wt != wire_type_of(f->type) &&
             !(wt == WT_LEN && f->label == PROTOBUF_C_LABEL_REPEATED)))
    return FALSE;
  gsize size;
  switch (wt) {
  case WT_VARINT:
  case WT_LEN: {
    gsize m = read_varint(p + n, len - n, &v, &cut);
    if (m == 0)
      return cut;
    size = m;
    if (wt == WT_LEN) {
      if (v > len - n - m)
        return TRUE; /* cut short inside the field */
      size += (gsize)v;
    }
    break;
  }
  default:
    size = wt == WT_64BIT ? 8 : 4;
    if (size > len - n)
      return TRUE;
  }
  if (n + size < len)
    *next = n + size;
  return TRUE;
}

gboolean ct_onnx_wire_sniff(const ProtobufCMessageDescriptor *desc, const guint8 *data,
                            gsize len) {
  gsize next;
  if (len == 0 || !sniff_field(desc, data, len, &next))
    return FALSE;
  return next == 0 || sniff_field(desc, data + next, len - next, &next);
}
