"""What the benchmark scripts share: the run logs they keep in ``bench/results/*.jsonl`` (one JSON line
per finished run, so an interrupted benchmark skips what is done), mean ± std over seeds, the sections
they write into BENCHMARKS.md, and starting many processes on one signal."""
from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

from galaxalign.fsutil import atomic_path


def read_runs(path: Path) -> dict:
    """``{(name, seed): row}`` of the runs already in ``path`` (empty if it does not exist)."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            out[(r["name"], r["seed"])] = r
    return out


def append_run(path: Path, row: dict) -> None:
    """Add one finished run to the log at ``path`` (the folder made if needed; numpy numbers written as
    floats)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row, default=float) + "\n")


def mean_std(values, digits: int = 3) -> str:
    """``mean ± sample std`` of the values that are not None (the mean alone for one, "–" for none)."""
    v = np.asarray([x for x in values if x is not None], float)
    if not len(v):
        return "–"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


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


def start_together(target, args: list[tuple], timeout: float = 900) -> tuple[list, float]:
    """Run ``target(*a, ready, start, out)`` in one spawned process per ``a`` in ``args``. Each process
    puts something on ``ready`` once it has imported and connected, waits for ``start``, works, and
    puts its result on ``out``. The clock starts when every process is ready — sixteen processes
    importing the package on two cores take seconds, which must not count as work. Returns the
    results (in the order they finished) and the seconds from the start to the last result."""
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    ps = [ctx.Process(target=target, args=(*a, ready, start, out)) for a in args]
    for p in ps:
        p.start()
    for _ in ps:
        ready.get(timeout=timeout)
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=timeout) for _ in ps]
    wall = time.perf_counter() - t0
    for p in ps:
        p.join()
    return results, wall


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    """Whether a Streamlit server answers its health check on 127.0.0.1:``port``."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def stop_groups(procs) -> None:
    """Stop processes started with ``start_new_session=True``, their children with them: TERM, then KILL."""
    import os
    import signal
    import subprocess

    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
