/* Layer geometry: every formula of a transposed convolution in one place.
 *
 * Output size, algorithmic latency, what a stream may emit, the zero padding
 * the kernels read through, and the polyphase view of each axis (which taps
 * feed which output phase). Every size computation is overflow-checked.
 * Pure C11, no allocation except the phase tables. */
#ifndef CT_GEOMETRY_H
#define CT_GEOMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CT_MAX_RANK 3

/* Hyper-parameters are capped so that products of two of them cannot
 * overflow int64; real layers are many orders of magnitude below this. */
#define CT_MAX_PARAM ((int64_t)INT32_MAX)

/* Resource limits, checked by ct_params_validate, so that no model file can
 * make a layer's tables, plans or end of stream cost more than memory and
 * time allow, while real layers stay far below them (HiFi-GAN's
 * ConvTranspose1d(512, 256, 16, 8, 4): 16 taps, 2.1 M weights, an end of 4
 * steps; FSRCNN's ConvTranspose2d(56, 1, 9): 81 taps). */
/* Taps per input/output channel pair, prod(kernel): tables and plan
 * indices are per tap. */
#define CT_MAX_TAPS ((int64_t)1 << 20)
/* Weights, Cin * Cout/groups * prod(kernel): 512 MiB as float32. */
#define CT_MAX_WEIGHTS ((int64_t)1 << 27)
/* Reach d * (k - 1) of the kernel along any axis: phase offsets fit 32
 * bits. */
#define CT_MAX_REACH ((int64_t)INT32_MAX)
/* The end of a stream (ct_tail_steps) per position of a frame: at most this
 * many output values (steps x Cout), computed with at most this many
 * multiply-adds; EOS produces it without any input, so it must stay a
 * fraction of a second's work, never minutes. */
#define CT_MAX_TAIL_VALUES ((int64_t)1 << 26)
#define CT_MAX_TAIL_MACS 1e10

typedef enum {
  CT_OK = 0,
  CT_ERR_INVALID = -1,  /* a parameter or shape breaks a rule */
  CT_ERR_OVERFLOW = -2, /* a size does not fit in memory arithmetic */
  CT_ERR_NOMEM = -3,
  CT_ERR_STATE = -4, /* call not allowed in the current state */
} ct_status;

/* A layer in PyTorch's terms. Axes at index >= rank are ignored. */
typedef struct ct_params {
  int rank; /* spatial dimensions: 1, 2 or 3 */
  int64_t in_channels;
  int64_t out_channels;
  int64_t groups;
  int64_t kernel[CT_MAX_RANK];
  int64_t stride[CT_MAX_RANK];
  int64_t padding[CT_MAX_RANK];
  int64_t output_padding[CT_MAX_RANK];
  int64_t dilation[CT_MAX_RANK];
} ct_params;

/* One spatial axis. Axes past the rank read as the identity (k = s = d = 1). */
typedef struct ct_axis {
  int64_t k, s, p, op, d;
} ct_axis;

/* Parameters with PyTorch's defaults: stride 1, padding 0, dilation 1,
 * groups 1; rank, channels and kernel must be filled in by the caller. */
void ct_params_init(ct_params *params, int rank);

ct_axis ct_params_axis(const ct_params *params, int axis);

/* Checks every PyTorch rule and the resource limits above; on failure
 * writes a one-line reason to msg. */
ct_status ct_params_validate(const ct_params *params, char *msg, size_t msg_size);

/* Checked arithmetic: false on overflow. */
bool ct_add_i64(int64_t a, int64_t b, int64_t *out);
bool ct_mul_i64(int64_t a, int64_t b, int64_t *out);
/* Product of n non-negative values, false on overflow. */
bool ct_product_i64(const int64_t *values, int n, int64_t *out);
/* A rate up/down (positive) times mul_up/mul_down, kept in lowest terms
 * (stages in sequence); false on overflow. */
bool ct_rate_compose(int64_t *up, int64_t *down, int64_t mul_up, int64_t mul_down);
/* Element count to byte size for an array of elem_size-byte items. */
bool ct_bytes_for(int64_t count, size_t elem_size, size_t *out);

int64_t ct_floor_div(int64_t a, int64_t b);
int64_t ct_ceil_div(int64_t a, int64_t b);

/* L_out = (L - 1)*s - 2*p + d*(k - 1) + op + 1; may be < 1 (an error for the
 * caller to report). CT_ERR_OVERFLOW if it does not fit. */
ct_status ct_axis_output_length(ct_axis a, int64_t in_len, int64_t *out_len);

/* Output spatial shape for an input spatial shape; CT_ERR_INVALID with a
 * message when an axis would have fewer than 1 output. */
ct_status ct_output_shape(const ct_params *params, const int64_t *in_shape,
                          int64_t *out_shape, char *msg, size_t msg_size);

/* Algorithmic latency of the streamed axis (axis 0) in output steps:
 * D = max(p, 2p + s - 1 - d*(k - 1) - op). */
int64_t ct_latency_output_steps(const ct_params *params);
/* The same latency in whole input steps: ceil(D / s). */
int64_t ct_latency_input_steps(const ct_params *params);

/* Outputs a stream has emitted after n inputs on the streamed axis:
 * max(0, min(n*s - p, L_out(n))) for n >= 1, 0 for n = 0. -1 on overflow. */
int64_t ct_stream_emitted(const ct_params *params, int64_t n_inputs);

/* Most outputs a stream emits at its end (ct_stream_finish) on the streamed
 * axis, beyond what its pushes emitted: d*(k - 1) + op + 1 - s - p, at least
 * 0. */
int64_t ct_tail_steps(const ct_params *params);
/* Most taps of one phase along an axis: ceil(k / period), the taps of a
 * phase being period = s / gcd(s, d) apart. */
int64_t ct_axis_max_phase_taps(ct_axis a);

/* Zero rows the kernels read before input index 0 along an axis. */
int64_t ct_axis_pad_before(ct_axis a);
/* Zero rows read after the last input (index L-1) for an input of length L
 * whose output has out_len outputs. */
int64_t ct_axis_pad_after(ct_axis a, int64_t in_len, int64_t out_len);
/* Lowest input index any output j' >= j reads. */
int64_t ct_axis_first_input(ct_axis a, int64_t j);
/* Highest input index output j reads. */
int64_t ct_axis_last_input(ct_axis a, int64_t j);

/* Polyphase view of one axis. Full-output position q = j + p receives
 * x[i] * w[t] for i*s + t*d = q. Writing q = m*s + r (0 <= r < s), the taps
 * with t*d = r (mod s) form phase r, and tap t reads input i = m - offset,
 * offset = (t*d - r) / s: each phase is an ordinary correlation. */
typedef struct ct_tap {
  int32_t tap;    /* kernel index t (< CT_MAX_TAPS) */
  int32_t offset; /* input index = m - offset (<= CT_MAX_REACH) */
} ct_tap;

typedef struct ct_phase {
  int64_t residue; /* r */
  int64_t first;   /* index of its first tap in ct_phase_table.taps */
  int64_t count;
} ct_phase;

typedef struct ct_phase_table {
  ct_axis axis;
  int64_t n_phases; /* phases that have at least one tap, by residue */
  ct_phase *phases; /* n_phases entries, min(k, period) */
  ct_tap *taps;     /* k entries, grouped by phase, ascending tap within one */
} ct_phase_table;

/* CT_ERR_INVALID for an axis past the limits (k > CT_MAX_TAPS or a reach
 * over CT_MAX_REACH). */
ct_status ct_phase_table_build(ct_axis a, ct_phase_table *table);
void ct_phase_table_clear(ct_phase_table *table);

/* The phase of residue r, or NULL if no tap reaches it. */
const ct_phase *ct_phase_of_residue(const ct_phase_table *table, int64_t residue);

/* The outputs j in [j_begin, j_end) of phase residue r are those with
 * m in [*m_begin, *m_end), j = m*s + r - p. */
void ct_phase_output_range(ct_axis a, int64_t residue, int64_t j_begin, int64_t j_end,
                           int64_t *m_begin, int64_t *m_end);

#ifdef __cplusplus
}
#endif

#endif
