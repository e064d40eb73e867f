"""The run logs the benchmark scripts keep in ``bench/results/*.jsonl``: one JSON line per finished
run, so an interrupted benchmark skips what is done."""
from __future__ import annotations

import json
from pathlib import Path


def read_runs(path: Path) -> dict:
    """``{(name, seed): row}`` of the runs already in ``path`` (empty if it does not exist)."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            out[(r["name"], r["seed"])] = r
    return out
