/* A network as the kernels take it: the nodes of a graph in an order where
 * every node reads only values made before it, with their attributes
 * resolved and their weights as float32. The ONNX reader (model/) fills one
 * from a file; the graph engine streams it. Pure C11, a description only:
 * whoever fills a ct_network owns and frees its arrays. Arrays may be
 * shared between nodes (a weight two nodes use is one copy): read them,
 * never free or change them.
 *
 * Values are tensors [N, C, S1(, S2(, S3))]: the batch, a fixed channel
 * count, and rank spatial axes whose lengths are not fixed by the network;
 * axis S1 is streamed. */
#ifndef CT_NETWORK_H
#define CT_NETWORK_H

#include <stdbool.h>
#include <stdint.h>

#include "geometry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CT_NODE_CONV,           /* weight [Cout, Cin/g, k...] (ONNX Conv) */
  CT_NODE_CONV_TRANSPOSE, /* weight [Cin, Cout/g, k...] (ONNX ConvTranspose) */
  CT_NODE_MAX_POOL,
  CT_NODE_AVERAGE_POOL,
  CT_NODE_PAD,    /* a constant on any axis: channels or spatial */
  CT_NODE_UNARY,  /* an elementwise function of one value (ct_unary_op) */
  CT_NODE_BINARY, /* an elementwise operation of two values, or of a value and a
                     constant broadcast over it (ct_binary_op) */
  CT_NODE_AFFINE, /* y = x * scale[c] + shift[c] (BatchNormalization folded) */
  CT_NODE_CONCAT, /* along channels, two or more inputs */
  CT_NODE_SPLIT,  /* along channels, two or more outputs */
  CT_NODE_DEPTH_TO_SPACE,
} ct_node_kind;

typedef enum {
  CT_UNARY_IDENTITY, /* Identity, Dropout (inference) */
  CT_UNARY_RELU,
  CT_UNARY_LEAKY_RELU,   /* alpha */
  CT_UNARY_ELU,          /* alpha */
  CT_UNARY_SELU,         /* alpha, gamma */
  CT_UNARY_CELU,         /* alpha */
  CT_UNARY_SIGMOID,      /* */
  CT_UNARY_HARD_SIGMOID, /* alpha, beta */
  CT_UNARY_HARD_SWISH,   /* x * HardSigmoid(x), alpha 1/6 and beta 1/2 filled in */
  CT_UNARY_TANH,
  CT_UNARY_SOFTPLUS,
  CT_UNARY_SOFTSIGN,
  CT_UNARY_ERF,
  CT_UNARY_CLIP, /* min, max (-inf / +inf where not given; -FLT_MAX / FLT_MAX,
                    ONNX's defaults, for the attribute form before opset 11) */
  CT_UNARY_NEG,
  CT_UNARY_ABS,
  CT_UNARY_SQRT,
  CT_UNARY_RECIPROCAL,
  CT_UNARY_EXP,
  CT_UNARY_LOG,
  CT_UNARY_SIN,
  CT_UNARY_COS,
} ct_unary_op;

typedef enum {
  CT_BINARY_ADD,
  CT_BINARY_SUB,
  CT_BINARY_MUL,
  CT_BINARY_DIV,
  CT_BINARY_POW,
  CT_BINARY_MAX,
  CT_BINARY_MIN,
  CT_BINARY_PRELU, /* x < 0 ? slope * x : x, slope the second operand */
} ct_binary_op;

typedef enum { CT_DEPTH_TO_SPACE_DCR, CT_DEPTH_TO_SPACE_CRD } ct_depth_to_space_mode;

/* A constant operand: `rank + 2` dimensions as ONNX broadcasting aligns
 * them to [N, C, S...] (a scalar is all ones). Axes of size 1 broadcast;
 * the batch and spatial axes must be 1 (a constant that varies along a
 * signal cannot stream); the channel axis is 1 or C. */
typedef struct ct_constant {
  const float *data;
  int64_t dims[CT_MAX_RANK + 2];
} ct_constant;

typedef struct ct_node {
  ct_node_kind kind;
  const char *name; /* the file's node name, or NULL */
  const char *op;   /* the file's op type, for messages */
  int index;        /* the node's index in the file, for messages (a Max or Min
                       of n inputs is n - 1 binary nodes of one index) */
  /* Values read and made: indices into ct_network.values. A binary node
   * with a constant operand has one input (constant_second: which side it
   * is on). */
  int n_inputs, n_outputs;
  int *inputs, *outputs;

  /* Conv, ConvTranspose, pools: rank spatial axes each. */
  int64_t kernel[CT_MAX_RANK], stride[CT_MAX_RANK], dilation[CT_MAX_RANK];
  /* Padding at the start and the end of each spatial axis (ONNX pads,
   * auto_pad resolved; ConvTranspose: the crop, SAME and output_shape
   * resolved into the crop or, where negative, into output_padding;
   * output_shape at the input size the graph declares). */
  int64_t pad_begin[CT_MAX_RANK], pad_end[CT_MAX_RANK];
  int64_t output_padding[CT_MAX_RANK];
  int64_t groups;
  const float *weight; /* as the kind says; NULL for pools */
  const float *bias;   /* [Cout] or NULL */
  /* Pools. */
  bool ceil_mode, count_include_pad;

  /* Pad: before and after each axis of [C, S...] (index 0: channels). */
  int64_t pad_axes_begin[CT_MAX_RANK + 1], pad_axes_end[CT_MAX_RANK + 1];
  float pad_value;

  /* Unary and binary. */
  int op_code;              /* ct_unary_op or ct_binary_op */
  float alpha, beta, gamma; /* the op's attributes, see ct_unary_op */
  float clip_min, clip_max;
  bool has_constant, constant_second;
  ct_constant constant;

  /* Affine: [C] each. */
  const float *scale, *shift;

  /* Split: the channels of each output (n_outputs of them). */
  int64_t *split_channels;

  /* DepthToSpace. */
  int64_t block_size;
  ct_depth_to_space_mode depth_to_space_mode;
} ct_node;

typedef struct ct_value {
  const char *name;
  int64_t channels;
} ct_value;

typedef struct ct_network {
  int rank; /* spatial axes of every value: 1, 2 or 3 */
  int n_values, n_nodes;
  ct_value *values;
  ct_node *nodes;    /* every node reads only values of the input or earlier nodes */
  int input, output; /* the graph's input and output values */
} ct_network;

#ifdef __cplusplus
}
#endif

#endif
