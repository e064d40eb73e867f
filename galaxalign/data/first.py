"""Readers: the FIRST radio galaxies of the ``firstgalaxydata`` package (its HDF5 layout, its ZIP, PNG ZIPs)."""
from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from PIL import Image

from ..taxonomy import FIRST
from .checks import SPLITS, check_images, check_labels, check_split, check_unique_ids
from .survey import MAX_IMAGE_SIDE, Survey, SurveyError, error


FIRST_CLASSES = FIRST.class_names  # label codes 0–3 of the package: FRI, FRII, Compact, Bent


def first_package_dir() -> Path:
    """Where the installed ``firstgalaxydata`` package keeps its zips (no download, no import of its
    module, which needs matplotlib). Raises :class:`SurveyError` saying how to install it."""
    spec = importlib.util.find_spec("firstgalaxydata")
    if spec is None or not spec.submodule_search_locations:
        raise SurveyError("firstgalaxydata: not installed; pip install 'galaxalign[first]' (or firstgalaxydata) "
                          "to use the FIRST radio galaxies")
    return Path(list(spec.submodule_search_locations)[0])


def is_first_h5(f) -> bool:
    keys = list(f.keys())[:3]
    return bool(keys) and all(k.startswith("data_") and "Img" in f[k] for k in keys)


def load_first_h5(path: Path, opener=None) -> Survey:
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
                    raise error(path, f"group {k!r} lacks Img or Label_literature")
                img = g["Img"]
                if shape is None:
                    shape = check_images(path, _Stack(img), f"{k}/Img")
                elif img.shape != shape:
                    raise error(path, f"'{k}/Img' has shape {img.shape}; expected {shape} like the first image")
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
        raise error(path, f"not a readable FIRST galaxy file ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None
    if not rows:
        raise error(path, "the survey is empty (no data_* groups)")
    df = pd.DataFrame(rows).drop(columns="key")
    df["label"] = check_labels(path, df["label"].to_numpy(), len(FIRST_CLASSES), len(df), "Label_literature")
    check_split(path, df["split"])
    check_unique_ids(path, df)
    return Survey(path, "first", FIRST_CLASSES, df, memory_reader(images), images.shape[1:], FIRST)


class _Stack:
    """A one-image dataset seen as a stack of one, for :func:`check_images`."""

    def __init__(self, ds):
        self.ds, self.dtype = ds, ds.dtype
        self.shape = (1, *ds.shape)
        self.ndim = ds.ndim + 1

    def __getitem__(self, i):
        return self.ds[()]


def memory_reader(images: np.ndarray):
    def read(idx: np.ndarray) -> np.ndarray:
        return images[idx]

    read.dtype = images.dtype
    return read


def load_first_zip(path: Path) -> Survey:
    """The package's zips: ``galaxy_data_h5.zip`` (the HDF5 inside, read without unpacking to disk)
    or ``galaxy_data.zip`` (PNGs under ``galaxy_data/<split>/<class>/<ra>_<dec>_<label>_<source>.png``)."""

    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise error(path, f"not a valid zip file ({e.__class__.__name__})") from None
    with z:
        names = z.namelist()
        h5 = [n for n in names if n.endswith((".h5", ".hdf5"))]
        try:
            if h5:
                info = z.getinfo(h5[0])
                if info.file_size > 2 << 30:
                    raise error(path, f"{h5[0]} unpacks to more than 2 GiB")
                data = io.BytesIO(z.read(h5[0]))
                return load_first_h5(path, lambda: h5py.File(data, "r"))
            return load_first_png_zip(path, z, names)
        except zipfile.BadZipFile as e:  # a member that fails its CRC check
            raise error(path, f"damaged zip file ({str(e).splitlines()[0][:120]})") from None


def load_first_png_zip(path: Path, z, names: list[str]) -> Survey:
    rows, images = [], []
    for n in sorted(names):
        parts = n.split("/")
        if not n.lower().endswith(".png") or len(parts) < 3 or parts[-3] not in SPLITS:
            continue  # the package also ships every image again under all/
        cls = parts[-2]
        if cls not in FIRST_CLASSES:
            raise error(path, f"{n}: class folder {cls!r} is not one of {', '.join(FIRST_CLASSES)}")
        stem = Path(n).stem
        bits = stem.split("_")
        try:
            ra, dec = float(bits[0]), float(bits[1])
        except (ValueError, IndexError):
            ra = dec = np.nan
        try:
            with z.open(n) as fh, Image.open(fh) as im:
                if im.width > MAX_IMAGE_SIDE or im.height > MAX_IMAGE_SIDE:
                    raise error(path, f"{n}: image is larger than {MAX_IMAGE_SIDE} pixels a side")
                images.append(np.asarray(im.convert("L")))
        except SurveyError:
            raise
        except Exception as e:  # PIL raises many types for broken files
            raise error(path, f"{n}: unreadable image ({e.__class__.__name__})") from None
        if images[-1].shape != images[0].shape:
            raise error(path, f"{n}: image is {images[-1].shape}, the first was {images[0].shape}")
        rows.append({"id_str": f"FIRST-{stem}", "label": FIRST_CLASSES.index(cls), "ra": ra, "dec": dec,
                     "source": bits[-1] if len(bits) > 3 else "", "split": parts[-3]})
    if not rows:
        raise error(path, "no FIRST images under <split>/<class>/ and no HDF5 file in the zip")
    df = pd.DataFrame(rows)
    check_unique_ids(path, df)
    stack = np.stack(images)
    return Survey(path, "first", FIRST_CLASSES, df, memory_reader(stack), stack.shape[1:], FIRST)
