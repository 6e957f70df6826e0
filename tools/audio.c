#include "audio.h"

#include <string.h>

#include <sndfile.h>

G_DEFINE_QUARK(ct - audio - error - quark, ct_audio_error)

/* Frames converted per libsndfile call: bounds the interleaved scratch, and
 * keeps the encoders fed in the same blocks whatever the caller's chunks,
 * so an output never depends on them. */
enum { BLOCK_FRAMES = 4096 };

/* libsndfile 1.1's SF_FORMAT_MPEG and SF_FORMAT_MPEG_LAYER_III and 1.0.29's
 * SF_FORMAT_OPUS, spelt out so that older headers still build; whether this
 * library has them is asked at run time. */
enum {
  CT_SF_FORMAT_MPEG = 0x230000,
  CT_SF_FORMAT_MPEG_LAYER_III = 0x0082,
  CT_SF_FORMAT_OPUS = 0x0064,
};

/* An interleaved block of BLOCK_FRAMES frames, or NULL. */
static float *block_new(gint channels) {
  gsize count;
  if (channels < 1 || !g_size_checked_mul(&count, BLOCK_FRAMES, (gsize)channels) ||
      !g_size_checked_mul(&count, count, sizeof(float)))
    return NULL;
  return g_try_malloc(count);
}

/* ---- reading ------------------------------------------------------------ */

struct CtAudioReader {
  SNDFILE *sf;
  gint channels;
  gint64 frames, done; /* declared, delivered */
  float *block;
};

CtAudioReader *ct_audio_reader_open(const gchar *path, int fd, CtAudioInfo *info,
                                    GError **error) {
  memset(info, 0, sizeof *info);
  SF_INFO sfi = {0};
  SNDFILE *sf =
      fd >= 0 ? sf_open_fd(fd, SFM_READ, &sfi, SF_FALSE) : sf_open(path, SFM_READ, &sfi);
  if (!sf) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ,
                "not an audio file libsndfile can read (%s)", sf_strerror(NULL));
    return NULL;
  }
  if (sfi.channels < 1 || sfi.samplerate < 1) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ,
                "audio file with %d channels at %d Hz", sfi.channels, sfi.samplerate);
    sf_close(sf);
    return NULL;
  }
  /* A seekable file declares its length (streams were copied to one). */
  if (!sfi.seekable || sfi.frames < 0 || sfi.frames >= SF_COUNT_MAX) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ,
                "audio file of unknown length");
    sf_close(sf);
    return NULL;
  }
  CtAudioReader *r = g_new0(CtAudioReader, 1);
  r->sf = sf;
  r->channels = sfi.channels;
  r->frames = sfi.frames;
  r->block = block_new(sfi.channels);
  if (!r->block) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ, "out of memory");
    ct_audio_reader_free(r);
    return NULL;
  }
  info->channels = sfi.channels;
  info->rate = sfi.samplerate;
  info->frames = sfi.frames;
  info->format = sfi.format;
  return r;
}

gint64 ct_audio_reader_read(CtAudioReader *r, float *dst, gint64 chan_stride, gint64 n,
                            GError **error) {
  gint64 got_total = 0;
  while (got_total < n && r->done < r->frames) {
    const sf_count_t want = MIN(MIN(n - got_total, r->frames - r->done), BLOCK_FRAMES);
    const sf_count_t got = sf_readf_float(r->sf, r->block, want);
    if (got <= 0) {
      r->frames = r->done; /* shorter than declared: this is the end */
      break;
    }
    for (gint c = 0; c < r->channels; c++) {
      float *out = dst + c * chan_stride + got_total;
      for (sf_count_t i = 0; i < got; i++)
        out[i] = r->block[i * r->channels + c];
    }
    got_total += got;
    r->done += got;
  }
  if (sf_error(r->sf) != SF_ERR_NO_ERROR) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_READ, "reading failed: %s",
                sf_strerror(r->sf));
    return -1;
  }
  return got_total;
}

void ct_audio_reader_free(CtAudioReader *r) {
  if (!r)
    return;
  if (r->sf)
    sf_close(r->sf);
  g_free(r->block);
  g_free(r);
}

/* ---- formats ------------------------------------------------------------ */

typedef struct {
  const char *ext;
  gint format;
  const char *name;
} OutputFormat;

/* Float wherever the container holds it, so nothing is lost; FLAC 24-bit,
 * its best. One extension per line; the first line of a format names it. */
static const OutputFormat output_formats[] = {
    {"wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, "WAV float"},
    {"w64", SF_FORMAT_W64 | SF_FORMAT_FLOAT, "W64 float"},
    {"rf64", SF_FORMAT_RF64 | SF_FORMAT_FLOAT, "RF64 float"},
    {"flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, "FLAC 24-bit"},
    {"aiff", SF_FORMAT_AIFF | SF_FORMAT_FLOAT, "AIFF float"},
    {"aif", SF_FORMAT_AIFF | SF_FORMAT_FLOAT, "AIFF float"},
    {"au", SF_FORMAT_AU | SF_FORMAT_FLOAT, "AU float"},
    {"snd", SF_FORMAT_AU | SF_FORMAT_FLOAT, "AU float"},
    {"caf", SF_FORMAT_CAF | SF_FORMAT_FLOAT, "CAF float"},
    {"ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, "Ogg Vorbis"},
    {"oga", SF_FORMAT_OGG | SF_FORMAT_VORBIS, "Ogg Vorbis"},
    {"opus", SF_FORMAT_OGG | CT_SF_FORMAT_OPUS, "Ogg Opus"},
    {"mp3", CT_SF_FORMAT_MPEG | CT_SF_FORMAT_MPEG_LAYER_III, "MP3"},
};

/* Whether libsndfile lists `value` among its major formats or subtypes. */
static gboolean library_lists(int count_command, int get_command, gint value) {
  int count = 0;
  if (sf_command(NULL, count_command, &count, sizeof count) != 0)
    return FALSE;
  for (int i = 0; i < count; i++) {
    SF_FORMAT_INFO fi = {.format = i};
    if (sf_command(NULL, get_command, &fi, sizeof fi) == 0 && fi.format == value)
      return TRUE;
  }
  return FALSE;
}

/* Formats the library was built without (MPEG before 1.1, Opus or Vorbis
 * without their codecs) are neither listed nor pass sf_format_check. */
static gboolean library_writes(gint format) {
  SF_INFO probe = {.samplerate = 48000, .channels = 1, .format = format};
  return library_lists(SFC_GET_FORMAT_MAJOR_COUNT, SFC_GET_FORMAT_MAJOR,
                       format & SF_FORMAT_TYPEMASK) &&
         library_lists(SFC_GET_FORMAT_SUBTYPE_COUNT, SFC_GET_FORMAT_SUBTYPE,
                       format & SF_FORMAT_SUBMASK) &&
         sf_format_check(&probe);
}

gchar *ct_audio_writable_extensions(void) {
  GString *s = g_string_new(NULL);
  for (gsize i = 0; i < G_N_ELEMENTS(output_formats); i++)
    if (library_writes(output_formats[i].format))
      g_string_append_printf(s, "%s.%s", s->len ? ", " : "", output_formats[i].ext);
  return g_string_free(s, FALSE);
}

gboolean ct_audio_format_for_extension(const gchar *ext, gint *format, GError **error) {
  const OutputFormat *found = NULL;
  for (gsize i = 0; !found && i < G_N_ELEMENTS(output_formats); i++)
    if (g_ascii_strcasecmp(ext ? ext : "wav", output_formats[i].ext) == 0)
      found = &output_formats[i];
  if (!found) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_UNKNOWN_EXTENSION,
                "'.%s' is not an audio format this tool writes", ext);
    return FALSE;
  }
  if (!library_writes(found->format)) {
    char version[64] = "libsndfile";
    sf_command(NULL, SFC_GET_LIB_VERSION, version, sizeof version);
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_NO_ENCODER,
                "this libsndfile (%s) cannot write %s files", version, found->name);
    return FALSE;
  }
  *format = found->format;
  return TRUE;
}

const gchar *ct_audio_format_name(gint format) {
  for (gsize i = 0; i < G_N_ELEMENTS(output_formats); i++)
    if (output_formats[i].format == format)
      return output_formats[i].name;
  return "audio";
}

/* Formats that store integers wrap around outside [-1, 1], and MP3 encoders
 * distort there; float, Vorbis and Opus keep any value. */
static gboolean needs_clipping(gint format) {
  switch (format & SF_FORMAT_SUBMASK) {
  case SF_FORMAT_FLOAT:
  case SF_FORMAT_DOUBLE:
  case SF_FORMAT_VORBIS:
  case CT_SF_FORMAT_OPUS:
    return FALSE;
  default:
    return TRUE;
  }
}

/* ---- writing ------------------------------------------------------------ */

struct CtAudioWriter {
  SNDFILE *sf;
  gint channels;
  gboolean clip;
  float *block;   /* interleaved */
  gint64 filled;  /* frames in block */
  gboolean ok;    /* no write has failed */
  gchar *message; /* of the first failure */
};

/* libsndfile words some errors "Error : ..." or "System error : ...". */
static const gchar *sndfile_message(SNDFILE *sf) {
  const gchar *m = sf_strerror(sf);
  static const char *const prefixes[] = {"Error : ", "System error : "};
  for (gsize i = 0; i < G_N_ELEMENTS(prefixes); i++)
    if (g_str_has_prefix(m, prefixes[i]))
      return m + strlen(prefixes[i]);
  return m;
}

CtAudioWriter *ct_audio_writer_open_fd(int fd, gint format, gint channels, gint rate,
                                       gint64 frames, GError **error) {
  gint64 bytes;
  if (channels < 1 || frames < 0 ||
      __builtin_mul_overflow(frames, (gint64)channels, &bytes) ||
      __builtin_mul_overflow(bytes, (gint64)sizeof(float), &bytes)) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, "bad audio size");
    return NULL;
  }
  /* RIFF sizes are 32-bit: keep headroom for the header chunks. */
  if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV && bytes > 0xFFFF0000)
    format = SF_FORMAT_RF64 | (format & SF_FORMAT_SUBMASK);
  SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
  if (!sf_format_check(&info)) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE,
                "%s cannot hold %d channels at %d Hz", ct_audio_format_name(format),
                channels, rate);
    return NULL;
  }
  float *block = block_new(channels);
  if (!block) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, "out of memory");
    return NULL;
  }
  /* Encoders check their limits (MP3 and Opus rates) when opened. */
  SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, SF_FALSE);
  if (!sf) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE,
                "cannot write %s of %d channels at %d Hz: %s",
                ct_audio_format_name(format), channels, rate, sndfile_message(NULL));
    g_free(block);
    return NULL;
  }
  CtAudioWriter *w = g_new0(CtAudioWriter, 1);
  w->sf = sf;
  w->channels = channels;
  w->clip = needs_clipping(format);
  w->block = block;
  w->ok = TRUE;
  return w;
}

static gboolean flush_block(CtAudioWriter *w) {
  if (w->ok && w->filled > 0 &&
      sf_writef_float(w->sf, w->block, w->filled) != w->filled) {
    w->ok = FALSE;
    w->message = g_strdup_printf("writing failed: %s", sndfile_message(w->sf));
  }
  w->filled = 0;
  return w->ok;
}

gboolean ct_audio_writer_write(CtAudioWriter *w, const float *data, gint64 chan_stride,
                               gint64 frames, GError **error) {
  for (gint64 done = 0; w->ok && done < frames;) {
    const gint64 n = MIN(frames - done, BLOCK_FRAMES - w->filled);
    for (gint c = 0; c < w->channels; c++) {
      const float *src = data + c * chan_stride + done;
      float *dst = w->block + w->filled * w->channels + c;
      for (gint64 i = 0; i < n; i++) {
        float v = src[i];
        if (w->clip)
          v = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v == v ? v : 0.0f; /* NaN: 0 */
        dst[i * w->channels] = v;
      }
    }
    w->filled += n;
    done += n;
    if (w->filled == BLOCK_FRAMES)
      flush_block(w);
  }
  if (!w->ok)
    g_set_error_literal(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, w->message);
  return w->ok;
}

gboolean ct_audio_writer_close(CtAudioWriter *w, GError **error) {
  flush_block(w);
  gboolean ok = w->ok;
  if (!ok)
    g_set_error_literal(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, w->message);
  /* Closing writes the final header sizes (and flushes encoders). */
  if (sf_close(w->sf) != 0 && ok) {
    g_set_error(error, CT_AUDIO_ERROR, CT_AUDIO_ERROR_WRITE, "closing failed: %s",
                sndfile_message(NULL));
    ok = FALSE;
  }
  g_free(w->message);
  g_free(w->block);
  g_free(w);
  return ok;
}
