"""The executed notebook, logged as a self-contained HTML artifact, is readable in the MLflow UI.

A real `mlflow server` over a real store, the run page opened in headless Chromium (Debian's package) and
the report read inside the iframe in which the UI renders `.html` artifacts: headings, a parameter value
and embedded images must be what a person sees. The first test does it on a real training run (its
executed notebook as `yolo-mlops train` logs it), the second on a small notebook made here. Helpers:
tests/browser.py."""
import base64, io, urllib.request
from pathlib import Path

import pytest

from browser import check_run_artifact_renders, require_browser, start_mlflow_server, stop_mlflow_server

pytestmark = pytest.mark.trains  # tests/conftest.py: left out of `scripts/test.sh --quick`

ARTIFACT = "notebook/02_train.html"


@pytest.fixture(autouse=True)
def _browser():
    "Skip (on a developer's machine) or fail (in CI) before building anything when there is no browser."
    require_browser()


def report_notebook():
    "A small executed-looking notebook: a title, a parameter table, and a cell whose output is a matplotlib PNG."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [0.9, 0.5, 0.3]); ax.set_title("train/box_loss")
    png = io.BytesIO(); fig.savefig(png, format="png"); plt.close(fig)
    nb = new_notebook(cells=[
        new_markdown_cell("# Training report"),
        new_markdown_cell("## Parameters\n\n| parameter | value |\n|---|---|\n| lr0 | 0.002 |\n| epochs | 3 |"),
        new_markdown_cell("## Loss curve"),
        new_code_cell("plt.plot(losses)", execution_count=1, outputs=[new_output(
            "display_data", data={"image/png": base64.b64encode(png.getvalue()).decode(), "text/plain": "<Figure>"})]),
    ])
    nbformat.validate(nb)
    return nb


def to_html(nb, folder: Path) -> str:
    "Self-contained HTML, as the project logs it (`yolo_mlops.runner.render_html`)."
    import nbformat
    from yolo_mlops.runner import render_html
    nbformat.write(nb, folder / "made.ipynb")
    return render_html(folder / "made.ipynb").read_text()


def test_real_training_run_reads_as_a_report_in_mlflow_ui(workdir, train_command_run, tmp_path):
    "The session's `yolo-mlops train` run (tests/conftest.py), its report opened in the MLflow UI."
    from mlflow import MlflowClient
    r, work = train_command_run, train_command_run.work
    assert r.returncode == 0, r.stdout + r.stderr
    uri = f"sqlite:///{work}/mlruns.db"
    run = MlflowClient(uri).search_runs([e.experiment_id for e in MlflowClient(uri).search_experiments()])[0]
    proc, base_url = start_mlflow_server(uri, work / "mlartifacts", log_path=tmp_path / "mlflow-server.log")
    try:
        shot = tmp_path / "mlflow-ui-real-run.png"
        seen = check_run_artifact_renders(base_url, run.info.experiment_id, run.info.run_id, ARTIFACT, shot,
                                          expected_texts=["Training run", "Parameters, requested and effective", "lr0",
                                                          "0.002", "Final metrics against the pretrained model",
                                                          "gain 95 % interval", "Predictions"], min_images=2)
    finally:
        stop_mlflow_server(proc)
    assert {"Training curves", "Time per phase", "Where the weights and the model are"} <= set(seen.headings), seen.headings
    assert "GPU_mem" not in seen.text and "Model summary" not in seen.text  # no Ultralytics console output in the report


@pytest.fixture
def store_with_report(tmp_path):
    "An embedded store (SQLite + file-URI artifact folder) with one run carrying the notebook and its HTML."
    import nbformat
    from mlflow import MlflowClient
    uri, artifacts = f"sqlite:///{tmp_path / 'mlruns.db'}", tmp_path / "mlartifacts"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("browser-check", artifact_location=artifacts.as_uri())
    run_id = client.create_run(exp_id, run_name="report").info.run_id
    client.log_param(run_id, "lr0", 0.002)
    folder = tmp_path / "notebook"; folder.mkdir()
    nb = report_notebook()
    nbformat.write(nb, folder / "02_train.ipynb")
    (folder / "02_train.html").write_text(to_html(nb, tmp_path), encoding="utf-8")
    client.log_artifacts(run_id, str(folder), artifact_path="notebook")
    client.set_terminated(run_id)
    return uri, artifacts, exp_id, run_id


def test_html_report_renders_in_mlflow_ui(store_with_report, tmp_path):
    uri, artifacts, exp_id, run_id = store_with_report
    proc, base_url = start_mlflow_server(uri, artifacts, log_path=tmp_path / "mlflow-server.log")
    try:
        # the UI fetches the file from here; the server sends it as a download, never as a page of its own
        with urllib.request.urlopen(f"{base_url}/get-artifact?path={ARTIFACT}&run_uuid={run_id}") as r:
            assert r.headers.get_content_type() == "text/html"
            assert r.headers["Content-Disposition"].startswith("attachment")
        shot = tmp_path / "mlflow-ui-02_train.png"
        r = check_run_artifact_renders(base_url, exp_id, run_id, ARTIFACT, shot,
                                       expected_texts=["Training report", "Parameters", "lr0", "0.002"], min_images=1)
    finally:
        stop_mlflow_server(proc)
    assert {"Training report", "Parameters", "Loss curve"} <= set(r.headings), r.headings
    assert r.frame_url.startswith("blob:"), r.frame_url  # rendered by the UI in its iframe, not navigated to
    assert shot.stat().st_size > 10_000, "the screenshot is (nearly) empty"
