/* Loading a network from an .onnx file as torch.onnx.export writes it
 * (opsets 9 to 17; contract section 6).
 *
 * The file is checked on the wire against the ONNX schema, decoded by
 * protobuf-c (the C code generated at build time from Debian's onnx.proto),
 * and its graph turned into a ct_network (kernels/network.h): one float32
 * input [N, C, S1(, S2(, S3))] and one output, the nodes in an order where
 * each reads only values made before it, attributes resolved, weights as
 * float32, constant subgraphs (pads computed from Constants, weight norm
 * over initializers) evaluated at load, nodes nothing uses dropped. A
 * network that cannot stream, an operator not supported, or a malformed
 * file is refused with one GError in CT_MODEL_ERROR (model/model.h) whose
 * one line names the file, the node (index, name, op) where there is one,
 * and why. */
#ifndef CT_MODEL_ONNX_H
#define CT_MODEL_ONNX_H

#include <glib.h>

#include "kernels/network.h"
#include "model/model.h"

G_BEGIN_DECLS

ct_network *ct_onnx_load(const gchar *path, GError **error);
/* Frees everything the network holds (NULL is fine). */
void ct_onnx_free(ct_network *network);

/* TRUE if data (the first bytes of a file) starts like an ONNX ModelProto:
 * its first fields have ModelProto's numbers and wire types. */
gboolean ct_onnx_sniff(const guint8 *data, gsize len);

/* Readable names, for listings: "Conv", "Unary", ...; "Relu", "Add", ... */
const char *ct_node_kind_name(ct_node_kind kind);
const char *ct_unary_op_name(ct_unary_op op);
const char *ct_binary_op_name(ct_binary_op op);

G_END_DECLS

#endif
