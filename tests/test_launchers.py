"""A grid shared by several launchers (a class on one tracking server), and searches beyond full grids:
two launchers started together train each trial once, a killed launcher's trial is taken over, a random
search is reproducible, and a tpe search resumes from the runs in MLflow."""
import os, signal, subprocess, time
from pathlib import Path
import pytest
import yaml
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN, TINY_TRIAL as TINY
from test_grid import grid_dir, runs_of, has_notebook  # noqa: F401 (grid_dir is a fixture)

pytestmark = pytest.mark.trains  # tests/conftest.py: left out of `scripts/test.sh --quick`


def write(folder: Path, name: str, **spec) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **spec}))
    return path

def launch(grid, cwd, *args, env=None):
    return subprocess.Popen([BIN / "yolo-mlops", "grid", "--grid", grid, "--workers", "1", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or os.environ.copy())

def wait_until(condition, timeout=300, what="the condition"):
    "Poll `condition` until it holds (a store written by other processes has no event to wait on)."
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition(): return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")

def trial_rows(stdout: str) -> list[str]:
    "The rows of the table a grid prints at the end (one per trial), up to its summary line (`grid NAME: ...`)."
    lines = stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.split()[:1] == ["trial"])
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("grid ")), len(lines))
    return [l for l in lines[start + 1:end] if l.strip()]

def test_two_launchers_train_each_trial_once_and_both_print_the_whole_grid(grid_dir):
    grid = write(grid_dir, "shared", fixed=TINY, grid={"lr0": [0.001, 0.002], "seed": [1, 2]})
    a, b = launch(grid, grid_dir), launch(grid, grid_dir)
    (out_a, err_a), (out_b, err_b) = a.communicate(timeout=900), b.communicate(timeout=900)
    assert a.returncode == 0 and b.returncode == 0, err_a[-3000:] + err_b[-3000:]
    client, trials, parents = runs_of(grid_dir)
    assert len(parents) == 1, [p.info.run_id for p in parents]  # both launchers agreed on one parent run
    keys = [c.data.tags["grid_trial_key"] for c in trials]
    assert len(trials) == 4 and len(set(keys)) == 4, keys  # exactly one training run per trial
    assert all(c.info.status == "FINISHED" and has_notebook(client, c.info.run_id) for c in trials)
    run_ids = {c.info.run_id for c in trials}
    for out in (out_a, out_b):  # each launcher ends with the whole grid's table
        rows = trial_rows(out)
        assert len(rows) == 4 and {r for r in run_ids if any(r in row for row in rows)} == run_ids, out
    assert "another launcher" in out_a + out_b  # the table says who trained what
    assert "trained by another launcher" in err_a + err_b  # ... and so do the progress lines

def test_a_killed_launcher_is_taken_over(grid_dir):
    grid = write(grid_dir, "takeover", fixed={**TINY, "epochs": 3}, grid={"lr0": [0.001, 0.002, 0.003]})
    env = {**os.environ, "YOLO_MLOPS_HEARTBEAT_S": "1"}
    from yolo_mlops.config import get_or_create_experiment
    get_or_create_experiment()  # the store exists before we poll it
    a = launch(grid, grid_dir, env=env)
    b = None
    of = lambda proc: [c for c in runs_of(grid_dir)[1] if c.data.tags["grid_pid"] == str(proc.pid)]
    try:
        wait_until(lambda: any(c.info.status == "RUNNING" for c in of(a)), what="the first launcher's trial")
        b = launch(grid, grid_dir, env=env)  # A holds its trial and the one it prestarts; B claims the third
        wait_until(lambda: any(c.info.status == "RUNNING" for c in of(b)), what="the second launcher's trial")
        a.send_signal(signal.SIGKILL)  # a launcher dies mid-trial: no chance to close its runs
        a.wait()
        out, err = b.communicate(timeout=900)
    finally:  # a failed wait leaves no launcher behind to slow the tests after this one
        for proc in (a, b):
            if proc is not None and proc.poll() is None: proc.kill(); proc.wait()
    assert b.returncode == 0, err[-3000:]
    assert "this launcher takes it over" in err
    client, trials, _ = runs_of(grid_dir)
    finished = [c for c in trials if c.info.status == "FINISHED"]
    assert len(finished) == 3 and len({c.data.tags["grid_trial_key"] for c in finished}) == 3  # each trial once
    taken = [c for c in of(a) if c.info.status != "FINISHED"]  # A's trials that were running or waiting when it died
    assert taken and all(c.info.status == "FAILED" and c.data.tags["grid_retry"] == "true" for c in taken)
    by_b = {c.data.tags["grid_trial_key"] for c in finished if c.data.tags["grid_pid"] == str(b.pid)}
    assert {c.data.tags["grid_trial_key"] for c in taken} <= by_b  # B trained each of them again, once
    assert len(trial_rows(out)) == 3

def test_random_search_is_reproducible_and_resumes(grid_dir):
    grid = write(grid_dir, "lr-search", method="random", trials=3, search_seed=0, fixed=TINY,
                 space={"lr0": {"loguniform": [0.0005, 0.02]}, "seed": {"choice": [1, 2, 3]}})
    r = yolo_mlops("grid", "--grid", grid, "--workers", "2", cwd=grid_dir)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    _, trials, parents = runs_of(grid_dir)
    lr0s = {c.data.params["lr0"] for c in trials}
    assert len(trials) == 3 and len(lr0s) == 3 and all(0.0005 <= float(x) <= 0.02 for x in lr0s)
    again = yolo_mlops("grid", "--grid", grid, "--workers", "2", cwd=grid_dir)
    assert again.returncode == 0 and "3 already done, 0 to run" in again.stderr, again.stderr[-3000:]
    assert len(runs_of(grid_dir)[1]) == 3

def test_tpe_search_runs_with_two_workers_and_resumes_from_mlflow(grid_dir):
    pytest.importorskip("optuna")
    spec = dict(method="tpe", search_seed=0, fixed=TINY, space={"lr0": {"loguniform": [0.0005, 0.02]}, "seed": {"int": [1, 5]}})
    r = yolo_mlops("grid", "--grid", write(grid_dir, "tpe", trials=2, **spec), "--workers", "2", cwd=grid_dir)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert len(runs_of(grid_dir)[1]) == 2
    more = yolo_mlops("grid", "--grid", write(grid_dir, "tpe", trials=3, **spec), "--workers", "2", cwd=grid_dir)
    assert more.returncode == 0 and "2 already done, 1 to run" in more.stderr, more.stderr[-3000:]
    _, trials, parents = runs_of(grid_dir)
    assert len(parents) == 1 and len(trials) == 3 and len({c.data.params["lr0"] for c in trials}) == 3
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in trials)
