#!/usr/bin/env bash
# Installs moto (an S3-compatible server, from PyPI) into .tools/moto for the backup tests:
# pinned by scripts/moto-requirements.txt, and fast when it is already there.
#
# Usage: scripts/install-moto.sh     (make test runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.tools/moto
REQS=scripts/moto-requirements.txt
STAMP=$VENV/.requirements.sha256
say() { echo "install-moto: $*"; }
want=$("$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$REQS")
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] \
    && "$VENV/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
    say "moto up to date in $VENV"
    exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || { echo "install-moto: ERROR: $PYTHON -m venv failed (Debian: apt-get install python3-venv; scripts/install-tools.sh does)" >&2; exit 1; }
say "installing $(grep -cE '^[A-Za-z]' "$REQS") pinned packages into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
"$VENV/bin/python" -c 'import moto.server, boto3'
echo "$want" >"$STAMP"
say "moto $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("moto"))') in $VENV"
