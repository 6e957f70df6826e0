/* The graph's structure: every name made once and read only where made, the
 * one input and one output with their declared types, an order where every
 * node comes after the nodes it reads (cycles refused), the nodes the output
 * depends on; then every live node's operator checked, and the nodes folded
 * or translated in that order. Internal to model/. */
#ifndef CT_MODEL_ONNX_GRAPH_H
#define CT_MODEL_ONNX_GRAPH_H

#include "model/onnx-private.h"

/* Names, nodes, the graph's input and output, the order, the live nodes. */
gboolean ct_onnx_graph_index(ct_onnx *o);
/* The input's type (float32, rank 3 to 5, fixed channels) and the
 * output's; makes the input's value. */
gboolean ct_onnx_graph_interface(ct_onnx *o);
/* Every live node's operator is one the reader folds or translates, else
 * the refusal that says why it cannot stream or is not supported. */
gboolean ct_onnx_graph_check_ops(ct_onnx *o);
/* In order: nodes whose inputs are all constants folded, the others
 * translated into the network; the output checked against its
 * declaration. */
gboolean ct_onnx_graph_build(ct_onnx *o);
void ct_onnx_graph_clear(ct_onnx *o);

#endif
