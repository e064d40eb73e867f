"""Files are written to a temporary name beside their destination and renamed into place, so a crash
leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "staged_dir", "remove_partial_dirs", "file_sha256", "PARTIAL_PREFIX"]

PARTIAL_PREFIX = ".partial-"


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


@contextmanager
def staged_dir(dest: str | os.PathLike, owner: str = ""):
    """``with staged_dir(models / "v7", owner="job12") as tmp: write_into(tmp)`` — the folder is built as
    ``.partial-<owner>-v7`` beside its destination and renamed to ``v7`` when the block succeeds; removed
    when it fails. A process killed inside the block leaves the ``.partial-`` folder, which
    :func:`remove_partial_dirs` clears once its owner is known to be gone."""
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(17, "already exists", str(dest))
    tmp = dest.with_name(f"{PARTIAL_PREFIX}{owner + '-' if owner else ''}{dest.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_partial_dirs(folder: str | os.PathLike, owner_prefix: str, alive: set[str]) -> list[Path]:
    """Remove the ``.partial-<owner>-…`` folders under ``folder`` whose owner starts with ``owner_prefix``
    and is not in ``alive`` (killed jobs: ``remove_partial_dirs(models, "job", {"job12"})``). Folders of
    other owners (a run in this process) are left to :func:`staged_dir`, which clears its own."""
    gone = []
    folder = Path(folder)
    if not folder.is_dir():
        return gone
    for p in folder.glob(PARTIAL_PREFIX + owner_prefix + "*"):
        if p.is_dir() and p.name[len(PARTIAL_PREFIX):].split("-")[0] not in alive:
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    return gone


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
