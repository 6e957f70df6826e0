/* A network streamed exactly: every node of a ct_network (network.h)
 * becomes a stage (stage.h) or an elementwise step between stages, and the
 * graph as a whole is one stage. A push feeds the graph's input to the
 * nodes in order; each node takes every step its inputs have made and
 * emits what became final, in the same push; branches that meet (Add,
 * Concat) with different delays are aligned by holding the faster one's
 * steps until the other's arrive. finish() finishes the nodes in order, so
 * every tail reaches the nodes after it before they finish.
 *
 * Convolutions run on the project's ConvTranspose streams: a stride-1
 * convolution is a stride-1 transposed convolution of the flipped kernel,
 * cropped by (k - 1) * d - p. Every output is computed by the same code in
 * the same order whichever push it falls in, so a streamed graph gives its
 * one-shot output bitwise, for any chunking and thread count. */
#ifndef CT_GRAPH_H
#define CT_GRAPH_H

#include "network.h"
#include "pool.h"
#include "stage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_graph ct_graph;

/* Plans the network for input frames of the given shape (rank - 1
 * lengths). NULL with a one-line reason naming the node in msg when a node
 * cannot be streamed. The network must outlive the graph. */
ct_graph *ct_graph_new(const ct_network *net, const int64_t *frame_shape, char *msg,
                       size_t msg_size);
void ct_graph_free(ct_graph *graph);

/* The graph as a stage: push, finish, reset, the emission rule, latency,
 * channels and frame shapes. ct_stage_free frees the graph. */
ct_stage *ct_graph_stage(ct_graph *graph);

/* Why the last push or finish failed (empty if it did not): a signal the
 * network cannot take (branches that end at different lengths), naming
 * the node. */
const char *ct_graph_error(const ct_graph *graph);

/* The graph's latency: the most output steps (input steps) the output lags
 * the input over any signal, from its stages' emission rules. */
int64_t ct_graph_latency_output_steps(const ct_graph *graph);
int64_t ct_graph_latency_input_steps(const ct_graph *graph);

/* One-shot forward of a whole input [Cin, L, frame...] into [Cout, L_out,
 * frame_out...] through the graph (its state is reset first). */
ct_status ct_graph_forward(ct_graph *graph, const float *in, int64_t n_steps, float *out,
                           int64_t *n_out);

#ifdef __cplusplus
}
#endif

#endif
