"""How long the fast refresh takes on a large survey: the real ``refresh`` job (vote counts read from the
store, the prior chosen on held-out galaxies, an ensemble of heads fitted on the stored embeddings, the
temperature, 100,000 predictions written back with their mutual information) against the full re-train it
stands in for between two re-trains — timed on the same survey, in the same run.

    python bench/refresh_speed.py                  # 100,000 galaxies, 20,000 votes, SQLite (~3 min)
    python bench/refresh_speed.py --n 20000        # smaller

The survey is written at 16 px with random pixels (the refresh never reads pixels; the re-train does, and
is timed for 2 + 8 epochs of the starter recipe on the galaxies that have votes); its embeddings are the
tiny model's own (``galaxalign embed``), its votes bulk-inserted as 4 votes on each of 5,000 galaxies from
volunteers who are right 80 % of the time. Writes ``bench/results/refresh_speed.json`` and the section in
BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from runlog import write_section

from sqlalchemy import select, text

from galaxalign.data import load_survey
from galaxalign.jobs import refresh, retrain
from galaxalign.store import add_volunteer, open_store, register_survey
from galaxalign.store.models import Classification, Galaxy
from galaxalign.testing import write_galaxy10
from galaxalign.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "refresh_speed.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--voted", type=int, default=5_000)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.pop("GALAXALIGN_DATABASE_URL", None)
        ws = Workspace(tmp / "ws").create()
        labels = rng.integers(0, 10, a.n).astype(np.uint8)
        survey = load_survey(write_galaxy10(tmp / "big.h5", n=a.n, size=16, ans=labels))
        store = open_store(ws.database_url)
        t0 = time.perf_counter()
        register_survey(store, survey, "big", workflow="flat", known_fraction=0.01, gold_fraction=0.0)
        t_register = time.perf_counter() - t0
        cfg = tmp / "tiny.yaml"
        cfg.write_text(yaml.safe_dump({"model": {"arch": "galaxalign-tiny"}, "stage1_epochs": 2, "stage2_epochs": 8,
                                       "batch_size": 16, "warmup_steps": 10, "symbol_variants": 3}))
        for k in range(4):
            add_volunteer(store, f"v{k}", "volunteer", None)
        # the starter on the known 1 %, embedded over the whole survey (the state a refresh finds)
        t0 = time.perf_counter()
        retrain(store, ws, None, {"config": str(cfg), "name": "starter", "force_activate": True})
        t_first = time.perf_counter() - t0
        with store.read() as s:
            rows = s.execute(select(Galaxy.id, Galaxy.idx).where(Galaxy.known_label.is_(None)).limit(a.voted)).all()
            vids = [v for v, in s.execute(text("SELECT id FROM volunteers"))]
        votes = []
        for gid, idx in rows:
            for v in vids[:4]:
                ans = int(labels[idx]) if rng.random() < 0.8 else int(rng.integers(0, 10))
                votes.append({"galaxy_id": gid, "volunteer_id": v, "workflow": "flat", "workflow_version": "1",
                              "answers": [["FLAT", ans]], "resolved_class": ans, "late": False, "guest": False})
        store.write(lambda s: s.execute(Classification.__table__.insert(), votes))
        t0 = time.perf_counter()
        res = refresh(store, ws, None, {"survey": "big"})
        t_refresh = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = retrain(store, ws, None, {"config": str(cfg), "name": "full", "learn_from": "votes"})
        t_full = time.perf_counter() - t0
        store.dispose()
    out = {"n_galaxies": a.n, "n_votes": len(votes), "galaxies_voted": len(rows), "register_s": round(t_register, 1),
           "refresh_s": round(t_refresh, 2), "refresh": res, "retrain_s": round(t_full, 1),
           "retrain_n_train": full["n_train"], "starter_s": round(t_first, 1), "cpus": os.cpu_count()}
    RESULTS.write_text(json.dumps(out, indent=2, default=float))
    body = (f"| galaxies | votes (galaxies voted) | refresh job, whole | re-train it stands in for (2 + 8 epochs, "
            f"tiny tower, votes) | ratio |\n|---:|---:|---:|---:|---:|\n"
            f"| {a.n:,} | {len(votes):,} ({len(rows):,}) | {t_refresh:.1f} s | {t_full:.0f} s | "
            f"{t_full / t_refresh:.0f}× |")
    write_section(ROOT / "BENCHMARKS.md", "refresh-speed", body)
    print(body)
    print(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
