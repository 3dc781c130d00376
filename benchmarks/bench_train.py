"""Benchmark: one training run as `yolo-mlops train` (papermill + full MLflow logging) against a bare
Ultralytics `model.train(...)` with the same configuration, each in a fresh process, in one go.

    .venv/bin/python benchmarks/bench_train.py --epochs 3 --imgsz 320 --repeat 2

Prints both wall times (process start to exit, imports included), their ratio, and where the seconds of each
go: for the bare run, its start and imports, `model.train` and its exit; for the logged run, in order, what comes
before training (launcher, kernel start, the trainer process and its imports), training (Ultralytics trains in a
process of its own), the phases after it and what follows the run's close (report cells, HTML, attaching the
notebook); then what the kernel does beside training (its imports, the store, the run, setup, the baseline), which
is not on that path. Target: the fully logged run costs at most 1.10x the bare training. Uses COCO128 and the
weights as configured (YOLO_MLOPS_COCO128, YOLO_MLOPS_WEIGHTS) and a temporary working folder with a store of its own,
whatever MLFLOW_TRACKING_URI and YOLO_MLOPS_HOME say. `--train-in kernel` measures the logged run training in its
kernel instead of a trainer process (where `yolo-mlops train` trains by default)."""
import argparse, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from phases import beside_training, print_split, timeline_split, training_runs

BIN = Path(sys.executable).parent

BARE = """
import time
from ultralytics import YOLO
from yolo_mlops.trainer import disable_ultralytics_mlflow, skip_ultralytics_raytune
skip_ultralytics_raytune()  # as in our runs: no Ray Tune import where Ray is installed
model = YOLO({weights!r})
# a bare run logs nothing: Ultralytics still imports MLflow (its integration's module) wherever MLflow is installed
model.add_callback("on_pretrain_routine_start", disable_ultralytics_mlflow)
training = time.time()
model.train(data={data!r}, epochs={epochs}, imgsz={imgsz}, batch={batch}, optimizer="SGD", lr0={lr0}, warmup_epochs=0.0,
            freeze={freeze}, seed=42, deterministic=True, device="cpu", workers={workers}, project={project!r},
            name="bare", exist_ok=True, verbose=False)
print("BARE", training, time.time())
"""

def own_store_env() -> dict:
    "This environment without the variables that would send the benchmark's runs to another store or home."
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME")}

def timed(cmd, cwd) -> tuple[float, float, float, str]:
    "Run `cmd` in `cwd` (its own store); return its wall seconds, the wall clock times it started and ended, its output."
    launched, t0 = time.time(), time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=own_store_env())
    if r.returncode: sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0, launched, time.time(), r.stdout

def bare_split(launched: float, ended: float, output: str) -> dict:
    "The bare run's seconds: its start and imports, `model.train`, and its exit (from the times it printed)."
    training, trained = map(float, next(l for l in output.splitlines() if l.startswith("BARE ")).split()[1:])
    return {"process start, imports, loading the model": training - launched,
            "model.train (with Ultralytics' import of MLflow)": trained - training,
            "process exit (interpreter shutdown)": ended - trained}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr0", type=float, default=0.002)
    ap.add_argument("--freeze", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="alternate the two this many times; medians are reported")
    ap.add_argument("--train-in", choices=("kernel", "process"), help="where the logged run trains (default: as "
                    "`yolo-mlops train` chooses)")
    a = ap.parse_args()
    from yolo_mlops.config import pretrained_weights
    from yolo_mlops.data import build_tiny_person_dataset
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    data = build_tiny_person_dataset(out=work / "data" / "tiny_coco", yaml_path=work / "data" / "tiny_coco.yaml").yaml
    weights = pretrained_weights()
    bare_code = BARE.format(weights=weights, data=str(data), epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, lr0=a.lr0,
                            freeze=a.freeze, workers=a.workers, project=str(work / "bare"))
    ours_cmd = [BIN / "yolo-mlops", "train", "--quiet", *(["--train-in", a.train_in] if a.train_in else []), *[x for k, v in dict(epochs=a.epochs, imgsz=a.imgsz, batch=a.batch,
                lr0=a.lr0, freeze=a.freeze, workers=a.workers, optimizer="SGD", warmup_epochs=0.0, seed=42, device="cpu").items()
                for x in ("-p", f"{k}={v}")]]
    bare, ours, bare_splits, launches, ends = [], [], [], [], []
    for i in range(a.repeat):
        seconds, launched, ended, output = timed([sys.executable, "-c", bare_code], work)
        bare.append(seconds)
        bare_splits.append(bare_split(launched, ended, output))
        seconds, launched, ended, _ = timed(ours_cmd, work)
        ours.append(seconds)
        launches.append(launched)
        ends.append(ended)
        print(f"round {i + 1}: bare {bare[-1]:.1f}s, yolo-mlops train {ours[-1]:.1f}s", flush=True)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"\nconfig: epochs={a.epochs} imgsz={a.imgsz} batch={a.batch} SGD lr0={a.lr0} freeze={a.freeze} workers={a.workers}, CPU")
    print(f"bare Ultralytics model.train (median of {a.repeat}): {b:.1f} s")
    print(f"yolo-mlops train, papermill + full MLflow logging (median of {a.repeat}): {o:.1f} s")
    print(f"overhead of the logged run: {o / b:.2f}x the bare training (target <= 1.10x)")
    print_split(f"where the bare run's seconds go (median of {a.repeat})",
                {k: statistics.median(s[k] for s in bare_splits) for k in bare_splits[0]})
    runs = training_runs(work / "mlruns.db")  # one per round, oldest first
    print_split(f"where the logged run's seconds go, in order (median of {a.repeat})", timeline_split(runs, launches, ends), b)
    if a.train_in != "kernel":
        print_split(f"beside training, in the kernel: not on that path (median of {a.repeat})", beside_training(runs),
                    total=False)

if __name__ == "__main__":
    main()
