"""The browser walk-through shared by tests/test_browser.py and bench/screenshots.py: sign in,
classify galaxies through the buttons, open Explore and search by text, open Admin; screenshots."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(workspace: Path, log_path: Path, app: Path = APP, port: int | None = None, cwd: Path | None = None):
    """Serve the app (``app``: its main script) on a loopback port (``port``, else a free one) for
    ``workspace``; yields its URL. ``cwd``: where Streamlit looks for ``.streamlit/`` (secrets)."""
    port = port or free_port()
    env = {**os.environ, "GALAXALIGN_WORKSPACE": str(workspace), "OMP_NUM_THREADS": "1"}
    log = open(log_path, "wb")
    p = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
                          "--server.address", "127.0.0.1", "--server.headless", "true",
                          "--browser.gatherUsageStats", "false"], env=env, stdout=log, stderr=log, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(Path(log_path).read_text()[-2000:])
        yield url
    finally:
        p.terminate()
        p.wait(20)


def walk_through(url: str, user: str, password: str, out: Path, n_votes: int = 3, on_votes=None) -> None:
    """Drive the app in Debian's Chromium; raises if any step does not show what it should."""
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=120_000)  # a rerun on a loaded 2-core machine can take a while
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.set_default_timeout(120_000)
        try:
            _steps(page, expect, user, password, out, n_votes, on_votes, url)
        except Exception:
            page.screenshot(path=str(out / "failure.png"), full_page=True)  # what the browser saw
            raise
        finally:
            browser.close()


# Streamlit marks what a run is about to replace with data-stale, and shows a running icon while it runs
_BUSY = ('[data-stale="true"], [data-testid="stStatusWidgetRunningIcon"], '
         '[data-testid="stStatusWidgetRunningManIcon"]')


def settle(page, timeout: float = 60_000) -> None:
    """Wait until the app's run is over and nothing on the page is stale: a click then lands on what the
    volunteer sees, not on a button the run in progress is about to replace (on a loaded machine a run
    can take seconds)."""
    page.wait_for_function(f"() => !document.querySelector({_BUSY!r})", timeout=timeout)


def cut_labels(page) -> list[str]:
    """The buttons' labels on the page that do not fit their button (Streamlit ellipsises them): the
    text of each whose box is narrower than what it holds."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMain"] .stButton .stMarkdownEllipsis')]
        .filter(e => e.scrollWidth > e.clientWidth + 2).map(e => e.innerText)""")


def answer(page, answer_id: str) -> None:
    """Click an answer button, found by its widget key (Streamlit gives its container the class
    st-key-<key>) — the label may carry the proposal's ✓ — once the page has settled."""
    settle(page)
    page.locator(f".st-key-ans_{answer_id} button").first.click()


def _steps(page, expect, user, password, out, n_votes, on_votes, url) -> None:
    """The walk-through itself; every expect() waits for the app to show what it should."""
    page.goto(f"{url}/signin")
    page.get_by_label("Name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Classify", exact=True)).to_be_visible()
    shot = False
    for k in range(n_votes):
        expect(page.get_by_role("heading", name="Is the galaxy simply smooth and rounded, with no sign of a disk?")
               ).to_be_visible()
        # the picture: the first galaxy the model proposes an answer for (the gate withholds some), else the last
        if not shot and (k == n_votes - 1 or page.get_by_text("Model proposal:").count()):
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / "classify.png"))
            shot = True
        answer(page, "t01_smooth")
        expect(page.get_by_role("heading", name="How rounded is it?")).to_be_visible()
        answer(page, "t07_round")
        expect(page.get_by_role("heading", name="Is there anything odd?")).to_be_visible()
        answer(page, "t06_no")
        expect(page.get_by_text(re.compile(rf"You have classified {k + 1} galax"))).to_be_visible()
    if on_votes:
        on_votes()
    page.get_by_role("link", name="Explore").click()
    expect(page.get_by_role("heading", name="Explore the embedding space")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    page.wait_for_timeout(2000)
    page.screenshot(path=str(out / "explore.png"))
    page.get_by_role("tab", name="Similarity search").click()
    page.get_by_text("text", exact=True).click()
    box = page.get_by_label("Describe the galaxy")
    box.fill("A picture of a merging galaxy")
    box.press("Enter")
    expect(page.get_by_text(re.compile(r"score -?\d\.\d{3}"))).to_have_count(12)  # the default top-12 (cosine: may be < 0)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "search.png"), full_page=True)
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Model versions")).to_be_visible()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "admin.png"), full_page=True)
