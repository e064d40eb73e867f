"""Importing a survey into a workspace: from disk (:func:`import_path`, ``galaxalign import``) or from
an upload on the Admin page (:func:`import_survey`, which unpacks the upload and calls the same code).

The survey is validated with the loaders, streamed into ``surveys/imported/<name>.h5`` a chunk at a
time (memory stays bounded whatever its size), given its label set and preparation, and registered.
On any problem nothing stays behind — no file, no store rows — and the error names the input and the
problem. :func:`galaxalign.surveys.open_survey` is the one way
the worker, the app and the benchmarks read a registered survey.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from .data import Survey, load_survey, write_survey_h5
from .errors import GalaxalignError
from .prepare import Preparation, detect_for_survey
from .store import get_survey, link_gold, list_surveys, register_survey
from .validate import check_name, short
from .surveys import open_registered
from .workspace import Workspace

__all__ = ["import_survey", "import_path", "import_field", "staged_upload", "inject_gold", "MAX_IMPORT_BYTES",
           "SurveyImportError"]

MAX_IMPORT_BYTES = 500 * 1024 * 1024
MAX_UNZIPPED_BYTES = 4 * MAX_IMPORT_BYTES


class SurveyImportError(GalaxalignError):
    pass


def import_survey(store, workspace: Workspace, filename: str, data: bytes, name: str, workflow: str = "gz2",
                  label_set: str | None = None, preparation: Preparation | dict | None = None) -> dict:
    """Save and unpack an upload, then :func:`import_path` it as survey ``name``; returns a summary."""
    check_name(name, "survey name", SurveyImportError)
    with staged_upload(workspace, filename, data) as path:
        return import_path(store, workspace, path, name, workflow=workflow, label_set=label_set,
                           preparation=preparation, progress=False)


@contextmanager
def staged_upload(workspace: Workspace, filename: str, data: bytes):
    """Save an upload under ``surveys/uploads/`` and yield the path the loaders read (the file, or the
    folder of an unpacked zip with ``catalog.csv``); removed afterwards whatever happens."""
    if len(data) > MAX_IMPORT_BYTES:
        raise SurveyImportError(f"{filename}: {len(data) / 1e6:.0f} MB is larger than the {MAX_IMPORT_BYTES / 1e6:.0f} MB limit")
    base = Path(filename).name
    if not base.lower().endswith((".h5", ".hdf5", ".zip")):
        raise SurveyImportError(f"{base}: upload an .h5/.hdf5 survey or a .zip of images with catalog.csv")
    dest = workspace.surveys / "uploads" / f"{os.getpid()}-{secrets.token_hex(4)}"
    dest.mkdir(parents=True)
    try:
        tmp = dest / ".upload"
        tmp.write_bytes(data)
        if base.lower().endswith(".zip"):
            _check_zip(tmp, dest, base)
        if base.lower().endswith(".zip") and not _has_catalog(tmp, base):
            path = dest / re.sub(r"[^A-Za-z0-9_.-]", "_", base)  # a zip the loaders read as it is (FIRST)
            tmp.replace(path)
        elif base.lower().endswith(".zip"):
            _unzip(tmp, dest, base)
            tmp.unlink()
            inner = [p for p in dest.rglob("catalog.csv")]
            path = inner[0].parent if inner else dest
        else:
            path = dest / re.sub(r"[^A-Za-z0-9_.-]", "_", base)
            tmp.replace(path)
        yield path
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _check_zip(zip_path: Path, dest: Path, base: str) -> None:
    """Every zip, unpacked or read in place: no absolute paths, no escape, no zip bomb."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            total = 0
            for info in z.infolist():
                target = (dest / info.filename).resolve()
                if dest.resolve() not in target.parents:
                    raise SurveyImportError(f"{base}: entry {short(info.filename)} points outside the survey folder")
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):  # a symbolic link, a device…
                    what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
                    raise SurveyImportError(f"{base}: entry {short(info.filename)} is {what}; zip the files themselves")
                total += info.file_size
                if total > MAX_UNZIPPED_BYTES:
                    raise SurveyImportError(f"{base}: unpacks to more than {MAX_UNZIPPED_BYTES / 1e9:.0f} GB")
    except zipfile.BadZipFile:
        raise SurveyImportError(f"{base}: not a valid zip file") from None


def _unzip(zip_path: Path, dest: Path, base: str) -> None:
    try:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(dest)
    except zipfile.BadZipFile as e:  # a member that fails its CRC check, a truncated member…
        raise SurveyImportError(f"{base}: damaged zip file ({str(e).splitlines()[0][:120]})") from None
    except OSError as e:  # an entry that is both a file and a folder, a name the file system refuses…
        raise SurveyImportError(f"{base}: cannot unpack {short(e.filename or '')}: {e.strerror or e}") from None


def _has_catalog(zip_path: Path, base: str) -> bool:
    try:
        with zipfile.ZipFile(zip_path) as z:
            return any(Path(n).name == "catalog.csv" for n in z.namelist())
    except zipfile.BadZipFile:
        raise SurveyImportError(f"{base}: not a valid zip file") from None


def import_path(store, workspace: Workspace, path: str | os.PathLike, name: str, workflow: str = "flat",
                label_set: str | None = None, preparation: Preparation | dict | None = None,
                train_config: str | None = None, progress: bool = True, chunk: int = 512,
                known_fraction: float = 1.0, survey: Survey | None = None) -> dict:
    """Validate the survey at ``path``, stream it into the workspace and register it as ``name``.

    ``preparation``: a :class:`Preparation` (or its dict); ``None`` detects one from a sample of the
    images (:func:`galaxalign.prepare.detect_for_survey`). ``survey``: the survey at ``path`` already
    loaded (with ``label_set``) by a caller that needed it first, so it is not read twice. Returns a
    summary with the preparation and the reasons for it.
    """
    check_name(name, "survey name", SurveyImportError)
    if any(r.name.lower() == name.lower() for r in list_surveys(store)):
        raise SurveyImportError(f"a survey called {name!r} was already imported (or registered)")
    survey = survey if survey is not None else load_survey(path, label_set=label_set)
    reasons: list[str] = []
    if preparation is None:
        preparation, reasons = detect_for_survey(survey)
    elif isinstance(preparation, dict):
        preparation = Preparation.from_dict(preparation)
    survey.with_preparation(preparation)  # refuse a preparation the images cannot take, before writing
    target = workspace.surveys / "imported" / f"{name}.h5"
    if target.exists():
        raise SurveyImportError(f"{target}: a survey called {name!r} was already imported")
    write_survey_h5(survey, target, progress=progress, chunk=chunk)
    try:
        stored = load_survey(target, label_set=survey.label_set, preparation=preparation)
        sid = register_survey(store, stored, name, workflow=workflow, train_config=train_config,
                              known_fraction=known_fraction)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return {"survey_id": sid, "name": name, "galaxies": len(stored), "path": str(target),
            "preparation": preparation.to_dict(), "preparation_text": preparation.describe(), "reasons": reasons,
            "classes": stored.class_counts()}


def import_field(store, workspace: Workspace, paths: list[str | os.PathLike], name: str, size: int = 64,
                 include_stars: bool = False, mask_neighbours: bool = False, threshold: float | None = None,
                 preview: str | os.PathLike | None = None, progress: bool = True, min_pixels: int = 30) -> dict:
    """A telescope field becomes a survey: its sources detected, its galaxies cut out
    (:func:`galaxalign.fields.field_survey`), then imported like any survey (the GZ2 workflow) with the
    catalogue of every detection beside it (``surveys/imported/<name>.catalog.csv``). On any problem
    nothing is registered and nothing stays behind."""
    from .fields import field_survey  # sep and astropy: only on this path

    check_name(name, "survey name", SurveyImportError)
    if any(r.name.lower() == name.lower() for r in list_surveys(store)):
        raise SurveyImportError(f"a survey called {name!r} was already imported (or registered)")
    workspace.create()
    catalog = workspace.surveys / "imported" / f"{name}.catalog.csv"
    with tempfile.TemporaryDirectory(dir=workspace.root, prefix=".field-") as tmp:
        field = field_survey(paths, Path(tmp) / f"{name}.h5", name, size=size, include_stars=include_stars,
                             mask_neighbours=mask_neighbours, threshold=threshold, preview=preview,
                             min_pixels=min_pixels)
        catalog.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(field["catalog"], catalog)
        try:
            res = import_path(store, workspace, field["path"], name, workflow="gz2", progress=progress)
        except BaseException:
            catalog.unlink(missing_ok=True)
            raise
    return {**res, "field": {**field, "path": None, "catalog": str(catalog)}}


def inject_gold(store, workspace: Workspace, survey: str, n: int = 50, seed: int = 0, progress: bool = False) -> dict:
    """Render ``n`` galaxies with known truth at ``survey``'s image size, register them as the gold
    survey ``<survey>-gold`` (every one gold) and link it, so that the survey's queue serves them as
    gold tasks and its volunteers' skill counts them — for a real survey whose own gold is scarce.
    Needs the Galaxy10 classes (what our renderer draws); a survey can take rendered gold once."""
    from .synth import synth_survey  # GalSim: heavy, and only on this path

    row = get_survey(store, survey)
    if row.label_set != "galaxy10":
        raise SurveyImportError(f"survey {row.name!r}: rendered gold needs the Galaxy10 classes (our renderer draws "
                                f"those); its label set is {row.label_set or row.label_set_file!r}")
    if row.gold_from_id is not None:
        raise SurveyImportError(f"survey {row.name!r} already takes gold from survey id {row.gold_from_id}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100_000:
        raise SurveyImportError(f"rendered gold: n {short(n)} must be a whole number from 1 to 100,000")
    size = int(open_registered(row).image_shape[0])
    name = f"{row.name}-gold"
    path = workspace.surveys / "gold" / f"{name}.h5"
    if path.exists() or any(r.name.lower() == name.lower() for r in list_surveys(store)):
        raise SurveyImportError(f"{path}: a survey called {name!r} exists already; nothing rendered")
    path.parent.mkdir(parents=True, exist_ok=True)
    synth_survey(path, n=n, size=size, seed=seed, progress=progress)
    try:
        sid = register_survey(store, load_survey(path), name, workflow=row.workflow, known_fraction=1.0,
                              gold_fraction=1.0, seed=seed)
        link_gold(store, row.name, sid)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {"survey": row.name, "gold_survey": name, "galaxies": n, "size": size, "path": str(path)}
