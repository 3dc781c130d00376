#!/usr/bin/env bash
# Create or reuse the project's virtual environment (.venv), install the project with its dev tools, Ray, Optuna,
# DVC (datasets under version control), MkDocs (the course site, scripts/docs.sh) and the exporters (ONNX, OpenVINO:
# nbs/06_export.ipynb), and register the Jupyter kernel "yolo-mlops" inside .venv so JupyterLab and papermill run the
# notebooks against this checkout's library.
# Re-running is cheap: the install is skipped while settings.ini and setup.py are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${YOLO_MLOPS_VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.yolo-mlops-setup"
want=$(cat settings.ini setup.py pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" -c "import yolo_mlops, nbdev, papermill" 2>/dev/null; then
  echo "[setup] installing yolo-mlops and its dependencies into $VENV (first time: a few minutes)"
  log="$VENV/pip-install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip && "$VENV/bin/python" -m pip install -e ".[dev,ray,search,dvc,docs,export]"; } >"$log" 2>&1 \
     || ! "$VENV/bin/python" -c "import yolo_mlops, nbdev, papermill, ultralytics, mlflow, ray, optuna, dvc.api, dvc_s3, mkdocs_jupyter, onnxruntime, openvino, nncf"; then
    grep -v "^WARNING: Location" "$log" | tail -40 >&2
    echo "[setup] installation failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
else
  echo "[setup] $VENV is up to date"
fi
# The kernel belongs to this checkout: registered inside its .venv (--sys-prefix), where this venv's jupyter and
# papermill look first, never in the user's folder, where every checkout on the machine would share one kernel and the
# last setup would win (JupyterLab in one clone would run another clone's library).
if [ ! -f "$VENV/share/jupyter/kernels/yolo-mlops/kernel.json" ]; then
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name yolo-mlops --display-name "Python (yolo-mlops)" >/dev/null
fi
