#!/usr/bin/env bash
# Creates or refreshes a Python virtualenv from pinned requirement files, idempotently.
#
#   scripts/pyvenv.sh DIR REQUIREMENTS.txt [MORE.txt ...]
#
# The venv is rebuilt only when the requirement files (or the Python version) change: a stamp
# file DIR/.requirements.sha256 holds the hash of what was installed last. A failed install
# leaves no stamp, so the next run tries again.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 VENV_DIR REQUIREMENTS.txt [MORE.txt ...]" >&2
    exit 2
fi
venv=$1
shift
for req in "$@"; do
    [[ -f $req ]] || { echo "pyvenv: no such requirements file: $req" >&2; exit 2; }
done

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "pyvenv: $python not found" >&2; exit 1; }

want=$({ "$python" --version 2>&1; cat "$@"; } | sha256sum | cut -d' ' -f1)
stamp=$venv/.requirements.sha256
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exit 0
fi

echo "pyvenv: installing $* into $venv" >&2
rm -f "$stamp"
[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
reqs=()
for req in "$@"; do reqs+=(-r "$req"); done
timeout "${PYVENV_TIMEOUT_S:-900}" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${reqs[@]}"
echo "$want" >"$stamp"
