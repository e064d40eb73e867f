"""Telescope fields: from a FITS mosaic (one band, or one file per band, with a WCS) or a PNG/JPEG/TIFF
picture of the sky to a survey of galaxy cut-outs.

:func:`read_field` reads the bands; :func:`detect_sources` estimates the background and finds the sources
with Source Extractor's algorithms (``sep``: background mesh, matched filter, deblending), measures each
(Kron radius, flux, half-light radius, ellipticity, flags), separates stars from galaxies by size and
gives RA/Dec from the WCS when there is one; :func:`cut_out` makes one square cut-out per galaxy, sized
from its Kron radius and centred on it (neighbours optionally masked); :func:`draw_preview` draws the
field with its detections and cut-out boxes; :func:`field_survey` does all of it and writes the survey
(Galaxy10 schema, with the catalogue beside it). Thresholds are taken from the data and returned with
their reasons, as :func:`galaxalign.prepare.detect_for_survey` does for cut-outs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from .errors import GalaxalignError
from .fsutil import atomic_path

__all__ = ["Field", "FieldError", "read_field", "detect_sources", "cut_out", "draw_preview", "field_survey",
           "MAX_FIELD_SIDE", "FIELD_SUFFIXES"]

MAX_FIELD_SIDE = 16_384           # pixels on a side; a larger mosaic is cut into fields first
FITS_SUFFIXES = (".fits", ".fit", ".fts")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
FIELD_SUFFIXES = FITS_SUFFIXES + PICTURE_SUFFIXES
KRON_SCALE = 2.5                  # the Kron ellipse (Source Extractor's MAG_AUTO aperture)
MIN_CUTOUT_PIXELS = 30            # a galaxy smaller than this above the threshold is too small to classify


class FieldError(GalaxalignError):
    """A field that cannot be read or has nothing to cut out."""


@dataclass
class Field:
    """The bands of a field (H, W, B) float32, row 0 at the top as displayed; ``rgb``: the picture itself
    for a PNG/JPEG/TIFF (cut-outs are taken from it as they are); ``wcs``: astropy's celestial WCS of a
    FITS field, for pixel ``(x, y)`` in FITS order (row 0 at the bottom); ``paths``: where it came from."""
    bands: np.ndarray
    rgb: np.ndarray | None
    wcs: object | None
    paths: list[Path]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.bands.shape[0]), int(self.bands.shape[1])


def _check_side(path: Path, h: int, w: int) -> None:
    if max(h, w) > MAX_FIELD_SIDE:
        raise FieldError(f"{path}: the field is too large ({w:,}×{h:,} px); at most {MAX_FIELD_SIDE:,} px on a "
                         "side (cut a larger mosaic into fields first)")
    if min(h, w) < 32:
        raise FieldError(f"{path}: the field is {w}×{h} px; at least 32 px on a side")


def _read_fits(path: Path) -> tuple[np.ndarray, object | None]:
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning
    import warnings

    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if h.is_image and len(h.shape) in (2, 3)), None)
            if hdu is None:
                raise FieldError(f"{path}: no 2-D image (or 3-D cube of bands) in any HDU")
            _check_side(path, *hdu.shape[-2:])  # from the header, before any pixel is read
            data, header = np.asarray(hdu.data, np.float32), hdu.header
    except FieldError:
        raise
    except (OSError, ValueError, TypeError) as e:
        raise FieldError(f"{path}: not a readable FITS file ({str(e).splitlines()[0]})") from None
    if data.ndim == 3:
        data = np.moveaxis(data, 0, -1)  # (bands, H, W) → (H, W, bands)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
            wcs = wcs if wcs.has_celestial and wcs.naxis == 2 else None
        except Exception:  # noqa: BLE001 - a broken WCS is no WCS: positions stay in pixels
            wcs = None
    return data, wcs


def read_field(paths: list[str | os.PathLike]) -> Field:
    """One field from ``paths``: FITS files (one per band, or one cube) or one PNG/JPEG/TIFF picture."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise FieldError("no field images given")
    for p in paths:
        if not p.exists():
            raise FieldError(f"{p}: no such file")
        if p.suffix.lower() not in FIELD_SUFFIXES:
            raise FieldError(f"{p}: a field is FITS ({', '.join(FITS_SUFFIXES)}) or a picture "
                             f"({', '.join(PICTURE_SUFFIXES)})")
    kinds = {p.suffix.lower() in FITS_SUFFIXES for p in paths}
    if len(kinds) > 1:
        raise FieldError(f"{paths[0]}: FITS bands and pictures cannot be mixed in one field")
    if not kinds.pop():
        if len(paths) > 1:
            raise FieldError(f"{paths[1]}: one picture makes a field (its colours are its bands)")
        try:
            with Image.open(paths[0]) as im:
                w, h = im.size
                _check_side(paths[0], h, w)
                rgb = np.asarray(im.convert("RGB"))
        except FieldError:
            raise
        except Image.DecompressionBombError as e:
            raise FieldError(f"{paths[0]}: the field is too large ({str(e).splitlines()[0]}); at most "
                             f"{MAX_FIELD_SIDE:,} px on a side") from None
        except (OSError, ValueError) as e:
            raise FieldError(f"{paths[0]}: not a readable picture ({str(e).splitlines()[0]})") from None
        return Field(rgb.astype(np.float32) / 255.0, rgb, None, paths)
    planes, wcs = [], None
    for p in paths:
        data, w = _read_fits(p)
        _check_side(p, data.shape[0], data.shape[1])
        planes.append(data if data.ndim == 3 else data[..., None])
        wcs = wcs or w
    shapes = {pl.shape[:2] for pl in planes}
    if len(shapes) > 1:
        sizes = ", ".join(f"{p.name} {pl.shape[1]}×{pl.shape[0]}" for p, pl in zip(paths, planes))
        raise FieldError(f"{paths[0]}: the bands have different shapes ({sizes}); resample them onto one grid first")
    bands = np.concatenate(planes, axis=-1)[::-1]  # FITS row 0 is the bottom: shown with north up
    if not np.isfinite(bands).any():
        raise FieldError(f"{paths[0]}: no finite pixel")
    return Field(np.ascontiguousarray(np.nan_to_num(bands, nan=0.0)), None, wcs, paths)


def _detection_image(field: Field) -> np.ndarray:
    """The bands summed, each scaled by its own noise (a chi-like image): faint sources in any band count."""
    b = field.bands
    med = np.median(b, axis=(0, 1))
    mad = np.median(np.abs(b - med), axis=(0, 1)) * 1.4826
    mad = np.where(mad > 0, mad, 1.0)
    return np.ascontiguousarray(((b - med) / mad).mean(-1), dtype=np.float32)


def detect_sources(field: Field, threshold: float | None = None, min_area: int | None = None,
                   deblend_cont: float = 0.005) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """The sources of ``field``: ``(catalogue, reasons, segmentation map)``. ``threshold`` (× the
    background rms) and ``min_area`` (pixels) are detected from the data when not given."""
    import sep

    det = _detection_image(field)
    h, w = det.shape
    box = int(np.clip(min(h, w) // 8, 16, 128))
    bkg = sep.Background(det, bw=box, bh=box, fw=3, fh=3)
    sub = det - bkg.back()
    rms = float(bkg.globalrms) or float(np.std(sub)) or 1.0
    reasons = [f"background: a {box}×{box}-px mesh (an eighth of the field's shorter side, 16–128), "
               f"global rms {rms:.3g} of the noise-scaled detection image"]
    picture = field.rgb is not None
    if threshold is None:
        if picture:  # 8-bit, usually JPEG-compressed: its noise is correlated in blocks, not per pixel
            threshold = 3.0
            reasons.append("threshold 3 × rms: a picture's compressed 8-bit noise is correlated (blocks), so "
                           "Source Extractor's 1.5 × would find the compression")
        else:
            threshold = 1.5
            reasons.append("threshold 1.5 × rms (Source Extractor's default, after its 3×3 matched filter)")
    if min_area is None:
        min_area = 10 if picture else 5 if min(h, w) >= 256 else 3
        reasons.append(f"at least {min_area} connected pixels above it")
    sep.set_extract_pixstack(max(300_000, h * w // 4))
    try:
        objects, segmap = sep.extract(sub, threshold, err=rms, minarea=min_area, deblend_nthresh=32,
                                      deblend_cont=deblend_cont, segmentation_map=True)
    except Exception as e:  # noqa: BLE001 - sep raises plain Exceptions (pixel stack, object limits)
        raise FieldError(f"{field.paths[0]}: source detection failed ({e}); raise the threshold") from None
    if len(objects) == 0:
        raise FieldError(f"{field.paths[0]}: no sources found above {threshold:g} × the background rms")
    x, y = objects["x"].astype(float), objects["y"].astype(float)
    a, b, theta = objects["a"].astype(float), objects["b"].astype(float), objects["theta"].astype(float)
    a, b = np.maximum(a, 0.5), np.maximum(b, 0.5)
    # each source measured with its neighbours' pixels masked (Source Extractor's way): a bright star beside a
    # faint galaxy would otherwise inflate the galaxy's Kron radius, and with it its cut-out
    ids = np.arange(1, len(objects) + 1, dtype=np.int32)
    kron, kflag = sep.kron_radius(sub, x, y, a, b, theta, 6.0, seg_id=ids, segmap=segmap)
    kron = np.where(np.isfinite(kron) & (kron > 0), kron, 2.5)
    flux, _, fflag = sep.sum_ellipse(sub, x, y, a, b, theta, KRON_SCALE * kron, subpix=1, seg_id=ids, segmap=segmap)
    r50, rflag = sep.flux_radius(sub, x, y, 6.0 * a, 0.5, normflux=np.maximum(flux, 1e-12), subpix=5,
                                 seg_id=ids, segmap=segmap)
    r50 = np.where(np.isfinite(r50) & (r50 > 0), r50, 0.5)
    cat = pd.DataFrame({"x": x, "y": y, "a": a, "b": b, "theta": theta, "kron_radius": kron,
                        "flux": flux, "r50": r50, "ellipticity": 1 - b / a, "npix": objects["npix"].astype(int),
                        "peak": objects["peak"].astype(float),
                        "flags": objects["flag"].astype(int) | kflag.astype(int) | fflag.astype(int) | rflag.astype(int)})
    star, why = _stars(cat)
    cat["star"] = star
    reasons.append(why)
    reasons.append(f"{len(cat)} sources: {int((~star).sum())} galaxies, {int(star.sum())} stars")
    if field.wcs is not None:
        ra, dec = field.wcs.pixel_to_world_values(x, (h - 1) - y)  # back to FITS rows for the WCS
        cat["ra"], cat["dec"] = np.asarray(ra, float), np.asarray(dec, float)
    return cat.reset_index(drop=True), reasons, segmap


def _stars(cat: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Point sources: among the brighter third, the compact locus of half-light radius (its lower decile)
    is the PSF's; a source no larger than 1.2 × that, and bright enough to measure, is a star."""
    bright = cat.flux >= np.quantile(cat.flux, 2 / 3) if len(cat) >= 9 else np.ones(len(cat), bool)
    locus = float(np.quantile(cat.r50[bright], 0.1)) if bright.any() else float(cat.r50.min())
    limit = 1.2 * locus
    star = np.array((cat.r50 <= limit) & bright, dtype=bool)
    if len(cat) < 9:
        star[:] = False  # too few sources to find the stellar locus: everything is kept
        return star, "stars: too few sources to find the point-source locus; none separated"
    return star, (f"stars: half-light radius ≤ {limit:.2f} px (1.2 × the compact locus at {locus:.2f} px "
                  f"among the brightest third) and bright")


def _box_side(cat: pd.DataFrame) -> np.ndarray:
    """The cut-out's side: the square around the Kron ellipse (2 × 2.5 × r_K × a), at least 24 px."""
    return np.clip(np.ceil(2 * KRON_SCALE * cat.kron_radius.to_numpy() * cat.a.to_numpy()), 24, 1024)


def _display(field: Field) -> np.ndarray:
    """The field as 8-bit RGB for cut-outs and the preview: a picture as it is; FITS bands through an
    asinh stretch between the background and the 99.8th percentile (one band grey; 2 → (b0, mean, b1);
    3 or more: the reddest three as R, G, B)."""
    if field.rgb is not None:
        return field.rgb
    b = field.bands
    if b.shape[-1] == 1:
        b = np.repeat(b, 3, -1)
    elif b.shape[-1] == 2:
        b = np.stack([b[..., 0], b.mean(-1), b[..., 1]], -1)
    else:
        b = b[..., -3:][..., ::-1]  # e.g. g, r, z → z, r, g as R, G, B (DECaLS' order)
    lo = np.median(b, axis=(0, 1))
    hi = np.percentile(b, 99.8, axis=(0, 1))
    x = np.clip((b - lo) / np.maximum(hi - lo, 1e-12), 0, None)
    return (np.clip(np.arcsinh(10 * x) / np.arcsinh(10), 0, 1) * 255).astype(np.uint8)


def cut_out(field: Field, cat: pd.DataFrame, size: int = 64, segmap: np.ndarray | None = None,
            mask_neighbours: bool = False, picture: np.ndarray | None = None) -> np.ndarray:
    """One ``size``×``size`` RGB cut-out per row of ``cat``, centred on the source, its side from the Kron
    radius (:func:`_box_side`), padded with black beyond the field's edge; with ``mask_neighbours`` the
    pixels of other sources (the segmentation map) are set to the background."""
    disp = _display(field) if picture is None else picture
    h, w = disp.shape[:2]
    sides = _box_side(cat)
    out = np.zeros((len(cat), size, size, 3), np.uint8)
    bgval = np.median(disp.reshape(-1, 3), axis=0).astype(np.uint8)
    for i, (cx, cy, side) in enumerate(zip(cat.x.to_numpy(), cat.y.to_numpy(), sides)):
        half = side / 2
        x0, y0 = int(round(cx - half)), int(round(cy - half))
        x1, y1 = x0 + int(side), y0 + int(side)
        tile = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            patch = disp[sy0:sy1, sx0:sx1].copy()
            if mask_neighbours and segmap is not None:
                seg = segmap[sy0:sy1, sx0:sx1]
                patch[(seg > 0) & (seg != i + 1)] = bgval
            tile[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = patch
        out[i] = np.asarray(Image.fromarray(tile).resize((size, size), Image.BILINEAR))
    return out


def draw_preview(field: Field, cat: pd.DataFrame, out: str | os.PathLike, max_side: int = 1600,
                 cut=None) -> Path:
    """The field with the cut-out box of every galaxy cut out (green; ``cut``: their catalogue index, all
    galaxies when ``None``) and of every star (red); sources too small to cut out are left undrawn (PNG,
    written atomically)."""
    disp = _display(field)
    h, w = disp.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    im = Image.fromarray(disp).resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(im)
    drawn = cat.star | (cat.index.isin(cut) if cut is not None else ~cat.star)
    shown = cat[drawn]
    for (cx, cy, side, star) in zip(shown.x, shown.y, _box_side(shown), shown.star):
        half = side / 2 * scale
        draw.rectangle([cx * scale - half, cy * scale - half, cx * scale + half, cy * scale + half],
                       outline=(255, 70, 70) if star else (80, 255, 120), width=1)
    out = Path(out)
    with atomic_path(out) as tmp:
        im.save(tmp, format="PNG")
    return out


def field_survey(paths: list[str | os.PathLike], out: str | os.PathLike, name: str, size: int = 64,
                 include_stars: bool = False, mask_neighbours: bool = False, threshold: float | None = None,
                 preview: str | os.PathLike | None = None, min_pixels: int = MIN_CUTOUT_PIXELS) -> dict:
    """Read, detect, cut out and write the field's galaxies as a survey at ``out`` (Galaxy10 schema, no
    labels; ``catalog`` group and ``<out>.catalog.csv`` with every measurement). Galaxies smaller than
    ``min_pixels`` above the threshold stay in the catalogue but are not cut out: too small to classify.
    Returns counts, the thresholds' reasons and where things went."""
    import h5py

    field = read_field(paths)
    cat, reasons, segmap = detect_sources(field, threshold)
    cat = cat.assign(id_str=[f"{name}-{i:05d}" for i in cat.index])
    keep = cat if include_stars else cat[~cat.star]
    keep = keep[keep.npix >= min_pixels]
    reasons.append(f"cut out: the {len(keep)} {'sources' if include_stars else 'galaxies'} of at least {min_pixels} "
                   "pixels above the threshold (smaller ones are too small to classify; they stay in the catalogue)")
    if keep.empty:
        raise FieldError(f"{field.paths[0]}: {len(cat)} sources found, none of them a galaxy large enough to cut "
                         f"out (at least {min_pixels} pixels)")
    images = cut_out(field, keep, size, segmap, mask_neighbours)
    keep = keep.assign(cutout_px=_box_side(keep).astype(int))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f["images"] = images
            f["id_str"] = np.asarray(keep.id_str, dtype=h5py.string_dtype())
            if "ra" in keep:
                f["ra"], f["dec"] = keep.ra.to_numpy(float), keep.dec.to_numpy(float)
            g = f.create_group("catalog")
            for col in ("x", "y", "flux", "r50", "kron_radius", "ellipticity", "theta", "flags", "cutout_px"):
                g[col] = keep[col].to_numpy()
            f.attrs["field"] = json.dumps({"paths": [str(p) for p in field.paths], "shape": list(field.shape),
                                           "reasons": reasons, "wcs": field.wcs is not None})
    csv = out.with_suffix(".catalog.csv")
    with atomic_path(csv) as tmp:
        cat.to_csv(tmp, index=False)
    prev = draw_preview(field, cat, preview, cut=keep.index) if preview else None
    return {"path": str(out), "catalog": str(csv), "preview": str(prev) if prev else None,
            "sources": int(len(cat)), "galaxies": int((~cat.star).sum()), "stars": int(cat.star.sum()),
            "cut_out": int(len(keep)), "wcs": field.wcs is not None, "shape": list(field.shape), "reasons": reasons}
