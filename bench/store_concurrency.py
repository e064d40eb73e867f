"""Vote throughput of the store under concurrent writers, SQLite and PostgreSQL, in one run.

    python bench/store_concurrency.py [--pg postgresql+psycopg://…]

N processes each record 300 votes on shared galaxies; throughput is measured from the moment every
process is ready (process start-up excluded), as a ratio to one process. Besides votes per second it reports
each vote's latency as its volunteer would wait for it (median, 99th percentile, slowest).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


import numpy as np
from sqlalchemy import text

from runlog import start_together

from galaxalign.data import load_survey
from galaxalign.store import RetirementRule, add_volunteer, open_store, record_classification, register_survey

VOTES = 300
ROUND = [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]


def voter(url, k, n_gal, ready, start, q):
    store = open_store(url, upgrade=False)
    with store.read() as s:  # connected, not only imported
        s.execute(text("SELECT 1"))
    ready.put(k)
    start.wait()
    waits = []
    for i in range(VOTES):
        t0 = time.perf_counter()
        record_classification(store, f"p{k:02d}", (i + k) % n_gal + 1, ROUND, rule=RetirementRule(10**6, 10**6, 1.0))
        waits.append(time.perf_counter() - t0)
    q.put(waits)


def fresh(url: str, tmp: Path, procs: int) -> None:
    from galaxalign.testing import reset_postgres, write_galaxy10

    if url.startswith("postgresql"):
        reset_postgres(url)
    store = open_store(url)
    register_survey(store, load_survey(write_galaxy10(tmp / f"g{procs}.h5", n=VOTES + 16)), "load")
    for k in range(procs):
        add_volunteer(store, f"p{k:02d}")
    store.dispose()


def run(url: str, procs: int, tmp: Path) -> tuple[float, np.ndarray]:
    """Votes per second over all processes, and every vote's latency (seconds)."""
    fresh(url, tmp, procs)
    waits, wall = start_together(voter, [(url, k, VOTES + 16) for k in range(procs)], timeout=600)
    return procs * VOTES / wall, np.concatenate(waits)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default=os.environ.get("GALAXALIGN_TEST_POSTGRES_URL"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        targets = [("SQLite (WAL, BEGIN IMMEDIATE)", f"sqlite:///{tmp}/bench.db")]
        if a.pg:
            targets.append(("PostgreSQL (row locks)", a.pg))
        print("| store | processes | votes | votes / s | vs 1 process | median ms | p99 ms | slowest ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, url in targets:
            base = None
            for procs in (1, 4, 16):
                if url.startswith("sqlite"):
                    Path(url.split("///")[1]).unlink(missing_ok=True)
                rate, waits = run(url, procs, tmp)
                base = base or rate
                ms = np.percentile(waits, [50, 99, 100]) * 1000
                print(f"| {name} | {procs} | {procs * VOTES} | {rate:.0f} | {rate / base:.2f}× | {ms[0]:.1f} | "
                      f"{ms[1]:.0f} | {ms[2]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
