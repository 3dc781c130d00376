"""Benchmark: each export format against PyTorch, in one run: export time, size, parity on the test split, latency.

    .venv/bin/python benchmarks/bench_export.py --imgsz 320 --rounds 3
    .venv/bin/python benchmarks/bench_export.py --data data/shapes.yaml --weights runs/.../best.pt --imgsz 160

Exports the weights (default: the official yolov8n.pt, `YOLO_MLOPS_WEIGHTS`) to every format with
`export_and_compare` (nbs/06_export.ipynb), scores each on the test split of the dataset (default: the course's person
dataset, 40/10/10 images of COCO128, built in a temporary folder) against the PyTorch model with the same per-image
evaluation as the training runs, times each on the same test images, one at a time after a warm-up, and prints the
table: PyTorch as the reference row, each format's speed-up over it as a ratio of two medians measured in this run.
Goals (issue 32): the fastest format that is "as accurate" at least 2x faster than PyTorch at imgsz 320 on a 2-core
CPU; every format exported and evaluated on 10 test images within 2 minutes (the `total` line)."""
import argparse, shutil, tempfile, time
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="the PyTorch checkpoint (default: the official yolov8n.pt)")
    ap.add_argument("--data", help="a dataset YAML (default: the course's person dataset, built in a temp folder)")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--formats", default="onnx,openvino,openvino-int8,torchscript")
    ap.add_argument("--rounds", type=int, default=1, help="how many times each test image is timed (default 1)")
    ap.add_argument("--threads", type=int, help="PyTorch's threads (default: one per physical core, as the runtimes)")
    ap.add_argument("--tolerance", type=float, default=0.01)
    a = ap.parse_args()
    t_start = time.perf_counter()
    import pandas as pd
    from yolo_mlops import config
    from yolo_mlops.export import comparison_table, export_and_compare
    folder = Path(tempfile.mkdtemp(prefix="bench_export_"))
    try:
        data = a.data
        if not data:
            from yolo_mlops.data import build_tiny_person_dataset
            data = str(build_tiny_person_dataset(out=folder / "tiny_coco", yaml_path=folder / "tiny_coco.yaml").yaml)
        weights = a.weights or config.pretrained_weights()
        t0 = time.perf_counter()
        comparison = export_and_compare(weights, a.formats, data, a.imgsz, folder / "work", a.tolerance,
                                        threads=a.threads, rounds=a.rounds, console=folder / "console.txt",
                                        progress=lambda line: print(line, flush=True))
        seconds = time.perf_counter() - t0
    finally: shutil.rmtree(folder, ignore_errors=True)
    table = comparison_table(comparison)
    shown = table[["format", "verdict", "mAP50", "diff_mAP50", "diff_mAP50_ci_low", "diff_mAP50_ci_high",
                   "latency_ms_median", "latency_ms_p90", "speedup", "threads", "size_mb", "export_s"]]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(shown.to_string(index=False))
    passed = table[table.verdict == "as accurate"]
    if len(passed):
        best = passed.sort_values("speedup", ascending=False).iloc[0]
        print(f"fastest as accurate: {best.format}, {best.speedup:.2f}x PyTorch ({best.latency_ms_median:.1f} against "
              f"{table.latency_ms_median[0]:.1f} ms per image at imgsz {a.imgsz}), mAP50 {best.diff_mAP50:+.4f}, "
              f"95 % interval [{best.diff_mAP50_ci_low:+.4f}, {best.diff_mAP50_ci_high:+.4f}]")
    else: print("no format is as accurate as PyTorch on these test images")
    print(f"total: every format exported, scored and timed on {comparison.pytorch.latency.images // a.rounds} "
          f"{comparison.split} images in {seconds:.1f} s ({time.perf_counter() - t_start:.1f} s with imports and data)")

if __name__ == "__main__":
    main()
