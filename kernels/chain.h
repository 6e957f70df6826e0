/* Stages in sequence as one stage: each push goes through all of them, the
 * outputs of one the input of the next, in the same push; finish finishes
 * them in order. The chain's emission rule and latency are its stages'
 * composed. Pure C11. */
#ifndef CT_CHAIN_H
#define CT_CHAIN_H

#include "stage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Takes ownership of the n stages (freed with the chain, or on failure);
 * each stage's output channels and frame must be the next one's input. */
ct_stage *ct_chain_new(ct_stage **stages, int n, char *msg, size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif
