#!/usr/bin/env python3
"""Totals the checks of meson test logs: every TAP line counts, and a test
program that failed without reporting a failing check (a crash, a timeout, a
sanitizer abort) counts as one failure. Prints `N passed, N failed`."""
import json
import re
import sys

passed = failed = 0
for path in sys.argv[1:]:
    try:
        log = open(path, encoding="utf-8")
    except OSError as error:  # a stage that never ran is a failure too
        print(f"{path}: {error.strerror}", file=sys.stderr)
        failed += 1
        continue
    with log:
        for line in log:
            test = json.loads(line)
            out = test.get("stdout") or ""
            ok = len(re.findall(r"^ok \d+", out, re.M))
            not_ok = len(re.findall(r"^not ok \d+", out, re.M))
            # gst-check (libcheck) summary: "Checks: 5, Failures: 0, Errors: 0"
            for m in re.finditer(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", out):
                total, fails, errors = map(int, m.groups())
                ok += total - fails - errors
                not_ok += fails + errors
            if test.get("result") not in ("OK", "EXPECTEDFAIL") and not_ok == 0:
                not_ok = 1
                print(f"{path}: {test.get('name')}: {test.get('result')}", file=sys.stderr)
            passed += ok
            failed += not_ok
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
