"""A pruned search for real: three tiny trials on 2 workers, the last one (a learning rate that wrecks the model)
stopped by the median pruner after its first epoch through Ultralytics' own stop; its run FINISHED, tagged, with its
notebook, final evaluation and per-epoch metrics up to that epoch; every run's per-epoch predictions as step-indexed
MLflow images; a second invocation trains nothing; the analysis and promotion keep the stopped trial apart; and the
bad pruner settings refused before anything trains. One module-scoped search serves every check."""
from pathlib import Path
import pytest
import yaml
from mlflow import MlflowClient
from conftest import yolo_mlops, store_free_env, TINY_TRIAL

pytestmark = pytest.mark.trains  # tests/conftest.py: left out of `scripts/test.sh --quick`

SEARCH = {"name": "pruned", "method": "random", "trials": 3, "search_seed": 0,  # draws lr0 0.0003, 0.0001, then 0.6
          "fixed": {**TINY_TRIAL, "epochs": 2, "batch": 8, "nbs": 8, "freeze": 0, "warmup_epochs": 0.0,
                    "optimizer": "SGD"},
          "space": {"lr0": {"choice": [0.0001, 0.0003, 0.6]}},
          # two others at an epoch before a trial is judged: the two first, side by side, are never compared alone
          "pruner": {"method": "median", "grace_epochs": 1, "min_trials": 2}}

@pytest.fixture(scope="module")
def search(tmp_path_factory, dataset):
    "The search run once, then again: (folder, first run, second run, client, trial runs)."
    folder = tmp_path_factory.mktemp("pruned")
    (folder / "data").mkdir()
    (folder / "data" / "tiny_coco.yaml").write_text(Path(dataset).read_text())
    (folder / "search.yaml").write_text(yaml.safe_dump(SEARCH))
    first = yolo_mlops("grid", "--grid", "search.yaml", "--workers", "2", cwd=folder, env=store_free_env())
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]  # every check below reads this search
    again = yolo_mlops("grid", "--grid", "search.yaml", "--workers", "2", cwd=folder, env=store_free_env())
    client = MlflowClient(f"sqlite:///{folder}/mlruns.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=100)
    return folder, first, again, client, [r for r in runs if "grid_trial_key" in r.data.tags]

def test_a_hopeless_trial_is_stopped_early_and_ends_cleanly(search):
    folder, first, _, client, trials = search
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert len(trials) == 3 and all(t.info.status == "FINISHED" for t in trials)
    stopped = [t for t in trials if t.data.tags.get("pruned") == "true"]
    assert [t.data.params["lr0"] for t in stopped] == ["0.6"], [t.data.tags for t in trials]
    run = stopped[0]
    assert run.data.tags["pruned_epoch"] == "1" and "val_mAP50_95 0.0000, worse than the median" in \
        run.data.tags["pruned_reason"]
    assert "trial 2 was stopped early by the pruner after epoch 1 of 2" in first.stdout  # which, and when
    assert "stopped early by the pruner after epoch 1" in first.stderr  # in the progress line too
    # Ultralytics' own stop: its epochs up to the stop, then its final evaluation and model, its notebook attached
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_mAP50_95")] == [1]
    assert run.data.metrics["epochs_trained"] == 1 and run.data.metrics["pruned_epoch"] == 1
    assert "final_test_mAP50" in run.data.metrics and "gain_test_mAP50_ci_low" in run.data.metrics
    paths = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"notebook", "weights"} <= paths and run.data.tags["model_uri"].startswith("models:/"), paths
    full = [t for t in trials if t not in stopped]
    assert all([m.step for m in client.get_metric_history(t.info.run_id, "val_mAP50_95")] == [1, 2] for t in full)

def test_every_epoch_has_its_predictions_picture(search):
    _, _, _, client, trials = search
    for t in trials:
        pictures = [a.path for a in client.list_artifacts(t.info.run_id, "images") if a.path.endswith(".png")]
        steps = sorted(int(Path(p).name.split("+step+")[1].split("+")[0]) for p in pictures)
        assert all(Path(p).name.startswith("epoch_predictions+step+") for p in pictures)
        assert steps == list(range(0, int(t.data.metrics["epochs_trained"]) + 1)), pictures  # 0: the pretrained model
        assert t.data.metrics["epoch_predictions_seconds"] > 0
        assert {"confusion_matrix_best_epoch.json", "confusion_matrix_best_epoch.png"} <= \
            {a.path for a in client.list_artifacts(t.info.run_id)}

def test_a_second_invocation_trains_nothing_and_keeps_the_stopped_trial(search):
    _, first, again, client, trials = search
    assert again.returncode == 0 and "0 to run" in again.stderr, again.stderr[-2000:]
    assert "trial 2 was stopped early by the pruner after epoch 1 of 2" in again.stdout  # not forgotten...
    runs = client.search_runs([trials[0].info.experiment_id], "tags.grid_trial_key != ''", max_results=100)
    assert len(runs) == 3  # ...and not trained again

def test_analysis_and_promotion_keep_the_stopped_trial_apart(search):
    folder, _, _, client, trials = search
    from yolo_mlops.analysis import completed, pruned_trials, runs_table
    from yolo_mlops.promotion import PromotionCriteria, check_candidate
    table = runs_table(tracking_uri=f"sqlite:///{folder}/mlruns.db")
    assert len(completed(table)) == 2 and pruned_trials(table)["pruned_epoch"].tolist() == [1]
    row = table[table.pruned_epoch.notna()].iloc[0].to_dict()
    failed = [c.criterion for c in check_candidate(row, PromotionCriteria()) if not c.passed]
    assert "trained every epoch" in failed
    parent = client.get_run(trials[0].data.tags["mlflow.parentRunId"])
    assert parent.data.tags["best_trial_run_id"] != row["run_id"] and parent.data.metrics["trials_pruned"] == 1

@pytest.mark.parametrize("pruner, method, said", [
    ("hyperband", "random", "unknown pruner 'hyperband': use one of median, asha"),
    ("median", "grid", "a pruner stops the trials of a search; it needs method: random or tpe"),
    ({"method": "asha", "grace_epochs": 5}, "random", "grace_epochs is 5 but the trials train 2 epochs")])
def test_bad_pruners_are_refused_before_anything_trains(workdir, pruner, method, said):
    bad = {**SEARCH, "pruner": pruner, "method": method}
    if method == "grid": bad = {**{k: v for k, v in bad.items() if k not in ("space", "trials")}, "grid": {"seed": [1, 2]}}
    (workdir / "bad.yaml").write_text(yaml.safe_dump(bad))
    r = yolo_mlops("grid", "--grid", "bad.yaml", cwd=workdir)
    assert r.returncode == 2 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (workdir / "mlruns.db").exists()
