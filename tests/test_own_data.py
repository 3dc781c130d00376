"""Your own data through the whole pipeline: a dataset the test draws itself (two shape classes the pretrained
model has never seen) and COCO128's persons and cars, each built with `yolo-mlops data`, trained for one epoch
with `yolo-mlops train`, evaluated per class, served with a `class` column, and named in the reports; the run names
its data version (DVC), which comes back from the model's name."""
import re, shutil
from pathlib import Path
import pytest, yaml
from mlflow import MlflowClient
from conftest import yolo_mlops
from yolo_mlops.data import verify_dataset

pytestmark = pytest.mark.trains  # tests/conftest.py: left out of `scripts/test.sh --quick`

def only_train_run(workdir):
    client = MlflowClient(f"sqlite:///{workdir}/mlruns.db")
    runs = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
            if r.data.tags.get("stage") == "train"]
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return client, runs[0]

def test_a_dataset_of_new_classes_end_to_end(workdir):
    import mlflow
    from yolo_mlops.data_sources import make_shapes_dataset
    from yolo_mlops.pyfunc import images_to_frame
    source = make_shapes_dataset(workdir / "drawn", n=40)
    r = yolo_mlops("data", "--source", source, "--classes", "rectangle,ellipse", "--split", "20/5/5", "--name", "shapes", cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (workdir / "data" / "shapes.yaml").exists() and "rectangle" in r.stdout and "ellipse" in r.stdout
    r = yolo_mlops("train", "-p", "data=data/shapes.yaml", "-p", "epochs=1", "-p", "imgsz=128", "-p", "workers=0", "-p", "plots=false", "--quiet", cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    client, run = only_train_run(workdir)
    p, m = run.data.params, run.data.metrics
    assert (p["dataset_name"], p["dataset_classes"]) == ("shapes", "rectangle,ellipse")
    # the run names its data version: the md5 of data/shapes.dvc, and the remote `yolo-mlops data` pushed it to
    dvc_md5 = yaml.safe_load((workdir / "data" / "shapes.dvc").read_text())["outs"][0]["md5"]
    assert (p["data_dvc_md5"], p["data_dvc_remote"]) == (dvc_md5, "local")
    # classes the pretrained model does not know: its baseline is "no detections", so the gain is the metric itself
    assert p["baseline"] == "no detections for rectangle, ellipse (classes the pretrained model does not know)"
    assert p["baseline_seen_images"] == "false"  # the official weights, images they were not trained on
    assert m["baseline_test_mAP50"] == 0 and m["gain_test_mAP50"] == pytest.approx(m["final_test_mAP50"])
    for name in ("rectangle", "ellipse"):
        for k in ("final_test_mAP50", "baseline_test_mAP50", "gain_test_mAP50", "final_test_mAP50_95"):
            assert f"per_class/{name}/{k}" in m, (name, k, sorted(m))
        assert m[f"per_class/{name}/baseline_test_mAP50"] == 0
    # the served model names the class of each box
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlruns.db")
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert [c.name for c in model.metadata.get_output_schema().inputs][-1] == "class"
    images = sorted((workdir / "data" / "shapes" / "images" / "test").iterdir())[:3]
    boxes = model.predict(images_to_frame(images), params={"conf": 0.0001})
    assert "class" in boxes and set(boxes["class"]) <= {"rectangle", "ellipse"}
    # the run's report and the decision report name the dataset and its classes; the model is named after the dataset
    html = Path(client.download_artifacts(run.info.run_id, "notebook/02_train.html", str(workdir))).read_text()
    assert "shapes" in html and "rectangle, ellipse" in html and "no detections for rectangle, ellipse" in html
    assert dvc_md5 in html and f"yolo-mlops data --from-run {run.info.run_id}" in html
    r = yolo_mlops("promote", "--rule", "point", "--min-gain-baseline", "-1", cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    report = (workdir / "reports" / "DECISION_PROMOTION.md").read_text()
    assert "`shapes`, classes rectangle, ellipse" in report and "no detections for rectangle, ellipse" in report
    assert re.search(r"Promotion decision: yolov8n-shapes", report)
    assert client.get_model_version_by_alias("yolov8n-shapes", "champion").run_id == run.info.run_id
    assert f"md5 `{dvc_md5}`" in report and f"--from-run {run.info.run_id}" in report
    # whoever receives the model gets its very data back, from the model's name (the data and DVC's cache gone)
    shutil.rmtree(workdir / "data" / "shapes"); shutil.rmtree(workdir / ".dvc" / "cache")
    r = yolo_mlops("data", "--from-run", "models:/yolov8n-shapes@champion", cwd=workdir)
    assert r.returncode == 0 and f"into {workdir / 'data' / 'shapes'}" in r.stdout, r.stdout + r.stderr
    assert verify_dataset(workdir / "data" / "shapes") == p["dataset_digest"]

def test_persons_and_cars_of_coco128_end_to_end(workdir):
    r = yolo_mlops("data", "--classes", "person,car", "--split", "30/8/8", "--name", "people-cars", cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    r = yolo_mlops("train", "-p", "data=data/people-cars.yaml", "-p", "epochs=1", "-p", "imgsz=160", "-p", "workers=0", "-p", "plots=false", "--quiet",
                   cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    _, run = only_train_run(workdir)
    p, m = run.data.params, run.data.metrics
    assert run.info.status == "FINISHED" and p["dataset_classes"] == "person,car"
    assert p["baseline"] == "the pretrained model restricted to person, car"  # COCO classes: the pretrained model knows them
    for name in ("person", "car"):
        assert 0 <= m[f"per_class/{name}/final_test_mAP50"] <= 1 and f"per_class/{name}/baseline_test_mAP50" in m
    assert m["per_class/person/baseline_test_mAP50"] > 0  # seen through the class map: persons are found
