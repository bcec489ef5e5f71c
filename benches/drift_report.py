#!/usr/bin/env python3
"""After how many failures does a policy follow a drift? (issue #6 (c))

    benches/drift_report.py OUT_DIR KIND STRATEGY AT_FAILURE [WINDOW] [--up]

OUT_DIR is a `faultline simulate --out` directory (its ground_truth.json). Among the decisions
on failures of KIND, the share that chose STRATEGY over a trailing window of WINDOW such
decisions (default 100) is followed after AT_FAILURE (the drift's failure number). Prints that
share before the drift, and the first failure number at which it falls below 10 % — "switched
after N failures" counts all failures (of every kind) since the drift, and "M decisions" the
decisions on KIND since the drift. Also the regret per decision on KIND in the 2,000 failures
after the drift.

With --up (a strategy that got better, e.g. data/scenarios/drift-up.toml), the first failure
number at which the share rises above 50 % instead.
"""
import json
import sys
from collections import deque

args = [a for a in sys.argv[1:] if a != "--up"]
up = "--up" in sys.argv[1:]
out, kind, strategy, at = args[0], args[1], args[2], int(args[3])
window = int(args[4]) if len(args) > 4 else 100
threshold = 0.50 if up else 0.10
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
    share = sum(win) / window
    if len(win) == window and (share > threshold if up else share < threshold):
        # The window's first decision is where the switch happened.
        switched = (f["seq"] - at, n_kind)
        break
after = [f for f in rows if at <= f["seq"] < at + 2000]
regret = sum(f["p"][order.index(f["oracle"])] - f["p"][order.index(f["chosen"])] for f in after)
print(f"{g['scenario']} policy {g['policy']} seed {g['seed']}: {strategy} share on {kind} "
      f"before the drift {share_before:.2f}; ", end="")
how = f"{'above' if up else 'below'} {threshold * 100:.0f} %"
if switched is None:
    print(f"never {'rose' if up else 'fell'} {how}", end="")
else:
    print(f"{how} of a {window}-decision window after {switched[0]} failures "
          f"({switched[1]} {kind} decisions) since failure {at}", end="")
print(f"; regret per {kind} decision in the 2,000 failures after: {regret / max(len(after), 1):.3f}")
