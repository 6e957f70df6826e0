/* The spatial sizes values have at the sizes the graph input declares: only
 * ConvTranspose's output_shape needs them (it fixes an output size, which
 * turns into a crop at the declared input size; streamed inputs of other
 * lengths keep that crop). Internal to model/. */
#ifndef CT_MODEL_ONNX_SIZES_H
#define CT_MODEL_ONNX_SIZES_H

#include "model/onnx-private.h"

/* Value v's sizes along the spatial axes, carried from the declared input
 * through the nodes built so far; FALSE if one is not fixed (a dynamic
 * axis, or a formula that gives no positive size). */
gboolean ct_onnx_declared_sizes(ct_onnx *o, int v, gint64 *sizes);

#endif
