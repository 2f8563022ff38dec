#!/usr/bin/env bash
# The lint venv: aws-sam-cli and cfn-lint in .venv-lint, checkov in .venv-lint/checkov (its boto3
# pin conflicts with aws-sam-cli's). Idempotent: does nothing when the requirements are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV_LINT:-.venv-lint}
scripts/pyvenv.sh "$venv" requirements-lint.txt
scripts/pyvenv.sh "$venv/checkov" requirements-checkov.txt
