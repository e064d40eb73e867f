"""What the pages show, computed here where it is tested: the volunteer's zoom / stretch / invert of a
galaxy, the PCA thumbnail sheet, a query image a researcher uploads, which galaxies a large map draws
and the density image beneath them. Pages only draw and call.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from .data import MAX_IMAGE_SIDE
from .errors import GalaxalignError

VIEW_STRETCHES = ("linear", "asinh", "log")
ZOOMS = (1.0, 1.5, 2.0, 3.0)
MAX_QUERY_BYTES = 5 * 1024 * 1024
# points the embedding map sends to the browser at most (each with its hover text): beyond, a random
# sample of them is drawn over a density image of every galaxy in view (datashader)
MAP_POINTS = 20_000


class ViewError(GalaxalignError, ValueError):
    """A viewing setting or an uploaded query image that cannot be used."""


def map_sample(n: int, max_points: int | None = None, seed: int = 0) -> np.ndarray:
    """Rows of the galaxies the embedding map draws: all of them up to ``max_points``, else a random
    sample of that many (the same one for a given seed, in survey order), so that the browser gets a
    bounded number of points; search and selection still reach every galaxy. ``max_points``: by
    default :data:`MAP_POINTS`."""
    max_points = MAP_POINTS if max_points is None else max_points
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


Bounds = tuple[tuple[float, float], tuple[float, float]]


def map_bounds(xy: np.ndarray, pad: float = 0.02) -> Bounds:
    """``((x0, x1), (y0, y1))`` around every point, padded by ``pad`` of the extent."""
    lo, hi = np.nanmin(xy, 0).astype(float), np.nanmax(xy, 0).astype(float)
    span = np.maximum(hi - lo, 1e-9) * pad
    return (lo[0] - span[0], hi[0] + span[0]), (lo[1] - span[1], hi[1] + span[1])


def in_bounds(xy: np.ndarray, bounds: Bounds) -> np.ndarray:
    """Which points lie inside ``bounds`` (boolean mask)."""
    (x0, x1), (y0, y1) = bounds
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


def density_image(xy: np.ndarray, bounds: Bounds, width: int = 900, height: int = 620) -> Image.Image:
    """Every point of ``xy`` inside ``bounds`` as a density image (datashader: counts per pixel, shaded
    by histogram equalisation, transparent where there is none) — a million galaxies in one picture the
    browser draws at once; ``width``×``height`` pixels, north up."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    frame = pd.DataFrame({"x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32)})
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=bounds[0], y_range=bounds[1])
    shaded = tf.shade(canvas.points(frame, "x", "y"), cmap=["#c5d3f6", "#0b2a78"], how="eq_hist", min_alpha=60)
    return shaded.to_pil()


def upscale(img: np.ndarray, size: int = 160) -> np.ndarray:
    """A small cut-out enlarged (bicubic) to ``size`` pixels for the screen; large ones as they are."""
    if img.shape[0] >= size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))


def adjust_view(img: np.ndarray, zoom: float = 1.0, stretch: str = "linear", invert: bool = False) -> np.ndarray:
    """The volunteer's view of an 8-bit image: a centred crop ``1/zoom`` of the side, a display stretch
    that lifts faint structure (asinh, log), optionally inverted (dark galaxy on white). uint8 out."""
    if stretch not in VIEW_STRETCHES:
        raise ViewError(f"stretch {stretch!r} must be one of {', '.join(VIEW_STRETCHES)}")
    if not 1.0 <= float(zoom) <= 8.0:
        raise ViewError(f"zoom {zoom!r} must be between 1 and 8")
    x = np.asarray(img, np.float32) / 255.0
    if zoom > 1:
        h, w = x.shape[:2]
        kh, kw = max(1, int(round(h / zoom / 2))), max(1, int(round(w / zoom / 2)))
        x = x[h // 2 - kh: h // 2 + kh, w // 2 - kw: w // 2 + kw]
    if stretch == "asinh":
        x = np.arcsinh(8 * x) / np.arcsinh(8)
    elif stretch == "log":
        x = np.log1p(30 * x) / np.log1p(30)
    if invert:
        x = 1 - x
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def thumbnail_sheet(cells: np.ndarray, images: Callable[[np.ndarray], np.ndarray], cell: int = 48) -> bytes:
    """A PNG of galaxies laid out on a grid: ``cells`` (rows, cols) holds a galaxy index or -1 (empty);
    ``images(indices)`` returns their pictures (the survey's prepared images)."""
    rows, cols = cells.shape
    sheet = Image.new("RGB", (cols * cell, rows * cell), (14, 14, 18))
    idx = np.sort(cells[cells >= 0])
    lookup = dict(zip(idx.tolist(), images(idx))) if len(idx) else {}
    for r in range(rows):
        for c in range(cols):
            if cells[r, c] >= 0:
                tile = Image.fromarray(lookup[int(cells[r, c])]).convert("RGB").resize((cell, cell), Image.BICUBIC)
                sheet.paste(tile, (c * cell, r * cell))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def read_query_image(data: bytes, name: str, grey: bool) -> np.ndarray:
    """An uploaded query picture (PNG or JPEG) as raw pixels in the survey's own layout — (H, W) for a
    one-band survey, (H, W, 3) otherwise — checked for size before it is decoded."""
    if len(data) > MAX_QUERY_BYTES:
        raise ViewError(f"{name}: {len(data) / 1e6:.1f} MB is larger than the {MAX_QUERY_BYTES / 1e6:.0f} MB limit")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) > MAX_IMAGE_SIDE:  # the header says; nothing is decoded yet
                raise ViewError(f"{name}: {im.size[0]}×{im.size[1]} is larger than {MAX_IMAGE_SIDE} px a side")
            return np.asarray(im.convert("L" if grey else "RGB"))
    except ViewError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError):
        raise ViewError(f"{name}: not a readable image") from None


@dataclass(frozen=True)
class MapView:
    """What Explore's embedding map draws: ``frame`` (one row per drawn galaxy, indexed by survey row, with
    every colouring), the ``bounds`` in view and the ``full`` extent, how many galaxies are ``in_view``
    and how many pass the flag filter (``kept``)."""
    frame: pd.DataFrame
    bounds: Bounds
    full: Bounds
    in_view: int
    kept: int

    @property
    def zoomed(self) -> bool:
        return self.bounds != self.full

    @property
    def sampled(self) -> bool:
        return len(self.frame) < self.in_view


def map_view(xy: np.ndarray, preds: pd.DataFrame, labels: np.ndarray, class_names: list[str],
             consensus: pd.DataFrame, flags: pd.DataFrame, bounds: Bounds | None = None,
             only_flagged: bool = False, max_points: int | None = None) -> MapView:
    """The points of the map in ``bounds`` (default: all of it), a bounded random sample of them
    (:func:`map_sample`), coloured by known label, model label, confidence, unfamiliarity, consensus,
    volunteer–model disagreement and volunteer flags. ``preds``: the prediction table (``id_str``,
    ``pred``, ``confidence``, optionally ``ood``); ``consensus``: ``id_str``, ``consensus_label``
    (:func:`galaxalign.store.consensus_labels`); ``flags``: ``id_str``, ``odd``, ``favourites``
    (:func:`galaxalign.store.galaxy_flag_counts`). ``only_flagged``: only galaxies with a flag."""
    ids_all = preds.id_str.astype(str)
    keep = np.ones(len(xy), bool)
    if only_flagged:
        keep &= ids_all.isin(flags.id_str.astype(str)).to_numpy()
    full = map_bounds(xy[keep]) if keep.any() else map_bounds(xy)
    bounds = bounds or full
    in_view = np.flatnonzero(keep & in_bounds(xy, bounds))
    drawn = in_view[map_sample(len(in_view), max_points)]
    names = np.asarray(list(class_names) + ["unknown"], dtype=object)
    df = pd.DataFrame({"x": xy[drawn, 0], "y": xy[drawn, 1], "id_str": ids_all.to_numpy()[drawn],
                       "model label": names[preds.pred.to_numpy()[drawn]],
                       "confidence": preds.confidence.to_numpy()[drawn].round(3)}, index=drawn)
    known = np.asarray(labels)[drawn]
    df["known label"] = names[np.where(known >= 0, known, len(class_names))]
    if "ood" in preds:
        df["unfamiliarity"] = preds.ood.to_numpy()[drawn].round(3)
    voted = consensus[consensus.consensus_label.notna()]
    cmap = pd.Series(names[voted.consensus_label.to_numpy(int)], index=voted.id_str.astype(str).to_numpy(),
                     dtype=object)
    df["consensus"] = df.id_str.map(cmap).astype(object).fillna("no votes")
    df["volunteer–model disagreement"] = np.where(df.consensus == "no votes", "no votes",
                                                  np.where(df.consensus == df["model label"], "agree", "disagree"))
    fid = flags.id_str.astype(str).to_numpy()
    odd = df.id_str.map(pd.Series(flags.odd.to_numpy(), index=fid)).fillna(0)
    fav = df.id_str.map(pd.Series(flags.favourites.to_numpy(), index=fid)).fillna(0)
    df["volunteer flags"] = np.where(odd > 0, "odd", np.where(fav > 0, "favourite", "none"))
    return MapView(df, bounds, full, int(len(in_view)), int(keep.sum()))
