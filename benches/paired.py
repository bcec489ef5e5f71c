#!/usr/bin/env python3
"""Paired comparison of two learned-policy variants on the same scenarios and seeds.

    benches/paired.py BIN SEEDS A B [SCENARIO...]

A and B are each `-` (the defaults), an engine config file (TOML, passed as `--config`), or
either followed by `@OTHER_BIN` to run another build (e.g. `-@/tmp/faultline-before`).
SEEDS is a range such as 1-20. SCENARIO is a name under data/scenarios/ or a path to a .toml;
default: llm-gpu-training, test-farm, browser-fleet, bad-workers.

Runs `simulate --policy learned --failures 20000 --json` for both variants on every seed
(two at a time) and prints, per scenario, the means of A and B and the mean paired
difference B - A with its standard error for attempts to recovery, regret per decision after
the warm-up and success rate. A difference within about two standard errors of zero is
noise. The simulator gives both variants the same new tasks and the same luck where they
decide alike (per-failure random streams), but a learning policy's path still drifts apart
after one different decision, so single seeds say little.

Example (is a stronger ladder prior better?):

    printf '[ranking]\\nprior_strength = 8\\n' > /tmp/p8.toml
    benches/paired.py target/release/faultline 1-20 - /tmp/p8.toml test-farm
"""
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = ["llm-gpu-training", "test-farm", "browser-fleet", "bad-workers"]
KEYS = [
    ("attempts", "attempts_to_recovery"),
    ("regret", "regret_per_decision_after_warmup"),
    ("success", "success_rate"),
]


def scenario_path(name):
    if name.endswith(".toml"):
        return name
    return os.path.join(ROOT, "data", "scenarios", f"{name}.toml")


def run(binary, variant, scenario, seed):
    config, _, other = variant.partition("@")
    cmd = [other or binary, "simulate", "--scenario", scenario_path(scenario),
           "--policy", "learned", "--failures", "20000", "--seed", str(seed), "--json"]
    if config != "-":
        cmd += ["--config", config]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    binary, seeds, a, b = sys.argv[1:5]
    lo, _, hi = seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    scenarios = sys.argv[5:] or DEFAULT
    print(f"A = {a}, B = {b}; seeds {seeds[0]}-{seeds[-1]}; 20,000 failures; "
          f"difference B - A ± standard error")
    with ThreadPoolExecutor(2) as pool:
        for sc in scenarios:
            ra = list(pool.map(lambda s: run(binary, a, sc, s), seeds))
            rb = list(pool.map(lambda s: run(binary, b, sc, s), seeds))
            parts = []
            for label, key in KEYS:
                xa = [r[key] for r in ra]
                xb = [r[key] for r in rb]
                d = [y - x for x, y in zip(xa, xb)]
                se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
                parts.append(f"{label} {statistics.mean(xa):.4f} -> {statistics.mean(xb):.4f} "
                             f"({statistics.mean(d):+.4f} ± {se:.4f})")
            print(f"{sc:<18} " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
