"""Benchmark: one search run twice on the same trials (the same search_seed, so the same parameters and seeds), with
its pruner and without it, each with `yolo-mlops grid --workers N` in a home and store of its own:

    .venv/bin/python benchmarks/bench_pruning.py                                   # grids/lr_search_pruned.yaml
    .venv/bin/python benchmarks/bench_pruning.py -p epochs=4 -p imgsz=64 --trials 4   # a quick check of the script

Prints the wall time of each, the trials the pruner stopped and after which epoch, and each search's best trial
(by test mAP50, as the grid's parent run names it; a stopped trial is never the best) with its gain over the
pretrained model and that gain's 95 % interval. Goal: the pruned search in at most 60 % of the unpruned one's wall
time, its best trial's gain inside the unpruned best's interval."""
import argparse, csv, os, subprocess, sys, tempfile, time
from pathlib import Path
import yaml

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

def run_search(grid_file: Path, home: Path, data: Path, params: list, workers: int) -> dict:
    "Run one search with `yolo-mlops grid` in a fresh home; its wall time, trials and best trial."
    home.mkdir(parents=True)
    (home / "data").symlink_to(data)
    cmd = [BIN / "yolo-mlops", "grid", "--grid", grid_file, "--workers", str(workers),
           *[x for p in params for x in ("-p", p)]]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME")}  # its own store
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=home, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    print(r.stdout[-3000:], flush=True)
    if r.returncode: sys.exit(f"yolo-mlops grid failed:\n{r.stderr[-3000:]}")
    rows = list(csv.DictReader(open(next(home.glob("outputs/grids/*/grid_summary.csv")))))
    from mlflow import MlflowClient
    client = MlflowClient(f"sqlite:///{home}/mlruns.db")
    parent = client.get_run(rows[0]["run_id"]).data.tags["mlflow.parentRunId"]
    best = client.get_run(client.get_run(parent).data.tags["best_trial_run_id"])
    stopped = [(int(row["trial"]), int(float(row["pruned_after_epoch"]))) for row in rows if row["pruned_after_epoch"]]
    return dict(wall=wall, trials=len(rows), stopped=stopped, best=best)

def gain_text(run) -> str:
    m = run.data.metrics
    return (f"gain_test_mAP50 {m['gain_test_mAP50']:+.4f} [{m['gain_test_mAP50_ci_low']:+.4f}, "
            f"{m['gain_test_mAP50_ci_high']:+.4f}] (test mAP50 {m['final_test_mAP50']:.4f}, "
            f"lr0 {run.data.params.get('lr0')}, seed {run.data.params.get('seed')})")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(ROOT / "grids" / "lr_search_pruned.yaml"), help="a search with a pruner")
    ap.add_argument("-p", "--param", action="append", default=[], help="override, as for `yolo-mlops grid`")
    ap.add_argument("--trials", type=int, help="fewer trials than the file's (a quick check)")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    from yolo_mlops.data import build_tiny_person_dataset
    work = Path(tempfile.mkdtemp(prefix="bench_pruning_"))
    build_tiny_person_dataset(out=work / "data" / "tiny_coco", yaml_path=work / "data" / "tiny_coco.yaml")
    raw = yaml.safe_load(Path(a.grid).read_text())
    if not raw.get("pruner"): sys.exit(f"{a.grid} names no pruner: nothing to compare")
    if a.trials: raw["trials"] = a.trials
    pruned_file, plain_file = work / "pruned.yaml", work / "unpruned.yaml"
    pruned_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    plain_file.write_text(yaml.safe_dump({k: v for k, v in raw.items() if k != "pruner"}, sort_keys=False))
    print(f"search {raw['name']}: {raw['trials']} trials, fixed {raw.get('fixed')}, space {raw.get('space')}, "
          f"pruner {raw['pruner']}; overrides {a.param or 'none'}; {a.workers} workers", flush=True)
    plain = run_search(plain_file, work / "unpruned", work / "data", a.param, a.workers)
    pruned = run_search(pruned_file, work / "pruned", work / "data", a.param, a.workers)
    ratio = pruned["wall"] / plain["wall"]
    low, high = (plain["best"].data.metrics[f"gain_test_mAP50_ci_{b}"] for b in ("low", "high"))
    inside = low <= pruned["best"].data.metrics["gain_test_mAP50"] <= high
    print(f"\n| search | wall time | trials stopped (trial: after epoch) | best trial's gain [95 % interval] |")
    print("|---|---|---|---|")
    for name, r in (("without pruning", plain), ("with pruning", pruned)):
        stopped = ", ".join(f"{t}: {e}" for t, e in r["stopped"]) or "none"
        print(f"| {name} | {r['wall']:.1f} s | {len(r['stopped'])} of {r['trials']} ({stopped}) | {gain_text(r['best'])} |")
    print(f"\npruned / unpruned wall time: {ratio:.2f} (goal: at most 0.60)")
    print(f"pruned best's gain inside the unpruned best's interval [{low:+.4f}, {high:+.4f}]: "
          f"{'yes' if inside else 'no'} (goal: yes)")

if __name__ == "__main__":
    main()
