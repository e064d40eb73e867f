"""Votes that arrive after their galaxy retired, with and without leases: `python bench/late_votes.py`.

The setting of `bench/queue_scale.py` at a size this machine runs in minutes: a catalogue-only survey
(flat workflow, retirement at 5 votes, or 3 in agreement), a model's predictions so the queue steers
everyone to the same most uncertain galaxies, and 16 volunteers in 16 processes asking for the next
galaxy and voting on it 50 times each, all at once (SQLite). Measured in the same run: the share of
rounds whose galaxy had retired by the time the vote arrived — refused before migration 0013, stored
and flagged late since — with leases (the queue counts others' live leases as votes on the way) and
with them off (``lease_seconds=0``: the queue as it was). Writes bench/results/late_votes.json and the
table in BENCHMARKS.md.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from queue_scale import CatalogueOnly, many_volunteers
from runlog import write_section

from galaxalign.store import (activate_model, add_volunteer, open_store, register_model, register_survey,
                              store_predictions)

ROOT = Path(__file__).resolve().parent.parent


def run(lease: float, n: int = 20_000, writers: int = 16, votes: int = 50) -> dict:
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/late.db"
        store = open_store(url)
        register_survey(store, CatalogueOnly(n), "big", workflow="flat", gold_fraction=0, known_fraction=0)
        (Path(d) / "m.pt").write_bytes(b"weights")
        mid = register_model(store, "bench-model", str(Path(d) / "m.pt"), {}, {}, survey="big")
        activate_model(store, mid)
        store_predictions(store, mid, "big", np.random.default_rng(0).dirichlet(np.full(10, 0.3), n), batch=20_000)
        for k in range(writers):
            add_volunteer(store, f"v{k:02d}", "volunteer", "password-123")
        store.dispose()
        return {"lease_seconds": lease, **many_volunteers(url, writers, votes, lease)}


def main() -> None:
    rows = [run(lease) for lease in (0.0, 120.0)]
    out = ROOT / "bench" / "results" / "late_votes.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| queue | rounds | galaxy retired before the vote arrived | votes / s | next + vote, median ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {'leases (120 s)' if r['lease_seconds'] else 'no leases (as before 0013)'} | "
                     f"{r['writers'] * 50:,} | {r['late_votes_stored']} ({r['late_share']:.1%}) | {r['votes_per_s']} | "
                     f"{r['round_ms_median']} | {r['round_ms_p99']} |")
    text = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", "late-votes", text)
    print(text)


if __name__ == "__main__":
    main()
