"""Grids for real: the tiny CPU grid with 2 workers and its no-op second run, a deliberately bad trial,
and grids stopped in the middle (SIGTERM, and SIGKILL as a crash) that a resume completes."""
import json, os, signal, subprocess, time
from pathlib import Path
import pytest
import yaml
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN, TINY_TRIAL

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture
def grid_dir(workdir, small_dataset):
    "A working folder whose default dataset YAML is the session's small dataset (8/4/4: a grid's tests are about trials)."
    (workdir / "data").mkdir()
    (workdir / "data" / "tiny_coco.yaml").write_text(Path(small_dataset).read_text())
    return workdir

def runs_of(workdir):
    client = MlflowClient(f"sqlite:///{workdir}/mlruns.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    return client, [r for r in runs if "grid_trial_key" in r.data.tags], [r for r in runs if r.data.tags.get("grid_parent")]

def has_notebook(client, run_id):
    return any(a.path == "notebook" for a in client.list_artifacts(run_id)) and \
        any(a.path.endswith(".ipynb") for a in client.list_artifacts(run_id, "notebook"))

def write_grid(folder, lr0s, name="g"):
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "fixed": TINY_TRIAL, "grid": {"lr0": lr0s}}))
    return path

@pytest.mark.trains
def test_tiny_grid_then_nothing_to_do(tiny_pipeline):
    "The tiny grid with 2 workers, as the pipeline of the session ran it (its grid stage), then the same grid again."
    r, work = tiny_pipeline, tiny_pipeline.work
    assert r.returncode == 0, r.stdout + r.stderr
    client, trials, parents = runs_of(work)
    assert len(parents) == 1 and len(trials) == 4
    assert all(c.info.status == "FINISHED" and c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in trials)
    assert all(has_notebook(client, c.info.run_id) for c in trials)
    assert {a.path for a in client.list_artifacts(parents[0].info.run_id)} >= {"grid_summary.csv", "grid_spec.yaml"}
    note = parents[0].data.tags["mlflow.note.content"]  # the grid file's description, and the best trial, in the UI
    assert note.startswith("Four one-epoch trials") and "Best trial:" in note
    best = max(trials, key=lambda c: c.data.metrics["final_test_mAP50"])
    assert parents[0].data.tags["best_trial_run_id"] == best.info.run_id
    assert "4/4 run: 4 finished, 0 failed, 0 remaining" in r.stderr  # the progress line...
    assert sum(" | trial " in line and " FINISHED in " in line for line in r.stderr.splitlines()) == 4  # ...of trials
    # a fresh home has no baseline yet: the two trials that need it at once compute it once, under its lock
    assert sorted(c.data.params["baseline_source"] for c in trials) == ["cache", "cache", "cache", "computed"]
    budget = str(max(1, (os.cpu_count() or 1) // 2))  # two trials at once share the cores
    assert {(c.data.params["cpu_threads"], c.data.params["train_in"]) for c in trials} == {(budget, "kernel")}
    assert len(list((work / "outputs" / "grids" / "tiny-cpu").glob("trial*.log"))) == 4  # per-trial logs
    again = yolo_mlops("grid", "--grid", ROOT / "grids" / "tiny_cpu.yaml", "--workers", "2", cwd=work)
    assert again.returncode == 0 and "0 to run" in again.stderr
    _, trials2, parents2 = runs_of(work)
    assert len(trials2) == 4 and len(parents2) == 1  # nothing trained twice, the same parent run

@pytest.mark.trains
def test_bad_trial_fails_alone_and_resume_trains_only_it(grid_dir):
    r = yolo_mlops("grid", "--grid", write_grid(grid_dir, [0.002, -1.0]), "--workers", "2", cwd=grid_dir)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "lr0 must be positive" in r.stderr
    client, trials, _ = runs_of(grid_dir)
    by_status = sorted(c.info.status for c in trials)
    assert by_status == ["FAILED", "FINISHED"]
    bad = next(c for c in trials if c.info.status == "FAILED")
    assert "lr0 must be positive" in bad.data.tags["error"] and has_notebook(client, bad.info.run_id)
    fixed = yolo_mlops("grid", "--grid", write_grid(grid_dir, [0.002, 0.01]), "--workers", "2", cwd=grid_dir)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "1 already done, 1 to run" in fixed.stderr
    _, trials, _ = runs_of(grid_dir)
    assert sorted(c.info.status for c in trials) == ["FAILED", "FINISHED", "FINISHED"]

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
@pytest.mark.trains
def test_stopped_grid_resumes_to_completion(grid_dir, sig):
    from yolo_mlops.config import get_or_create_experiment
    get_or_create_experiment()  # the store exists before we poll it
    grid = write_grid(grid_dir, [0.002, 0.005, 0.01])  # two at a time: one finished while the next runs
    proc = subprocess.Popen([str(BIN / "yolo-mlops"), "grid", "--grid", str(grid), "--workers", "2"], cwd=grid_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:  # stop it once a trial has finished and others are under way
        _, trials, _ = runs_of(grid_dir)
        if any(c.info.status == "FINISHED" for c in trials) and any(c.info.status == "RUNNING" for c in trials): break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    else: pytest.fail("the grid never had a finished and a running trial at once")
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    _, trials, _ = runs_of(grid_dir)
    finished_before = {c.info.run_id for c in trials if c.info.status == "FINISHED"}
    if sig == signal.SIGTERM:  # a graceful stop closes its runs itself
        assert not [c for c in trials if c.info.status == "RUNNING"]
    r = yolo_mlops("grid", "--grid", grid, "--workers", "2", cwd=grid_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    _, trials, parents = runs_of(grid_dir)
    assert len(parents) == 1
    assert not [c for c in trials if c.info.status == "RUNNING"]
    finished = [c for c in trials if c.info.status == "FINISHED"]
    keys = [c.data.tags["grid_trial_key"] for c in finished]
    assert len(set(keys)) == 3 and len(keys) == 3  # every trial done exactly once
    assert finished_before <= {c.info.run_id for c in finished}  # finished trials were not trained again

@pytest.mark.trains
def test_a_trial_past_its_timeout_fails_alone(grid_dir):
    path = grid_dir / "slow.yaml"
    # 1,000 epochs that no early stop ends (patience): far past the timeout, even on 8 images
    path.write_text(yaml.safe_dump({"name": "slow", "fixed": {"imgsz": 64, "workers": 0, "patience": 1000, "plots": False},
                                    "grid": {"epochs": [1, 1000]}}))
    # 90 s: the one-epoch trial finishes well inside it even on a loaded machine (it once passed 60 s there)
    r = yolo_mlops("grid", "--grid", path, "--workers", "2", "--timeout", "90", cwd=grid_dir)
    assert r.returncode == 1, r.stdout + r.stderr
    client, trials, _ = runs_of(grid_dir)
    by_epochs = {c.data.params.get("epochs") or c.data.tags["grid_trial"]: c for c in trials}
    assert by_epochs["1"].info.status == "FINISHED"
    slow = next(c for c in trials if c.info.status == "FAILED")
    assert "timed out after 90 s" in slow.data.tags["error"] and has_notebook(client, slow.info.run_id)

def test_unknown_names_and_empty_lists_are_refused_before_anything_runs(grid_dir):
    r = yolo_mlops("grid", "-p", "lr=0.01,0.02", cwd=grid_dir)
    assert r.returncode == 2 and "did you mean 'lr0'" in r.stderr
    (grid_dir / "empty.yaml").write_text("name: e\ngrid:\n  seed: []\n")
    r = yolo_mlops("grid", "--grid", grid_dir / "empty.yaml", cwd=grid_dir)
    assert r.returncode == 2 and "empty list" in r.stderr
    assert not (grid_dir / "mlruns.db").exists()

def test_wrapper_script_passes_its_arguments():
    r = subprocess.run(["bash", str(ROOT / "scripts" / "run_grid.sh"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--per-device" in r.stdout and "--rerun" in r.stdout
    for name in ("run_grid.ps1", "run_grid.cmd"):  # no grid logic of their own: they call `yolo-mlops grid`
        assert "grid" in (ROOT / "scripts" / name).read_text()

@pytest.mark.trains
def test_resume_and_analysis_page_through_more_runs_than_a_page_holds(grid_dir, monkeypatch):
    "Five FINISHED trials of a grid, read back two runs a page: resume finds all five, the analysis lists all five."
    from yolo_mlops.config import get_or_create_experiment
    from yolo_mlops.grid import GridSpec, trial_key, dataset_digest_of, notebook_code_hash
    from yolo_mlops.analysis import runs_table
    monkeypatch.setenv("YOLO_MLOPS_PAGE_SIZE", "2")
    spec = GridSpec("paged", {"lr0": [0.001, 0.002, 0.003, 0.004, 0.005]}, TINY_TRIAL)
    client = MlflowClient(f"sqlite:///{grid_dir}/mlruns.db")
    exp = get_or_create_experiment()
    for i, params in enumerate(spec.trial_params()):  # as a finished grid left them (no training needed to page through them)
        key = trial_key(params, dataset_digest_of(params), notebook_code_hash())
        rid = client.create_run(exp, run_name=f"paged-{i:03d}", tags={"stage": "train", "grid_name": "paged", "grid_trial": str(i),
                                                                       "grid_trial_key": key, "notebook": "notebook/x.ipynb"}).info.run_id
        client.log_param(rid, "lr0", params["lr0"])
        client.set_terminated(rid, "FINISHED")
    r = yolo_mlops("grid", "-p", "lr0=0.001,0.002,0.003,0.004,0.005", "-p", "epochs=1", "-p", "imgsz=64", "-p", "workers=0", "-p", "plots=false",
                   "--name", "paged", cwd=grid_dir, env={**__import__("os").environ, "YOLO_MLOPS_PAGE_SIZE": "2"})
    assert r.returncode == 0 and "5 already done, 0 to run" in r.stderr, r.stdout + r.stderr
    assert len(runs_table(grid="paged")) == 5
