#!/usr/bin/env bash
# One-shot GPU benchmark of `yolo-mlops grid` against the plain per-trial loop (benchmarks/bench_grid.py) on the lent
# device machine. Run from the repo root, with $OUT set:   bash .gpu/run.sh
# Everything it prints also goes to $OUT/bench.log; GPU use to $OUT/gpu.csv; trial logs etc. to $OUT/bench_*.tgz.
# Nothing is downloaded: the Python packages missing on the device come from .whl/, COCO128 and yolov8n.pt from .gpu/shared/.
# How the bundle was made (2026-11, Python 3.12 on the device; torch, numpy, pandas, opencv and friends are there):
#   echo /.whl/ >> .git/info/exclude; echo /.gpu/ >> .git/info/exclude; mkdir -p .gpu && cp benchmarks/device/run_gpu_bench.sh .gpu/run.sh
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl <each package below, at the .venv's versions>
#   mkdir -p .gpu/shared/datasets .gpu/shared/weights; cp -r ../shared/datasets/coco128 .gpu/shared/datasets/; cp ../shared/weights/yolov8n.pt .gpu/shared/weights/
# Packages carried: alembic annotated_types asttokens beautifulsoup4 bleach cachetools cffi comm cryptography
#   databricks_sdk defusedxml entrypoints executing fastapi fastjsonschema gitdb gitpython google_auth
#   importlib_metadata ipykernel ipython ipython_pygments_lexers jsonschema jsonschema_specifications
#   jupyter_client jupyter_core jupyterlab_pygments mako matplotlib_inline mistune mlflow mlflow_skinny
#   mlflow_tracing nbclient nbconvert nbformat nest_asyncio2 opentelemetry_api opentelemetry_proto
#   opentelemetry_sdk opentelemetry_semantic_conventions pandocfilters papermill pexpect platformdirs polars
#   prettytable prompt_toolkit ptyprocess pure_eval pyasn1 pyasn1_modules pycparser pydantic pydantic_core
#   python_dotenv pyzmq referencing rpds_py smmap soupsieve sqlalchemy sqlparse stack_data starlette tenacity
#   tinycss2 tornado traitlets typing_inspection ultralytics ultralytics_platform ultralytics_thop uvicorn wcwidth
#   webencodings
# The tree that travels must stay under 64 MiB: polars (53 MB) was carried as a 1.0.0 wheel with its debug symbols
# stripped, and mlflow's wheel without its web UI (its Python code is mlflow-skinny's). Then run it with the device tool:
#   run(command="bash .gpu/run.sh", carry=[".whl", ".gpu"], timeout_s=600)
# Overridable for a local dry run: PYTHON, YM_WHL (wheel folder), YM_DEVICE, YM_A_ARGS, YM_B_ARGS, YM_A_TIMEOUT, YM_B_AFTER, YM_END, YM_FORCE_VENV.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
ROOT=$PWD

setup() {
  set -e
  local t0=$SECONDS
  die() { echo "[setup] FAILED: $*" >&2; exit 1; }
  [ -f settings.ini ] && [ -f benchmarks/bench_grid.py ] || die "run me from the repo root (no settings.ini / benchmarks/bench_grid.py in $PWD)"
  PY=${PYTHON:-python3}
  command -v "$PY" >/dev/null || die "no $PY"
  WHL=${YM_WHL:-.whl}
  ls "$WHL"/*.whl >/dev/null 2>&1 || die "no wheels in $WHL (carry .whl)"
  [ -f .gpu/shared/weights/yolov8n.pt ] && [ -d .gpu/shared/datasets/coco128/images ] || die "no .gpu/shared/{weights/yolov8n.pt,datasets/coco128} (carry .gpu)"
  echo "[setup] $(date -u +%FT%TZ) host $(hostname), $(nproc) CPUs, $(free -g | awk '/Mem/{print $2}') GiB RAM"
  nvidia-smi -L || echo "[setup] WARNING: nvidia-smi -L failed"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

  # 1. the packages: into the device python's own environment (a throwaway machine), else into a venv that sees it
  SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [ -z "${YM_FORCE_VENV:-}" ] && touch "$SITE/.ym_write_test" 2>/dev/null; then
    rm -f "$SITE/.ym_write_test"
  else
    echo "[setup] $SITE is not writable: using a venv in /tmp/ym-venv that sees it"
    "$PY" -m venv --without-pip /tmp/ym-venv || die "python -m venv failed"
    local vsite; vsite=$(/tmp/ym-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import site; site.addsitedir('$SITE')" > "$vsite/zz_parent_env.pth"  # a nested venv sees only the base python
    PY=/tmp/ym-venv/bin/python; SITE=$vsite
  fi
  echo "[setup] python $PY ($("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')), site-packages $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-cache-dir --disable-pip-version-check "$WHL"/*.whl 2>&1 \
    | grep -v "^WARNING: Running pip as the 'root' user\|dependency resolver\|requires .*, which is not installed\|which is incompatible" || true
  "$PY" -m pip show -q mlflow ultralytics papermill >/dev/null 2>&1 || die "pip install of $WHL/*.whl failed"
  # versions the device's own packages must have for the carried ones ("not installed" lines: left out on purpose)
  local conflicts; conflicts=$("$PY" -m pip check 2>/dev/null | grep "but you have" || true)
  [ -n "$conflicts" ] && { echo "[setup] version conflicts (pip check):"; echo "$conflicts"; }
  if grep -qi "but you have typing.extensions" <<<"$conflicts"; then  # pydantic 2.14 needs typing_extensions>=4.16
    echo "[setup] upgrading typing_extensions from .gpu/cond"
    "$PY" -m pip install -q --no-index --no-deps --upgrade --disable-pip-version-check .gpu/cond/typing_extensions-*.whl
  fi

  # 2. this project, editable (its console script `yolo-mlops` beside the interpreter, as bench_grid.py expects)
  if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --disable-pip-version-check -e . >/tmp/ym-pip-e.log 2>&1; then
    echo "[setup] pip install -e . failed (tail below); installing by hand: a .pth, a dist-info and the script"
    tail -5 /tmp/ym-pip-e.log
    "$PY" - "$SITE" "$ROOT" <<'EOF' || die "manual install of yolo_mlops failed"
import configparser, os, sys
from pathlib import Path
site, root = Path(sys.argv[1]), sys.argv[2]
cfg = configparser.ConfigParser(delimiters=["="]); cfg.read(Path(root) / "settings.ini"); c = cfg["DEFAULT"]
ver, scripts = c["version"], c.get("console_scripts", "").split()
(site / "yolo_mlops_repo.pth").write_text(root + "\n")
di = site / f"yolo_mlops-{ver}.dist-info"; di.mkdir(exist_ok=True)
(di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: yolo-mlops\nVersion: {ver}\n")
(di / "entry_points.txt").write_text("[console_scripts]\n" + "\n".join(s.replace("=", " = ", 1) for s in scripts) + "\n")
(di / "top_level.txt").write_text("yolo_mlops\n"); (di / "INSTALLER").write_text("manual\n"); (di / "RECORD").write_text("")
for s in scripts:
    name, target = s.split("="); mod, fn = target.split(":")
    p = Path(sys.executable).parent / name
    p.write_text(f"#!{sys.executable}\nimport sys\nfrom {mod} import {fn}\nsys.exit({fn}())\n"); p.chmod(0o755)
EOF
  fi
  BIN=$("$PY" -c 'import sys, os; print(os.path.dirname(sys.executable))')
  [ -x "$BIN/yolo-mlops" ] || die "no console script $BIN/yolo-mlops"

  # 3. the environment of every run
  unset MLFLOW_TRACKING_URI YOLO_MLOPS_HOME YOLO_MLOPS_DATA YOLO_MLOPS_NBS YOLO_MLOPS_KERNEL
  export YOLO_MLOPS_COCO128=$ROOT/.gpu/shared/datasets/coco128 YOLO_MLOPS_WEIGHTS=$ROOT/.gpu/shared/weights/yolov8n.pt
  export YOLO_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1

  # 4. imports, versions, the CUDA device, and the Jupyter kernel papermill will start ("python3" -> this interpreter)
  "$PY" - <<'EOF' || die "import / kernel check failed"
import sys, importlib.metadata as md
import torch, torchvision, numpy, pandas, polars, ultralytics, mlflow, papermill, nbconvert, ipykernel, yolo_mlops.cli
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
print("[setup] versions:", ", ".join(f"{p} {md.version(p)}" for p in
      ("torch", "torchvision", "numpy", "pandas", "polars", "ultralytics", "mlflow", "mlflow-skinny", "sqlalchemy",
       "papermill", "nbconvert", "ipykernel", "jupyter_client", "yolo_mlops")))
print(f"[setup] cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
from yolo_mlops import config
from jupyter_client.kernelspec import KernelSpecManager
name = config.notebook_kernel(); spec = KernelSpecManager().get_kernel_spec(name)
print(f"[setup] kernel {name!r}: {spec.argv[:3]} from {spec.resource_dir}")
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name=name)
try:
    out = []
    kc.execute_interactive("import sys, ultralytics, mlflow; print(sys.executable)", timeout=120,
                           output_hook=lambda m: out.append(m["content"]["text"]) if m["msg_type"] == "stream" and m["content"].get("name") == "stdout" else None)
    exe = "".join(out).strip()
finally:
    kc.stop_channels(); km.shutdown_kernel(now=True)
print(f"[setup] the kernel runs {exe}")
if exe != sys.executable: sys.exit(f"the kernel runs {exe}, not {sys.executable}")
EOF
  echo "[setup] yolo-mlops: $BIN/yolo-mlops; setup took $((SECONDS - t0)) s"
  set +e
}

bench() {  # bench NAME TIMEOUT ARGS...: bench_grid.py under a timeout; its scratch folder (trial logs, store) into $OUT
  local name=$1 limit=$2; shift 2
  local t=$SECONDS before; before=$(ls -d /tmp/bench_grid_* 2>/dev/null)
  echo; echo "=== [$name] $(date -u +%T) python benchmarks/bench_grid.py $* (timeout ${limit}s)"
  timeout --kill-after=20 "$limit" "$PY" benchmarks/bench_grid.py "$@"
  local rc=$?
  echo "=== [$name] exit $rc$([ $rc = 124 ] && echo ' (TIMED OUT)') after $((SECONDS - t)) s"
  local work; work=$(comm -13 <(echo "$before") <(ls -d /tmp/bench_grid_* 2>/dev/null) | tail -1)
  if [ -n "$work" ]; then  # logs, executed notebooks, results.csv, the MLflow store: no weights, no images
    tar -C "$work" -czf "$OUT/bench_$name.tgz" --exclude='*.pt' --exclude='*.jpg' --exclude='*.png' --exclude='*.html' --exclude='notebook' --exclude='./data' . 2>/dev/null
    [ "$(stat -c %s "$OUT/bench_$name.tgz")" -gt 15000000 ] && rm -f "$OUT/bench_$name.tgz"
    for f in "$work"/outputs/grids/*/*.log; do [ -f "$f" ] && { echo "--- tail of $f"; tail -3 "$f"; }; done 2>/dev/null | tail -40
  fi
  return $rc
}

main() {
  ( setup ) || exit 1
  # setup ran in a subshell (set -e): recompute what the benches need
  PY=${PYTHON:-python3}; [ -x /tmp/ym-venv/bin/python ] && PY=/tmp/ym-venv/bin/python
  export YOLO_MLOPS_COCO128=$ROOT/.gpu/shared/datasets/coco128 YOLO_MLOPS_WEIGHTS=$ROOT/.gpu/shared/weights/yolov8n.pt
  export YOLO_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
  unset MLFLOW_TRACKING_URI YOLO_MLOPS_HOME YOLO_MLOPS_DATA YOLO_MLOPS_NBS YOLO_MLOPS_KERNEL
  echo "[net] what an offline download attempt costs each GPU trial (Ultralytics' AMP check tries to fetch yolo26n.pt):"
  local tn=$SECONDS; timeout 60 curl -sS --connect-timeout 30 -o /dev/null https://github.com 2>&1 | tail -1; echo "[net] $((SECONDS - tn)) s"
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 > "$OUT/gpu.csv" 2>/dev/null &
  local smi=$!
  local dev=${YM_DEVICE:-0}
  # a) the plain sequential loop on the GPU vs all 8 trials packed on the GPU
  # shellcheck disable=SC2086
  bench a "${YM_A_TIMEOUT:-420}" --grid grids/course.yaml --device "$dev" ${YM_A_ARGS:---per-device 8 --bare-packed}
  # b) one worker on the GPU (bench_grid passes --workers 1 --device 0 to `yolo-mlops grid`), if time is left
  local end=${YM_END:-560}
  if [ "$SECONDS" -lt "${YM_B_AFTER:-330}" ]; then
    # shellcheck disable=SC2086
    bench b $((end - SECONDS)) --grid grids/course.yaml --device "$dev" ${YM_B_ARGS:---workers 1} --skip-plain
  else
    echo; echo "=== [b] skipped: $SECONDS s elapsed (>= ${YM_B_AFTER:-330} s)"
  fi
  kill "$smi" 2>/dev/null
  echo; echo "=== done after $SECONDS s; grep -E 'plain sequential|yolo-mlops grid,|ratio' above for the numbers"
}

main 2>&1 | tee "$OUT/bench.log"
exit "${PIPESTATUS[0]}"
