"""README screenshots from the demo workspace (run `make demo` first): the same walk-through as the
browser test, in Debian's Chromium, on a copy of the workspace (the real one keeps no bench votes).

    python bench/screenshots.py            # writes docs/screenshots/*.png
"""
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser_flow import streamlit_server, walk_through  # noqa: E402


def main() -> None:
    src = ROOT / "workspace"
    password = (src / "admin-password.txt").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        shutil.copytree(src, ws)
        from galaxalign.store import open_store, relocate_paths

        store = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
        relocate_paths(store, str(src), str(ws))
        store.dispose()
        with streamlit_server(ws, Path(tmp) / "streamlit.log") as url:
            walk_through(url, "admin", password, ROOT / "docs" / "screenshots", n_votes=2)
    print("wrote docs/screenshots/")


if __name__ == "__main__":
    main()
