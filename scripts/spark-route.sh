#!/usr/bin/env bash
# The README's "Past one machine" route, end to end, with real Spark (local mode) fitting ALS:
#
#   scripts/spark-route.sh DATA OUT [nook train options...]
#
#  1. nook split                      DATA -> OUT/split/{train,valid,fit,test,...}.csv
#  2. Spark ALS on train.csv          one model per regParam in $SPARK_REG_PARAMS  -> OUT/grid/
#  3. nook eval --on valid            picks the regParam with the best validation NDCG@10
#  4. Spark ALS on fit.csv            with that regParam                           -> OUT/spark-als/
#  5. nook import-factors             a nook model directory from Spark's output   -> OUT/imported/
#  6. nook eval (test)                nook's own ALS beside Spark's, same split    -> OUT/eval.json
#  7. nook train --als-from           text, fine-tuning, fusion on Spark's factors -> OUT/model/
#  8. nook export                     the browser bundle                           -> OUT/bundle/
#
# Spark's settings match nook's ALS: rank $SPARK_RANK (64), $SPARK_ITER (15) iterations, every
# positive rated 1 with alpha 0.5 (confidence 1.5 in both); only regParam differs in meaning
# (Spark multiplies it by each row's count), so it is chosen on validation. Spark's fit times are
# in OUT/spark-fit.txt. On a cluster, run scripts/spark_als.py with `spark-submit --master ...` in
# steps 2 and 4; nothing else changes.
#
# Needs Java 17+ and pyspark: scripts/install-deps.sh --spark puts pyspark in a venv under
# ${XDG_CACHE_HOME:-~/.cache}/nook/spark-venv (NOOK_SPARK_PYTHON overrides). NOOK names the nook
# binary (default: built here with cargo, release profile).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,22p' "$0" >&2; exit 2; }
data=$1 out=$2
shift 2
cd "$(dirname "$0")/.."

python=${NOOK_SPARK_PYTHON:-${XDG_CACHE_HOME:-$HOME/.cache}/nook/spark-venv/bin/python}
"$python" -c "import pyspark" 2>/dev/null \
  || { echo "spark-route: no pyspark for $python (run scripts/install-deps.sh --spark)" >&2; exit 2; }
if [ -z "${NOOK:-}" ]; then
  cargo build --release --quiet -p nook-trainer --bin nook
  NOOK=${CARGO_TARGET_DIR:-target}/release/nook
fi
[ ! -e "$out" ] || { echo "spark-route: $out exists; choose a new directory" >&2; exit 2; }
rank=${SPARK_RANK:-64} iter=${SPARK_ITER:-15} alpha=0.5
regs=${SPARK_REG_PARAMS:-0.03,0.1,0.3,1}
spark_als() { "$python" scripts/spark_als.py --rank "$rank" --max-iter "$iter" --alpha $alpha "$@"; }
step() { echo "== $*" >&2; }

mkdir -p "$out"
step "1. nook split"
"$NOOK" split --data "$data" --out "$out/split" >/dev/null

step "2. Spark ALS on train.csv, regParam in {$regs}"
spark_als --interactions "$out/split/train.csv" --reg-param "$regs" --out "$out/grid" | tee "$out/spark-fit.txt"

step "3. choose regParam on validation"
candidates=()
for dir in "$out"/grid/reg*; do candidates+=(--factors-from "$(basename "$dir")=$dir"); done
"$NOOK" eval --data "$data" --no-refit --on valid --models als "${candidates[@]}" --json "$out/valid.json"
best=$("$python" - "$out/valid.json" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
ndcg = {r["model"]: r["value"] for r in rows if r["metric"] == "ndcg@10" and r["model"].startswith("reg")}
best = max(ndcg, key=ndcg.get)
print(best[len("reg"):].split("-alpha")[0])
EOF
)
echo "regParam $best" >&2

step "4. Spark ALS on fit.csv, regParam $best"
spark_als --interactions "$out/split/fit.csv" --reg-param "$best" --out "$out/spark-als" | tee -a "$out/spark-fit.txt"

step "5. nook import-factors"
"$NOOK" import-factors --data "$data" --from "$out/spark-als" --out "$out/imported"

step "6. nook eval: nook's ALS and Spark's on the test split"
"$NOOK" eval --data "$data" --models pop,als --factors-from "spark-als=$out/spark-als" --json "$out/eval.json"

step "7. nook train --als-from (text, fine-tuning, fusion on Spark's factors)"
"$NOOK" train --data "$data" --als-from "$out/spark-als" --out "$out/model" "$@"

step "8. nook export"
"$NOOK" export --model "$out/model" --out "$out/bundle"
echo "spark-route: done; Spark fit times in $out/spark-fit.txt, test metrics in $out/eval.json" >&2
