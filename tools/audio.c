#include "audio.h"

#include <string.h>

#include <sndfile.h>

G_DEFINE_QUARK(ct - audio - error - quark, ct_audio_error)

/* Frames converted per libsndfile call: bounds the interleaved scratch. */
enum { BLOCK_FRAMES = 4096 };

void ct_audio_clear(CtAudio *audio) {
  g_free(audio->data);
  memset(audio, 0, sizeof *audio);
}

/* Deinterleaves n frames into planar data at frame offset `at`. */
static void deinterleave(const float *src, gint channels, gint64 n, float *data,
                         gint64 chan_stride, gint64 at) {
  for (gint c = 0; c < channels; c++) {
    float *dst = data + c * chan_stride + at;
    for (gint64 i = 0; i < n; i++)
      dst[i] = src[i * channels + c];
  }
}

static gboolean planar_bytes(gint channels, gint64 frames, gsize *bytes) {
  gint64 count;
  if (frames < 0 || __builtin_mul_overflow(frames, (gint64)channels, &count) ||
      (guint64)count > G_MAXSIZE / sizeof(float))
    return FALSE;
  *bytes = (gsize)count * sizeof(float);
  return TRUE;
}

gboolean ct_audio_read(const gchar *path, CtAudio *out, GError **error) {
  memset(out, 0, sizeof *out);
  SF_INFO info = {0};
  SNDFILE *sf = sf_open(path, SFM_READ, &info);
  if (!sf) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ,
                "not an audio file libsndfile can read (%s)", sf_strerror(NULL));
    return FALSE;
  }
  if (info.channels < 1 || info.samplerate < 1) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ,
                "audio file with %d channels at %d Hz", info.channels, info.samplerate);
    sf_close(sf);
    return FALSE;
  }
  /* The declared length sizes the buffer; an unknown one (a pipe) or a file
   * shorter than declared is handled by growing or trimming. */
  gint64 cap = info.seekable && info.frames >= 0 && info.frames < SF_COUNT_MAX
                   ? info.frames
                   : BLOCK_FRAMES;
  gsize bytes;
  if (!planar_bytes(info.channels, cap, &bytes)) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ, "audio file too large");
    sf_close(sf);
    return FALSE;
  }
  float *data = g_try_malloc(bytes ? bytes : 1);
  float *block = g_try_malloc(sizeof(float) * BLOCK_FRAMES * (gsize)info.channels);
  gint64 frames = 0;
  gboolean ok = data && block;
  if (!ok)
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ,
                "out of memory for %" G_GINT64_FORMAT " frames", cap);
  while (ok) {
    sf_count_t got = sf_readf_float(sf, block, BLOCK_FRAMES);
    if (got <= 0)
      break;
    if (frames + got > cap) {
      gint64 new_cap = MAX(cap * 2, frames + got);
      float *grown =
          planar_bytes(info.channels, new_cap, &bytes) ? g_try_malloc(bytes) : NULL;
      if (!grown) {
        g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ, "audio file too large");
        ok = FALSE;
        break;
      }
      for (gint c = 0; c < info.channels; c++)
        memcpy(grown + c * new_cap, data + c * cap, (gsize)frames * sizeof(float));
      g_free(data);
      data = grown;
      cap = new_cap;
    }
    deinterleave(block, info.channels, got, data, cap, frames);
    frames += got;
  }
  if (ok && sf_error(sf) != SF_ERR_NO_ERROR) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ, "reading failed: %s",
                sf_strerror(sf));
    ok = FALSE;
  }
  sf_close(sf);
  g_free(block);
  if (!ok) {
    g_free(data);
    return FALSE;
  }
  /* Close the gaps a short read left between channels. */
  for (gint c = 1; c < info.channels && frames < cap; c++)
    memmove(data + c * frames, data + c * cap, (gsize)frames * sizeof(float));
  out->channels = info.channels;
  out->rate = info.samplerate;
  out->frames = frames;
  out->format = info.format;
  out->data = data;
  return TRUE;
}

static gboolean has_extension(const gchar *path, const gchar *ext) {
  gsize n = strlen(path), e = strlen(ext);
  return n > e && path[n - e - 1] == '.' && g_ascii_strcasecmp(path + n - e, ext) == 0;
}

gint ct_audio_format_for_path(const gchar *path) {
  if (has_extension(path, "flac"))
    return SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
  if (has_extension(path, "aiff") || has_extension(path, "aif"))
    return SF_FORMAT_AIFF | SF_FORMAT_FLOAT;
  if (has_extension(path, "ogg") || has_extension(path, "oga"))
    return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
  if (has_extension(path, "au") || has_extension(path, "snd"))
    return SF_FORMAT_AU | SF_FORMAT_FLOAT;
  if (has_extension(path, "caf"))
    return SF_FORMAT_CAF | SF_FORMAT_FLOAT;
  return SF_FORMAT_WAV | SF_FORMAT_FLOAT;
}

const gchar *ct_audio_format_name(gint format) {
  switch (format & SF_FORMAT_TYPEMASK) {
  case SF_FORMAT_FLAC:
    return "FLAC 24-bit";
  case SF_FORMAT_AIFF:
    return "AIFF float";
  case SF_FORMAT_OGG:
    return "Ogg Vorbis";
  case SF_FORMAT_AU:
    return "AU float";
  case SF_FORMAT_CAF:
    return "CAF float";
  case SF_FORMAT_RF64:
    return "RF64 float";
  default:
    return "WAV float";
  }
}

/* Formats that store integers wrap around outside [-1, 1]; float and
 * Vorbis ones keep any value. */
static gboolean needs_clipping(gint format) {
  switch (format & SF_FORMAT_SUBMASK) {
  case SF_FORMAT_FLOAT:
  case SF_FORMAT_DOUBLE:
  case SF_FORMAT_VORBIS:
    return FALSE;
  default:
    return TRUE;
  }
}

gboolean ct_audio_write_fd(int fd, gint format, const float *data, gint64 chan_stride,
                           gint channels, gint64 frames, gint rate, GError **error) {
  gsize bytes;
  if (channels < 1 || !planar_bytes(channels, frames, &bytes)) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, "bad audio size");
    return FALSE;
  }
  /* RIFF sizes are 32-bit: keep headroom for the header chunks. */
  if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV && (guint64)bytes > 0xFFFF0000u)
    format = SF_FORMAT_RF64 | (format & SF_FORMAT_SUBMASK);
  SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
  if (!sf_format_check(&info)) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE,
                "%s cannot hold %d channels at %d Hz", ct_audio_format_name(format),
                channels, rate);
    return FALSE;
  }
  SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, SF_FALSE);
  if (!sf) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, "cannot write %s: %s",
                ct_audio_format_name(format), sf_strerror(NULL));
    return FALSE;
  }
  const gboolean clip = needs_clipping(format);
  float *block = g_malloc(sizeof(float) * BLOCK_FRAMES * (gsize)channels);
  gboolean ok = TRUE;
  for (gint64 done = 0; ok && done < frames;) {
    const gint64 n = MIN(frames - done, (gint64)BLOCK_FRAMES);
    for (gint c = 0; c < channels; c++) {
      const float *src = data + c * chan_stride + done;
      for (gint64 i = 0; i < n; i++) {
        float v = src[i];
        if (clip)
          v = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v == v ? v : 0.0f; /* NaN: 0 */
        block[i * channels + c] = v;
      }
    }
    ok = sf_writef_float(sf, block, n) == n;
    done += n;
  }
  g_free(block);
  if (!ok)
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, "writing failed: %s",
                sf_strerror(sf));
  /* Closing writes the final header sizes (and flushes encoders). */
  if (sf_close(sf) != 0 && ok) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, "closing failed: %s",
                sf_strerror(NULL));
    ok = FALSE;
  }
  return ok;
}
