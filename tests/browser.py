"""See what a person sees: an MLflow server started for real and its UI opened in headless Chromium.

A person checks a run's executed notebook by opening the run page of the MLflow UI, clicking the
`.html` artifact and reading the report that the UI renders in an iframe. These helpers do the same:
`start_mlflow_server` serves a store, `render_run_artifact` opens the artifact in the UI with Debian's
Chromium driven by Playwright (the Python package only: its own browser download cannot work offline, so
`playwright install` is never used), reaches into the UI's iframe and returns the screenshot, the text
that is rendered there and the number of images that really loaded. `check_run_artifact_renders` adds
the asserts, so a test over a real run only names what it expects:

    require_browser()   # skip on a machine without Chromium, fail in CI
    proc, url = start_mlflow_server(f"sqlite:///{home}/mlruns.db", home / "mlartifacts")
    try: check_run_artifact_renders(url, exp_id, run_id, "notebook/02_train.html", tmp_path / "shot.png",
                                    expected_texts=["Parameters", "lr0"], min_images=2)
    finally: stop_mlflow_server(proc)
"""
import importlib.util, os, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")  # Debian's `chromium` package (.ci/run installs it)
# Chromium as root needs --no-sandbox; the rest keeps it from calling home (update checks, sync, field
# trials): on a closed network those calls only fill the logs with refused connections.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Where the MLflow UI (3.x) renders an .html artifact: an iframe whose src is a blob: URL of the text it
# fetched from /get-artifact (the server sends it as an attachment, so it is never opened directly).
HTML_IFRAME = "iframe.mlflow-html-iframe"


def require_browser():
    """Skip when Chromium (or the `playwright` package) is missing on a developer's machine, but fail in CI
    (`CI` set): there a missing browser is a broken setup, and a skipped check would pass silently."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's `chromium` package (.ci/run does)"
    elif importlib.util.find_spec("playwright") is None:
        reason = "the `playwright` package is missing: run scripts/setup.sh (a dev requirement in settings.ini)"
    else: return
    if os.environ.get("CI"): pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    "A TCP port on 127.0.0.1 that is free now (the OS picks it)."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _health(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as r: return r.status == 200
    except (urllib.error.URLError, OSError): return False


def start_mlflow_server(backend_store_uri: str, artifacts_destination: str | os.PathLike, port: int | None = None,
                        log_path: str | os.PathLike | None = None, timeout: float = 90, command: list | None = None,
                        cwd: str | os.PathLike | None = None):
    """Start `mlflow server` on 127.0.0.1 over a store, as a person does to look at it; return
    (process, base_url) once `/health` answers 200.

    `artifacts_destination` (a folder or URI) is where proxied artifacts live (`--artifacts-destination`);
    runs of experiments with a file-URI artifact location (the embedded store of this project) are read
    from that location by the server itself. One worker: the tests look at one page at a time, on 2 cores.
    `command` is another command that serves the store, as a person types it (the `mlflow ui ...` that
    `yolo-mlops` prints), run in `cwd` on a free port instead. The wait is bounded and fails early, with the
    server's log, when the process exits."""
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    dest = str(artifacts_destination)
    if "://" not in dest: dest = Path(dest).resolve().as_uri()
    log = open(log_path, "ab") if log_path else open(os.devnull, "wb")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # MLflow's job execution (a job runner and huey consumers, for GenAI scorers) serves no page a test opens: with it, a
    # one-worker server here ran 10 processes and took 42 s of CPU by 10 s after /health, without it 2 and 11 s
    # (benchmarks/README.md, issue 35); docker/mlflow-server.sh turns it off the same way
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    argv = [*command] if command else [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_store_uri,
                                       "--artifacts-destination", dest]
    proc = subprocess.Popen([*argv, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], env=env, cwd=cwd,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log
    deadline = time.monotonic() + timeout
    while not _health(base_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            why = f"exited with {proc.returncode}" if proc.poll() is not None else f"no /health after {timeout}s"
            stop_mlflow_server(proc)  # closes the log; read it back by name
            tail = Path(log_path).read_bytes() if log_path else b"(run with log_path to keep the log)"
            raise RuntimeError(f"mlflow server on {base_url} {why}:\n{tail[-3000:].decode(errors='replace')}")
        time.sleep(0.2)
    return proc, base_url


def stop_mlflow_server(proc):
    "Stop the server and the workers it started (its own process group)."
    try: os.killpg(proc.pid, 15)  # also when the main process is gone: its workers may be left
    except ProcessLookupError: pass
    try: proc.wait(timeout=30)
    except subprocess.TimeoutExpired: os.killpg(proc.pid, 9); proc.wait()
    proc.log.close()


def run_artifact_url(base_url: str, experiment_id: str, run_id: str, artifact_path: str) -> str:
    """The run page with `artifact_path` selected in its Artifacts tab: the page a person reaches by clicking
    the run, then Artifacts, then the file (MLflow 3.x UI route `/experiments/:id/runs/:runUuid/artifacts/*`,
    behind the hash router), in the model-training view, which the address `yolo-mlops` prints selects."""
    return (f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{artifact_path}"
            "?workflowType=machine_learning")


@contextmanager
def chromium_page(viewport=(1600, 1200), timeout: float = 30):
    """A page of Debian's headless Chromium, driven by Playwright, in a fresh profile (nothing remembered from an
    earlier test), `viewport` pixels wide and high; closed on exit."""
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as pw:
        # Playwright passes --user-data-dir itself for a persistent context
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True,
            args=[f for f in CHROMIUM_FLAGS if f != "--headless"],  # headless=True adds it
            viewport={"width": viewport[0], "height": viewport[1]})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(timeout * 1000)
            yield page
        finally:
            ctx.close()


@dataclass
class Rendered:
    "What a person sees of a rendered HTML artifact."
    screenshot: Path            # the whole browser window: MLflow UI with the report in its iframe
    text: str                   # the text rendered inside the iframe (innerText: only what is displayed)
    headings: list              # the iframe's <h1>..<h3>, as displayed (nbconvert's anchor sign removed)
    images: int                 # <img> inside the iframe that loaded (complete, naturalWidth > 0)
    sandbox: str | None = None  # the iframe's sandbox attribute, as the UI set it
    frame_url: str = ""         # the iframe's document URL (a blob: URL made by the UI)
    missing: list = field(default_factory=list)  # expected texts not found


_IMAGES_JS = "() => Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
_HEADINGS_JS = "() => Array.from(document.querySelectorAll('h1, h2, h3')).map(h => h.innerText.replace('\u00b6', '').trim())"


def render_run_artifact(base_url: str, experiment_id: str, run_id: str, artifact_path: str,
                        screenshot: str | os.PathLike, expected_texts=(), min_images: int = 0,
                        timeout: float = 30, viewport=(1600, 1200)) -> Rendered:
    """Open the artifact in the MLflow UI with headless Chromium, wait until the UI's iframe shows
    `expected_texts` and `min_images` loaded images (or `timeout` passes: the result then tells what is
    missing), screenshot the window and read the iframe's rendered text.

    Playwright drives Debian's /usr/bin/chromium over its debugging pipe, which reaches into the UI's
    sandboxed blob: iframe. Plain `chromium --dump-dom` cannot: it prints the top document only, and the
    artifact's own URL (/get-artifact) is sent as an attachment, which Chromium downloads, never renders."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    screenshot = Path(screenshot)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with chromium_page(viewport, timeout) as page:
        page.goto(run_artifact_url(base_url, experiment_id, run_id, artifact_path))
        try: iframe = page.wait_for_selector(HTML_IFRAME, state="visible")
        except PlaywrightTimeout:
            page.screenshot(path=str(screenshot))
            raise AssertionError(f"the MLflow UI did not render {artifact_path} as a page ({HTML_IFRAME} missing "
                                 f"after {timeout}s; screenshot {screenshot})") from None
        frame = iframe.content_frame()
        if frame is None: raise AssertionError(f"{HTML_IFRAME} holds no document (screenshot {screenshot})")
        # no wait for the frame's `load` event: nbconvert's page asks a CDN for require.js and MathJax,
        # which a closed network may leave hanging; the report's own content is what counts
        wanted = [str(t) for t in expected_texts]
        try:  # wait on the condition itself: every text shown and enough images decoded
            frame.wait_for_function(
                """([texts, n]) => document.body && texts.every(t => document.body.innerText.includes(t))
                     && Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length >= n""",
                arg=[wanted, min_images], timeout=timeout * 1000)
        except PlaywrightTimeout:
            pass  # report what is there; check_run_artifact_renders says what is missing
        page.screenshot(path=str(screenshot))
        text = frame.evaluate("() => document.body ? document.body.innerText : ''")
        return Rendered(screenshot=screenshot, text=text, headings=frame.evaluate(_HEADINGS_JS),
                        images=frame.evaluate(_IMAGES_JS),
                        sandbox=iframe.get_attribute("sandbox"), frame_url=frame.url,
                        missing=[t for t in wanted if t not in text])


def check_run_artifact_renders(base_url: str, experiment_id: str, run_id: str, artifact_path: str,
                               screenshot: str | os.PathLike, expected_texts=(), min_images: int = 1,
                               timeout: float = 30) -> Rendered:
    """Assert that the MLflow UI renders the HTML artifact as a page (not as text): every expected text is
    displayed in the UI's iframe and at least `min_images` images loaded. Returns the `Rendered`."""
    r = render_run_artifact(base_url, experiment_id, run_id, artifact_path, screenshot, expected_texts,
                            min_images, timeout)
    assert "<html" not in r.text.lower(), f"the UI shows the HTML source as text, not the page (screenshot {r.screenshot})"
    assert not r.missing, f"not displayed in the UI: {r.missing} (screenshot {r.screenshot}); text:\n{r.text[:2000]}"
    assert r.images >= min_images, f"{r.images} loaded image(s), expected >= {min_images} (screenshot {r.screenshot})"
    return r


@dataclass
class FirstScreen:
    "What a person sees of a page on opening it, without scrolling or clicking."
    screenshot: Path  # the window
    url: str          # the address the page ended on (a single-page app may rewrite it)
    text: str         # the page's displayed text (innerText), on and off the screen
    missing: list     # the expected texts that are not displayed inside the window


# Is `t` the text (or part of the text) of a node displayed inside the window, and not covered by something else?
_ON_SCREEN_JS = """(texts) => texts.filter(t => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!n.textContent.includes(t) || !n.parentElement) continue;
        const r = n.parentElement.getBoundingClientRect();
        if (r.width <= 0 || r.height <= 0 || r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth)
            continue;
        const top = document.elementFromPoint(Math.min(r.left + 4, r.right - 1), (r.top + r.bottom) / 2);
        if (top && (n.parentElement.contains(top) || top.contains(n.parentElement))) return false;
    }
    return true;
})"""


def first_screen(url: str, screenshot: str | os.PathLike, expected_texts=(), timeout: float = 60,
                 viewport=(1400, 900)) -> FirstScreen:
    """Open `url` in a fresh Chromium window of `viewport` pixels (a laptop's screen), wait until every expected
    text is displayed inside the window (or `timeout` passes), screenshot it, and say which texts a person does
    not see there without scrolling or clicking (`missing`)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    screenshot = Path(screenshot)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    wanted = [str(t) for t in expected_texts]
    with chromium_page(viewport, timeout) as page:
        page.goto(url)
        try: page.wait_for_function(f"(texts) => ({_ON_SCREEN_JS})(texts).length === 0", arg=wanted,
                                    timeout=timeout * 1000)
        except PlaywrightTimeout: pass  # `missing` says what is not there
        page.screenshot(path=str(screenshot))
        return FirstScreen(screenshot, page.url, page.evaluate("() => document.body.innerText"),
                           page.evaluate(f"(texts) => ({_ON_SCREEN_JS})(texts)", wanted))
