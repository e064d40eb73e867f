"""Vote throughput of the store under concurrent writers, SQLite and PostgreSQL, in one run.

    python bench/store_concurrency.py [--pg postgresql+psycopg://…]

N processes each record 100 votes on shared galaxies; throughput is measured from the moment every
process is ready (process start-up excluded), as a ratio to one process.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path


from galaxalign.data import load_survey
from galaxalign.store import RetirementRule, add_volunteer, open_store, record_classification, register_survey

VOTES = 100
ROUND = [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]


def voter(url, k, n_gal, start, q):
    store = open_store(url, upgrade=False)
    start.wait()
    t0 = time.perf_counter()
    for i in range(VOTES):
        record_classification(store, f"p{k:02d}", (i + k) % n_gal + 1, ROUND, rule=RetirementRule(10**6, 10**6, 1.0))
    q.put(time.perf_counter() - t0)


def fresh(url: str, tmp: Path, procs: int) -> None:
    from conftest import _fresh_pg, write_galaxy10

    if url.startswith("postgresql"):
        _fresh_pg(url)
    store = open_store(url)
    register_survey(store, load_survey(write_galaxy10(tmp / f"g{procs}.h5", n=VOTES + 16)), "load")
    for k in range(procs):
        add_volunteer(store, f"p{k:02d}")
    store.dispose()


def run(url: str, procs: int, tmp: Path) -> float:
    fresh(url, tmp, procs)
    ctx = mp.get_context("spawn")
    start, q = ctx.Event(), ctx.Queue()
    ps = [ctx.Process(target=voter, args=(url, k, VOTES + 16, start, q)) for k in range(procs)]
    for p in ps:
        p.start()
    time.sleep(3)  # let every process import and connect
    t0 = time.perf_counter()
    start.set()
    for _ in ps:
        q.get(timeout=600)
    wall = time.perf_counter() - t0
    for p in ps:
        p.join()
    return procs * VOTES / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default=os.environ.get("GALAXALIGN_TEST_POSTGRES_URL"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        targets = [("SQLite (WAL, BEGIN IMMEDIATE)", f"sqlite:///{tmp}/bench.db")]
        if a.pg:
            targets.append(("PostgreSQL 15 (row locks)", a.pg))
        print("| store | processes | votes | votes / s | vs 1 process |")
        print("|---|---:|---:|---:|---:|")
        for name, url in targets:
            base = None
            for procs in (1, 4, 16):
                if url.startswith("sqlite"):
                    Path(url.split("///")[1]).unlink(missing_ok=True)
                rate = run(url, procs, tmp)
                base = base or rate
                print(f"| {name} | {procs} | {procs * VOTES} | {rate:.0f} | {rate / base:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
