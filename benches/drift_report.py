#!/usr/bin/env python3
"""After how many failures does a policy follow a drift? (issue #6 (c))

    benches/drift_report.py OUT_DIR KIND STRATEGY AT_FAILURE [WINDOW]

OUT_DIR is a `faultline simulate --out` directory (its ground_truth.json). Among the decisions
on failures of KIND, the share that chose STRATEGY over a trailing window of WINDOW such
decisions (default 100) is followed after AT_FAILURE (the drift's failure number). Prints that
share before the drift, and the first failure number at which it falls below 10 % — "switched
after N failures" counts all failures (of every kind) since the drift, and "M decisions" the
decisions on KIND since the drift. Also the regret per decision on KIND in the 2,000 failures
after the drift.
"""
import json
import sys
from collections import deque

out, kind, strategy, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
window = int(sys.argv[5]) if len(sys.argv) > 5 else 100
g = json.load(open(f"{out}/ground_truth.json"))
order = g["strategies"]
rows = [f for f in g["failures"] if f["kind"] == kind]
before = [f for f in rows if f["seq"] < at][-window:]
share_before = sum(f["chosen"] == strategy for f in before) / max(len(before), 1)
win = deque(maxlen=window)
switched = None
n_kind = 0
for f in rows:
    if f["seq"] < at:
        continue
    n_kind += 1
    win.append(f["chosen"] == strategy)
    if len(win) == window and sum(win) / window < 0.10:
        # The window's first decision is where the switch happened.
        switched = (f["seq"] - at, n_kind)
        break
after = [f for f in rows if at <= f["seq"] < at + 2000]
regret = sum(f["p"][order.index(f["oracle"])] - f["p"][order.index(f["chosen"])] for f in after)
print(f"{g['scenario']} policy {g['policy']} seed {g['seed']}: {strategy} share on {kind} "
      f"before the drift {share_before:.2f}; ", end="")
if switched is None:
    print("never fell below 10 %", end="")
else:
    print(f"below 10 % of a {window}-decision window after {switched[0]} failures "
          f"({switched[1]} {kind} decisions) since failure {at}", end="")
print(f"; regret per {kind} decision in the 2,000 failures after: {regret / max(len(after), 1):.3f}")
