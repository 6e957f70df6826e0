#!/usr/bin/env bash
# Benchmark our kernels against PyTorch and ONNX Runtime on the cases of
# bench-cases.md, in one run on this machine, and write the results into
# docs/performance.md and docs/img/performance.svg.
#
#   tools/perf/compare.sh [--cases K1_audio_fir2x,...] [--budget SECONDS] [--no-report]
#
# --budget: seconds of timed repeats per case and thread count for PyTorch and
# ONNX Runtime (default 1.5, as our bench uses).
#
# Installs what it needs (python3-torch and nodejs/npm with apt-get, the npm
# package onnxruntime-node in tools/perf/node_modules, and Debian's OpenBLAS
# unpacked into tools/perf/.cache without making it the system BLAS), builds
# build/ if needed, then runs, one after the other:
#   our bench   build/tools/convtranspose bench --json, all cores and 1 thread
#   PyTorch     tools/perf/bench_torch.py (out of the box, and at its best)
#   ORT         tools/perf/bench_ort.mjs (layers exported by torch.onnx.export)
# Raw JSON goes to tools/perf/out/ (not committed). Takes about 5-10 minutes on
# 2 cores. Exits non-zero if a stage failed; the report is written anyway,
# with n/a for what is missing.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
perf=$root/tools/perf
out=$perf/out
cases=""
budget=1.5
report=1
while [ $# -gt 0 ]; do
  case $1 in
    --cases) cases=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --no-report) report=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case_args=() ours_case_args=()
[ -n "$cases" ] && case_args=(--cases "$cases") ours_case_args=(--case "$cases")

failed=()
log() { printf '== %s: %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAILED: $*"; failed+=("$1"); }

# --- what the run needs --------------------------------------------------------
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then apt-get update -qq && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
PY=/usr/bin/python3
if ! $PY -c 'import torch' 2>/dev/null; then
  log "installing python3-torch"
  apt_install python3-torch || fail "python3-torch install"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing nodejs and npm"
  apt_install nodejs npm || fail "nodejs install"
fi
ort_pkg=$perf/node_modules/onnxruntime-node
if ! grep -q '"version": "1.30.0"' "$ort_pkg/package.json" 2>/dev/null; then
  log "installing onnxruntime-node 1.30.0 (npm, --ignore-scripts)"
  # Its install script downloads extra binaries from the network (not
  # reachable here); the package itself ships the linux-x64 CPU build.
  (cd "$perf" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error) ||
    fail "onnxruntime-node install"
fi
ls "$ort_pkg"/bin/napi-v*/linux/x64/libonnxruntime.so* >/dev/null 2>&1 ||
  fail "onnxruntime-node has no linux-x64 binary"

# OpenBLAS for PyTorch at its best. Installing libopenblas0-pthread would make
# it the system's libblas.so.3 for every program (Debian's alternatives), so
# the package is only unpacked here and put in front of PyTorch alone.
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ ! -e "$openblas/libblas.so.3" ]; then
  openblas=$perf/.cache/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread
  if [ ! -e "$openblas/libblas.so.3" ]; then
    log "unpacking Debian's libopenblas0-pthread into tools/perf/.cache"
    dpkg -s libgfortran5 >/dev/null 2>&1 || apt_install libgfortran5 || true
    deb_dir=$(mktemp -d)
    # apt-get download runs as _apt: the directory must be writable to it.
    if (cd "$deb_dir" && chmod 777 . && apt-get download -qq libopenblas0-pthread) &&
      mkdir -p "$perf/.cache/openblas" &&
      dpkg -x "$deb_dir"/libopenblas0-pthread_*.deb "$perf/.cache/openblas"; then
      :
    else
      fail "OpenBLAS download"
      openblas=""
    fi
    rm -rf "$deb_dir"
  fi
fi

if [ ! -x "$root/build/tools/convtranspose" ]; then
  log "configuring build/"
  meson setup "$root/build" --buildtype=release >/dev/null || fail "meson setup"
fi
log "building"
ninja -C "$root/build" >/dev/null || fail "build"

# --- the run --------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out"
onnx_dir=$(mktemp -d)
trap 'rm -rf "$onnx_dir"' EXIT
cores=$(nproc)
{
  echo "{"
  echo "\"date\": \"$(date -u '+%Y-%m-%d %H:%M UTC')\","
  echo "\"cpu_model\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -1)\","
  echo "\"cores\": $cores,"
  echo "\"kernel\": \"$(uname -r)\","
  flags=$(lscpu | sed -n 's/^Flags: *//p')
  echo "\"flags\": \"$flags\","
  echo "\"simd\": \"$(tr ' ' '\n' <<<"$flags" | grep -E '^(sse4_2|avx|avx2|fma|avx512[a-z_0-9]*)$' | tr '\n' ' ' | sed 's/ $//')\","
  echo "\"node\": \"$(node --version 2>/dev/null)\","
  echo "\"commit\": \"$(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet HEAD -- kernels tools/bench.c 2>/dev/null || echo ' (with local changes)')\","
  echo "\"ours_build\": \"$(cd "$root/build" && meson introspect --buildoptions 2>/dev/null | $PY -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print("buildtype", o.get("buildtype"))' 2>/dev/null)\","
  echo "\"load_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
} >"$out/meta.part"

log "our bench, $cores threads"
timeout 600 "$root/build/tools/convtranspose" bench --json --threads "$cores" "${ours_case_args[@]}" \
  >"$out/ours-$cores.json" || fail "our bench ($cores threads)"
if [ "$cores" -gt 1 ]; then
  log "our bench, 1 thread"
  timeout 600 "$root/build/tools/convtranspose" bench --json --threads 1 "${ours_case_args[@]}" \
    >"$out/ours-1.json" || fail "our bench (1 thread)"
fi

torch_threads=1
[ "$cores" -gt 1 ] && torch_threads=1,2
ob_env=()
[ -n "$openblas" ] && ob_env=(LD_LIBRARY_PATH="$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
log "exporting the cases to ONNX"
timeout 300 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${ob_env[@]}" \
  $PY "$perf/bench_torch.py" --export-onnx "$onnx_dir" "${case_args[@]}" ||
  fail "ONNX export"

log "PyTorch"
timeout 900 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PY "$perf/bench_torch.py" \
  --threads "$torch_threads" --budget "$budget" ${openblas:+--openblas "$openblas"} \
  --output "$out/torch.json" "${case_args[@]}" || fail "PyTorch bench"

log "ONNX Runtime"
timeout 900 node "$perf/bench_ort.mjs" --dir "$onnx_dir" --threads "$torch_threads" --budget "$budget" \
  --output "$out/ort.json" "${case_args[@]}" || fail "ONNX Runtime bench"

{
  cat "$out/meta.part"
  echo "\"load_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\""
  echo "}"
} >"$out/meta.json"
rm -f "$out/meta.part"

if [ $report = 1 ]; then
  log "report"
  $PY "$perf/make_report.py" --dir "$out" || fail "report"
fi
if [ ${#failed[@]} -gt 0 ]; then
  log "done with failures: ${failed[*]}"
  exit 1
fi
log "done: docs/performance.md, docs/img/performance.svg (raw JSON in tools/perf/out/)"
