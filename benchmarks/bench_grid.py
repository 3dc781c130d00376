"""Benchmark: the same grid cells run two ways, in one go:

1. as the original course project did: one plain Python process per cell, each a bare Ultralytics
   `model.train(...)` with no MLflow at all, one after the other;
2. with `yolo-mlops grid`: papermill, full MLflow logging, executed notebooks, parallel workers.

    .venv/bin/python benchmarks/bench_grid.py --grid grids/course.yaml --workers 2
    .venv/bin/python benchmarks/bench_grid.py --grid grids/course.yaml -p epochs=1 -p imgsz=160,192   # shortened
    .venv/bin/python benchmarks/bench_grid.py --grid grids/course.yaml --device 0 --per-device 8      # one GPU

Prints both wall times and the ratio. Targets: on a 2-core CPU, `yolo-mlops grid` within 1.15x of the
plain loop; on one GPU, at least 5x faster than the plain loop."""
import argparse, subprocess, sys, tempfile, time
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

BARE = """
from ultralytics import YOLO
from yolo_mlops.train import disable_ultralytics_mlflow, skip_ultralytics_raytune
skip_ultralytics_raytune()  # as in our runs: no Ray Tune import where Ray is installed
model = YOLO({weights!r})
model.add_callback("on_pretrain_routine_start", disable_ultralytics_mlflow)  # a bare run: no MLflow at all
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
    a = ap.parse_args()
    from yolo_mlops.cli import parse_params
    from yolo_mlops.config import pretrained_weights
    from yolo_mlops.data import build_tiny_person_dataset
    from yolo_mlops.grid import load_grid, grid_from_params
    from yolo_mlops.train import TrainConfig
    a.grid = str(Path(a.grid).resolve())
    spec = grid_from_params(parse_params(a.param), load_grid(a.grid))
    work = Path(tempfile.mkdtemp(prefix="bench_grid_"))
    data = build_tiny_person_dataset(out=work / "data" / "tiny_coco", yaml_path=work / "data" / "tiny_coco.yaml").yaml
    cells = spec.cells()
    device = (a.device.split(",")[0] if a.device else "cpu")
    print(f"{len(cells)} cells of grid {spec.name}: {spec.grid}, fixed {spec.fixed}; device {device}", flush=True)
    plain = None
    if not a.skip_plain:
        t0 = time.perf_counter()
        for i, cell in enumerate(cells):
            full = {k: v for k, v in vars(TrainConfig(**{**vars(TrainConfig()), **cell})).items()
                    if k in ("epochs", "imgsz", "batch", "optimizer", "lr0", "warmup_epochs", "seed", "workers")}
            full.update(device=device, freeze=cell.get("freeze", TrainConfig.freeze) or None)
            code = BARE.format(weights=pretrained_weights(), data=str(data), project=str(work / "plain"), name=f"cell{i}", args=full)
            r = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True)
            if r.returncode: sys.exit(r.stderr[-3000:])
            print(f"plain cell {i + 1}/{len(cells)} done at {time.perf_counter() - t0:.0f}s", flush=True)
        plain = time.perf_counter() - t0
    cmd = [BIN / "yolo-mlops", "grid", "--grid", a.grid, "--workers", str(a.workers)]
    cmd += [x for p in (a.param or []) for x in ("-p", p)]
    if a.device: cmd += ["--device", a.device]
    if a.per_device: cmd += ["--per-device", str(a.per_device)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    ours = time.perf_counter() - t0
    print(r.stdout[-2500:])
    if r.returncode: sys.exit(f"yolo-mlops grid failed:\n{r.stderr[-3000:]}")
    workers = a.per_device * len(a.device.split(",")) if (a.per_device and a.device) else a.workers
    print(f"\n{len(cells)} cells, device {device}")
    if plain is not None: print(f"plain sequential loop (one bare process per cell, no MLflow): {plain:.1f} s")
    print(f"yolo-mlops grid, {workers} worker(s), full MLflow logging: {ours:.1f} s")
    if plain is not None: print(f"ratio grid / plain: {ours / plain:.2f}x  (speed-up {plain / ours:.2f}x)")

if __name__ == "__main__":
    main()
