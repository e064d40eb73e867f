"""Importing an uploaded survey (an HDF5 file, or a zip of images with ``catalog.csv``) into a workspace.

Validated with the survey loaders; on any problem nothing stays behind — no folder, no store rows —
and the error names the upload and the problem.
"""
from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

from .data import load_survey
from .errors import GalaxalignError
from .workspace import Workspace

__all__ = ["import_survey", "MAX_IMPORT_BYTES", "SurveyImportError"]

MAX_IMPORT_BYTES = 500 * 1024 * 1024
MAX_UNZIPPED_BYTES = 4 * MAX_IMPORT_BYTES
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,39}")


class SurveyImportError(GalaxalignError):
    pass


def import_survey(store, workspace: Workspace, filename: str, data: bytes, name: str, workflow: str = "gz2") -> dict:
    """Save, unpack, validate and register an upload as survey ``name``; returns a summary."""
    from .store import register_survey

    if len(data) > MAX_IMPORT_BYTES:
        raise SurveyImportError(f"{filename}: {len(data) / 1e6:.0f} MB is larger than the {MAX_IMPORT_BYTES / 1e6:.0f} MB limit")
    if not _NAME.fullmatch(name or ""):
        raise SurveyImportError(f"survey name {name!r} must be 2–40 letters, digits, '.', '_' or '-'")
    base = Path(filename).name
    if not base.lower().endswith((".h5", ".hdf5", ".zip")):
        raise SurveyImportError(f"{base}: upload an .h5/.hdf5 survey or a .zip of images with catalog.csv")
    dest = workspace.surveys / "imported" / name
    if dest.exists():
        raise SurveyImportError(f"{dest}: a survey called {name!r} was already imported")
    dest.mkdir(parents=True)
    try:
        tmp = dest / f".upload-{os.getpid()}"
        tmp.write_bytes(data)
        if base.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(tmp) as z:
                    total = 0
                    for info in z.infolist():  # no absolute paths, no escape, no zip bomb
                        target = (dest / info.filename).resolve()
                        if dest.resolve() not in target.parents:
                            raise SurveyImportError(f"{base}: entry {info.filename!r} points outside the survey folder")
                        total += info.file_size
                        if total > MAX_UNZIPPED_BYTES:
                            raise SurveyImportError(f"{base}: unpacks to more than {MAX_UNZIPPED_BYTES / 1e9:.0f} GB")
                    z.extractall(dest)
            except zipfile.BadZipFile:
                raise SurveyImportError(f"{base}: not a valid zip file") from None
            tmp.unlink()
            inner = [p for p in dest.rglob("catalog.csv")]
            path = inner[0].parent if inner else dest
        else:
            path = dest / re.sub(r"[^A-Za-z0-9_.-]", "_", base)
            tmp.replace(path)
        survey = load_survey(path)
        sid = register_survey(store, survey, name, workflow=workflow)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return {"survey_id": sid, "name": name, "galaxies": len(survey), "path": str(path)}
