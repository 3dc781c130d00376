"""Where the seconds of logged runs go, read back from their MLflow store: shared by the benchmark scripts."""
import statistics
from pathlib import Path

PHASES = ("setup", "baseline", "train", "evaluate", "bootstrap", "latency", "artifacts", "model")

def training_runs(store: Path) -> list:
    "The FINISHED training runs in the SQLite store `store`, oldest first."
    from mlflow import MlflowClient
    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "attributes.status = 'FINISHED'",
                              max_results=1000)
    return sorted((r for r in runs if "time_train_s" in r.data.metrics), key=lambda r: r.info.start_time)

def phase_seconds(run) -> float:
    "The seconds `run` logged in its phases (its `time_<phase>_s` metrics), together."
    return sum(run.data.metrics.get(f"time_{p}_s", 0.0) for p in PHASES)

def phase_split(runs: list, walls: list | None = None) -> dict:
    """Median seconds per phase over `runs` (the `time_<phase>_s` metrics each run logs); with `walls`, the wall time of
    each run's process or cell, also what was spent outside the run: before it opened and after it closed."""
    split = {p: statistics.median(r.data.metrics.get(f"time_{p}_s", 0.0) for r in runs) for p in PHASES}
    if walls:  # what the phases do not cover: launcher, kernel start and imports, opening the run, report cells, HTML
        inside = [phase_seconds(r) for r in runs]
        split["outside the phases (launcher, kernel start, imports, report, HTML, attach)"] = \
            statistics.median(w - i for w, i in zip(walls, inside))
    return split

def wall_split(runs: list, launches: list, ends: list) -> dict:
    """Median seconds of each logged run's process outside its phases, by when: before the run opened (launcher,
    kernel start, imports, opening the store and the run), inside the run between phases (opening, closing), and
    after it closed (report cells, kernel stop, HTML, attaching the notebook). `launches` and `ends` are the wall clock
    times (`time.time()`) at which each run's process started and ended, in the order of `runs`."""
    before = [r.info.start_time / 1000 - t for r, t in zip(runs, launches)]
    between = [(r.info.end_time - r.info.start_time) / 1000 - phase_seconds(r) for r in runs]
    after = [t - r.info.end_time / 1000 for r, t in zip(runs, ends)]
    return {"before the run opened (launcher, kernel start, imports, store, run)": statistics.median(before),
            "inside the run, between its phases (opening, closing)": statistics.median(between),
            "after the run closed (report cells, kernel stop, HTML, attach)": statistics.median(after)}

def print_split(title: str, split: dict, bare: float | None = None):
    print(f"\n{title}")
    for name, seconds in split.items(): print(f"  {name:<72} {seconds:6.2f} s")
    total = sum(split.values())
    print(f"  {'total':<72} {total:6.2f} s")
    if bare is not None: print(f"  {'overhead over the bare run (total - bare)':<72} {total - bare:6.2f} s")
