"""The Ray backend on a real local Ray cluster: a head node and a worker node on loopback (Ray's own
`ray.cluster_utils.Cluster`, real raylet processes), logging to the team stack's tracking server."""
import os, subprocess
import pytest, yaml
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN, RAY_HEAD_ENV, TINY_TRIAL
from stack import ray_agent_ports, start_ray_head, start_ray_node, start_team_stack, stop_team_stack, wait_until

pytestmark = pytest.mark.trains  # tests/conftest.py: left out of `scripts/test.sh --quick`

CLIENT_PORT = 10071  # Ray Client server of the head node: the ray:// address

@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    parts = start_team_stack(tmp_path_factory.mktemp("ray-stack"))
    yield parts[2].uri
    stop_team_stack(parts)

@pytest.fixture(scope="module")
def cluster():
    "A Ray head node with one CPU, on loopback; each test adds the worker node it needs."
    os.environ.update(RAY_HEAD_ENV)  # the nodes, and the grid's driver (a subprocess inheriting this), too
    c = start_ray_head(CLIENT_PORT)
    yield c
    c.shutdown()
    for name in RAY_HEAD_ENV: os.environ.pop(name, None)

def add_worker_node(cluster):
    "A worker node with one CPU (its agents' ports given: `ray_agent_ports`; started again if it timed out)."
    node = start_ray_node(lambda: cluster.add_node(num_cpus=1, **ray_agent_ports()))
    cluster.wait_for_nodes()
    return node

@pytest.fixture
def team_dir(workdir, small_dataset, monkeypatch, tracking):
    (workdir / "data").mkdir()
    (workdir / "data" / "tiny_coco.yaml").write_text(small_dataset.read_text())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    return workdir

TRIALS = 2  # one per node: the head and the worker node have one CPU each, so the two trials run side by side

def write_grid(folder, name):
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "experiment": f"ray-{name}", "fixed": TINY_TRIAL,
                                    "grid": {"lr0": [0.002, 0.02]}}))
    return path

def trial_runs(uri, experiment):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [r for r in client.search_runs([exp.experiment_id], "tags.grid_trial_key != ''")] if exp else []

def test_ray_grid_runs_every_trial_on_both_nodes(team_dir, cluster, tracking):
    worker = add_worker_node(cluster)
    try:
        r = yolo_mlops("grid", "--grid", write_grid(team_dir, "spread"), "--backend", "ray",
                       "--address", f"ray://127.0.0.1:{CLIENT_PORT}", cwd=team_dir)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        runs = trial_runs(tracking, "ray-spread")
        assert len(runs) == TRIALS and all(x.info.status == "FINISHED" for x in runs)
        client = MlflowClient(tracking)
        for run in runs:  # each executed notebook is in its run, and back on this machine
            notebooks = [a.path for a in client.list_artifacts(run.info.run_id, "notebook")]
            assert notebooks == [run.data.tags["notebook"].replace(".ipynb", ".html"), run.data.tags["notebook"]]  # + its HTML
            assert (team_dir / "outputs" / "grids" / "spread" / run.data.tags["notebook"].split("/")[-1]).exists()
            assert run.data.tags["grid_backend"] == "ray" and run.data.params["dataset_digest"]
        assert {x.data.tags["ray_node_id"] for x in runs} == {cluster.head_node.node_id, worker.node_id}  # both nodes
        assert all("127.0.0.1" in x.data.tags["grid_node"] for x in runs)
        again = yolo_mlops("grid", "--grid", team_dir / "spread.yaml", "--backend", "ray", "--address", cluster.address, cwd=team_dir)
        assert again.returncode == 0 and f"{TRIALS} already done, 0 to run" in again.stderr, again.stderr[-2000:]
    finally:
        cluster.remove_node(worker)

def test_killing_a_worker_node_mid_grid_fails_its_trial_and_resume_completes(team_dir, cluster, tracking):
    victim = add_worker_node(cluster)
    grid = write_grid(team_dir, "victim")
    proc = subprocess.Popen([str(BIN / "yolo-mlops"), "grid", "--grid", str(grid), "--backend", "ray", "--address", cluster.address],
                            cwd=team_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def victim_is_training():
            return any(x.info.status == "RUNNING" and x.data.tags.get("ray_node_id") == victim.node_id
                       and "baseline_val_mAP50" in x.data.metrics for x in trial_runs(tracking, "ray-victim"))
        wait_until(victim_is_training, "a trial training on the worker node", 300, proc)
        cluster.remove_node(victim, allow_graceful=False)  # the node dies, with its raylet, workers and their trials
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None: proc.kill()
    assert proc.returncode == 1, out[-2000:] + err[-3000:]
    runs = trial_runs(tracking, "ray-victim")
    failed = [x for x in runs if x.info.status == "FAILED"]
    assert failed and all(x.data.tags["ray_node_id"] == victim.node_id and "died" in x.data.tags["error"] for x in failed)
    assert not [x for x in runs if x.info.status == "RUNNING"]
    r = yolo_mlops("grid", "--grid", grid, "--backend", "ray", "--address", cluster.address, cwd=team_dir)
    assert r.returncode == 0 and f"{TRIALS - len(failed)} already done, {len(failed)} to run" in r.stderr, r.stderr[-3000:]
    finished = [x for x in trial_runs(tracking, "ray-victim") if x.info.status == "FINISHED"]
    assert len(finished) == TRIALS and len({x.data.tags["grid_trial_key"] for x in finished}) == TRIALS  # each trial once

def test_a_node_with_another_coco128_fails_the_trial_instead_of_training(team_dir, cluster, tracking, dataset, tmp_path):
    "A node that cannot find the grid's dataset builds its own copy; with other source data its digest differs."
    from yolo_mlops.data_sources import make_fake_coco128
    from yolo_mlops.data import dataset_recipe
    from yolo_mlops.grid import Trial, notebook_code_hash
    from yolo_mlops.local_trials import TrialJob
    from yolo_mlops.launcher import close_trial_run
    from yolo_mlops.grid_ray import RayBackend
    from yolo_mlops.runner import start_training_run
    backend = RayBackend(address=cluster.address)
    backend.start(tracking)
    try:
        recipe = {**dataset_recipe(dataset), "yaml": str(tmp_path / "not-on-this-node.yaml"),
                  "source": str(make_fake_coco128(tmp_path / "other-coco", n_person=70))}
        backend._recipes[""] = recipe  # what a node without the grid's files, and with another COCO128, gets
        params = dict(TINY_TRIAL)
        run_params = {"experiment": "ray-digest", "tracking_uri": tracking, "expected_digest": recipe["digest"]}
        run_id, _ = start_training_run({**params, **run_params}, tags={"grid_trial_key": "k"})
        job = TrialJob(0, params, run_params, run_id, "trial000", tmp_path, notebook_code_hash(), "digest")
        ended = backend.run(job)
        assert ended.returncode == 1 and "not the copy the grid's dataset was built from" in ended.error
        outcome = close_trial_run(MlflowClient(tracking), Trial(0, params, "k"), job, ended, 1.0)
        assert outcome.status == "FAILED" and "digest" in outcome.error
        run = MlflowClient(tracking).get_run(run_id)
        assert run.info.status == "FAILED" and "train_box_loss" not in run.data.metrics  # nothing was trained
    finally:
        backend.close()
