"""Count test results from meson's testlog.json: each Check case counts once
(from Check's "Checks: N, Failures: F, Errors: E" summary), every other test
(end-to-end scripts) once. Prints "<passed> <failed>"."""
import json
import re
import sys

passed = failed = 0
summary = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        ok = t.get("result") == "OK"
        found = summary.findall(t.get("stdout", "") or "")
        if found:
            for checks, fails, errors in found:
                bad = int(fails) + int(errors)
                passed += int(checks) - bad
                failed += bad
            if not ok and all(int(f) + int(e) == 0 for _, f, e in found):
                failed += 1  # crashed or leaked after its cases passed
        elif ok:
            passed += 1
        elif t.get("result") != "SKIP":
            failed += 1
print(passed, failed)
