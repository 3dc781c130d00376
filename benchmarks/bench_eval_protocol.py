"""Benchmark: the evaluation protocol's choice (`EvalProtocol` in nbs/02a_evaluate.ipynb), measured.

    .venv/bin/python benchmarks/bench_eval_protocol.py                 # the validation settings, side by side
    .venv/bin/python benchmarks/bench_eval_protocol.py --training      # and the batch the trainer validates at

For the official yolov8n.pt on the default person dataset (COCO128's persons, 40/10/10) at imgsz 320, each validation
setting (batch 1, 4, 8 and 16 with every image letterboxed to its batch's rectangle; batch 1 and 16 with square
letterboxes) prints the test mAP50 and mAP50-95, the val mAP50, the wall seconds of scoring val and test (the median
of --repeat), and how many test images get, inside the split, exactly the per-image matches they get evaluated alone.
With --training, 5-epoch runs (freeze 0, training batch 8, SGD lr0 0.002, seeds 1 and 2) are trained twice: validated
as Ultralytics' trainer does (twice the training batch) and under the protocol (`validate_during_training`); each prints
its per-epoch val mAP50 and fitness, its best epoch and its training seconds. Uses YOLO_MLOPS_COCO128 and
YOLO_MLOPS_WEIGHTS as configured, and a temporary folder; the times are wall times, noisy on a shared machine."""
import argparse, statistics, sys, tempfile, time
from dataclasses import replace
from pathlib import Path
import numpy as np

OUT = sys.stdout  # the tables go here; Ultralytics' own output goes to a log (`console_to_log`)
SETTINGS = [(1, True), (4, True), (8, True), (16, True), (1, False), (16, False)]  # (batch, rect)

def identical(images: list, alone: list) -> int:
    "How many of `images` have exactly the matches (to the last digit of every confidence) they have in `alone`."
    alone = {i["image"]: i for i in alone}
    return sum(all(np.array_equal(i[k], alone[i["image"]][k]) for k in ("tp", "conf", "pred_cls", "target_cls"))
               for i in images)

def settings_table(data: str, work: Path, repeat: int):
    "Each validation setting: its scores, its seconds, and the test images whose matches are their own."
    from ultralytics import YOLO
    from yolo_mlops import config
    from yolo_mlops.evaluate import EvalProtocol, evaluate_alone, evaluate_split, pretrained_class_map
    model = YOLO(config.pretrained_weights())
    cmap, protocol = pretrained_class_map(model.names, ["person"]), EvalProtocol(imgsz=320)
    score = lambda split, p: evaluate_split(model, data, split, p, workdir=work / "eval", class_map=cmap)
    score("val", protocol)  # the first evaluation also loads what every other one reuses
    alone = {rect: evaluate_alone(model, data, "test", replace(protocol, rect=rect), work / f"alone-{rect}",
                                  class_map=cmap) for rect in (True, False)}
    print("| val batch | letterbox | test mAP50 | test mAP50-95 | val mAP50 | val + test, s | test images scored "
          "as alone |\n|---|---|---|---|---|---|---|", file=OUT)
    for batch, rect in SETTINGS:
        p, seconds = replace(protocol, batch=batch, rect=rect), []
        for _ in range(repeat):
            started = time.perf_counter()
            val, test = score("val", p), score("test", p)
            seconds.append(time.perf_counter() - started)
        print(f"| {batch} | {'rectangle' if rect else 'square'} | {test.metrics['mAP50']:.4f} | "
              f"{test.metrics['mAP50_95']:.4f} | {val.metrics['mAP50']:.4f} | {statistics.median(seconds):.2f} | "
              f"{identical(test.images, alone[rect])} / {len(test.images)} |", file=OUT, flush=True)

def training_table(data: str, work: Path, seeds=(1, 2), epochs: int = 5):
    "5-epoch runs validated at the trainer's own batch and under the protocol: per-epoch val, best epoch, seconds."
    from ultralytics import YOLO
    from yolo_mlops import config
    from yolo_mlops.evaluate import EvalProtocol
    from dataclasses import asdict
    from yolo_mlops.trainer import validate_during_training
    from yolo_mlops.trainer import disable_ultralytics_mlflow
    print("\n| seed | the trainer validates | val mAP50 by epoch | fitness by epoch | best epoch | training, s |\n"
          "|---|---|---|---|---|---|", file=OUT)
    for seed in seeds:
        for protocol in (None, EvalProtocol(imgsz=320)):
            model, epochs_seen = YOLO(config.pretrained_weights()), []
            model.add_callback("on_pretrain_routine_start", disable_ultralytics_mlflow)
            if protocol: model.add_callback("on_pretrain_routine_end", validate_during_training(asdict(protocol)))
            model.add_callback("on_fit_epoch_end", lambda t: t.validator.training and epochs_seen.append(
                (t.metrics["metrics/mAP50(B)"], float(t.fitness))))
            started = time.perf_counter()
            model.train(data=data, epochs=epochs, imgsz=320, batch=8, optimizer="SGD", lr0=0.002, warmup_epochs=0.0,
                        freeze=None, seed=seed, deterministic=True, device="cpu", workers=2, plots=False,
                        project=str(work / "train"), name=f"{seed}-{bool(protocol)}", exist_ok=True, verbose=False)
            seconds = time.perf_counter() - started
            best = 1 + max(range(len(epochs_seen)), key=lambda e: (epochs_seen[e][1], -e))  # the first best, as Ultralytics
            print(f"| {seed} | {'under the protocol (batch 1)' if protocol else 'at twice the training batch'} | "
                  f"{', '.join(f'{m:.3f}' for m, _ in epochs_seen)} | {', '.join(f'{f:.4f}' for _, f in epochs_seen)} | "
                  f"{best} | {seconds:.1f} |", file=OUT, flush=True)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="time each setting this many times; the median is printed")
    ap.add_argument("--training", action="store_true", help="also train 5-epoch runs with both validations")
    a = ap.parse_args()
    from yolo_mlops.data import build_tiny_person_dataset
    from yolo_mlops.trainer import console_to_log
    work = Path(tempfile.mkdtemp(prefix="bench_eval_protocol_"))
    data = str(build_tiny_person_dataset(out=work / "tiny_coco", yaml_path=work / "tiny_coco.yaml").yaml)
    with console_to_log(work / "console.txt"):
        settings_table(data, work, a.repeat)
        if a.training: training_table(data, work)
    print(f"\nUltralytics' output: {work / 'console.txt'}")

if __name__ == "__main__":
    main()
