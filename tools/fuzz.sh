#!/usr/bin/env bash
# Fuzzes the parsers of untrusted files with libFuzzer: the safetensors
# loader (fuzz-model), the ONNX reader (fuzz-onnx) and the .npy parser
# (fuzz-npy).
#   tools/fuzz.sh [SECONDS]   run each target SECONDS (default 60), one at a time
# Builds them with clang, ASan and UBSan in build-fuzz (-Dfuzzing=true), starts
# from the seed corpora of tests/fuzz and the corpus kept in build-fuzz/corpus
# by earlier runs, and prints one TAP line per target:
#   ok 1 - fuzz-model: 123456 runs in 60 s, no crash
# A crash, a sanitizer report, a timeout or an out-of-memory input is
# "not ok", with the input saved under build-fuzz/artifacts/ (replay it with
# build-fuzz/tests/fuzz/fuzz-NAME FILE; make it a regression input by copying
# it to tests/fuzz/regressions/NAME/). The TAP is also written to
# build-fuzz/testlog.json in meson's format for tools/test-summary.py.
# Extra libFuzzer flags: FUZZ_ARGS (e.g. "-fork=1 -ignore_crashes=1" to go on
# past a crash). Exit status 1 if any target failed.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
dir=build-fuzz
targets=(model onnx npy)

if [ ! -f "$dir/build.ninja" ]; then
  # All code gets libFuzzer's coverage instrumentation (fuzzer-no-link); the
  # targets alone link libFuzzer (-fsanitize=fuzzer, tests/fuzz/meson.build).
  # No --werror: clang warns where gcc does not, and this build only fuzzes.
  CC=clang meson setup "$dir" -Dfuzzing=true -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link \
    >"$dir.setup.log" 2>&1 || {
    echo "Bail out! meson setup $dir failed (clang and libclang-rt-14-dev installed?):"
    sed 's/^/# /' "$dir.setup.log"
    exit 1
  }
  rm -f "$dir.setup.log"
fi
if ! ninja -C "$dir" "${targets[@]/#/tests/fuzz/fuzz-}" >"$dir/fuzz-build.log" 2>&1; then
  echo "Bail out! building the fuzz targets failed:"
  tail -n 30 "$dir/fuzz-build.log" | sed 's/^/# /'
  exit 1
fi

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p "$dir/artifacts"
testlog=$dir/testlog.json
: >"$testlog"
status=0
n=0
echo "1..${#targets[@]}"
for name in "${targets[@]}"; do
  n=$((n + 1))
  corpus=$dir/corpus/$name
  log=$dir/fuzz-$name.log
  mkdir -p "$corpus"
  before=$(ls "$dir/artifacts" | wc -l)
  start=$(date +%s)
  # -timeout: one input may take 10 s; -rss_limit_mb: 2 GB. The outer
  # timeout only guards against a hung fuzzer.
  # shellcheck disable=SC2086
  timeout $((seconds + 300)) "$dir/tests/fuzz/fuzz-$name" -max_total_time="$seconds" \
    -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -dict="tests/fuzz/$name.dict" -artifact_prefix="$dir/artifacts/$name-" \
    ${FUZZ_ARGS:-} "$corpus" "tests/fuzz/corpus-$name" >"$log" 2>&1
  rc=$?
  elapsed=$(($(date +%s) - start))
  # Executions: the final stats, else the last status line ("#1234 ...").
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
  [ -n "$runs" ] || runs=0
  new=$(($(ls "$dir/artifacts" | wc -l) - before))
  if [ "$rc" -eq 0 ] && [ "$new" -eq 0 ]; then
    line="ok $n - fuzz-$name: $runs runs in $elapsed s, no crash"
  else
    status=1
    artifact=$(ls -t "$dir/artifacts" | head -n 1)
    line="not ok $n - fuzz-$name: failed after $runs runs in $elapsed s (exit $rc)"
    [ "$new" -gt 0 ] && line="$line; input: $dir/artifacts/$artifact"
    line="$line; log: $log"
  fi
  echo "$line"
  if [ "$rc" -ne 0 ]; then
    grep -m 10 -E 'property violated|ERROR:|SUMMARY:|runtime error|#[0-9]+ 0x.* in .*/(model|plugin|tools|kernels|tests|elements)/' \
      "$log" | sed 's/^/# /'
  fi
  python3 tools/testlog-append.py "$testlog" "fuzz-$name" "$line"
done
exit $status
