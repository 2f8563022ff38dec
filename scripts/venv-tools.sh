#!/usr/bin/env bash
# The tools venv: cargo-lambda and zig from PyPI in .venv-tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/pyvenv.sh "${VENV_TOOLS:-.venv-tools}" requirements-tools.txt
