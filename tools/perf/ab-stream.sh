#!/usr/bin/env bash
# Compares versions of kernels/stream.c on one bench case, streamed, in one
# process that runs them in turn (see ab-stream.c), beside the one-shot.
#
#   tools/perf/ab-stream.sh CASE THREADS ROUNDS REV [REV...]
#
# CASE: K1 K3 K4 K5 K7. REV: a git revision, "work" for the file as it is
# in the work tree, or the path of a variant of it. Only stream.c differs
# between versions; the rest (micro-kernels, pool) is that of build/ (or
# $CT_BUILD_DIR), which must be built. Example:
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
flags=(-std=c11 -O3 -DNDEBUG -D_GNU_SOURCE -pthread
  -I"$root" -I"$root/kernels")
variants="" objects=()
i=0
for rev in "$@"; do
  name=v$i
  if [ "$rev" = work ]; then
    cp "$root/kernels/stream.c" "$tmp/$name.c"
  elif [ -f "$rev" ]; then
    cp "$rev" "$tmp/$name.c"
  else
    git -C "$root" show "$rev:kernels/stream.c" >"$tmp/$name.c"
  fi
  cc "${flags[@]}" -c "$tmp/$name.c" -o "$tmp/$name-plain.o"
  nm --defined-only -g "$tmp/$name-plain.o" | awk -v p="$name" '{ print $3, p "_" $3 }' \
    >"$tmp/$name.map"
  objcopy --redefine-syms="$tmp/$name.map" "$tmp/$name-plain.o" "$tmp/$name.o"
  echo "$name: $rev"
  variants="$variants X($name)"
  objects+=("$tmp/$name.o")
  i=$((i + 1))
done
cc "${flags[@]}" "-DCT_AB_VARIANTS=$variants" "$root/tools/perf/ab-stream.c" \
  "${objects[@]}" "${CT_BUILD_DIR:-$root/build}/kernels/libctkernels.a" -lm -o "$tmp/ab-stream"
"$tmp/ab-stream" "$case_name" "$threads" "$rounds"
