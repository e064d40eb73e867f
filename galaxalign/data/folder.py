"""Readers: a folder of images with a ``catalog.csv``, and FITS cut-outs (a folder of ``.fits`` files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from ..taxonomy import GALAXY10, GALAXY_MNIST
from .checks import check_labels, check_split, check_unique_ids, label_set_for
from .survey import MAX_IMAGE_SIDE, Survey, SurveyError, UNLABELLED, error


def read_catalog(path: Path, required=("id_str", "file_loc")) -> pd.DataFrame:
    try:
        cat = pd.read_csv(path, dtype={"id_str": str, "file_loc": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise error(path, f"cannot parse the catalog ({str(e).splitlines()[0]})") from None
    missing = [c for c in required if c not in cat.columns]
    if missing:
        raise error(path, f"catalog lacks column(s) {', '.join(missing)} (has: {', '.join(cat.columns)})")
    if cat.empty:
        raise error(path, "the survey is empty (the catalog has no rows)")
    return cat


def labels_from_catalog(path: Path, cat: pd.DataFrame, class_names: list[str] | None):
    """Labels as indices plus class names: from names (sorted, or matched to a known label set) or
    from integer indices (named by the matching label set, or "class 0"…)."""
    if "label" not in cat.columns:
        return np.full(len(cat), UNLABELLED), class_names or [], None
    raw = cat["label"]
    if pd.api.types.is_numeric_dtype(raw):
        filled = raw.fillna(UNLABELLED)
        if not np.all(filled == np.round(filled)):
            raise error(path, "label column holds non-integer numbers")
        labels = filled.to_numpy(np.int64)
        hi = int(labels.max()) if len(labels) else -1
        present = set(labels[labels >= 0].tolist())
        missing = sorted(set(range(hi + 1)) - present)
        if class_names is None and hi >= len(GALAXY10) and missing:
            # integer classes with a hole are a typo far more often than a class nobody has: name the row
            row = int(np.flatnonzero(labels == hi)[0])
            raise error(path, f"row {row + 1}: label {hi} leaves classes {missing[0]}–{missing[-1]} with no galaxy "
                             "(integer labels run 0…K-1; give class names for anything else)")
        if class_names is None and hi < len(GALAXY10):
            class_names = GALAXY10.class_names  # integer labels default to Galaxy10 indices
        names = class_names or [f"class {i}" for i in range(hi + 1)]
        return check_labels(path, labels, len(names), len(cat), "label"), names, label_set_for(names)
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
        raise error(path, f"label {unknown[0]!r} is not one of the classes {class_names}")
    return np.asarray([lookup[t] if t else UNLABELLED for t in text], np.int64), class_names, label_set_for(class_names)


def safe_file(root: Path, rel: str, catalog: Path) -> Path:
    """Resolve a catalog path inside ``root``; refuse absolute paths and ``..`` escapes."""
    if not isinstance(rel, str) or not rel.strip():
        raise error(catalog, "a row has an empty file_loc")
    p = (root / rel).resolve()
    if root.resolve() not in p.parents:
        raise error(catalog, f"file_loc {rel!r} points outside the survey folder")
    return p


GREY_MODES = ("L", "I;16", "I;16B", "I;16L", "I", "F")


def read_image_file(path: Path, size: tuple[int, int] | None, grey: bool = False) -> np.ndarray:
    """One image file → (H, W, 3) uint8, or (H, W) of its own depth when ``grey`` (a one-band survey)."""
    try:
        with Image.open(path) as im:
            if im.width > MAX_IMAGE_SIDE or im.height > MAX_IMAGE_SIDE:
                raise error(path, f"image is {im.width}×{im.height}, larger than {MAX_IMAGE_SIDE} pixels a side")
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
        raise error(path, "image file is missing") from None
    except Image.DecompressionBombError:
        raise error(path, f"image is larger than {MAX_IMAGE_SIDE} pixels a side") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise error(path, f"unreadable image ({e.__class__.__name__})") from None


def is_grey(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return im.mode in GREY_MODES
    except Exception:  # reported with the file's name by the reader
        return False


def load_folder(root: Path, catalog: Path, class_names: list[str] | None) -> Survey:
    cat = read_catalog(catalog)
    files = [safe_file(root, rel, catalog) for rel in cat["file_loc"]]
    labels, names, ls = labels_from_catalog(catalog, cat, class_names)
    is_fits = [f.suffix.lower() in (".fits", ".fit", ".fz") for f in files]
    if any(is_fits) and not all(is_fits):
        raise error(catalog, "mixes FITS and image files")
    # Check every file up front (cheaply: header only), so an unreadable file is reported at load,
    # naming the file, not in the middle of training.
    grey = not is_fits[0] and is_grey(files[0])
    first = read_fits(files[0]) if is_fits[0] else read_image_file(files[0], None, grey)
    shape = first.shape
    for f in files[1:]:
        if not f.exists():
            raise error(f, "image file is missing")
        if not is_fits[0]:
            verify_image(f)
    reader_one = (lambda p: read_fits(p, shape[:2])) if is_fits[0] else (lambda p: read_image_file(p, shape[:2], grey))

    def read(idx: np.ndarray) -> np.ndarray:
        return np.stack([reader_one(files[i]) for i in idx]) if len(idx) else np.zeros((0, *shape), first.dtype)

    read.dtype = first.dtype
    df = pd.DataFrame({"id_str": cat["id_str"].astype(str), "label": labels, "file_loc": cat["file_loc"]})
    for k in ("ra", "dec", "redshift", "x", "y"):
        if k in cat.columns:
            df[k] = pd.to_numeric(cat[k], errors="coerce")
    if "split" in cat.columns:
        df["split"] = cat["split"].fillna("").astype(str).str.strip().str.lower()
        check_split(catalog, df["split"])
    check_unique_ids(catalog, df)
    return Survey(root, "fits" if is_fits[0] else "folder", names, df, read, tuple(shape), ls)


def verify_image(path: Path) -> None:
    try:
        with Image.open(path) as im:
            im.verify()
    except Image.DecompressionBombError:
        raise error(path, f"image is larger than {MAX_IMAGE_SIDE} pixels a side") from None
    except Exception as e:  # PIL raises many types for broken files
        raise error(path, f"unreadable image ({e.__class__.__name__})") from None


def read_fits(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
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
                raise error(path, f"expected a (3, H, W) cube of g, r, z or three 2-D HDUs, found {shapes}")
    except SurveyError:
        raise
    except FileNotFoundError:
        raise error(path, "FITS file is missing") from None
    except (OSError, ValueError, TypeError) as e:
        raise error(path, f"unreadable FITS file ({str(e).splitlines()[0]})") from None
    if cube.shape[0] != 3:
        raise error(path, f"FITS cube has {cube.shape[0]} bands; expected 3 (g, r, z)")
    if not np.isfinite(cube).any():
        raise error(path, "no finite pixel: every value is NaN or infinite (a blank or masked cut-out)")
    cube = np.nan_to_num(cube, nan=0.0, posinf=0.0, neginf=0.0)
    g, r, z = cube
    noise = np.median(np.abs(r - np.median(r))) * 1.4826 or 1.0  # robust sky sigma
    rgb = make_lupton_rgb(z / noise, r / noise, g / noise, minimum=-0.5, stretch=12, Q=8)
    if size is not None and rgb.shape[:2] != tuple(size):
        rgb = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR))
    return rgb


def load_fits_folder(root: Path, files: list[Path]) -> Survey:
    first = read_fits(files[0])
    df = pd.DataFrame({"id_str": [f.stem for f in files], "label": UNLABELLED,
                       "file_loc": [str(f.relative_to(root)) for f in files]})
    check_unique_ids(root, df)

    def read(idx):
        return np.stack([read_fits(files[i], first.shape[:2]) for i in idx])

    return Survey(root, "fits", [], df, read, first.shape, None)
