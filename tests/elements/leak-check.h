/* The element tests' leak check: with GST_TRACERS=leaks (set by the tests'
 * environment), any GstObject or mini-object a test created and did not
 * release is a failure. Returns the number of failures (a tracer that is not
 * active counts as one). */
#ifndef CT_TEST_LEAK_CHECK_H
#define CT_TEST_LEAK_CHECK_H

#include <gst/gst.h>
#include <stdio.h>

static inline int check_no_leaks(void) {
  int leaks = 0;
  gboolean traced = FALSE;
  GList *tracers = gst_tracing_get_active_tracers();
  for (GList *l = tracers; l; l = l->next) {
    if (!g_str_equal(G_OBJECT_TYPE_NAME(l->data), "GstLeaksTracer"))
      continue;
    traced = TRUE;
    GstStructure *info = NULL;
    g_signal_emit_by_name(l->data, "get-live-objects", &info);
    const GValue *list = gst_structure_get_value(info, "live-objects-list");
    for (guint i = 0; i < gst_value_list_get_size(list); i++) {
      gchar *o = gst_structure_to_string(
          gst_value_get_structure(gst_value_list_get_value(list, i)));
      g_printerr("leak: %s\n", o);
      g_free(o);
      leaks++;
    }
    gst_structure_free(info);
  }
  g_list_free_full(tracers, gst_object_unref);
  printf("%s: %d leaked objects%s\n", leaks ? "FAIL" : "ok", leaks,
         traced ? "" : " (leaks tracer not active)");
  return leaks + (traced ? 0 : 1);
}

#endif
