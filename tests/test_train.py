"""Training runs, for real and really logged: the `yolo-mlops train` command end to end, the learning
rate that is actually used, bad parameters, and a run whose kernel or trainer process dies in the middle of
training."""
import os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN

def client_for(workdir) -> MlflowClient:
    return MlflowClient(f"sqlite:///{workdir}/mlruns.db")

def artifact_paths(client, run_id, path=""):
    out = []
    for a in client.list_artifacts(run_id, path):
        out += artifact_paths(client, run_id, a.path) if a.is_dir else [a.path]
    return out

def only_run(client):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]

def mlflow_models_of(run_id, workdir):
    import mlflow
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlruns.db")
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    return mlflow.search_logged_models(experiment_ids=experiments, filter_string=f"source_run_id = '{run_id}'", output_format="list")

def test_parameters_cell_matches_train_config():
    "The report's `parameters` cell sets every parameter of `TrainConfig`, with its default, and nothing else."
    import json
    from dataclasses import asdict, fields
    from yolo_mlops.config import training_notebook
    from yolo_mlops.parameters import TrainConfig
    nb = json.loads(training_notebook().read_text())
    source = next("".join(c["source"]) for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    namespace = {"TrainConfig": TrainConfig, "asdict": asdict}
    exec(source, namespace)  # what papermill's kernel does with the cell (it then sets the parameters it is given)
    cell = {k: repr(v) for k, v in namespace.items() if k not in ("TrainConfig", "asdict", "__builtins__")}
    defaults = {f.name: repr(f.default) for f in fields(TrainConfig)}
    assert set(cell) == set(defaults)
    for name, value in cell.items():
        assert eval(value) == eval(defaults[name]), name  # the notebook and the library agree on every default

@pytest.mark.trains
def test_train_command_logs_everything(workdir, dataset, train_command_run):
    "`yolo-mlops train -p epochs=2 -p imgsz=160 -p data=...`, run once for the session (tests/conftest.py)."
    r = train_command_run
    assert r.returncode == 0, r.stdout + r.stderr
    client = client_for(r.work)
    run = only_run(client)
    rid = run.info.run_id
    assert run.info.status == "FINISHED" and rid in r.stdout
    p, m, tags = run.data.params, run.data.metrics, run.data.tags
    # requested and effective parameters
    assert (p["epochs"], p["imgsz"], p["optimizer"], p["lr0"]) == ("2", "160", "SGD", "0.002")
    assert p["effective_optimizer"] == "SGD" and float(p["effective_lr0"]) == 0.002 and p["effective_imgsz"] == "160"
    assert {"effective_momentum", "effective_warmup_iters", "dataset_digest"} <= set(p)
    # where it trained (yolo-mlops train: a trainer process), and that the pretrained model was trained on these images
    assert p["train_in"] == "process" and p["baseline_seen_images"] == "true"
    # per-epoch metrics with step = epoch
    for key in ("train_box_loss", "train_cls_loss", "val_precision", "val_recall", "val_mAP50", "val_mAP50_95", "lr_pg0"):
        assert [h.step for h in client.get_metric_history(rid, key)] == [1, 2], key
    # final metrics, baseline and gain, latency
    for split in ("val", "test"):
        for k in ("precision", "recall", "mAP50", "mAP50_95"):
            assert 0 <= m[f"final_{split}_{k}"] <= 1 and 0 <= m[f"baseline_{split}_{k}"] <= 1
        assert m[f"gain_{split}_mAP50"] == pytest.approx(m[f"final_{split}_mAP50"] - m[f"baseline_{split}_mAP50"])
    assert m["latency_ms_median"] > 0
    # dataset input, tags
    ds = run.inputs.dataset_inputs[0].dataset
    assert ds.name == "tiny_coco_person" and p["dataset_digest"].startswith(ds.digest)
    assert {"version.ultralytics", "version.torch", "version.mlflow", "device"} <= set(tags)
    # artifacts, the executed notebook included
    files = artifact_paths(client, rid)
    for f in ("ultralytics/results.csv", "ultralytics/args.yaml", "ultralytics/results.png",
              "ultralytics/predictions.jpg", "weights/best.pt", "notebook/02_train.ipynb"):
        assert f in files, (f, files)
    # the run record: the report rendered as HTML (under 1 MB, its figures embedded), Ultralytics' console in a log
    assert {"notebook/02_train.html", "logs/02_train.console.txt", "evaluation/test_matches.json"} <= set(files), files
    html = Path(client.download_artifacts(rid, "notebook/02_train.html", str(workdir))).read_text()
    assert len(html.encode()) < 1_000_000 and html.count("data:image/") >= 2
    assert "Training curves" in html and "Predictions" in html and "GPU_mem" not in html and "Model summary" not in html
    assert "def train_run" not in Path(client.download_artifacts(rid, "notebook/02_train.ipynb", str(workdir))).read_text()
    assert "Model summary" in Path(client.download_artifacts(rid, "logs/02_train.console.txt", str(workdir))).read_text()
    # system metrics, and the final metrics linked to the logged model
    assert any(k.startswith("system/cpu_utilization") for k in m) and any(k.startswith("system/system_memory") for k in m)
    models = mlflow_models_of(rid, r.work)
    assert models and models[0].metrics and {x.key for x in models[0].metrics} >= {"final_test_mAP50", "gain_test_mAP50"}
    # the pyfunc model predicts person boxes
    import mlflow
    from yolo_mlops.pyfunc import images_to_frame, BOX_COLUMNS
    from yolo_mlops.evaluate import split_images
    mlflow.set_tracking_uri(f"sqlite:///{r.work}/mlruns.db")
    model = mlflow.pyfunc.load_model(f"runs:/{rid}/model")
    boxes = model.predict(images_to_frame(split_images(str(dataset))[:2]), params={"conf": 0.001})
    assert list(boxes.columns) == BOX_COLUMNS and len(boxes) > 0
    assert set(boxes["image"]) <= {0, 1} and (boxes.x2 > boxes.x1).all() and boxes.confidence.between(0, 1).all()

@pytest.mark.trains
def test_runs_that_differ_only_in_batch_are_scored_under_one_protocol(workdir, dataset):
    "The evaluation protocol never follows the training batch: the same eval_* params, and one baseline for both."
    from yolo_mlops.train import train_run
    runs = [train_run(data=str(dataset), epochs=1, imgsz=64, batch=batch, workers=0, plots=False).run_id for batch in (4, 16)]
    client = client_for(workdir)
    params = [client.get_run(r).data.params for r in runs]
    assert [p["batch"] for p in params] == ["4", "16"]
    protocols = [{k: v for k, v in p.items() if k.startswith("eval_")} for p in params]
    assert protocols[0] == protocols[1] and (protocols[0]["eval_imgsz"], protocols[0]["eval_batch"]) == ("64", "1")
    baselines = [{k: v for k, v in client.get_run(r).data.metrics.items() if k.startswith("baseline_")} for r in runs]
    assert baselines[0] == baselines[1] and "baseline_test_mAP50" in baselines[0]
    # the second run read the first one's cache entry: its key holds the protocol, not the training batch
    assert [p["baseline_source"] for p in params] == ["computed", "cache"]

@pytest.mark.trains
def test_lr0_is_used_and_changes_the_weights(workdir, dataset):
    import torch
    from yolo_mlops.train import train_run
    runs = {lr: train_run(epochs=1, imgsz=64, lr0=lr, freeze=0, data=str(dataset), workers=0, plots=False) for lr in (0.02, 0.001)}
    client = client_for(workdir)
    weights = {}
    for lr, res in runs.items():
        params = client.get_run(res.run_id).data.params
        assert float(params["effective_lr0"]) == lr and float(params["lr0"]) == lr
        ckpt = torch.load(Path(res.save_dir) / "weights" / "best.pt", map_location="cpu", weights_only=False)
        weights[lr] = {k: v.float() for k, v in ckpt["model"].state_dict().items()}
    differing = [k for k in weights[0.02] if not torch.allclose(weights[0.02][k], weights[0.001][k])]
    assert differing, "two runs that differ only in lr0 ended with identical weights"

def test_unknown_or_bad_parameter_fails_before_training(workdir, dataset):
    r = yolo_mlops("train", "-p", "lr=0.01", "-p", f"data={dataset}")
    assert r.returncode == 2 and "did you mean 'lr0'" in r.stderr
    r = yolo_mlops("train", "-p", "imgsz=100", "-p", f"data={dataset}")
    assert r.returncode == 2 and "not a multiple of 32" in r.stderr
    assert not (workdir / "mlruns.db").exists()  # nothing was started

@pytest.mark.trains
def test_bad_parameter_inside_the_notebook_is_a_failed_run_with_its_notebook(workdir, dataset):
    from yolo_mlops.runner import run_training_notebook
    result = run_training_notebook({"lr": 0.01, "data": str(dataset)}, log_output=False)  # as papermill would pass it
    assert result.status == "FAILED" and "did you mean 'lr0'" in result.error
    client = client_for(workdir)
    run = client.get_run(result.run_id)
    assert "did you mean 'lr0'" in run.data.tags["error"]
    assert "train_seconds" not in run.data.metrics  # it failed before training
    assert "notebook/02_train.ipynb" in artifact_paths(client, result.run_id)
    assert "TrainParameterError" in Path(result.notebook).read_text()  # the traceback is in the notebook
    assert "TrainParameterError" in Path(result.notebook).with_suffix(".html").read_text()  # and in its HTML
    assert "notebook/02_train.html" in artifact_paths(client, result.run_id)

@pytest.mark.trains
def test_kernel_killed_during_training_ends_failed_with_notebook(workdir, dataset):
    import psutil
    from yolo_mlops.config import get_or_create_experiment
    get_or_create_experiment()  # create the store first: two processes must not create one SQLite schema at once
    client = client_for(workdir)
    proc = subprocess.Popen([str(BIN / "yolo-mlops"), "train", "-p", "epochs=50", "-p", "imgsz=64", "-p", "workers=0", "-p", "plots=false",
                             "-p", f"data={dataset}", "--quiet"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until training is really under way: the first epoch is logged
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        if runs and client.get_metric_history(runs[0].info.run_id, "train_box_loss"): break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    else: pytest.fail("training never logged an epoch")
    kernels = [c for c in psutil.Process(proc.pid).children(recursive=True) if "ipykernel" in " ".join(c.cmdline())]
    assert kernels
    for k in kernels: k.send_signal(signal.SIGKILL)  # what the OOM killer does
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    run = only_run(client)
    assert run.info.status == "FAILED" and "DeadKernelError" in run.data.tags["error"]
    assert "notebook/02_train.ipynb" in artifact_paths(client, run.info.run_id)

@pytest.mark.trains
def test_a_killed_trainer_process_fails_the_run_and_a_killed_kernel_takes_its_trainer_along(workdir, dataset):
    "`yolo-mlops train` trains in a process of its own: its death is a FAILED run, and so is its kernel's, with no trainer left."
    import psutil
    from yolo_mlops.config import get_or_create_experiment
    get_or_create_experiment()
    client = client_for(workdir)
    def start_training():
        proc = subprocess.Popen([str(BIN / "yolo-mlops"), "train", "-p", "epochs=50", "-p", "imgsz=64", "-p", "workers=0", "-p", "plots=false",
                                 "-p", f"data={dataset}", "--quiet"], cwd=workdir, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while time.time() < deadline:  # the first epoch is logged: the trainer process trains
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "attributes.status = 'RUNNING'")
            if runs and client.get_metric_history(runs[0].info.run_id, "train_box_loss"): break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        else: pytest.fail("training never logged an epoch")
        family = psutil.Process(proc.pid).children(recursive=True)
        kernel = next(p for p in family if "ipykernel" in " ".join(p.cmdline()))
        trainer = next(p for p in family if "yolo_mlops.trainer" in " ".join(p.cmdline()))
        return proc, runs[0].info.run_id, kernel, trainer
    proc, run_id, kernel, trainer = start_training()
    trainer.send_signal(signal.SIGKILL)  # what the OOM killer does to the biggest process
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    run = client.get_run(run_id)
    assert run.info.status == "FAILED" and "the training process ended (exit code -9)" in run.data.tags["error"]
    proc, run_id, kernel, trainer = start_training()
    kernel.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and client.get_run(run_id).info.status == "FAILED", out + err
    trainer.wait(timeout=30)  # raises psutil.TimeoutExpired if the trainer outlived its kernel

@pytest.mark.trains
def test_training_cadence_is_counted_and_every_gain_has_its_interval(workdir, dataset):
    "40 images, batch 8, 2 epochs: 10 batches; Ultralytics steps once (nbs 64: every 8 batches) or 10 times (nbs 8)."
    import json, mlflow
    from yolo_mlops.train import train_run
    from yolo_mlops.evaluate import matches_from_json, image_matches_map
    client = client_for(workdir)
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlruns.db")
    for nbs, steps, per_epoch, accumulate in ((64, 1, [0, 1], 8), (8, 10, [5, 5], 1)):
        res = train_run(epochs=2, imgsz=64, batch=8, nbs=nbs, data=str(dataset), workers=0, plots=False)
        run = client.get_run(res.run_id)
        p, m = run.data.params, run.data.metrics
        assert (p["nbs"], p["effective_accumulate"], p["bootstrap_resamples"]) == (str(nbs), str(accumulate), "1000")
        assert m["optimizer_steps"] == steps and m["first_step_epoch"] == (2 if nbs == 64 else 1)
        assert [h.value for h in sorted(client.get_metric_history(res.run_id, "epoch_optimizer_steps"), key=lambda h: h.step)] == per_epoch
        assert m["best_epoch"] in (1, 2)
        # the best checkpoint is the pretrained model exactly when no step came before the best epoch
        assert m["best_is_pretrained"] == float(m["best_epoch"] < m["first_step_epoch"])
        for k in ("mAP50", "mAP50_95"):
            assert m[f"gain_test_{k}_ci_low"] <= m[f"gain_test_{k}"] <= m[f"gain_test_{k}_ci_high"]
        # the interval is made of Ultralytics' own per-image matches: scored again, they give the logged metrics
        raw = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=res.run_id, artifact_path="evaluation/test_matches.json")).read_text())
        assert image_matches_map(matches_from_json(raw["run"])) == pytest.approx((m["final_test_mAP50"], m["final_test_mAP50_95"]), abs=1e-9)
        assert image_matches_map(matches_from_json(raw["baseline"]))[0] == pytest.approx(m["baseline_test_mAP50"], abs=1e-9)

@pytest.mark.trains
def test_early_stopped_run_logs_its_final_metrics(workdir, dataset):
    "patience=1: training stops at epoch 2 or 3 of 8; Ultralytics' final validation of best.pt is still recognised."
    from yolo_mlops.train import train_run
    res = train_run(epochs=8, patience=1, imgsz=160, data=str(dataset), workers=0, plots=False)
    run = client_for(workdir).get_run(res.run_id)
    m = run.data.metrics
    assert run.info.status == "FINISHED" and m["epochs_trained"] < 8
    assert len(client_for(workdir).get_metric_history(res.run_id, "val_mAP50")) == m["epochs_trained"]
    for split in ("val", "test"):
        assert 0 <= m[f"final_{split}_mAP50"] <= 1 and f"gain_{split}_mAP50" in m

@pytest.mark.trains
def test_train_timeout_ends_failed_with_its_notebook(workdir, dataset):
    import psutil
    t0 = time.time()
    r = yolo_mlops("train", "--timeout", "5", "-p", "epochs=50", "-p", "imgsz=64", "-p", "workers=0", "-p", "plots=false", "-p", f"data={dataset}", "--quiet")
    assert r.returncode == 1 and time.time() - t0 < 45, (time.time() - t0, r.stdout + r.stderr)
    run = only_run(client_for(workdir))
    assert run.info.status == "FAILED" and "timed out after 5 s" in run.data.tags["error"]
    files = artifact_paths(client_for(workdir), run.info.run_id)
    assert {"notebook/02_train.ipynb", "notebook/02_train.html"} <= set(files), files
    assert not [p for p in psutil.process_iter(["cmdline"]) if "ipykernel" in " ".join(p.info["cmdline"] or [])
                and str(workdir) in " ".join(p.info["cmdline"] or [])]  # no kernel left behind
