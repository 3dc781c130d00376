#!/usr/bin/env bash
# The project's main job on the embedded MLflow store (SQLite + local artifacts in this folder):
# set up the environment, then build the dataset. Extra arguments go to `yolo-mlops data`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/yolo-mlops data "$@"
