/* Constant folding: nodes whose inputs are all known at load (Constants,
 * initializers, earlier folds) are evaluated then, so that the network
 * gets their results: the int64 subgraphs torch writes for a Pad's pads
 * (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast, Shape of a
 * Constant, Gather, arithmetic), weight norm over initializers (ReduceL2,
 * Div, Mul), scalars (Cast of a Constant, Add/Reciprocal of a parameter).
 * Float32 results are rounded to float32 after every operation, as ONNX
 * computes them; float16 and bfloat16 ones are kept as float32. Everything
 * folding makes counts against the load's budget. Internal to model/. */
#ifndef CT_MODEL_ONNX_FOLD_H
#define CT_MODEL_ONNX_FOLD_H

#include "model/onnx-private.h"

/* An operator folded when its inputs are all constants. */
gboolean ct_onnx_fold_knows(const char *op);
/* Evaluates node k, whose inputs are all constants. */
gboolean ct_onnx_fold(ct_onnx *o, int k);

/* The unary and binary functions on doubles, as the ct_node describes. */
double ct_unary_eval(const ct_node *n, double x);
double ct_binary_eval(ct_binary_op op, double a, double b);

#endif
