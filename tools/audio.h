/* Audio files through libsndfile, block by block, as channel-planar float32
 * (channel c's samples contiguous), the layout the streaming kernels read:
 * a reader and a writer that hold one block at a time, so a file of any
 * length is converted in bounded memory. */
#ifndef CT_AUDIO_H
#define CT_AUDIO_H

#include <glib.h>

G_BEGIN_DECLS

#define CT_AUDIO_ERROR (ct_audio_error_quark())
GQuark ct_audio_error_quark(void);

typedef enum {
  CT_AUDIO_ERROR_READ,
  CT_AUDIO_ERROR_WRITE,
  CT_AUDIO_ERROR_UNKNOWN_EXTENSION, /* not the extension of a format we write */
  CT_AUDIO_ERROR_NO_ENCODER,        /* a format this libsndfile cannot write */
} CtAudioError;

typedef struct {
  gint channels;
  gint rate;
  gint64 frames; /* as the file declares: a damaged file may hold fewer */
  gint format;   /* libsndfile SF_FORMAT_* of the file */
} CtAudioInfo;

typedef struct CtAudioReader CtAudioReader;

/* Opens any seekable file libsndfile reads: path, or when fd >= 0 the open
 * file fd (which stays the caller's; path then only names it). */
CtAudioReader *ct_audio_reader_open(const gchar *path, int fd, CtAudioInfo *info,
                                    GError **error);

/* Reads up to n frames as floats (integer formats scaled to [-1, 1)) into
 * channel c at dst + c * chan_stride. Returns the frames read, 0 at the
 * end, -1 with an error. Never reads past the declared length. */
gint64 ct_audio_reader_read(CtAudioReader *reader, float *dst, gint64 chan_stride,
                            gint64 n, GError **error);
void ct_audio_reader_free(CtAudioReader *reader);

/* The format written for an output file extension (without the dot,
 * case-insensitive; NULL for a name without one): .wav (and no extension)
 * 32-bit float WAV, .w64 and .rf64 float, .flac FLAC 24-bit, .aiff/.aif,
 * .au/.snd and .caf float, .ogg/.oga Ogg Vorbis, .opus Ogg Opus, .mp3 MPEG
 * layer III. Fails for other extensions and for formats this libsndfile
 * has no encoder for. */
gboolean ct_audio_format_for_extension(const gchar *ext, gint *format, GError **error);

/* ".wav, .w64, ..." : the extensions this libsndfile writes; g_free it. */
gchar *ct_audio_writable_extensions(void);

/* A short name of a format, e.g. "FLAC 24-bit", for messages. */
const gchar *ct_audio_format_name(gint format);

typedef struct CtAudioWriter CtAudioWriter;

/* Starts a file of the given format (from ct_audio_format_for_extension) on
 * fd, which must be open, empty and seekable (formats write their sizes
 * into the header at the end), at rate Hz. frames is the expected length:
 * a WAV too large for 32-bit sizes becomes RF64. Every encoder limit
 * (channels, rates) is met here, before any sample is computed. fd stays
 * open. */
CtAudioWriter *ct_audio_writer_open_fd(int fd, gint format, gint channels, gint rate,
                                       gint64 frames, GError **error);

/* Appends frames planar samples (channel c at data + c * chan_stride).
 * Integer and MP3 formats are clipped to [-1, 1]. */
gboolean ct_audio_writer_write(CtAudioWriter *writer, const float *data,
                               gint64 chan_stride, gint64 frames, GError **error);

/* Writes what is buffered and the final header, and frees the writer (also
 * after a failure; error may be NULL). */
gboolean ct_audio_writer_close(CtAudioWriter *writer, GError **error);

G_END_DECLS

#endif
