#!/usr/bin/env bash
# Browser tests, in headless Debian Chromium:
#  1. wasm-bindgen-test: the wasm client's rankings ("more like this" too) equal native
#     `nook recommend` / `nook similar` (ids exact, scores within 1e-4), on the CPU and WebGPU,
#     with each of its two builds (SIMD128, relaxed SIMD), on a `fused-sr` bundle (sequential rules),
#     and on a `hybrid` bundle whose encoder names prompts (SIMD128);
#  2. Playwright (playwright-core from npm, Debian's chromium): the page suite against `nook serve`
#     (the headers users get) and its core checks against nginx with docs/deploy/nginx.conf; the
#     browser package installed from its `npm pack` tarball on a plain page; a catalogue update
#     (bundle A → B without some liked items → A) under a returning visitor.
# Uses small bundles trained here on MovieLens 100k.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
work=${NOOK_BROWSER_TEST_DIR:-out/browser-tests}
mkdir -p "$work"

for bin in chromium chromedriver nginx; do
  command -v "$bin" >/dev/null || { echo "$bin is missing: scripts/install-deps.sh --browser" >&2; exit 1; }
done

cargo build --release -p nook-trainer
nook=$target_dir/release/nook
if [ ! -f "$work/bundle/manifest.json" ] || [ "$nook" -nt "$work/bundle/manifest.json" ]; then
  "$nook" train --data assets/data/ml-100k --out "$work/model" --models pop,als,content,hybrid,content-ft,fused-ft,sr,fused-sr \
    --ft-steps 12 --ft-batch 16 --checkpoint-dir "$work/checkpoints" --log warn >/dev/null
  "$nook" export --model "$work/model" --out "$work/bundle" --log warn
fi
# The parity cases must exercise the order of likes: a bundle without sequential rules (validation
# gave them no weight, so export chose fused-ft) would leave that path untested.
grep -q '"sequence"' "$work/bundle/manifest.json" || {
  echo "the test bundle carries no sequential rules (fused-sr's weight was 0 on validation?)" >&2
  exit 1
}
# Bundle B, for the catalogue-update test: another seed, and Star Wars (50), Fargo (100) and
# Return of the Jedi (181) withdrawn from the catalogue. Its encoder names prompts, as e5's do
# (all-MiniLM-L6-v2's files with a config_sentence_transformers.json), so the parity check
# below also covers a typed query's prompt in the browser.
prompted=$work/encoder-prompted
mkdir -p "$prompted"
for f in config.json tokenizer.json model.safetensors; do
  cp -u assets/models/all-MiniLM-L6-v2/$f "$prompted/$f"
done
printf '{"prompts": {"query": "a film about ", "document": "film: "}}\n' >"$prompted/config_sentence_transformers.json"
if [ ! -f "$work/bundle-b/manifest.json" ] || [ "$nook" -nt "$work/bundle-b/manifest.json" ]; then
  data_b=$work/data-b/ml-100k
  mkdir -p "$data_b"
  awk -F'\t' 'NR == 1 || ($2 != 50 && $2 != 100 && $2 != 181)' assets/data/ml-100k/ml-100k.inter >"$data_b/ml-100k.inter"
  awk -F'\t' 'NR == 1 || ($1 != 50 && $1 != 100 && $1 != 181)' assets/data/ml-100k/ml-100k.item >"$data_b/ml-100k.item"
  "$nook" train --data "$data_b" --out "$work/model-b" --models pop,als,content,hybrid --seed 7 \
    --encoder "$prompted" --log warn >/dev/null
  "$nook" export --model "$work/model-b" --out "$work/bundle-b" --log warn
fi

# Native answers for the parity cases.
cases='['
sep=''
add_case() { # request JSON, then nook recommend arguments
  local request=$1
  shift
  local expected
  expected=$("$nook" recommend --bundle "${case_bundle:-$work/bundle}" --json --log warn "$@")
  cases+="$sep{\"request\":$request,\"expected\":$expected}"
  sep=','
}
add_case '{"likes":["1","50","181"],"k":10}' --like 1 --like 50 --like 181 --k 10
add_case '{"likes":["1","50"],"dislikes":["172"],"query":"a scary movie with zombies","k":10}' \
  --like 1 --like 50 --dislike 172 --query "a scary movie with zombies" --k 10
add_case '{"query":"romantic comedy in paris","k":20}' --query "romantic comedy in paris" --k 20
add_case '{"likes":["50","1","100"],"query":"a scary horror movie","query_weight":3.5,"k":10}' \
  --like 50 --like 1 --like 100 --query "a scary horror movie" --query-weight 3.5 --k 10
add_case '{"likes":["no-such-item","50"],"dislikes":["gone"],"k":10}' --like no-such-item --like 50 --dislike gone --k 10
add_case '{"k":5}' --k 5
cases+=']'
similar='['
sep=''
for item in 1 50 181; do
  similar+="$sep{\"item\":\"$item\",\"k\":10,\"expected\":$("$nook" similar --bundle "$work/bundle" --item "$item" --k 10 --json --log warn)}"
  sep=','
done
similar+=']'
# Bundle B's cases: typed queries go through its query prompt on both sides.
grep -q '"prompts"' "$work/bundle-b/manifest.json" || { echo "bundle B carries no prompts" >&2; exit 1; }
cases_a=$cases
cases='['
sep=''
case_bundle=$work/bundle-b
add_case '{"likes":["1","172"],"query":"a scary movie with zombies","k":10}' \
  --like 1 --like 172 --query "a scary movie with zombies" --k 10
add_case '{"query":"romantic comedy in paris","k":20}' --query "romantic comedy in paris" --k 20
unset case_bundle
cases_b="$cases]"
cases=$cases_a
similar_b="[{\"item\":\"1\",\"k\":10,\"expected\":$("$nook" similar --bundle "$work/bundle-b" --item 1 --k 10 --json --log warn)}]"

# Serve a bundle (and the page) on a free loopback port: $1 = log file, then nook serve's options.
serve() {
  local log=$1
  shift
  "$nook" serve --www www --port 0 --log warn "$@" >"$log" 2>&1 &
  servers+=($!)
  for _ in $(seq 50); do grep -q "serving on" "$log" && break; sleep 0.1; done
  served=$(sed -n 's/^serving on //p' "$log")
  [ -n "$served" ] || { cat "$log" >&2; exit 1; }
}
servers=()
trap 'kill "${servers[@]}" 2>/dev/null || true' EXIT
# The wasm-bindgen test runner's page is on another origin: this one server adds CORS.
serve "$work/serve-cors.log" --bundle "$work/bundle" --cors
cors_url=$served

echo "== wasm-bindgen-test parity against $cors_url" >&2
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=600
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
# Both builds of the client: SIMD128 and relaxed SIMD (the encoder's other integer kernel).
for features in "" "--features relaxed-simd"; do
  # shellcheck disable=SC2086 # $features is zero or two words
  NOOK_PARITY_BUNDLE_URL="${cors_url}bundle/" NOOK_PARITY_CASES="$cases" NOOK_PARITY_SIMILAR="$similar" \
    cargo test -p nook-wasm --profile wasm --target wasm32-unknown-unknown --test parity $features
done
serve "$work/serve-cors-b.log" --bundle "$work/bundle-b" --cors
echo "== wasm-bindgen-test parity against $served (bundle B: encoder prompts)" >&2
NOOK_PARITY_BUNDLE_URL="${served}bundle/" NOOK_PARITY_CASES="$cases_b" NOOK_PARITY_SIMILAR="$similar_b" \
  cargo test -p nook-wasm --profile wasm --target wasm32-unknown-unknown --test parity

echo "== browser package: build, TypeScript types, page suite (Playwright)" >&2
scripts/build-wasm.sh
tools/node_modules/.bin/tsc --strict --noEmit --target es2022 --module es2022 --moduleResolution bundler \
  --lib es2022,dom tests/types/usage.ts
# The page as users get it: nook serve's own headers (no CORS).
serve "$work/serve.log" --bundle "$work/bundle"
NOOK_PAGE_URL=$served NOOK_SERVER=nook NOOK_BIN=$nook NOOK_BUNDLE=$work/bundle NOOK_BUNDLE_B=$work/bundle-b \
  NOOK_ARTIFACTS=$work node --test --test-concurrency=1 tests/browser/

echo "== page suite's core checks against nginx (docs/deploy/nginx.conf)" >&2
nginx_dir=$(realpath "$work")/nginx
nginx_url=$(tests/browser/nginx.sh start "$nginx_dir" "$(realpath www)" "$(realpath "$work/bundle")")
trap 'kill "${servers[@]}" 2>/dev/null || true; tests/browser/nginx.sh stop "$nginx_dir"' EXIT
NOOK_PAGE_URL=$nginx_url NOOK_SERVER=nginx NOOK_ARTIFACTS=$work/nginx \
  node --test --test-concurrency=1 tests/browser/page.test.mjs
