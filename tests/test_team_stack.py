"""The team stack, exercised for real on loopback: PostgreSQL, an S3 endpoint and the MLflow server
started by docker/mlflow-server.sh, the script docker-compose.yml runs. Docker itself is not needed."""
import json, os, re, signal, subprocess, sys, time
from pathlib import Path
import pytest, yaml
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN, TINY_TRIAL
from stack import MlflowServer, ROOT, http_ok, start_team_stack, stop_team_stack, wait_until

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    parts = start_team_stack(tmp_path_factory.mktemp("stack"))
    yield parts
    stop_team_stack(parts)

@pytest.fixture
def team_dir(workdir, small_dataset, stack, monkeypatch):
    "A working folder whose dataset is the session's small one, with MLFLOW_TRACKING_URI pointing at the server."
    (workdir / "data").mkdir()
    (workdir / "data" / "tiny_coco.yaml").write_text(Path(small_dataset).read_text())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack[2].uri)
    return workdir

def write_grid(folder, name, lr0s):
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "experiment": f"team-{name}", "fixed": TINY_TRIAL,
                                    "grid": {"lr0": lr0s}}))
    return path

def test_compose_file_runs_the_tested_server_script():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["mlflow"]["command"] == ["/usr/local/bin/mlflow-server.sh"]
    dockerfile = (ROOT / "Dockerfile.mlflow").read_text()
    assert "COPY docker/mlflow-server.sh docker/refuse-examples.sh /usr/local/bin/" in dockerfile
    script = (ROOT / "docker" / "mlflow-server.sh").read_text()
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)", script))
    assert needed <= set(services["mlflow"]["environment"]), needed - set(services["mlflow"]["environment"])
    for name, svc in services.items():
        if "image" in svc: assert re.search(r":[\w.\-]+$", svc["image"]) and not svc["image"].endswith(":latest"), name
        for port in svc.get("ports", []): assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
    for name in ("postgres", "minio", "mlflow"): assert "healthcheck" in services[name], name
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["minio-init"]["entrypoint"] == ["/bin/sh", "/usr/local/share/yolo-mlops/minio-init.sh"]
    assert "anonymous set none" in (ROOT / "docker" / "minio-init.sh").read_text()  # private buckets
    text = (ROOT / "docker-compose.yml").read_text()
    assert "minio12345" not in text and "change-me" not in text  # credentials come from .env only
    assert ".env" in (ROOT / ".gitignore").read_text().split() and (ROOT / ".env.example").exists()

@pytest.mark.heavy
def test_grid_and_promotion_against_the_server(team_dir, stack):
    pg, s3, server = stack
    r = yolo_mlops("grid", "--grid", write_grid(team_dir, "pair", [0.002, 0.02]), "--workers", "2", cwd=team_dir)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    p = yolo_mlops("promote", "--experiment", "team-pair", "--grid", "pair", "--min-gain-baseline", "-1",
                   "--model-name", "team-model", cwd=team_dir)
    assert p.returncode == 0 and "PROMOTED" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name("team-pair")
    trials = [x for x in client.search_runs([exp.experiment_id]) if x.data.tags.get("stage") == "train"]
    assert len(trials) == 2 and all(c.info.status == "FINISHED" for c in trials)
    keys = s3.keys()  # artifacts went through the server into the bucket
    for run in trials:
        assert any(f"{run.info.run_id}/artifacts/notebook/" in k and k.endswith(".ipynb") for k in keys), run.info.run_id
        assert any(k.endswith(f"{run.info.run_id}/artifacts/weights/best.pt") for k in keys)
    assert any(k.endswith("/MLmodel") for k in keys) and any(k.endswith("05_promotion.ipynb") for k in keys)
    rows = dict(line.split("|") for line in pg.sql("SELECT run_uuid, status FROM runs").split())  # metadata in PostgreSQL
    assert all(rows.get(c.info.run_id) == "FINISHED" for c in trials)
    assert pg.sql("SELECT count(*) FROM model_versions WHERE name = 'team-model'").strip() == "1"

@pytest.mark.heavy
def test_four_workers_logging_at_once_lose_no_metric_point(stack):
    _, _, server = stack
    code = """
import sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1]); rid = sys.argv[2]
for step in range(150):
    c.log_metric(rid, "load", float(step), step=step)
"""
    client = MlflowClient(server.uri)
    exp = client.create_experiment(f"load-{time.time_ns()}")
    runs = [client.create_run(exp).info.run_id for _ in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", code, server.uri, rid]) for rid in runs]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    for rid in runs:
        assert sorted(m.step for m in client.get_metric_history(rid, "load")) == list(range(150))

@pytest.mark.heavy
def test_trials_logging_the_same_dataset_at_once_all_succeed(stack):
    "Grid trials start together and log one dataset: PostgreSQL rejects all but one insert of its row."
    import threading, warnings
    import mlflow, pandas as pd
    from yolo_mlops.train import log_input_tolerating_races
    _, _, server = stack
    mlflow.set_tracking_uri(server.uri)
    client = MlflowClient(server.uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = mlflow.data.from_pandas(pd.DataFrame({"path": ["a.jpg"]}), source="/data/tiny", name="tiny", digest="d1")
    errors = []
    for trial in range(3):  # the race is not lost every time; plain mlflow.log_input loses it in most trials
        exp = client.create_experiment(f"race-{time.time_ns()}")
        runs = [client.create_run(exp).info.run_id for _ in range(8)]
        barrier = threading.Barrier(len(runs))
        def log(rid):
            with mlflow.start_run(run_id=rid, nested=True):
                barrier.wait()
                try: log_input_tolerating_races(ds)
                except Exception as e: errors.append(e)
        threads = [threading.Thread(target=log, args=(r,)) for r in runs]
        for t in threads: t.start()
        for t in threads: t.join()
        assert all(len(client.get_run(r).inputs.dataset_inputs) == 1 for r in runs)
    assert errors == []

@pytest.mark.heavy
def test_basic_auth_refuses_a_request_without_credentials(stack, tmp_path):
    pg, s3, _ = stack
    secured = MlflowServer(pg, s3, tmp_path / "auth", auth=True)
    secured.start()
    try:
        url = f"{secured.uri}/api/2.0/mlflow/experiments/search?max_results=1"
        assert http_ok(url) == 401
        assert http_ok(url, auth="admin:wrong") == 401
        assert http_ok(url, auth="admin:admin-test-pw") == 200
    finally:
        secured.stop()

def _runs(uri, experiment):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [r for r in client.search_runs([exp.experiment_id], max_results=500) if r.data.tags.get("stage") == "train"] if exp else []

@pytest.mark.heavy
def test_server_stopped_mid_grid_fails_fast_and_resume_completes(team_dir, stack):
    _, _, server = stack
    grid = write_grid(team_dir, "outage", [0.002, 0.005, 0.01])  # two at a time: the server stops after the first
    proc = subprocess.Popen([str(BIN / "yolo-mlops"), "grid", "--grid", str(grid), "--workers", "2"], cwd=team_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: any(r.info.status == "FINISHED" for r in _runs(server.uri, "team-outage")), "a finished trial", 300, proc)
    server.stop()
    t0 = time.time()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and time.time() - t0 < 240, err[-2000:]
    assert "unreachable" in (out + err), (out + err)[-2000:]
    server.start()
    r = yolo_mlops("grid", "--grid", grid, "--workers", "2", cwd=team_dir)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    runs = _runs(server.uri, "team-outage")
    finished = [x.data.tags["grid_trial_key"] for x in runs if x.info.status == "FINISHED"]
    assert len(finished) == 3 == len(set(finished))  # every trial once, none twice
    assert not [x for x in runs if x.info.status == "RUNNING"]

@pytest.mark.heavy
def test_artifact_store_down_fails_the_run_clearly_and_resume_repairs(team_dir, stack):
    _, s3, server = stack
    grid = write_grid(team_dir, "s3down", [0.002])
    s3.stop()
    try:
        r = yolo_mlops("grid", "--grid", grid, cwd=team_dir)
        assert r.returncode == 1, r.stderr[-3000:]
        runs = _runs(server.uri, "team-s3down")
        assert len(runs) == 1 and runs[0].info.status == "FAILED"
        assert "artifact" in runs[0].data.tags.get("error", "").lower(), runs[0].data.tags.get("error")
    finally:
        s3.start().create_bucket()  # moto keeps its buckets in memory: a restarted endpoint is empty
    r = yolo_mlops("grid", "--grid", grid, cwd=team_dir)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert sorted(x.info.status for x in _runs(server.uri, "team-s3down")) == ["FAILED", "FINISHED"]
