#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 60 s each). Stable Rust works with
# `-s none` (no sanitizer): a panic or a hang is still a finding.
#   fuzz/run.sh            # 60 s per target
#   fuzz/run.sh 3600       # an hour per target, for long runs
# Crashes land in fuzz/artifacts/<target>/; turn each into a regression test.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
for t in $(cargo fuzz list); do
  echo "== fuzzing $t for ${secs}s"
  cargo fuzz run -s none "$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
done
