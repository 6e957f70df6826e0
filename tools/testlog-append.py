#!/usr/bin/env python3
"""Appends one TAP result to a testlog in meson's JSON-lines format, for
tools/test-summary.py: testlog-append.py TESTLOG NAME TAP_LINE."""
import json
import sys

path, name, line = sys.argv[1:]
result = "OK" if line.startswith("ok") else "FAIL"
with open(path, "a", encoding="utf-8") as f:
    f.write(json.dumps({"name": name, "result": result, "stdout": line + "\n"}) + "\n")
