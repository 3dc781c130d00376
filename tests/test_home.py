"""From JupyterLab, the same project: a notebook run from `nbs/` (where JupyterLab starts its kernels, or
plain `papermill` started there) uses the dataset and the MLflow store of the checkout's root, the ones
the CLI uses from the root, instead of creating `nbs/data` and `nbs/mlruns.db`."""
import os, shutil, subprocess, sys
import pytest
from pathlib import Path
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN

pytestmark = pytest.mark.heavy  # tests/conftest.py: left out of `scripts/test.sh --quick`

ROOT = Path(__file__).resolve().parents[1]

def clean_env() -> dict:
    "This environment without the variables that would choose the store or the folders for us."
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME", "YOLO_MLOPS_DATA")}

def kernel_name() -> str:
    "The `yolo-mlops` kernel that setup.sh registers, when it runs this environment's Python; else `python3`."
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try: python = KernelSpecManager().get_kernel_spec("yolo-mlops").argv[0]
    except NoSuchKernel: return "python3"
    return "yolo-mlops" if os.path.abspath(python) == os.path.abspath(sys.executable) else "python3"

def copy_checkout(folder: Path) -> Path:
    "A checkout of the project as a student has it: its settings.ini and its notebooks."
    folder.mkdir()
    shutil.copy(ROOT / "settings.ini", folder)
    shutil.copytree(ROOT / "nbs", folder / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_proc"))
    return folder

def shown_settings(cwd, env) -> dict:
    "What `yolo-mlops settings` prints, run in `cwd`."
    r = yolo_mlops("settings", cwd=cwd, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())

def test_notebook_run_from_nbs_uses_the_checkout_root(tmp_path):
    copy, env = copy_checkout(tmp_path / "checkout"), clean_env()
    nbs = copy / "nbs"
    shown = shown_settings(nbs, env)
    assert (shown["home"], shown["home_from"]) == (str(copy.resolve()), "checkout")
    assert shown["tracking_uri"] == f"sqlite:///{copy.resolve()}/mlruns.db"

    r = yolo_mlops("data", cwd=copy, env=env)  # the CLI, from the root
    assert r.returncode == 0, r.stdout + r.stderr
    assert (copy / "data" / "tiny_coco.yaml").is_file()

    before = sorted(p.name for p in nbs.iterdir())
    r = subprocess.run([str(BIN / "papermill"), "02_train.ipynb", str(tmp_path / "executed.ipynb"), "-k", kernel_name(),
                        "-p", "epochs", "1", "-p", "imgsz", "64", "-p", "workers", "0", "-p", "plots", "False"],
                       cwd=nbs, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    client = MlflowClient(f"sqlite:///{copy}/mlruns.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    trained = [run for run in runs if run.data.tags.get("stage") == "train" and run.info.status == "FINISHED"]
    assert len(trained) == 1, [(run.info.status, run.data.tags.get("stage")) for run in runs]
    assert trained[0].data.params["data"] == str((copy / "data" / "tiny_coco.yaml").resolve())
    assert sorted(p.name for p in nbs.iterdir()) == before  # no nbs/mlruns.db, nbs/data, nbs/runs, nbs/mlartifacts...
    for name in ("mlruns.db", "data", "mlartifacts", "runs", "reports"): assert not (nbs / name).exists(), name
