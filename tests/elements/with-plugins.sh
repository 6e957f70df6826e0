#!/bin/sh
# Runs a GStreamer test program with only the system plugins it uses:
#   tests/elements/with-plugins.sh WORKDIR PROGRAM COMMAND [ARGS...]
# PROGRAM (test-audio, test-video, test-bad-input, test-stress, test-events,
# test-swap) picks the list below. WORKDIR/plugins is made afresh with
# symlinks to just those plugins of GStreamer's own directory (CT_GST_SYSTEM_PLUGINS, else
# pkg-config's pluginsdir) and becomes the system plugin path; WORKDIR/
# registry.bin is the program's own registry. The plugin under test comes
# from GST_PLUGIN_PATH(_1_0), set by the caller. So nothing else installed
# (gstreamer1.0-libav, plugins-bad, -ugly...) is loaded: their
# registration is not ours to leak-check. A needed plugin that is missing
# is an error naming its package, and the test fails.
set -eu

if [ $# -lt 3 ]; then
  echo "usage: $0 WORKDIR PROGRAM COMMAND [ARGS...]" >&2
  exit 2
fi
work=$1
program=$2
shift 2

# coretracers: the leaks tracer (GST_TRACERS) that every program checks.
# Elements: those of the programs' gst_parse_launch pipelines.
case $program in
test-audio) plugins="coretracers coreelements wavparse audioconvert wavenc" ;;
test-video) plugins="coretracers" ;;
test-bad-input) plugins="coretracers coreelements audiotestsrc audioconvert" ;;
test-stress) plugins="coretracers coreelements audiotestsrc" ;;
test-swap) plugins="coretracers coreelements audiotestsrc audioconvert" ;;
test-events)
  plugins="coretracers coreelements audiotestsrc audioconvert wavparse videotestsrc videoconvertscale"
  ;;
*)
  echo "$0: no plugin list for '$program'" >&2
  exit 2
  ;;
esac

package_of() {
  case $1 in
  coretracers | coreelements) echo libgstreamer1.0-0 ;;
  audioconvert | audiotestsrc | videotestsrc | videoconvertscale) echo gstreamer1.0-plugins-base ;;
  *) echo gstreamer1.0-plugins-good ;;
  esac
}

system=${CT_GST_SYSTEM_PLUGINS:-$(pkg-config --variable=pluginsdir gstreamer-1.0)}
rm -rf "$work/plugins"
mkdir -p "$work/plugins"
missing=0
for p in $plugins; do
  file=$system/libgst$p.so
  if [ -f "$file" ]; then
    ln -s "$file" "$work/plugins/"
  else
    echo "error: $program needs the GStreamer plugin '$p' ($file), from the package" \
      "$(package_of "$p"); it is missing" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ] || exit 1

export GST_PLUGIN_SYSTEM_PATH_1_0="$work/plugins"
export GST_REGISTRY_1_0="$work/registry.bin"
exec "$@"
