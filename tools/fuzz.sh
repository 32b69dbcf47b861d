#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each):
#   tools/fuzz.sh [seconds]
# Needs a nightly toolchain and cargo-fuzz (installed here when missing).
# A crash stops the run with libFuzzer's report; the input that crashed is
# kept under fuzz/artifacts/<target>/, the corpus under fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
mkdir -p logs
for target in calendar rightsizing letters; do
  echo "== $target for ${seconds} s"
  if ! cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      >"logs/$target.log" 2>&1; then
    tail -n 40 "logs/$target.log"
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "logs/$target.log" || tail -n 3 "logs/$target.log"
done
