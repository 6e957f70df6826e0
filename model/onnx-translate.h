/* What the translators of model/onnx-nodes.c and its siblings share: a
 * node's inputs as values or constants, its outputs as new values, the
 * conversions of constants, and the translator of each operator family
 * (onnx-conv.c: Conv, ConvTranspose, pools; onnx-elementwise.c: unary,
 * binary, BatchNormalization, Cast; onnx-layout.c: Pad, Concat, Split,
 * DepthToSpace; onnx-refusals.c: why the rest is refused). Internal to
 * model/. */
#ifndef CT_MODEL_ONNX_TRANSLATE_H
#define CT_MODEL_ONNX_TRANSLATE_H

#include "model/onnx-nodes.h"
#include "model/onnx-tensor.h"

/* Input i of node k, NULL if absent. */
ct_oname *ct_onnx_input(ct_onnx *o, int k, int i);
/* A value's channels, and its name quoted for a message. */
gint64 ct_onnx_channels(ct_onnx *o, int v);
const char *ct_onnx_value_name(ct_onnx *o, int v);
/* The value input i holds, or -1 with the error set (absent, or a
 * constant); role names it in messages. */
int ct_onnx_value_in(ct_onnx *o, int k, int i, const char *role);
/* The constant input i holds into *out (NULL when absent and not
 * required); refused when computed from the input. */
gboolean ct_onnx_const_in(ct_onnx *o, int k, int i, const char *role, gboolean required,
                          ct_otensor **out);
/* Output i of node k becomes a new value with these channels. */
int ct_onnx_value_out(ct_onnx *o, int k, int i, gint64 channels);
/* A constant's elements as float32, kept by the network. */
float *ct_onnx_floats(ct_onnx *o, ct_otensor *t);
/* A constant of one element as float32. */
gboolean ct_onnx_scalar(ct_onnx *o, int k, const ct_otensor *t, const char *role,
                        float *out);
/* A constant of a float type, else refused. */
gboolean ct_onnx_float_constant(ct_onnx *o, int k, const ct_otensor *t, const char *role);
/* An identity node from value in to node k's output. */
gboolean ct_onnx_add_identity(ct_onnx *o, int k, int in);
/* "batch axis", "channel axis", "streamed axis", "spatial axis 2". */
const char *ct_onnx_axis_text(ct_onnx *o, int axis);

/* The translators, one per operator or family. */
gboolean ct_onnx_translate_conv(ct_onnx *o, int k);
gboolean ct_onnx_translate_conv_transpose(ct_onnx *o, int k);
gboolean ct_onnx_translate_pool(ct_onnx *o, int k, gboolean max);
gboolean ct_onnx_is_unary(const char *op);
gboolean ct_onnx_translate_unary(ct_onnx *o, int k);
gboolean ct_onnx_translate_binary(ct_onnx *o, int k, ct_binary_op code);
gboolean ct_onnx_translate_batch_norm(ct_onnx *o, int k);
gboolean ct_onnx_translate_cast(ct_onnx *o, int k);
gboolean ct_onnx_translate_pad(ct_onnx *o, int k);
gboolean ct_onnx_translate_concat(ct_onnx *o, int k);
gboolean ct_onnx_translate_split(ct_onnx *o, int k);
gboolean ct_onnx_translate_depth_to_space(ct_onnx *o, int k);
/* Shape, Reshape, Gather, ... : folded on constants, refused on values. */
gboolean ct_onnx_is_shape_op(const char *op);
/* The refusal of such an operator (or a reduction) found reading a value. */
gboolean ct_onnx_refuse_signal_op(ct_onnx *o, int k);

#endif
