/* Translation of the nodes that read values computed from the graph input
 * into ct_nodes (kernels/network.h): every attribute of the operator read
 * and resolved (auto_pad, defaults of each opset), weights and constant
 * operands checked against the values' channels and converted to float32,
 * every output's channel count computed; and the refusals, each saying why
 * the node cannot stream or is not supported. Internal to model/. */
#ifndef CT_MODEL_ONNX_NODES_H
#define CT_MODEL_ONNX_NODES_H

#include "model/onnx-private.h"

/* An operator translated when it reads a value. */
gboolean ct_onnx_nodes_knows(const char *op);
/* Why node k's operator (neither folded nor translated) is refused. */
const char *ct_onnx_nodes_refusal(ct_onnx *o, int k);
/* Node k, which reads a value, into the network. */
gboolean ct_onnx_translate(ct_onnx *o, int k);

/* The elementwise operators, shared with folding: the unary op of node k
 * with its attributes (and Clip's bounds, Dropout's mode) in n->op_code,
 * alpha, beta, gamma, clip_min, clip_max; FALSE if op is not unary (*ok
 * stays TRUE) or with the error set (*ok FALSE). */
gboolean ct_onnx_unary_params(ct_onnx *o, int k, ct_node *n, gboolean *ok);
/* The binary op called op. */
gboolean ct_onnx_binary_op(const char *op, ct_binary_op *code);
/* Outputs of node k beyond the first max must not be read (why says what
 * they are); FALSE with the error set. */
gboolean ct_onnx_outputs(ct_onnx *o, int k, int max, const char *why);

#endif
