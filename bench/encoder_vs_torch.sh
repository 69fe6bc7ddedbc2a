#!/usr/bin/env bash
# Benchmark (by hand): nook's encoder against sentence-transformers on PyTorch CPU, same machine,
# same run, same texts (256 titles + plot overviews from MovieLens latest-small), 2 threads each.
#  - embedding throughput at 32 and 128 tokens, batch 64;
#  - one contrastive fine-tuning step (32 pairs x 32 tokens), top 2 blocks and the whole model.
# Needs bench/.venv-st (torch + sentence-transformers; see the README) and the fetched encoder.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/movielens-small}
out=${BENCH_OUT:-out/bench-encoder}
model=assets/models/all-MiniLM-L6-v2
mkdir -p "$out"
[ -x bench/.venv-st/bin/python ] || { echo "bench/.venv-st is missing (torch + sentence-transformers)" >&2; exit 1; }

python3 bench/bench_texts.py "$data/items_text.csv" "$out/texts.txt"

cargo build --release --quiet -p nook-trainer
nook=${CARGO_TARGET_DIR:-target}/release/nook
RAYON_NUM_THREADS=2 "$nook" bench encoder --texts "$out/texts.txt" --encoder "$model" --log warn > "$out/nook.jsonl"
RAYON_NUM_THREADS=2 "$nook" bench finetune --texts "$out/texts.txt" --encoder "$model" --log warn >> "$out/nook.jsonl"
OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 bench/.venv-st/bin/python bench/torch_encoder.py --model "$model" \
  --texts "$out/texts.txt" --threads 2 2>/dev/null > "$out/torch.jsonl"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
nook = [json.loads(l) for l in open(f"{out}/nook.jsonl")]
torch = [json.loads(l) for l in open(f"{out}/torch.jsonl")]
print(f"{'measure':<42}{'nook':>12}{'PyTorch':>12}{'nook/PyTorch':>14}")
for n in nook:
    if n["bench"] == "encoder":
        t = next(x for x in torch if x["bench"] == "encoder" and x["tokens"] == n["tokens"])
        print(f"{'embed, sentences/s @' + str(n['tokens']) + ' tokens, batch 64':<42}{n['sentences_per_s']:>12.1f}{t['sentences_per_s']:>12.1f}{n['sentences_per_s'] / t['sentences_per_s']:>13.2f}x")
for n in nook:
    if n["bench"] == "finetune":
        t = next(x for x in torch if x["bench"] == "finetune" and x["trained_blocks"] == n["trained_blocks"])
        label = f"fine-tune step s, {n['pairs']} pairs x {n['tokens']} tok, {n['trained_blocks']} blocks"
        print(f"{label:<42}{n['seconds_per_step']:>12.3f}{t['seconds_per_step']:>12.3f}{t['seconds_per_step'] / n['seconds_per_step']:>13.2f}x")
print("(x = how many times faster nook is)")
PY
