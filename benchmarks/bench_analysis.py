"""Benchmark: how long `runs_table` takes to read a large experiment back from the embedded store.

    .venv/bin/python benchmarks/bench_analysis.py --runs 1000

Creates a temporary SQLite store with N finished training runs (the parameters and final metrics a
real run logs, 10 epochs of per-epoch history each), then times `runs_table` (paged `search_runs`)
and `dimension_effects` on it, and prints the times. Target: seconds for 1,000 runs."""
import argparse, itertools, random, tempfile, time
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000)
    a = ap.parse_args()
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from yolo_mlops.config import get_or_create_experiment
    from yolo_mlops.analysis import runs_table, dimension_effects, METRICS
    uri = f"sqlite:///{tempfile.mkdtemp(prefix='bench_analysis_')}/mlruns.db"
    exp = get_or_create_experiment("bench", uri)
    client, rng = MlflowClient(uri), random.Random(0)
    grid = list(itertools.product([320, 416], [0.002, 0.005, 0.01], [0, 10], [1, 2, 3, 42, 7]))
    t0 = time.perf_counter()
    for i in range(a.runs):
        imgsz, lr0, freeze, seed = grid[i % len(grid)]
        rid = client.create_run(exp, run_name=f"bench-{i:04d}", tags={"stage": "train", "grid_name": "bench"}).info.run_id
        now = int(time.time() * 1000)
        params = dict(epochs=10, imgsz=imgsz, batch=8, optimizer="SGD", lr0=lr0, warmup_epochs=0.0, freeze=freeze, seed=seed,
                      device="cpu", workers=2, data="tiny_coco.yaml", weights="yolov8n.pt", effective_optimizer="SGD",
                      effective_lr0=lr0, effective_imgsz=imgsz)
        metrics = [Metric(k, rng.random(), now, 0) for k in METRICS]
        metrics += [Metric("val_mAP50", rng.random(), now, e) for e in range(1, 11)]
        client.log_batch(rid, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(rid, "FINISHED")
    print(f"created {a.runs} runs in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    table = runs_table("bench", tracking_uri=uri)
    t_table = time.perf_counter() - t0
    t0 = time.perf_counter()
    effects = dimension_effects(table)
    t_effects = time.perf_counter() - t0
    assert len(table) == a.runs, len(table)
    print(f"runs_table: {len(table)} runs x {table.shape[1]} columns in {t_table:.2f} s")
    print(f"dimension_effects: {len(effects)} rows in {t_effects:.2f} s")

if __name__ == "__main__":
    main()
