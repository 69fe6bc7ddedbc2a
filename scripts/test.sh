#!/usr/bin/env bash
# nook's whole test suite: formatting, lints, every test (real data included), and the wasm32 build
# of the shared core and the client, and the browser tests in headless Chromium. This is the
# README's test command and what CI runs; it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --browser --spark
scripts/setup-assets.sh --e5

# MovieLens latest-small is not fetched: NOOK_MOVIELENS_SMALL, or ../shared/data/movielens-small
# beside the checkout. Its tests are #[ignore]d (listed as such by a plain `cargo test`) and run
# here when it is found.
ignored=()
if [ -z "${NOOK_MOVIELENS_SMALL:-}" ] && [ -f ../shared/data/movielens-small/ratings.csv ]; then
  NOOK_MOVIELENS_SMALL=$(cd ../shared/data/movielens-small && pwd)
fi
if [ -n "${NOOK_MOVIELENS_SMALL:-}" ]; then
  export NOOK_MOVIELENS_SMALL
  ignored=(-- --include-ignored)
else
  echo "note: movielens-small not found (NOOK_MOVIELENS_SMALL, ../shared/data/movielens-small): its tests stay ignored" >&2
fi
# The GPU conformance suite runs on Mesa's lavapipe (Vulkan on the CPU), which wants a runtime dir.
mkdir -p "${XDG_RUNTIME_DIR:=$(mktemp -d)}" && chmod 700 "$XDG_RUNTIME_DIR" && export XDG_RUNTIME_DIR

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --features nook-core/gpu -- -D warnings
echo "== cargo test (the GPU ranking conformance suite on Mesa's lavapipe included)" >&2
cargo test --workspace "${ignored[@]}"
if [ ${#ignored[@]} -eq 0 ]; then
  echo "== the real-Spark route test (ignored by a plain cargo test: it needs Java and pyspark)" >&2
  cargo test -p nook-e2e --test spark_route -- --ignored
fi
echo "== cargo clippy for wasm32 (nook-core, nook-wasm)" >&2
cargo clippy -p nook-core -p nook-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings
cargo clippy -p nook-core -p nook-wasm --target wasm32-unknown-unknown --all-targets --features nook-wasm/relaxed-simd -- -D warnings
echo "== browser tests" >&2
scripts/browser-tests.sh
echo "all checks passed" >&2
