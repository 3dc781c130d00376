"""The course as a site: `bash scripts/docs.sh` builds it from nbs/ (nothing executed), and a student reads it in a
browser. The site is built once for the session, into a folder of its own, so the tests run on a fresh clone and a
chapter that breaks the build fails them (and CI). What a page holds is checked in its HTML; what a student sees (the
chapters listed on the home page, a chapter's headings, the docs of `train_run`, every chapter's figures, and no block
wider than its column at 1280 px) in Debian's Chromium, driven by Playwright as in tests/test_browser.py; every link
inside the site must lead to a file (and an anchor) there."""
import json, re, subprocess, sys, threading
from types import SimpleNamespace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from browser import chromium_page, require_browser

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
sys.path.insert(0, str(ROOT / "scripts"))
import docs  # scripts/docs.py: the builder, for its server and its order of chapters


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    "The site, built as a student builds it: `bash scripts/docs.sh`, here into a temporary folder."
    out = tmp_path_factory.mktemp("site") / "_docs"
    r = subprocess.run(["bash", "scripts/docs.sh", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"scripts/docs.sh failed:\n{r.stdout}\n{r.stderr}"
    return out


def chapter_names() -> list[str]:
    "Every notebook of nbs/ but the home page: each must be a page of the site."
    return [p.stem for p in sorted(NBS.glob("*.ipynb")) if p.stem != "index"]


class PageLinks(HTMLParser):
    "The ids of a page and the places it points to (href and src), as its HTML holds them."
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"): self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key) is not None: self.links.append(a[key])


def parse(page: Path) -> PageLinks:
    p = PageLinks(); p.feed(page.read_text(encoding="utf-8")); return p


def is_internal(link: str) -> bool:
    "A link to a file of the site: no scheme (http:, data:, mailto:, javascript:) and not protocol-relative (//host)."
    parts = urlsplit(link)
    return not parts.scheme and not parts.netloc


@pytest.mark.heavy
def test_every_notebook_is_a_page_linked_from_the_home_page(site):
    assert (site / "index.html").is_file()
    home = parse(site / "index.html")
    for name in chapter_names():
        assert (site / f"{name}.html").is_file(), f"no page for nbs/{name}.ipynb"
        assert f"{name}.html" in home.links, f"the home page does not link to {name}.html"


@pytest.mark.heavy
def test_no_page_has_a_broken_internal_link(site):
    pages = {p: parse(p) for p in site.rglob("*.html")}
    broken, checked = [], 0
    for page, parsed in pages.items():
        for link in filter(is_internal, parsed.links):
            parts = urlsplit(link)
            path = unquote(parts.path)  # "/x": from the site's root (404.html's links), "x": from the page's folder
            target = ((site / path.lstrip("/")) if path.startswith("/") else (page.parent / path)).resolve() if path else page
            checked += 1
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{page.relative_to(site)}: {link} (no such file in the site)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(parts.fragment) not in ids: broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    assert checked > 100, f"only {checked} internal links: is the site there?"
    assert not broken, "\n".join(broken)


@pytest.mark.heavy
def test_pages_follow_nbdevs_conventions(site):
    html = (site / "02_train.html").read_text(encoding="utf-8")
    # `#| hide` cells are left out (this one imports the test helpers), and so is `#| default_exp`
    assert "SimpleNamespace as NS" not in html and "default_exp" not in html
    # exported cells are shown, their directive as a tag, with a show_doc card after them
    assert "#|\u00a0export" in html and 'id="train_run"' in html
    parameters = (site / "00a_parameters.html").read_text(encoding="utf-8")  # where the run's signature is declared
    assert "#|\u00a0export" in parameters and 'id="trainconfig"' in parameters
    # tests are folded; the examples (keep-output) stay open
    assert '<details class="course-test">' in html and "test_eq" in html
    # the papermill parameters cell is shown, with its tag, after the prose that explains it
    start = html.index('<span class="cell-tag">parameters</span>')
    assert html.index("The notebook papermill executes") < start
    cell = html[start:html.index("</pre>", start)]  # its tags, then its code: the names and defaults of `TrainConfig`
    assert '<span class="n">TrainConfig</span>' in cell, cell[:2000]
    signature = parameters[:parameters.index('id="trainconfig"')]  # ... shown where they are declared, as code
    assert all(f'<span class="n">{p}</span>' in signature for p in ("epochs", "lr0", "train_in")), signature[-2000:]


def _chapter(folder: Path, name: str, module: str, imports: str = ""):
    "A notebook that exports `module`, whose exported code imports `imports` (and `z` in a function: not counted)."
    cells = [{"cell_type": "code", "source": [f"#| default_exp {module}"]},
             {"cell_type": "code", "source": ["#| export\n", imports]},
             {"cell_type": "code", "source": ["#| export\n", "def late():\n", "    from yolo_mlops.z import y"]}]
    (folder / f"{name}.ipynb").write_text(json.dumps({"cells": cells}))


def test_the_order_of_chapters_is_the_order_they_are_read(tmp_path):
    "File-name order, but for a chapter that imports a later one: it comes after it (02_train after 02a and 02b)."
    for name in ("index", "10_new_chapter", "00_first"): (tmp_path / f"{name}.ipynb").write_text("{}")
    _chapter(tmp_path, "02_a", "a", "from yolo_mlops.b import thing\nfrom . import c")
    _chapter(tmp_path, "02c_c", "c", "from yolo_mlops import first")
    _chapter(tmp_path, "03_z", "z", "import yolo_mlops.first")
    _chapter(tmp_path, "02b_b", "b")
    assert [p.stem for p in docs.chapters(tmp_path)] == ["index", "00_first", "02b_b", "02c_c", "02_a", "03_z",
                                                         "10_new_chapter"]
    assert [p.stem for p in docs.chapters(NBS)][6:10] == ["01d_data_versions", "02a_evaluate", "02b_trainer", "02_train"]


def test_a_chapter_that_cannot_be_read_fails_the_build_with_its_name(tmp_path):
    nbs = tmp_path / "nbs"; nbs.mkdir()
    (nbs / "index.ipynb").write_text((NBS / "index.ipynb").read_text())
    (nbs / "01_broken.ipynb").write_text('<<<<<<< HEAD\n{"cells": []}\n')  # a merge left half done
    r = subprocess.run([sys.executable, "scripts/docs.py", "--nbs", str(nbs), "--out", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith("[docs] 01_broken.ipynb: not a readable notebook") and r.stderr.count("\n") == 1, r.stderr


def test_the_build_refuses_a_folder_that_is_not_a_site(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(docs.SiteError, match="holds no site built by scripts/docs.py"): docs.check_out_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- in a browser --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def site_url(site):
    "The site served over HTTP on 127.0.0.1, by the server `bash scripts/docs.sh --serve` runs."
    server = docs.site_server(site, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown(); server.server_close(); thread.join()


@pytest.fixture(scope="module")  # closed with this module: a Playwright left open would refuse the next module's
def browser_page(tmp_path_factory):
    "A page of headless Chromium (Debian's, through Playwright), 1400 px wide: the chapters' sidebar is shown."
    require_browser()
    with chromium_page((1400, 1000)) as page: yield page


_LOADED_IMAGES_JS = """() => Array.from(document.querySelectorAll('.jupyter-wrapper img'))
                            .filter(i => i.complete && i.naturalWidth > 0).length"""


@pytest.mark.heavy
def test_home_page_lists_every_chapter_and_leads_to_them(site_url, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{site_url}/index.html")
    sidebar = page.locator("nav.md-nav--primary a.md-nav__link")
    sidebar.first.wait_for()
    shown = {a.inner_text().strip(): a.get_attribute("href") for a in sidebar.all() if a.is_visible()}
    page.screenshot(path=str(tmp_path / "home.png"))
    for name in chapter_names():
        assert any(text.startswith(name + " ") and href == f"{name}.html" for text, href in shown.items()), \
            f"{name} is not listed on the home page (screenshot {tmp_path / 'home.png'}): {shown}"
    page.get_by_role("link", name="02_train", exact=False).first.click()  # a student clicks a chapter
    page.wait_for_url("**/02_train.html")
    assert page.locator("h1").first.inner_text().startswith("One training run")


@pytest.mark.heavy
def test_training_chapter_shows_its_headings_and_the_docs_of_train_run(site_url, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{site_url}/02_train.html")
    card = page.locator("h3#train_run")
    card.wait_for()
    shown = page.locator(".jupyter-wrapper h1, .jupyter-wrapper h2").all_inner_texts()
    headings = [h.strip().rstrip("¶").strip() for h in shown]  # without the anchor sign nbconvert adds
    page.screenshot(path=str(tmp_path / "02_train.png"))
    assert {"One training run", "The run's signature", "The run", "The notebook papermill executes",
            "Training run", "Parameters, requested and effective"} <= set(headings), headings
    card.scroll_into_view_if_needed()
    assert card.is_visible()
    # its card: the signature, then the docstring (the table of docments: open_store's, below)
    signature = card.locator("xpath=following::pre[1]").inner_text()
    assert signature.startswith("def train_run(cfg: TrainConfig | None = None, **params) -> TrainResult"), signature
    assert "Train one model as" in card.locator("xpath=following::p[1]").inner_text()


def committed_figures(notebook: Path) -> int:
    "Images saved among the outputs of a notebook's cells (not those of `#| hide` cells)."
    cells = json.loads(notebook.read_text())["cells"]
    return sum(1 for c in cells if not "".join(c.get("source", "")).lstrip().startswith("#| hide")
               for o in c.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {})))


FIGURE_CALL = re.compile(r"\b(plot_\w+|show_figure|Image)\(")  # an example that draws a figure


def draws_figures(notebook: Path) -> bool:
    """Whether a chapter draws a figure in an example: a code cell that calls a plotting function and is neither
    an export, nor a test (folded on the site), nor part of a run's report."""
    for c in json.loads(notebook.read_text())["cells"]:
        source, tags = "".join(c.get("source", "")), c.get("metadata", {}).get("tags", [])
        cell = SimpleNamespace(metadata={"tags": tags}, source=source)
        if (c["cell_type"] == "code" and FIGURE_CALL.search(source) and "report" not in tags
                and not re.search(r"^#\|\s*(export|hide)", source, re.MULTILINE) and not docs._is_test(cell)):
            return True
    return False


# blocks (code, outputs, tables) that scroll sideways or stick out of the page's column
_OVERFLOWING_JS = """() => {
    const column = document.querySelector('.md-content').getBoundingClientRect().right;
    return Array.from(document.querySelectorAll('.jupyter-wrapper pre, .jupyter-wrapper table, .jp-OutputArea-output'))
        .filter(b => b.scrollWidth > b.clientWidth + 1 || b.getBoundingClientRect().right > column + 1)
        .map(b => b.tagName + ' ' + b.scrollWidth + '/' + b.clientWidth + ': ' + b.innerText.slice(0, 80));
}"""


@pytest.mark.heavy
def test_every_chapter_fits_1280_px_and_shows_the_figures_it_draws(site_url, browser_page):
    """At 1280 px (a laptop), no code block, output or table of any chapter is wider than its column; every chapter
    whose examples draw a figure keeps it (a `keep-output` example) and shows it, loaded, on its page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page, overflowing, figures = browser_page, {}, {}
    page.set_viewport_size({"width": 1280, "height": 900})
    try:
        for name in chapter_names():
            saved = committed_figures(NBS / f"{name}.ipynb")
            page.goto(f"{site_url}/{name}.html", wait_until="domcontentloaded")  # the layout; images are awaited
            try: page.wait_for_function(f"() => ({_LOADED_IMAGES_JS})() >= {saved}", timeout=10_000)
            except PlaywrightTimeout: pass  # the assert says how many loaded
            overflowing[name] = page.evaluate(_OVERFLOWING_JS)
            figures[name] = (draws_figures(NBS / f"{name}.ipynb"), saved, page.evaluate(_LOADED_IMAGES_JS))
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
    assert not any(overflowing.values()), {k: v for k, v in overflowing.items() if v}
    assert figures["04_analysis"][0] and figures["02_train"][0], figures  # the chapters known to draw figures
    for name, (draws, saved, loaded) in figures.items():
        assert saved >= draws and loaded >= saved, f"{name}: draws figures {draws}, {saved} saved, {loaded} shown"


@pytest.mark.heavy
def test_the_docs_of_a_function_with_docments_are_a_table(site_url, browser_page):
    page = browser_page
    page.goto(f"{site_url}/00_config.html#open_store")
    table = page.locator("h3#open_store").locator("xpath=following::table[1]")
    rows = [r.strip() for r in table.locator("tr").all_inner_texts()]
    assert rows[0].split() == ["type", "default", "details"], rows
    assert any(r.startswith("uri") and "the store; None: the configured one" in r for r in rows), rows
    assert any(r.startswith("returns") and "TrackingStore" in r for r in rows), rows


def test_the_library_keeps_its_shape():
    """The chapters stay lessons and the library a short house (issue 30): no chapter with more than 8 export cells in
    a row, no module over 600 lines, `cli.py` under 300, and no chain of imports longer than 7 modules."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_chain.py"), "--check"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    chain = next(l for l in r.stdout.splitlines() if l.startswith("longest import chain: "))
    assert int(chain.split(": ")[1].split()[0]) <= 7 and chain.split(": ")[2].startswith("cli -> "), chain
