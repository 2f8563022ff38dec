#!/usr/bin/env sh
# Throughput of the local Logs Insights engine (called by `make bench`).
# Generates bench-data/insights-<bytes>.jsonl (1 GiB, deterministic) on first run.
# FIREBREAK_BENCH_BYTES=50000000 ./bench.sh  for a quick run; the budget is measured at 1 GiB.
set -eu
cd "$(dirname "$0")/../.."
exec cargo bench -p firebreak-insights --bench engine -- "$@"
