"""Helpers for tests and benchmarks (as ``numpy.testing`` is for NumPy's): small files in the real
schemas, and a fresh PostgreSQL schema. Never used by the app."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_galaxy10", "reset_postgres"]


def write_galaxy10(path: str | Path, n: int = 12, size: int = 16, **overrides) -> Path:
    """A file in the real Galaxy10 DECaLS schema (what astroNN distributes): random pixels, labels
    ``0..9`` in turn; ``overrides`` replace (or, as ``None``, drop) a dataset."""
    import h5py

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
    return Path(path)


def reset_postgres(url: str) -> None:
    """Drop and recreate the ``public`` schema of the PostgreSQL database at ``url``: an empty store."""
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    eng.dispose()
