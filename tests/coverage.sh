#!/bin/sh
# Line and branch coverage per component from a -Db_coverage=true build whose tests have run:
# one gcovr pass writes a per-file JSON summary, summed here per top-level directory, plus the
# files issue 7 holds to a branch target (audit writer/verifier, key check). Usage: coverage.sh BUILD
set -eu
build=${1:-build-cov}
out="$build/coverage-summary.json"
gcovr -r . --object-directory "$build" --exclude 'tests/' --exclude 'subprojects/' \
  --exclude-unreachable-branches --json-summary "$out" >/dev/null
python3 - "$out" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
comp = {}
def add(key, f):
    c = comp.setdefault(key, [0, 0, 0, 0])
    c[0] += f["line_covered"]; c[1] += f["line_total"]
    c[2] += f["branch_covered"]; c[3] += f["branch_total"]
for f in files:
    add(f["filename"].split("/")[0], f)
    add("(all)", f)
for f in files:
    if f["filename"] in ("audit/writer.c", "audit/verify.c", "audit/chain.c", "audit/recover.c",
                         "gateway/apikey.c"):
        add(f["filename"], f)
pct = lambda a, b: 100.0 * a / b if b else 100.0
print("| component | lines | branches |")
print("|---|---|---|")
for k in sorted(comp, key=lambda k: (k == "(all)", "/" in k, k)):
    l, lt, b, bt = comp[k]
    print("| %s | %.1f%% (%d/%d) | %.1f%% (%d/%d) |" % (k, pct(l, lt), l, lt, pct(b, bt), b, bt))
PY
