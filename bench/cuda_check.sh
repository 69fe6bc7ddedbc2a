#!/usr/bin/env bash
# CUDA check (by hand, on a machine with an NVIDIA GPU and the CUDA toolkit; CI never runs it):
# builds nook with `--features cuda`, then on the CPU and on cuda:0, same texts (256 titles + plot
# overviews from MovieLens latest-small) and same settings:
#  - embedding throughput at 32 and 128 tokens, batch 64;
#  - one contrastive fine-tuning step (32 pairs x 32 tokens), top 2 blocks and the whole model;
#  - a short `nook train` of the text models on ml-100k with `--device cuda` (20 fine-tuning steps),
#    whose eval table must be finite.
# Prints a table with the CUDA/CPU ratios.
#
#   bench/cuda_check.sh [DATA_DIR]
#
# Without a GPU the build is still checked (CUDA_COMPUTE_CAP, default 80, stands in for the GPU
# that candle's build would otherwise ask nvidia-smi for); the timings then stop with a clear error.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/movielens-small}
out=${BENCH_OUT:-out/bench-cuda}
model=assets/models/all-MiniLM-L6-v2
mkdir -p "$out"
command -v nvcc >/dev/null || { echo "nvcc not found: install the CUDA toolkit (Debian: nvidia-cuda-toolkit, non-free)" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader || export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}

python3 bench/bench_texts.py "$data/items_text.csv" "$out/texts.txt"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}-cuda
start=$(date +%s)
cargo build --release --quiet -p nook-trainer --features cuda
echo "built nook with --features cuda in $(( $(date +%s) - start )) s" >&2
nook=$CARGO_TARGET_DIR/release/nook

: > "$out/bench.jsonl"
for device in cpu cuda:0; do
  "$nook" bench encoder --texts "$out/texts.txt" --encoder "$model" --device "$device" --log warn >> "$out/bench.jsonl"
  "$nook" bench finetune --texts "$out/texts.txt" --encoder "$model" --device "$device" --log warn >> "$out/bench.jsonl"
done
start=$(date +%s)
"$nook" train --data assets/data/ml-100k --models content-ft,fused-ft --device cuda:0 --ft-steps 20 \
  --cache-dir "$out/cache" --checkpoint-dir "$out/checkpoints" --out "$out/model" --log warn > "$out/train.txt"
echo "nook train --device cuda:0 (ml-100k, 20 fine-tuning steps, re-embedding 1,682 items): $(( $(date +%s) - start )) s"
grep -E '^(content-ft|fused-ft) ' "$out/train.txt"
awk '$1 ~ /-ft$/ { for (i = 3; i <= NF; i++) if ($i !~ /^[0-9.]+$/) { print "non-numeric metric: " $0; exit 1 } }' "$out/train.txt"

python3 - "$out/bench.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
get = lambda dev, bench, key, val: next(r for r in rows if r["device"] == dev and r["bench"] == bench and r[key] == val)
print(f"{'measure':<44}{'cpu':>10}{'cuda:0':>10}{'cuda/cpu':>10}")
for t in (32, 128):
    c, g = get("cpu", "encoder", "tokens", t), get("cuda:0", "encoder", "tokens", t)
    print(f"{f'embed, sentences/s @{t} tokens, batch 64':<44}{c['sentences_per_s']:>10.1f}{g['sentences_per_s']:>10.1f}{g['sentences_per_s'] / c['sentences_per_s']:>9.1f}x")
for b in (2, 7):
    c, g = get("cpu", "finetune", "trained_blocks", b), get("cuda:0", "finetune", "trained_blocks", b)
    label = f"fine-tune step s, 32 pairs x 32 tok, {b} blocks"
    print(f"{label:<44}{c['seconds_per_step']:>10.3f}{g['seconds_per_step']:>10.3f}{c['seconds_per_step'] / g['seconds_per_step']:>9.1f}x")
print("(x = how many times faster cuda:0 is)")
PY
