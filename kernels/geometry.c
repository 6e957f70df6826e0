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

/* Taps carry their residue so qsort (which has no context argument) can group
 * them by phase. */
typedef struct keyed_tap {
  int64_t residue;
  ct_tap tap;
} keyed_tap;

static int compare_keyed_taps(const void *x, const void *y) {
  const keyed_tap *a = x, *b = y;
  if (a->residue != b->residue)
    return a->residue < b->residue ? -1 : 1;
  return (a->tap.tap > b->tap.tap) - (a->tap.tap < b->tap.tap);
}

ct_status ct_phase_table_build(ct_axis a, ct_phase_table *table) {
  *table = (ct_phase_table){.axis = a};
  size_t bytes;
  if (!ct_bytes_for(a.k, sizeof(keyed_tap), &bytes))
    return CT_ERR_OVERFLOW;
  keyed_tap *keyed = malloc(bytes);
  table->taps = malloc((size_t)a.k * sizeof(ct_tap));
  table->phases = malloc((size_t)a.k * sizeof(ct_phase));
  if (!keyed || !table->taps || !table->phases) {
    free(keyed);
    ct_phase_table_clear(table);
    return CT_ERR_NOMEM;
  }
  for (int64_t t = 0; t < a.k; t++) {
    int64_t reach = t * a.d;
    keyed[t] =
        (keyed_tap){.residue = reach % a.s, .tap = {.tap = t, .offset = reach / a.s}};
  }
  qsort(keyed, (size_t)a.k, sizeof(keyed_tap), compare_keyed_taps);
  for (int64_t i = 0; i < a.k; i++) {
    table->taps[i] = keyed[i].tap;
    if (i == 0 || keyed[i].residue != keyed[i - 1].residue)
      table->phases[table->n_phases++] =
          (ct_phase){.residue = keyed[i].residue, .first = i, .count = 0};
    table->phases[table->n_phases - 1].count++;
  }
  free(keyed);
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
