#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 60 s each). Stable Rust works with
# `-s none` (no sanitizer): a panic or a hang is still a finding.
#   fuzz/run.sh            # 60 s per target
#   fuzz/run.sh 3600       # an hour per target, for long runs
#   fuzz/run.sh 600 iptables_rule   # only the named targets
# Crashes land in fuzz/artifacts/<target>/; turn each into a regression test.
# fuzz/seeds/<target>/ (committed) holds seed inputs: real runtime requests and hand-written
# edge cases; the growing corpus stays in fuzz/corpus/<target>/ (not committed).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${secs}s"
  corpora=("corpus/$t")
  mkdir -p "corpus/$t"
  [ -d "seeds/$t" ] && corpora+=("seeds/$t")
  cargo fuzz run -s none "$t" "${corpora[@]}" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
done
