#!/usr/bin/env bash
# Benchmark (by hand): bundle size per quantisation (encoder, items, total) and the bundle's
# NDCG@10 on the same split, plus native top-10 ranking latency against the memory-bandwidth limit.
#   bench/quant_bundles.sh MODEL_DIR [DATA_DIR]
# MODEL_DIR comes from `nook train` on DATA_DIR (default ../shared/data/movielens-small).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/quant_bundles.sh MODEL_DIR [DATA_DIR]}
data=${2:-../shared/data/movielens-small}
out=${BENCH_OUT:-out/bench-quant}
cargo build --release --quiet -p nook-trainer
nook=${CARGO_TARGET_DIR:-target}/release/nook
mkdir -p "$out"
printf '%-6s %12s %12s %12s %10s %10s\n' quant "encoder MB" "items MB" "total MB" "ndcg@10" "vs f32"
base=""
for q in f32 f16 int8; do
  "$nook" export --model "$model" --out "$out/$q" --quant "$q" --log warn >/dev/null
  ndcg=$("$nook" eval --data "$data" --models pop --bundle "$out/$q" --on warm --json "$out/$q.json" --log error \
    | awk '$1 == "bundle" && $2 == "warm" { print $4 }')
  base=${base:-$ndcg}
  python3 - "$out/$q/manifest.json" "$q" "$ndcg" "$base" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
enc = sum(f["bytes"] for n, f in m["files"].items() if n.startswith("encoder/")) / 1e6
items = sum(f["bytes"] for n, f in m["files"].items() if not n.startswith("encoder/")) / 1e6
ndcg, base = float(sys.argv[3]), float(sys.argv[4])
print(f"{sys.argv[2]:<6} {enc:>12.2f} {items:>12.2f} {enc + items:>12.2f} {ndcg:>10.4f} {100 * (ndcg / base - 1):>+9.2f}%")
PY
done
echo
"$nook" bench rank --log warn
