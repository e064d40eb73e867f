"""Shared fixtures: small surveys written once per session, in the real schemas."""
from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    # two workers on two cores: one thread each (and in what they start), set before NumPy or torch loads
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

from galaxalign.testing import reset_postgres, write_galaxy10  # noqa: E402,F401 (tests import write_galaxy10 from here)


def _per_worker_services() -> None:
    """Under pytest-xdist (`make test` runs two workers) each worker gets its own PostgreSQL database
    (``galaxalign_test_gw<N>``, created on first use) and its own Redis database (index N + 1), so one
    worker's schema reset or queue flush never touches the other's. Subprocesses inherit the URLs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    n = int(worker[2:])
    pg = os.environ.get("GALAXALIGN_TEST_POSTGRES_URL")
    if pg and not pg.endswith(f"_{worker}"):
        from sqlalchemy import create_engine, text

        base, name = pg.rsplit("/", 1)
        mine = f"{name}_{worker}"
        eng = create_engine(pg, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": mine}).scalar():
                c.execute(text(f'CREATE DATABASE "{mine}"'))
        eng.dispose()
        os.environ["GALAXALIGN_TEST_POSTGRES_URL"] = f"{base}/{mine}"
    redis = os.environ.get("GALAXALIGN_TEST_REDIS_URL")
    if redis:
        os.environ["GALAXALIGN_TEST_REDIS_URL"] = f"{redis.rsplit('/', 1)[0]}/{n + 1}"


_per_worker_services()


@pytest.fixture(scope="session")
def synth_h5(tmp_path_factory) -> Path:
    """A 60-galaxy synthetic Galaxy10 survey at 32 px (every class present)."""
    from galaxalign.synth import synth_survey

    path = tmp_path_factory.mktemp("synth") / "tiny.h5"
    synth_survey(path, n=60, size=32, seed=3, workers=2, progress=False)
    return path


@pytest.fixture
def galaxy10_file(tmp_path) -> Path:
    return write_galaxy10(tmp_path / "Galaxy10_DECals.h5")


# --- the annotation store, on SQLite and on PostgreSQL -------------------------------------------

PG_URL = os.environ.get("GALAXALIGN_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database URL. PostgreSQL is started by `make test` (.ci/services.sh)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if not PG_URL:
        pytest.skip("GALAXALIGN_TEST_POSTGRES_URL is not set; `make test` starts PostgreSQL and sets it")
    reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def store(db_url):
    from galaxalign.store import open_store

    st = open_store(db_url)
    yield st
    st.dispose()


GZ2_ROUND = [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]
GZ2_CIGAR = [["T01", "t01_smooth"], ["T07", "t07_cigar"], ["T06", "t06_no"]]
GZ2_STAR = [["T01", "t01_star"]]


# --- a small workspace with a trained, embedded, active model (app and browser tests) --------------

@pytest.fixture(scope="session")
def built_workspace(tmp_path_factory, synth_h5):
    """Survey registered, three accounts, a tiny model trained, embedded, indexed and active."""
    from galaxalign.data import load_survey
    from galaxalign.jobs import retrain
    from galaxalign.store import add_volunteer, open_store, register_survey, set_blind_fraction, set_proposal_gate
    from galaxalign.workspace import Workspace

    root = tmp_path_factory.mktemp("appws")
    w = Workspace(root).create()
    shutil.copy(synth_h5, w.demo_survey)
    store = open_store(w.database_url)
    register_survey(store, load_survey(w.demo_survey), "demo", known_fraction=0.5, gold_fraction=0.05)
    set_blind_fraction(store, "demo", 0.0)  # deterministic pages; the blind control has its own AppTest
    add_volunteer(store, "vera", "volunteer", "volunteer-pw")
    add_volunteer(store, "rosa", "researcher", "researcher-pw")
    add_volunteer(store, "adam", "admin", "admin-password")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"stage1_epochs": 1, "stage2_epochs": 1, "batch_size": 8, "warmup_steps": 2,
                                   "symbol_variants": 3}))
    retrain(store, w, None, {"config": str(cfg), "name": "starter", "force_activate": True})
    # two epochs make an unreliable model whose proposals the calibrated gate would withhold: the app
    # tests of the proposal flow open the gate (test_ood.py checks the gate itself)
    set_proposal_gate(store, "starter", confidence_floor=0.0, ood_max=1e9)
    store.dispose()
    return root


def copy_workspace(template: Path, root: Path, monkeypatch) -> Path:
    """A copy of a workspace built once for many tests, its stored paths re-pointed at the copy (they
    point at the template), and made the workspace this test's code and app open."""
    from galaxalign.store import open_store, relocate_paths
    from galaxalign.workspace import Workspace

    shutil.copytree(template, root)
    store = open_store(Workspace(root).database_url)
    relocate_paths(store, str(template), str(root))
    store.dispose()
    monkeypatch.setenv("GALAXALIGN_WORKSPACE", str(root))
    monkeypatch.delenv("GALAXALIGN_DATABASE_URL", raising=False)
    return root


@pytest.fixture
def workspace(built_workspace, tmp_path, monkeypatch):
    root = copy_workspace(built_workspace, tmp_path / "ws", monkeypatch)
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    return root


