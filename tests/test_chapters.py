"""Every chapter runs the way students run it. JupyterLab's Run All executes every cell (nbdev_test does the same, in
CI); `jupyter nbconvert --to notebook --execute` and papermill, run from nbs/, execute them through nbclient, which
skips the cells tagged `skip-execution` (the library's tests). A chapter whose untagged cell needs a name that only a
tagged cell defines (`test_eq`, imported in a `#| hide` cell tagged `skip-execution`) works in JupyterLab and fails
there: so each chapter is executed here as nbconvert executes it, in the chapter's own kernel (`yolo-mlops`, which
scripts/setup.sh registers inside .venv), with nbs/ as its working directory.

Cells flagged `#| train` are left out, as nbdev_test leaves them out (settings.ini's `tst_flags`): run by nbconvert,
they train for real. The training chapter's report trains one run with its defaults (10 epochs at imgsz 320: about a
minute on 2 cores) into the home's store, the grid chapters train the four one-epoch cells of grids/tiny_cpu.yaml in a
temporary store (locally, and on a Ray instance), and the analysis and promotion reports read the home's store, so
they need the runs `bash scripts/main.sh` makes; the pipeline tests run all of those."""
import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.heavy  # tests/conftest.py: left out of `scripts/test.sh --quick`

NBS = Path(__file__).resolve().parent.parent / "nbs"
TRAIN_FLAG = re.compile(r"^#\|\s*train\b", re.MULTILINE)


def test_nbconvert_and_papermill_skip_the_cells_tagged_skip_execution():
    "Both execute through nbclient and keep its default: the check below covers both."
    from nbconvert.preprocessors import ExecutePreprocessor
    from papermill.clientwrap import PapermillNotebookClient
    from nbclient import NotebookClient
    assert issubclass(ExecutePreprocessor, NotebookClient) and issubclass(PapermillNotebookClient, NotebookClient)
    for executor in (ExecutePreprocessor, PapermillNotebookClient):
        assert executor.class_traits()["skip_cells_with_tag"].default_value == "skip-execution", executor


@pytest.mark.parametrize("chapter", sorted(p.stem for p in NBS.glob("*.ipynb")))
def test_the_chapter_executes_from_nbs_as_nbconvert_executes_it(chapter, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "YOLO_MLOPS_HOME", "YOLO_MLOPS_DATA"):  # as a student's shell has them: unset
        monkeypatch.delenv(name, raising=False)  # (an earlier test's `mlflow.set_tracking_uri` sets the first)
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(NBS / f"{chapter}.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and TRAIN_FLAG.search(c.source))]
    client = NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(NBS)}})  # nbconvert's defaults
    assert client.kernel_name == "" and nb.metadata.kernelspec.name == "yolo-mlops"  # the notebook's own kernel
    try: client.execute()
    except CellExecutionError as e:
        pytest.fail(f"nbs/{chapter}.ipynb fails when executed by nbconvert or papermill from nbs/:\n{str(e)[-3000:]}")
