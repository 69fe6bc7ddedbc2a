#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) with cargo-fuzz, one after another, and prints
# executions and crashes per target. By hand, not in CI (CI replays fuzz/corpus as a test).
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them. New
# inputs go to out/fuzz/corpus/<target> (the committed seed corpus stays small); crashes to
# fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv_rows bundle_load bundle_use cli_numbers tokenize recommend)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
(cd fuzz && cargo fuzz build -O)
printf '%-12s %10s %14s %10s %8s\n' target seconds executions exec/s crashes
for t in "${targets[@]}"; do
  mkdir -p "out/fuzz/corpus/$t" "out/fuzz/logs"
  log="out/fuzz/logs/$t.log"
  status=0
  (cd fuzz && cargo fuzz run -O "$t" "../out/fuzz/corpus/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1) >"$log" 2>&1 || status=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
  printf '%-12s %10s %14s %10s %8s\n' "$t" "$seconds" "$execs" "$rate" "$crashes"
  [ "$status" -eq 0 ] || echo "  $t exited with $status: see $log" >&2
done
