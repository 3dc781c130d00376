"""Where the CPU of a command goes, by kind of process: a sampler of /proc for `bench_suite.py --cpu`.

On 2 cores the suite keeps both busy (about 93 % of the time, 2026-12-07), so its wall time follows the CPU its
processes use, and a test's own seconds say little about that: they include waiting for a server, a fault or a
timeout while the other worker computes. This sampler reads every process started after it, twice a second, and keeps
the CPU time (user + system) each had when last seen; a process that lives less than half a second is missed, and one
that ends between two samples loses at most its last half second. Run it on an otherwise quiet machine: it counts every
process started while it runs, not only the command's."""
import collections, json, os, threading
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

# (text in the command line, kind), the first match wins: the order puts the specific before the general
KINDS = (
    ("-m yolo_mlops.trial", "trial process (papermill, attach)"),
    ("-m yolo_mlops.trainer", "trainer process (yolo-mlops train)"),
    ("-Xfrozen_modules=off -m ipykernel_launcher", "chapter kernel (nbconvert, nbdev, docs)"),
    ("ipykernel_launcher", "run kernel (training notebook, reports)"),
    ("exec(eval(sys.stdin.readline()))", "pytest worker (tests in-process)"),
    ("-m pytest", "pytest"),
    ("huey", "MLflow server: job execution"),
    ("mlflow.server.jobs", "MLflow server: job execution"),
    ("uvicorn", "MLflow server"),
    ("mlflow server", "MLflow server"),
    ("mlflow ui", "MLflow server"),
    ("mlflow models serve", "mlflow models serve"),
    ("ray::", "Ray (nodes, workers, client servers)"),
    ("/ray/", "Ray (nodes, workers, client servers)"),
    ("ray.util", "Ray (nodes, workers, client servers)"),
    ("chromium", "Chromium"),
    ("playwright", "Playwright"),
    ("mkdocs", "course site (mkdocs, docs.py)"),
    ("docs.py", "course site (mkdocs, docs.py)"),
    ("postgres", "PostgreSQL"),
    ("moto_server", "S3 stand-in (moto)"),
    ("multiprocessing", "Python multiprocessing children"),  # counted with their parent where it was seen
)


def kind_of(cmdline: str) -> str:
    "The kind of a process, from its command line (`yolo-mlops SUBCOMMAND` by its subcommand)."
    words = cmdline.split()
    for i, w in enumerate(words[:2]):  # the console script, or the interpreter running it
        if Path(w).name == "yolo-mlops":
            return f"yolo-mlops {words[i + 1]}" if i + 1 < len(words) else "yolo-mlops"
    for text, kind in KINDS:
        if text in cmdline: return kind
    if any(Path(w).name == "dvc" for w in words[:2]): return "DVC"
    return "other: " + " ".join(Path(w).name if "/" in w else w for w in words[:2])


def _boot_ticks_now() -> float:
    "The time since boot, in clock ticks (the unit of a process' start time in /proc/PID/stat)."
    return float(Path("/proc/uptime").read_text().split()[0]) * TICK


class CpuSampler:
    "Samples the CPU time of every process started after it began, until `stop()`; `table()` sums it by kind."
    def __init__(self, interval: float = 0.5):
        self.interval, self.seen, self._stop = interval, {}, threading.Event()
        self.since = _boot_ticks_now()
        self.me = os.getpid()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _sample(self):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError: continue  # it ended meanwhile
            fields = stat.rsplit(")", 1)[1].split()
            started = int(fields[19])
            if started < self.since or int(pid) == self.me: continue
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            key = f"{pid}:{started}"
            self.seen[key] = (cpu, cmd or self.seen.get(key, (0.0, ""))[1], int(fields[1]))  # fields[1]: parent pid

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self.thread.join()
        return self

    def table(self) -> list:
        "(kind, processes, CPU seconds) by kind, most CPU first."
        return table_of(self.seen)

    def save(self, path: Path):
        "Keep what was seen (process -> [CPU seconds, command line, parent pid]) as JSON, to compare two runs later."
        path.write_text(json.dumps(self.seen))


def print_table(rows: list, wall: float | None = None, top: int = 25):
    total = sum(r[2] for r in rows)
    print(f"\nCPU by kind of process (user + system, sampled from /proc): {total:.0f} s in all"
          + (f", {total / wall:.2f} cores on average over {wall:.0f} s" if wall else ""))
    print(f"{'kind':45} {'processes':>9} {'CPU s':>8} {'share':>6}")
    for kind, n, seconds in rows[:top]:
        print(f"{kind[:45]:45} {n:9d} {seconds:8.1f} {100 * seconds / total:5.1f}%")


def processes_by_kind(seen: dict) -> list:
    """(kind, CPU seconds) of each process a sampler saw (process -> (CPU seconds, command line, parent pid)); a
    multiprocessing child (uvicorn's workers, say) is of its parent's kind where the parent was seen."""
    command_of = {int(k.split(":")[0]): v[1] for k, v in seen.items() if v[1]}
    out = []
    for cpu, cmd, *parent in seen.values():
        if not cmd: continue  # never seen alive with a command line (a zombie): nothing to name it by
        kind = kind_of(cmd)
        if "multiprocessing" in cmd and parent and parent[0] in command_of: kind = kind_of(command_of[parent[0]])
        out.append((kind, cpu))
    return out


def table_of(seen: dict) -> list:
    "(kind, processes, CPU seconds) by kind, most CPU first, of what a sampler saw (`processes_by_kind`)."
    by_kind = collections.defaultdict(lambda: [0, 0.0])
    for kind, cpu in processes_by_kind(seen):
        by_kind[kind][0] += 1
        by_kind[kind][1] += cpu
    return sorted(((k, n, s) for k, (n, s) in by_kind.items()), key=lambda r: -r[2])


def table_from_json(path: Path) -> list:
    "The by-kind table of a run saved with `CpuSampler.save`."
    return table_of(json.loads(Path(path).read_text()))
