#!/usr/bin/env bash
# Compares versions of the kernels on one bench case, streamed and one-shot,
# in one process that runs them in turn (see ab-stream.c).
#
#   tools/perf/ab-stream.sh CASE THREADS ROUNDS REV [REV...]
#
# CASE: K1 ... K8. REV: a git revision, "work" for the work tree, or the
# path of a directory holding a kernels/ tree. Each version is the whole
# kernels/ of that revision (layers, plans, streams, micro-kernels, pool),
# compiled into one object whose symbols are prefixed v0_, v1_, ...
# Example:
#   tools/perf/ab-stream.sh K7 2 40 HEAD~1 work
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -lt 4 ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
fi
case_name=$1 threads=$2 rounds=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(-std=c11 -O3 -DNDEBUG -D_GNU_SOURCE -pthread -Wno-unused-parameter)
variants="" objects=()
i=0
for rev in "$@"; do
  name=v$i
  dir=$tmp/$name
  mkdir -p "$dir"
  if [ "$rev" = work ]; then
    cp -r "$root/kernels" "$dir/"
  elif [ -d "$rev/kernels" ]; then
    cp -r "$rev/kernels" "$dir/"
  else
    git -C "$root" archive "$rev" kernels | tar -x -C "$dir"
  fi
  objs=()
  for src in "$dir"/kernels/*.c; do
    level=()
    case $(basename "$src") in
    dsp-avx2.c) level=(-mavx2 -mfma) ;;
    dsp-avx512.c) level=(-mavx512f -mfma) ;;
    dsp-avx512vbmi.c) level=(-mavx512f -mavx512bw -mavx512vbmi -mfma) ;;
    esac
    obj=${src%.c}.o
    cc "${flags[@]}" "${level[@]}" -DCT_HAVE_X86_LEVELS -I"$dir" -I"$dir/kernels" \
      -c "$src" -o "$obj"
    objs+=("$obj")
  done
  ld -r "${objs[@]}" -o "$dir/plain.o"
  nm --defined-only -g "$dir/plain.o" | awk -v p="$name" '{ print $3, p "_" $3 }' \
    >"$dir/syms.map"
  objcopy --redefine-syms="$dir/syms.map" "$dir/plain.o" "$tmp/$name.o"
  echo "$name: $rev"
  variants="$variants X($name)"
  objects+=("$tmp/$name.o")
  i=$((i + 1))
done
cc "${flags[@]}" -I"$root" "-DCT_AB_VARIANTS=$variants" "$root/tools/perf/ab-stream.c" \
  "$root/kernels/geometry.c" "${objects[@]}" -lm -o "$tmp/ab-stream"
"$tmp/ab-stream" "$case_name" "$threads" "$rounds"
