#!/usr/bin/env bash
# tools/perf/ab-stream.sh still builds the kernels' versions and times two
# (the work tree's twice) on a video and an audio case, streamed and
# one-shot, as TAP.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=0
for case_name in K5 K1; do
  n=$((n + 1))
  output=$("$root/tools/perf/ab-stream.sh" "$case_name" 2 3 work work 2>&1)
  timed=$(grep -c "^$case_name .* ms: min [0-9.]*  p25 [0-9.]*  median [0-9.]*$" <<<"$output")
  if [ "$timed" = 4 ]; then
    echo "ok $n - ab-stream.sh $case_name: two versions timed, streamed and one-shot"
  else
    echo "not ok $n - ab-stream.sh $case_name"
    sed 's/^/# /' <<<"$output"
  fi
done
echo "1..$n"
