"""Benchmark: what Ultralytics' own pictures (`plots`) cost a small training run, with them and without, in one go.

    .venv/bin/python benchmarks/bench_plots.py --repeat 3

Trains the same one-epoch run on a small person dataset (8 train / 4 val / 4 test images of COCO128, imgsz 64, the
size of the tests' runs) with `yolo-mlops train --train-in kernel -p plots=true` and `-p plots=false` (in its
kernel, as a grid's trials on a CPU train), alternating, each in a fresh process with a store of its own (a temporary folder, whatever MLFLOW_TRACKING_URI and YOLO_MLOPS_HOME say). Prints
each command's wall time and Ultralytics' `train` inside it (the run's `time_train_s`), their medians, and what the
pictures cost. Uses COCO128 and the weights as configured (YOLO_MLOPS_COCO128, YOLO_MLOPS_WEIGHTS)."""
import argparse, statistics, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import BIN, timed
from phases import training_runs

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="alternate the two this many times; medians are reported")
    ap.add_argument("--imgsz", type=int, default=64)
    a = ap.parse_args()
    from yolo_mlops.data import build_tiny_person_dataset
    work = Path(tempfile.mkdtemp(prefix="bench_plots_"))
    data = build_tiny_person_dataset(out=work / "data" / "small", yaml_path=work / "data" / "small.yaml",
                                     n_train=8, n_val=4, n_test=4).yaml
    walls = {True: [], False: []}
    for i in range(a.repeat):
        for plots in (True, False):
            cmd = [BIN / "yolo-mlops", "train", "--quiet", "--train-in", "kernel", "-p", f"data={data}", "-p", "epochs=1", "-p", f"imgsz={a.imgsz}",
                   "-p", "workers=0", "-p", f"plots={str(plots).lower()}"]
            walls[plots].append(timed(cmd, work)[0])
            print(f"round {i + 1}: plots={plots}: {walls[plots][-1]:.1f} s", flush=True)
    runs = training_runs(work / "mlruns.db")  # oldest first: plots on, off, on, off, ...
    trains = {plots: [r.data.metrics["time_train_s"] for r in runs if r.data.params["plots"] == str(plots)]
              for plots in (True, False)}
    med = {plots: (statistics.median(walls[plots]), statistics.median(trains[plots])) for plots in (True, False)}
    print(f"\none-epoch run, imgsz {a.imgsz}, 8/4/4 images, CPU, median of {a.repeat}:")
    for plots in (True, False):
        print(f"  plots={str(plots).lower():5}  yolo-mlops train {med[plots][0]:5.1f} s   Ultralytics' train {med[plots][1]:5.1f} s")
    print(f"  the pictures cost {med[True][0] - med[False][0]:.1f} s of the command "
          f"({(med[True][0] - med[False][0]) / med[True][0]:.0%}), {med[True][1] - med[False][1]:.1f} s of the training")

if __name__ == "__main__":
    main()
