/* Subgraphs recognised as one node: PixelShuffle as torch writes it below
 * opset 11, where DepthToSpace has no CRD mode: Unsqueeze, Reshape,
 * Transpose, Reshape, Reshape, Squeeze. Recognised only exactly (the
 * constants torch writes, each intermediate read by the next node alone),
 * so nothing that merely looks alike is taken for it. Internal to model/. */
#ifndef CT_MODEL_ONNX_PATTERNS_H
#define CT_MODEL_ONNX_PATTERNS_H

#include "model/onnx-private.h"

/* If node k (an Unsqueeze of a value) starts that subgraph: its nodes
 * become one DepthToSpace (CRD) node and TRUE; *ok FALSE if making it
 * failed (the error set). FALSE, *ok TRUE: not the subgraph. */
gboolean ct_onnx_pixel_shuffle(ct_onnx *o, int k, gboolean *ok);

#endif
