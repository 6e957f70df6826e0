#!/usr/bin/env bash
# Style and static checks, as TAP lines for the test totals:
# clang-format (the repository's .clang-format) and cppcheck.
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t sources < <(git ls-files '*.c' '*.h')
n=0
unformatted=$(for f in "${sources[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"
done)
n=$((n + 1))
if [ -z "$unformatted" ]; then
  echo "ok $n - clang-format: ${#sources[@]} files formatted"
else
  echo "not ok $n - clang-format: not formatted: $(echo $unformatted)"
fi
report=$(cppcheck --enable=warning,performance,portability --quiet --std=c11 \
  --library=tools/cppcheck.cfg -I. --suppress=missingIncludeSystem \
  --suppress=unknownMacro:kernels/dsp-impl.h --suppress=unknownMacro:kernels/convert-impl.h \
  --suppress=unknownMacro:kernels/convert-x86.h \
  --error-exitcode=1 "${sources[@]}" 2>&1)
status=$?
n=$((n + 1))
if [ $status -eq 0 ] && [ -z "$report" ]; then
  echo "ok $n - cppcheck: no warnings in ${#sources[@]} files"
else
  echo "not ok $n - cppcheck:"
  echo "$report" | sed 's/^/# /'
fi
echo "1..$n"
