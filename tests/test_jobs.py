"""Jobs through the real huey queue and `galaxalign worker`: re-training end to end, and a worker
killed mid-job."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from sqlalchemy import func, select

from conftest import GZ2_ROUND, GZ2_STAR
from galaxalign.data import load_survey
from galaxalign.errors import GalaxalignError
from galaxalign.jobs import enqueue, retrain
from galaxalign.store import (RetirementRule, activate_model, active_model, add_volunteer, get_job, list_jobs,
                              list_model_versions, open_store, record_classification, register_survey)
from galaxalign.store.models import Galaxy, Prediction
from galaxalign.taxonomy import GALAXY10
from galaxalign.workspace import Workspace


def tiny_config(path, **kw):
    cfg = {"model": {"arch": "galaxalign-tiny"}, "stage1_epochs": 1, "stage2_epochs": 1, "batch_size": 8,
           "warmup_steps": 2, "symbol_variants": 3, **kw}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture
def ws(tmp_path, synth_h5, monkeypatch):
    monkeypatch.setenv("GALAXALIGN_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GALAXALIGN_DATABASE_URL", raising=False)
    w = Workspace(tmp_path / "ws").create()
    store = open_store(w.database_url)
    register_survey(store, load_survey(synth_h5), "demo", known_fraction=0.5, gold_fraction=0.1)
    add_volunteer(store, "admin", "admin", "admin-password")
    yield w, store
    store.dispose()


def start_worker(w: Workspace, **env):
    e = {**os.environ, "GALAXALIGN_WORKSPACE": str(w.root), "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "galaxalign", "worker", "--workspace", str(w.root)], env=e,
                            stdout=subprocess.DEVNULL, stderr=open(w.root / "worker.log", "ab"),
                            start_new_session=True)


def wait_for(cond, timeout=300, every=0.3):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def simulate_volunteers(store, rng):
    """Five volunteers, one of them noisy, vote on the galaxies without a known label; one gold check."""
    for k in range(5):
        add_volunteer(store, f"sim{k}", "volunteer", f"password-{k}")
    with store.read() as s:
        rows = s.execute(select(Galaxy.id, Galaxy.idx, Galaxy.known_label, Galaxy.gold)).all()
    survey_labels = load_survey(store_path(store)).labels
    unknown = [(gid, idx) for gid, idx, known, _ in rows if known is None]
    gold = [gid for gid, _, _, g in rows if g]
    paths = {c.index: [list(step) for step in c.path] for c in GALAXY10}
    rule = RetirementRule(5, 3, 0.8)
    for gid, idx in unknown:
        for k in range(5):  # sim2 is noisy: half of its votes say "star"
            truth = paths[int(survey_labels[idx])]
            noisy = k == 2 and rng.random() < 0.5
            if record_classification(store, f"sim{k}", gid, GZ2_STAR if noisy else truth, rule=rule).retired:
                break
    record_classification(store, "sim0", gold[0], GZ2_ROUND, rule=rule)  # a gold-standard check
    return len(unknown)


def store_path(store):
    from galaxalign.store import list_surveys
    return list_surveys(store)[0].path


def test_retraining_through_the_real_queue_registers_a_new_model(ws, tmp_path):
    w, store = ws
    # a starter model, trained in-process (no queue), is active before the volunteers arrive
    cfg = tiny_config(tmp_path / "tiny.yaml")
    start = retrain(store, w, None, {"config": cfg, "name": "starter", "force_activate": True})
    assert start["activated"] and active_model(store).name == "starter"
    n_unknown = simulate_volunteers(store, np.random.default_rng(0))
    with store.read() as s:
        retired = s.scalar(select(func.count()).select_from(Galaxy).where(Galaxy.retired.is_(True),
                                                                          Galaxy.known_label.is_(None)))
    assert retired == n_unknown  # by consensus after 3 votes, or at 5 votes
    worker = start_worker(w)
    try:
        jid = enqueue(store, "retrain", {"config": cfg, "force_activate": True}, requested_by="admin", workspace=w)
        job = wait_for(lambda: (j := get_job(store, jid)).state in ("succeeded", "failed") and j, timeout=600)
    finally:
        stop(worker)
    assert job.state == "succeeded", job.log_tail + (job.error or "")
    res = job.result
    assert res["n_consensus_labels"] > 0 and res["parent"] == "starter" and res["activated"]
    assert {"accuracy", "macro_f1", "map_at_5", "map"} <= set(res["metrics"])
    versions = {m.name: m for m in list_model_versions(store)}
    new = versions[res["model"]]
    assert new.status == "active" and versions["starter"].status == "retired" and new.parent_id == versions["starter"].id
    assert new.metrics["macro_f1"] == pytest.approx(res["metrics"]["macro_f1"])
    assert (w.embeddings / new.name / "demo" / "index.faiss").exists()
    # a finished version keeps its weights, not the resume point (weights plus optimiser state)
    assert (w.models / new.name / "model.pt").exists() and not (w.models / new.name / "last.pt").exists()
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Prediction).where(Prediction.model_version_id == new.id)) == 60
    assert "registered candidate" in job.log_tail and job.progress == 1.0


def test_a_killed_worker_leaves_the_job_failed_and_the_active_model_unchanged(ws, tmp_path):
    w, store = ws
    quick = tiny_config(tmp_path / "quick.yaml")
    retrain(store, w, None, {"config": quick, "name": "starter", "force_activate": True})
    before = active_model(store)
    slow = tiny_config(tmp_path / "slow.yaml", stage1_epochs=2, stage2_epochs=400)
    env = {"GALAXALIGN_HEARTBEAT_SECONDS": "0.5", "GALAXALIGN_STALE_AFTER_SECONDS": "3"}
    worker = start_worker(w, **env)
    try:
        jid = enqueue(store, "retrain", {"config": slow, "force_activate": True}, workspace=w)
        next_jid = enqueue(store, "embed", {"model": "starter"}, workspace=w)
        wait_for(lambda: get_job(store, jid).progress > 0.02, timeout=300)  # training is under way
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(20)
        assert get_job(store, jid).state == "running"  # nobody has noticed yet
        time.sleep(4)  # longer than the stale limit
        worker = start_worker(w, **env)  # a restarted worker reaps the dead job, then takes the queue
        failed = wait_for(lambda: (j := get_job(store, jid)).state == "failed" and j, timeout=60)
        assert "no heartbeat" in failed.error
        done = wait_for(lambda: (j := get_job(store, next_jid)).state in ("succeeded", "failed") and j, timeout=300)
        assert done.state == "succeeded", done.log_tail
    finally:
        stop(worker)
    after = active_model(store)
    assert (after.id, after.sha256, after.name) == (before.id, before.sha256, "starter")
    assert [m.name for m in list_model_versions(store)] == ["starter"]  # the dead run registered nothing
    assert sorted(p.name for p in w.models.iterdir() if p.is_dir()) == ["starter"]  # and left no folder
    assert {j.state for j in list_jobs(store)} == {"failed", "succeeded"}


def test_unknown_job_kind_is_refused(ws):
    w, store = ws
    from galaxalign.errors import GalaxalignError

    with pytest.raises(GalaxalignError, match="unknown job kind 'mine'"):
        enqueue(store, "mine", {}, workspace=w)


def test_a_worse_candidate_is_not_activated(ws, tmp_path):
    w, store = ws
    good = tiny_config(tmp_path / "good.yaml")  # the bar decides here, not how well it trained
    retrain(store, w, None, {"config": good, "name": "good", "force_activate": True})
    # an impossible bar: the candidate must beat the active model by more than a whole macro-F1
    res = retrain(store, w, None, {"config": good, "name": "cand", "tolerance": -1.0})
    assert res["activated"] is False
    assert active_model(store).name == "good"
    assert {m.name: m.status for m in list_model_versions(store)} == {"good": "active", "cand": "candidate"}
    activate_model(store, "cand")  # an admin may still choose it
    assert active_model(store).name == "cand"


REDIS_URL = os.environ.get("GALAXALIGN_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="GALAXALIGN_TEST_REDIS_URL is not set; `make test` starts Redis")
def test_the_queue_runs_on_redis_when_configured(ws, tmp_path, monkeypatch):
    import redis

    from galaxalign.jobs import get_huey

    w, store = ws
    retrain(store, w, None, {"config": tiny_config(tmp_path / "t.yaml"), "name": "starter", "force_activate": True})
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    monkeypatch.setenv("GALAXALIGN_REDIS_URL", REDIS_URL)
    get_huey.cache_clear()
    try:
        jid = enqueue(store, "embed", {"model": "starter"}, workspace=w)
        assert r.llen("huey.redis.galaxalign") == 1  # the message sits in Redis, not in huey.db
        assert not (w.root / "huey.db").exists()
        worker = start_worker(w, GALAXALIGN_REDIS_URL=REDIS_URL)
        try:
            job = wait_for(lambda: (j := get_job(store, jid)).state in ("succeeded", "failed") and j, timeout=300)
        finally:
            stop(worker)
    finally:
        get_huey.cache_clear()
    assert job.state == "succeeded", job.log_tail
    assert r.llen("huey.redis.galaxalign") == 0


@pytest.mark.parametrize("params, message", [
    ({"epochs": 3}, "unknown parameter(s) epochs"),
    ({"stage2_epochs": -1}, "stage2_epochs must be a whole number"),
    ({"stage1_epochs": "4"}, "stage1_epochs must be a whole number"),
    ({"tolerance": 5}, "tolerance must be a number between -1 and 1"),
    ({"lr_scale": 0}, "lr_scale must be a number"),
    ({"seed": -2}, "seed must be a whole number"),
    ({"name": "v"}, "retrain: name 'v' must be 2–40"),           # refused before training, not after it
    ({"learn_from": "hunches"}, "learn_from"),
])
def test_retrain_parameters_are_typed_and_checked_before_any_work(params, message):
    from galaxalign.jobs import RetrainParams

    with pytest.raises(GalaxalignError, match=re.escape(message)):
        RetrainParams.from_dict(params)
    p = RetrainParams.from_dict({"survey": "demo", "stage1_epochs": 2, "force_activate": True})
    assert p.to_dict() == {"survey": "demo", "stage1_epochs": 2, "force_activate": True, "from_scratch": False,
                           "tolerance": 0.005, "lr_scale": 0.1, "learn_from": "consensus", "semi": False}  # what the job runs with
    assert RetrainParams.from_dict(p.to_dict()) == p


def test_the_reaper_removes_only_the_folders_of_jobs_that_are_gone(tmp_path):
    from galaxalign.fsutil import remove_partial_dirs

    for name in (".partial-job3-v1", ".partial-job4-v2", ".partial-local-v3", "v0"):
        (tmp_path / name).mkdir()
    gone = remove_partial_dirs(tmp_path, "job", alive={"job4"})
    assert [p.name for p in gone] == [".partial-job3-v1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".partial-job4-v2", ".partial-local-v3", "v0"]


def test_make_run_queues_the_starter_as_the_first_job_once(tmp_path, synth_h5, monkeypatch):
    """`galaxalign demo --starter job` (make run): survey registered, admin made, no model trained here,
    one starter job queued — not a second on the next run, and a new one if the first died with its worker."""
    import shutil

    from galaxalign.jobs import bootstrap
    from galaxalign.store import finish_job, get_volunteer, list_model_versions, list_surveys, open_store

    monkeypatch.delenv("GALAXALIGN_DATABASE_URL", raising=False)
    monkeypatch.delenv("GALAXALIGN_REDIS_URL", raising=False)
    w = Workspace(tmp_path / "ws").create()
    shutil.copy(synth_h5, w.demo_survey)  # the render is skipped when the survey exists
    out = bootstrap(w, survey="demo", starter="job", progress=False)
    store = open_store(w.database_url)
    assert [s.name for s in list_surveys(store)] == ["demo"] and get_volunteer(store, "admin").role == "admin"
    assert list_model_versions(store) == []  # nothing trained before the app serves
    job = get_job(store, out["starter_job"])
    assert job.kind == "retrain" and job.state == "queued" and job.params["name"] == "starter"
    assert bootstrap(w, survey="demo", starter="job", progress=False)["starter_job"] == job.id  # not twice
    finish_job(store, job.id, "failed", error="worker stopped")
    again = bootstrap(w, survey="demo", starter="job", progress=False)["starter_job"]
    assert again != job.id and get_job(store, again).state == "queued"
    with pytest.raises(GalaxalignError, match="starter 'later'"):
        bootstrap(w, survey="demo", starter="later", progress=False)
    store.dispose()


@pytest.mark.parametrize("kind, params, message", [
    ("retrain", {"tolerance": 9}, "retrain: tolerance must be a number between -1 and 1"),
    ("embed", {}, "embed: missing parameter(s) model"),
    ("embed", {"model": "v1", "shards": 0}, "embed: shards must be a whole number ≥ 1 or 'auto'"),
    ("adapt", {"survey": "hst", "align": "lda"}, "adapt: align must be one of ot, mmd, none"),
    ("project", {"method": "lda"}, "project: method must be one of pca, tsne, umap"),
    ("embed_shard", {"survey": "demo", "model": "v1", "shard": -1}, "embed_shard: shard must be a whole number"),
    ("paint", {}, "unknown job kind 'paint'"),
])
def test_a_bad_job_is_refused_when_queued_and_nothing_is_recorded(tmp_path, kind, params, message):
    """The Admin page, the CLI and job-to-job all queue through `enqueue`: the kind's parameter type checks
    the request there, before a row or a queue message exists."""
    ws = Workspace(tmp_path).create()
    store = open_store(ws.database_url)
    with pytest.raises(GalaxalignError, match=re.escape(message)):
        enqueue(store, kind, params, workspace=ws)
    assert list_jobs(store) == []
    assert not (tmp_path / "huey.db").exists()
