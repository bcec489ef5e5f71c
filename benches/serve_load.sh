#!/usr/bin/env bash
# Load test of `faultline serve` (issue 8): wrk on loopback, POST /v1/failures with the lines
# of the standard 10k-failure stream, DURATION seconds (default 60), CONNS connections
# (default 256). Prints wrk's latency distribution, non-2xx counts, the server's RSS at start
# and end, and the history's Parquet parts at the end. Needs a release build and wrk (Debian:
# apt-get install wrk). SERVE_ARGS adds arguments to `faultline serve`, e.g.
# SERVE_ARGS="--flush-interval 1 --compact-interval 10" for compactions under load; FRESH=1
# renames the stream's tasks on every pass, so that each request is a new failure to decide
# and log (without it, the stream's repeats are mostly answered from what was decided).
#
#   cargo build --release && benches/serve_load.sh [DURATION] [CONNS] [WRK_THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-60}"
CONNS="${2:-256}"
THREADS="${3:-1}"
BIN="${FAULTLINE_BIN:-${CARGO_TARGET_DIR:-target}/release/faultline}"
STREAM="${STREAM:-../shared/data/bench/stream_10k.jsonl}"
[ -f "$STREAM" ] || { echo "skip: $STREAM not found"; exit 0; }
command -v wrk >/dev/null || { echo "skip: wrk not installed (apt-get install wrk)"; exit 0; }
DATA="$(mktemp -d)"
PORT="${PORT:-18181}"
"$BIN" serve --data "$DATA" --addr "127.0.0.1:$PORT" ${MODEL:+--model "$MODEL"} ${SERVE_ARGS:-} > "$DATA.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$PID/status"; }
echo "server pid $PID, RSS at start: $(rss)"
# Warm-up (WARMUP seconds, default 30): the engine keeps the last 64 actions of every task
# (history_per_task), so RSS grows until the stream's 4,444 tasks have filled theirs; the
# measured run starts after that.
wrk -t1 -c64 -d"${WARMUP:-30}s" -s benches/serve_load.lua "http://127.0.0.1:$PORT" -- "$STREAM" "${TOKEN:-}" ${FRESH:+fresh} > /dev/null
echo "RSS after warm-up: $(rss)"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s benches/serve_load.lua "http://127.0.0.1:$PORT" -- "$STREAM" "${TOKEN:-}" ${FRESH:+fresh} &
WRK=$!
for _ in $(seq $((DURATION / 10))); do sleep 10; echo "RSS: $(rss)"; done
wait $WRK
echo "RSS at end: $(rss)"
curl -s "127.0.0.1:$PORT/v1/stats" | head -c 400; echo
curl -s "127.0.0.1:$PORT/metrics" | grep -E '^faultline_(compaction|flush_failures)' || true
echo "parquet parts before the stop: $(find "$DATA/history" -name '*.parquet' | wc -l)"
kill -TERM $PID; wait $PID || true
echo "history: $(du -sh "$DATA" | cut -f1)"
