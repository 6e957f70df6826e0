/* Audio files through libsndfile, as channel-planar float32 ([C, L]: channel
 * c's samples contiguous), the layout the streaming kernels read. */
#ifndef CT_AUDIO_H
#define CT_AUDIO_H

#include <glib.h>

G_BEGIN_DECLS

#define CT_AUDIO_ERROR (ct_audio_error_quark())
GQuark ct_audio_error_quark(void);

typedef enum {
  CT_AUDIO_ERROR_READ,
  CT_AUDIO_ERROR_WRITE,
} CtAudioError;

typedef struct {
  gint channels;
  gint rate;
  gint64 frames;
  gint format; /* libsndfile SF_FORMAT_* of the file read */
  float *data; /* channel c at data + c * frames */
} CtAudio;

/* Reads every frame of any file libsndfile reads, as floats (integer formats
 * scaled to [-1, 1)). */
gboolean ct_audio_read(const gchar *path, CtAudio *out, GError **error);
void ct_audio_clear(CtAudio *audio);

/* The libsndfile format written for an output path: by extension
 * (case-insensitive) .flac FLAC 24-bit, .aiff/.aif AIFF float, .ogg/.oga
 * Ogg Vorbis, .au/.snd AU float, .caf CAF float; 32-bit float WAV for .wav
 * and anything else. */
gint ct_audio_format_for_path(const gchar *path);

/* A short name of a format, e.g. "FLAC 24-bit", for messages. */
const gchar *ct_audio_format_name(gint format);

/* Writes channels x frames planar samples (channel c at data + c * chan_stride)
 * to the open, empty, seekable file fd in the given format (see
 * ct_audio_format_for_path), at rate Hz. Integer formats are clipped to
 * [-1, 1]; a WAV too large for 32-bit sizes becomes RF64. fd stays open. */
gboolean ct_audio_write_fd(int fd, gint format, const float *data, gint64 chan_stride,
                           gint channels, gint64 frames, gint rate, GError **error);

G_END_DECLS

#endif
