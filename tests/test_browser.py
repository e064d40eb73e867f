"""The real app in headless Chromium (Debian's package), driven by Playwright for Python: sign in,
classify three galaxies through the buttons, see three rows in the database, run a similarity
search, save screenshots. Set GALAXALIGN_SCREENSHOT_DIR to keep them."""
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from browser_flow import CHROMIUM, streamlit_server, walk_through

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed; `make test` installs it")


def test_sign_in_classify_three_and_search(workspace, tmp_path):
    from galaxalign.store import open_store
    from galaxalign.store.models import Classification
    from galaxalign.workspace import Workspace

    out = Path(os.environ.get("GALAXALIGN_SCREENSHOT_DIR") or tmp_path / "shots")
    counted = []

    def three_rows():
        store = open_store(Workspace(workspace).database_url, upgrade=False)
        with store.read() as s:
            counted.append(s.scalar(select(func.count()).select_from(Classification)))
        store.dispose()

    with streamlit_server(workspace, tmp_path / "streamlit.log") as url:
        walk_through(url, "adam", "admin-password", out, n_votes=3, on_votes=three_rows)
    assert counted == [3]
    assert all((out / f).stat().st_size > 10_000 for f in ("classify.png", "explore.png", "search.png", "admin.png"))
