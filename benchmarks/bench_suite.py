"""The test suite's time, by module: where the minutes of `bash scripts/test.sh` go, so that the change that breaks
the budget (12 minutes for `.ci/run` on 2 cores, issue 35) shows where.

    .venv/bin/python benchmarks/bench_suite.py             # pytest as scripts/test.sh runs it (2 workers), timed
    .venv/bin/python benchmarks/bench_suite.py --quick     # the quick tier (tests that train nothing)
    .venv/bin/python benchmarks/bench_suite.py --from-xml results.xml   # summarise a run already made
    .venv/bin/python benchmarks/bench_suite.py --keep-xml after.xml     # ... and keep this run's XML for that
    .venv/bin/python benchmarks/bench_suite.py --cpu cpu.json           # also the CPU by kind of process (below)

It prints, from pytest's JUnit XML: the wall time, each module's summed test time (setup, call and teardown, as
`--durations` counts them) and number of tests, the slowest tests, and the suite's size (test functions and `assert`
lines in tests/, the numbers issue 35 keeps from going down). The times are measured, never asserted: a timed test
would flake on a machine whose speed varies from day to day.

With `--cpu FILE` it also samples /proc while the suite runs (`cpu_by_process.py`) and prints the CPU each kind of
process used (run kernels, trial processes, MLflow servers, Ray, Chromium, ...), keeping the samples in FILE
(`--from-cpu FILE` prints a kept run's table again). On 2 cores the suite keeps both busy, so its wall time follows its
CPU: this table, not a test's seconds, says what a change saves."""
import argparse, collections, os, re, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET
from pathlib import Path
from cpu_by_process import CpuSampler, print_table, table_from_json

ROOT = Path(__file__).resolve().parent.parent


def run_suite(xml: Path, quick: bool, workers: int) -> float:
    "Run pytest as scripts/test.sh does, writing JUnit XML to `xml`; return the wall time in seconds."
    cmd = [sys.executable, "-m", "pytest", "tests", "-q", "-n", str(workers), "--dist", "loadgroup",
           "--no-loadscope-reorder", "-p", "no:cacheprovider", f"--junitxml={xml}"]
    if quick: cmd += ["-m", "not trains and not heavy"]  # as scripts/test.sh --quick
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env={**os.environ, "MPLBACKEND": "Agg"})
    return time.perf_counter() - started


def durations(xml: Path) -> list:
    "(module, test, seconds, outcome) of every test case in the JUnit XML `xml`."
    rows = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else \
                  "skipped" if case.find("skipped") is not None else "passed"
        module = case.get("classname", "").split(".")[-1] or case.get("file", "?")
        rows.append((module, case.get("name"), float(case.get("time", 0)), outcome))
    return rows


def suite_size() -> tuple[int, int]:
    "Test functions and `assert` lines in tests/ (what issue 35 keeps from going down)."
    text = "\n".join(p.read_text() for p in (ROOT / "tests").glob("*.py"))
    return len(re.findall(r"^def test_", text, re.M)), len(re.findall(r"^\s*assert\b", text, re.M))


def report(rows: list, wall: float | None, top: int = 20):
    by_module = collections.defaultdict(lambda: [0.0, 0])
    for module, _, seconds, _ in rows:
        by_module[module][0] += seconds
        by_module[module][1] += 1
    if wall is not None: print(f"wall time of pytest: {wall:.0f} s ({wall / 60:.1f} min)")
    print(f"{len(rows)} tests, {sum(r[2] for r in rows):.0f} s of test time in all (two workers share the wall time)")
    counts = collections.Counter(r[3] for r in rows)
    print("outcomes: " + ", ".join(f"{n} {k}" for k, n in counts.most_common()))
    print(f"\n{'module':28} {'tests':>5} {'seconds':>8}")
    for module, (seconds, n) in sorted(by_module.items(), key=lambda kv: -kv[1][0]):
        print(f"{module:28} {n:5d} {seconds:8.1f}")
    print(f"\nthe {top} slowest tests:")
    for module, name, seconds, outcome in sorted(rows, key=lambda r: -r[2])[:top]:
        print(f"{seconds:7.1f} s  {module}::{name}" + ("" if outcome == "passed" else f"  ({outcome})"))
    functions, asserts = suite_size()
    print(f"\nsuite size: {functions} test functions, {asserts} assert lines in tests/")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the quick tier (-m 'not trains and not heavy')")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("YOLO_MLOPS_TEST_WORKERS", 2)))
    ap.add_argument("--from-xml", type=Path, help="summarise this JUnit XML instead of running the suite")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--keep-xml", type=Path, help="also keep the run's JUnit XML here (to compare two runs later)")
    ap.add_argument("--cpu", type=Path, help="also sample the CPU by kind of process, keeping the samples here")
    ap.add_argument("--from-cpu", type=Path, help="print the CPU table of samples kept with --cpu, and stop")
    a = ap.parse_args()
    if a.from_cpu: print_table(table_from_json(a.from_cpu), top=40)
    elif a.from_xml: report(durations(a.from_xml), None, a.top)
    else:
        with tempfile.TemporaryDirectory() as d:
            xml = Path(d) / "suite.xml"
            sampler = CpuSampler().start() if a.cpu else None
            wall = run_suite(xml, a.quick, a.workers)
            if a.keep_xml: a.keep_xml.write_bytes(xml.read_bytes())
            report(durations(xml), wall, a.top)
            if sampler:
                sampler.stop().save(a.cpu)
                print_table(sampler.table(), wall)
