"""The run logs the benchmark scripts keep in ``bench/results/*.jsonl``: one JSON line per finished
run, so an interrupted benchmark skips what is done."""
from __future__ import annotations

import json
from pathlib import Path

from galaxalign.fsutil import atomic_path


def read_runs(path: Path) -> dict:
    """``{(name, seed): row}`` of the runs already in ``path`` (empty if it does not exist)."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            out[(r["name"], r["seed"])] = r
    return out


def write_section(doc: Path, name: str, body: str) -> None:
    """Put ``body`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``doc`` (a Markdown
    file such as BENCHMARKS.md), or append the marked section when it is not there yet; the file is
    written to a temporary name and renamed."""
    begin, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text()
    if begin in text and end in text:
        text = text[:text.index(begin) + len(begin)] + "\n" + body + "\n" + text[text.index(end):]
    else:
        text += f"\n{begin}\n{body}\n{end}\n"
    with atomic_path(doc) as tmp:
        Path(tmp).write_text(text)
