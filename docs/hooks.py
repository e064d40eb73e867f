"""MkDocs hook: the Benchmarks page is BENCHMARKS.md from the repository root, read at build time (one
file, never copied), with its figure links (``docs/x.png`` from the root) made relative to the page."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def on_page_markdown(markdown, page, **kwargs):
    if page.file.src_uri == "benchmarks.md":
        return (ROOT / "BENCHMARKS.md").read_text().replace("](docs/", "](")
    return markdown
