"""Training runs, for real and really logged: the `yolo-mlops train` command end to end, the learning
rate that is actually used, bad parameters, and a run whose kernel dies in the middle of training."""
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

def test_parameters_cell_matches_train_config():
    import papermill as pm
    from dataclasses import fields
    from yolo_mlops.train import TrainConfig, training_notebook
    cell = {k: v["default"] for k, v in pm.inspect_notebook(str(training_notebook())).items()}
    defaults = {f.name: repr(f.default) for f in fields(TrainConfig)}
    assert set(cell) == set(defaults)
    for name, value in cell.items():
        assert eval(value) == eval(defaults[name]), name  # the notebook and the library agree on every default

def test_train_command_logs_everything(workdir, dataset):
    r = yolo_mlops("train", "-p", "epochs=2", "-p", "imgsz=160", "-p", f"data={dataset}", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    client = client_for(workdir)
    run = only_run(client)
    rid = run.info.run_id
    assert run.info.status == "FINISHED" and rid in r.stdout
    p, m, tags = run.data.params, run.data.metrics, run.data.tags
    # requested and effective parameters
    assert (p["epochs"], p["imgsz"], p["optimizer"], p["lr0"]) == ("2", "160", "SGD", "0.002")
    assert p["effective_optimizer"] == "SGD" and float(p["effective_lr0"]) == 0.002 and p["effective_imgsz"] == "160"
    assert {"effective_momentum", "effective_warmup_iters", "dataset_digest"} <= set(p)
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
    # the pyfunc model predicts person boxes
    import mlflow
    from yolo_mlops.pyfunc import images_to_frame, BOX_COLUMNS
    from yolo_mlops.train import test_images
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlruns.db")
    model = mlflow.pyfunc.load_model(f"runs:/{rid}/model")
    boxes = model.predict(images_to_frame(test_images(str(dataset))[:2]), params={"conf": 0.001})
    assert list(boxes.columns) == BOX_COLUMNS and len(boxes) > 0
    assert set(boxes["image"]) <= {0, 1} and (boxes.x2 > boxes.x1).all() and boxes.confidence.between(0, 1).all()

def test_lr0_is_used_and_changes_the_weights(workdir, dataset):
    import torch
    from yolo_mlops.train import train_run
    runs = {lr: train_run(epochs=1, imgsz=64, lr0=lr, freeze=0, data=str(dataset), workers=0) for lr in (0.02, 0.001)}
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

def test_kernel_killed_during_training_ends_failed_with_notebook(workdir, dataset):
    import psutil
    from yolo_mlops.config import get_or_create_experiment
    get_or_create_experiment()  # create the store first: two processes must not create one SQLite schema at once
    client = client_for(workdir)
    proc = subprocess.Popen([str(BIN / "yolo-mlops"), "train", "-p", "epochs=50", "-p", "imgsz=64", "-p", "workers=0",
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
