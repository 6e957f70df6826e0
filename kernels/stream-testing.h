/* Knobs of a stream for tests and benchmarks only: they force paths that
 * the stream otherwise chooses by size, and report its choices. Output
 * values never depend on them. */
#ifndef CT_STREAM_TESTING_H
#define CT_STREAM_TESTING_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Work (multiply-adds) from which threads are used; small pushes are not
 * worth waking them. 0 forces threading. */
void ct_stream_set_parallel_threshold(ct_stream *stream, double macs);
/* Pushes whose output exceeds this many bytes write it with non-temporal
 * stores (same values, less memory traffic); 0 forces them. Pushes that
 * fill one array in order (each writing its first output where the
 * previous push or finish stopped, with the same channel stride) count
 * together: once they have written more than this, the next ones use them
 * too. */
void ct_stream_set_nontemporal_threshold(ct_stream *stream, double bytes);
/* Whether the last outputs computed went out with non-temporal stores. */
bool ct_stream_used_nontemporal(const ct_stream *stream);

#ifdef __cplusplus
}
#endif

#endif
