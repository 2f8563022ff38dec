#!/usr/bin/env bash
# Function budgets (DESIGN.md): init time and peak RSS of the host release bins, arm64 zip sizes,
# AWS calls of a triage that opens a new incident. See scripts/bench_init.py.
#
# Env: BENCH_STARTS (20), BENCH_ZIPS=0 to skip the arm64 zip build (zip sizes then show "-"),
#      BENCH_BUILD_TIMEOUT_S (3600 per build).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
build_timeout=${BENCH_BUILD_TIMEOUT_S:-3600}
# cargo builds into $CARGO_TARGET_DIR when it is set: measure the bins it just built there
target=${CARGO_TARGET_DIR:-target}

if [[ ! -x $venv/bin/moto_server ]]; then
    [[ -x scripts/venv.sh ]] || { echo "bench: $venv/bin/moto_server missing and no scripts/venv.sh" >&2; exit 1; }
    scripts/venv.sh
fi

echo "bench: cargo build --release -p firebreak-functions (host, for init and RSS)" >&2
timeout "$build_timeout" cargo build --release -q -p firebreak-functions --bins

if [[ ${BENCH_ZIPS:-1} == 1 ]]; then
    scripts/venv-tools.sh
    echo "bench: cargo lambda build --release --arm64 --output-format zip (zip sizes)" >&2
    PATH="$PWD/${VENV_TOOLS:-.venv-tools}/bin:$PATH" timeout "$build_timeout" \
        cargo lambda build --release --arm64 -p firebreak-functions --output-format zip
fi

exec timeout 1800 "$venv/bin/python" scripts/bench_init.py --bin-dir "$target/release" --zip-dir "$target/lambda" \
    --starts "${BENCH_STARTS:-20}"
