#!/usr/bin/env python3
"""Perturbed variants of the example scenarios, to check the learned ranking's targets on
fleets like the examples that nobody tuned it on.

    benches/variants.py gen DIR N
        writes DIR/v<i>-<scenario>.toml for i in [0, N), cycling through llm-gpu-training,
        test-farm, browser-fleet and bad-workers: every cause weight × U(0.4, 2.5), worker
        count × U(0.3, 2.0), failure rate × U(0.5, 2.0), persistence + U(-0.25, 0.2) (within
        0.2-0.95), refail_mean_s × U(0.3, 3), max_attempts one of 5, 6, 8, 10, 12. Truths,
        messages, bad workers and bursts stay as the example has them. Variant i is the same
        on every machine (seeded by i).

    benches/variants.py eval BIN DIR [SEEDS] [-- ARGS...]
        runs `BIN simulate` with --policy rules, learned (ARGS appended, e.g. `--config c.toml`)
        and oracle on every variant, 20,000 failures, seeds 1-3 by default (SEEDS: e.g. 1-5),
        two at a time, and prints per variant the means over seeds, the oracle's attempts
        against the rules' (how far below the rules any policy can get), and whether the three
        targets of issue 6 hold (+: success not lower, attempts at least 25 % lower, regret per
        decision after the warm-up at most 0.02), then the totals.
"""
import json
import os
import random
import re
import statistics as st
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "..", "data", "scenarios")
SOURCES = ["llm-gpu-training", "test-farm", "browser-fleet", "bad-workers"]
NUMBER = re.compile(
    r"^(\s*)(weight|count|failure_rate_per_hour|persistence|max_attempts|refail_mean_s)"
    r"\s*=\s*([0-9.]+)\s*$"
)


def variant(i):
    r = random.Random(1000 + i)
    src = SOURCES[i % len(SOURCES)]
    lines, named = [], False
    for line in open(os.path.join(SCENARIOS, f"{src}.toml")).read().splitlines():
        m = NUMBER.match(line.split("#")[0])
        if m:
            indent, key, val = m.groups()
            v = float(val)
            if key == "weight":
                v = max(1, round(v * r.uniform(0.4, 2.5)))
            elif key == "count":
                v = max(2, int(v * r.uniform(0.3, 2.0)))
            elif key == "failure_rate_per_hour":
                v = round(v * r.uniform(0.5, 2.0), 4)
            elif key == "persistence":
                v = round(min(0.95, max(0.2, v + r.uniform(-0.25, 0.2))), 2)
            elif key == "max_attempts":
                v = r.choice([5, 6, 8, 10, 12])
            elif key == "refail_mean_s":
                v = int(v * r.uniform(0.3, 3))
            if key in ("count", "max_attempts", "refail_mean_s", "weight"):
                v = int(v)
            line = f"{indent}{key} = {v}"
        if line.startswith("name =") and not named:
            line, named = f'name = "{src}-v{i}"', True
        lines.append(line)
    return f"v{i}-{src}.toml", "\n".join(lines) + "\n"


def gen(d, n):
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        name, text = variant(i)
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    print(f"wrote {n} variants to {d}")


def evaluate(binary, d, seeds, extra):
    files = sorted((f for f in os.listdir(d) if f.endswith(".toml")),
                   key=lambda f: int(f.split("-")[0][1:]))

    def run(job):
        f, policy, seed = job
        cmd = [binary, "simulate", "--scenario", os.path.join(d, f), "--policy", policy,
               "--seed", str(seed), "--failures", "20000", "--json"]
        if policy == "learned":
            cmd += extra
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
        return job, json.loads(p.stdout)

    jobs = [(f, p, s) for f in files for p in ("rules", "learned", "oracle") for s in seeds]
    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(run, jobs))
    by = {}
    for (f, policy, _), r in results:
        by.setdefault((f, policy), []).append(r)
    mean = lambda runs, k: st.mean(x[k] for x in runs)
    totals, regrets = [0, 0, 0, 0], []
    for f in files:
        rules, learned, oracle = (by[(f, p)] for p in ("rules", "learned", "oracle"))
        rs, ls = mean(rules, "success_rate"), mean(learned, "success_rate")
        ra, la = mean(rules, "attempts_to_recovery"), mean(learned, "attempts_to_recovery")
        oa = mean(oracle, "attempts_to_recovery")
        reg = mean(learned, "regret_per_decision_after_warmup")
        regrets.append(reg)
        ok = (ls >= rs - 1e-9, la <= 0.75 * ra, reg <= 0.02)
        for i, o in enumerate(ok):
            totals[i] += o
        totals[3] += all(ok)
        print(f"{f:28} rules {rs:.3f} / {ra:.3f}   learned {ls:.3f} / {la:.3f} "
              f"({100 * (la / ra - 1):+.1f} %) / regret {reg:.4f}   oracle "
              f"{100 * (oa / ra - 1):+.1f} %   {''.join('+' if o else '-' for o in ok)}")
    print(f"{len(files)} variants, seeds {seeds[0]}-{seeds[-1]}: success not lower on "
          f"{totals[0]}, attempts -25 % on {totals[1]}, regret <= 0.02 on {totals[2]}, all "
          f"three on {totals[3]}; mean regret {st.mean(regrets):.4f}")


def main(argv):
    if len(argv) >= 3 and argv[0] == "gen":
        return gen(argv[1], int(argv[2]))
    if len(argv) >= 3 and argv[0] == "eval":
        extra = []
        if "--" in argv:
            i = argv.index("--")
            argv, extra = argv[:i], argv[i + 1:]
        seeds = [1, 2, 3]
        if len(argv) >= 4:
            lo, hi = argv[3].split("-")
            seeds = list(range(int(lo), int(hi) + 1))
        return evaluate(argv[1], argv[2], seeds, extra)
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
