"""The shape of the library, measured: what each `yolo_mlops` module imports of the others (imports inside functions
included), the longest chain of such imports, each module's lines and definitions, and the longest run of export cells
in each chapter without an example or a check between them.

    .venv/bin/python scripts/import_chain.py            # the table, the imports and the longest chain
    .venv/bin/python scripts/import_chain.py --check    # also exit 1 if a limit below is passed

It reads the source files (nothing is imported), so it runs in a second with the plain Python of any checkout."""
from __future__ import annotations
import argparse, ast, functools, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "yolo_mlops"
MAX_CHAIN, MAX_MODULE_LINES, MAX_CLI_LINES, MAX_EXPORT_RUN = 7, 600, 300, 8  # the limits of issue 30


def modules(package: Path = ROOT / PACKAGE) -> dict[str, Path]:
    "The library's modules by short name (`grid` for yolo_mlops/grid.py), the generated index left out."
    return {p.stem: p for p in sorted(package.glob("*.py")) if p.stem not in ("__init__", "_modidx")}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The library modules `path` imports, wherever the import statement is (top level, inside a function): `from .x
    import`, `from yolo_mlops.x import`, `from yolo_mlops import x`, `import yolo_mlops.x`, `from . import x`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base == PACKAGE or base.startswith(PACKAGE + "."):
                base = base.removeprefix(PACKAGE).lstrip(".")
                if base: found.add(base.split(".")[0])
                else: found.update(a.name for a in node.names)  # from . import config
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(PACKAGE + "."): found.add(a.name.split(".")[1])
    return (found & known) - {path.stem}


def definitions(path: Path) -> int:
    "Top-level functions and classes of a module, and functions patched onto a class (`@patch`)."
    return sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
               for n in ast.parse(path.read_text()).body)


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    "The longest path of imports (a module, what it imports, what that imports, ...); a cycle is refused."
    @functools.lru_cache(maxsize=None)
    def down(m: str, seen: frozenset = frozenset()) -> tuple:
        if m in seen: raise ValueError(f"import cycle through {m}")
        best = ()
        for n in sorted(graph[m]):
            chain = down(n, seen | {m})
            if len(chain) > len(best): best = chain
        return (m, *best)
    return list(max((down(m) for m in graph), key=len))


def export_runs(notebook: Path) -> int:
    "The most `#| export` cells in a row with no example or check (another code cell) between them; prose does not count."
    run = best = 0
    for c in json.loads(notebook.read_text()).get("cells", []):
        if c.get("cell_type") != "code": continue
        src = "".join(c.get("source", "")).lstrip()
        if src.startswith("#| export"): run += 1; best = max(best, run)
        elif src and not src.startswith(("#| hide", "#| default_exp")): run = 0
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when a limit is passed")
    args = p.parse_args(argv)
    mods = modules()
    graph = {m: imported_modules(path, set(mods)) for m, path in mods.items()}
    chain = longest_chain(graph)
    print(f"{'module':15} {'lines':>5} {'defs':>4}  imports (of {PACKAGE})")
    for m, path in mods.items():
        print(f"{m:15} {len(path.read_text().splitlines()):5d} {definitions(path):4d}  {', '.join(sorted(graph[m])) or '-'}")
    print(f"\nlongest import chain: {len(chain)} modules: {' -> '.join(chain)}")
    runs = {nb.name: export_runs(nb) for nb in sorted((ROOT / "nbs").glob("*.ipynb"))}
    print("export cells in a row, per chapter: " + ", ".join(f"{k.removesuffix('.ipynb')} {v}" for k, v in runs.items()))
    problems = [f"the longest import chain has {len(chain)} modules (at most {MAX_CHAIN})"] * (len(chain) > MAX_CHAIN)
    problems += [f"{m}.py has {n} lines (at most {MAX_MODULE_LINES})" for m, path in mods.items()
                 if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    if "cli" in mods and (n := len(mods["cli"].read_text().splitlines())) > MAX_CLI_LINES:
        problems.append(f"cli.py has {n} lines (at most {MAX_CLI_LINES})")
    problems += [f"{k}: {v} export cells in a row (at most {MAX_EXPORT_RUN})" for k, v in runs.items()
                 if v > MAX_EXPORT_RUN]
    for line in problems: print(f"over the limit: {line}", file=sys.stderr)
    return 1 if (args.check and problems) else 0


if __name__ == "__main__": sys.exit(main())
