/* checkasm: every entry of the dispatch table (kernels/dsp.h) at every
 * level this CPU runs, against the C level's entry on the same random
 * arguments: shapes around the vector widths and their tails, pixel
 * strides and component offsets, borders, unaligned pointers. Conversions
 * and copies must match bitwise (the C twin itself is checked against the
 * contract's formula); the compute entries within test-kernels' tolerance,
 * and bitwise against the sum their documentation gives (bias, then one
 * product after another: fused on SIMD levels, plain in C). The first
 * difference is reported with the entry, level, shape and both values.
 *
 *   checkasm [--seed N] [--rounds N]   TAP, every check
 *   checkasm --bench [ENTRY]           ns per element, per level */
#include "kernels/dsp.h"
#include "tests/tap.h"

#include <float.h>
#include <stdarg.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* xorshift64*: reproducible across platforms. */
static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

static int64_t rng_range(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

static float rng_uniform(float lo, float hi) {
  return lo + (hi - lo) * (float)((double)(rng_next() >> 40) / 16777216.0);
}

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "checkasm: out of memory\n");
    exit(1);
  }
  return p;
}

/* Lengths around every vector width (8, 16, 32, 64 elements) and the
 * blocks of the compute entries, then random ones. */
static const int64_t lengths[] = {0,   1,   2,   3,   7,   8,   9,   15,  16,  17, 23,
                                  31,  32,  33,  47,  48,  63,  64,  65,  95,  96, 97,
                                  127, 128, 129, 191, 192, 193, 255, 256, 257, 640};
enum { N_LENGTHS = sizeof lengths / sizeof lengths[0] };

static int64_t random_length(int64_t max) {
  int64_t n = rng_next() % 4 ? lengths[rng_next() % N_LENGTHS] : rng_range(0, max);
  return n < max ? n : max;
}

/* A level as a CPU might fill it: the levels this CPU runs, and, where an
 * entry needs a feature beyond its level, the level without it. */
typedef struct {
  char name[32];
  ct_dsp dsp;
} variant;

enum { MAX_VARIANTS = 8 };
static variant variants[MAX_VARIANTS];
static int n_variants;
static const ct_dsp *c_twin;

static void find_variants(void) {
  for (int level = 0; level < CT_DSP_LEVELS; level++) {
    variant *v = &variants[n_variants];
    if (!ct_dsp_fill(&v->dsp, (ct_dsp_level)level, CT_CPU_ALL)) {
      tap_diag("level %d: not on this CPU", level);
      continue;
    }
    snprintf(v->name, sizeof v->name, "%s", v->dsp.name);
    n_variants++;
    variant *without = &variants[n_variants];
    if (ct_dsp_fill(&without->dsp, (ct_dsp_level)level,
                    CT_CPU_ALL & ~(unsigned)CT_CPU_AVX512VBMI) &&
        memcmp(&without->dsp, &v->dsp, sizeof v->dsp) != 0) {
      snprintf(without->name, sizeof without->name, "%s-novbmi", v->dsp.name);
      n_variants++;
    }
  }
  c_twin = &variants[0].dsp;
}

/* Whether variant v's entry at `slot` (an offsetof in ct_dsp) is the
 * function of an earlier SIMD variant, checked there already. */
static bool checked_before(int v, size_t slot, const char *entry) {
  for (int w = 1; w < v; w++)
    if (memcmp((const char *)&variants[v].dsp + slot,
               (const char *)&variants[w].dsp + slot, sizeof(void (*)(void))) == 0) {
      tap_diag("%s %s: the function of %s, checked there", entry, variants[v].name,
               variants[w].name);
      return true;
    }
  return false;
}

/* ---- Failure reports: the first difference of each (entry, variant). */

typedef struct {
  const char *entry;
  const char *level;
  const char *noun; /* of cases */
  int cases;
  bool failed;
  char first[512];
} check;

static void check_start(check *ck, const char *entry, const char *level) {
  memset(ck, 0, sizeof *ck);
  ck->entry = entry;
  ck->level = level;
  ck->noun = "random calls";
}

static void check_fail(check *ck, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void check_fail(check *ck, const char *fmt, ...) {
  if (ck->failed)
    return;
  ck->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ck->first, sizeof ck->first, fmt, ap);
  va_end(ap);
}

static void check_end(check *ck, const char *what) {
  if (ck->failed)
    tap_ok(0, "%s %s: %s", ck->entry, ck->level, ck->first);
  else
    tap_ok(1, "%s %s: %d %s %s", ck->entry, ck->level, ck->cases, ck->noun, what);
}

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* Index of the first float that differs bitwise, or -1. */
static int64_t first_float_diff(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (bits(a[i]) != bits(b[i]))
      return i;
  return -1;
}

static int64_t first_byte_diff(const uint8_t *a, const uint8_t *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (a[i] != b[i])
      return i;
  return -1;
}

/* A float no entry writes: a NaN with a payload of its own. */
static float canary(void) {
  const uint32_t u = 0x7fbadbadu;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static void fill_canary(float *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    v[i] = canary();
}

/* ---- Pixel conversions. */

enum { GUARD = 24 }; /* floats (bytes) checked around every destination */

typedef struct {
  int64_t n, left, right;
  int pstride, comps, offset[CT_CONVERT_MAX_COMPS];
  int byte_misalign, float_misalign;
  bool wide;
} pixel_shape;

static void describe_pixels(const pixel_shape *s, char *out, size_t size) {
  snprintf(out, size,
           "n=%lld pstride=%d comps=%d offsets=%d,%d,%d,%d left=%lld right=%lld "
           "bytes+%d floats+%d",
           (long long)s->n, s->pstride, s->comps, s->offset[0], s->offset[1],
           s->offset[2], s->offset[3], (long long)s->left, (long long)s->right,
           s->byte_misalign, s->float_misalign);
}

/* Offsets of components that do not overlap (`width` bytes each). */
static void random_offsets(pixel_shape *s, int width) {
  bool used[CT_CONVERT_MAX_PSTRIDE] = {false};
  const int room = s->pstride / width;
  const int max_comps = room < CT_CONVERT_MAX_COMPS ? room : CT_CONVERT_MAX_COMPS;
  s->comps = (int)rng_range(1, max_comps);
  /* Mostly every component at once, as packed formats convert them. */
  if (rng_next() % 2)
    s->comps = max_comps;
  for (int c = 0; c < s->comps; c++) {
    int o = -1;
    for (int tries = 0; tries < 100 && o < 0; tries++) {
      o = (int)rng_range(0, s->pstride - width);
      for (int b = 0; b < width; b++)
        o = used[o + b] ? -1 : o;
    }
    if (o < 0) { /* no room left between the others (16-bit components) */
      s->comps = c;
      break;
    }
    for (int b = 0; b < width; b++)
      used[o + b] = true;
    s->offset[c] = o;
  }
  for (int c = s->comps; c < CT_CONVERT_MAX_COMPS; c++)
    s->offset[c] = -1;
}

static void random_pixel_shape(pixel_shape *s, bool wide) {
  static const int strides8[] = {1, 1, 3, 3, 3, 4, 4, 4, 2, 5, 6, 8};
  static const int strides16[] = {2, 2, 2, 4, 6, 8};
  memset(s, 0, sizeof *s);
  s->wide = wide;
  s->pstride = wide ? strides16[rng_next() % 6] : strides8[rng_next() % 12];
  s->n = random_length(700);
  s->left = rng_next() % 3 ? rng_range(0, 9) : 0;
  s->right = rng_next() % 3 ? rng_range(0, 9) : 0;
  s->byte_misalign = (int)rng_range(0, 63);
  s->float_misalign = (int)rng_range(0, 15);
  random_offsets(s, wide ? 2 : 1);
}

/* Source pixels in an allocation of exactly the bytes read, so that the
 * sanitizer build catches a read past the row. */
typedef struct {
  uint8_t *alloc;
  const uint8_t *src;
  float *planes[CT_CONVERT_MAX_COMPS]; /* GUARD + left + n + right + GUARD */
  int64_t plane_len;
} unpack_buffers;

static void unpack_alloc(unpack_buffers *b, const pixel_shape *s) {
  const size_t bytes = (size_t)(s->n * s->pstride);
  b->alloc = xmalloc((size_t)s->byte_misalign + bytes);
  for (size_t i = 0; i < (size_t)s->byte_misalign + bytes; i++)
    b->alloc[i] = (uint8_t)rng_next();
  b->src = b->alloc + s->byte_misalign;
  b->plane_len = 2 * GUARD + s->float_misalign + s->left + s->n + s->right;
  for (int c = 0; c < CT_CONVERT_MAX_COMPS; c++)
    b->planes[c] = xmalloc((size_t)b->plane_len * sizeof(float));
}

static void unpack_run(const ct_dsp *dsp, unpack_buffers *b, const pixel_shape *s) {
  ct_unpack u = {.src = b->src,
                 .n = s->n,
                 .pstride = s->pstride,
                 .comps = s->comps,
                 .left = s->left,
                 .right = s->right};
  for (int c = 0; c < s->comps; c++) {
    fill_canary(b->planes[c], b->plane_len);
    u.offset[c] = s->offset[c];
    u.dst[c] = b->planes[c] + GUARD + s->float_misalign + s->left;
  }
  (s->wide ? dsp->unpack_u16 : dsp->unpack_u8)(&u);
}

static void unpack_free(unpack_buffers *b) {
  free(b->alloc);
  for (int c = 0; c < CT_CONVERT_MAX_COMPS; c++)
    free(b->planes[c]);
}

/* What the contract says the row must hold (C twin's own check). */
static float unpack_model(const unpack_buffers *b, const pixel_shape *s, int c,
                          int64_t j) {
  const int64_t x = j - GUARD - s->float_misalign - s->left;
  if (j < GUARD + s->float_misalign || x >= s->n + s->right)
    return canary();
  if (x < 0 || x >= s->n)
    return 0.0f;
  const uint8_t *p = b->src + x * s->pstride + s->offset[c];
  return s->wide ? (float)(p[0] | p[1] << 8) / 65535.0f : (float)p[0] / 255.0f;
}

static void check_unpack(bool wide, int rounds) {
  const char *entry = wide ? "unpack_u16" : "unpack_u8";
  for (int v = 0; v < n_variants; v++) {
    check ck;
    if (checked_before(
            v, wide ? offsetof(ct_dsp, unpack_u16) : offsetof(ct_dsp, unpack_u8), entry))
      continue;
    check_start(&ck, entry, variants[v].name);
    const uint64_t seed = rng_state;
    for (int r = 0; r < rounds && !ck.failed; r++, ck.cases++) {
      pixel_shape s;
      random_pixel_shape(&s, wide);
      unpack_buffers want, got;
      const uint64_t data = rng_state;
      unpack_alloc(&want, &s);
      rng_state = data; /* the same pixels */
      unpack_alloc(&got, &s);
      unpack_run(c_twin, &want, &s);
      unpack_run(&variants[v].dsp, &got, &s);
      char shape[256];
      describe_pixels(&s, shape, sizeof shape);
      for (int c = 0; c < s.comps && !ck.failed; c++) {
        const int64_t at =
            first_float_diff(got.planes[c], want.planes[c], want.plane_len);
        if (at >= 0)
          check_fail(&ck,
                     "%s component %d: first difference at dst[%lld]: got %a (0x%08x), "
                     "C gives %a (0x%08x)",
                     shape, c, (long long)(at - GUARD - s.float_misalign - s.left),
                     (double)got.planes[c][at], bits(got.planes[c][at]),
                     (double)want.planes[c][at], bits(want.planes[c][at]));
        for (int64_t j = 0; v == 0 && j < want.plane_len && !ck.failed; j++) {
          const float m = unpack_model(&want, &s, c, j);
          if (bits(m) != bits(want.planes[c][j]))
            check_fail(&ck,
                       "%s component %d: C level gives %a at dst[%lld], the contract %a",
                       shape, c, (double)want.planes[c][j],
                       (long long)(j - GUARD - s.float_misalign - s.left), (double)m);
        }
      }
      unpack_free(&want);
      unpack_free(&got);
    }
    check_end(&ck, v == 0 ? "match the contract's v / (2^depth - 1) and zero borders"
                          : "bitwise as C, borders and guards included");
    if (v + 1 < n_variants)
      rng_state = seed; /* every level on the same calls */
  }
}

/* Every pixel value (256 bytes, 65536 words) at every component position
 * of the strides with vector paths, against the C twin: the SIMD levels
 * divide without a division (convert-x86.h), exact for exactly these. A
 * long row takes the widest vectors; rows of 15 pixels starting at every
 * multiple of 8 take every value through the 8-wide ones too. */
static void check_unpack_all_values(bool wide) {
  const char *entry = wide ? "unpack_u16" : "unpack_u8";
  static const int strides8[] = {1, 3, 4}, strides16[] = {2};
  const int n_strides = wide ? 1 : 3;
  const int64_t values = wide ? 65536 : 256;
  for (int v = 1; v < n_variants; v++) {
    if (checked_before(
            v, wide ? offsetof(ct_dsp, unpack_u16) : offsetof(ct_dsp, unpack_u8), entry))
      continue;
    check ck;
    check_start(&ck, entry, variants[v].name);
    ck.noun = "calls";
    for (int k = 0; k < n_strides; k++)
      for (int64_t start = -8; start < values && !ck.failed; start += 8, ck.cases++) {
        /* start -8: one long row; then the short ones */
        pixel_shape s = {.n = start < 0 ? values + 64 : 15,
                         .pstride = wide ? strides16[k] : strides8[k],
                         .wide = wide};
        s.comps = wide ? 1 : s.pstride;
        for (int c = 0; c < s.comps; c++)
          s.offset[c] = c;
        unpack_buffers want, got;
        unpack_alloc(&want, &s);
        unpack_alloc(&got, &s);
        const int64_t first = start < 0 ? 0 : start;
        for (int64_t x = 0; x < s.n; x++)
          for (int b = 0; b < s.pstride; b++) {
            const int64_t w = first + x; /* the value of every component of pixel x */
            const uint8_t value = wide ? (uint8_t)(b == 0 ? w & 0xff : (w >> 8) & 0xff)
                                       : (uint8_t)((w + 85 * b) & 0xff);
            want.alloc[x * s.pstride + b] = got.alloc[x * s.pstride + b] = value;
          }
        unpack_run(c_twin, &want, &s);
        unpack_run(&variants[v].dsp, &got, &s);
        for (int c = 0; c < s.comps && !ck.failed; c++) {
          const int64_t at =
              first_float_diff(got.planes[c], want.planes[c], want.plane_len);
          if (at >= 0)
            check_fail(&ck,
                       "every value, n=%lld pstride=%d component %d: pixel %lld: got %a, "
                       "C gives %a",
                       (long long)s.n, s.pstride, c, (long long)(at - GUARD),
                       (double)got.planes[c][at], (double)want.planes[c][at]);
        }
        unpack_free(&want);
        unpack_free(&got);
      }
    check_end(&ck, wide ? "with every 16-bit value bitwise as C"
                        : "with every byte value at every position bitwise as C");
  }
}

/* Floats that probe the quantisation: in and out of [0, 1], exact levels
 * and the midpoints between them nudged by an ulp or two, and specials. */
static float pack_value(float scale) {
  static const float specials[] = {
      0.0f, -0.0f,   1.0f,     -1.0f,  0.5f,  INFINITY, -INFINITY,      NAN,
      -NAN, FLT_MIN, -FLT_MIN, 1e-40f, 1e30f, -1e30f,   0x1.fffffep-1f, 0x1.000002p+0f};
  const float level = (float)rng_range(0, (int64_t)scale);
  switch (rng_next() % 8) {
  case 0:
    return specials[rng_next() % (sizeof specials / sizeof specials[0])];
  case 1:
    return level / scale;
  case 2: {
    float v = (level + 0.5f) / scale;
    for (int k = (int)rng_range(-2, 2); k != 0; k += k > 0 ? -1 : 1)
      v = nextafterf(v, k > 0 ? INFINITY : -INFINITY);
    return v;
  }
  case 3:
    return rng_uniform(-0.3f, 1.3f);
  default:
    return rng_uniform(0.0f, 1.0f);
  }
}

typedef struct {
  float *alloc[CT_CONVERT_MAX_COMPS];
  const float *src[CT_CONVERT_MAX_COMPS];
  uint8_t *out; /* GUARD + n * pstride + GUARD */
  int64_t out_len;
  uint8_t fill;
} pack_buffers;

static void pack_alloc(pack_buffers *b, const pixel_shape *s) {
  const float scale = s->wide ? 65535.0f : 255.0f;
  for (int c = 0; c < CT_CONVERT_MAX_COMPS; c++) {
    /* Exactly the floats read, for the sanitizer build. */
    b->alloc[c] = xmalloc((size_t)(s->float_misalign + s->n) * sizeof(float));
    for (int64_t i = 0; i < s->float_misalign + s->n; i++)
      b->alloc[c][i] = pack_value(scale);
    b->src[c] = b->alloc[c] + s->float_misalign;
  }
  b->out_len = 2 * GUARD + s->byte_misalign + s->n * s->pstride;
  b->out = xmalloc((size_t)b->out_len);
  b->fill = (uint8_t)rng_next();
}

static void pack_run(const ct_dsp *dsp, pack_buffers *b, const pixel_shape *s) {
  memset(b->out, 0xa5, (size_t)b->out_len);
  ct_pack p = {.dst = b->out + GUARD + s->byte_misalign,
               .n = s->n,
               .pstride = s->pstride,
               .comps = s->comps,
               .fill = b->fill};
  for (int c = 0; c < s->comps; c++) {
    p.src[c] = b->src[c];
    p.offset[c] = s->offset[c];
  }
  (s->wide ? dsp->pack_u16 : dsp->pack_u8)(&p);
}

static void pack_free(pack_buffers *b) {
  for (int c = 0; c < CT_CONVERT_MAX_COMPS; c++)
    free(b->alloc[c]);
  free(b->out);
}

/* The contract's level of v, written out independently of the kernels. */
static int32_t contract_level(float v, float scale) {
  if (!(v > 0.0f))
    return 0;
  if (v >= 1.0f)
    return (int32_t)scale;
  return (int32_t)floorf(v * scale + 0.5f);
}

static void check_pack_model(check *ck, const pack_buffers *b, const pixel_shape *s,
                             const char *shape) {
  for (int64_t j = 0; j < b->out_len && !ck->failed; j++) {
    const int64_t k = j - GUARD - s->byte_misalign;
    int want = 0xa5;
    if (k >= 0 && k < s->n * s->pstride) {
      const int64_t x = k / s->pstride, byte = k % s->pstride;
      want = b->fill;
      for (int c = 0; c < s->comps; c++) {
        const int64_t at = byte - s->offset[c];
        if (at == 0 || (s->wide && at == 1)) {
          const int32_t l = contract_level(b->src[c][x], s->wide ? 65535.0f : 255.0f);
          want = at == 0 ? (l & 0xff) : (l >> 8);
        }
      }
    }
    if (b->out[j] != want)
      check_fail(ck, "%s: C level gives byte %d at dst[%lld], the contract %d", shape,
                 b->out[j], (long long)k, want);
  }
}

static void check_pack(bool wide, int rounds) {
  const char *entry = wide ? "pack_u16" : "pack_u8";
  for (int v = 0; v < n_variants; v++) {
    check ck;
    if (checked_before(v, wide ? offsetof(ct_dsp, pack_u16) : offsetof(ct_dsp, pack_u8),
                       entry))
      continue;
    check_start(&ck, entry, variants[v].name);
    const uint64_t seed = rng_state;
    for (int r = 0; r < rounds && !ck.failed; r++, ck.cases++) {
      pixel_shape s;
      random_pixel_shape(&s, wide);
      pack_buffers want, got;
      const uint64_t data = rng_state;
      pack_alloc(&want, &s);
      rng_state = data;
      pack_alloc(&got, &s);
      pack_run(c_twin, &want, &s);
      pack_run(&variants[v].dsp, &got, &s);
      char shape[300];
      describe_pixels(&s, shape, sizeof shape);
      snprintf(shape + strlen(shape), sizeof shape - strlen(shape), " fill=%d",
               want.fill);
      const int64_t at = first_byte_diff(got.out, want.out, want.out_len);
      if (at >= 0) {
        const int64_t k = at - GUARD - s.byte_misalign;
        const bool inside = k >= 0 && k < s.n * s.pstride;
        int comp = -1;
        for (int c = 0; inside && c < s.comps; c++)
          if (k % s.pstride - s.offset[c] == 0 ||
              (wide && k % s.pstride - s.offset[c] == 1))
            comp = c;
        check_fail(&ck,
                   "%s: first difference at byte %lld (pixel %lld, component %d, "
                   "input %a): got %d, C gives %d",
                   shape, (long long)k, inside ? (long long)(k / s.pstride) : -1LL, comp,
                   comp >= 0 ? (double)want.src[comp][k / s.pstride] : 0.0, got.out[at],
                   want.out[at]);
      }
      if (v == 0)
        check_pack_model(&ck, &want, &s, shape);
      pack_free(&want);
      pack_free(&got);
    }
    check_end(&ck, v == 0 ? "match the contract's clamp, scale and round, fill and guards"
                          : "bitwise as C, fill and guards included");
    if (v + 1 < n_variants)
      rng_state = seed;
  }
}

/* ---- Audio frames and planes. */

static float random_bits_float(void) {
  const uint32_t u = (uint32_t)rng_next();
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static void check_channels(bool to_planes, int rounds) {
  const char *entry = to_planes ? "deinterleave_f32" : "interleave_f32";
  static const int64_t counts[] = {1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 11, 16};
  for (int v = 0; v < n_variants; v++) {
    check ck;
    if (checked_before(v,
                       to_planes ? offsetof(ct_dsp, deinterleave_f32)
                                 : offsetof(ct_dsp, interleave_f32),
                       entry))
      continue;
    check_start(&ck, entry, variants[v].name);
    const uint64_t seed = rng_state;
    for (int r = 0; r < rounds && !ck.failed; r++, ck.cases++) {
      const int64_t ch = counts[rng_next() % (sizeof counts / sizeof counts[0])];
      const int64_t n = random_length(600);
      const int64_t stride = n + (rng_next() % 2 ? 0 : rng_range(1, 40));
      const int64_t in_mis = rng_range(0, 15), out_mis = rng_range(0, 15);
      const int64_t frames_len = n * ch, planes_len = (ch - 1) * stride + n;
      const int64_t src_len = to_planes ? frames_len : planes_len;
      const int64_t dst_len = 2 * GUARD + out_mis + (to_planes ? planes_len : frames_len);
      float *src = xmalloc((size_t)(in_mis + src_len) * sizeof(float));
      float *want = xmalloc((size_t)dst_len * sizeof(float));
      float *got = xmalloc((size_t)dst_len * sizeof(float));
      for (int64_t i = 0; i < in_mis + src_len; i++)
        src[i] = random_bits_float(); /* NaN payloads too: copies keep bits */
      fill_canary(want, dst_len);
      fill_canary(got, dst_len);
      ct_channels a = {.src = src + in_mis,
                       .dst = want + GUARD + out_mis,
                       .n = n,
                       .channels = ch,
                       .plane_stride = stride};
      (to_planes ? c_twin->deinterleave_f32 : c_twin->interleave_f32)(&a);
      a.dst = got + GUARD + out_mis;
      (to_planes ? variants[v].dsp.deinterleave_f32 : variants[v].dsp.interleave_f32)(&a);
      int64_t at = first_float_diff(got, want, dst_len);
      if (at >= 0)
        check_fail(&ck,
                   "n=%lld channels=%lld plane_stride=%lld src+%lld dst+%lld: first "
                   "difference at dst[%lld]: got 0x%08x, C gives 0x%08x",
                   (long long)n, (long long)ch, (long long)stride, (long long)in_mis,
                   (long long)out_mis, (long long)(at - GUARD - out_mis), bits(got[at]),
                   bits(want[at]));
      for (int64_t c = 0; v == 0 && c < ch && !ck.failed; c++)
        for (int64_t i = 0; i < n && !ck.failed; i++) {
          const float *frames = to_planes ? a.src : want + GUARD + out_mis;
          const float *planes = to_planes ? want + GUARD + out_mis : a.src;
          if (bits(frames[i * ch + c]) != bits(planes[c * stride + i]))
            check_fail(&ck,
                       "n=%lld channels=%lld: C level: frame %lld channel %lld is not "
                       "the plane's sample",
                       (long long)n, (long long)ch, (long long)i, (long long)c);
        }
      free(src);
      free(want);
      free(got);
    }
    check_end(&ck, v == 0 ? "copy every sample to its place, nothing else"
                          : "bitwise as C, guards included");
    if (v + 1 < n_variants)
      rng_state = seed;
  }
}

/* ---- Compute entries. */

typedef struct {
  int64_t m, k, n, dst_stride, next_n;
  bool pairs, shifted, nontemporal, dst_rows, pack, next_rows;
  int misalign;
} gemm_shape;

static void describe_gemm(const gemm_shape *s, char *out, size_t size) {
  snprintf(out, size, "m=%lld k=%lld n=%lld dst_stride=%lld%s%s%s%s%s rows+%d",
           (long long)s->m, (long long)s->k, (long long)s->n, (long long)s->dst_stride,
           s->shifted ? " shifted" : "", s->nontemporal ? " nontemporal" : "",
           s->dst_rows ? " dst_rows" : "", s->pack ? " pack" : "",
           s->next_rows ? " next_rows" : "", s->misalign);
}

/* The operands of one call, shared by every level. */
typedef struct {
  gemm_shape s;
  float *a, *bias, *input;
  const float **rows, **next;
  int64_t dst_len;
} gemm_case;

static float rng_signed(void) {
  return rng_uniform(-1.0f, 1.0f);
}

static void gemm_case_new(gemm_case *g, bool pairs) {
  gemm_shape *s = &g->s;
  memset(g, 0, sizeof *g);
  s->pairs = pairs;
  s->m = pairs ? 2 * rng_range(1, 7) : rng_range(1, 20);
  s->k = rng_next() % 4 ? rng_range(1, 40) : rng_range(1, pairs ? CT_GEMM_KC : 300);
  s->n = random_length(pairs ? 300 : 700);
  s->shifted = pairs && rng_next() % 2;
  s->nontemporal = rng_next() % 3 == 0;
  s->dst_rows = !pairs && rng_next() % 3 == 0;
  s->pack = !pairs && rng_next() % 2;
  s->next_rows = !pairs && rng_next() % 3 == 0;
  s->next_n = s->next_rows ? rng_range(0, s->n) : 0;
  s->misalign = (int)rng_range(0, 15);
  const int64_t width = pairs ? 2 * s->n : s->n;
  s->dst_stride = width + (rng_next() % 2 ? 0 : rng_range(1, 20));
  g->dst_len = 2 * GUARD + s->misalign + (s->m - 1) * s->dst_stride + width;
  if (pairs)
    g->dst_len = 2 * GUARD + s->misalign + (s->m / 2) * s->dst_stride;
  const int64_t packed = ct_gemm_packed_size(s->m, s->k);
  g->a = xmalloc((size_t)packed * sizeof(float));
  for (int64_t i = 0; i < packed; i++)
    g->a[i] = rng_signed();
  g->bias = xmalloc((size_t)s->m * sizeof(float));
  for (int64_t i = 0; i < s->m; i++)
    g->bias[i] = rng_signed();
  /* Rows anywhere in one block of input, unaligned, repeats allowed. */
  const int64_t span = s->n + 1 + 64, input_len = span * 4 + s->misalign;
  g->input = xmalloc((size_t)input_len * sizeof(float));
  for (int64_t i = 0; i < input_len; i++)
    g->input[i] = rng_signed();
  g->rows = xmalloc((size_t)s->k * sizeof *g->rows);
  g->next = xmalloc((size_t)s->k * sizeof *g->next);
  for (int64_t k = 0; k < s->k; k++) {
    g->rows[k] = g->input + s->misalign + rng_range(0, 3 * span);
    g->next[k] = g->input + rng_range(0, 3 * span);
  }
}

static void gemm_case_free(gemm_case *g) {
  free(g->a);
  free(g->bias);
  free(g->input);
  free((void *)g->rows);
  free((void *)g->next);
}

/* Runs the entry into out (dst_len floats, canaries around the outputs). */
static void gemm_run(const ct_dsp *dsp, const gemm_case *g, float *out) {
  const gemm_shape *s = &g->s;
  fill_canary(out, g->dst_len);
  float *dst = out + GUARD + s->misalign;
  float **dst_rows = NULL;
  float *pack = s->pack ? xmalloc(CT_GEMM_KC * CT_GEMM_NC * sizeof(float)) : NULL;
  if (s->dst_rows) { /* the rows in reverse order, to be sure they are used */
    dst_rows = xmalloc((size_t)s->m * sizeof *dst_rows);
    for (int64_t r = 0; r < s->m; r++)
      dst_rows[r] = dst + (s->m - 1 - r) * s->dst_stride;
  }
  ct_run_gemm args = {.m = s->m,
                      .k = s->k,
                      .n = s->n,
                      .a = g->a,
                      .bias = g->bias,
                      .rows = g->rows,
                      .dst = dst,
                      .dst_stride = s->dst_stride,
                      .dst_rows = dst_rows,
                      .pack = pack,
                      .nontemporal = s->nontemporal,
                      .phase_pairs_shifted = s->shifted,
                      .next_rows = s->next_rows ? g->next : NULL,
                      .next_n = s->next_n};
  (s->pairs ? dsp->run_phase_pairs : dsp->run_gemm)(&args);
  free(pack);
  free(dst_rows);
}

/* Where output (row r, position i) lives in out, and the sum dsp.h gives
 * it: bias, then every product in order, fused or not. */
static int64_t gemm_where(const gemm_case *g, int64_t r, int64_t i) {
  const gemm_shape *s = &g->s;
  if (s->pairs)
    return GUARD + s->misalign + (r / 2) * s->dst_stride + 2 * i + ((r % 2) ^ s->shifted);
  const int64_t row = s->dst_rows ? s->m - 1 - r : r;
  return GUARD + s->misalign + row * s->dst_stride + i;
}

static float gemm_model(const gemm_case *g, int64_t r, int64_t i, bool fused) {
  const gemm_shape *s = &g->s;
  const float *a = g->a + (r / CT_GEMM_MR) * CT_GEMM_MR * s->k + r % CT_GEMM_MR;
  const int64_t at = i + (s->shifted && r % 2 == 0); /* phase 0 of a shifted pair */
  float acc = g->bias[r];
  for (int64_t k = 0; k < s->k; k++)
    acc = fused ? fmaf(a[k * CT_GEMM_MR], g->rows[k][at], acc)
                : acc + a[k * CT_GEMM_MR] * g->rows[k][at];
  return acc;
}

static void check_gemm(bool pairs, int rounds) {
  const char *entry = pairs ? "run_phase_pairs" : "run_gemm";
  for (int v = 0; v < n_variants; v++) {
    const bool fused = variants[v].dsp.run_gemm != c_twin->run_gemm;
    check ck;
    if (checked_before(
            v, pairs ? offsetof(ct_dsp, run_phase_pairs) : offsetof(ct_dsp, run_gemm),
            entry))
      continue;
    check_start(&ck, entry, variants[v].name);
    for (int r = 0; r < rounds && !ck.failed; r++, ck.cases++) {
      gemm_case g;
      gemm_case_new(&g, pairs);
      float *want = xmalloc((size_t)g.dst_len * sizeof(float));
      float *got = xmalloc((size_t)g.dst_len * sizeof(float));
      float *model = xmalloc((size_t)g.dst_len * sizeof(float));
      gemm_run(c_twin, &g, want);
      gemm_run(&variants[v].dsp, &g, got);
      fill_canary(model, g.dst_len);
      double max_ref = 1.0;
      for (int64_t row = 0; row < g.s.m; row++)
        for (int64_t i = 0; i < g.s.n; i++) {
          model[gemm_where(&g, row, i)] = gemm_model(&g, row, i, fused);
          max_ref = fmax(max_ref, fabs((double)want[gemm_where(&g, row, i)]));
        }
      char shape[256];
      describe_gemm(&g.s, shape, sizeof shape);
      /* test-kernels' tolerance against the C level, output by output. */
      const double tol = 1e-5 * max_ref;
      for (int64_t row = 0; row < g.s.m && !ck.failed; row++)
        for (int64_t i = 0; i < g.s.n && !ck.failed; i++) {
          const int64_t at = gemm_where(&g, row, i);
          if (!(fabs((double)got[at] - (double)want[at]) <= tol))
            check_fail(&ck,
                       "%s: output [%lld][%lld]: got %.9g, C gives %.9g (tolerance %g)",
                       shape, (long long)row, (long long)i, (double)got[at],
                       (double)want[at], tol);
        }
      const int64_t at = first_float_diff(got, model, g.dst_len);
      if (at >= 0 && !ck.failed)
        check_fail(&ck, "%s: dst[%lld] is %a, the %s sum of dsp.h gives %a", shape,
                   (long long)(at - GUARD - g.s.misalign), (double)got[at],
                   fused ? "fused" : "plain", (double)model[at]);
      free(want);
      free(got);
      free(model);
      gemm_case_free(&g);
    }
    check_end(&ck, fused ? "within tolerance of C, bitwise the fused sum in order"
                         : "bitwise the plain sum in order");
  }
}

/* out[x] = phases[(x + first) % s][(x + first) / s - phase_start[...]]. */
static void check_interleave(int rounds) {
  for (int v = 0; v < n_variants; v++) {
    check ck;
    if (checked_before(v, offsetof(ct_dsp, interleave), "interleave"))
      continue;
    check_start(&ck, "interleave", variants[v].name);
    for (int r = 0; r < rounds && !ck.failed; r++, ck.cases++) {
      static const int64_t strides[] = {1, 2, 2, 2, 3, 4, 5, 8, 8, 8, 9, 16};
      const int64_t s = strides[rng_next() % (sizeof strides / sizeof strides[0])];
      const int64_t n = random_length(1200), first = rng_range(0, 3 * s);
      const int64_t misalign = rng_range(0, 15);
      float *phases[16] = {NULL};
      int64_t start[16] = {0};
      for (int64_t p = 0; p < s; p++) {
        start[p] = first / s - rng_range(0, first / s < 2 ? first / s : 2);
        const int64_t len = (first + n) / s + 2 - start[p];
        phases[p] = xmalloc((size_t)len * sizeof(float));
        for (int64_t i = 0; i < len; i++)
          phases[p][i] = random_bits_float();
      }
      const int64_t len = 2 * GUARD + misalign + n;
      float *want = xmalloc((size_t)len * sizeof(float));
      float *got = xmalloc((size_t)len * sizeof(float));
      fill_canary(want, len);
      fill_canary(got, len);
      ct_interleave il = {.n = n,
                          .s = s,
                          .first = first,
                          .phases = (const float *const *)phases,
                          .phase_start = start,
                          .out = want + GUARD + misalign};
      c_twin->interleave(&il);
      il.out = got + GUARD + misalign;
      variants[v].dsp.interleave(&il);
      const int64_t at = first_float_diff(got, want, len);
      if (at >= 0)
        check_fail(&ck,
                   "n=%lld s=%lld first=%lld out+%lld: first difference at out[%lld]: "
                   "got 0x%08x, C gives 0x%08x",
                   (long long)n, (long long)s, (long long)first, (long long)misalign,
                   (long long)(at - GUARD - misalign), bits(got[at]), bits(want[at]));
      for (int64_t x = 0; v == 0 && x < n && !ck.failed; x++) {
        const int64_t q = x + first, p = q % s;
        if (bits(want[GUARD + misalign + x]) != bits(phases[p][q / s - start[p]]))
          check_fail(&ck,
                     "n=%lld s=%lld first=%lld: C level: out[%lld] is not its phase's",
                     (long long)n, (long long)s, (long long)first, (long long)x);
      }
      for (int64_t p = 0; p < s; p++)
        free(phases[p]);
      free(want);
      free(got);
    }
    check_end(&ck, v == 0 ? "every output from its phase" : "bitwise as C");
  }
}

/* ---- --bench: ns per element of each entry at each level. */

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef struct bench_case bench_case;
struct bench_case {
  const char *entry, *shape;
  int64_t elements; /* per call: pixels, frames, outputs */
  void (*run)(const ct_dsp *dsp, bench_case *b);
  void *args;
};

/* Best of several timings of enough calls to take about a millisecond. */
static double time_case(const ct_dsp *dsp, bench_case *b) {
  int calls = 1;
  for (;;) {
    const double t0 = now_ns();
    for (int i = 0; i < calls; i++)
      b->run(dsp, b);
    if (now_ns() - t0 > 1e6 || calls > (1 << 24))
      break;
    calls *= 2;
  }
  double best = INFINITY;
  for (int rep = 0; rep < 7; rep++) {
    const double t0 = now_ns();
    for (int i = 0; i < calls; i++)
      b->run(dsp, b);
    best = fmin(best, (now_ns() - t0) / calls);
  }
  return best / (double)(b->elements > 0 ? b->elements : 1);
}

static void run_unpack8(const ct_dsp *dsp, bench_case *b) {
  dsp->unpack_u8(b->args);
}
static void run_unpack16(const ct_dsp *dsp, bench_case *b) {
  dsp->unpack_u16(b->args);
}
static void run_pack8(const ct_dsp *dsp, bench_case *b) {
  dsp->pack_u8(b->args);
}
static void run_pack16(const ct_dsp *dsp, bench_case *b) {
  dsp->pack_u16(b->args);
}
static void run_deinterleave(const ct_dsp *dsp, bench_case *b) {
  dsp->deinterleave_f32(b->args);
}
static void run_interleave_f32(const ct_dsp *dsp, bench_case *b) {
  dsp->interleave_f32(b->args);
}
static void run_gemm_entry(const ct_dsp *dsp, bench_case *b) {
  dsp->run_gemm(b->args);
}
static void run_phase_pairs_entry(const ct_dsp *dsp, bench_case *b) {
  dsp->run_phase_pairs(b->args);
}
static void run_interleave(const ct_dsp *dsp, bench_case *b) {
  dsp->interleave(b->args);
}

static float *bench_floats(int64_t n) {
  float *v = xmalloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    v[i] = rng_uniform(-0.1f, 1.1f);
  return v;
}

static uint8_t *bench_bytes(int64_t n) {
  uint8_t *v = xmalloc((size_t)n);
  for (int64_t i = 0; i < n; i++)
    v[i] = (uint8_t)rng_next();
  return v;
}

enum { MAX_BENCH = 40 };
static bench_case benches[MAX_BENCH];
static int n_benches;
static void *bench_allocs[8 * MAX_BENCH];
static int n_bench_allocs;

static void *keep(void *p) {
  bench_allocs[n_bench_allocs++] = p;
  return p;
}

static void add_bench(const char *entry, const char *shape, int64_t elements,
                      void (*run)(const ct_dsp *, bench_case *), void *args) {
  benches[n_benches++] = (bench_case){entry, shape, elements, run, args};
}

/* A row of the video elements' pixels: width pixels of `pstride` bytes. */
static void add_pixel_benches(const char *shape, int64_t width, int pstride, int comps,
                              const int *offsets, bool wide) {
  ct_unpack *u = keep(calloc(1, sizeof *u));
  ct_pack *p = keep(calloc(1, sizeof *p));
  u->src = keep(bench_bytes(width * pstride));
  p->dst = keep(bench_bytes(width * pstride));
  u->n = p->n = width;
  u->pstride = p->pstride = pstride;
  u->comps = p->comps = comps;
  u->left = u->right = 2;
  p->fill = 0xff;
  for (int c = 0; c < comps; c++) {
    u->offset[c] = p->offset[c] = offsets[c];
    u->dst[c] = (float *)keep(bench_floats(width + 4)) + 2;
    p->src[c] = keep(bench_floats(width));
  }
  add_bench(wide ? "unpack_u16" : "unpack_u8", shape, width,
            wide ? run_unpack16 : run_unpack8, u);
  add_bench(wide ? "pack_u16" : "pack_u8", shape, width, wide ? run_pack16 : run_pack8,
            p);
}

static void add_channel_benches(const char *shape, int64_t n, int64_t channels) {
  ct_channels *to = keep(calloc(1, sizeof *to)), *from = keep(calloc(1, sizeof *from));
  float *frames = keep(bench_floats(n * channels)),
        *planes = keep(bench_floats(n * channels));
  *to = (ct_channels){frames, planes, n, channels, n};
  *from = (ct_channels){planes, frames, n, channels, n};
  add_bench("deinterleave_f32", shape, n, run_deinterleave, to);
  add_bench("interleave_f32", shape, n, run_interleave_f32, from);
}

/* The products of the 2d video layer of tools/pipeline-bench.sh (3 -> 3
 * channels, 2x2 taps per phase) on a row of 640, and a wider one. */
static void add_gemm_bench(const char *shape, int64_t m, int64_t k, int64_t n,
                           bool pairs) {
  ct_run_gemm *g = keep(calloc(1, sizeof *g));
  const float **rows = keep(xmalloc((size_t)k * sizeof *rows));
  float *input = keep(bench_floats(k * (n + 1)));
  for (int64_t i = 0; i < k; i++)
    rows[i] = input + i * (n + 1);
  g->m = m;
  g->k = k;
  g->n = n;
  g->a = keep(bench_floats(ct_gemm_packed_size(m, k)));
  g->bias = keep(bench_floats(m));
  g->rows = rows;
  g->dst = keep(bench_floats(m * 2 * n));
  g->dst_stride = pairs ? 2 * n : n;
  g->pack = keep(bench_floats(CT_GEMM_KC * CT_GEMM_NC));
  add_bench(pairs ? "run_phase_pairs" : "run_gemm", shape, m * n,
            pairs ? run_phase_pairs_entry : run_gemm_entry, g);
}

static void add_interleave_bench(const char *shape, int64_t s, int64_t n) {
  ct_interleave *il = keep(calloc(1, sizeof *il));
  const float **phases = keep(xmalloc((size_t)s * sizeof *phases));
  for (int64_t p = 0; p < s; p++)
    phases[p] = keep(bench_floats(n / s + 2));
  *il = (ct_interleave){.n = n, .s = s, .phases = phases, .out = keep(bench_floats(n))};
  il->phase_start = keep(calloc((size_t)s, sizeof(int64_t)));
  add_bench("interleave", shape, n, run_interleave, il);
}

static int bench(const char *only) {
  static const int rgb[] = {0, 1, 2}, bgrx[] = {2, 1, 0}, xrgb[] = {1, 2, 3};
  static const int rgba[] = {0, 1, 2, 3}, gray[] = {0};
  add_pixel_benches("RGB 640", 640, 3, 3, rgb, false);
  add_pixel_benches("RGB 1280", 1280, 3, 3, rgb, false);
  add_pixel_benches("BGRx 1280", 1280, 4, 3, bgrx, false);
  add_pixel_benches("xRGB 1280", 1280, 4, 3, xrgb, false);
  add_pixel_benches("RGBA 1280", 1280, 4, 4, rgba, false);
  add_pixel_benches("GRAY8 1280", 1280, 1, 1, gray, false);
  add_pixel_benches("GRAY8 67", 67, 1, 1, gray, false);
  add_pixel_benches("GRAY16 1280", 1280, 2, 1, gray, true);
  add_channel_benches("1ch 480", 480, 1);
  add_channel_benches("2ch 480", 480, 2);
  add_channel_benches("2ch 4096", 4096, 2);
  add_channel_benches("4ch 480", 480, 4);
  add_channel_benches("6ch 480", 480, 6);
  add_channel_benches("8ch 480", 480, 8);
  add_gemm_bench("m6 k12 n640", 6, 12, 640, false);
  add_gemm_bench("m32 k288 n128", 32, 288, 128, false);
  add_gemm_bench("m6 k12 n640", 6, 12, 640, true);
  add_interleave_bench("s2 n1280", 2, 1280);
  add_interleave_bench("s8 n1280", 8, 1280);
  add_interleave_bench("s3 n1280", 3, 1280);

  printf("# ns per element (pixel, frame, output) of each entry, best of 7; "
         "x: speed-up over c\n");
  printf("%-17s %-14s", "entry", "shape");
  for (int v = 0; v < n_variants; v++)
    printf(" %16s", variants[v].name);
  printf("\n");
  for (int b = 0; b < n_benches; b++) {
    if (only && strcmp(only, benches[b].entry) != 0)
      continue;
    printf("%-17s %-14s", benches[b].entry, benches[b].shape);
    double c_ns = 0;
    for (int v = 0; v < n_variants; v++) {
      const double ns = time_case(&variants[v].dsp, &benches[b]);
      if (v == 0) {
        c_ns = ns;
        printf(" %16.3f", ns);
      } else {
        printf(" %9.3f (%4.1fx)", ns, c_ns / ns);
      }
      fflush(stdout);
    }
    printf("\n");
  }
  for (int i = 0; i < n_bench_allocs; i++)
    free(bench_allocs[i]);
  return 0;
}

int main(int argc, char **argv) {
  int rounds = 1000;
  bool do_bench = false;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bench") == 0) {
      do_bench = true;
      if (i + 1 < argc && argv[i + 1][0] != '-')
        only = argv[++i];
    } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      rng_state = strtoull(argv[++i], NULL, 0);
      if (rng_state == 0)
        rng_state = 1;
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: checkasm [--seed N] [--rounds N] | --bench [ENTRY]\n");
      return 2;
    }
  }
  find_variants();
  if (do_bench)
    return bench(only);
  tap_diag("seed 0x%016llx, %d calls per entry and level; levels:",
           (unsigned long long)rng_state, rounds);
  for (int v = 0; v < n_variants; v++)
    tap_diag("  %s", variants[v].name);
  check_unpack(false, rounds);
  check_unpack(true, rounds);
  check_unpack_all_values(false);
  check_unpack_all_values(true);
  check_pack(false, rounds);
  check_pack(true, rounds);
  check_channels(true, rounds);
  check_channels(false, rounds);
  check_gemm(false, rounds / 4);
  check_gemm(true, rounds / 4);
  check_interleave(rounds);
  tap_ok(n_variants >= 1, "%d levels checked against C", n_variants - 1);
  return tap_done();
}
