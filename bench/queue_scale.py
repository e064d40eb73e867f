"""The store at survey scale: registering a large survey, storing a model's predictions for it, and
the time a volunteer waits for the next galaxy — the bounded candidate pool against reading every
eligible galaxy (the queue before it), in the same run.

    python bench/queue_scale.py --n 1000000     # SQLite in a temporary folder, and PostgreSQL when
                                                # --pg (or $GALAXALIGN_TEST_POSTGRES_URL) names one

Each store runs in a process of its own, so its peak memory is its own. Then ``--writers`` volunteers
(16) work at once on the million-galaxy survey, each in its own process: ask the queue for the next
galaxy, vote on it, ``--votes`` times (50) — the volunteer's whole loop, timed from the moment every
process is connected. All of them draw from the same pool of the most uncertain galaxies, so a galaxy
can retire (its vote limit reached by the others) between being shown and being voted on. Since
migration 0013 the queue holds a galaxy on a volunteer's screen (a lease) and counts others' leases as
votes on the way, and a vote that still arrives after retirement is stored and flagged late instead of
refused: those are counted (``late_votes_stored``, ``late_share``); every vote is stored.

The survey is a catalogue only (ids, no pixels: registration and the queue never read pixels),
stated plainly. Writes ``bench/results/queue_scale.json`` and the table in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from runlog import start_together, write_section

import galaxalign.store.queue as queue
from galaxalign.store import activate_model, add_volunteer, next_galaxy_for, open_store, register_model, \
    register_survey, store_predictions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "queue_scale.json"


@dataclass
class CatalogueOnly:
    """What registering a survey reads of one: ids, labels, classes — no pixels."""

    n: int
    path: str = "catalogue-only"
    kind: str = "bench"
    label_set: object = None
    preparation: object = None

    def __post_init__(self):
        self.id_str = np.char.add("g", np.arange(self.n).astype(str))
        self.labels = np.full(self.n, -1)
        self.catalog = pd.DataFrame({"id_str": self.id_str})
        self.class_names = [f"class {i}" for i in range(10)]

    def __len__(self) -> int:
        return self.n


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def waits(store, n_requests: int, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_requests):
        t0 = time.perf_counter()
        g = next_galaxy_for(store, "vol", "big", rng=rng, gold_rate=0)
        out.append((time.perf_counter() - t0) * 1000)
        assert g is not None
    return out


def volunteer_loop(url: str, k: int, votes: int, lease: float, ready, start, out) -> None:
    """One volunteer at work: next galaxy, vote, ``votes`` times; puts each round's seconds on ``out``."""
    from galaxalign.store import record_classification

    store = open_store(url, upgrade=False)
    rng = np.random.default_rng(k)
    next_galaxy_for(store, f"v{k:02d}", "big", rng=rng, gold_rate=0)  # connected and warm
    ready.put(k)
    start.wait()
    rounds, late = [], 0
    for _ in range(votes):
        t0 = time.perf_counter()
        g = next_galaxy_for(store, f"v{k:02d}", "big", rng=rng, gold_rate=0, lease_seconds=lease)
        res = record_classification(store, f"v{k:02d}", g.id, [["FLAT", int(rng.integers(10))]])
        late += int(res.late)  # others' votes retired it meanwhile: stored and flagged, not counted (0013)
        rounds.append(time.perf_counter() - t0)
    store.dispose()
    out.put((rounds, late))


def many_volunteers(url: str, writers: int, votes: int, lease: float = queue.LEASE_SECONDS) -> dict:
    """``writers`` volunteers at once, ``votes`` rounds each; ``lease`` 0: the queue before leases."""
    got, wall = start_together(volunteer_loop, [(url, k, votes, lease) for k in range(writers)])
    rounds, late = np.concatenate([r for r, _ in got]), sum(n for _, n in got)
    ms = np.percentile(rounds, [50, 99]) * 1000
    return {"writers": writers, "votes_per_s": round(writers * votes / wall, 1), "late_votes_stored": late,
            "late_share": round(late / (writers * votes), 4),
            "round_ms_median": round(float(ms[0]), 1), "round_ms_p99": round(float(ms[1]), 1)}


def one(url: str | None, n: int, requests: int, writers: int = 0, votes: int = 0) -> dict:
    """Register, predict and queue on one store (``None``: SQLite in a temporary folder)."""
    with tempfile.TemporaryDirectory() as d:
        if url and url.startswith("postgresql"):
            from galaxalign.testing import reset_postgres

            reset_postgres(url)
        store = open_store(url or f"sqlite:///{d}/bench.db")
        add_volunteer(store, "vol", "volunteer", "password-123")
        t0 = time.perf_counter()
        register_survey(store, CatalogueOnly(n), "big", workflow="flat", gold_fraction=0, known_fraction=0)
        register_s = time.perf_counter() - t0
        mem_register = peak_mb()
        (Path(d) / "m.pt").write_bytes(b"weights")
        mid = register_model(store, "bench-model", str(Path(d) / "m.pt"), {}, {}, survey="big")
        activate_model(store, mid)
        probs = np.random.default_rng(0).dirichlet(np.full(10, 0.3), n)
        t0 = time.perf_counter()
        store_predictions(store, mid, "big", probs, batch=20_000)
        predict_s = time.perf_counter() - t0
        pool = waits(store, requests)
        for k in range(writers):
            add_volunteer(store, f"v{k:02d}", "volunteer", "password-123")
        crowd = many_volunteers(url or f"sqlite:///{d}/bench.db", writers, votes) if writers else {}
        queue.POOL = 10 ** 9  # every eligible galaxy read and scored: the queue before the pool
        full = waits(store, max(3, requests // 5))
        store.dispose()
    return {**crowd, "store": store.dialect, "n": n, "register_s": round(register_s, 1),
            "peak_mb_after_register": round(mem_register), "store_predictions_s": round(predict_s, 1),
            "pool_ms_median": round(float(np.median(pool)), 1), "full_ms_median": round(float(np.median(full)), 1),
            "peak_mb": round(peak_mb()), "speedup": round(float(np.median(full) / np.median(pool)), 1)}


def _one_into(result, *args) -> None:
    result.put(one(*args))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--pg", default=os.environ.get("GALAXALIGN_TEST_POSTGRES_URL"))
    ap.add_argument("--writers", type=int, default=16, help="volunteers working at once (0: none)")
    ap.add_argument("--votes", type=int, default=50, help="rounds (next galaxy + vote) per volunteer")
    a = ap.parse_args()
    rows = []
    for url in [None] + ([a.pg] if a.pg else []):
        ctx = mp.get_context("spawn")  # a fresh process (not a pool's daemon: it starts the volunteers)
        result = ctx.Queue()
        p = ctx.Process(target=_one_into, args=(result, url, a.n, a.requests, a.writers, a.votes))
        p.start()
        rows.append(result.get())
        p.join()
        print(rows[-1], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=1) + "\n")
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    write_section(ROOT / "BENCHMARKS.md", "queue-scale",
                  "| store | galaxies | register s | store predictions s | next galaxy, pool (median ms) | "
                  "next galaxy, read all (median ms) | × | peak MB | volunteers at once | votes / s | "
                  "next + vote, median ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
                  + "\n".join(f"| {names.get(r['store'], r['store'])} | {r['n']:,} | {r['register_s']} | "
                              f"{r['store_predictions_s']} | {r['pool_ms_median']} | {r['full_ms_median']} | "
                              f"{r['speedup']} | {r['peak_mb']} | {r.get('writers', '–')} | {r.get('votes_per_s', '–')} | "
                              f"{r.get('round_ms_median', '–')} | {r.get('round_ms_p99', '–')} |" for r in rows))


if __name__ == "__main__":
    main()
