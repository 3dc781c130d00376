"""Benchmark: the tiny CPU grid on the local backend and on the Ray backend, on this machine.

    .venv/bin/python benchmarks/bench_grid_ray.py                     # a Ray instance started by the grid
    .venv/bin/python benchmarks/bench_grid_ray.py --address auto      # an existing cluster (`ray start --head`)
    .venv/bin/python benchmarks/bench_grid_ray.py --repeat 3          # medians of three

Each run trains every trial from scratch into a fresh embedded store, with the same number of trials at
once on both backends. Prints the wall times, the median trial time of each backend, and the Ray
overhead: the extra wall time per trial, and the part of it that is starting or joining Ray."""
import argparse, csv, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

def run_grid_once(work: Path, grid: str, backend: list[str]) -> tuple[float, list[float]]:
    "Wall time of one `yolo-mlops grid` into a fresh store under `work`, and its trials' own times."
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME")}  # its own store
    t0 = time.perf_counter()
    r = subprocess.run([BIN / "yolo-mlops", "grid", "--grid", grid, *backend], cwd=work, capture_output=True, text=True,
                       env=env)
    wall = time.perf_counter() - t0
    if r.returncode: sys.exit(f"yolo-mlops grid {' '.join(backend)} failed:\n{r.stderr[-3000:]}")
    summary = next((work / "outputs" / "grids").glob("*/grid_summary.csv"))
    return wall, [float(row["seconds"]) for row in csv.DictReader(summary.open())]

def ray_connect_seconds(address: str | None) -> float:
    "How long starting (or joining) Ray and leaving it again takes, alone."
    code = "import ray, sys, time; t = time.perf_counter(); ray.init(address=sys.argv[1] or None, log_to_driver=False); ray.shutdown(); print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code, address or ""], capture_output=True, text=True, check=True).stdout.split()[-1])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(ROOT / "grids" / "tiny_cpu.yaml"))
    ap.add_argument("--workers", type=int, default=2, help="trials at once, on both backends (default 2)")
    ap.add_argument("--address", help="a Ray cluster to use instead of a fresh local instance")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--train-in", choices=("kernel", "process"), help="where the Ray trials train (default: as "
                    "`yolo-mlops grid --backend ray` chooses)")
    a = ap.parse_args()
    from yolo_mlops.data import build_tiny_person_dataset
    from yolo_mlops.grid import load_grid
    trials = len(load_grid(a.grid).trial_params())
    backends = {"local": ["--workers", str(a.workers)],
                "ray": ["--backend", "ray", "--workers", str(a.workers), *(["--address", a.address] if a.address else []),
                        *(["--train-in", a.train_in] if a.train_in else [])]}
    walls, trial_times = {k: [] for k in backends}, {k: [] for k in backends}
    for i in range(a.repeat):
        for name, args in backends.items():
            work = Path(tempfile.mkdtemp(prefix=f"bench_ray_{name}_"))
            build_tiny_person_dataset(out=work / "data" / "tiny_coco", yaml_path=work / "data" / "tiny_coco.yaml")
            wall, times = run_grid_once(work, str(Path(a.grid).resolve()), args)
            walls[name].append(wall); trial_times[name] += times
            print(f"run {i + 1}/{a.repeat} {name:5s}: {wall:6.1f} s wall, trials {', '.join(f'{t:.1f}' for t in times)} s", flush=True)
    connect = statistics.median(ray_connect_seconds(a.address) for _ in range(a.repeat))
    local, ray = statistics.median(walls["local"]), statistics.median(walls["ray"])
    print(f"\n{trials} trials of {Path(a.grid).name}, {a.workers} at once, medians of {a.repeat} run(s):")
    for name in backends:
        print(f"  {name:5s} backend: {statistics.median(walls[name]):6.1f} s wall, median trial {statistics.median(trial_times[name]):.1f} s")
    print(f"  Ray overhead: {ray - local:+.1f} s wall ({(ray - local) / local:+.0%}), {(ray - local) / trials:+.1f} s per trial; "
          f"starting or joining Ray and leaving it alone takes {connect:.1f} s")

if __name__ == "__main__":
    main()
