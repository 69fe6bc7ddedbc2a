"""Fits the `implicit` library's ALS and BPR on a split written by `nook split`, and writes their
factors as CSV (`id,f0,f1,...`) so `nook eval --factors-from` scores them with nook's own evaluation.

Settings mirror nook's: nook's ALS confidence is 1 + alpha * r with r = 1 for a positive; implicit
uses alpha * r, so implicit is given r = 1 + alpha and alpha = 1 (the same confidence matrix).
"""
import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regularization", type=float, default=10.0)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--bpr-epochs", type=int, default=100)
    ap.add_argument("--bpr-lr", type=float, default=0.05)
    ap.add_argument("--bpr-reg", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=5, help="ALS fits timed; the median is reported")
    args = ap.parse_args()

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import implicit  # imported after the BLAS setting, as implicit asks
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking

    users, items, rows, cols = {}, {}, [], []
    # fit.csv: the positives nook's final models are fitted on (train + valid unless --no-refit).
    with open(args.split / "fit.csv", newline="") as f:
        for rec in csv.DictReader(f):
            u = users.setdefault(rec["user"], len(users))
            i = items.setdefault(rec["item"], len(items))
            rows.append(u)
            cols.append(i)
    ones = np.ones(len(rows), dtype=np.float32)
    binary = sp.csr_matrix((ones, (rows, cols)), shape=(len(users), len(items)))

    fit_seconds = {}
    als_times = []
    for _ in range(args.repeats):
        als = AlternatingLeastSquares(
            factors=args.factors,
            iterations=args.iterations,
            regularization=args.regularization,
            alpha=1.0,
            num_threads=args.threads,
            random_state=args.seed,
            calculate_training_loss=False,
        )
        confidence = (binary * (1.0 + args.alpha)).astype(np.float32).tocsr()
        start = time.perf_counter()
        als.fit(confidence, show_progress=False)
        als_times.append(time.perf_counter() - start)
    fit_seconds["implicit-als"] = float(np.median(als_times))
    write(args.out / "implicit-als", users, items, als.user_factors, als.item_factors)

    bpr = BayesianPersonalizedRanking(
        factors=args.factors,
        iterations=args.bpr_epochs,
        learning_rate=args.bpr_lr,
        regularization=args.bpr_reg,
        num_threads=args.threads,
        random_state=args.seed,
    )
    start = time.perf_counter()
    bpr.fit(binary, show_progress=False)
    fit_seconds["implicit-bpr"] = time.perf_counter() - start
    # implicit's BPR keeps the item bias as the last factor, with a constant 1 in the user vector.
    write(args.out / "implicit-bpr", users, items, bpr.user_factors, bpr.item_factors)

    meta = {"implicit": implicit.__version__, "fit_seconds": fit_seconds, "als_fit_runs": als_times}
    (args.out / "implicit.json").write_text(json.dumps(meta, indent=2))
    print(json.dumps(meta))


def write(out: Path, users: dict, items: dict, uf, itf) -> None:
    out.mkdir(parents=True, exist_ok=True)
    uf = to_numpy(uf)
    itf = to_numpy(itf)
    for name, ids, mat in (("user_factors.csv", users, uf), ("item_factors.csv", items, itf)):
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f)
            for key, idx in ids.items():
                w.writerow([key, *(f"{v:.8g}" for v in mat[idx])])


def to_numpy(m):
    return m.to_numpy() if hasattr(m, "to_numpy") else np.asarray(m)


if __name__ == "__main__":
    main()
