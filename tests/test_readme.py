"""The README is a door, and it never advises what fails. Every command line of its ```bash blocks is taken from the
README and either run here, in a fresh home on the embedded default (the cheap ones: seconds), or found among the
command lines the end-to-end tests run (a training run, a grid, the pipeline of `scripts/main.sh`, the site: minutes
each, so they are not run a second time), or is CI itself (`bash scripts/test.sh`, which `.ci/run` runs). A command
added to the README that is none of these fails here. The README also stays a door: at most 200 lines, CI's
`../shared` named only in its offline section, every link to a file (and heading) of the checkout, and every page of
`docs/` linked from it."""
import ast, os, re, shlex, subprocess
from pathlib import Path

import pytest, yaml

from conftest import BIN

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV_BIN = ".venv/bin/"  # how the README names the project's commands, from the checkout's root
CHEAP = {"yolo-mlops settings", "yolo-mlops data", "yolo-mlops data --force"}  # run here, in a fresh home
CI = {"bash scripts/test.sh": ROOT / ".ci" / "run"}  # the whole suite: CI runs it, and this test is part of it


def bash_blocks(text: str) -> list[list[str]]:
    "The command lines of each ```bash block, in order: comments dropped, `\\` continuations joined."
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return [[shlex.join(words) for line in block.replace("\\\n", " ").splitlines()
             if (words := shlex.split(line, comments=True))] for block in blocks]


def argv_of(line: str) -> list[str]:
    """What a README command runs, as a test would start it: `.venv/bin/yolo-mlops ...` is `yolo-mlops ...`, and
    `bash scripts/main.sh ARGS` is the command that script ends with (`yolo-mlops pipeline ARGS`)."""
    words = shlex.split(line)
    if words[:2] == ["bash", "scripts/main.sh"]:
        last = (ROOT / "scripts" / "main.sh").read_text().strip().splitlines()[-1]
        assert last == 'exec .venv/bin/yolo-mlops pipeline "$@"', last  # what the mapping below relies on
        words = [f"{VENV_BIN}yolo-mlops", "pipeline", *words[2:]]
    return [w.removeprefix(VENV_BIN) for w in words]


def _literal(node) -> str | None:
    "An argument as the test writes it, when it is a literal: a string, or `ROOT / 'grids' / 'x.yaml'` (grids/x.yaml)."
    if isinstance(node, ast.Constant) and isinstance(node.value, str): return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = node.left, _literal(node.right)
        if isinstance(left, ast.Name) and left.id == "ROOT": return right
        if (inner := _literal(left)) is not None and right is not None: return f"{inner}/{right}"
    return None


def e2e_command_lines() -> list[list[str | None]]:
    """Every command line the tests of tests/ start, and the fixtures of tests/conftest.py that tests share:
    `yolo_mlops(...)` (the console script), `command_once(factory, worker, name, ...)` (the console script, once per
    test run) and the argument lists given to `subprocess.run` / `Popen`; an argument that is not a literal is None
    (it matches nothing)."""
    lines = []
    for path in [*sorted((ROOT / "tests").glob("test_*.py")), ROOT / "tests" / "conftest.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call): continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name == "yolo_mlops":
                lines.append(["yolo-mlops", *map(_literal, node.args)])
            elif name == "command_once":
                lines.append(["yolo-mlops", *map(_literal, node.args[3:])])
            elif name in ("run", "Popen") and node.args and isinstance(node.args[0], ast.List):
                lines.append([_literal(a) for a in node.args[0].elts])
    return lines


def test_the_readme_is_a_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    offline = text.index("## Machines without internet")
    section = text[offline:text.index("\n## ", offline + 1)]
    assert text.count("../shared") == section.count("../shared") == 1  # CI's folder, which a user does not have
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    assert pages and all(f"]({page}" in text for page in pages), pages  # every page of docs/ is a door away


def github_anchor(heading: str) -> str:
    "The id GitHub gives a heading: lowercased, punctuation dropped, spaces as dashes."
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(page: Path) -> str:
    "A Markdown page without its fenced blocks (a `# comment` in a bash block is no heading, a `](x)` there no link)."
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def test_every_link_of_the_readme_and_docs_leads_somewhere():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(page)):
            if re.match(r"[a-z]+:", target): continue  # https://..., mailto:
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            assert path.exists(), f"{page.name}: {target}"
            if anchor:
                ids = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", prose(path), re.MULTILINE)}
                assert anchor in ids, f"{page.name}: {target} (headings: {sorted(ids)})"


def test_every_command_is_run_here_by_an_end_to_end_test_or_by_ci():
    tested = e2e_command_lines()
    for line in [line for block in bash_blocks(README.read_text(encoding="utf-8")) for line in block]:
        if line.startswith("export ") or " ".join(argv_of(line)) in CHEAP: continue  # run below
        if line in CI:
            assert line in CI[line].read_text().splitlines(), f"{CI[line]} no longer runs {line}"
            continue
        argv = argv_of(line)
        assert any(run[:len(argv)] == argv for run in tested), (
            f"README command not run by any test: {line!r} ({argv}); run it in this test if it is cheap, or write "
            f"the command line an end-to-end test of tests/ runs")


@pytest.fixture
def fresh_home(tmp_path):
    "The environment of a student's shell (COCO128 and the weights as configured here), with an empty home."
    left_out = ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME", "YOLO_MLOPS_DATA")
    env = {k: v for k, v in os.environ.items() if k not in left_out}
    env["YOLO_MLOPS_HOME"] = str(tmp_path)  # the checkout stays as it is: what the commands write lands here
    env["DVC_NO_ANALYTICS"] = "1"
    return tmp_path, env


def run_readme_line(line: str, env: dict) -> subprocess.CompletedProcess:
    "One command line of the README, run from the checkout's root, with this environment's commands for `.venv/bin/`."
    script = line.replace(VENV_BIN, f"{BIN}/") if line.startswith(VENV_BIN) else line
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_offline_section_sets_what_settings_shows(fresh_home):
    "The offline block, as it is written (exports, then the command that shows them), in one shell."
    home, env = fresh_home
    block = next(b for b in bash_blocks(README.read_text(encoding="utf-8")) if b[0].startswith("export "))
    r = run_readme_line(";\n".join(block), env)
    assert r.returncode == 0, r.stdout + r.stderr
    shown = dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())
    exported = dict(line.removeprefix("export ").split("=", 1) for line in block if line.startswith("export "))
    assert (shown["coco128"], shown["weights"]) == (exported["YOLO_MLOPS_COCO128"], exported["YOLO_MLOPS_WEIGHTS"])
    assert shown["home"] == str(home)


def test_the_dataset_commands_build_it_and_force_restores_it_after_a_hand_edit(fresh_home):
    """`yolo-mlops data` builds the course dataset; changed by hand, a run refuses it and says to rebuild it with
    `--force`; the README's `yolo-mlops data --force` then gives back the very version DVC recorded."""
    from yolo_mlops.train import TrainConfig, TrainParameterError, check_train_config
    home, env = fresh_home
    lines = {" ".join(argv_of(l)): l for block in bash_blocks(README.read_text(encoding="utf-8")) for l in block}
    built = run_readme_line(lines["yolo-mlops data"], env)
    assert built.returncode == 0, built.stdout + built.stderr
    dvc_file = home / "data" / "tiny_coco.dvc"
    recorded = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    assert recorded == yaml.safe_load((ROOT / "data" / "tiny_coco.dvc").read_text())["outs"][0]["md5"]  # committed
    cfg = TrainConfig(data=str(home / "data" / "tiny_coco.yaml"), weights="yolov8n.pt",
                      tracking_uri=f"sqlite:///{home}/mlruns.db")
    label = sorted((home / "data" / "tiny_coco" / "labels" / "train").iterdir())[0]
    label.write_text("0 0.5 0.5 0.1 0.1\n")  # a student's hand edit
    with pytest.raises(TrainParameterError, match=r"was modified.*yolo-mlops data --force"):
        check_train_config(cfg)
    forced = run_readme_line(lines["yolo-mlops data --force"], env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert check_train_config(cfg).data == cfg.data  # the run accepts it again, checked against its .dvc file too
    assert yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"] == recorded
