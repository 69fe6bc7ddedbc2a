#!/usr/bin/env bash
# Builds the browser client into www/pkg/: nook-wasm for wasm32 (with SIMD), wasm-bindgen's JS glue
# (--target web), then wasm-opt from npm binaryen@132 (Debian's binaryen 108 emits broken modules).
# scripts/install-deps.sh brings what is missing (wasm32 target, wasm-bindgen-cli at the crate's
# exact version, the npm tools).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
scripts/install-deps.sh

cargo build -p nook-wasm --profile wasm --target wasm32-unknown-unknown
rm -rf www/pkg.partial
wasm-bindgen --target web --no-typescript --out-dir www/pkg.partial "$target_dir/wasm32-unknown-unknown/wasm/nook_wasm.wasm"
# NOOK_WASM_NAMES=1 keeps function names (for profiles; bench/browser_bench.mjs prints one).
names=()
[ -z "${NOOK_WASM_NAMES:-}" ] || names=(-g)
tools/node_modules/.bin/wasm-opt -O3 "${names[@]}" \
  --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  www/pkg.partial/nook_wasm_bg.wasm -o www/pkg.partial/nook_wasm_bg.wasm
rm -rf www/pkg && mv www/pkg.partial www/pkg
raw=$(stat -c %s www/pkg/nook_wasm_bg.wasm)
gz=$(gzip -9 -c www/pkg/nook_wasm_bg.wasm | wc -c)
echo "www/pkg/nook_wasm_bg.wasm: $raw bytes, $gz gzip'd" >&2
