#!/usr/bin/env bash
# run.sh — installs the official `openai` npm package into WORKDIR (the build dir) and runs
# openai_test.mjs through a real `gardefou serve` in front of the mock upstream.
# usage: run.sh GARDEFOU MOCK_UPSTREAM WORKDIR. Exit 77 (skip) only when npm is missing or the
# registry cannot be reached.
set -u
gardefou=$1 mock=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "SKIP: npm/node not installed (apt-get install nodejs npm)" >&2
  exit 77
fi
mkdir -p "$work"
cp "$here/package.json" "$here/openai_test.mjs" "$work/"
if [ ! -d "$work/node_modules/openai" ]; then
  if ! (cd "$work" && npm install --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
    if grep -qiE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network" "$work/npm.log"; then
      echo "SKIP: the npm registry is unreachable:" >&2
      tail -5 "$work/npm.log" >&2
      exit 77
    fi
    echo "npm install failed:" >&2
    cat "$work/npm.log" >&2
    exit 1
  fi
fi
tmp=$(mktemp -d)
cleanup() {
  [ -n "${gpid:-}" ] && kill "$gpid" 2>/dev/null && wait "$gpid" 2>/dev/null
  [ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null && wait "$mpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
"$mock" --port 0 --host 127.0.0.1 >"$tmp/mock.out" 2>"$tmp/mock.err" &
mpid=$!
for _ in $(seq 100); do grep -q '^port=' "$tmp/mock.out" && break; sleep 0.05; done
mport=$(sed -n 's/^port=//p' "$tmp/mock.out")
[ -n "$mport" ] || { echo "mock upstream did not start" >&2; cat "$tmp/mock.err" >&2; exit 1; }
"$gardefou" serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$mport" \
  --data-dir "$tmp/data" --log-level warn >"$tmp/gw.out" 2>"$tmp/gw.err" &
gpid=$!
for _ in $(seq 200); do grep -q 'listening on' "$tmp/gw.out" && break; sleep 0.05; done
gport=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/gw.out")
if [ -z "$gport" ]; then
  if grep -q "no upstream engine" "$tmp/gw.err"; then
    echo "SKIP: this build has no upstream engine yet" >&2
    exit 77
  fi
  echo "gardefou did not start:" >&2
  cat "$tmp/gw.err" >&2
  exit 1
fi
# an API key, made through the admin API as an operator would
for _ in $(seq 100); do grep -q 'admin API on' "$tmp/gw.out" && break; sleep 0.05; done
admin=$(sed -n 's/.*admin API on \(http[^ ]*\).*/\1/p' "$tmp/gw.out")
if [ -n "$admin" ]; then
  GF_TEST_API_KEY=$("$gardefou" keys create --server "$admin" --data-dir "$tmp/data" --name node) ||
    { echo "gardefou keys create failed" >&2; exit 1; }
  export GF_TEST_API_KEY
fi
(cd "$work" && node openai_test.mjs "http://127.0.0.1:$gport/v1")
rc=$?
[ $rc -ne 0 ] && tail -20 "$tmp/gw.err" >&2
exit $rc
