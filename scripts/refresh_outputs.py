"""Refresh the outputs committed in the notebooks: those of the cells tagged `keep-output`, the cheap, deterministic
examples a reader sees on GitHub or in JupyterLab without running anything (a grid's cells, a dataset's summary, the
effects and the promotion checks tables). Every other cell stays clean; `#| train` cells are not even run.

    .venv/bin/python scripts/refresh_outputs.py                  # every notebook with such cells
    .venv/bin/python scripts/refresh_outputs.py nbs/03_grid.ipynb

Each notebook is executed as `nbdev_test` executes it (same skipped cells, working directory `nbs/`), then cleaned
with `nbdev_clean`. An output that shows a path of this machine (the checkout, the home or the temporary folder) is
refused: it would be wrong on every other machine."""
import json, os, subprocess, sys, tempfile
from pathlib import Path

KEEP = "keep-output"
ROOT = Path(__file__).resolve().parent.parent


def tagged(path: Path) -> bool:
    return any(KEEP in c.get("metadata", {}).get("tags", []) for c in json.loads(path.read_text())["cells"])


def executed_outputs(path: Path) -> dict:
    "Execute notebook `path` as nbdev_test does; return the outputs of its `keep-output` cells by cell id."
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor
    flags = set(str(get_config().get("tst_flags", "")).split())
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb

    def skip(cell):  # nbdev_test's rule: markdown, `#| eval: false`, and cells flagged with a test flag
        if cell.cell_type != "code": return True
        directives = getattr(cell, "directives_", {}) or {}
        if directives.get("eval:", [""])[0].lower() == "false": return True
        return bool(flags & directives.keys())

    os.environ["IN_TEST"] = "1"
    shell = CaptureShell(path)
    with working_directory(path.parent): shell.run_all(nb, exc_stop=True, preproc=skip)
    return {c.id: c.outputs for c in nb.cells if KEEP in c.metadata.get("tags", [])}


def machine_paths() -> list[str]:
    return [str(ROOT), str(Path.home()), tempfile.gettempdir().rstrip("/") + "/"]


def refresh(path: Path):
    outputs = executed_outputs(path)
    for cid, outs in outputs.items():
        text = json.dumps(outs)
        for p in machine_paths():
            if p in text: sys.exit(f"{path}: the output of cell {cid} shows {p}, a path of this machine: change the example")
    raw = json.loads(path.read_text())
    for cell in raw["cells"]:
        if cell["cell_type"] == "code": cell["outputs"] = [dict(o) for o in outputs.get(cell.get("id"), [])]
    path.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + "\n")
    subprocess.run([Path(sys.executable).parent / "nbdev_clean", "--fname", str(path)], check=True, cwd=ROOT)
    print(f"{path.relative_to(ROOT)}: {len(outputs)} cell(s) with committed outputs")


if __name__ == "__main__":
    paths = [Path(p).resolve() for p in sys.argv[1:]] or sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if tagged(p))
    for p in paths: refresh(p)
