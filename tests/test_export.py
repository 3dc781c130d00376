"""The export stage, for real: the official weights, as a training run's checkpoint registered as a model's champion,
exported by `yolo-mlops export` to ONNX and OpenVINO at imgsz 64 (one export run serves every test), checked as
accurate on the same test images, registered beside the PyTorch version, served over HTTP by `mlflow models serve`;
and each bad input refused in one line, with nothing registered and no half-written files in a run."""
import base64, json, os, shutil, socket, subprocess, time, urllib.request
import pytest
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN

pytestmark = pytest.mark.trains  # tests/conftest.py: left out of `scripts/test.sh --quick`

IMGSZ = 64
MODEL = "tiny-person"

def _log_training_run(uri: str, experiment_id: str, data, weights=None, name: str = "trained"):
    "A run as a training run leaves it for the export: params imgsz and data, and `weights` as weights/best.pt."
    import mlflow
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id, run_name=name, tags={"stage": "train"}).info.run_id
    client.log_param(run_id, "imgsz", IMGSZ)
    client.log_param(run_id, "data", str(data))
    if weights is not None: client.log_artifact(run_id, str(weights), "weights")
    client.set_terminated(run_id)
    return run_id

@pytest.fixture(scope="module")
def store(tmp_path_factory, dataset):
    "A home whose store holds the official weights as a training run's best.pt, registered as `MODEL@champion`."
    import mlflow
    from yolo_mlops import config
    from yolo_mlops.evaluate import split_images
    from yolo_mlops.pyfunc import log_pyfunc_model
    home = tmp_path_factory.mktemp("export")
    uri = f"sqlite:///{home}/mlruns.db"
    env = {k: v for k, v in os.environ.items() if k not in ("YOLO_MLOPS_DATA",)}
    env.update(MLFLOW_TRACKING_URI=uri, YOLO_MLOPS_HOME=str(home))
    weights = home / "best.pt"
    shutil.copy(config.pretrained_weights(), weights)
    experiment = config.get_or_create_experiment("export-tests", uri, home=home)
    run_id = _log_training_run(uri, experiment, dataset, weights)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(run_id=run_id):
            info = log_pyfunc_model(weights, split_images(str(dataset))[0], IMGSZ)
        version = mlflow.register_model(info.model_uri, MODEL).version
    finally: mlflow.set_tracking_uri(before)
    MlflowClient(uri).set_registered_model_alias(MODEL, "champion", version)
    return dict(home=home, uri=uri, env=env, run_id=run_id, experiment=experiment, weights=weights, data=dataset)

@pytest.fixture(scope="module")
def exported(store):
    "`yolo-mlops export` of the champion to ONNX and OpenVINO, once: its output and its export run."
    r = yolo_mlops("export", "--model", f"models:/{MODEL}@champion", "--formats", "onnx,openvino", "--alias",
                   "champion", cwd=store["home"], env=store["env"])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    client = MlflowClient(store["uri"])
    runs = client.search_runs([store["experiment"]], "tags.stage = 'export'")
    assert len(runs) == 1
    return r, runs[0]

def test_export_shows_progress_and_verdicts_and_logs_the_run(store, exported):
    r, run = exported
    out = r.stdout
    for line in ("[export] onnx: exported in", "[export] openvino: exported in", "[export] pytorch: mAP50",
                 "[export] scoring and timing on the 10 test images at imgsz 64"):
        assert line in out, out[-3000:]
    assert "onnx: as accurate (mAP50 +0.0000 against PyTorch, 95 % interval [+0.0000, +0.0000])" in out
    assert f"registered as {MODEL} version 2 (alias champion-onnx)" in out
    assert run.info.status == "FINISHED" and run.data.tags["source_run_id"] == store["run_id"]
    m = run.data.metrics
    assert m["onnx/diff_mAP50"] == 0.0 and -0.01 <= m["onnx/diff_mAP50_ci_low"] <= m["onnx/diff_mAP50_ci_high"] <= 0.01
    assert m["pytorch/speedup"] == 1.0 and m["onnx/speedup"] > 0 and m["onnx/size_mb"] > 1
    assert run.data.tags["onnx/verdict"] == run.data.tags["openvino/verdict"] == "as accurate"
    client = MlflowClient(store["uri"])
    files = {a.path for folder in ("", "notebook", "figures", "exported/onnx", "logs")
             for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"export_formats.csv", "export_formats.json", "figures/export_formats.png", "exported/onnx/best.onnx",
            "notebook/06_export.ipynb", "notebook/06_export.html", "logs/console.txt"} <= files, files
    assert (store["home"] / "reports" / "export_formats.csv").exists()

def test_parity_uses_the_training_runs_evaluation(store, exported):
    "The PyTorch row is exactly what `evaluate_split` gives the checkpoint on the test split under the protocol."
    from yolo_mlops.evaluate import EvalProtocol, evaluate_split
    _, run = exported
    reference = evaluate_split(str(store["weights"]), str(store["data"]), "test", EvalProtocol(IMGSZ), "cpu",
                               store["home"] / "eval")
    assert {k: run.data.params[k] for k in EvalProtocol(IMGSZ).params()} == \
        {k: str(v) for k, v in EvalProtocol(IMGSZ).params().items()}  # the export run names its protocol
    assert run.data.metrics["pytorch/mAP50"] == pytest.approx(reference.metrics["mAP50"], abs=1e-12)
    assert run.data.metrics["onnx/mAP50"] == pytest.approx(reference.metrics["mAP50"], abs=1e-12)

def test_formats_that_pass_are_versions_of_the_same_model(store, exported):
    import mlflow
    from yolo_mlops.evaluate import split_images
    from yolo_mlops.pyfunc import images_to_frame, BOX_COLUMNS
    client = MlflowClient(store["uri"])
    onnx, openvino = (client.get_model_version_by_alias(MODEL, f"champion-{f}") for f in ("onnx", "openvino"))
    assert (onnx.tags["format"], openvino.tags["format"]) == ("onnx", "openvino")
    assert onnx.tags["source_run_id"] == store["run_id"] and onnx.tags["parity_verdict"] == "as accurate"
    assert onnx.run_id == exported[1].info.run_id  # the export run logged it
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"  # the champion stays where it was
    mlflow.set_tracking_uri(store["uri"])
    frame = images_to_frame(split_images(str(store["data"]))[:2])
    boxes = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion-openvino").predict(frame, params={"conf": 0.1})
    assert list(boxes.columns) == BOX_COLUMNS  # the OpenVINO folder loads and answers with the same schema

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _wait_for_ping(server, port):
    deadline = time.time() + 180
    while time.time() < deadline:  # until the server answers /ping
        assert server.poll() is None, server.stdout.read()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                if r.status == 200: return
        except OSError: time.sleep(0.3)
    pytest.fail("mlflow models serve never answered /ping")

def test_served_onnx_model_answers_with_the_pytorch_models_boxes(store, exported):
    "The same REST request as for the PyTorch model; the same boxes within 1 pixel and 0.01 of confidence."
    import mlflow
    from yolo_mlops.evaluate import split_images
    from yolo_mlops.pyfunc import images_to_frame
    mlflow.set_tracking_uri(store["uri"])
    images = split_images(str(store["data"]))
    boxes = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict(images_to_frame(images), params={"conf": 0.1})
    busiest = int(boxes.image.value_counts().idxmax())  # the test image with the most boxes (at imgsz 64: a few)
    image, pytorch = images[busiest], boxes[boxes.image == busiest].assign(image=0)
    assert len(pytorch) >= 2
    port = _free_port()
    env = {**store["env"], "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # uvicorn
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion-onnx",
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_ping(server, port)
        body = json.dumps({"dataframe_split": {"columns": ["image"],
                                               "data": [[base64.b64encode(image.read_bytes()).decode()]]},
                           "params": {"conf": 0.1}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r: served = json.loads(r.read())["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(served) == len(pytorch)
    key = lambda b: (b["x1"], b["y1"])
    for s, p in zip(sorted(served, key=key), sorted(pytorch.to_dict("records"), key=key)):
        assert s["class"] == p["class"] and abs(s["confidence"] - p["confidence"]) <= 0.01
        assert all(abs(s[k] - p[k]) <= 1.0 for k in ("x1", "y1", "x2", "y2")), (s, p)

def test_promotion_latency_budget_reads_the_onnx_export(store, exported):
    "`--latency-format onnx`: the candidate's latency is its ONNX export's; a format it was not exported to has none."
    import math
    import pandas as pd
    from yolo_mlops.promotion import promote, PromotionCriteria
    onnx_ms = exported[1].data.metrics["onnx/latency_ms_median"]
    row = dict(run_id=store["run_id"], status="FINISHED", final_test_mAP50=0.5, baseline_test_mAP50=0.6,
               gain_test_mAP50_ci_low=-0.2, gain_test_mAP50_ci_high=0.0, best_epoch=2, best_is_pretrained=0.0,
               optimizer_steps=1, dataset_test_images="10", latency_ms_median=math.inf)
    decide = lambda fmt, budget: promote(pd.DataFrame([row]), PromotionCriteria(max_latency_ms=budget,
                                         latency_format=fmt), "latency-test", tracking_uri=store["uri"])
    within = decide("onnx", onnx_ms + 1).checks[-1]
    assert within.passed and within.detail == f"{onnx_ms:.1f} ms (onnx export, run {exported[1].info.run_id})"
    assert not decide(None, onnx_ms + 1).checks[-1].passed  # PyTorch's own latency: infinite here
    none = decide("torchscript", 1e9).checks[-1]
    assert not none.passed and "has no torchscript export" in none.detail
    assert not MlflowClient(store["uri"]).search_registered_models("name = 'latency-test'")  # nothing promoted

def _refused(store, *args):
    "Run `yolo-mlops export` with `args`; check it is refused in one line, exit 2, with nothing registered."
    client = MlflowClient(store["uri"])
    versions = len(client.search_model_versions(f"name = '{MODEL}'"))
    r = yolo_mlops("export", *args, cwd=store["home"], env=store["env"])
    errors = [l for l in r.stderr.splitlines() if l.startswith("yolo-mlops export: error:")]
    assert r.returncode == 2 and len(errors) == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == versions  # nothing registered
    return errors[0]

@pytest.mark.parametrize("args, says", [
    (["--formats", "onnx,tflite"], "unknown format 'tflite': choose among onnx, openvino, openvino-int8, torchscript"),
    (["--model", "models:/nobody@champion"], "models:/nobody@champion does not resolve"),
    (["--model", "runs:/{no_weights}"], "has no weights/best.pt: only a training run's weights can be exported")])
def test_bad_input_is_refused_before_any_run(store, exported, args, says):
    client = MlflowClient(store["uri"])
    no_weights = _log_training_run(store["uri"], store["experiment"], store["data"], name="no-weights")
    runs = len(client.search_runs([store["experiment"]]))
    line = _refused(store, *[a.format(no_weights=no_weights) for a in args])
    assert says in line, line
    assert len(client.search_runs([store["experiment"]])) == runs  # no export run was started

def test_failing_export_leaves_a_failed_run_without_exported_files(store, exported):
    "A checkpoint that loads but cannot be exported: a FAILED export run with its notebook only, nothing registered."
    import torch
    checkpoint = torch.load(store["weights"], weights_only=False)
    checkpoint["model"].model[0].conv.weight = torch.nn.Parameter(torch.zeros(16, 5, 3, 3, dtype=torch.half))
    broken = store["home"] / "broken" / "best.pt"
    broken.parent.mkdir()
    torch.save(checkpoint, broken)
    run_id = _log_training_run(store["uri"], store["experiment"], store["data"], broken, name="broken")
    line = _refused(store, "--model", f"runs:/{run_id}", "--formats", "onnx", "--model-name", MODEL)
    assert "the onnx export failed: RuntimeError" in line, line
    client = MlflowClient(store["uri"])
    failed = client.search_runs([store["experiment"]], f"tags.stage = 'export' and tags.source_run_id = '{run_id}'")
    assert [r.info.status for r in failed] == ["FAILED"]
    assert {a.path for a in client.list_artifacts(failed[0].info.run_id)} == {"notebook", "logs"}
