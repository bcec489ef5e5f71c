#!/usr/bin/env bash
# The ranking table of issue #6: every scenario × seed × policy, 20k failures each, one JSON
# summary per run, then the mean over seeds per (scenario, policy) and the learned/rules and
# model/rules ratios (learned = the Bayes ranker, model = the success-model ranker).
#
#   benches/ranking_table.sh [BIN] [FAILURES] [SEEDS] [SCENARIO...]
#
# BIN defaults to target/release/faultline (honours CARGO_TARGET_DIR); the scenarios default
# to the three examples. Writes the per-run JSON under ${OUT:-target/ranking_table}/ and
# prints a Markdown table. Metrics (see sim::Summary): success = recovered / tasks; attempts =
# attempts to recovery with unrecovered tasks at max_attempts + 1; recovered-only = failures
# per recovered task; decisions = failures / tasks; regret = regret per decision after the
# warm-up (first 2,000 failures).
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/faultline}
FAILURES=${2:-20000}
SEEDS=${3:-5}
shift $(( $# < 3 ? $# : 3 ))
SCENARIOS=("$@")
if [ ${#SCENARIOS[@]} -eq 0 ]; then
  SCENARIOS=(data/scenarios/llm-gpu-training.toml data/scenarios/test-farm.toml data/scenarios/browser-fleet.toml)
fi
OUT=${OUT:-${CARGO_TARGET_DIR:-target}/ranking_table}
POLICIES=${POLICIES:-rules learned model oracle}
mkdir -p "$OUT"
for sc in "${SCENARIOS[@]}"; do
  name=$(basename "$sc" .toml)
  for p in $POLICIES; do
    for seed in $(seq 1 "$SEEDS"); do
      "$BIN" simulate --scenario "$sc" --policy "$p" --seed "$seed" --failures "$FAILURES" \
        ${CONFIG:+--config "$CONFIG"} --json > "$OUT/$name.$p.$seed.json"
    done
  done
done
python3 - "$OUT" "$SEEDS" "$POLICIES" "${SCENARIOS[@]}" <<'PY'
import json, os, statistics, sys
out, seeds, policies, scenarios = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
keys = [("success_rate", "success"), ("attempts_to_recovery", "attempts"),
        ("mean_attempts_to_recovery", "recovered-only"), ("decisions_per_task", "decisions"),
        ("regret_per_decision_after_warmup", "regret after warm-up")]
print("| scenario | policy | " + " | ".join(k[1] for k in keys) + " |")
print("|---|---|" + "---|" * len(keys))
for sc in scenarios:
    name = os.path.basename(sc)[:-5]
    means = {}
    for p in policies:
        runs = [json.load(open(f"{out}/{name}.{p}.{s}.json")) for s in range(1, seeds + 1)]
        # A mean of nothing is null in the JSON (no recovered task, no decision after the
        # warm-up): NaN here.
        val = lambda r, k: float("nan") if r[k] is None else r[k]
        means[p] = {k: statistics.mean(val(r, k) for r in runs) for k, _ in keys}
        sd = {k: statistics.pstdev(val(r, k) for r in runs) for k, _ in keys}
        cells = [f"{means[p][k]:.3f} ± {sd[k]:.3f}" for k, _ in keys]
        print(f"| {name} | {p} | " + " | ".join(cells) + " |")
    for cand in ("learned", "model"):
        if "rules" not in means or cand not in means:
            continue
        r, l = means["rules"], means[cand]
        print(f"| {name} | {cand} vs rules | {l['success_rate'] - r['success_rate']:+.3f} | "
              f"{100 * (l['attempts_to_recovery'] / r['attempts_to_recovery'] - 1):+.1f} % | "
              f"{100 * (l['mean_attempts_to_recovery'] / r['mean_attempts_to_recovery'] - 1):+.1f} % | "
              f"{100 * (l['decisions_per_task'] / r['decisions_per_task'] - 1):+.1f} % | "
              f"{l['regret_per_decision_after_warmup']:.3f} |")
PY
