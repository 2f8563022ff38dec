#!/usr/bin/env bash
# The tools venv: cargo-lambda and zig from PyPI in .venv-tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/pyvenv.sh "${VENV_TOOLS:-.venv-tools}" requirements-tools.txt

# cargo lambda build --arm64 needs the aarch64 standard library.
target=aarch64-unknown-linux-gnu
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    echo "venv-tools: rustup target add $target" >&2
    timeout 600 rustup target add "$target"
fi
