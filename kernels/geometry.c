#include "geometry.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const axis_names[CT_MAX_RANK] = {"0", "1", "2"};

void ct_params_init(ct_params *params, int rank) {
  *params = (ct_params){.rank = rank, .groups = 1};
  for (int a = 0; a < CT_MAX_RANK; a++) {
    params->kernel[a] = 1;
    params->stride[a] = 1;
    params->dilation[a] = 1;
  }
}

ct_axis ct_params_axis(const ct_params *params, int axis) {
  if (axis >= params->rank)
    return (ct_axis){.k = 1, .s = 1, .p = 0, .op = 0, .d = 1};
  return (ct_axis){.k = params->kernel[axis],
                   .s = params->stride[axis],
                   .p = params->padding[axis],
                   .op = params->output_padding[axis],
                   .d = params->dilation[axis]};
}

bool ct_add_i64(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_add_overflow(a, b, out);
}

bool ct_mul_i64(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

bool ct_product_i64(const int64_t *values, int n, int64_t *out) {
  int64_t acc = 1;
  for (int i = 0; i < n; i++) {
    if (values[i] < 0 || !ct_mul_i64(acc, values[i], &acc))
      return false;
  }
  *out = acc;
  return true;
}

static int64_t gcd_i64(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

bool ct_rate_compose(int64_t *up, int64_t *down, int64_t mul_up, int64_t mul_down) {
  /* Cross-reduce first, so that only a rate that is truly past 64 bits
   * fails. */
  const int64_t g1 = gcd_i64(*up, mul_down), g2 = gcd_i64(mul_up, *down);
  int64_t u, d;
  if (!ct_mul_i64(*up / g1, mul_up / g2, &u) ||
      !ct_mul_i64(*down / g2, mul_down / g1, &d))
    return false;
  *up = u;
  *down = d;
  return true;
}

bool ct_bytes_for(int64_t count, size_t elem_size, size_t *out) {
  if (count < 0 || (uint64_t)count > SIZE_MAX)
    return false;
  size_t bytes;
  if (__builtin_mul_overflow((size_t)count, elem_size, &bytes) ||
      bytes > (size_t)PTRDIFF_MAX)
    return false;
  *out = bytes;
  return true;
}

int64_t ct_floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

int64_t ct_ceil_div(int64_t a, int64_t b) {
  return -ct_floor_div(-a, b);
}

/* "50000000" or "9x9", for messages. */
static void kernel_text(const ct_params *params, char *buf, size_t size) {
  int n = 0;
  for (int i = 0; i < params->rank && n >= 0 && (size_t)n < size; i++)
    n += snprintf(buf + n, size - (size_t)n, "%s%lld", i ? "x" : "",
                  (long long)params->kernel[i]);
}

static bool in_range(int64_t v, int64_t lo) {
  return v >= lo && v <= CT_MAX_PARAM;
}

ct_status ct_params_validate(const ct_params *params, char *msg, size_t msg_size) {
#define FAIL(...)                                                                        \
  do {                                                                                   \
    if (msg && msg_size)                                                                 \
      snprintf(msg, msg_size, __VA_ARGS__);                                              \
    return CT_ERR_INVALID;                                                               \
  } while (0)
  if (params->rank < 1 || params->rank > CT_MAX_RANK)
    FAIL("unsupported rank %d (1, 2 or 3 spatial dimensions)", params->rank);
  if (!in_range(params->in_channels, 1))
    FAIL("in_channels %lld out of range", (long long)params->in_channels);
  if (!in_range(params->out_channels, 1))
    FAIL("out_channels %lld out of range", (long long)params->out_channels);
  if (!in_range(params->groups, 1))
    FAIL("groups %lld must be at least 1", (long long)params->groups);
  if (params->in_channels % params->groups != 0)
    FAIL("in_channels %lld is not divisible by groups %lld",
         (long long)params->in_channels, (long long)params->groups);
  if (params->out_channels % params->groups != 0)
    FAIL("out_channels %lld is not divisible by groups %lld",
         (long long)params->out_channels, (long long)params->groups);
  for (int i = 0; i < params->rank; i++) {
    ct_axis a = ct_params_axis(params, i);
    const char *n = axis_names[i];
    if (!in_range(a.k, 1))
      FAIL("kernel size %lld on axis %s out of range", (long long)a.k, n);
    if (!in_range(a.s, 1))
      FAIL("stride %lld on axis %s must be at least 1", (long long)a.s, n);
    if (!in_range(a.p, 0))
      FAIL("padding %lld on axis %s must be non-negative", (long long)a.p, n);
    if (!in_range(a.op, 0))
      FAIL("output_padding %lld on axis %s must be non-negative", (long long)a.op, n);
    if (!in_range(a.d, 1))
      FAIL("dilation %lld on axis %s must be at least 1", (long long)a.d, n);
    int64_t limit = a.s > a.d ? a.s : a.d;
    if (a.op >= limit)
      FAIL("output_padding %lld on axis %s must be smaller than max(stride, dilation) "
           "= %lld",
           (long long)a.op, n, (long long)limit);
  }
  /* The resource limits (see geometry.h), from the cheapest to state. */
  int64_t taps = 1, weights;
  for (int i = 0; i < params->rank; i++) {
    ct_axis a = ct_params_axis(params, i);
    if (a.d * (a.k - 1) > CT_MAX_REACH) /* both <= INT32_MAX: no overflow */
      FAIL("kernel %lld with dilation %lld on axis %s reaches over %lld steps, over "
           "the limit of %lld",
           (long long)a.k, (long long)a.d, axis_names[i], (long long)(a.d * (a.k - 1)),
           (long long)CT_MAX_REACH);
    if (!ct_mul_i64(taps, a.k, &taps) || taps > CT_MAX_TAPS) {
      char ktext[80];
      double all = 1;
      for (int j = 0; j < params->rank; j++)
        all *= (double)params->kernel[j];
      kernel_text(params, ktext, sizeof ktext);
      if (params->rank == 1)
        FAIL("kernel %s is over the limit of %lld taps", ktext, (long long)CT_MAX_TAPS);
      FAIL("kernel %s (%.0f taps per channel pair) is over the limit of %lld taps", ktext,
           all, (long long)CT_MAX_TAPS);
    }
  }
  if (!ct_mul_i64(params->in_channels, params->out_channels / params->groups, &weights) ||
      !ct_mul_i64(weights, taps, &weights) || weights > CT_MAX_WEIGHTS)
    FAIL("%lld x %lld x %lld taps of weights (in_channels x out_channels/groups x "
         "kernel) is over the limit of %lld weights",
         (long long)params->in_channels,
         (long long)(params->out_channels / params->groups), (long long)taps,
         (long long)CT_MAX_WEIGHTS);
  /* The end of the stream: tail steps of every output channel, each output
   * a sum of (Cin/g) x (taps of its phase) products. */
  const int64_t tail = ct_tail_steps(params);
  int64_t values;
  double macs = (double)params->out_channels * (double)tail *
                (double)(params->in_channels / params->groups);
  for (int i = 0; i < params->rank; i++)
    macs *= (double)ct_axis_max_phase_taps(ct_params_axis(params, i));
  if (!ct_mul_i64(tail, params->out_channels, &values) || values > CT_MAX_TAIL_VALUES ||
      macs > CT_MAX_TAIL_MACS)
    FAIL("the end of a stream (%lld output steps of %lld channel%s, %.3g multiply-adds "
         "per frame position, from dilation x (kernel - 1) + output_padding + 1 - stride "
         "- padding on axis 0) is over the limit of %lld values and %.0e multiply-adds",
         (long long)tail, (long long)params->out_channels,
         params->out_channels == 1 ? "" : "s", macs, (long long)CT_MAX_TAIL_VALUES,
         CT_MAX_TAIL_MACS);
  return CT_OK;
#undef FAIL
}

ct_status ct_axis_output_length(ct_axis a, int64_t in_len, int64_t *out_len) {
  /* All hyper-parameters are <= INT32_MAX, so only the (L - 1)*s term and the
   * final sum can overflow. */
  int64_t grown, reach = a.d * (a.k - 1) + a.op + 1 - 2 * a.p, total;
  if (in_len < 0 || !ct_mul_i64(in_len - 1, a.s, &grown) ||
      !ct_add_i64(grown, reach, &total))
    return CT_ERR_OVERFLOW;
  *out_len = total;
  return CT_OK;
}

ct_status ct_output_shape(const ct_params *params, const int64_t *in_shape,
                          int64_t *out_shape, char *msg, size_t msg_size) {
  for (int i = 0; i < params->rank; i++) {
    ct_axis a = ct_params_axis(params, i);
    if (in_shape[i] < 1) {
      if (msg && msg_size)
        snprintf(msg, msg_size, "input length %lld on axis %s must be at least 1",
                 (long long)in_shape[i], axis_names[i]);
      return CT_ERR_INVALID;
    }
    if (ct_axis_output_length(a, in_shape[i], &out_shape[i]) != CT_OK) {
      if (msg && msg_size)
        snprintf(msg, msg_size, "output length on axis %s overflows", axis_names[i]);
      return CT_ERR_OVERFLOW;
    }
    if (out_shape[i] < 1) {
      if (msg && msg_size)
        snprintf(msg, msg_size,
                 "input length %lld on axis %s gives output length %lld (< 1): the "
                 "input is too short for this layer",
                 (long long)in_shape[i], axis_names[i], (long long)out_shape[i]);
      return CT_ERR_INVALID;
    }
  }
  return CT_OK;
}

int64_t ct_latency_output_steps(const ct_params *params) {
  ct_axis a = ct_params_axis(params, 0);
  int64_t crop_excess = 2 * a.p + a.s - 1 - a.d * (a.k - 1) - a.op;
  return crop_excess > a.p ? crop_excess : a.p;
}

int64_t ct_latency_input_steps(const ct_params *params) {
  return ct_ceil_div(ct_latency_output_steps(params), params->stride[0]);
}

int64_t ct_stream_emitted(const ct_params *params, int64_t n_inputs) {
  if (n_inputs <= 0)
    return 0;
  ct_axis a = ct_params_axis(params, 0);
  int64_t final_count, certain_count;
  if (!ct_mul_i64(n_inputs, a.s, &final_count) ||
      ct_axis_output_length(a, n_inputs, &certain_count) != CT_OK)
    return -1;
  final_count -= a.p;
  int64_t n = final_count < certain_count ? final_count : certain_count;
  return n > 0 ? n : 0;
}

int64_t ct_tail_steps(const ct_params *params) {
  ct_axis a = ct_params_axis(params, 0);
  int64_t steps = a.d * (a.k - 1) + a.op + 1 - a.s - a.p; /* each term <= INT32_MAX */
  return steps > 0 ? steps : 0;
}

/* Taps t and t + period reach the same residue t*d mod s. */
static int64_t phase_period(ct_axis a) {
  return a.s / gcd_i64(a.d, a.s);
}

int64_t ct_axis_max_phase_taps(ct_axis a) {
  return ct_ceil_div(a.k, phase_period(a));
}

int64_t ct_axis_first_input(ct_axis a, int64_t j) {
  return ct_ceil_div(j + a.p - a.d * (a.k - 1), a.s);
}

int64_t ct_axis_last_input(ct_axis a, int64_t j) {
  return ct_floor_div(j + a.p, a.s);
}

int64_t ct_axis_pad_before(ct_axis a) {
  int64_t first = ct_axis_first_input(a, 0);
  return first < 0 ? -first : 0;
}

int64_t ct_axis_pad_after(ct_axis a, int64_t in_len, int64_t out_len) {
  int64_t beyond = ct_axis_last_input(a, out_len - 1) - (in_len - 1);
  return beyond > 0 ? beyond : 0;
}

static int compare_phases(const void *x, const void *y) {
  const ct_phase *a = x, *b = y;
  return (a->residue > b->residue) - (a->residue < b->residue);
}

ct_status ct_phase_table_build(ct_axis a, ct_phase_table *table) {
  *table = (ct_phase_table){.axis = a};
  if (a.k < 1 || a.k > CT_MAX_TAPS || a.s < 1 || a.d < 1 ||
      a.d * (a.k - 1) > CT_MAX_REACH)
    return CT_ERR_INVALID;
  /* The first `period` taps reach distinct residues and every later tap
   * repeats one of them, so phase r holds t0, t0 + period, ... for its first
   * tap t0: only the phases are sorted, never the taps, and nothing is
   * allocated beyond the table itself. */
  const int64_t period = phase_period(a), n = a.k < period ? a.k : period;
  size_t tap_bytes, phase_bytes;
  if (!ct_bytes_for(a.k, sizeof(ct_tap), &tap_bytes) ||
      !ct_bytes_for(n, sizeof(ct_phase), &phase_bytes))
    return CT_ERR_OVERFLOW;
  table->taps = malloc(tap_bytes);
  table->phases = malloc(phase_bytes);
  if (!table->taps || !table->phases) {
    ct_phase_table_clear(table);
    return CT_ERR_NOMEM;
  }
  for (int64_t t0 = 0; t0 < n; t0++) /* first: the first tap until sorted */
    table->phases[t0] = (ct_phase){
        .residue = t0 * a.d % a.s, .first = t0, .count = (a.k - 1 - t0) / period + 1};
  qsort(table->phases, (size_t)n, sizeof(ct_phase), compare_phases);
  int64_t next = 0;
  for (int64_t i = 0; i < n; i++) {
    ct_phase *ph = &table->phases[i];
    const int64_t t0 = ph->first;
    ph->first = next;
    for (int64_t j = 0; j < ph->count; j++) {
      const int64_t t = t0 + j * period, reach = t * a.d; /* <= CT_MAX_REACH */
      table->taps[next++] = (ct_tap){.tap = (int32_t)t, .offset = (int32_t)(reach / a.s)};
    }
  }
  table->n_phases = n;
  return CT_OK;
}

void ct_phase_table_clear(ct_phase_table *table) {
  free(table->taps);
  free(table->phases);
  table->taps = NULL;
  table->phases = NULL;
  table->n_phases = 0;
}

void ct_phase_output_range(ct_axis a, int64_t residue, int64_t j_begin, int64_t j_end,
                           int64_t *m_begin, int64_t *m_end) {
  int64_t lo = ct_ceil_div(j_begin + a.p - residue, a.s);
  int64_t hi = ct_floor_div(j_end - 1 + a.p - residue, a.s) + 1;
  *m_begin = lo;
  *m_end = hi > lo ? hi : lo;
}

const ct_phase *ct_phase_of_residue(const ct_phase_table *table, int64_t residue) {
  for (int64_t i = 0; i < table->n_phases; i++)
    if (table->phases[i].residue == residue)
      return &table->phases[i];
  return NULL;
}
