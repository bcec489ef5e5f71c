#!/usr/bin/env python3
"""scikit-learn's DBSCAN and KMeans on the matrix that `cargo bench --bench cluster` clustered
with linfa, with the same parameters; prints both timings and the ratio linfa / scikit-learn.

    cargo bench --bench cluster          # writes benches/out/{features_100k.npy, rust_cluster.json, ...}
    pip install scikit-learn numpy
    python3 benches/sklearn_compare.py [--out DIR] [--runs N]

Reads from DIR (default: benches/out, or $FAULTLINE_BENCH_OUT): `features_100k.npy` (the scaled
100k x 45 feature matrix), `rust_cluster.json` (linfa's timings and parameters) and the linfa
labels; writes `sklearn_compare.json` there. The label agreement (adjusted Rand index, noise as
one more label) checks that both libraries computed the same kind of clustering.
"""

import argparse
import json
import os
import pathlib
import statistics
import time

import numpy as np
import sklearn
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score


def timed(runs, f):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    default_out = os.environ.get("FAULTLINE_BENCH_OUT") or pathlib.Path(__file__).parent / "out"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path(default_out))
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--dbscan-algorithms", default="auto,kd_tree",
                    help="neighbour searches of sklearn's DBSCAN to time (kd_tree takes minutes "
                         "at 45 columns)")
    args = ap.parse_args()

    x = np.load(args.out / "features_100k.npy")
    rust = json.loads((args.out / "rust_cluster.json").read_text())
    rust_db = np.load(args.out / "dbscan_labels_100k.npy")
    rust_km = np.load(args.out / "kmeans_labels_100k.npy")
    db, km = rust["dbscan"], rust["kmeans"]
    print(f"matrix {x.shape[0]} x {x.shape[1]}, scikit-learn {sklearn.__version__}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")

    results = {"sklearn": sklearn.__version__, "rows": x.shape[0], "cols": x.shape[1]}
    rows = []

    for algo in [a for a in args.dbscan_algorithms.split(",") if a]:
        secs, model = timed(args.runs, lambda: DBSCAN(
            eps=db["eps"], min_samples=db["min_points"], algorithm=algo).fit(x))
        labels = model.labels_
        ari = adjusted_rand_score(rust_db, labels)
        clusters = len(set(labels.tolist()) - {-1})
        noise = int((labels == -1).sum())
        results[f"dbscan_{algo}"] = {"seconds": secs, "clusters": clusters, "noise": noise,
                                     "ari_vs_linfa": ari}
        rows.append((f"DBSCAN eps {db['eps']} min_samples {db['min_points']} ({algo})",
                     db["seconds"], secs, f"{clusters} clusters / {noise} noise (linfa "
                     f"{db['clusters']} / {db['noise']}), ARI {ari:.3f}"))

    secs, model = timed(args.runs, lambda: KMeans(
        n_clusters=km["k"], init="k-means++", n_init=km["n_runs"], max_iter=km["max_iterations"],
        tol=km["tolerance"], random_state=rust["seed"] % 2**32, algorithm="lloyd").fit(x))
    ari = adjusted_rand_score(rust_km, model.labels_)
    inertia = model.inertia_ / x.shape[0]
    results["kmeans"] = {"seconds": secs, "iterations": int(model.n_iter_),
                         "inertia_per_row": inertia, "ari_vs_linfa": ari}
    rows.append((f"KMeans k {km['k']} n_init {km['n_runs']} max_iter {km['max_iterations']} "
                 f"tol {km['tolerance']}", km["seconds"], secs,
                 f"{model.n_iter_} iterations, inertia/row {inertia:.3f} (linfa "
                 f"{km['inertia']:.3f}), ARI {ari:.3f}"))

    print(f"{'what':58} {'linfa s':>9} {'sklearn s':>10} {'ratio':>7}  notes")
    for what, r, s, note in rows:
        print(f"{what:58} {r:9.3f} {s:10.3f} {r / s:7.2f}  {note}")
    results["ratios_linfa_over_sklearn"] = {what: r / s for what, r, s, _ in rows}
    (args.out / "sklearn_compare.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
