"""The store at survey scale: registering a large survey, storing a model's predictions for it, and
the time a volunteer waits for the next galaxy — the bounded candidate pool against reading every
eligible galaxy (the queue before it), in the same run.

    python bench/queue_scale.py --n 1000000     # SQLite in a temporary folder

The survey is a catalogue only (ids, no pixels: registration and the queue never read pixels),
stated plainly. Writes ``bench/results/queue_scale.json`` and the table in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from runlog import write_section

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = open_store(f"sqlite:///{d}/bench.db")
        add_volunteer(store, "vol", "volunteer", "password-123")
        t0 = time.perf_counter()
        register_survey(store, CatalogueOnly(a.n), "big", workflow="flat", gold_fraction=0, known_fraction=0)
        register_s = time.perf_counter() - t0
        mem_register = peak_mb()
        (Path(d) / "m.pt").write_bytes(b"weights")
        mid = register_model(store, "bench-model", str(Path(d) / "m.pt"), {}, {}, survey="big")
        activate_model(store, mid)
        probs = np.random.default_rng(0).dirichlet(np.full(10, 0.3), a.n)
        t0 = time.perf_counter()
        store_predictions(store, mid, "big", probs, batch=20_000)
        predict_s = time.perf_counter() - t0
        pool = waits(store, a.requests)
        queue.POOL = 10 ** 9  # every eligible galaxy read and scored: the queue before the pool
        full = waits(store, max(3, a.requests // 5))
    row = {"n": a.n, "register_s": round(register_s, 1), "peak_mb_after_register": round(mem_register),
           "store_predictions_s": round(predict_s, 1), "pool_ms_median": round(float(np.median(pool)), 1),
           "full_ms_median": round(float(np.median(full)), 1), "peak_mb": round(peak_mb()),
           "speedup": round(float(np.median(full) / np.median(pool)), 1)}
    print(row)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(row, indent=1) + "\n")
    write_section(ROOT / "BENCHMARKS.md", "queue-scale",
                  "| galaxies | register s | store predictions s | next galaxy, pool (median ms) | "
                  "next galaxy, read all (median ms) | × | peak MB |\n|---:|---:|---:|---:|---:|---:|---:|\n"
                  f"| {row['n']:,} | {row['register_s']} | {row['store_predictions_s']} | {row['pool_ms_median']} | "
                  f"{row['full_ms_median']} | {row['speedup']} | {row['peak_mb']} |")


if __name__ == "__main__":
    main()
