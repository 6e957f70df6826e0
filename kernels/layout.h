/* Stages that move values without arithmetic: constant padding (or, with
 * negative amounts, cropping) of any axis, and DepthToSpace. Pure C11. */
#ifndef CT_LAYOUT_H
#define CT_LAYOUT_H

#include "stage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pad: before[a] and after[a] values of `value` around axis a of [C, S...]
 * (index 0: channels, 1: the streamed axis, then the frame axes); negative
 * amounts crop. The streamed axis' leading values come out with the first
 * push, its trailing ones at finish; rows a negative end crops are held
 * back until then. */
ct_stage *ct_pad_new(int rank, int64_t channels, const int64_t *frame_shape,
                     const int64_t *before, const int64_t *after, float value, char *msg,
                     size_t msg_size);

typedef enum { CT_D2S_DCR, CT_D2S_CRD } ct_d2s_mode;

/* DepthToSpace of a 2d signal [C, H, W] -> [C / b^2, H * b, W * b]: each
 * input row makes b output rows at once. */
ct_stage *ct_depth_to_space_new(int64_t channels, const int64_t *frame_shape,
                                int64_t block, ct_d2s_mode mode, char *msg,
                                size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif
