"""Shared fixtures: an isolated working folder per test, and one real dataset built once per session.

COCO128 and yolov8n.pt come from YOLO_MLOPS_COCO128 / YOLO_MLOPS_WEIGHTS when set (CI points them at
../shared), else from Ultralytics' normal downloads."""
import hashlib, json, os, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import pytest
from filelock import FileLock

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

# The trial a test trains when it is about what happens to a trial, not what it learns: one epoch at imgsz 64, no
# dataloader processes, none of Ultralytics' own pictures (`plots`: about 5 s of a small run, benchmarks/bench_plots.py).
TINY_TRIAL = {"epochs": 1, "imgsz": 64, "workers": 0, "plots": False}

# How the tests start a Ray head (tests/test_ray*.py): every node on 127.0.0.1 (Ray's single-machine mode), and, as
# docs/ray.md starts a head for Ray Client, without gRPC's fork support, whose handlers crashed 3 of 50 of the servers
# the head forked for new connections here (benchmarks/ray_client_connections.py, ray-project/ray#63202).
RAY_HEAD_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "GRPC_ENABLE_FORK_SUPPORT": "0"}

@pytest.fixture
def workdir(tmp_path, monkeypatch):
    "An empty working folder as the current directory, with the embedded MLflow store inside it."
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("YOLO_MLOPS_HOME", raising=False)
    monkeypatch.delenv("YOLO_MLOPS_DATA", raising=False)
    return tmp_path

def store_free_env() -> dict:
    """This process's environment without the settings that pick a store, a home or a data folder, as a student's shell
    has it: for a command run by a fixture wider than a test, which `workdir` does not clean. An earlier test's
    `mlflow.set_tracking_uri` sets MLFLOW_TRACKING_URI in this process, and a command inheriting it logs to that store."""
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME", "YOLO_MLOPS_DATA")}

def built_once(tmp_path_factory, worker_id: str, name: str, build) -> dict:
    """What `build(folder)` returns (a JSON-able dict), built once per test run in `folder`, whichever pytest-xdist
    worker asks first; a worker that asks while it is being built waits for it, then reads it (the pattern of
    pytest-xdist's docs). The tests read what it made; none changes what another reads."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master": root = root.parent  # the run's folder, above each worker's own
    folder, done = root / f"shared-{name}", root / f"shared-{name}.json"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            done.write_text(json.dumps(build(folder)))
    return json.loads(done.read_text())

def person_dataset_once(tmp_path_factory, worker_id: str, name: str, split: tuple) -> Path:
    "The person dataset of COCO128 with `split` (train/val/test images), built once per test run; its YAML path."
    def build(folder):
        from yolo_mlops.data import build_tiny_person_dataset
        built = build_tiny_person_dataset(out=folder / "tiny_coco", yaml_path=folder / "tiny_coco.yaml",
                                          n_train=split[0], n_val=split[1], n_test=split[2])
        return {"yaml": str(built.yaml)}
    return Path(built_once(tmp_path_factory, worker_id, name, build)["yaml"])

def command_once(tmp_path_factory, worker_id: str, name: str, *args) -> SimpleNamespace:
    """`yolo-mlops ARGS`, run once per test run in a fresh working folder with a student's environment: its folder
    (`work`), `returncode`, `stdout` and `stderr`."""
    def build(work):
        r = yolo_mlops(*args, cwd=work, env=store_free_env())
        return {"work": str(work), "returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
    built = built_once(tmp_path_factory, worker_id, name, build)
    return SimpleNamespace(**{**built, "work": Path(built["work"])})

@pytest.fixture(scope="session")
def dataset(tmp_path_factory, worker_id):
    "The real tiny person dataset (40/10/10), built once per test run; returns its YAML path."
    from yolo_mlops.data import DEFAULT_SPLIT
    return person_dataset_once(tmp_path_factory, worker_id, "dataset", DEFAULT_SPLIT)

@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, worker_id):
    """A smaller person dataset (8/4/4) for the tests of grids, launchers and faults, which are about what happens to a
    trial, not about what training learns: a trial's training and evaluation cost scales with its images."""
    return person_dataset_once(tmp_path_factory, worker_id, "small-dataset", (8, 4, 4))

@pytest.fixture(scope="session")
def train_command_run(tmp_path_factory, worker_id, dataset):
    """One `yolo-mlops train` run (2 epochs, imgsz 160, the session's dataset), once per test run. The tests of what a
    run records, and of how its report reads in the MLflow UI, read this one run."""
    return command_once(tmp_path_factory, worker_id, "train-command-run",
                        "train", "-p", "epochs=2", "-p", "imgsz=160", "-p", f"data={dataset}", "--quiet")

@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, worker_id):
    """`yolo-mlops pipeline` on the tiny grid (grids/tiny_cpu.yaml: four trials, two at a time), once per test run.
    The pipeline's tests read what it made (those that register models or log a run add only what they then read
    themselves); the grid's first test reads its grid stage (the same `run_and_show_grid` as `yolo-mlops grid
    --workers 2`) and runs the grid again there, which trains nothing."""
    return command_once(tmp_path_factory, worker_id, "tiny-pipeline",
                        "pipeline", "--grid", ROOT / "grids" / "tiny_cpu.yaml", "--model-name", "tiny")

def yolo_mlops(*args, cwd=None, env=None, timeout=600):
    "Run the `yolo-mlops` console script; return the CompletedProcess."
    return subprocess.run([str(BIN / "yolo-mlops"), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)

def tree_state(*paths) -> dict:
    "sha256 of every file under `paths`: a snapshot to prove that nothing changed."
    state = {}
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files: state[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return state

# scripts/test.sh runs the tests on two pytest-xdist workers (`-n 2 --dist loadgroup`): many tests wait on servers,
# kernels and a single training thread, so a second test beside them gains time (on 2026-12-03, on 2 cores: pytest
# 23.5-24.3 min, against 26.6 min in one process). Each module runs whole on one worker, so that its module fixtures
# (a pipeline run, a team stack, a built site) are built once; the two Ray modules share a worker, since two Ray
# clusters at once would fill both cores and compete for Ray's ports. The heaviest modules go first, so that neither
# worker is left with a long module at the end (scripts/test.sh turns off xdist's own reordering by test count).
# pytest 9.2's structured node ids lose xdist's groups without a word (pytest-dev/pytest-xdist#1386: the pipeline
# fixture was built twice): settings.ini keeps pytest below 9.2 until a fixed xdist is out.
HEAVIEST_FIRST = ("test_grid", "test_team_stack", "test_class_server", "test_ray", "test_ray_client", "test_launchers",
                  "test_pipeline", "test_train", "test_pruning", "test_own_data", "test_dvc", "test_docs")

def pytest_configure(config):
    """Two marks sort the tests into tiers: `bash scripts/test.sh --quick` (the edit-run loop: `-m "not trains and not
    heavy"`, at most 3 minutes with nbdev_test) leaves out the tests that train a model (`trains`) and those that start
    something heavy without training (`heavy`: a server stack, a Ray cluster, a built site, every chapter executed).
    CI and `bash scripts/test.sh` run every test."""
    config.addinivalue_line("markers", "trains: trains a model (left out of scripts/test.sh --quick)")
    config.addinivalue_line("markers", "heavy: starts a server, a cluster or a site build (left out of --quick)")

@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config, items):
    def module_of(item): return item.module.__name__.rpartition(".")[2]
    def rank(item):
        name = module_of(item)
        return HEAVIEST_FIRST.index(name) if name in HEAVIEST_FIRST else len(HEAVIEST_FIRST)
    items.sort(key=rank)  # stable: each module keeps its own order
    for item in items:
        name = module_of(item)
        item.add_marker(pytest.mark.xdist_group("ray" if name.startswith("test_ray") else name))
