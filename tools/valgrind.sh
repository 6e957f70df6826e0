#!/usr/bin/env bash
# Runs the element tests under valgrind's memcheck and prints one TAP line
# per program:
#   tools/valgrind.sh [BUILD_DIR]        (default: build)
# Programs: BUILD_DIR/tests/elements/test-audio, test-video, test-bad-input,
# test-events and test-swap, and tests/stress/test-stress, those that exist
# (test-swap without its timed storm and burst: memcheck is 20-50x slower).
# Each runs
# in one process (CK_FORK=no, GST_REGISTRY_FORK=no, so the plugin is loaded
# under valgrind too) with CT_TEST_QUICK=1 (an hour of audio shrinks to a
# minute), the leaks tracer, GLib's suppressions and tests/valgrind/gst.supp,
# and, as in meson test, with its own registry and only the system plugins
# it uses (tests/elements/with-plugins.sh: nothing else is dlopened).
# A program is "ok" when memcheck reports no error (invalid access, use of
# uninitialised memory, definite leak) and its own checks pass. Logs:
# BUILD_DIR/valgrind/NAME.log. The TAP also goes to BUILD_DIR/valgrind/
# testlog.json in meson's format for tools/test-summary.py. Exit status 1 if
# any program failed.
set -uo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
out=$build/valgrind
mkdir -p "$out"
testlog=$out/testlog.json
: >"$testlog"

if ! command -v valgrind >/dev/null; then
  echo "Bail out! valgrind is not installed (apt-get install valgrind)"
  exit 1
fi
supps=(--suppressions=tests/valgrind/gst.supp)
[ -f /usr/share/glib-2.0/valgrind/glib.supp ] &&
  supps+=(--suppressions=/usr/share/glib-2.0/valgrind/glib.supp)

# NAME PATH [GST_CHECKS]: test-bad-input's isolated checks (absurd output,
# huge layers, unreadable files) fork children that are killed or leave on
# purpose, which memcheck would count; the rest of it runs.
programs=(
  "test-audio tests/elements/test-audio"
  "test-video tests/elements/test-video"
  "test-bad-input tests/elements/test-bad-input test_audio_partial_frame,test_audio_empty_buffers,test_video_short_buffer,test_audio_planar_meta_padding,test_video_meta_strides,test_video_wide_frame,test_audio_nan_inf,test_video_nan_inf,test_model_file_changes_on_disk,test_channels_change_midstream,test_channels_change_pipeline"
  "test-stress tests/stress/test-stress"
  "test-events tests/elements/test-events"
  "test-swap tests/elements/test-swap test_unreachable_model_kept_out,test_same_model_is_no_swap"
)
present=()
for p in "${programs[@]}"; do
  read -r name path checks <<<"$p"
  [ -x "$build/$path" ] && present+=("$p")
done

status=0
n=0
echo "1..${#present[@]}"
for p in "${present[@]}"; do
  read -r name path checks <<<"$p"
  n=$((n + 1))
  log=$out/$name.log
  start=$(date +%s)
  env GST_PLUGIN_PATH_1_0="$PWD/$build" \
    GST_REGISTRY_FORK=no CK_FORK=no CK_DEFAULT_TIMEOUT=0 CT_TEST_QUICK=1 \
    GST_CHECKS="${checks:-}" GST_CHECKS_NO_COLOR=1 \
    CT_GOLDEN_DIR="$PWD/tests/golden" G_DEBUG=gc-friendly G_SLICE=always-malloc \
    GST_TRACERS='leaks(filters="GstElement,GstPad,GstBus,GstBufferPool,GstBuffer,GstMemory,GstEvent,GstMessage,GstQuery")' \
    tests/elements/with-plugins.sh "$out/gst-$name" "$name" \
    valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
    --error-exitcode=1 --num-callers=40 --child-silent-after-fork=yes \
    "${supps[@]}" --log-file="$log" "$build/$path" >"$log.out" 2>&1
  rc=$?
  elapsed=$(($(date +%s) - start))
  errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
  lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n 1 | tr -d ,)
  checks_line=$(grep -E '^[0-9]+%: Checks' "$log.out" | tail -n 1)
  summary="${errors:-?} memcheck errors, ${lost:-0} bytes definitely lost; ${checks_line:-no check summary}; $elapsed s"
  if [ "$rc" -eq 0 ] && [ "${errors:-1}" -eq 0 ]; then
    line="ok $n - valgrind $name: $summary"
  else
    status=1
    line="not ok $n - valgrind $name: $summary (exit $rc; log $log)"
  fi
  echo "$line"
  if [ "$rc" -ne 0 ]; then
    grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' "$log" |
      head -n 5 | sed 's/^/# /'
    grep -E ':[FE]:|^error: ' "$log.out" | head -n 5 | sed 's/^/# /'
  fi
  python3 tools/testlog-append.py "$testlog" "valgrind-$name" "$line"
done
exit $status
