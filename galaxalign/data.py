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

import importlib.util
import io
import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .errors import GalaxalignError
from .fsutil import atomic_path
from .prepare import Preparation
from .taxonomy import FIRST, GALAXY10, GALAXY_MNIST, LABEL_SETS, LabelSet, get_label_set

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
    raw_shape: tuple[int, ...] = (0, 0, 3)
    label_set: LabelSet | None = None
    preparation: Preparation | None = None

    def __len__(self) -> int:
        return len(self.catalog)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one prepared image (what :meth:`images` returns)."""
        if self.preparation is None:
            return (self.raw_shape[0], self.raw_shape[1], 3)
        return self.preparation.output_shape(self.raw_shape)

    @property
    def has_split(self) -> bool:
        """Whether the survey carries its own train / valid / test split (a ``split`` column)."""
        return "split" in self.catalog.columns and bool(self.catalog["split"].isin(["train"]).any())

    def split_indices(self, part: str) -> np.ndarray:
        """Indices of the galaxies in ``part`` (``train``, ``valid`` or ``test``) of the fixed split."""
        if "split" not in self.catalog.columns:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.catalog["split"].to_numpy(str) == part)

    def with_preparation(self, prep: Preparation | None) -> "Survey":
        """The same survey seen through ``prep`` (checked against the raw images first)."""
        if prep is not None:
            prep.check(self.raw_shape, str(self.path))
        elif not _display_ready(self.raw_shape, self._raw_dtype()):
            prep = Preparation(stretch="linear")
        return replace(self, preparation=prep)

    def _raw_dtype(self):
        return np.dtype(getattr(self._reader, "dtype", np.uint8))

    def raw_images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Raw pixels at ``indices``: (n, H, W) or (n, H, W, bands), the file's dtype."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: index out of range 0..{len(self) - 1}")
        return self._reader(idx)

    def centres(self, idx: np.ndarray) -> np.ndarray | None:
        if self.preparation is None or self.preparation.centre != "catalog":
            return None
        if not {"x", "y"} <= set(self.catalog.columns):
            raise SurveyError(f"{self.path}: centre 'catalog' needs x and y columns (pixels) in the catalog")
        return self.catalog[["x", "y"]].to_numpy(float)[idx]

    @property
    def labels(self) -> np.ndarray:
        return self.catalog["label"].to_numpy(np.int64)

    @property
    def id_str(self) -> np.ndarray:
        return self.catalog["id_str"].to_numpy(str)

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 prepared images at ``indices`` (any order, repeats allowed): the survey's
        :class:`~galaxalign.prepare.Preparation` applied to the raw pixels. Training, embedding,
        queries and the app all read images through here."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        raw = self.raw_images(idx)
        if self.preparation is None:
            return raw
        return self.preparation.apply(raw, self.centres(idx))

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


def _display_ready(shape: tuple[int, ...], dtype) -> bool:
    return len(shape) == 3 and shape[2] == 3 and np.dtype(dtype) == np.uint8


def _err(path, problem: str) -> SurveyError:
    return SurveyError(f"{path}: {problem}")


# --- HDF5 ------------------------------------------------------------------------------------------

def _h5_reader(path: Path, key: str, offsets: list[tuple[Path, int]] | None = None):
    """Read images by index from one or more HDF5 files; opens the file per call, so a Survey can be
    shared between threads (Streamlit sessions) without sharing an h5py handle."""

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

    try:
        with h5py.File(files[0][0], "r") as f:
            read.dtype = f[key].dtype
    except (OSError, KeyError):
        read.dtype = np.uint8
    return read


def _open_h5(path: Path):

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


RAW_DTYPES = (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64)
MAX_BANDS = 16


def _check_images(path: Path, ds, key: str = "images", rgb_only: bool = False) -> tuple[int, ...]:
    if not hasattr(ds, "ndim") or not hasattr(ds, "dtype"):
        raise _err(path, f"'{key}' is a group, not an image array")
    if rgb_only and (ds.ndim != 4 or ds.shape[-1] != 3):
        raise _err(path, f"'{key}' has shape {ds.shape}; expected (N, H, W, 3)")
    if ds.ndim not in (3, 4) or (ds.ndim == 4 and not 1 <= ds.shape[-1] <= MAX_BANDS):
        raise _err(path, f"'{key}' has shape {ds.shape}; expected (N, H, W, 3) RGB, (N, H, W) one band or "
                         f"(N, H, W, bands) with up to {MAX_BANDS} bands")
    if ds.dtype not in RAW_DTYPES or (rgb_only and ds.dtype != np.uint8):
        raise _err(path, f"'{key}' has dtype {ds.dtype}; expected uint8"
                         + ("" if rgb_only else " (RGB) or uint16/int16/int32/float32/float64 (flux)"))
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
        first = "images" not in f and _is_first_h5(f)
    if first:  # the firstgalaxydata layout: one group per source
        return _load_first_h5(path)
    with _open_h5(path) as f:
        if "images" not in f:
            raise _err(path, f"missing key 'images' (keys: {', '.join(f.keys()) or 'none'})")
        shape = _check_images(path, f["images"])
        n = f["images"].shape[0]
        label_key = "ans" if "ans" in f else "labels" if "labels" in f else None
        names = GALAXY10.class_names
        label_set: LabelSet | None = GALAXY10
        if "class_names" in f.attrs:
            try:
                names = json.loads(f.attrs["class_names"])
            except (json.JSONDecodeError, TypeError):
                raise _err(path, "attribute 'class_names' is not a JSON list of names") from None
            if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
                raise _err(path, "attribute 'class_names' must be a JSON list of class names")
            label_set = _label_set_for(names)
            named = f.attrs.get("label_set")
            if isinstance(named, bytes):
                named = named.decode()
            if isinstance(named, str) and named in LABEL_SETS and LABEL_SETS[named].class_names == names:
                label_set = LABEL_SETS[named]
        if label_key is None:
            labels = np.full(n, UNLABELLED)
        else:
            if not isinstance(f[label_key], h5py.Dataset):
                raise _err(path, f"'{label_key}' is a group, not an array of class indices")
            labels = _check_labels(path, f[label_key][()], len(names), n, label_key)
        cat = {"label": labels}
        for k in ("ra", "dec", "redshift", "pxscale"):
            if k in f:
                v = f[k][()]
                if v.shape != (n,):
                    raise _err(path, f"'{k}' has shape {v.shape}; expected ({n},)")
                cat[k] = v.astype(float)
        for k in ("split", "source"):
            if k in f:
                v = np.asarray([x.decode() if isinstance(x, bytes) else str(x) for x in f[k][()]])
                if v.shape != (n,):
                    raise _err(path, f"'{k}' has shape {v.shape}; expected ({n},)")
                cat[k] = v
        if "split" in cat:
            _check_split(path, cat["split"])
        if "id_str" in f:
            ids = [x.decode() if isinstance(x, bytes) else str(x) for x in f["id_str"][()]]
        else:
            ids = [f"{path.stem}-{i:06d}" for i in range(n)]
    df = pd.DataFrame({"id_str": ids, **cat})
    _check_unique_ids(path, df)
    return Survey(path, "galaxy10_h5", names, df, _h5_reader(path, "images"), shape, label_set)


SPLITS = ("train", "valid", "test")


def _check_split(path, split) -> None:
    bad = sorted(set(map(str, split)) - set(SPLITS) - {""})
    if bad:
        raise _err(path, f"split value {bad[0]!r} is not one of {', '.join(SPLITS)}")


def _load_galaxy_mnist(paths: list[Path], root: Path) -> Survey:
    offsets, labels, ids, split, shape = [], [], [], [], None
    total = 0
    for p in paths:
        with _open_h5(p) as f:
            for key in ("images", "labels"):
                if key not in f:
                    raise _err(p, f"missing key '{key}' (keys: {', '.join(f.keys()) or 'none'})")
            s = _check_images(p, f["images"], rgb_only=True)
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
        present = set(labels[labels >= 0].tolist())
        missing = sorted(set(range(hi + 1)) - present)
        if class_names is None and hi >= len(GALAXY10) and missing:
            # integer classes with a hole are a typo far more often than a class nobody has: name the row
            row = int(np.flatnonzero(labels == hi)[0])
            raise _err(path, f"row {row + 1}: label {hi} leaves classes {missing[0]}–{missing[-1]} with no galaxy "
                             "(integer labels run 0…K-1; give class names for anything else)")
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


GREY_MODES = ("L", "I;16", "I;16B", "I;16L", "I", "F")


def _read_image_file(path: Path, size: tuple[int, int] | None, grey: bool = False) -> np.ndarray:
    """One image file → (H, W, 3) uint8, or (H, W) of its own depth when ``grey`` (a one-band survey)."""
    try:
        with Image.open(path) as im:
            if im.width > MAX_IMAGE_SIDE or im.height > MAX_IMAGE_SIDE:
                raise _err(path, f"image is {im.width}×{im.height}, larger than {MAX_IMAGE_SIDE} pixels a side")
            if grey:
                im = im if im.mode in GREY_MODES else im.convert("L")
                if size is not None and im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.BILINEAR)
                return np.asarray(im)
            im = im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            return np.asarray(im, np.uint8)
    except SurveyError:
        raise
    except FileNotFoundError:
        raise _err(path, "image file is missing") from None
    except Image.DecompressionBombError:
        raise _err(path, f"image is larger than {MAX_IMAGE_SIDE} pixels a side") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise _err(path, f"unreadable image ({e.__class__.__name__})") from None


def _is_grey(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return im.mode in GREY_MODES
    except Exception:  # reported with the file's name by the reader
        return False


def _load_folder(root: Path, catalog: Path, class_names: list[str] | None) -> Survey:
    cat = _read_catalog(catalog)
    files = [_safe_file(root, rel, catalog) for rel in cat["file_loc"]]
    labels, names, ls = _labels_from_catalog(catalog, cat, class_names)
    is_fits = [f.suffix.lower() in (".fits", ".fit", ".fz") for f in files]
    if any(is_fits) and not all(is_fits):
        raise _err(catalog, "mixes FITS and image files")
    # Check every file up front (cheaply: header only), so an unreadable file is reported at load,
    # naming the file, not in the middle of training.
    grey = not is_fits[0] and _is_grey(files[0])
    first = _read_fits(files[0]) if is_fits[0] else _read_image_file(files[0], None, grey)
    shape = first.shape
    for f in files[1:]:
        if not f.exists():
            raise _err(f, "image file is missing")
        if not is_fits[0]:
            _verify_image(f)
    reader_one = (lambda p: _read_fits(p, shape[:2])) if is_fits[0] else (lambda p: _read_image_file(p, shape[:2], grey))

    def read(idx: np.ndarray) -> np.ndarray:
        return np.stack([reader_one(files[i]) for i in idx]) if len(idx) else np.zeros((0, *shape), first.dtype)

    read.dtype = first.dtype
    df = pd.DataFrame({"id_str": cat["id_str"].astype(str), "label": labels, "file_loc": cat["file_loc"]})
    for k in ("ra", "dec", "redshift", "x", "y"):
        if k in cat.columns:
            df[k] = pd.to_numeric(cat[k], errors="coerce")
    if "split" in cat.columns:
        df["split"] = cat["split"].fillna("").astype(str).str.strip().str.lower()
        _check_split(catalog, df["split"])
    _check_unique_ids(catalog, df)
    return Survey(root, "fits" if is_fits[0] else "folder", names, df, read, tuple(shape), ls)


def _verify_image(path: Path) -> None:
    try:
        with Image.open(path) as im:
            im.verify()
    except Image.DecompressionBombError:
        raise _err(path, f"image is larger than {MAX_IMAGE_SIDE} pixels a side") from None
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
    if not np.isfinite(cube).any():
        raise _err(path, "no finite pixel: every value is NaN or infinite (a blank or masked cut-out)")
    cube = np.nan_to_num(cube, nan=0.0, posinf=0.0, neginf=0.0)
    g, r, z = cube
    noise = np.median(np.abs(r - np.median(r))) * 1.4826 or 1.0  # robust sky sigma
    rgb = make_lupton_rgb(z / noise, r / noise, g / noise, minimum=-0.5, stretch=12, Q=8)
    if size is not None and rgb.shape[:2] != tuple(size):
        rgb = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR))
    return rgb


# --- FIRST radio galaxies (the firstgalaxydata package) ---------------------------------------------

FIRST_CLASSES = FIRST.class_names  # label codes 0–3 of the package: FRI, FRII, Compact, Bent


def first_package_dir() -> Path:
    """Where the installed ``firstgalaxydata`` package keeps its zips (no download, no import of its
    module, which needs matplotlib). Raises :class:`SurveyError` saying how to install it."""
    spec = importlib.util.find_spec("firstgalaxydata")
    if spec is None or not spec.submodule_search_locations:
        raise SurveyError("firstgalaxydata: not installed; pip install 'galaxalign[first]' (or firstgalaxydata) "
                          "to use the FIRST radio galaxies")
    return Path(list(spec.submodule_search_locations)[0])


def _is_first_h5(f) -> bool:
    keys = list(f.keys())[:3]
    return bool(keys) and all(k.startswith("data_") and "Img" in f[k] for k in keys)


def _load_first_h5(path: Path, opener=None) -> Survey:
    """The package's own HDF5 (``galaxy_data_h5.h5``: one group ``data_<k>`` per source with ``Img``
    (300×300 uint8, attributes RA, DEC, Source), ``Label_literature``, ``Split_literature``)."""

    opener = opener or (lambda: h5py.File(path, "r"))
    try:
        with opener() as f:
            keys = sorted(f.keys(), key=lambda k: int(k.split("_")[1]) if k.split("_")[-1].isdigit() else 0)
            rows, shape = [], None
            for k in keys:
                g = f[k]
                if "Img" not in g or "Label_literature" not in g:
                    raise _err(path, f"group {k!r} lacks Img or Label_literature")
                img = g["Img"]
                if shape is None:
                    shape = _check_images(path, _Stack(img), f"{k}/Img")
                elif img.shape != shape:
                    raise _err(path, f"'{k}/Img' has shape {img.shape}; expected {shape} like the first image")
                split = g["Split_literature"][()] if "Split_literature" in g else b""
                split = split.decode() if isinstance(split, bytes) else str(split)
                lab = float(g["Label_literature"][()])
                a = img.attrs
                fp = a.get("Filepath_literature", "")
                stem = Path(fp.decode() if isinstance(fp, bytes) else str(fp)).stem
                rows.append({"id_str": f"FIRST-{stem or k}", "key": k, "label": int(lab) if np.isfinite(lab) else -1,
                             "ra": float(a.get("RA", np.nan)), "dec": float(a.get("DEC", np.nan)),
                             "source": str(a.get("Source", "")), "split": split})
            images = np.stack([f[r["key"]]["Img"][()] for r in rows])
    except SurveyError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise _err(path, f"not a readable FIRST galaxy file ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None
    if not rows:
        raise _err(path, "the survey is empty (no data_* groups)")
    df = pd.DataFrame(rows).drop(columns="key")
    df["label"] = _check_labels(path, df["label"].to_numpy(), len(FIRST_CLASSES), len(df), "Label_literature")
    _check_split(path, df["split"])
    _check_unique_ids(path, df)
    return Survey(path, "first", FIRST_CLASSES, df, _memory_reader(images), images.shape[1:], FIRST)


class _Stack:
    """A one-image dataset seen as a stack of one, for :func:`_check_images`."""

    def __init__(self, ds):
        self.ds, self.dtype = ds, ds.dtype
        self.shape = (1, *ds.shape)
        self.ndim = ds.ndim + 1

    def __getitem__(self, i):
        return self.ds[()]


def _memory_reader(images: np.ndarray):
    def read(idx: np.ndarray) -> np.ndarray:
        return images[idx]

    read.dtype = images.dtype
    return read


def _load_first_zip(path: Path) -> Survey:
    """The package's zips: ``galaxy_data_h5.zip`` (the HDF5 inside, read without unpacking to disk)
    or ``galaxy_data.zip`` (PNGs under ``galaxy_data/<split>/<class>/<ra>_<dec>_<label>_<source>.png``)."""

    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise _err(path, f"not a valid zip file ({e.__class__.__name__})") from None
    with z:
        names = z.namelist()
        h5 = [n for n in names if n.endswith((".h5", ".hdf5"))]
        try:
            if h5:
                info = z.getinfo(h5[0])
                if info.file_size > 2 << 30:
                    raise _err(path, f"{h5[0]} unpacks to more than 2 GiB")
                data = io.BytesIO(z.read(h5[0]))
                return _load_first_h5(path, lambda: h5py.File(data, "r"))
            return _load_first_png_zip(path, z, names)
        except zipfile.BadZipFile as e:  # a member that fails its CRC check
            raise _err(path, f"damaged zip file ({str(e).splitlines()[0][:120]})") from None


def _load_first_png_zip(path: Path, z, names: list[str]) -> Survey:
    rows, images = [], []
    for n in sorted(names):
        parts = n.split("/")
        if not n.lower().endswith(".png") or len(parts) < 3 or parts[-3] not in SPLITS:
            continue  # the package also ships every image again under all/
        cls = parts[-2]
        if cls not in FIRST_CLASSES:
            raise _err(path, f"{n}: class folder {cls!r} is not one of {', '.join(FIRST_CLASSES)}")
        stem = Path(n).stem
        bits = stem.split("_")
        try:
            ra, dec = float(bits[0]), float(bits[1])
        except (ValueError, IndexError):
            ra = dec = np.nan
        try:
            with z.open(n) as fh, Image.open(fh) as im:
                if im.width > MAX_IMAGE_SIDE or im.height > MAX_IMAGE_SIDE:
                    raise _err(path, f"{n}: image is larger than {MAX_IMAGE_SIDE} pixels a side")
                images.append(np.asarray(im.convert("L")))
        except SurveyError:
            raise
        except Exception as e:  # PIL raises many types for broken files
            raise _err(path, f"{n}: unreadable image ({e.__class__.__name__})") from None
        if images[-1].shape != images[0].shape:
            raise _err(path, f"{n}: image is {images[-1].shape}, the first was {images[0].shape}")
        rows.append({"id_str": f"FIRST-{stem}", "label": FIRST_CLASSES.index(cls), "ra": ra, "dec": dec,
                     "source": bits[-1] if len(bits) > 3 else "", "split": parts[-3]})
    if not rows:
        raise _err(path, "no FIRST images under <split>/<class>/ and no HDF5 file in the zip")
    df = pd.DataFrame(rows)
    _check_unique_ids(path, df)
    stack = np.stack(images)
    return Survey(path, "first", FIRST_CLASSES, df, _memory_reader(stack), stack.shape[1:], FIRST)


def write_survey_h5(survey: Survey, out: str | os.PathLike, progress: bool = False, chunk: int = 512) -> Path:
    """Write any survey's raw images and catalog as one compressed HDF5 in our schema (``images``,
    ``ans``, ``ra``, ``dec``, ``split``, ``source``, ``id_str``; attributes ``class_names`` and
    ``label_set``), streamed ``chunk`` galaxies at a time, to a temporary name then renamed."""
    out = Path(out)
    n = len(survey)
    first = survey.raw_images([0])
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset("images", shape=(n, *first.shape[1:]), dtype=first.dtype,
                              chunks=(1, *first.shape[1:]), compression="gzip", compression_opts=4, shuffle=True)
        for s in tqdm(range(0, n, chunk), desc=f"writing {out.name}", unit="chunk", disable=not progress):
            ds[s:s + chunk] = survey.raw_images(np.arange(s, min(n, s + chunk)))
        cat = survey.catalog
        f["ans"] = cat["label"].to_numpy(np.int64)
        for k in ("ra", "dec", "redshift"):
            if k in cat:
                f[k] = cat[k].to_numpy(float)
        for k in ("split", "source", "id_str"):
            if k in cat:
                f[k] = np.asarray(cat[k].astype(str).to_numpy(), dtype=h5py.string_dtype())
        f.attrs["class_names"] = json.dumps(list(survey.class_names))
        if survey.label_set is not None:
            f.attrs["label_set"] = survey.label_set.name
    return out


# --- entry point -----------------------------------------------------------------------------------

def load_survey(path: str | os.PathLike, class_names: list[str] | None = None,
                label_set: LabelSet | str | os.PathLike | None = None,
                preparation: Preparation | dict | None = None) -> Survey:
    """Open any supported survey (see the module docstring) as a :class:`Survey`.

    ``class_names`` names the classes of a folder survey whose catalog has integer labels;
    ``label_set`` (a :class:`LabelSet`, a built-in name or a YAML file) gives its classes their
    prompts and symbols — the survey's class names must be among its classes. ``preparation`` is how
    raw pixels become pictures (:mod:`galaxalign.prepare`); without one, 8-bit RGB images are used as
    they are and anything else gets a linear stretch to grey or RGB.
    Raises :class:`SurveyError` ("<file>: <problem>") for anything it cannot read.
    """
    survey = _open_survey(Path(path), class_names)
    if label_set is not None:
        survey = _with_label_set(survey, label_set)
    if isinstance(preparation, dict):
        preparation = Preparation.from_dict(preparation)
    return survey.with_preparation(preparation)


def _with_label_set(survey: Survey, label_set) -> Survey:
    ls = label_set if isinstance(label_set, LabelSet) else get_label_set(str(label_set))
    if survey.label_set is ls:
        return survey
    lookup = {n.lower(): c.index for c in ls for n in (c.name, c.slug)}
    missing = [n for n in survey.class_names if n.lower() not in lookup]
    if missing:
        raise _err(survey.path, f"class {missing[0]!r} is not in label set {ls.name!r} ({', '.join(ls.class_names)})")
    remap = np.array([lookup[n.lower()] for n in survey.class_names] or [0], np.int64)
    cat = survey.catalog.copy()
    lab = cat["label"].to_numpy(np.int64)
    cat["label"] = np.where(lab >= 0, remap[np.maximum(lab, 0)], UNLABELLED)
    return replace(survey, class_names=ls.class_names, catalog=cat, label_set=ls)


def _open_survey(path: Path, class_names: list[str] | None) -> Survey:
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
    if path.suffix.lower() == ".zip":
        return _load_first_zip(path)
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
            "image_shape": list(survey.image_shape), "raw_shape": list(survey.raw_shape),
            "raw_dtype": str(survey._raw_dtype()),
            "label_set": survey.label_set.name if survey.label_set else None,
            "split": ({k: int(v) for k, v in survey.catalog["split"].value_counts().items()} if survey.has_split else None),
            "classes": survey.class_counts()}
