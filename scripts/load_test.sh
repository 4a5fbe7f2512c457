#!/usr/bin/env bash
# Load test for `shiren serve` on loopback: 64 connections POSTing 五绝 requests
# (acrostic 春夏秋冬) for a bounded time, with wrk from Debian. Prints wrk's
# latency distribution (p50 … p99), requests/s and any errors; exits non-zero
# when any request failed.
#
#   scripts/load_test.sh                      # release build, shipped model, 10 s
#   SHIREN_MODEL=DIR DURATION=30s scripts/load_test.sh
#   SHIREN_URL=http://127.0.0.1:8080 scripts/load_test.sh   # a running server
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "load_test: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}

command -v wrk >/dev/null || {
  say "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ -n "${SHIREN_URL:-}" ]; then
  url=${SHIREN_URL%/}
else
  cargo build --quiet --release --bin shiren
  # --concurrent bounds the poems written at once; more than the cores only adds switching.
  target/release/shiren serve --addr 127.0.0.1:0 ${SHIREN_MODEL:+--model "$SHIREN_MODEL"} \
    ${SERVE_ARGS:-} >"$tmp/out" 2>"$tmp/err" &
  server_pid=$!
  for _ in $(seq 1 600); do
    grep -q '^listening on ' "$tmp/out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || fail "shiren serve exited: $(tail -n 3 "$tmp/err" | tr '\n' ' ')"
    sleep 0.1
  done
  url=$(sed -n 's|^listening on \(http://[^/]*\)/$|\1|p' "$tmp/out")
  [ -n "$url" ] || fail "shiren serve printed no address within 60 s"
fi

# Warm up (page cache, allocator), then measure.
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s scripts/load_test.lua "$url" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s scripts/load_test.lua "$url" | tee "$tmp/wrk"
if grep -qE 'Non-2xx|Socket errors' "$tmp/wrk"; then
  fail "some requests failed (see above)"
fi
say "cores: $(nproc); $(grep -E '^ +99%' "$tmp/wrk" | awk '{print "p99 " $2}'); $(grep Requests/sec "$tmp/wrk" | tr -s ' ')"
