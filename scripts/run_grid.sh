#!/usr/bin/env bash
# Thin wrapper: every argument goes to `yolo-mlops grid` (see `yolo-mlops grid --help`).
# Example: bash scripts/run_grid.sh --grid grids/course.yaml --workers 2
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
exe="$here/.venv/bin/yolo-mlops"
[ -x "$exe" ] || exe="yolo-mlops"
exec "$exe" grid "$@"
