"""Benchmark: the least time a suite run kept by `bench_suite.py --cpu` could have taken if its processes imported nothing.

    .venv/bin/python benchmarks/suite_floor.py --from-cpu cpu.json [--repeat 3]

On 2 cores the suite is CPU-bound (benchmarks/README.md, "Where the suite's CPU goes"): its wall time is at least the
CPU its processes use, divided by the cores. Most of that CPU is imports (a run's kernel imports MLflow, Ultralytics
with PyTorch and the SQLite store before it trains a second), so the question that bounds every speed-up of the kind
"pay the imports once" (a kernel forked from a process that has imported them, say) is: what would remain if each
process of the suite imported nothing at all?

This measures, each in a fresh process (the median of `--repeat`), the CPU that starting the interpreter and the
imports of each kind of process cost, the store opened where that kind opens one; subtracts it from every process of
that kind in the kept run (at most the CPU that process used); and prints what remains, and the wall time that needs
with every core busy all the time. Both are generous to the speed-up: the import sets are supersets of what each kind
imports, and no suite keeps every core busy all the time."""
import argparse, collections, json, os, statistics, subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_by_process import processes_by_kind, table_of

STORE = "from yolo_mlops import config; config.open_store({uri!r}, check=False).client.search_experiments(max_results=1)"
# kind of process (as cpu_by_process names it) -> what a process of that kind imports before it does its work
IMPORTS = {
    "run kernel (training notebook, reports)":
        "import ipykernel.kernelapp, matplotlib.pyplot, mlflow, ultralytics, torch._inductor.config, yolo_mlops.train, "
        "yolo_mlops.pyfunc, yolo_mlops.analysis, yolo_mlops.promotion\n" + STORE,
    "trial process (papermill, attach)":
        "import yolo_mlops.trial, yolo_mlops.runner, mlflow\nyolo_mlops.runner.import_papermill()\n" + STORE,
    "trainer process (yolo-mlops train)":
        "import mlflow, ultralytics, torch._inductor.config, yolo_mlops.trainer\n" + STORE,
    "chapter kernel (nbconvert, nbdev, docs)":
        "import ipykernel.kernelapp, matplotlib.pyplot, mlflow, ultralytics, yolo_mlops.train",
    "yolo-mlops grid": "import yolo_mlops.cli, yolo_mlops.launcher, mlflow\n" + STORE,
    "yolo-mlops train": "import yolo_mlops.cli, yolo_mlops.train, yolo_mlops.runner, mlflow\n" + STORE,
    "yolo-mlops data": "import yolo_mlops.cli, yolo_mlops.data, yolo_mlops.data_versions",
    "MLflow server": "import mlflow.server.fastapi_app",
}
CPU = "\nimport resource; r = resource.getrusage(resource.RUSAGE_SELF); print('CPU', r.ru_utime + r.ru_stime)"


def import_cpu(code: str, uri: str, repeat: int) -> float:
    "The median CPU seconds of a fresh process that runs `code` (its interpreter's start included), over `repeat` runs."
    seconds = []
    for _ in range(repeat):
        r = subprocess.run([sys.executable, "-c", code.format(uri=uri) + CPU], capture_output=True, text=True,
                           env={**os.environ, "MPLBACKEND": "Agg"})
        if r.returncode: sys.exit(f"failed:\n{code}\n{r.stderr[-2000:]}")
        seconds.append(float(r.stdout.split("CPU")[-1]))
    return statistics.median(seconds)


def floor_rows(seen: dict, costs: dict) -> list:
    "`table_of`'s rows of a kept run, each with a fourth column: how much of its CPU was imports, at most."
    imports = collections.Counter()
    for kind, cpu in processes_by_kind(seen): imports[kind] += min(cpu, costs.get(kind, 0.0))
    return [(kind, n, cpu, imports[kind]) for kind, n, cpu in table_of(seen)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-cpu", type=Path, required=True, help="a suite run's samples, kept by bench_suite.py --cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    a = ap.parse_args()
    seen = json.loads(a.from_cpu.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlruns.db"
        costs = {kind: import_cpu(code, uri, a.repeat) for kind, code in IMPORTS.items()}
    print("CPU of the interpreter's start and the imports, a fresh process of each kind (median of "
          f"{a.repeat}):")
    for kind, seconds in costs.items(): print(f"  {kind:45} {seconds:6.1f} s")
    rows = floor_rows(seen, costs)
    total, imports = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"\n{'kind':45} {'processes':>9} {'CPU s':>8} {'imports':>8}")
    for kind, n, cpu, imp in rows[:20]: print(f"{kind[:45]:45} {n:9d} {cpu:8.0f} {imp:8.0f}")
    rest = total - imports
    print(f"\nthe suite's processes: {total:.0f} s of CPU, of which at most {imports:.0f} s starting and importing")
    print(f"without any import: {rest:.0f} s of CPU, at least {rest / a.cores:.0f} s ({rest / a.cores / 60:.1f} min) "
          f"of pytest's wall time on {a.cores} cores, every core busy all the time")


if __name__ == "__main__":
    main()
