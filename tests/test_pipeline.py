"""The last two stages and the whole pipeline, for real: `yolo-mlops pipeline` on the tiny grid, then
the effect table, promotion decisions, the registry alias, the decision report, the recovery tools,
and the champion served over HTTP by `mlflow models serve`."""
import base64, json, os, re, shlex, socket, subprocess, sys, time, urllib.request
from html.parser import HTMLParser
from pathlib import Path
import pytest
from mlflow import MlflowClient
from conftest import yolo_mlops, BIN, TINY_TRIAL
from browser import first_screen, require_browser, start_mlflow_server, stop_mlflow_server

pytestmark = pytest.mark.trains  # tests/conftest.py: left out of `scripts/test.sh --quick`

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(scope="module")
def pipeline(tiny_pipeline):
    "The whole pipeline on the tiny grid, run once per test run in a fresh working folder (tests/conftest.py)."
    r = tiny_pipeline
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.work, r, f"sqlite:///{r.work}/mlruns.db"

def runs_by_stage(uri):
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    out = {}
    for r in runs: out.setdefault(r.data.tags.get("stage", "grid" if r.data.tags.get("grid_parent") else "?"), []).append(r)
    return client, out

def gain_text(m: dict) -> str:
    "A run's test gain and its interval, as its description in the MLflow UI starts."
    return (f"gain {m['gain_test_mAP50']:+.4f} "
            f"[{m['gain_test_mAP50_ci_low']:+.4f}, {m['gain_test_mAP50_ci_high']:+.4f}]")

def notebooks(client, run_id):
    return [a.path for a in client.list_artifacts(run_id, "notebook")]

def test_pipeline_end_to_end_every_notebook_in_mlflow(pipeline):
    work, r, uri = pipeline
    client, stages = runs_by_stage(uri)
    assert len(stages["train"]) == 4 and len(stages["grid"]) == 1
    assert len(stages["analysis"]) == 1 and len(stages["promotion"]) == 1
    for run in stages["train"] + stages["analysis"] + stages["promotion"]:
        assert run.info.status == "FINISHED", run.data.tags.get("error")
        assert any(p.endswith(".ipynb") for p in notebooks(client, run.info.run_id)), run.info.run_name
    analysis = stages["analysis"][0].info.run_id
    files = {a.path for a in client.list_artifacts(analysis)} | {a.path for a in client.list_artifacts(analysis, "figures")}
    assert {"runs_analysis.csv", "effects.csv", "figures/metric_by_dimension.png", "figures/epoch_curves.png",
            "figures/precision_recall.png"} <= files
    promotion = stages["promotion"][0]
    assert promotion.data.tags["decision"] in ("promoted", "not promoted")
    assert "[pipeline] 5/5 export" in r.stdout  # the export stage runs only after a promotion that promoted
    if promotion.data.tags["decision"] == "promoted":
        assert [e.info.status for e in stages["export"]] == ["FINISHED"]
    else: assert "export skipped: the promotion did not promote" in r.stdout and "export" not in stages
    assert (work / "reports" / "DECISION_PROMOTION.md").exists() and (work / "reports" / "runs_analysis.csv").exists()
    # each run's result is its description, which the MLflow UI's list of runs shows; a trial's name says what it tried
    verdict = "PROMOTED" if promotion.data.tags["decision"] == "promoted" else "NOT PROMOTED"
    assert promotion.data.tags["mlflow.note.content"].startswith(verdict + ": "), promotion.data.tags
    assert stages["analysis"][0].data.tags["mlflow.note.content"].startswith("4 training runs of grid tiny-cpu: ")
    for run in stages["train"]:
        assert run.data.tags["mlflow.note.content"].startswith(gain_text(run.data.metrics))
        assert re.fullmatch(rf"tiny-cpu-00{run.data.tags['grid_trial']} lr0=0\.0?02 seed=[12]", run.info.run_name)
    assert "beats_baseline" not in (work / "reports" / "runs_analysis.csv").read_text()

def test_decision_report_holds_the_numbers_of_the_runs_it_names(pipeline):
    work, _, uri = pipeline
    client = MlflowClient(uri)
    report = (work / "reports" / "DECISION_PROMOTION.md").read_text()
    named = set(re.findall(r"\b[0-9a-f]{32}\b", report))
    train_ids = {r.info.run_id for r in runs_by_stage(uri)[1]["train"]}
    assert named & train_ids
    for run_id in named & train_ids:
        m = client.get_run(run_id).data.metrics
        row = next(line for line in report.splitlines() if line.startswith(f"| {run_id}"))
        assert f"{m['final_test_mAP50']:.4f}" in row and f"{m['baseline_test_mAP50']:.4f}" in row

def test_decision_report_says_what_ten_test_images_can_resolve(pipeline):
    "The promotion run logs the smallest resolvable gain and the images a gain would need; the report says both."
    work, _, uri = pipeline
    client, stages = runs_by_stage(uri)
    assert {r.data.params["baseline_seen_images"] for r in stages["train"]} == {"true"}  # COCO128's persons
    assert {r.data.params["train_in"] for r in stages["train"]} == {"kernel"}  # a grid's trials on the CPU
    m = stages["promotion"][0].data.metrics
    assert m["test_images"] == 10 and 0 < m["smallest_resolvable_gain"] < 1
    report = (work / "reports" / "DECISION_PROMOTION.md").read_text()
    assert f"The smallest resolvable gain of these 10 test images is {m['smallest_resolvable_gain']:.4f}" in report
    if "test_images_needed" in m:  # a gain the interval cannot resolve: how many images would, with 80 % power
        assert m["test_images_needed"] >= 1 and m["test_images_needed_power"] == 0.8
        assert f"about {int(m['test_images_needed'])} test images like these would resolve it with 80 % power" in report
        assert "*Images needed* are stated at 80 % power" in report
    risks = report.split("## Risks", 1)[1]
    assert "COCO train2017" in risks and "its own training images" in risks

def _table(uri):
    from yolo_mlops.analysis import runs_table
    return runs_table(tracking_uri=uri, grid="tiny-cpu")

def test_promotion_refuses_below_baseline_and_promotes_above_and_moves_the_alias(pipeline):
    from yolo_mlops.promotion import promote, PromotionCriteria, register_run
    _, _, uri = pipeline
    table = _table(uri).sort_values("final_test_mAP50", ascending=False)
    best = table.iloc[0]
    gain = best.final_test_mAP50 - best.baseline_test_mAP50
    refused = promote(table, PromotionCriteria(min_gain_over_baseline=gain + 0.01, rule="point"), "alias-test", tracking_uri=uri)
    assert not refused.promoted and [c.criterion for c in refused.failed] == ["beats the pretrained baseline"]
    client = MlflowClient(uri)
    assert not client.search_model_versions("name = 'alias-test'")  # nothing registered
    first = promote(table, PromotionCriteria(min_gain_over_baseline=gain - 0.01, rule="point"), "alias-test", tracking_uri=uri)
    assert first.promoted and client.get_model_version_by_alias("alias-test", "champion").run_id == best.run_id
    other = table.iloc[1]
    again = promote(table, PromotionCriteria(min_gain_over_baseline=-1, rule="point"), "alias-test", run_id=other.run_id, tracking_uri=uri)
    if other.final_test_mAP50 <= best.final_test_mAP50:  # not better than the champion: refused
        assert not again.promoted and again.failed[0].criterion == "beats the current champion"
    moved = promote(table, PromotionCriteria(min_gain_over_baseline=-1, min_gain_over_champion=-1, rule="point"), "alias-test",
                    run_id=other.run_id, tracking_uri=uri)
    assert moved.promoted
    assert client.get_model_version_by_alias("alias-test", "champion").run_id == other.run_id
    assert str(client.get_model_version_by_alias("alias-test", "previous-champion").version) == first.version
    # registering the same run twice gives the same version
    assert str(register_run(best.run_id, "alias-test", uri).version) == first.version
    assert len(client.search_model_versions("name = 'alias-test'")) == 2

def test_gain_over_the_champion_is_paired_on_the_same_images(pipeline):
    from yolo_mlops.promotion import compare_with_champion
    _, _, uri = pipeline
    table = _table(uri).sort_values("final_test_mAP50", ascending=False)
    best, other = table.iloc[0].to_dict(), table.iloc[1].to_dict()
    same = compare_with_champion(best, best, tracking_uri=uri)
    assert (same["gain"], same["low"], same["high"]) == (0.0, 0.0, 0.0)  # paired: a model against itself is exactly 0
    cmp = compare_with_champion(other, best, tracking_uri=uri)
    assert cmp["how"].startswith("the champion's own evaluation") and cmp["low"] <= cmp["gain"] <= cmp["high"]
    assert cmp["gain"] == pytest.approx(other["final_test_mAP50"] - best["final_test_mAP50"], abs=1e-9)
    # a champion of another dataset is evaluated again on the candidate's test split: the same images, the same answer
    again = compare_with_champion(other, {**best, "dataset_digest": "another dataset"}, tracking_uri=uri)
    assert again["how"].startswith("the champion re-evaluated") and again["gain"] == pytest.approx(cmp["gain"], abs=1e-6)
    # a champion scored under another evaluation protocol is evaluated again under the candidate's: the same answer
    other_protocol = compare_with_champion(other, {**best, "eval_batch": 16}, tracking_uri=uri)
    assert other_protocol["how"].startswith("the champion re-evaluated under the candidate's evaluation protocol")
    assert other_protocol["gain"] == pytest.approx(cmp["gain"], abs=1e-6)

def test_no_effect_at_all_is_flagged_on_real_runs(workdir, small_dataset):
    "Under optimizer=auto Ultralytics ignores lr0: two runs that differ only in lr0 are identical."
    from yolo_mlops.grid import GridSpec
    from yolo_mlops.local_trials import LocalBackend
    from yolo_mlops.launcher import run_grid
    from yolo_mlops.analysis import runs_table, dimension_effects
    (workdir / "data").mkdir()
    (workdir / "data" / "tiny_coco.yaml").write_text(Path(small_dataset).read_text())
    spec = GridSpec("auto", {"lr0": [0.002, 0.02]}, {**TINY_TRIAL, "optimizer": "auto"})
    result = run_grid(spec, backend=LocalBackend(workers=2))
    assert not result.failed
    effects = dimension_effects(runs_table(grid="auto"))
    assert effects.set_index("dimension").loc["lr0", "verdict"] == "no effect at all"

def test_relog_is_idempotent(pipeline):
    from yolo_mlops.promotion import relog_metrics
    import mlflow
    _, _, uri = pipeline
    client = MlflowClient(uri)
    source = runs_by_stage(uri)[1]["train"][0]
    mlflow.set_tracking_uri(uri)
    csv = mlflow.artifacts.download_artifacts(run_id=source.info.run_id, artifact_path="ultralytics/results.csv")
    assert relog_metrics(source.info.run_id, uri) == 0  # a complete run: nothing to add
    empty = client.create_run(source.info.experiment_id, run_name="lost-metrics").info.run_id
    client.log_artifact(empty, csv, "ultralytics")
    added = relog_metrics(empty, uri)
    assert added > 0 and [h.step for h in client.get_metric_history(empty, "val_mAP50")] == [1]
    assert relog_metrics(empty, uri) == 0

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def test_champion_loads_and_serves_over_http(pipeline, dataset):
    import mlflow
    from yolo_mlops.promotion import promote, PromotionCriteria
    from yolo_mlops.pyfunc import images_to_frame
    from yolo_mlops.evaluate import split_images
    _, _, uri = pipeline
    promote(_table(uri), PromotionCriteria(min_gain_over_baseline=-1, min_gain_over_champion=-1), "served", tracking_uri=uri)
    image = split_images(str(dataset))[0]
    mlflow.set_tracking_uri(uri)
    local = mlflow.pyfunc.load_model("models:/served@champion").predict(images_to_frame([image]), params={"conf": 0.001})
    assert len(local) > 0
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # uvicorn
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", "models:/served@champion", "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # wait until the server answers /ping
            assert server.poll() is None, server.stdout.read()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200: break
            except OSError: time.sleep(0.5)
        else: pytest.fail("mlflow models serve never answered /ping")
        body = json.dumps({"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(image.read_bytes()).decode()]]},
                           "params": {"conf": 0.001}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r: answer = json.loads(r.read())
        boxes = answer["predictions"]
        assert len(boxes) == len(local) and {"image", "x1", "y1", "x2", "y2", "confidence"} <= set(boxes[0])
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_printed_mlflow_ui_address_opens_on_the_runs(pipeline, tmp_path):
    """What `yolo-mlops pipeline` prints last, done as printed: its `mlflow ui` command serves the store, and its
    address, opened in a fresh Chromium, shows the model-training view with every trial's name and gain (with its
    interval) on the first screen, no toggle clicked."""
    require_browser()
    from yolo_mlops.config import MLFLOW_UI_ADDRESS
    work, r, uri = pipeline
    said = r.stdout.splitlines()
    command = next(l for l in said if l.startswith("MLflow UI: ")).removeprefix("MLflow UI: ")
    url = next(l for l in said if l.startswith("  then open ")).removeprefix("  then open ")
    assert command == f"{BIN / 'mlflow'} ui --backend-store-uri {uri}" and said[-1] == f"  then open {url}"
    client, stages = runs_by_stage(uri)
    trials, promotion = stages["train"], stages["promotion"][0]
    kind = client.get_experiment(promotion.info.experiment_id).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"  # not GenAI
    gains = [gain_text(t.data.metrics) for t in trials]
    proc, base = start_mlflow_server(uri, work / "mlartifacts", command=shlex.split(command), cwd=work,
                                     log_path=tmp_path / "mlflow-ui.log")
    try:
        seen = first_screen(url.replace(MLFLOW_UI_ADDRESS, base), tmp_path / "experiment.png",
                            [t.info.run_name for t in trials] + gains)
    finally:
        stop_mlflow_server(proc)
    assert not seen.missing, f"not on the first screen: {seen.missing} ({seen.screenshot})\n{seen.text[:3000]}"
    assert "workflowType=machine_learning" in seen.url and "Traces\n0" not in seen.text  # not the GenAI overview


class ShownText(HTMLParser):
    "The text a browser shows of an HTML page (not its scripts and styles), in order."
    def __init__(self):
        super().__init__(); self.parts, self.hidden = [], 0
    def handle_starttag(self, tag, attrs): self.hidden += tag in ("script", "style")
    def handle_endtag(self, tag): self.hidden -= tag in ("script", "style")
    def handle_data(self, data):
        if not self.hidden and data.strip(): self.parts.append(data.strip())


def test_the_stage_reports_open_with_their_answer(pipeline, tmp_path):
    """The analysis and promotion reports (their runs' HTML) open as the training report does: the title, the answer
    the run's description also gives, then the parameters as used; no code and no parameter defaults before it."""
    _, _, uri = pipeline
    client, stages = runs_by_stage(uri)
    for stage, after in (("analysis", "Configurations (seeds pooled)"), ("promotion", "Parameters, as used")):
        run = stages[stage][0]
        html = client.download_artifacts(run.info.run_id, run.data.tags["notebook"].replace(".ipynb", ".html"),
                                         tmp_path)
        page = ShownText(); page.feed(Path(html).read_text(encoding="utf-8"))
        text = " ".join(page.parts)
        answer = run.data.tags["mlflow.note.content"].split("\n\n")[0]
        title = "Analysis of the training runs" if stage == "analysis" else "Promotion decision"
        assert text.index(title) < text.index(answer.split(": ")[0]) < text.index(after), text[:3000]
        opening = text[:text.index(after)]
        assert not re.search(r"\b\w+ = ", opening) and "import " not in opening, opening  # no parameters cell, no code
    assert "tiny-cpu" in text[text.index("Parameters, as used"):text.index("The checks")]  # the grid used, not ""
