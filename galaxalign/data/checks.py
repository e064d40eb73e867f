"""What every reader checks, once: HDF5 opening and lazy reading, image arrays, labels, splits, unique ids."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..taxonomy import GALAXY10, GALAXY_MNIST, LabelSet
from .survey import MAX_IMAGE_SIDE, SurveyError, UNLABELLED, error


def h5_reader(path: Path, key: str, offsets: list[tuple[Path, int]] | None = None):
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
                raise error(fpath, f"cannot read images ({e})") from None
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


def open_h5(path: Path):

    if not path.exists():
        raise error(path, "no such file")
    if path.stat().st_size == 0:
        raise error(path, "the file is empty")
    try:
        if not h5py.is_hdf5(path):
            raise error(path, "not an HDF5 file")
        return h5py.File(path, "r")
    except SurveyError:
        raise
    except OSError as e:
        raise error(path, f"truncated or corrupt HDF5 file ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None


RAW_DTYPES = (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64)


MAX_BANDS = 16


def check_images(path: Path, ds, key: str = "images", rgb_only: bool = False) -> tuple[int, ...]:
    if not hasattr(ds, "ndim") or not hasattr(ds, "dtype"):
        raise error(path, f"'{key}' is a group, not an image array")
    if rgb_only and (ds.ndim != 4 or ds.shape[-1] != 3):
        raise error(path, f"'{key}' has shape {ds.shape}; expected (N, H, W, 3)")
    if ds.ndim not in (3, 4) or (ds.ndim == 4 and not 1 <= ds.shape[-1] <= MAX_BANDS):
        raise error(path, f"'{key}' has shape {ds.shape}; expected (N, H, W, 3) RGB, (N, H, W) one band or "
                         f"(N, H, W, bands) with up to {MAX_BANDS} bands")
    if ds.dtype not in RAW_DTYPES or (rgb_only and ds.dtype != np.uint8):
        raise error(path, f"'{key}' has dtype {ds.dtype}; expected uint8"
                         + ("" if rgb_only else " (RGB) or uint16/int16/int32/float32/float64 (flux)"))
    if ds.shape[0] == 0:
        raise error(path, "the survey is empty (0 images)")
    if not (8 <= ds.shape[1] <= MAX_IMAGE_SIDE and 8 <= ds.shape[2] <= MAX_IMAGE_SIDE):
        raise error(path, f"image size {ds.shape[1]}×{ds.shape[2]} is outside 8–{MAX_IMAGE_SIDE} pixels")
    try:  # touch the first and last image: a truncated file fails here, not mid-training
        ds[0]
        ds[ds.shape[0] - 1]
    except (OSError, ValueError) as e:
        raise error(path, f"truncated or corrupt image data ({e})") from None
    return tuple(int(x) for x in ds.shape[1:])


def check_labels(path: Path, labels: np.ndarray, n_classes: int, n: int, key: str) -> np.ndarray:
    if labels.ndim != 1 or len(labels) != n:
        raise error(path, f"'{key}' has shape {labels.shape}; expected ({n},) to match the images")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise error(path, f"'{key}' has dtype {labels.dtype}; expected integer class indices")
    labels = labels.astype(np.int64)
    bad = (labels < UNLABELLED) | (labels >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise error(path, f"label {labels[i]} at index {i} is out of range 0–{n_classes - 1} "
                         f"({int(bad.sum())} such labels)")
    return labels


SPLITS = ("train", "valid", "test")


def check_split(path, split) -> None:
    bad = sorted(set(map(str, split)) - set(SPLITS) - {""})
    if bad:
        raise error(path, f"split value {bad[0]!r} is not one of {', '.join(SPLITS)}")


def check_unique_ids(path: Path, df: pd.DataFrame) -> None:
    dup = df["id_str"].duplicated()
    if dup.any():
        raise error(path, f"id_str {df['id_str'][dup].iloc[0]!r} appears more than once")


def label_set_for(names: list[str]) -> LabelSet | None:
    for ls in (GALAXY10, GALAXY_MNIST):
        if names == ls.class_names:
            return ls
    return None
