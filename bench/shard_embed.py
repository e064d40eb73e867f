"""Sharded embedding through the real queue: one embed job over a survey split into shards, taken by 1
or 2 `galaxalign worker` processes, from the moment the job is queued until the survey is published
(embeddings, predictions in the store, index, PCA map). Run after `make demo` (its starter model).

    python bench/shard_embed.py --n 20000 --shards 4

Stated plainly: the survey's stamps are blank (HDF5 chunks never written — the model's work per image is
the same) and the machine has 2 cores, so two workers can at best match one worker using both cores;
what this measures is that the shards spread over the workers and what the sharding costs. On k
machines sharing the workspace volume and a Redis queue, k workers take the shards the same way.
Writes ``bench/results/shard_embed.json`` and the table in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from explore_scale import write_survey
from runlog import write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "shard_embed.json"
CONFIGS = [("1 worker, 1 thread", 1, 1), ("1 worker, 2 threads", 1, 2), ("2 workers, 1 thread each", 2, 1)]


def workspace(root: Path, n: int):
    from galaxalign.data import load_survey
    from galaxalign.store import activate_model, open_store, register_model, register_survey
    from galaxalign.workspace import Workspace

    w = Workspace(root).create()
    write_survey(w.surveys / "big.h5", n)
    store = open_store(w.database_url)
    register_survey(store, load_survey(w.surveys / "big.h5"), "big", known_fraction=0.0, gold_fraction=0.0)
    shutil.copytree(ROOT / "workspace" / "models" / "starter", w.models / "starter")
    activate_model(store, register_model(store, "starter", str(w.models / "starter" / "model.pt"), {}, {}, survey="big"))
    return w, store


def run(w, store, n_workers: int, threads: int, shards: int) -> dict:
    from galaxalign.jobs import enqueue
    from galaxalign.store import list_jobs

    shutil.rmtree(w.embeddings / "starter", ignore_errors=True)
    env = {**os.environ, "GALAXALIGN_WORKSPACE": str(w.root), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    logs = [w.root / f"worker{k}.log" for k in range(n_workers)]
    for log in logs:
        log.write_text("")
    procs = [subprocess.Popen([sys.executable, "-m", "galaxalign", "worker", "--workspace", str(w.root)], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True) for log in logs]
    try:
        while not all("worker: queue" in log.read_text() for log in logs):
            time.sleep(0.2)
        time.sleep(2)
        before = {j.id for j in list_jobs(store)}
        t0 = time.perf_counter()
        enqueue(store, "embed", {"survey": "big", "model": "starter", "shards": shards}, workspace=w)
        while True:
            jobs = [j for j in list_jobs(store) if j.id not in before and j.kind == "embed_shard"]
            if len(jobs) == shards and all(j.state in ("succeeded", "failed") for j in jobs):
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - t0
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGINT)
            p.wait(30)
    assert all(j.state == "succeeded" for j in jobs), [j.error for j in jobs]
    return {"seconds": round(seconds, 1), "workers_used": len({j.worker_pid for j in jobs}),
            "published": sum(bool(j.result.get("published")) for j in jobs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--shards", type=int, default=4)
    a = ap.parse_args()
    out = {"n": a.n, "shards": a.shards, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        w, store = workspace(Path(tmp) / "ws", a.n)
        for name, workers, threads in CONFIGS:
            out["runs"][name] = run(w, store, workers, threads, a.shards)
            print(name, out["runs"][name], flush=True)
        store.dispose()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    base = out["runs"][CONFIGS[0][0]]["seconds"]
    rows = [f"{a.n:,} galaxies in {a.shards} shards, from queueing the job to the survey published:", "",
            "| workers | s | images / s | vs 1 worker, 1 thread | workers that took shards |",
            "|---|---:|---:|---:|---:|"]
    for name, r in out["runs"].items():
        rows.append(f"| {name} | {r['seconds']} | {a.n / r['seconds']:.0f} | {base / r['seconds']:.2f}× "
                    f"| {r['workers_used']} |")
    write_section(ROOT / "BENCHMARKS.md", "shard-embed", "\n".join(rows))


if __name__ == "__main__":
    main()
