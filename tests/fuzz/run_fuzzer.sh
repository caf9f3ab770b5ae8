#!/bin/sh
# Fuzzes one target for GF_LONG_BUDGET seconds (default 60) from a scratch copy of its corpus,
# so new inputs do not land in the source tree. Uses tests/fuzz/<name>.dict when it exists. A crash is saved as crash-* in the build dir.
set -eu
exe=$1
corpus=$2
budget=${GF_LONG_BUDGET:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/ 2>/dev/null || true
# A dictionary tests/fuzz/<name>.dict is used when present.
dict="$(dirname "$corpus")/../$(basename "$corpus").dict"
if [ -f "$dict" ]; then
  set -- -dict="$dict"
else
  set --
fi
# GF_FUZZ_RUNS=N makes the run reproducible: a fixed seed and N inputs (the budget stays as a cap),
# so a smoke run that passed once passes again on the same code (make test uses it; CI must not
# fail on the luck of a random seed). Without it, fuzz for the time budget from a random seed.
if [ -n "${GF_FUZZ_RUNS:-}" ]; then
  set -- -seed=1 -runs="$GF_FUZZ_RUNS" "$@"
fi
# An input that runs more than 30 s is reported as a hang (a finding), not waited for.
exec "$exe" -max_total_time="$budget" -timeout=30 -print_final_stats=1 "$@" "$work"
