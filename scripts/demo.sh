#!/usr/bin/env bash
# The main job on a fresh machine: fetch assets, train on MovieLens 100k, evaluate against the
# baselines and write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-assets.sh
cargo build --release -p nook-trainer
nook=${CARGO_TARGET_DIR:-target}/release/nook
"$nook" train --data assets/data/ml-100k --out out/model
"$nook" eval --data assets/data/ml-100k --model out/model --json out/eval.json
