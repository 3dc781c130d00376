#!/usr/bin/env bash
# Create or reuse the project's virtual environment (.venv), install the project with its dev tools, Ray, Optuna,
# DVC (datasets under version control), MkDocs (the course site, scripts/docs.sh) and the exporters (ONNX, OpenVINO:
# nbs/06_export.ipynb), and register the Jupyter kernel "yolo-mlops" inside .venv so JupyterLab and papermill run the
# notebooks against this checkout's library.
# Re-running is cheap: the install is skipped while settings.ini and setup.py are unchanged. The install uses uv (below),
# or pip where uv cannot install or YOLO_MLOPS_INSTALLER=pip says so.
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
EXTRAS=".[dev,ray,search,dvc,docs,export]"

# uv installs the same packages as pip in less than half the time (84 s against 180-224 s on a 2-core machine,
# 2026-12-07: it downloads and unpacks in parallel), but reads no pip configuration: the settings that say where
# packages come from (indexes, find-links, constraints) are carried over. --index-strategy unsafe-best-match takes each
# package's best release from every index, as pip does; --compile-bytecode writes the .pyc files pip writes.
install_with_uv() {
  "$VENV/bin/python" -m pip install "uv>=0.13,<0.14" || return 1
  local from_pip
  from_pip=$("$VENV/bin/python" scripts/pip_config_for_uv.py) || return 1
  local options=() line
  while IFS= read -r line; do [ -z "$line" ] || options+=("$line"); done <<< "$from_pip"
  # ${options[@]+...}: an empty array under `set -u` in macOS's bash 3.2
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --index-strategy unsafe-best-match --compile-bytecode \
    ${options[@]+"${options[@]}"} -e "$EXTRAS"
}
install_with_pip() {
  "$VENV/bin/python" -m pip install --upgrade pip && "$VENV/bin/python" -m pip install -e "$EXTRAS"
}

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" -c "import yolo_mlops, nbdev, papermill" 2>/dev/null; then
  echo "[setup] installing yolo-mlops and its dependencies into $VENV (first time: 1-2 minutes, more on a slow network)"
  log="$VENV/install.log"
  # YOLO_MLOPS_INSTALLER=pip installs with pip alone; where uv cannot install, pip does
  installed=no
  if [ "${YOLO_MLOPS_INSTALLER:-uv}" != "pip" ]; then
    if install_with_uv >"$log" 2>&1; then installed=yes
    else echo "[setup] uv could not install (log: $VENV/uv-install.log): installing with pip instead"; mv "$log" "$VENV/uv-install.log"
    fi
  fi
  if [ "$installed" = no ] && ! install_with_pip >"$log" 2>&1; then installed=failed; fi
  if [ "$installed" = failed ] \
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
