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

AFTER_TRAINING = ("latency", "evaluate", "bootstrap", "artifacts", "model")  # the phases after training, in order

def phase_split(runs: list, walls: list | None = None) -> dict:
    """Median seconds per phase over `runs` (the `time_<phase>_s` metrics each run logs); with `walls`, the wall time of
    each run's process or trial, also what was spent outside the run: before it opened and after it closed."""
    split = {p: statistics.median(r.data.metrics.get(f"time_{p}_s", 0.0) for r in runs) for p in PHASES}
    if walls:  # what the phases do not cover: launcher, kernel start and imports, opening the run, report cells, HTML
        inside = [phase_seconds(r) for r in runs]
        split["outside the phases (launcher, kernel start, imports, report, HTML, attach)"] = \
            statistics.median(w - i for w, i in zip(walls, inside))
    return split

def _training_ends(run) -> tuple[float, float]:
    """When `run`'s training started and ended (wall clock seconds): the run's clock starts as it opens, and its
    setup, baseline and train phases end when the trainer process is done."""
    m = run.data.metrics
    trained = run.info.start_time / 1000 + sum(m.get(f"time_{p}_s", 0.0) for p in ("setup", "baseline", "train"))
    return trained - m["train_seconds"], trained

def timeline_split(runs: list, launches: list, ends: list) -> dict:
    """Median seconds of each logged run's process along the path that sets its wall time: before training starts
    (launcher, kernel start, the imports), training (in the trainer process or the kernel), each phase
    after it, and after the run closed (report cells, kernel stop, HTML, attaching the notebook). `launches` and
    `ends` are the wall clock times (`time.time()`) at which each run's process started and ended, in the order of
    `runs`. What the kernel does beside training (`beside_training`) is not on that path."""
    rows = []
    for r, launched, ended in zip(runs, launches, ends):
        started, trained = _training_ends(r)
        after = [r.data.metrics.get(f"time_{p}_s", 0.0) for p in AFTER_TRAINING]
        closed = r.info.end_time / 1000
        rows.append([started - launched, trained - started, *after, closed - trained - sum(after), ended - closed])
    names = ["before training (launcher, kernel start, imports; with train_in=kernel also the run's setup, baseline)",
             "training (model.train, in the trainer process or the kernel)",
             *(f"after training: {p}" for p in AFTER_TRAINING),
             "after training: between phases, closing the run",
             "after the run closed (report cells, kernel stop, HTML, attach)"]
    return {n: statistics.median(row[i] for row in rows) for i, n in enumerate(names)}

def beside_training(runs: list) -> dict:
    """Median seconds of what the kernel does while the trainer process trains: its imports and opening the run
    (counted from training's start), setup, the baseline, and then waiting for the end of training."""
    opened = [r.info.start_time / 1000 - _training_ends(r)[0] for r in runs]
    out = {"the kernel's imports, opening the store and the run": statistics.median(opened)}
    for p in ("setup", "baseline", "train"):
        out["waiting for the end of training" if p == "train" else p] = \
            statistics.median(r.data.metrics.get(f"time_{p}_s", 0.0) for r in runs)
    return out

def print_split(title: str, split: dict, bare: float | None = None, total: bool = True):
    print(f"\n{title}")
    width = max(72, *(len(name) for name in split))
    for name, seconds in split.items(): print(f"  {name:<{width}} {seconds:6.2f} s")
    if not total: return
    seconds = sum(split.values())
    print(f"  {'total':<{width}} {seconds:6.2f} s")
    if bare is not None: print(f"  {'overhead over the bare run (total - bare)':<{width}} {seconds - bare:6.2f} s")
