"""Build the course as a static site: each notebook of `nbs/` one page, with its prose, its code, the outputs saved
in it and the docs of every exported function and class. Nothing is executed: a page shows what the notebook holds.

    bash scripts/docs.sh                      # build _docs/ (nbdev's doc_path)
    bash scripts/docs.sh --serve --port 8000  # build, then serve it on http://127.0.0.1:8000
    .venv/bin/python scripts/docs.py --out /tmp/site

Why MkDocs with mkdocs-jupyter and Material: nbdev's own renderer (`nbdev_docs`) needs Quarto, which cannot be
installed from a package registry. mkdocs-jupyter renders a notebook as nbconvert does (its saved outputs, its cell
tags shown on each cell) without executing it, Material gives the reading shape of an nbdev site (the chapters in a
sidebar, a page's headings beside it, search), and all three install with pip and build the site in under a minute
on 2 cores. Jupyter Book 1 is Sphinx (slower, a table-of-contents file of its own), Jupyter Book 2 needs Node.js.

What stays nbdev's: the notebooks are prepared by nbdev's own processor (`NBProcessor`, its `hide_` and
`add_show_docs`), so `#| hide` cells are left out as in nbdev's docs and every exported function or class gets a
`show_doc` card after its cell, rendered by `nbdev.showdoc.show_doc` with a renderer that shows the signature and the
docments as a table. What this site chooses for a course (docs/site.md says why):
- the code of `#| export` cells is shown (the lesson is the code), its `#| ...` directives shown as cell tags;
- tests (cells tagged `skip-execution` that call `test_*` or `assert`) are folded under "test";
- cells tagged `remove-input` / `remove-cell` are shown: those tags shape a run's HTML record, not the lesson;
- `index.ipynb` is the home page, then every other notebook of `nbs/` in the order of its file name, each after the
  chapters whose modules it imports (the order in which the course is read: `chapters`)."""
import argparse, ast, html, http.server, inspect, json, re, shutil, subprocess, sys, tempfile, time, warnings
from configparser import ConfigParser
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_CALL = re.compile(r"\btest_\w+\(|^\s*assert\b", re.MULTILINE)  # what makes a skip-execution cell a test
LEFT_OUT = {"hide", "default_exp"}  # nbdev leaves these cells out of its docs
CSS = Path(__file__).with_name("docs.css")  # the site's few rules of its own


class SiteError(Exception):
    "A problem with the notebooks or the output folder, told in one line."


# --- which pages, in which order --------------------------------------------------------------------------------

def project_settings() -> dict:
    "The [DEFAULT] section of settings.ini: the site's title, description and nbdev's folders come from there."
    cfg = ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return dict(cfg["DEFAULT"])


def chapters(nbs: Path) -> list[Path]:
    """The notebooks in the order the course is read: `index.ipynb` (the home page), then the others by file name,
    except that a chapter comes after the chapters whose modules its exported code imports (`02_train` builds on
    `02a_evaluate` and `02b_trainer`, so it follows them); as for nbdev, a name that starts with `_` or `.` is not a
    chapter."""
    found = sorted(p for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", ".")))
    home = nbs / "index.ipynb"
    if home not in found: raise SiteError(f"{home} is missing: it is the site's home page")
    return [home] + reading_order([p for p in found if p != home])


def _exports_and_imports(path: Path, lib: str) -> tuple[str | None, set[str]]:
    """The module a chapter exports (its `#| default_exp`) and the modules of `lib` its exported cells import at
    their top level (imports inside functions are left out: they are late on purpose, and may go both ways)."""
    try: cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (ValueError, OSError): return None, set()  # read_chapter says what is wrong with it
    exported, imported = None, set()
    for c in cells:
        source = "".join(c.get("source", [])) if c.get("cell_type") == "code" else ""
        if m := re.search(r"^#\|\s*default_exp\s+(\S+)", source, re.MULTILINE): exported = m.group(1)
        if not re.search(r"^#\|\s*export\b", source, re.MULTILINE): continue
        try: tree = ast.parse("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("#|", "%", "!"))))
        except SyntaxError: continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[1] for a in node.names if a.name.startswith(f"{lib}.")}
            elif isinstance(node, ast.ImportFrom):  # `from . import x` and `from .x import y` are the library's too
                name = (lib + (f".{node.module}" if node.module else "")) if node.level else (node.module or "")
                if name == lib: imported |= {a.name for a in node.names}
                elif name.startswith(f"{lib}."): imported.add(name.split(".")[1])
    return exported, imported


def reading_order(paths: list[Path]) -> list[Path]:
    """`paths` (sorted by file name) with each chapter moved after the chapters it imports: at each step the first
    chapter in file-name order whose imported chapters are all placed (the first left, should imports go in a
    circle)."""
    lib = project_settings().get("lib_name", "")
    info = {p: _exports_and_imports(p, lib) for p in paths}
    chapter_of = {exported: p for p, (exported, _) in info.items() if exported}
    needs = {p: {chapter_of[m] for m in imported if m in chapter_of} - {p} for p, (_, imported) in info.items()}
    order, left = [], list(paths)
    while left:
        ready = next((p for p in left if needs[p] <= set(order)), left[0])
        order.append(ready); left.remove(ready)
    return order


def title_of(cells) -> str:
    "A notebook's title: its first `# Heading` (nbdev's convention for a chapter's title)."
    for c in cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, re.MULTILINE)
            if m: return m.group(1).strip()
    return ""


def nav_title(path: Path, title: str) -> str:
    "How a chapter reads in the sidebar: its file name (as the README and the chapters name it) and its title."
    if path.stem == "index": return "Home"
    return f"{path.stem} · {title}" if title else path.stem


# --- a chapter's API docs: nbdev's show_doc, with the docments as a table ------------------------------------------

def _annotation(a) -> str:
    return a if isinstance(a, str) else inspect.formatannotation(a)


def _parameter(p: inspect.Parameter) -> str:
    "One parameter as it is written in the source (annotations stay unevaluated strings, PEP 8 spacing)."
    s = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
    if p.annotation is not p.empty: s += f": {_annotation(p.annotation)}"
    if p.default is not p.empty: s += (" = " if p.annotation is not p.empty else "=") + repr(p.default)
    return s


def signature_text(sym, name: str, width: int = 88) -> str:
    "`def name(...) -> ...` or `class Name(...)`, wrapped at `width` characters."
    kind = "class" if inspect.isclass(sym) else "async def" if inspect.iscoroutinefunction(sym) else "def"
    try:
        if getattr(sym, "_is_protocol", False): raise ValueError("a Protocol has no constructor to show")
        sig = inspect.signature(sym)
    except (TypeError, ValueError):  # no constructor of its own to show: what it is made from
        bases = [b.__name__ for b in getattr(sym, "__bases__", ()) if b is not object]
        return f"{kind} {name}" + (f"({', '.join(bases)})" if bases else "")
    params = [_parameter(p) for p in sig.parameters.values() if p.name != "self"]
    ret = ""
    if kind != "class" and sig.return_annotation is not sig.empty: ret = f" -> {_annotation(sig.return_annotation)}"
    lines, line = [], f"{kind} {name}("
    for i, p in enumerate(params):  # packed like code: the next line when a parameter does not fit on this one
        p += ", " if i < len(params) - 1 else ""
        if len(line) + len(p.rstrip()) > width and not line.endswith(("(", "    ")):
            lines.append(line.rstrip()); line = "    "
        line += p
    return "\n".join(lines + [f"{line}){ret}"])


def _cell_text(s: str) -> str:
    "Text for a markdown table cell: a `|` would end the cell."
    return s.replace("|", "\\|").replace("\n", " ")


def _code(s: str) -> str:
    "Inline code for a markdown table cell (an HTML <code>: markdown's code spans keep a `\\|` as it is)."
    return f"<code>{html.escape(s).replace('|', '&#124;')}</code>" if s else ""


def docments_table(sym) -> str:
    "The parameters with their type, default and docment (fastcore's `docments`), when at least one is documented."
    from fastcore.docments import docments
    try: dm = docments(sym, full=True)
    except (TypeError, ValueError, OSError): return ""
    dm.pop("self", None)
    ret = dm.pop("return", None)
    if not any(d.get("docment") for d in dm.values()): return ""
    empty = inspect.Parameter.empty
    rows = ["| | type | default | details |", "|---|---|---|---|"]
    for name, d in dm.items():
        anno = "" if d.get("anno", empty) is empty else _annotation(d["anno"])
        default = "" if d.get("default", empty) is empty else repr(d["default"])
        rows.append(f"| **{name}** | {_code(anno)} | {_code(default)} | {_cell_text(d.get('docment') or '')} |")
    if ret and not inspect.isclass(sym) and (ret.get("anno", empty) is not empty or ret.get("docment")):
        anno = "" if ret.get("anno", empty) is empty else _annotation(ret["anno"])
        rows.append(f"| **returns** | {_code(anno)} | | {_cell_text(ret.get('docment') or '')} |")
    return "\n".join(rows)


def _docstring(sym) -> str:
    "Its own docstring: not one a class inherits (`RuntimeError`'s), nor the one a dataclass makes up."
    doc = inspect.cleandoc((vars(sym).get("__doc__") if inspect.isclass(sym) else sym.__doc__) or "")
    return "" if inspect.isclass(sym) and doc.startswith(f"{sym.__name__}(") else doc


def _renderer_for_course():
    "A renderer for nbdev's `show_doc` (its `renderer` argument): heading, signature, docstring, docments table."
    from fastcore.docments import ShowDocRenderer

    class TableRenderer(ShowDocRenderer):
        def _repr_markdown_(self):
            parts = [f"{'#' * self.title_level} {self.nm}", f"```python\n{signature_text(self.sym, self.nm)}\n```"]
            if doc := _docstring(self.sym): parts.append(doc)
            if table := docments_table(self.sym): parts.append(table)
            return "\n\n".join(parts)
    return TableRenderer


def show_doc_names(source: str) -> list[str] | None:
    "The names a `show_doc(...)` cell documents, or None when the cell holds anything else."
    try: tree = ast.parse(source)
    except SyntaxError: return None
    names = []
    for node in tree.body:
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", "") == "show_doc" and node.value.args): return None
        names.append(ast.unparse(node.value.args[0]))
    return names or None


def lookup(module, dotted: str):
    "`train_run` or `Class.method` in the chapter's module, as the library exports it."
    obj = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise SiteError(f"show_doc({dotted}): {module.__name__} has no {dotted} (run nbdev_export?)")
        obj = getattr(obj, part)
    return obj


# --- one notebook, prepared for the site ---------------------------------------------------------------------------

def _markdown(source: str, card: str | None = None) -> dict:
    "A markdown cell; a show_doc card carries the name it documents, and a tag for its style (docs.css)."
    return {"cell_type": "markdown", "metadata": {"show_doc": card, "tags": ["show_doc"]} if card else {}, "source": source}


def _fence(code: str, lang: str = "") -> str:
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", code)), default=0))
    return f"{ticks}{lang}\n{code}\n{ticks}"


def _text_outputs(outputs) -> str | None:
    "The outputs as plain text, or None when one of them is more than text (an image, a table as HTML)."
    texts = []
    for o in outputs:
        if o.output_type == "stream": texts.append("".join(o.text))
        elif o.output_type == "error": texts.append(f"{o.ename}: {o.evalue}")
        elif set(o.get("data", {})) <= {"text/plain"}: texts.append("".join(o.data.get("text/plain", "")))
        else: return None
    return "\n".join(t.rstrip("\n") for t in texts)


def folded_test(cell) -> dict | None:
    "A test cell folded under 'test' (its text output below the code), or None when it shows more than text."
    out = _text_outputs(cell.get("outputs", []))
    if out is None: return None
    body = _fence(cell.source, "python") + (f"\n\n{_fence(out)}" if out else "")
    return _markdown(f'<details class="course-test"><summary>test</summary>\n\n{body}\n\n</details>')


def _is_test(cell) -> bool:
    tags = cell.metadata.get("tags", [])
    return "skip-execution" in tags and "keep-output" not in tags and bool(TEST_CALL.search(cell.source))


def code_cell(cell) -> dict:
    "The cell as it is, its nbdev directives (`#| export`, `#| train`) shown as tags beside its own."
    # a no-break space: nbconvert makes each tag a CSS class (celltag_...), which a space would split
    tags = [f"#|\u00a0{' '.join([d, *args])}" for d, args in cell.directives_.items()] + cell.metadata.get("tags", [])
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags},
            "outputs": [dict(o) for o in cell.get("outputs", [])], "source": cell.source}


def read_chapter(path: Path):
    """The notebook after nbdev's own processors: `#| hide` cells gone, directives taken out of the code into
    `cell.directives_`, and a `show_doc(name)` cell after each cell that exports a public function or class."""
    from nbdev.process import NBProcessor
    from nbdev.processors import add_show_docs, hide_
    try: proc = NBProcessor(path, procs=[hide_, add_show_docs])
    except (ValueError, KeyError) as e: raise SiteError(f"not a readable notebook ({e})") from None
    proc.process()
    return proc.nb


def chapter_module(nb):
    "The module a chapter exports (`#| default_exp train` -> yolo_mlops.train), imported; None for the home page."
    import importlib
    exp = next((c.directives_["default_exp"][0] for c in nb.cells if "default_exp" in c.directives_), None)
    if exp is None: return None
    # kept, not shown: importing a module may warn about a library it uses (MLflow's pyfunc), not about the site
    name = f"{project_settings()['lib_name']}.{exp}"
    with warnings.catch_warnings(record=True):
        try: return importlib.import_module(name)
        except ImportError as e: raise SiteError(f"cannot import {name} ({e}): run nbdev_export") from None


def site_cells(nb, module, show_doc) -> list[dict]:
    "The cells a page shows, in the notebook's order (a show_doc card is a markdown cell with the name it documents)."
    cells = []
    for cell in nb.cells:
        if not cell.source.strip() or LEFT_OUT & cell.directives_.keys(): continue
        names = show_doc_names(cell.source) if cell.cell_type == "code" else None
        if names and module is None: raise SiteError(f"show_doc in a notebook without `#| default_exp`: {cell.source}")
        if names:
            public = [nm for nm in names if not any(part.startswith("_") for part in nm.split("."))]
            cells += [_markdown(show_doc(lookup(module, nm), name=nm)._repr_markdown_(), card=nm) for nm in public]
        elif cell.cell_type == "markdown": cells.append(_markdown(cell.source))
        elif cell.cell_type == "code": cells.append((_is_test(cell) and folded_test(cell)) or code_cell(cell))
    return cells


FENCED = re.compile(r"^(`{3,}).*?^\1", re.MULTILINE | re.DOTALL)  # a fenced code block of a markdown cell


def headings(source: str) -> list[str]:
    "The text of a markdown cell's headings, in order (not the `# comments` of its code blocks)."
    return re.findall(r"^#{1,6}\s+(.+?)\s*$", FENCED.sub("", source), re.MULTILINE)


def heading_ids(texts: list[str]) -> list[str]:
    """The ids of a page's headings, in order, as its table of contents links to them: the text lowercased without
    punctuation (mkdocs_jupyter.utils.slugify), and `_1`, `_2` after a repeat (Python-Markdown's `unique`)."""
    from markdown.extensions.toc import unique
    seen = set()
    slug = lambda t: re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", re.sub(r"\]\([^)]*\)", "", t)).strip().lower())
    return [unique(slug(t), seen) for t in texts]


def card_ids(cells: list[dict]) -> dict:
    "The id of each show_doc card's heading on its page, by the name it documents."
    texts = [(c["metadata"].get("show_doc"), t) for c in cells if c["cell_type"] == "markdown" for t in headings(c["source"])]
    return {card: id_ for (card, text), id_ in zip(texts, heading_ids([t for _, t in texts])) if card == text}


def on_page_content(html: str, **kwargs) -> str:
    """A MkDocs hook (this file is the build's `hooks`): give repeated headings the ids that the table of contents
    links to. mkdocs-jupyter gives both `Command` and `command` the id `command`; its contents say `command_1`."""
    from markdown.extensions.toc import unique
    seen = set()

    def renumber(m):
        level, old, inner = m.groups()
        new = unique(old, seen)
        return f'<h{level} id="{new}">' + inner.replace(f'href="#{old}"', f'href="#{new}"') + f"</h{level}>"
    return re.sub(r'<h([1-6]) id="([^"]*)">(.*?)</h\1>', renumber, html, flags=re.DOTALL)


def link_names(source: str, targets: dict) -> str:
    """Backticked chapter names (`02_train`) and documented names (`train_run`) in prose become links to their page
    (nbdev's docs link names the same way); headings and code blocks are left as they are."""
    def link(m):
        name = m.group(1).removesuffix("()")
        return f"[{m.group(0)}]({targets[name]})" if name in targets else m.group(0)

    def link_prose(text):
        return "\n".join(line if line.startswith("#") else re.sub(r"(?<![\[`])`([\w.]+(?:\(\))?)`(?![`\]])", link, line)
                         for line in text.split("\n"))
    out, end = [], 0
    for m in FENCED.finditer(source):
        out += [link_prose(source[end:m.start()]), m.group(0)]
        end = m.end()
    return "".join(out + [link_prose(source[end:])])


# --- the site --------------------------------------------------------------------------------------------------

def prepare_pages(nbs: Path, staging: Path) -> list[dict]:
    "Write each chapter, ready for the site, into `staging`; return the navigation (title -> file) in order."
    from nbdev.showdoc import show_doc
    show_doc = partial(show_doc, renderer=_renderer_for_course())
    pages, targets = [], {}
    for path in chapters(nbs):
        try:
            nb = read_chapter(path)
            cells = site_cells(nb, chapter_module(nb), show_doc)
        except SiteError as e: raise SiteError(f"{path.name}: {e}") from None
        targets[path.stem] = f"{path.stem}.html"
        targets.update({name: f"{path.stem}.html#{id_}" for name, id_ in card_ids(cells).items() if name not in targets})
        pages.append((path, title_of(nb.cells), cells, nb.metadata))
    nav = []
    for path, title, cells, metadata in pages:
        for c in cells:
            if c["cell_type"] == "markdown": c["source"] = link_names(c["source"], targets)
        for i, c in enumerate(cells): c["id"] = f"c{i}"
        page = {"cells": cells, "metadata": dict(metadata), "nbformat": 4, "nbformat_minor": 5}
        (staging / path.name).write_text(json.dumps(page, indent=1), encoding="utf-8")
        nav.append({nav_title(path, title): path.name})
    return nav


def mkdocs_config(docs_dir: Path, site_dir: Path, nav: list) -> dict:
    "MkDocs' settings, written for each build from settings.ini and the chapters found (nothing to keep in step)."
    s = project_settings()
    return {
        "site_name": s["title"], "site_description": s["description"], "copyright": s.get("copyright", ""),
        "docs_dir": str(docs_dir), "site_dir": str(site_dir), "nav": nav,
        "use_directory_urls": False,  # 02_train.html, as nbdev names pages: works from any static host and file://
        "theme": {"name": "material", "font": False,  # no Google Fonts: the site reads the same offline
                  "features": ["navigation.top", "content.code.copy", "toc.integrate"]},
        "extra_css": ["course.css"],
        "hooks": [__file__],  # on_page_content, below
        "plugins": ["search", {"mkdocs-jupyter": {
            "execute": False, "include": ["*.ipynb"], "ignore_h1_titles": True,  # the sidebar keeps nav's titles
            "no_prompt": True,  # no "In [ ]:": nothing was run for the site
            "include_requirejs": False, "cache": False}}],
    }


def check_out_dir(out: Path):
    "MkDocs empties its output folder first: refuse a folder that holds anything but a site built here."
    if out.exists() and any(out.iterdir()) and not (out / "sitemap.xml").exists() and not (out / "search").is_dir():
        raise SiteError(f"{out} is not empty and holds no site built by scripts/docs.py: choose another --out")
    if out.resolve() in (ROOT, ROOT / "nbs", Path.home()):
        raise SiteError(f"refusing to build the site into {out}: MkDocs empties its output folder")


def build_site(out: Path, nbs: Path | None = None) -> Path:
    "Build the site into `out` from the notebooks of `nbs`; return `out/index.html`."
    nbs = nbs or ROOT / project_settings()["nbs_path"]
    check_out_dir(out)
    with tempfile.TemporaryDirectory(prefix="yolo-mlops-docs-") as tmp:
        staging = Path(tmp) / "pages"; staging.mkdir()
        nav = prepare_pages(nbs, staging)
        shutil.copy(CSS, staging / "course.css")
        config = Path(tmp) / "mkdocs.yml"
        config.write_text(json.dumps(mkdocs_config(staging, out.resolve(), nav), indent=1))  # JSON is valid YAML
        # --strict: a warning (a page that does not render, a missing file) fails the build, and so CI
        r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(config)],
                           capture_output=True, text=True)
        if r.returncode != 0: raise SiteError(f"mkdocs build failed:\n{r.stdout}{r.stderr}")
    return out / "index.html"


def site_server(folder: Path, port: int) -> http.server.ThreadingHTTPServer:
    "An HTTP server for the built site on 127.0.0.1 (this machine only); port 0: a free one. `serve_forever` runs it."
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    try: return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e: raise SiteError(f"cannot serve on 127.0.0.1:{port} ({e.strerror}): choose another --port") from None


def serve(folder: Path, port: int):
    "Serve the built site until Ctrl-C."
    server = site_server(folder, port)
    print(f"[docs] serving {folder} on http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    try: server.serve_forever()
    except KeyboardInterrupt: pass
    finally: server.server_close()


def main(argv=None):
    p = argparse.ArgumentParser(description="Build the course site from nbs/ (nothing is executed).")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: settings.ini's doc_path, _docs)")
    p.add_argument("--nbs", type=Path, default=None, help="the notebooks (default: settings.ini's nbs_path, nbs)")
    p.add_argument("--serve", action="store_true", help="serve the site on 127.0.0.1 after building it")
    p.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    a = p.parse_args(argv)
    if not 0 < a.port < 65536: p.error(f"--port {a.port}: a port is a number from 1 to 65535")
    out = a.out or ROOT / project_settings()["doc_path"]
    try:
        started = time.monotonic()
        index = build_site(out, a.nbs)
        pages = len([p for p in out.glob("*.html") if p.name != "404.html"])
        print(f"[docs] built {pages} pages in {time.monotonic() - started:.0f} s; home page: {index}", flush=True)
        if a.serve: serve(out, a.port)
    except SiteError as e:
        sys.exit(f"[docs] {e}")


if __name__ == "__main__":
    main()
