"""Files are written to a temporary name beside their destination and renamed into place, so a crash
leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path"]


@contextmanager
def atomic_path(dest: str | os.PathLike):
    """``with atomic_path("out.h5") as tmp: write(tmp)`` — ``tmp`` is renamed to ``dest`` when the block
    succeeds and removed when it fails."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
