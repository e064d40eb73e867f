"""The readers, one per format, and the one way from a path to the reader that claims it.

Each :class:`Reader` says which paths it claims and opens one as a :class:`~galaxalign.data.Survey`;
they are tried in the order of :data:`READERS`. A new format is one module and one row here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .checks import open_h5
from .first import is_first_h5, load_first_h5, load_first_zip
from .folder import load_fits_folder, load_folder
from .galaxy10 import load_galaxy10_h5
from .galaxy_mnist import load_galaxy_mnist
from .survey import IMAGE_SUFFIXES, Survey, SurveyError, error

__all__ = ["Reader", "READERS", "open_survey_file", "FITS_SUFFIXES", "MNIST_FILES"]

FITS_SUFFIXES = (".fits", ".fit", ".fz")
MNIST_FILES = ("train_dataset.hdf5", "test_dataset.hdf5")


@dataclass(frozen=True)
class Reader:
    """``claims(path)``: whether this reader opens ``path`` (never raises); ``open(path, class_names)``."""
    name: str
    claims: Callable[[Path], bool]
    open: Callable[[Path, "list[str] | None"], Survey]


def _mnist_files(path: Path) -> list[Path]:
    if path.is_dir():
        return [path / n for n in MNIST_FILES if (path / n).exists()]
    return [path] if path.name in MNIST_FILES else []


def _fits_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in FITS_SUFFIXES)
    return [path] if path.suffix.lower() in FITS_SUFFIXES else []


def _catalog(path: Path) -> Path | None:
    if path.is_dir():
        return path / "catalog.csv" if (path / "catalog.csv").exists() else None
    return path if path.suffix.lower() == ".csv" else None


def _first_h5(path: Path) -> bool:
    """The firstgalaxydata HDF5 layout: no ``images``, one group per source."""
    if not path.is_file():
        return False
    try:
        with open_h5(path) as f:
            return "images" not in f and is_first_h5(f)
    except SurveyError:
        return False  # not readable as HDF5: the Galaxy10 reader says why


READERS: tuple[Reader, ...] = (
    Reader("galaxy_mnist", lambda p: bool(_mnist_files(p)),
           lambda p, names: load_galaxy_mnist(_mnist_files(p), p if p.is_dir() else p.parent)),
    Reader("catalog_folder", lambda p: _catalog(p) is not None,
           lambda p, names: load_folder(p if p.is_dir() else p.parent, _catalog(p), names)),
    Reader("fits", lambda p: bool(_fits_files(p)),
           lambda p, names: load_fits_folder(p if p.is_dir() else p.parent, _fits_files(p))),
    Reader("first_zip", lambda p: p.is_file() and p.suffix.lower() == ".zip", lambda p, names: load_first_zip(p)),
    Reader("first_h5", _first_h5, lambda p, names: load_first_h5(p)),
    Reader("galaxy10_h5", lambda p: p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES,
           lambda p, names: load_galaxy10_h5(p)),
)


def open_survey_file(path: Path, class_names: list[str] | None = None) -> Survey:
    """The survey at ``path``, opened by the first reader that claims it; one line naming the path when
    none does."""
    if not path.exists():
        raise error(path, "no such file or folder")
    for reader in READERS:
        if reader.claims(path):
            return reader.open(path, class_names)
    if path.is_dir():
        raise error(path, "folder has no train_dataset.hdf5 / test_dataset.hdf5, no catalog.csv and no FITS files")
    raise error(path, "a single image is not a survey; put images in a folder with a catalog.csv")
