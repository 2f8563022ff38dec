#!/usr/bin/env bash
# Lints infra/template.yaml offline: sam validate --lint, cfn-lint, checkov. Creates the lint venv
# (scripts/venv-lint.sh) when missing or stale. Exits non-zero on the first linter that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV_LINT:-.venv-lint}
template=${TEMPLATE:-infra/template.yaml}
scripts/venv-lint.sh

# sam and cfn-lint need a region even offline; no credentials are needed or read.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export SAM_CLI_TELEMETRY=0
# checkov: no calls home (guidelines, run config); --skip-download below covers the rest.
export BC_SKIP_MAPPING=TRUE
export CHECKOV_NO_TELEMETRY=1

step() { printf '\n== %s\n' "$*" >&2; }

step "sam validate --lint $template"
timeout 300 "$venv/bin/sam" validate --lint --template "$template"

step "cfn-lint $template"
timeout 300 "$venv/bin/cfn-lint" "$template"

step "checkov -f $template (skips are in the template's Metadata, each with its reason)"
timeout 300 "$venv/checkov/bin/checkov" -f "$template" --framework cloudformation --quiet --compact \
    --skip-download

# Every checkov skip must say why.
timeout 60 "$venv/bin/python" - "$template" <<'PY'
import sys
from cfnlint.decode import decode
tpl, errs = decode(sys.argv[1])
if errs:
    sys.exit(f"cannot parse {sys.argv[1]}: {errs}")
bad = []
for name, res in (tpl.get("Resources") or {}).items():
    for skip in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
        if not str(skip.get("comment") or "").strip():
            bad.append(f"{name}: {skip.get('id')}")
if bad:
    sys.exit("checkov skips without a comment: " + ", ".join(bad))
PY
echo "lint-infra: ok" >&2
