#!/usr/bin/env bash
# The GPU checks in one command (scripts/device_check.py): on a machine with a CUDA GPU it finishes in
# under 8 minutes and prints one table, every row "ran" or "not run" with the reason. Without a GPU every
# row says "not run". Extra arguments go to device_check.py (e.g. --device cpu --tiny).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
export WANDB_MODE=offline PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 "$PY" scripts/device_check.py "$@"
