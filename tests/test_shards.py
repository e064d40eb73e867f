"""Sharded embedding over the job queue: the shards together give what one embed job gives; a shard
whose worker died is queued again and resumes where it stopped; two real workers share the shards."""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

import galaxalign.inference as inference
from galaxalign.errors import GalaxalignError
from galaxalign.jobs import MAX_ATTEMPTS, embed_version, reap_stale_jobs, run_job
from galaxalign.model import load_model
from galaxalign.jobs import plan_ranges
from galaxalign.store import get_job, get_model_version, list_jobs, open_store
from galaxalign.store.models import Job, Prediction, utcnow
from galaxalign.workspace import Workspace


def test_ranges_cover_every_row_once():
    assert plan_ranges(10, 3) == [(0, 3), (3, 7), (7, 10)]
    for n, k in ((60, 3), (7, 7), (5, 9), (1_000_003, 20)):
        r = plan_ranges(n, k)
        assert r[0][0] == 0 and r[-1][1] == n and all(a < b for a, b in r)
        assert all(r[i][1] == r[i + 1][0] for i in range(len(r) - 1)) and len(r) == min(n, k)
    with pytest.raises(GalaxalignError, match="cannot split 0 galaxies"):
        plan_ranges(0, 2)


def reference_embeddings(w: Workspace, store, tmp_path):
    """What one unsharded embed gives, in its own folder."""
    from galaxalign.surveys import open_registered
    from galaxalign.store import get_survey

    mv = get_model_version(store, "starter")
    stats = inference.embed_survey(load_model(mv.checkpoint_path), open_registered(get_survey(store, "demo")),
                                   tmp_path / "ref", progress=False)
    return np.asarray(stats["embeddings"]), stats["predictions"]


def shard_jobs(store, after: int = 0):
    return [j for j in sorted(list_jobs(store), key=lambda j: j.id) if j.kind == "embed_shard" and j.id > after]


def test_shards_give_what_one_job_gives_and_a_failed_shard_resumes(workspace, tmp_path, monkeypatch):
    w = Workspace(workspace)
    store = open_store(w.database_url)
    ref_emb, ref_preds = reference_embeddings(w, store, tmp_path)
    out = w.embeddings / "starter" / "demo"
    (out / "embeddings.npy").unlink()  # the shards must make it again
    monkeypatch.setattr(inference, "CHUNK", 8)  # several chunks per shard: something to resume from
    res = embed_version(store, w, None, {"survey": "demo", "model": "starter", "shards": 3})
    assert res["shards"] == 3 and res["n"] == 60
    jobs = shard_jobs(store)
    assert [j.params["shard"] for j in jobs] == [0, 1, 2] and {j.state for j in jobs} == {"queued"}

    real, calls = inference.embed_images, {"n": 0}

    def dies_on_its_second_chunk(*a, **k):  # shard 1's worker "dies" after one chunk
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker lost")
        return real(*a, **k)
    monkeypatch.setattr(inference, "embed_images", dies_on_its_second_chunk)
    run_job(jobs[1].id, w)
    assert get_job(store, jobs[1].id).state == "failed"
    monkeypatch.setattr(inference, "embed_images", real)
    for j in (jobs[0], jobs[2]):
        run_job(j.id, w)
        assert get_job(store, j.id).state == "succeeded" and not get_job(store, j.id).result["published"]
    assert not (out / "embeddings.npy").exists()  # one shard is missing: nothing is published
    # the reaper's retry: the same shard, a second attempt
    from galaxalign.jobs import enqueue

    again = enqueue(store, "embed_shard", {**jobs[1].params, "attempt": 2}, workspace=w)
    run_job(again, w)
    done = get_job(store, again)
    assert done.state == "succeeded", done.error
    assert done.result["published"] and done.result["resumed_rows"] == 8  # it kept its first chunk
    emb = np.load(out / "embeddings.npy")
    assert emb.shape == ref_emb.shape and np.allclose(emb, ref_emb, atol=1e-5)
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Prediction)
                        .where(Prediction.model_version_id == get_model_version(store, "starter").id)) == 60
    assert (out / "index.faiss").exists() and (out / "proj_pca_0.npy").exists() and not (out / ".shards").exists()
    import pandas as pd

    assert (pd.read_parquet(out / "predictions.parquet").pred.to_numpy() == ref_preds.pred.to_numpy()).all()
    store.dispose()


def test_the_reaper_queues_a_dead_shard_again_until_its_attempts_run_out(workspace):
    w = Workspace(workspace)
    store = open_store(w.database_url)

    def stale_shard(attempt: int) -> int:
        def fn(s):
            j = Job(kind="embed_shard", state="running", params={"survey": "demo", "model": "starter", "shard": 0,
                                                                 "attempt": attempt},
                    heartbeat_at=utcnow() - timedelta(hours=1), log_tail="")
            s.add(j)
            s.flush()
            return j.id
        return store.write(fn)
    first, last = stale_shard(1), stale_shard(MAX_ATTEMPTS)
    before = {j.id for j in list_jobs(store)}
    assert set(reap_stale_jobs(store, workspace=w)) == {first, last}
    new = [j for j in list_jobs(store) if j.id not in before]
    assert [(j.kind, j.state, j.params["attempt"]) for j in new] == [("embed_shard", "queued", 2)]
    assert "queued again as job" in get_job(store, first).log_tail
    store.dispose()


def test_two_real_workers_share_the_shards(workspace):
    """Two `galaxalign worker` processes on one queue (the workspace's huey): both take shards, and the
    survey is published once."""
    w = Workspace(workspace)
    store = open_store(w.database_url)
    (w.embeddings / "starter" / "demo" / "embeddings.npy").unlink()
    env = {**os.environ, "GALAXALIGN_WORKSPACE": str(w.root), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "galaxalign", "worker", "--workspace", str(w.root)], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(w.root / f"worker{k}.log", "ab"),
                                start_new_session=True) for k in range(2)]
    try:
        from galaxalign.jobs import enqueue

        t0 = time.time()  # both consumers up before the work arrives
        while not all("worker: queue" in (w.root / f"worker{k}.log").read_text() for k in range(2)):
            assert time.time() - t0 < 120 and all(p.poll() is None for p in workers), "a worker did not start"
            time.sleep(0.3)
        time.sleep(1.5)
        # twelve shards of five galaxies: each loads the model, so one worker alone needs several seconds
        # for them all, while an idle worker polls the queue at least once a second
        enqueue(store, "embed", {"survey": "demo", "model": "starter", "shards": 12}, workspace=w)
        t0 = time.time()
        while time.time() - t0 < 300:
            jobs = shard_jobs(store)
            if len(jobs) == 12 and all(j.state in ("succeeded", "failed") for j in jobs):
                break
            time.sleep(0.5)
    finally:
        for p in workers:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
                p.wait(30)
    jobs = shard_jobs(store)
    assert [j.state for j in jobs] == ["succeeded"] * 12, [j.error for j in jobs]
    assert sum(j.result["published"] for j in jobs) == 1
    assert len({j.worker_pid for j in jobs}) == 2  # both workers took shards
    assert np.load(w.embeddings / "starter" / "demo" / "embeddings.npy").shape[0] == 60
    store.dispose()
