#!/usr/bin/env bash
# The project's main job on the embedded MLflow store (SQLite + local artifacts in this folder):
# set up the environment, then run the whole pipeline (data -> grid -> analysis -> promotion) with the
# CPU-sized grid grids/cpu.yaml. Extra arguments go to `yolo-mlops pipeline`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/yolo-mlops pipeline "$@"
