/* The protobuf wire format of an ONNX file, checked against the schema's
 * descriptors before protobuf-c decodes it, so that every malformed file gets
 * a message that says where and what (protobuf-c only says no), and so that
 * nothing protobuf-c would do can exhaust the stack or the memory: nesting is
 * bounded and the memory the decoding will take is computed first. Also the
 * sniff that tells an ONNX file from a safetensors one. Internal to model/. */
#ifndef CT_MODEL_ONNX_WIRE_H
#define CT_MODEL_ONNX_WIRE_H

#include <glib.h>
#include <protobuf-c/protobuf-c.h>

#include "model/load-context.h"

/* Messages nested deeper than this are refused (protobuf's own default
 * recursion limit is 100; an exported network nests at most 6 deep). */
#define CT_ONNX_MAX_DEPTH 64

/* Checks data as a message of desc: every tag, wire type, length and varint,
 * strings without NUL bytes, packed arrays of whole elements, the nesting
 * depth. *alloc_bytes receives an upper bound of what protobuf-c allocates
 * to decode it. FALSE with the load's error set. */
gboolean ct_onnx_wire_check(ct_load *ld, const ProtobufCMessageDescriptor *desc,
                            const guint8 *data, gsize len, guint64 *alloc_bytes);

/* TRUE if data begins like a message of desc: its first two fields (or as
 * many as there are) have known numbers and their wire types, the second
 * read only if the first ends inside data. A file cut short still sniffs. */
gboolean ct_onnx_wire_sniff(const ProtobufCMessageDescriptor *desc, const guint8 *data,
                            gsize len);

#endif
