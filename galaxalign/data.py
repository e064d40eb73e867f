"""Survey loaders: one :class:`Survey` type for every source of galaxy images.

``load_survey(path)`` recognises

- a Galaxy10 DECaLS HDF5 file (``images`` (N, H, W, 3) uint8, ``ans``, optional ``ra``, ``dec``,
  ``redshift``, ``pxscale``, ``id_str``) — our synthetic surveys use the same schema;
- GalaxyMNIST (``train_dataset.hdf5`` / ``test_dataset.hdf5``: ``images`` (N, 64, 64, 3), ``labels``), or a
  folder holding them (both files are concatenated, train first);
- a folder of images with a CSV catalog (``catalog.csv`` with ``id_str``, ``file_loc`` and an optional
  ``label`` column: a class name — matched to Galaxy10 or GalaxyMNIST names when they all fit — or an
  integer index, read as a Galaxy10 class unless ``class_names`` says otherwise);
- FITS cutouts: a folder of ``.fits`` files, each a (3, H, W) cube in g, r, z (astropy), combined to RGB
  with Lupton's asinh stretch, with an optional ``catalog.csv`` giving labels.

>>> s = load_survey("x.h5")                                   # doctest: +SKIP
>>> len(s), s.image_shape, s.class_names[:2]                  # doctest: +SKIP
(100, (64, 64, 3), ['Disturbed', 'Merging'])
>>> train, test = stratified_split(s.labels, seed=0)          # doctest: +SKIP

Images are read lazily. Any problem with the input raises :class:`SurveyError` naming the file and
what is wrong with it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .errors import GalaxalignError
from .taxonomy import GALAXY10, GALAXY_MNIST, LabelSet

__all__ = ["Survey", "SurveyError", "load_survey", "stratified_split", "survey_summary", "UNLABELLED",
           "IMAGE_SUFFIXES"]

UNLABELLED = -1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MAX_IMAGE_SIDE = 4096


class SurveyError(GalaxalignError, ValueError):
    """A survey that cannot be read: the message names the file and the problem."""


@dataclass
class Survey:
    """Galaxies with lazy image access.

    ``len(survey)``; ``survey.image(i)`` → (H, W, 3) uint8; ``survey.images([i, j])`` → (n, H, W, 3);
    ``survey.labels`` (N,) int, :data:`UNLABELLED` (-1) where unknown; ``survey.id_str`` (N,) str;
    ``survey.class_names``; ``survey.catalog`` a DataFrame keyed by ``id_str`` (``label``, ``ra``,
    ``dec``… whatever the source has).
    """

    path: Path
    kind: str
    class_names: list[str]
    catalog: pd.DataFrame
    _reader: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    image_shape: tuple[int, int, int] = (0, 0, 3)
    label_set: LabelSet | None = None

    def __len__(self) -> int:
        return len(self.catalog)

    @property
    def labels(self) -> np.ndarray:
        return self.catalog["label"].to_numpy(np.int64)

    @property
    def id_str(self) -> np.ndarray:
        return self.catalog["id_str"].to_numpy(str)

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 images at ``indices`` (any order, repeats allowed)."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: index out of range 0..{len(self) - 1}")
        return self._reader(idx)

    def image(self, i: int) -> np.ndarray:
        return self.images([i])[0]

    def iter_batches(self, batch_size: int = 256, indices: Sequence[int] | None = None):
        """Yield ``(indices, images)`` in order, ``batch_size`` at a time."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices)
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            yield chunk, self.images(chunk)

    def class_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in self.class_names}
        for lab, n in zip(*np.unique(self.labels, return_counts=True)):
            counts[self.class_names[lab] if lab >= 0 else "(unlabelled)"] = int(n)
        return counts


def _err(path, problem: str) -> SurveyError:
    return SurveyError(f"{path}: {problem}")


# --- HDF5 ------------------------------------------------------------------------------------------

def _h5_reader(path: Path, key: str, offsets: list[tuple[Path, int]] | None = None):
    """Read images by index from one or more HDF5 files; opens the file per call, so a Survey can be
    shared between threads (Streamlit sessions) without sharing an h5py handle."""
    import h5py

    files = offsets or [(path, 0)]

    def read(idx: np.ndarray) -> np.ndarray:
        out = []
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        for k, (fpath, start) in enumerate(files):
            stop = files[k + 1][1] if k + 1 < len(files) else None
            sel = sorted_idx[(sorted_idx >= start) & ((sorted_idx < stop) if stop is not None else True)] - start
            if not sel.size:
                continue
            uniq, inverse = np.unique(sel, return_inverse=True)
            try:
                with h5py.File(fpath, "r") as f:
                    block = f[key][uniq]  # h5py wants increasing unique indices
            except OSError as e:
                raise _err(fpath, f"cannot read images ({e})") from None
            out.append(block[inverse])
        res = np.concatenate(out) if out else np.zeros((0,), np.uint8)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return res[back]

    return read


def _open_h5(path: Path):
    import h5py

    if not path.exists():
        raise _err(path, "no such file")
    if path.stat().st_size == 0:
        raise _err(path, "the file is empty")
    try:
        if not h5py.is_hdf5(path):
            raise _err(path, "not an HDF5 file")
        return h5py.File(path, "r")
    except SurveyError:
        raise
    except OSError as e:
        raise _err(path, f"truncated or corrupt HDF5 file ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None


def _check_images(path: Path, ds, key: str = "images") -> tuple[int, int, int]:
    if ds.ndim != 4 or ds.shape[-1] != 3:
        raise _err(path, f"'{key}' has shape {ds.shape}; expected (N, H, W, 3)")
    if ds.dtype != np.uint8:
        raise _err(path, f"'{key}' has dtype {ds.dtype}; expected uint8")
    if ds.shape[0] == 0:
        raise _err(path, "the survey is empty (0 images)")
    if not (8 <= ds.shape[1] <= MAX_IMAGE_SIDE and 8 <= ds.shape[2] <= MAX_IMAGE_SIDE):
        raise _err(path, f"image size {ds.shape[1]}×{ds.shape[2]} is outside 8–{MAX_IMAGE_SIDE} pixels")
    try:  # touch the first and last image: a truncated file fails here, not mid-training
        ds[0]
        ds[ds.shape[0] - 1]
    except (OSError, ValueError) as e:
        raise _err(path, f"truncated or corrupt image data ({e})") from None
    return tuple(int(x) for x in ds.shape[1:])


def _check_labels(path: Path, labels: np.ndarray, n_classes: int, n: int, key: str) -> np.ndarray:
    if labels.ndim != 1 or len(labels) != n:
        raise _err(path, f"'{key}' has shape {labels.shape}; expected ({n},) to match the images")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise _err(path, f"'{key}' has dtype {labels.dtype}; expected integer class indices")
    labels = labels.astype(np.int64)
    bad = (labels < UNLABELLED) | (labels >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _err(path, f"label {labels[i]} at index {i} is out of range 0–{n_classes - 1} "
                         f"({int(bad.sum())} such labels)")
    return labels


def _load_galaxy10_h5(path: Path) -> Survey:
    with _open_h5(path) as f:
        if "images" not in f:
            raise _err(path, f"missing key 'images' (keys: {', '.join(f.keys()) or 'none'})")
        shape = _check_images(path, f["images"])
        n = f["images"].shape[0]
        label_key = "ans" if "ans" in f else "labels" if "labels" in f else None
        names = GALAXY10.class_names
        label_set: LabelSet | None = GALAXY10
        if "class_names" in f.attrs:
            names = json.loads(f.attrs["class_names"])
            label_set = GALAXY10 if names == GALAXY10.class_names else None
        if label_key is None:
            labels = np.full(n, UNLABELLED)
        else:
            labels = _check_labels(path, f[label_key][()], len(names), n, label_key)
        cat = {"label": labels}
        for k in ("ra", "dec", "redshift", "pxscale"):
            if k in f:
                v = f[k][()]
                if v.shape != (n,):
                    raise _err(path, f"'{k}' has shape {v.shape}; expected ({n},)")
                cat[k] = v.astype(float)
        if "id_str" in f:
            ids = [x.decode() if isinstance(x, bytes) else str(x) for x in f["id_str"][()]]
        else:
            ids = [f"{path.stem}-{i:06d}" for i in range(n)]
    df = pd.DataFrame({"id_str": ids, **cat})
    _check_unique_ids(path, df)
    return Survey(path, "galaxy10_h5", names, df, _h5_reader(path, "images"), shape, label_set)


def _load_galaxy_mnist(paths: list[Path], root: Path) -> Survey:
    offsets, labels, ids, split, shape = [], [], [], [], None
    total = 0
    for p in paths:
        with _open_h5(p) as f:
            for key in ("images", "labels"):
                if key not in f:
                    raise _err(p, f"missing key '{key}' (keys: {', '.join(f.keys()) or 'none'})")
            s = _check_images(p, f["images"])
            if shape is not None and s != shape:
                raise _err(p, f"image shape {s} differs from {shape} in {paths[0].name}")
            shape = s
            n = f["images"].shape[0]
            labels.append(_check_labels(p, f["labels"][()], len(GALAXY_MNIST), n, "labels"))
        part = "train" if "train" in p.name else "test"
        ids += [f"gzmnist-{part}-{i:05d}" for i in range(n)]
        split += [part] * n
        offsets.append((p, total))
        total += n
    df = pd.DataFrame({"id_str": ids, "label": np.concatenate(labels), "split": split})
    return Survey(root, "galaxy_mnist", GALAXY_MNIST.class_names, df, _h5_reader(paths[0], "images", offsets),
                  shape, GALAXY_MNIST)


# --- folders ---------------------------------------------------------------------------------------

def _read_catalog(path: Path, required=("id_str", "file_loc")) -> pd.DataFrame:
    try:
        cat = pd.read_csv(path, dtype={"id_str": str, "file_loc": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise _err(path, f"cannot parse the catalog ({str(e).splitlines()[0]})") from None
    missing = [c for c in required if c not in cat.columns]
    if missing:
        raise _err(path, f"catalog lacks column(s) {', '.join(missing)} (has: {', '.join(cat.columns)})")
    if cat.empty:
        raise _err(path, "the survey is empty (the catalog has no rows)")
    return cat


def _check_unique_ids(path: Path, df: pd.DataFrame) -> None:
    dup = df["id_str"].duplicated()
    if dup.any():
        raise _err(path, f"id_str {df['id_str'][dup].iloc[0]!r} appears more than once")


def _labels_from_catalog(path: Path, cat: pd.DataFrame, class_names: list[str] | None):
    """Labels as indices plus class names: from names (sorted, or matched to a known label set) or
    from integer indices (named by the matching label set, or "class 0"…)."""
    if "label" not in cat.columns:
        return np.full(len(cat), UNLABELLED), class_names or [], None
    raw = cat["label"]
    if pd.api.types.is_numeric_dtype(raw):
        filled = raw.fillna(UNLABELLED)
        if not np.all(filled == np.round(filled)):
            raise _err(path, "label column holds non-integer numbers")
        labels = filled.to_numpy(np.int64)
        hi = int(labels.max()) if len(labels) else -1
        if class_names is None and hi < len(GALAXY10):
            class_names = GALAXY10.class_names  # integer labels default to Galaxy10 indices
        names = class_names or [f"class {i}" for i in range(hi + 1)]
        return _check_labels(path, labels, len(names), len(cat), "label"), names, _label_set_for(names)
    text = raw.fillna("").astype(str).str.strip()
    present = sorted(set(text) - {""})
    if class_names is None:
        for ls in (GALAXY10, GALAXY_MNIST):
            lower = {n.lower(): i for i, n in enumerate(ls.class_names)}
            lower.update({c.slug: c.index for c in ls})
            if all(p.lower() in lower for p in present):
                idx = [lower[t.lower()] if t else UNLABELLED for t in text]
                return np.asarray(idx, np.int64), ls.class_names, ls
        class_names = present
    lookup = {n: i for i, n in enumerate(class_names)}
    unknown = [t for t in present if t not in lookup]
    if unknown:
        raise _err(path, f"label {unknown[0]!r} is not one of the classes {class_names}")
    return np.asarray([lookup[t] if t else UNLABELLED for t in text], np.int64), class_names, _label_set_for(class_names)


def _label_set_for(names: list[str]) -> LabelSet | None:
    for ls in (GALAXY10, GALAXY_MNIST):
        if names == ls.class_names:
            return ls
    return None


def _safe_file(root: Path, rel: str, catalog: Path) -> Path:
    """Resolve a catalog path inside ``root``; refuse absolute paths and ``..`` escapes."""
    if not isinstance(rel, str) or not rel.strip():
        raise _err(catalog, "a row has an empty file_loc")
    p = (root / rel).resolve()
    if root.resolve() not in p.parents:
        raise _err(catalog, f"file_loc {rel!r} points outside the survey folder")
    return p


def _read_image_file(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.width > MAX_IMAGE_SIDE or im.height > MAX_IMAGE_SIDE:
                raise _err(path, f"image is {im.width}×{im.height}, larger than {MAX_IMAGE_SIDE} pixels a side")
            im = im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            return np.asarray(im, np.uint8)
    except SurveyError:
        raise
    except FileNotFoundError:
        raise _err(path, "image file is missing") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise _err(path, f"unreadable image ({e.__class__.__name__})") from None


def _load_folder(root: Path, catalog: Path, class_names: list[str] | None) -> Survey:
    cat = _read_catalog(catalog)
    files = [_safe_file(root, rel, catalog) for rel in cat["file_loc"]]
    labels, names, ls = _labels_from_catalog(catalog, cat, class_names)
    is_fits = [f.suffix.lower() in (".fits", ".fit", ".fz") for f in files]
    if any(is_fits) and not all(is_fits):
        raise _err(catalog, "mixes FITS and image files")
    # Check every file up front (cheaply: header only), so an unreadable file is reported at load,
    # naming the file, not in the middle of training.
    first = _read_fits(files[0]) if is_fits[0] else _read_image_file(files[0], None)
    shape = first.shape
    for f in files[1:]:
        if not f.exists():
            raise _err(f, "image file is missing")
        if not is_fits[0]:
            _verify_image(f)
    reader_one = (lambda p: _read_fits(p, shape[:2])) if is_fits[0] else (lambda p: _read_image_file(p, shape[:2]))

    def read(idx: np.ndarray) -> np.ndarray:
        return np.stack([reader_one(files[i]) for i in idx]) if len(idx) else np.zeros((0, *shape), np.uint8)

    df = pd.DataFrame({"id_str": cat["id_str"].astype(str), "label": labels, "file_loc": cat["file_loc"]})
    for k in ("ra", "dec", "redshift"):
        if k in cat.columns:
            df[k] = pd.to_numeric(cat[k], errors="coerce")
    _check_unique_ids(catalog, df)
    return Survey(root, "fits" if is_fits[0] else "folder", names, df, read, tuple(shape), ls)


def _verify_image(path: Path) -> None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as e:  # PIL raises many types for broken files
        raise _err(path, f"unreadable image ({e.__class__.__name__})") from None


def _read_fits(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A (3, H, W) g, r, z cube (or three HDUs) → (H, W, 3) uint8 by Lupton asinh, as DECaLS cutouts."""
    from astropy.io import fits
    from astropy.visualization import make_lupton_rgb

    try:
        with fits.open(path, memmap=False) as hdul:
            planes = [h.data for h in hdul if getattr(h, "data", None) is not None]
            if len(planes) == 1 and planes[0].ndim == 3:
                cube = np.asarray(planes[0], float)
            elif len(planes) == 3 and all(p.ndim == 2 for p in planes):
                cube = np.stack([np.asarray(p, float) for p in planes])
            else:
                shapes = [p.shape for p in planes]
                raise _err(path, f"expected a (3, H, W) cube of g, r, z or three 2-D HDUs, found {shapes}")
    except SurveyError:
        raise
    except FileNotFoundError:
        raise _err(path, "FITS file is missing") from None
    except (OSError, ValueError, TypeError) as e:
        raise _err(path, f"unreadable FITS file ({str(e).splitlines()[0]})") from None
    if cube.shape[0] != 3:
        raise _err(path, f"FITS cube has {cube.shape[0]} bands; expected 3 (g, r, z)")
    cube = np.nan_to_num(cube)
    g, r, z = cube
    noise = np.median(np.abs(r - np.median(r))) * 1.4826 or 1.0  # robust sky sigma
    rgb = make_lupton_rgb(z / noise, r / noise, g / noise, minimum=-0.5, stretch=12, Q=8)
    if size is not None and rgb.shape[:2] != tuple(size):
        from PIL import Image
        rgb = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR))
    return rgb


# --- entry point -----------------------------------------------------------------------------------

def load_survey(path: str | os.PathLike, class_names: list[str] | None = None) -> Survey:
    """Open any supported survey (see the module docstring) as a :class:`Survey`.

    ``class_names`` names the classes of a folder survey whose catalog has integer labels.
    Raises :class:`SurveyError` ("<file>: <problem>") for anything it cannot read.
    """
    path = Path(path)
    if not path.exists():
        raise _err(path, "no such file or folder")
    if path.is_dir():
        mnist = [path / "train_dataset.hdf5", path / "test_dataset.hdf5"]
        present = [p for p in mnist if p.exists()]
        if present:
            return _load_galaxy_mnist(present, path)
        catalog = path / "catalog.csv"
        if catalog.exists():
            return _load_folder(path, catalog, class_names)
        fits_files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".fits", ".fit", ".fz"))
        if fits_files:
            return _load_fits_folder(path, fits_files)
        raise _err(path, "folder has no train_dataset.hdf5 / test_dataset.hdf5, no catalog.csv and no FITS files")
    if path.suffix.lower() == ".csv":
        return _load_folder(path.parent, path, class_names)
    if path.name in ("train_dataset.hdf5", "test_dataset.hdf5"):
        return _load_galaxy_mnist([path], path.parent)
    if path.suffix.lower() in (".fits", ".fit", ".fz"):
        return _load_fits_folder(path.parent, [path])
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise _err(path, "a single image is not a survey; put images in a folder with a catalog.csv")
    return _load_galaxy10_h5(path)


def _load_fits_folder(root: Path, files: list[Path]) -> Survey:
    first = _read_fits(files[0])
    df = pd.DataFrame({"id_str": [f.stem for f in files], "label": UNLABELLED,
                       "file_loc": [str(f.relative_to(root)) for f in files]})
    _check_unique_ids(root, df)

    def read(idx):
        return np.stack([_read_fits(files[i], first.shape[:2]) for i in idx])

    return Survey(root, "fits", [], df, read, first.shape, None)


def stratified_split(labels: np.ndarray, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random stratified split (paper A.1: 80/20): returns sorted ``(train_idx, test_idx)``.

    Unlabelled galaxies (-1) go to neither part. Classes with a single galaxy go to train.

    >>> tr, te = stratified_split(np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]), 0.2, seed=0)
    >>> len(tr), len(te)
    (8, 2)
    """
    labels = np.asarray(labels)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_size)) if len(idx) > 1 else 0
        n_test = min(max(n_test, 1 if len(idx) > 1 else 0), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(train), cat(test)


def survey_summary(survey: Survey) -> dict:
    """What ``galaxalign info`` prints: count, image shape, kind, class counts."""
    return {"path": str(survey.path), "kind": survey.kind, "galaxies": len(survey),
            "image_shape": list(survey.image_shape), "label_set": survey.label_set.name if survey.label_set else None,
            "classes": survey.class_counts()}
