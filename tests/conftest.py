"""Shared fixtures: small surveys written once per session, in the real schemas."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def synth_h5(tmp_path_factory) -> Path:
    """A 60-galaxy synthetic Galaxy10 survey at 32 px (every class present)."""
    from galaxalign.synth import synth_survey

    path = tmp_path_factory.mktemp("synth") / "tiny.h5"
    synth_survey(path, n=60, size=32, seed=3, workers=2, progress=False)
    return path


def write_galaxy10(path: Path, n: int = 12, size: int = 16, **overrides) -> Path:
    """A file in the real Galaxy10 DECaLS schema (what astroNN distributes)."""
    rng = np.random.default_rng(0)
    data = {
        "images": rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
        "ans": (np.arange(n) % 10).astype(np.uint8),
        "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-10, 60, n),
        "redshift": rng.uniform(0, 0.2, n), "pxscale": np.full(n, 0.262),
    }
    data.update(overrides)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if v is not None:
                f[k] = v
    return path


@pytest.fixture
def galaxy10_file(tmp_path) -> Path:
    return write_galaxy10(tmp_path / "Galaxy10_DECals.h5")


# --- the annotation store, on SQLite and on PostgreSQL -------------------------------------------

PG_URL = os.environ.get("GALAXALIGN_TEST_POSTGRES_URL")


def _fresh_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database URL. PostgreSQL is started by `make test` (.ci/services.sh)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if not PG_URL:
        pytest.skip("GALAXALIGN_TEST_POSTGRES_URL is not set; `make test` starts PostgreSQL and sets it")
    _fresh_pg(PG_URL)
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
