/* What the element tests (tests/elements, tests/stress) share: temporary
 * files, harnesses with a bus of their own that a failed check does not
 * leave behind, bus messages, audio buffers in and out, one-shot references,
 * the suite, its run and its leak check. */
#ifndef CT_TEST_ELEMENT_HARNESS_H
#define CT_TEST_ELEMENT_HARNESS_H

#include <glib/gstdio.h>
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <string.h>

#include "kernels/stream.h"
#include "model/model.h"
#include "tests/common/safetensors-writer.h"

#if defined(__SANITIZE_ADDRESS__)
#define CT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CT_ASAN 1
#endif
#endif

/* ---- temporary files ---- */

/* A path in the program's temporary directory (made on first use; g_free
 * the path). run_element_suite removes the directory and all in it. */
gchar *tmp_path(const gchar *name);

/* ---- elements ---- */

/* A harness around a fresh `factory` with `model` set before it starts (the
 * harness starts it at once); n_threads >= 0 sets the n-threads property.
 * bus: if not NULL, a new bus given to the element before it starts, so that
 * loading's warnings are on it. */
GstHarness *harness_new(const gchar *factory, const gchar *model, int n_threads,
                        GstBus **bus);
/* Tears down a harness of harness_new, with its bus (thread-safe, like
 * harness_new). */
void harness_done(GstHarness *h);

/* Takes `e` to READY and back; the error it posted, or NULL. A failed state
 * change and an error come together (checked). Unrefs e. */
gchar *element_ready_error(GstElement *e);
/* The same for a fresh `factory` with `model` (NULL: none). */
gchar *ready_error(const gchar *factory, const gchar *model);

/* ---- messages and events ---- */

/* The text of the next message of `type` (ERROR or WARNING), or NULL. */
gchar *pop_message_text(GstBus *bus, GstMessageType type);
/* Waits up to `seconds` for one (loads run on their own thread). */
gchar *wait_message_text(GstBus *bus, GstMessageType type, double seconds);
/* The next error must be there and contain `needle`. */
void expect_error(GstBus *bus, const gchar *needle, const gchar *what);
/* Runs a pipeline to EOS or an error (at most `seconds`) and back to NULL;
 * the error's text, "timed out", or NULL at EOS. */
gchar *run_to_end(GstElement *pipeline, double seconds);
/* Whether an EOS is among the events the harness has received (all
 * popped). */
gboolean saw_eos(GstHarness *h);

/* Output buffers of a fakesink's "handoff": their channel counts. */
typedef struct {
  GMutex lock;
  gint channels; /* of the last buffer */
  guint buffers, channel_changes;
  guint bad_sizes; /* buffers that are not whole frames of their caps */
} ChannelLog;
void channel_log_init(ChannelLog *log);
void channel_log_clear(ChannelLog *log);
void channel_log_handoff(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer log);
guint channel_log_buffers(ChannelLog *log);

/* ---- audio ---- */

gchar *audio_caps(int channels, int rate, gboolean interleaved);
void harness_set_audio_caps(GstHarness *h, int channels, int rate, gboolean interleaved);

/* Samples [start, start + n) of a planar [channels, len] signal, interleaved
 * and stamped at `rate` from 0. */
GstBuffer *audio_buffer(const float *planar, gint64 len, int channels, gint64 start,
                        gint64 n, int rate);
/* The same from time `base`; non-interleaved with a GstAudioMeta. */
GstBuffer *audio_buffer_full(const float *planar, gint64 len, int channels, gint64 start,
                             gint64 n, int rate, GstClockTime base, gboolean interleaved);

/* Appends an interleaved output buffer (checked to be whole frames) to a
 * planar [channels, cap] array holding `have` samples; the new count. */
gint64 append_audio(GstBuffer *buf, float *planar, gint64 cap, int channels, gint64 have);
/* The same for every buffer waiting in the harness (consumed). */
gint64 collect_audio(GstHarness *h, float *planar, gint64 cap, int channels, gint64 have);
gint64 collect_audio_full(GstHarness *h, float *planar, gint64 cap, int channels,
                          gint64 have, gboolean interleaved);

/* [channels, len] values uniform in [-1, 1). */
float *random_planar(GRand *rand, int channels, gint64 len);

/* ---- references ---- */

ct_layer *load_test_layer(const gchar *path);
/* One-shot output of the layer in path for a planar input of `shape`; its
 * shape in out_shape, its size in n_values (unless NULL). */
float *forward(const gchar *path, const int64_t *shape, const float *in,
               int64_t *out_shape, gint64 *n_values);
/* The same for a 1d layer and a planar [Cin, n] signal. */
float *forward_1d(const gchar *path, const float *planar, gint64 n, gint64 *n_out);
/* Output length of a 1d layer for n input samples. */
gint64 output_length(const gchar *path, gint64 n);
/* The video elements' mapping of a value to a level: clamp to [0, 1], scale,
 * round to nearest (computed as the elements compute it). */
guint quantise(float v, float scale);

/* ---- the program ---- */

/* Resident memory of this process, in bytes. */
gsize rss_bytes(void);
/* A program's one test case, "general": at most `timeout` seconds a test,
 * and after each the harnesses a failed check left are torn down. */
TCase *element_tcase(double timeout);
/* Runs tc as suite `name` in this process (CK_FORK=no), removes the
 * temporary directory, and returns main's exit status: failed checks plus
 * leaked objects (with GST_TRACERS=leaks, set by the tests' environment; a
 * tracer that is not active counts as one). */
int run_element_tests(const char *name, TCase *tc, const char *file);

#endif
