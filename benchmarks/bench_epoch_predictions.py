"""Benchmark: what the per-epoch predictions pictures cost a run, on grids/cpu.yaml's settings (5 epochs at imgsz 320,
SGD lr0 0.002, no warm-up; freeze 10, the first trial of that grid), trained as `yolo-mlops train` trains it.

    .venv/bin/python benchmarks/bench_epoch_predictions.py              # one run, its pictures timed inside it
    .venv/bin/python benchmarks/bench_epoch_predictions.py --compare    # and a run with epoch_predictions=0 beside it

A run times its own pictures (predicting the images, drawing them, logging them to MLflow: the run's metric
`epoch_predictions_seconds`); the script prints that against the run's wall time (`yolo-mlops train`, start to
end), its training and its MLflow run.
Goal: at most 3 %. `--compare` adds the same run without pictures: the difference of two wall times, which on a
shared machine is noisier than the cost it measures."""
import argparse, os, subprocess, sys, tempfile, time
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

def one_run(home: Path, pictures: int, params: list) -> tuple[float, dict]:
    "`yolo-mlops train` in `home` with cpu.yaml's settings; its wall time and its MLflow run's metrics and duration."
    import yaml
    from mlflow import MlflowClient
    grid = yaml.safe_load((ROOT / "grids" / "cpu.yaml").read_text())
    settings = {**grid["fixed"], "freeze": grid["grid"]["freeze"][-1], "seed": 1, "epoch_predictions": pictures}
    cmd = [BIN / "yolo-mlops", "train", *[x for k, v in settings.items() for x in ("-p", f"{k}={v}")],
           *[x for p in params for x in ("-p", p)]]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME")}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=home, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode: sys.exit(f"yolo-mlops train failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    client = MlflowClient(f"sqlite:///{home}/mlruns.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage = 'train'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    run = runs[0]
    return wall, {**run.data.metrics, "run_seconds": (run.info.end_time - run.info.start_time) / 1000}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", action="store_true", help="also a run without pictures (epoch_predictions=0)")
    ap.add_argument("-p", "--param", action="append", default=[], help="override, as for `yolo-mlops train`")
    a = ap.parse_args()
    from yolo_mlops.data import build_tiny_person_dataset
    home = Path(tempfile.mkdtemp(prefix="bench_epoch_predictions_"))
    build_tiny_person_dataset(out=home / "data" / "tiny_coco", yaml_path=home / "data" / "tiny_coco.yaml")
    wall, m = one_run(home, 4, a.param)
    cost = m["epoch_predictions_seconds"]
    print(f"run with 4 pictures an epoch: {wall:.1f} s wall ({m['run_seconds']:.1f} s its MLflow run, "
          f"{m['train_seconds']:.1f} s training, {int(m['epochs_trained'])} epochs)")
    print(f"the pictures: {cost:.2f} s in all, {cost / m['epochs_trained']:.3f} s an epoch: "
          f"{100 * cost / wall:.2f} % of the run's wall time (goal: at most 3 %), {100 * cost / m['train_seconds']:.2f} % "
          f"of its training, {100 * cost / m['run_seconds']:.2f} % of its MLflow run (a trainer process trains before "
          "the run opens)")
    if a.compare:
        wall0, m0 = one_run(home, 0, a.param)
        print(f"run without pictures: {wall0:.1f} s wall ({m0['run_seconds']:.1f} s its MLflow run): the run with "
              f"pictures took {100 * (wall / wall0 - 1):+.1f} % (two runs: machine noise included)")

if __name__ == "__main__":
    main()
