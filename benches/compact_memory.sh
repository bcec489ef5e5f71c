#!/usr/bin/env bash
# Memory and time of `faultline compact` on one day of RECORDS failures (default 1,000,000)
# ingested in CHUNKS batches (default 20), so that the day's partition holds CHUNKS × (the
# ingest's parts per batch) Parquet parts. Generated records (GPU failures of five message
# shapes, random numbers in them, one day of timestamps), not the shared data. Prints the
# parts before, the wall time and the maximum resident set size (GNU time) of the compaction,
# and checks that the merged history holds every sequence number once, in order (pyarrow, if
# installed). Needs a release build.
#
#   cargo build --release && benches/compact_memory.sh [RECORDS] [CHUNKS]
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS="${1:-1000000}"
CHUNKS="${2:-20}"
BIN="${FAULTLINE_BIN:-${CARGO_TARGET_DIR:-target}/release/faultline}"
[ -x /usr/bin/time ] || { echo "skip: GNU time not installed (apt-get install time)"; exit 0; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK" "$RECORDS" "$CHUNKS" <<'PY'
import json, random, sys
work, n, chunks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(1)
msgs = ["CUDA out of memory. Tried to allocate {} MiB", "NCCL watchdog timeout after {} ms",
        "Xid 79: GPU has fallen off the bus at {}",
        "ConnectionResetError: [Errno 104] Connection reset by peer port {}",
        "WebGPU device lost reason {}"]
per = n // chunks
for c in range(chunks):
    with open(f"{work}/in{c:03d}.jsonl", "w") as f:
        for i in range(per):
            k = c * per + i
            s = k % 86000
            f.write(json.dumps({
                "task_id": f"task-{k}", "worker_id": f"gpu-{k % 200}", "hardware": {"class": "GPU"},
                "error": {"message": random.choice(msgs).format(random.randint(1, 99999))},
                "timestamp": f"2026-11-01T{s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d}Z"}) + "\n")
PY
for f in "$WORK"/in*.jsonl; do "$BIN" ingest "$f" --data "$WORK/hist" >/dev/null 2>&1; rm "$f"; done
echo "records: $RECORDS in $CHUNKS ingests; parts before: $(find "$WORK/hist/history" -name 'part-*.parquet' | wc -l)"
/usr/bin/time -f 'compact: %e s wall, max RSS %M KB' "$BIN" compact --data "$WORK/hist"
echo "parts after: $(find "$WORK/hist/history" -name 'part-*.parquet' | wc -l)"
python3 - "$WORK/hist/history/failures" <<'PY' || true
import sys
try:
    import pyarrow.dataset as ds
except ImportError:
    print("check skipped: pyarrow not installed"); sys.exit(0)
s = ds.dataset(sys.argv[1], partitioning="hive").to_table(columns=["seq"]).column("seq").to_pylist()
print(f"rows {len(s)}, distinct {len(set(s))}, in order: {s == sorted(s)}")
PY
