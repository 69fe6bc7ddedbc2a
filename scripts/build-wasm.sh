#!/usr/bin/env bash
# Builds the browser package `nook-client` into wasm-client/dist/ (what `npm pack` packs, or a site
# copies as one folder): nook-wasm for wasm32 (with SIMD, and a second build with relaxed SIMD),
# wasm-bindgen's JS glue (--target web),
# wasm-opt from npm binaryen@132 (Debian's binaryen 108 emits broken modules), and the package's
# JavaScript and types from wasm-client/js/. Then installs it into the page as www/nook/ and
# writes www/shell.js, the service worker's list of the page's files and their version.
# scripts/install-deps.sh brings what is missing (wasm32 target, wasm-bindgen-cli at the crate's
# exact version, the npm tools).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
scripts/install-deps.sh

dist=wasm-client/dist
rm -rf "$dist.partial"
mkdir -p "$dist.partial"
# Three builds of the client, alike but for the encoder's integer kernel and threads: pkg/ with
# SIMD128 (every browser), pkg-relaxed/ with relaxed SIMD (`--features relaxed-simd`: 16 byte
# products per instruction; a module using it fails validation where relaxed SIMD is missing), and
# pkg-threads/, relaxed SIMD on a pool of Web Workers sharing the module's memory (`--features
# threads`; only where the page is cross-origin isolated). engine.js picks one by feature
# detection. Only nook-core and nook-wasm compile for each (the threaded build's std too: wasm
# threads need a std compiled with atomics, `-Z build-std` on the nightly named in
# scripts/nightly-toolchain, in its own target directory so the other builds keep theirs).
# -O1: on nook's module (4.70 MB from wasm-bindgen, 1.386 MB gzip'd) -O1 took 16 s for 4.12 MB /
# 1.257 MB gzip'd; -O2 42 s for 4.07 MB / 1.268 MB; -O3 68 s; -O4 98 s. Query embedding and top-K
# in Chromium ran at the same speed with -O1 and -O2 (LLVM has optimised already); this step ends
# a new user's first build.
# NOOK_WASM_NAMES=1 keeps function names (for profiles; bench/browser_bench.mjs prints one).
names=()
[ -z "${NOOK_WASM_NAMES:-}" ] || names=(-g)
nightly=$(cat scripts/nightly-toolchain)
# NOOK_WASM_THREADS=0 leaves the threaded build out (scripts/demo.sh, to serve sooner; the engine
# then runs one thread).
builds=(pkg pkg-relaxed pkg-threads)
[ "${NOOK_WASM_THREADS:-1}" != 0 ] || builds=(pkg pkg-relaxed)
for build in "${builds[@]}"; do
  cargo=(cargo)
  features=()
  wasm_opt=()
  out_dir=$target_dir
  case $build in
    pkg-relaxed)
      features=(--features relaxed-simd)
      wasm_opt=(--enable-relaxed-simd)
      ;;
    pkg-threads)
      cargo=(cargo "+$nightly")
      features=(--features relaxed-simd,threads -Z build-std=panic_abort,std)
      wasm_opt=(--enable-relaxed-simd --enable-threads)
      out_dir=$target_dir/wasm-threads
      ;;
  esac
  if [ "$build" = pkg-threads ]; then
    # Shared memory (imported, so every worker instantiates on the same one) up to 4 GiB (the
    # 1M-item catalogue needs ~1 GiB; memory grows as needed), and the thread-local storage
    # symbols wasm-bindgen sets up per worker. rustc adds none of these for `+atomics` itself.
    link=(--shared-memory --import-memory --max-memory=4294967296
      --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base)
    RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd,+atomics,+bulk-memory,+mutable-globals ${link[*]/#/-C link-arg=}" \
      "${cargo[@]}" build -p nook-wasm --profile wasm --target wasm32-unknown-unknown --target-dir "$out_dir" "${features[@]}"
  else
    "${cargo[@]}" build -p nook-wasm --profile wasm --target wasm32-unknown-unknown "${features[@]}"
  fi
  wasm-bindgen --target web --no-typescript --out-dir "$dist.partial/$build" \
    "$out_dir/wasm32-unknown-unknown/wasm/nook_wasm.wasm"
  tools/node_modules/.bin/wasm-opt -O1 "${names[@]}" "${wasm_opt[@]}" \
    --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$dist.partial/$build/nook_wasm_bg.wasm" -o "$dist.partial/$build/nook_wasm_bg.wasm"
done
# wasm-bindgen-rayon's worker script imports its package as `../../..`, a directory a bundler
# resolves; without a bundler it must name the module. (Its no-bundler variant would start the
# workers from blob: URLs, which the page's `worker-src 'self'` rightly refuses.)
if [ -d "$dist.partial/pkg-threads" ]; then
  helpers=$(find "$dist.partial/pkg-threads/snippets" -name workerHelpers.js)
  [ "$(grep -c "import('../../..')" "$helpers")" = 1 ] || { echo "build-wasm: $helpers no longer imports '../../..': check wasm-bindgen-rayon" >&2; exit 1; }
  sed -i "s|import('../../..')|import('../../../nook_wasm.js')|" "$helpers"
fi
cp wasm-client/js/*.js wasm-client/js/*.d.ts wasm-client/js/package.json wasm-client/js/README.md "$dist.partial/"
rm -rf "$dist" && mv "$dist.partial" "$dist"

# The page consumes the package like any site would: a copy of it under www/nook/.
rm -rf www/nook.partial
cp -r "$dist" www/nook.partial
rm -rf www/nook && mv www/nook.partial www/nook

# The service worker caches the page's files as one versioned set (never a new page with an old
# wasm or the reverse); the version is a hash of their SHA-256 listing, which shell.js carries too
# so the worker can check each file it fetches (it fetches only the wasm build its browser runs).
shell=(index.html app.js style.css nook/index.js nook/engine.js nook/worker.js nook/history.js
  nook/pkg/nook_wasm.js nook/pkg/nook_wasm_bg.wasm nook/pkg-relaxed/nook_wasm.js nook/pkg-relaxed/nook_wasm_bg.wasm
)
if [ -d www/nook/pkg-threads ]; then
  mapfile -t snippets < <(cd www && find nook/pkg-threads/snippets -name '*.js' | sort)
  shell+=(nook/pkg-threads/nook_wasm.js nook/pkg-threads/nook_wasm_bg.wasm "${snippets[@]}")
fi
listing=$(cd www && sha256sum "${shell[@]}")
version=$(printf '%s\n' "$listing" | sha256sum | cut -c1-16)
{
  echo "// Written by scripts/build-wasm.sh: the page's files, cached by sw.js as one set."
  printf 'self.NOOK_SHELL = { version: "%s", files: [' "$version"
  printf '"./"'
  printf ', "%s"' "${shell[@]}"
  printf '], sha256: {'
  printf '%s\n' "$listing" | awk '{ printf "%s\"%s\": \"%s\"", (NR > 1 ? ", " : ""), $2, $1 }'
  echo '} };'
} >www/shell.js.partial
mv www/shell.js.partial www/shell.js

for build in "${builds[@]}"; do
  raw=$(stat -c %s "$dist/$build/nook_wasm_bg.wasm")
  gz=$(gzip -9 -c "$dist/$build/nook_wasm_bg.wasm" | wc -c)
  echo "$dist/$build/nook_wasm_bg.wasm: $raw bytes, $gz gzip'd" >&2
done
echo "$dist (nook-client, also www/nook/); page version $version" >&2
