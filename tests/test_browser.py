"""The real app in headless Chromium (Debian's package), driven by Playwright: sign in, classify three
galaxies through the buttons, check the database, run a similarity search, save screenshots.

Set GALAXALIGN_SCREENSHOT_DIR to keep the screenshots (the README's come from here)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed; `make test` installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(workspace, tmp_path):
    port = free_port()
    env = {**os.environ, "GALAXALIGN_WORKSPACE": str(workspace), "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "streamlit.log", "wb")
    p = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
                          "--server.address", "127.0.0.1", "--server.headless", "true",
                          "--browser.gatherUsageStats", "false"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        p.kill()
        raise RuntimeError((tmp_path / "streamlit.log").read_text()[-2000:])
    yield url
    p.terminate()
    p.wait(20)


def shots(tmp_path) -> Path:
    d = Path(os.environ.get("GALAXALIGN_SCREENSHOT_DIR") or tmp_path / "shots")
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_sign_in_classify_three_and_search(server, workspace, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from galaxalign.store import open_store
    from galaxalign.store.models import Classification
    from galaxalign.workspace import Workspace

    out = shots(tmp_path)
    expect.set_options(timeout=90_000)  # a rerun on a loaded 2-core machine can take a while
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(server)
        page.get_by_label("Name").fill("adam")
        page.get_by_role("textbox", name="Password").fill("admin-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Classify")).to_be_visible()
        for k in range(3):
            expect(page.get_by_role("heading", name="Is the galaxy simply smooth and rounded, with no sign of a disk?")
                   ).to_be_visible()
            page.get_by_role("button", name="Smooth").click()
            expect(page.get_by_role("heading", name="How rounded is it?")).to_be_visible()
            if k == 0:
                page.screenshot(path=str(out / "classify.png"))
            page.get_by_role("button", name="Completely round").first.click()
            expect(page.get_by_role("heading", name="Is there anything odd?")).to_be_visible()
            page.get_by_role("button", name="No", exact=True).first.click()
            expect(page.get_by_text(f"You have classified {k + 1} galaxies")).to_be_visible()
        store = open_store(Workspace(workspace).database_url, upgrade=False)
        with store.read() as s:
            assert s.scalar(select(func.count()).select_from(Classification)) == 3
        store.dispose()

        page.get_by_role("link", name="Explore").click()
        expect(page.get_by_role("heading", name="Explore the embedding space")).to_be_visible()
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "explore.png"))
        page.get_by_role("tab", name="Similarity search").click()
        page.get_by_text("text", exact=True).click()
        box = page.get_by_label("Describe the galaxy")
        box.fill("A picture of a merging galaxy")
        box.press("Enter")
        expect(page.get_by_text(re.compile(r"score \d\.\d{3}"))).to_have_count(12)  # the default top-12
        page.screenshot(path=str(out / "search.png"), full_page=True)

        page.get_by_role("link", name="Admin").click()
        expect(page.get_by_role("heading", name="Model versions")).to_be_visible()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "admin.png"), full_page=True)
        browser.close()
    assert all((out / f).stat().st_size > 10_000 for f in ("classify.png", "explore.png", "search.png", "admin.png"))
