#!/usr/bin/env bash
# One entry point for newcomers and CI: installs what is missing (Debian 12,
# as root), builds, then runs the demo or the whole test suite.
#   tools/run.sh demo   apply the shipped model to the shipped input
#   tools/run.sh test   build plain and sanitized, run every test, print a total
#   tools/run.sh build  install and build only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  gcc meson ninja-build pkg-config python3 git clang-format cppcheck
  libglib2.0-dev libjson-glib-dev libsndfile1-dev
  # The ONNX reader: protoc-c generates its C from libonnx-dev's onnx.proto.
  libonnx-dev protobuf-c-compiler libprotobuf-c-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  # Not used by us, but on most GStreamer users' machines: the tests must
  # pass with them installed (they load only the plugins they use).
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  python3-torch python3-numpy
  clang libclang-rt-14-dev valgrind
)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# build DIR [meson options...]: configures once, rebuilds every time.
build() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --werror "$@" >/dev/null
  fi
  # Quiet when it works; the compiler's words when it does not.
  if ! ninja -C "$dir" >"$dir/ninja.log" 2>&1; then
    tail -n 40 "$dir/ninja.log"
    echo "== build failed in $dir (whole log: $dir/ninja.log)"
    return 1
  fi
}

run_demo() {
  local out=out/demo model=models/audio-up2x.safetensors input=samples/music-22k.flac
  mkdir -p "$out"
  echo "== the shipped audio model"
  ./build/tools/convtranspose info "$model"
  echo "== the CLI: $input -> $out/music-44k-cli.wav"
  ./build/tools/convtranspose apply "$model" "$input" "$out/music-44k-cli.wav"
  echo "== GStreamer pipelines with the shipped models"
  ./tools/demo.sh
}

run_tests() {
  local status=0
  # Plain optimised build, then the same suite under ASan + UBSan.
  build build-sanitize -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
  for dir in build build-sanitize; do
    echo "== meson test ($dir)"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C "$dir" --print-errorlogs --num-processes 2 >"$dir/test-output.txt" 2>&1 ||
      status=1
    tail -n 15 "$dir/test-output.txt" | sed -n '/^Ok:/,$p'
  done
  # Element tests under valgrind memcheck, then each fuzzer for a minute.
  echo "== valgrind (build)"
  ./tools/valgrind.sh build | grep -E "^(not )?ok" || status=1
  echo "== fuzz (build-fuzz, clang)"
  ./tools/fuzz.sh 60 | grep -E "^(not )?ok|Bail" || status=1
  python3 tools/test-summary.py build/meson-logs/testlog.json \
    build-sanitize/meson-logs/testlog.json build/valgrind/testlog.json \
    build-fuzz/testlog.json
  return $status
}

case "${1:-}" in
demo)
  install_missing
  build build
  run_demo
  ;;
test)
  install_missing
  build build
  run_tests
  ;;
build)
  install_missing
  build build
  ;;
*)
  echo "usage: $0 demo|test|build" >&2
  exit 2
  ;;
esac
