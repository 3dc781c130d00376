"""Benchmark: does the shapes lesson's verdict hold whenever a student runs it?

    .venv/bin/python benchmarks/bench_shapes_verdict.py                      # 5 sets of seeds, grids/shapes.yaml
    .venv/bin/python benchmarks/bench_shapes_verdict.py --sets 6 --grid grids/shapes.yaml

Runs the whole shapes lesson, `yolo-mlops pipeline --shapes`, once per set of seeds, each in a fresh home of its own
(its own dataset, store and baseline cache, as on a fresh clone). Set k replaces the grid's `seed` values by the same
number of seeds shifted by k times that number (set 0 is the grid as shipped: with seeds 1-5, set 1 is 6-10, set 2 is
11-15, ...). For each pipeline it prints the effect of the grid's other dimension (`epochs`: the mean paired difference
of test mAP50, its interval over the pairs and its interval over the pairs and the test images, the verdict), the
pipeline's decision line (promoted or not) and its wall time; then how often each verdict came out. It is a measurement,
not a test: each pipeline takes minutes. Uses YOLO_MLOPS_COCO128 / YOLO_MLOPS_WEIGHTS as configured; whatever
MLFLOW_TRACKING_URI and YOLO_MLOPS_HOME say, each pipeline keeps its own."""
import argparse, collections, csv, os, subprocess, sys, tempfile, time
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def seed_sets(seeds: list, sets: int) -> list[list]:
    "`sets` disjoint sets of as many seeds as `seeds`: the grid's own first, then each shifted by one more block."
    return [[s + k * len(seeds) for s in seeds] for k in range(sets)]

def run_pipeline(grid: dict, seeds: list, work: Path) -> dict:
    "One fresh `yolo-mlops pipeline --shapes` with these seeds; its effects row, its decision line and its seconds."
    home = work / f"seeds-{'-'.join(map(str, seeds))}"
    home.mkdir(parents=True)
    grid_file = home / "shapes.yaml"
    grid_file.write_text(yaml.safe_dump({**grid, "grid": {**grid["grid"], "seed": seeds}}, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME", "YOLO_MLOPS_DATA")}
    started = time.perf_counter()
    r = subprocess.run([str(BIN / "yolo-mlops"), "pipeline", "--shapes", "--grid", str(grid_file)], cwd=home,
                       env={**env, "YOLO_MLOPS_HOME": str(home)}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (home / "pipeline.log").write_text(r.stdout + r.stderr)
    effects = home / "reports" / "effects.csv"
    rows = list(csv.DictReader(effects.open())) if effects.exists() else []
    row = next((x for x in rows if x["dimension"] != "seed"), {})
    lines = r.stdout.strip().splitlines() or ["(no output)"]
    decision = next((l for l in reversed(lines) if "PROMOTED" in l), lines[-1])  # the promotion's one line
    return dict(seeds=seeds, row=row, decision=decision, seconds=seconds, rc=r.returncode, log=home / "pipeline.log")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(ROOT / "grids" / "shapes.yaml"), help="the shapes grid (default: shipped)")
    ap.add_argument("--sets", type=int, default=5, help="how many sets of seeds, one pipeline each (default 5)")
    a = ap.parse_args()
    grid = yaml.safe_load(Path(a.grid).read_text())
    work = Path(tempfile.mkdtemp(prefix="bench_shapes_verdict_"))
    print(f"grid {a.grid}: fixed {grid.get('fixed')}, grid {grid['grid']}; {a.sets} pipelines in {work}", flush=True)
    verdicts, promoted, results = collections.Counter(), 0, []
    for seeds in seed_sets(list(grid["grid"]["seed"]), a.sets):
        res = run_pipeline(grid, seeds, work)
        results.append(res)
        row = res["row"]
        f = lambda k: f"{float(row[k]):+.3f}" if row.get(k) not in (None, "") else "nan"
        verdict = row.get("verdict", f"no effects table (exit {res['rc']}, see {res['log']})")
        verdicts[verdict] += 1
        promoted += res["decision"].startswith("PROMOTED")
        print(f"seeds {','.join(map(str, seeds))}: {row.get('dimension', '?')} {row.get('reference', '?')} -> "
              f"{row.get('value', '?')}: {f('mean_difference')} [{f('ci_low')}, {f('ci_high')}], with the test images "
              f"[{f('ci_low_images')}, {f('ci_high_images')}]: {verdict}  ({res['seconds'] / 60:.1f} min)", flush=True)
        print(f"    {res['decision'][:160]}", flush=True)
    minutes = sorted(r["seconds"] / 60 for r in results)
    print(f"\nverdicts over {a.sets} fresh pipelines: " + ", ".join(f"{v}: {n}" for v, n in verdicts.most_common()))
    print(f"promoted: {promoted} of {a.sets}; minutes per pipeline: {minutes[0]:.1f}-{minutes[-1]:.1f} "
          f"(median {minutes[len(minutes) // 2]:.1f})")

if __name__ == "__main__":
    main()
