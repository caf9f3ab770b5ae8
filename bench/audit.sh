#!/bin/sh
# bench/audit.sh — audit writer throughput with group commit (records/s, each waited for) and
# verify speed (MB/s), in the three durability modes. Targets: 20,000 records/s, 100 MB/s.
# Usage: bench/audit.sh [N]   (N records per run, default 100000). Builds build-rel if needed.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build-rel}
n=${1:-100000}
if [ ! -x "$build/bench/audit_bench" ]; then
  [ -f "$build/build.ninja" ] || meson setup "$build" "$here" --buildtype=release >/dev/null
  ninja -C "$build" bench/audit_bench >/dev/null
fi
tmp=$(mktemp -d /tmp/gf-audit-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for mode in fsync write none; do
  echo "== durability $mode, $n records"
  "$build/bench/audit_bench" "$tmp/$mode/audit" "$n" "$mode" 2
done
