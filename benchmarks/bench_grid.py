"""Benchmark: the same grid trials run several ways, in one go:

1. as the original course project did: one plain Python process per trial, each a bare Ultralytics
   `model.train(...)` that logs nothing (Ultralytics still imports MLflow, which is installed), one after the other;
2. with `--bare-packed`: the same bare processes, N at a time (the limit of packing trials: nothing recorded);
3. with `yolo-mlops grid --workers 1`: papermill, full MLflow logging, executed notebooks, one trial at a time;
4. with `yolo-mlops grid` and N trials at once (`--workers N`, or `--per-device N` on GPUs).

    .venv/bin/python benchmarks/bench_grid.py --grid grids/course.yaml --workers 2
    .venv/bin/python benchmarks/bench_grid.py --grid grids/course.yaml -p epochs=1 -p imgsz=160,192   # shortened
    .venv/bin/python benchmarks/bench_grid.py --grid grids/course.yaml --device 0 --per-device 8 --bare-packed

Prints the wall times and two comparisons, each named for what it measures: one worker against the loop is
the **overhead** of logging and recording (target on a 2-core CPU: at most 1.10x); N workers against the loop
is the **speed-up** of running trials side by side (target on one GPU: at least 6x); N workers against the bare
packed processes is what logging costs a packed grid (target: at most 1.3x). Then each trial's median latency per
image, alone and beside others (a trial's CPU thread budget keeps it within 2x), and where the seconds of a trial go:
the phases every run logs, and what is spent outside the run (launcher, kernel, report, HTML). Every `yolo-mlops
grid` runs in a home and store of its own, whatever MLFLOW_TRACKING_URI and YOLO_MLOPS_HOME say."""
import argparse, csv, os, statistics, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from phases import phase_split, print_split, training_runs

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

BARE = """
from ultralytics import YOLO
from yolo_mlops.trainer import disable_ultralytics_mlflow, skip_ultralytics_raytune
skip_ultralytics_raytune()  # as in our runs: no Ray Tune import where Ray is installed
model = YOLO({weights!r})
model.add_callback("on_pretrain_routine_start", disable_ultralytics_mlflow)  # a bare run logs nothing (MLflow is imported)
model.train(data={data!r}, project={project!r}, name={name!r}, exist_ok=True, verbose=False, deterministic=True, **{args!r})
"""

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(ROOT / "grids" / "course.yaml"))
    ap.add_argument("-p", "--param", action="append", help="override, as for `yolo-mlops grid`")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="")
    ap.add_argument("--per-device", type=int)
    ap.add_argument("--skip-plain", action="store_true", help="only time `yolo-mlops grid`")
    ap.add_argument("--skip-one-worker", action="store_true", help="skip the one-worker grid (the overhead comparison)")
    ap.add_argument("--bare-packed", action="store_true",
                    help="also run the bare processes N at a time: the limit of a packed grid")
    ap.add_argument("--train-in", choices=("kernel", "process"), help="where the grid's trials train (default: as "
                    "`yolo-mlops grid` chooses for the device)")
    a = ap.parse_args()
    from yolo_mlops.parameters import TrainConfig, parse_params
    from yolo_mlops.config import pretrained_weights
    from yolo_mlops.data import build_tiny_person_dataset
    from yolo_mlops.grid import load_grid, grid_from_params
    a.grid = str(Path(a.grid).resolve())
    spec = grid_from_params(parse_params(a.param), load_grid(a.grid))
    work = Path(tempfile.mkdtemp(prefix="bench_grid_"))
    data = build_tiny_person_dataset(out=work / "data" / "tiny_coco", yaml_path=work / "data" / "tiny_coco.yaml").yaml
    trials = spec.trial_params()
    device = (a.device.split(",")[0] if a.device else "cpu")
    print(f"{len(trials)} trials of grid {spec.name}: {spec.grid}, fixed {spec.fixed}; device {device}", flush=True)
    def bare(i, trial, folder):  # one bare process: the trial's arguments, nothing recorded
        full = {k: v for k, v in vars(TrainConfig(**{**vars(TrainConfig()), **trial})).items()
                if k in ("epochs", "imgsz", "batch", "optimizer", "lr0", "warmup_epochs", "seed", "workers")}
        full.update(device=device, freeze=trial.get("freeze", TrainConfig.freeze) or None)
        code = BARE.format(weights=pretrained_weights(), data=str(data), project=str(work / folder), name=f"trial{i}", args=full)
        r = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True)
        if r.returncode: sys.exit(r.stderr[-3000:])
    def bare_trials(folder: str, at_once: int) -> float:
        t0, done = time.perf_counter(), 0
        with ThreadPoolExecutor(at_once) as pool:
            for _ in pool.map(lambda ic: bare(*ic, folder), enumerate(trials)):
                done += 1
                print(f"{folder} trial {done}/{len(trials)} done at {time.perf_counter() - t0:.0f}s", flush=True)
        return time.perf_counter() - t0
    workers = a.per_device * len(a.device.split(",")) if (a.per_device and a.device) else a.workers
    plain = None if a.skip_plain else bare_trials("plain", 1)
    packed = bare_trials("packed", workers) if a.bare_packed and workers > 1 else None
    one = None if a.skip_one_worker else time_grid(a, work / "one", ["--workers", "1"] + (["--device", a.device] if a.device else []))
    many = time_grid(a, work / "many", ["--workers", str(a.workers)] + (["--device", a.device] if a.device else [])
                     + (["--per-device", str(a.per_device)] if a.per_device else [])) if workers > 1 else None
    print(f"\n{len(trials)} trials, device {device}")
    if plain is not None: print(f"plain sequential loop (one bare process per trial, no MLflow logging): {plain:.1f} s")
    if packed is not None: print(f"bare processes, {workers} at a time (the limit: nothing recorded): {packed:.1f} s")
    if one: print(f"yolo-mlops grid, 1 worker, full MLflow logging: {one[0]:.1f} s")
    if many: print(f"yolo-mlops grid, {workers} workers, full MLflow logging: {many[0]:.1f} s")
    if plain is not None and one: print(f"overhead (1 worker / plain loop): {one[0] / plain:.2f}x  (target <= 1.10x on a 2-core CPU)")
    if plain is not None and many: print(f"speed-up ({workers} workers against the plain loop): {plain / many[0]:.2f}x")
    if packed is not None and many:
        print(f"packed grid against bare packed processes: {many[0] / packed:.2f}x  (target <= 1.3x)")
    if one and many and one[2] and many[2]:
        print(f"median latency per image: {one[2]:.1f} ms alone, {many[2]:.1f} ms beside {workers - 1} other trial(s): "
              f"{many[2] / one[2]:.2f}x  (target <= 2x)")
    if one: print_split("where a trial's seconds go, 1 worker (median per trial)", one[1])
    if many: print_split(f"where a trial's seconds go, {workers} workers (median per trial)", many[1])

def time_grid(a, home: Path, args: list) -> tuple[float, dict, float]:
    """Run `yolo-mlops grid` in a fresh home (nothing done yet); return its wall time, the per-phase split of its trials
    and their median latency per image."""
    home.mkdir(parents=True)
    (home / "data").symlink_to(home.parent / "data")
    cmd = [BIN / "yolo-mlops", "grid", "--grid", a.grid, *args, *[x for p in (a.param or []) for x in ("-p", p)],
           *(["--train-in", a.train_in] if a.train_in else [])]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME")}  # its own store
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=home, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    print(r.stdout[-2500:])
    if r.returncode: sys.exit(f"yolo-mlops grid failed:\n{r.stderr[-3000:]}")
    summary = next(home.glob("outputs/grids/*/grid_summary.csv"))
    seconds = {row["run_id"]: float(row["seconds"]) for row in csv.DictReader(open(summary))}
    runs = training_runs(home / "mlruns.db")
    latency = statistics.median(r.data.metrics.get("latency_ms_median", 0.0) for r in runs) if runs else 0.0
    return wall, phase_split(runs, [seconds[r.info.run_id] for r in runs]), latency

if __name__ == "__main__":
    main()
