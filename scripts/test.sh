#!/usr/bin/env bash
# nook's whole test suite: formatting, lints, every test (real data included), and the wasm32 build
# of the shared core and the client, and the browser tests in headless Chromium. This is the
# README's test command and what CI runs; it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --browser
scripts/setup-assets.sh

# MovieLens latest-small sits beside the checkout in this workplace; tests use it when present.
if [ -z "${NOOK_MOVIELENS_SMALL:-}" ]; then
  for candidate in ../shared/data/movielens-small /work/shared/data/movielens-small; do
    if [ -f "$candidate/ratings.csv" ]; then
      export NOOK_MOVIELENS_SMALL
      NOOK_MOVIELENS_SMALL=$(cd "$candidate" && pwd)
      break
    fi
  done
fi
if [ -n "${NOOK_MOVIELENS_SMALL:-}" ]; then
  export NOOK_REQUIRE_DATA=1 # both real data sets are here: a test that skips would be a silent pass
else
  echo "note: movielens-small not found; its real-data tests will skip" >&2
fi

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --features nook-core/gpu -- -D warnings
echo "== cargo test" >&2
cargo test --workspace
echo "== GPU ranking conformance (wgpu on Mesa's lavapipe)" >&2
mkdir -p "${XDG_RUNTIME_DIR:=$(mktemp -d)}" && chmod 700 "$XDG_RUNTIME_DIR" && export XDG_RUNTIME_DIR
NOOK_REQUIRE_GPU=1 cargo test -p nook-core --features gpu --test ranking_backends
echo "== cargo clippy for wasm32 (nook-core, nook-wasm)" >&2
cargo clippy -p nook-core -p nook-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings
echo "== browser tests" >&2
scripts/browser-tests.sh
echo "all checks passed" >&2
