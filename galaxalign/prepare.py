"""Image preparation: how a survey's raw pixels become the RGB picture the model, the volunteer and
the similarity search all see.

A :class:`Preparation` belongs to the survey (it is stored with it in the annotation store) and is
applied by :meth:`galaxalign.data.Survey.images`, so training, embedding, queries and the Classify
page get the same pixels. In order:

1. **cut-out**: a square of ``cutout`` raw pixels around the image centre, or around the catalog
   position (``centre="catalog"``: columns ``x``, ``y`` in pixels); out-of-frame pixels are zero;
2. **bands → RGB**: ``bands`` picks raw bands for red, green, blue (one band is replicated to grey);
3. **stretch** per image: ``linear``, ``sqrt``, ``log``, ``asinh`` or ``lupton`` (Lupton et al. 2004,
   on the three chosen bands with ``q`` and ``softening``) between the ``clip`` percentiles;
4. **resampling** to ``size`` pixels (area-averaging when shrinking).

>>> p = Preparation(cutout=72, size=64, stretch="sqrt")
>>> p.apply(np.zeros((2, 300, 300), np.uint8)).shape
(2, 64, 64, 3)
>>> Preparation().is_identity
True

:func:`detect_preparation` proposes one from a sample of the data and says why; :func:`preview_sheet`
draws the before/after contact sheet.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .errors import GalaxalignError

__all__ = ["Preparation", "PreparationError", "STRETCHES", "detect_preparation", "detect_for_survey", "preview_sheet",
           "source_extent"]

STRETCHES = ("none", "linear", "sqrt", "log", "asinh", "lupton")


class PreparationError(GalaxalignError, ValueError):
    """A preparation that cannot be applied: the message names the setting and the problem."""


@dataclass(frozen=True)
class Preparation:
    """One survey's preparation; every field is a setting of ``galaxalign import/prepare``.

    ``stretch="none"`` with no cut-out, no size and no band choice is the identity (8-bit RGB surveys
    such as Galaxy10 are stored ready to use). ``clip`` holds the low and high percentiles that map
    to black and white. ``asinh_a``: the asinh softening as a fraction of the white level (smaller =
    stronger stretch); ``log_a``: the log stretch's dynamic range; ``q``/``softening``: Lupton's.
    """

    cutout: int | None = None
    centre: str = "image"
    size: int | None = None
    stretch: str = "none"
    clip: tuple[float, float] = (0.0, 100.0)
    asinh_a: float = 0.1
    log_a: float = 1000.0
    q: float = 8.0
    softening: float = 0.5
    bands: tuple[int, ...] | None = None

    # -- validation -------------------------------------------------------------------------------
    def __post_init__(self):
        if self.stretch not in STRETCHES:
            raise PreparationError(f"stretch {self.stretch!r} is not one of {', '.join(STRETCHES)}")
        if self.centre not in ("image", "catalog"):
            raise PreparationError(f"centre {self.centre!r} must be 'image' or 'catalog'")
        for k in ("cutout", "size"):
            v = getattr(self, k)
            if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 8 <= v <= 4096):
                raise PreparationError(f"{k} must be a whole number of pixels from 8 to 4096, got {v!r}")
        lo, hi = (tuple(self.clip) + (None, None))[:2]
        if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 <= lo < hi <= 100):
            raise PreparationError(f"clip percentiles must satisfy 0 ≤ low < high ≤ 100, got {self.clip!r}")
        object.__setattr__(self, "clip", (float(lo), float(hi)))
        for k, ok in (("asinh_a", lambda v: 0 < v <= 10), ("log_a", lambda v: 1 < v <= 1e9),
                      ("q", lambda v: 0 < v <= 1e4), ("softening", lambda v: 0 < v <= 1e4)):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or not ok(v):
                raise PreparationError(f"{k}={v!r} is out of range for the {k.split('_')[0]} stretch")
        if self.bands is not None:
            b = tuple(int(x) for x in self.bands)
            if len(b) not in (1, 3) or min(b) < 0:
                raise PreparationError(f"bands must name 1 or 3 band indices (≥ 0), got {self.bands!r}")
            object.__setattr__(self, "bands", b)
        if self.stretch == "lupton" and self.bands is not None and len(self.bands) != 3:
            raise PreparationError("the lupton stretch needs three bands")

    def check(self, raw_shape: tuple[int, ...], source: str = "survey") -> None:
        """Refuse settings this survey's images cannot take (a cut-out larger than the image, a band
        it does not have), naming the survey."""
        h, w = raw_shape[:2]
        n_bands = raw_shape[2] if len(raw_shape) > 2 else 1
        if self.cutout is not None and self.centre == "image" and self.cutout > min(h, w):
            raise PreparationError(f"{source}: cut-out of {self.cutout} px is larger than its {h}×{w}-px images")
        if self.bands is not None and max(self.bands) >= n_bands:
            raise PreparationError(f"{source}: band {max(self.bands)} does not exist; the images have {n_bands} "
                                   f"band(s) (0–{n_bands - 1})")

    @property
    def is_identity(self) -> bool:
        return self == Preparation()

    def output_shape(self, raw_shape: tuple[int, ...]) -> tuple[int, int, int]:
        side = self.size or self.cutout
        if side:
            return (side, side, 3)
        return (raw_shape[0], raw_shape[1], 3)

    # -- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["clip"] = list(self.clip)
        d["bands"] = list(self.bands) if self.bands is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict | str | None) -> "Preparation":
        if d is None or d == "":
            return cls()
        if isinstance(d, str):
            try:
                d = json.loads(d)
            except json.JSONDecodeError as e:
                raise PreparationError(f"preparation is not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise PreparationError("preparation must be a mapping of settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PreparationError(f"unknown preparation setting(s) {', '.join(unknown)}")
        d = dict(d)
        if d.get("clip") is not None:
            d["clip"] = tuple(d["clip"])
        if d.get("bands") is not None:
            d["bands"] = tuple(d["bands"])
        return cls(**d)

    def describe(self) -> str:
        parts = [f"cut-out {self.cutout} px" if self.cutout else "whole image"]
        if self.centre == "catalog":
            parts[-1] += " at the catalog position"
        parts.append(f"{self.stretch} stretch" + (f" clip {self.clip[0]:g}–{self.clip[1]:g} %" if self.stretch != "none"
                                                  else ""))
        if self.bands is not None:
            parts.append(f"bands {','.join(map(str, self.bands))}")
        parts.append(f"to {self.size} px" if self.size else "native size")
        return ", ".join(parts)

    # -- application ------------------------------------------------------------------------------
    def apply(self, raw: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
        """Raw images (n, H, W) or (n, H, W, B), any numeric dtype → (n, S, S, 3) uint8.

        ``centres`` (n, 2) gives (x, y) pixel positions when ``centre == "catalog"``.
        """
        raw = np.asarray(raw)
        if raw.ndim == 3:
            raw = raw[..., None]
        if raw.ndim != 4:
            raise PreparationError(f"expected images (n, H, W[, bands]), got shape {raw.shape}")
        if self.is_identity and raw.shape[-1] == 3 and raw.dtype == np.uint8:
            return raw
        out = [self._one(raw[i], None if centres is None else centres[i]) for i in range(len(raw))]
        side = self.output_shape(raw.shape[1:])
        return np.stack(out) if out else np.zeros((0, *side), np.uint8)

    def _one(self, img: np.ndarray, centre) -> np.ndarray:
        img = self._cut(img, centre)
        bands = self.bands if self.bands is not None else ((0,) if img.shape[-1] < 3 else (0, 1, 2))
        x = img[..., list(bands)].astype(np.float32)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if self.stretch == "none":
            rgb = x if x.shape[-1] == 3 else np.repeat(x, 3, -1)
            if img.dtype != np.uint8:
                rgb = _unit(rgb, *np.percentile(rgb, self.clip)) * 255
            out = np.clip(rgb, 0, 255).astype(np.uint8)
        else:
            out = (self._stretch(x) * 255 + 0.5).astype(np.uint8)
            if out.shape[-1] == 1:
                out = np.repeat(out, 3, -1)
        if self.size is not None and out.shape[0] != self.size:
            resample = Image.BOX if out.shape[0] > self.size else Image.BICUBIC
            out = np.asarray(Image.fromarray(out).resize((self.size, self.size), resample))
        return out

    def _cut(self, img: np.ndarray, centre) -> np.ndarray:
        if self.cutout is None:
            return img
        h, w = img.shape[:2]
        if self.centre == "catalog" and centre is not None and np.all(np.isfinite(centre)):
            cx, cy = float(centre[0]), float(centre[1])
        else:
            cx, cy = (w - 1) / 2, (h - 1) / 2
        s = self.cutout
        x0, y0 = int(round(cx - (s - 1) / 2)), int(round(cy - (s - 1) / 2))
        out = np.zeros((s, s, img.shape[2]), img.dtype)
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + s), min(h, y0 + s)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
        return out

    def _stretch(self, x: np.ndarray) -> np.ndarray:
        """(S, S, k) float → [0, 1]."""
        lo, hi = np.percentile(x, self.clip)
        if self.stretch == "lupton":
            # Lupton et al. (2004): a common asinh of the summed intensity keeps the colours
            v = np.clip(x - lo, 0, None)
            i = v.sum(-1, keepdims=True) / 3
            scale = max(hi - lo, 1e-12) * self.softening
            f = np.arcsinh(self.q * i / scale) / self.q
            with np.errstate(invalid="ignore", divide="ignore"):
                rgb = np.where(i > 0, v * f / np.maximum(i, 1e-12), 0)
            m = rgb.max(-1, keepdims=True)
            rgb = np.where(m > 1, rgb / np.maximum(m, 1e-12), rgb)
            return np.clip(rgb, 0, 1)
        u = _unit(x, lo, hi)
        if self.stretch == "sqrt":
            return np.sqrt(u)
        if self.stretch == "log":
            return np.log1p(self.log_a * u) / np.log1p(self.log_a)
        if self.stretch == "asinh":
            return np.arcsinh(u / self.asinh_a) / np.arcsinh(1 / self.asinh_a)
        return u

    def with_(self, **changes: Any) -> "Preparation":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _unit(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / max(float(hi - lo), 1e-12), 0, 1)


# --- detection -------------------------------------------------------------------------------------

def source_extent(img: np.ndarray, threshold: float = 0.05, core: float = 0.05) -> float:
    """Radius in pixels of the source at the image centre: the farthest pixel, from the centre, of the
    connected regions above ``threshold`` × the peak that reach within ``core`` × the image size of the
    centre (neighbours elsewhere in the field do not count). 0 when nothing is there."""
    from scipy import ndimage

    a = np.asarray(img, np.float32)
    if a.ndim == 3:
        a = a.mean(-1)
    a = a - np.median(a)
    peak = a.max()
    if not np.isfinite(peak) or peak <= 0:
        return 0.0
    h, w = a.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    mask = a > threshold * peak
    lab, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    near = np.unique(lab[(r <= max(2.0, core * min(h, w))) & mask])
    near = near[near > 0]
    if not len(near):
        return 0.0
    return float(r[np.isin(lab, near)].max())


def detect_preparation(raw: np.ndarray, model_size: int = 64) -> tuple[Preparation, list[str]]:
    """Propose a preparation from a sample of raw images (n, H, W[, B]); returns it and the reasons.

    - Cut-out: twice the 95th percentile of the central source's radius (:func:`source_extent`),
      plus 25 % margin, rounded up to 8 px — only when that is less than 3/4 of the frame, so that a
      small source in a large field is not resampled to a few pixels.
    - Stretch: none for 8-bit RGB (already display-ready); for one band, sqrt when most pixels are
      empty (a sparse, clipped radio map) else asinh; Lupton for 3 or more bands of linear flux.
    - Size: the model's input size.
    """
    raw = np.asarray(raw)
    if raw.ndim == 3:
        raw = raw[..., None]
    n, h, w, b = raw.shape
    reasons: list[str] = []
    ext = np.array([source_extent(im) for im in raw])
    found = ext[ext > 0]
    cutout = None
    if len(found):
        p95 = float(np.percentile(found, 95))
        side = int(np.ceil(2 * p95 * 1.25 / 8) * 8)
        side = max(side, 16)
        if side < 0.75 * min(h, w):
            cutout = side
            reasons.append(f"cut-out {side} px: 95 % of {len(found)} sampled sources reach {p95:.0f} px from the "
                           f"centre of the {h}×{w} frame (×2, +25 % margin)")
        else:
            reasons.append(f"whole image: the sources fill the {h}×{w} frame (95th percentile radius {p95:.0f} px)")
    else:
        reasons.append("whole image: no central source found in the sample")
    rgb8 = b == 3 and raw.dtype == np.uint8
    if rgb8:
        stretch, bands = "none", None
        reasons.append("no stretch: 8-bit RGB images are already stretched for display")
    elif b >= 3:
        stretch, bands = "lupton", (2, 1, 0)
        reasons.append(f"Lupton asinh RGB from bands 2, 1, 0 of {b}: linear flux in several bands")
    else:
        stretch, bands = None, None
        empty = float(np.mean(raw <= np.median(raw)))
        if empty > 0.9:
            stretch = "sqrt"
            reasons.append(f"sqrt stretch: {empty:.0%} of pixels sit at the background (a sparse, clipped map); "
                           "sqrt lifts faint lobes without flattening the core")
        else:
            stretch = "asinh"
            reasons.append("asinh stretch: one band with a noisy background and a wide dynamic range")
    size = model_size if (cutout or min(h, w)) != model_size else None
    if size:
        reasons.append(f"resampled to {model_size} px, the model's input size")
    prep = Preparation(cutout=cutout, size=size, stretch=stretch, bands=bands,
                       clip=(0.0, 100.0) if stretch in ("none", "sqrt") else (0.5, 99.9))
    return prep, reasons


# --- preview ---------------------------------------------------------------------------------------

def preview_sheet(raw: np.ndarray, prep: Preparation, labels: list[str] | None = None, tile: int = 128,
                  centres: np.ndarray | None = None):
    """A before/after contact sheet (PIL image): each column one galaxy, the raw image (linearly
    scaled, the cut-out marked) above its prepared picture."""
    raw = np.asarray(raw)
    if raw.ndim == 3:
        raw = raw[..., None]
    before = Preparation(stretch="linear" if raw.dtype != np.uint8 or raw.shape[-1] != 3 else "none",
                         bands=prep.bands if prep.stretch != "lupton" else (prep.bands or (0, 1, 2)),
                         clip=(0.0, 100.0) if raw.dtype == np.uint8 else (0.5, 99.9))
    after = prep.apply(raw, centres)
    n = len(raw)
    pad, head = 4, 16
    sheet = Image.new("RGB", (n * (tile + pad) + pad, 2 * (tile + pad) + pad + head), (20, 20, 24))
    d = ImageDraw.Draw(sheet)
    for i in range(n):
        b = Image.fromarray(before.apply(raw[i:i + 1])[0]).resize((tile, tile), Image.BILINEAR)
        x = pad + i * (tile + pad)
        sheet.paste(b, (x, head + pad))
        if prep.cutout:
            h, w = raw.shape[1:3]
            f = tile / max(h, w)
            cx, cy = ((w - 1) / 2, (h - 1) / 2) if centres is None or prep.centre != "catalog" else centres[i]
            half = prep.cutout / 2 * f
            d.rectangle((x + cx * f - half, head + pad + cy * f - half, x + cx * f + half, head + pad + cy * f + half),
                        outline=(255, 196, 0))
        sheet.paste(Image.fromarray(after[i]).resize((tile, tile), Image.NEAREST), (x, head + 2 * pad + tile))
        if labels:
            d.text((x + 2, 2), str(labels[i])[:18], fill=(230, 230, 230))
    return sheet


def detect_for_survey(survey, sample: int = 256, model_size: int = 64, seed: int = 0):
    """:func:`detect_preparation` on a random sample of a survey's raw images."""
    rng = np.random.default_rng(seed)
    n = len(survey)
    idx = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    return detect_preparation(survey.raw_images(idx), model_size)
