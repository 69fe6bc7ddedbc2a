#!/usr/bin/env bash
# Benchmark (by hand): nook's popularity, ALS and BPR against the `implicit` library's ALS and BPR on
# the same split files, scored by the same evaluation code, 2 threads each. Prints a table.
#
#   bench/cf_vs_implicit.sh [DATA_DIR]      (default: ../shared/data/movielens-small)
#
# Needs python3 (a venv with implicit==0.7.3 is made under bench/.venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/movielens-small}
out=${BENCH_OUT:-out/bench-cf}
threads=2
factors=64 iterations=15 reg=10.0 alpha=0.5
bpr_epochs=100 bpr_lr=0.05 bpr_reg=0.01

if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet implicit==0.7.3
fi
cargo build --release --quiet -p nook-trainer
nook=${CARGO_TARGET_DIR:-target}/release/nook

mkdir -p "$out"
"$nook" split --data "$data" --out "$out/split" --log warn >/dev/null
# implicit asks for single-threaded BLAS; it must be set before numpy loads.
OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 bench/.venv/bin/python bench/implicit_fit.py \
  --split "$out/split" --out "$out" --threads $threads --factors $factors --iterations $iterations \
  --regularization $reg --alpha $alpha --bpr-epochs $bpr_epochs --bpr-lr $bpr_lr --bpr-reg $bpr_reg >/dev/null

# nook's ALS fit is timed five times (median), like implicit's.
for run in 1 2 3 4 5; do
  "$nook" eval --data "$data" --threads $threads --log warn --models als --on warm \
    --factors $factors --iterations $iterations --regularization $reg --alpha $alpha \
    --json "$out/nook-als-$run.json" >/dev/null
done
"$nook" eval --data "$data" --threads $threads --log warn --models pop,als,bpr \
  --factors $factors --iterations $iterations --regularization $reg --alpha $alpha \
  --bpr-epochs $bpr_epochs --bpr-lr $bpr_lr --bpr-reg $bpr_reg \
  --factors-from implicit-als="$out/implicit-als" --factors-from implicit-bpr="$out/implicit-bpr" \
  --json "$out/eval.json" >/dev/null

bench/.venv/bin/python - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
ev = json.load(open(f"{out}/eval.json"))
imp = json.load(open(f"{out}/implicit.json"))
nook_als = statistics.median(json.load(open(f"{out}/nook-als-{r}.json"))["fit_seconds"]["als"] for r in (1, 2, 3, 4, 5))
fit = dict(ev["fit_seconds"]); fit.update(imp["fit_seconds"]); fit["als"] = nook_als
get = lambda m, s, k: next((r["value"] for r in ev["results"] if r["model"] == m and r["split"] == s and r["metric"] == k), float("nan"))
print(f"dataset {ev['dataset']}; protocol {ev['protocol']['protocol']} {ev['protocol']['ratios']}, "
      f"min_rating {ev['protocol']['min_rating']}, cold {ev['protocol']['cold_fraction']}, seed {ev['seed']}; "
      f"warm users {ev['splits']['warm']['users']}; implicit {imp['implicit']}")
print(f"{'model':<14}{'Recall@10':>11}{'NDCG@10':>10}{'fit s':>9}")
for m in ["pop", "als", "implicit-als", "bpr", "implicit-bpr"]:
    print(f"{m:<14}{get(m,'warm','recall@10'):>11.4f}{get(m,'warm','ndcg@10'):>10.4f}{fit.get(m, float('nan')):>9.3f}")
print(f"nook ALS fit time / implicit ALS fit time = {nook_als / fit['implicit-als']:.2f} (target <= 0.8)")
print(f"nook ALS NDCG@10 / implicit ALS NDCG@10  = {get('als','warm','ndcg@10') / get('implicit-als','warm','ndcg@10'):.3f} (target >= 0.95)")
PY
