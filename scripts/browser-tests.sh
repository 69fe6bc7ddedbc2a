#!/usr/bin/env bash
# Browser tests, in headless Debian Chromium:
#  1. wasm-bindgen-test: the wasm client's rankings equal native `nook recommend` (ids exact,
#     scores within 1e-4) for fixed likes, dislikes and queries;
#  2. Playwright (playwright-core from npm, Debian's chromium): the page loads, three likes give ten
#     recommendations, none of them liked.
# Uses a small bundle trained here on MovieLens 100k (ALS + hybrid only).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
work=${NOOK_BROWSER_TEST_DIR:-out/browser-tests}
mkdir -p "$work"

for bin in chromium chromedriver; do
  command -v "$bin" >/dev/null || { echo "$bin is missing: apt-get install chromium chromium-driver" >&2; exit 1; }
done

cargo build --release -p nook-trainer
nook=$target_dir/release/nook
if [ ! -f "$work/bundle/manifest.json" ] || [ "$nook" -nt "$work/bundle/manifest.json" ]; then
  "$nook" train --data assets/data/ml-100k --out "$work/model" --models pop,als,content,hybrid,content-ft,fused-ft \
    --ft-steps 12 --ft-batch 16 --log warn >/dev/null
  "$nook" export --model "$work/model" --out "$work/bundle" --log warn
fi

# Native answers for the parity cases.
cases='['
sep=''
add_case() { # request JSON, then nook recommend arguments
  local request=$1
  shift
  local expected
  expected=$("$nook" recommend --bundle "$work/bundle" --json --log warn "$@")
  cases+="$sep{\"request\":$request,\"expected\":$expected}"
  sep=','
}
add_case '{"likes":["1","50","181"],"k":10}' --like 1 --like 50 --like 181 --k 10
add_case '{"likes":["1","50"],"dislikes":["172"],"query":"a scary movie with zombies","k":10}' \
  --like 1 --like 50 --dislike 172 --query "a scary movie with zombies" --k 10
add_case '{"query":"romantic comedy in paris","k":20}' --query "romantic comedy in paris" --k 20
add_case '{"likes":["50","1","100"],"query":"a scary horror movie","query_weight":3.5,"k":10}' \
  --like 50 --like 1 --like 100 --query "a scary horror movie" --query-weight 3.5 --k 10
add_case '{"k":5}' --k 5
cases+=']'

# Serve the bundle (and the page) on a free loopback port.
log=$work/serve.log
"$nook" serve --bundle "$work/bundle" --www www --port 0 --cors --log warn >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "serving on" "$log" && break; sleep 0.1; done
url=$(sed -n 's/^serving on //p' "$log")
[ -n "$url" ] || { cat "$log" >&2; exit 1; }

echo "== wasm-bindgen-test parity against $url" >&2
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=600
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
NOOK_PARITY_BUNDLE_URL="${url}bundle/" NOOK_PARITY_CASES="$cases" \
  cargo test -p nook-wasm --profile wasm --target wasm32-unknown-unknown --test parity

echo "== page test (Playwright)" >&2
scripts/build-wasm.sh
if [ ! -d tools/node_modules/playwright-core ]; then (cd tools && npm ci --no-audit --no-fund --loglevel=error); fi
NOOK_PAGE_URL=$url NOOK_BIN=$nook NOOK_BUNDLE=$work/bundle NOOK_ARTIFACTS=$work node --test --test-concurrency=1 tests/browser/
