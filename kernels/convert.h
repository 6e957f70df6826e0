/* Sample and pixel conversions between the elements' buffers and the
 * kernels' channel-planar float32: the arguments of the conversion entries
 * of the dispatch table (kernels/dsp.h).
 *
 * Every level gives bitwise the same bytes and floats as the portable C
 * one: pixel values become v / 255 (v / 65535) by float division, floats
 * become levels by the contract's clamp to [0, 1], scale and round to
 * nearest (interface.md, section 4), and audio samples are copied. */
#ifndef CT_CONVERT_H
#define CT_CONVERT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Up to this many components per pixel (RGBA), of this many bytes. */
enum { CT_CONVERT_MAX_COMPS = 4, CT_CONVERT_MAX_PSTRIDE = 16 };

/* Components of a row of packed pixels into float rows (video input).
 * Component c of pixel x is the byte (unpack_u8) or little-endian 16-bit
 * word (unpack_u16) at src + x * pstride + offset[c]; it becomes
 *   dst[c][x] = (float)v / 255.0f  (or / 65535.0f).
 * dst[c][-left .. -1] and dst[c][n .. n + right - 1] are set to 0: the zero
 * borders the layer's padding reads. Reads only bytes [0, n * pstride) of
 * src (whole pixels: every byte of a pixel must be readable). */
typedef struct ct_unpack {
  const uint8_t *src;
  int64_t n;   /* pixels */
  int pstride; /* bytes per pixel, 1 .. CT_CONVERT_MAX_PSTRIDE */
  int comps;   /* 1 .. CT_CONVERT_MAX_COMPS */
  /* Byte of component c in a pixel: 0 .. pstride - 1 (u16: - 2). */
  int offset[CT_CONVERT_MAX_COMPS];
  float *dst[CT_CONVERT_MAX_COMPS];
  int64_t left, right; /* zeros before and after each dst row */
} ct_unpack;

/* Float rows into components of a row of packed pixels (video output):
 * component c of pixel x, at dst + x * pstride + offset[c], becomes
 *   (int)(min(max(src[c][x], 0), 1) * scale + 0.5f)
 * with scale 255 (pack_u8, a byte) or 65535 (pack_u16, little-endian);
 * NaN gives 0. The bytes of a pixel no component covers are set to `fill`
 * (the x of RGBx). Writes exactly bytes [0, n * pstride) of dst. */
typedef struct ct_pack {
  const float *src[CT_CONVERT_MAX_COMPS];
  uint8_t *dst;
  int64_t n;                        /* pixels */
  int pstride;                      /* bytes per pixel, 1 .. CT_CONVERT_MAX_PSTRIDE */
  int comps;                        /* 1 .. CT_CONVERT_MAX_COMPS, not overlapping */
  int offset[CT_CONVERT_MAX_COMPS]; /* as in ct_unpack */
  uint8_t fill;
} ct_pack;

/* Audio: interleaved frames and channel planes, n frames of `channels`
 * float32 samples, channel c's plane at planes + c * plane_stride.
 *   deinterleave_f32: dst[c * plane_stride + i] = src[i * channels + c]
 *   interleave_f32:   dst[i * channels + c] = src[c * plane_stride + i]
 * Copies: the samples keep their bits. Source and destination do not
 * overlap. */
typedef struct ct_channels {
  const float *src;
  float *dst;
  int64_t n, channels, plane_stride;
} ct_channels;

#ifdef __cplusplus
}
#endif

#endif
