#!/usr/bin/env sh
# Our engine against DuckDB on the same realistic mixed JSON-lines file, 1 and 2 threads.
# Creates bench-data/.venv-bench (duckdb pinned, from PyPI) and bench-data/mixed-<bytes>.jsonl
# (deterministic) on first run; builds firebreak in release.
# FIREBREAK_BENCH_BYTES=50000000 crates/insights/bench-duckdb.sh  for a quick run.
set -eu
cd "$(dirname "$0")/../.."
BYTES="${FIREBREAK_BENCH_BYTES:-259000000}"
DATA="bench-data/mixed-$BYTES.jsonl"
mkdir -p bench-data
if [ ! -x bench-data/.venv-bench/bin/python ]; then
  python3 -m venv bench-data/.venv-bench
  bench-data/.venv-bench/bin/pip install --quiet duckdb==1.4.3
fi
mkdir -p bench-data
if [ ! -f "$DATA" ]; then
  python3 crates/insights/bench/gen_mixed.py "$DATA.partial" "$BYTES"
  mv "$DATA.partial" "$DATA"
fi
cargo build --release -p firebreak-cli --quiet
TARGET="${CARGO_TARGET_DIR:-target}"
exec bench-data/.venv-bench/bin/python crates/insights/bench/side_by_side.py "$TARGET/release/firebreak" "$DATA"
