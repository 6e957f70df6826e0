/* `convtranspose bench`: the benchmark cases of bench-cases.md. */
#ifndef CT_BENCH_H
#define CT_BENCH_H

#include <glib.h>

/* Runs the cases named in case_list (comma-separated; NULL: all) on
 * `threads` threads (0: all cores) and prints one line per case and mode,
 * or a JSON array. */
gboolean ct_bench_run(const gchar *case_list, gint threads, gboolean json,
                      GError **error);

#endif
