#!/usr/bin/env bash
# Creates <workspace>/.venv with the pinned Python tools of requirements-dev.txt (moto's server
# for the integration tests). Idempotent: does nothing when .venv was built from the same
# requirements (their sha256 is kept in .venv/.requirements.sha256).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/requirements-dev.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "venv: $venv is up to date"
    exit 0
fi

if ! "$python" -c 'import venv' 2>/dev/null; then
    echo "venv: $python has no venv module (install python3-venv)" >&2
    exit 1
fi

rm -f "$stamp"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/moto_server" --help >/dev/null
echo "$want" >"$stamp"
echo "venv: $venv ready ($("$venv/bin/python" -m pip show moto | grep '^Version'))"
