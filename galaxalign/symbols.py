"""Galaxy Zoo style schematic symbols, drawn in code.

One glyph per GZ2 answer (37, named by answer id, e.g. ``"t03_bar"``) and one composite per class
of each label set (named ``"<label set>/<class slug>"``, e.g. ``"galaxy10/barred_spiral"``). The look
follows the Galaxy Zoo interface: a soft white glyph on a dark grey square, one idea per glyph.

>>> img = render_symbol("t10_tight", size=64)          # the canonical glyph, a PIL RGB image
>>> img.size
(64, 64)
>>> variant = render_symbol("t10_tight", 64, rng=np.random.default_rng(0))  # for augmentation

``galaxalign symbols`` writes every canonical glyph to ``assets/symbols/`` (see
:func:`write_symbols`); the committed PNGs are its output.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .fsutil import atomic_path
from .errors import GalaxalignError

__all__ = ["render_symbol", "list_symbols", "is_glyph", "write_symbols", "symbol_path", "SYMBOL_DIR", "SymbolError"]

BACKGROUND = 58  # Galaxy Zoo's dark grey
FOREGROUND = 245
SYMBOL_DIR = Path(__file__).resolve().parent.parent / "assets" / "symbols"
_SS = 4  # supersampling factor for anti-aliased strokes


class SymbolError(GalaxalignError, KeyError):
    """An unknown symbol name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want a plain sentence
        return str(self.args[0])


class _Canvas:
    """A float canvas in [0, 1] with a unit coordinate frame: x, y in [-1, 1], y up.

    Every primitive is given in the glyph's own frame and goes through one similarity transform
    (rotation, scale, shift) so that random variants stay the same glyph.
    """

    def __init__(self, size: int, angle: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0),
                 stroke: float = 1.0):
        self.size = size
        self.alpha = np.zeros((size, size), np.float32)
        self.c, self.s = math.cos(angle), math.sin(angle)
        self.scale, self.shift, self.stroke = scale, shift, stroke
        self.angle = angle
        # pixel-centre coordinates in the unit frame, inverse-transformed once for analytic glows
        u = (np.arange(size) + 0.5) / size * 2 - 1
        X, Y = np.meshgrid(u, -u)
        X, Y = (X - shift[0]) / scale, (Y - shift[1]) / scale
        self.X = self.c * X + self.s * Y
        self.Y = -self.s * X + self.c * Y

    def _px(self, pts: np.ndarray) -> list[tuple[float, float]]:
        """Unit-frame points (n, 2) → supersampled pixel coordinates."""
        x, y = pts[:, 0], pts[:, 1]
        xr = (self.c * x - self.s * y) * self.scale + self.shift[0]
        yr = (self.s * x + self.c * y) * self.scale + self.shift[1]
        n = self.size * _SS
        return list(zip((xr + 1) / 2 * n, (1 - yr) / 2 * n))

    def _layer(self, draw: Callable[[ImageDraw.ImageDraw], None], blur: float) -> np.ndarray:
        n = self.size * _SS
        im = Image.new("L", (n, n), 0)
        draw(ImageDraw.Draw(im))
        im = im.resize((self.size, self.size), Image.LANCZOS)
        if blur > 0:
            im = im.filter(ImageFilter.GaussianBlur(blur * self.size / 64))
        return np.asarray(im, np.float32) / 255.0

    def glow(self, cx=0.0, cy=0.0, a=0.5, b=None, theta=0.0, level=1.0, profile=2.0):
        """An elliptical soft blob: level · exp(-(r/a)^profile)."""
        b = a if b is None else b
        ct, st = math.cos(theta), math.sin(theta)
        dx, dy = self.X - cx, self.Y - cy
        xr, yr = ct * dx + st * dy, -st * dx + ct * dy
        r = np.sqrt((xr / a) ** 2 + (yr / b) ** 2)
        self.add(level * np.exp(-r ** profile))

    def ellipse(self, cx=0.0, cy=0.0, a=0.5, b=0.3, theta=0.0, level=1.0, fill=True, width=0.05, blur=0.6):
        t = np.linspace(0, 2 * math.pi, 120)
        pts = np.stack([a * np.cos(t), b * np.sin(t)], 1)
        pts = pts @ np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
        pts += (cx, cy)
        self.poly(pts, level, fill=fill, width=width, blur=blur, closed=True)

    def poly(self, pts, level=1.0, fill=True, width=0.05, blur=0.6, closed=False):
        px = self._px(np.asarray(pts, float))
        w = max(1, int(round(width * self.stroke * self.scale * self.size * _SS / 2)))
        v = int(255 * level)

        def draw(d: ImageDraw.ImageDraw):
            if fill:
                d.polygon(px, fill=v)
            else:
                d.line(px + ([px[0]] if closed else []), fill=v, width=w, joint="curve")
        self.add(self._layer(draw, blur))

    def line(self, pts, width=0.06, level=1.0, taper=True, blur=0.7):
        """A stroke along ``pts``, stamped as overlapping discs so joints stay smooth;
        ``taper`` thins and dims it towards the end like a spiral arm."""
        pts = np.asarray(pts, float)
        seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        n = max(2, int(seg[-1] / 0.01))  # resample every 1 % of the frame
        s = np.linspace(0, seg[-1], n)
        dense = np.stack([np.interp(s, seg, pts[:, 0]), np.interp(s, seg, pts[:, 1])], 1)
        px = self._px(dense)
        f = np.linspace(0, 1, n) if taper else np.zeros(n)
        radii = width * (1 - 0.55 * f) * self.stroke * self.scale * self.size * _SS / 4
        values = (255 * level * (1 - 0.35 * f)).astype(int)

        def draw(d: ImageDraw.ImageDraw):
            for (x, y), r, v in zip(px, radii, values):
                d.ellipse((x - r, y - r, x + r, y + r), fill=int(v))
        self.add(self._layer(draw, blur))

    def dark(self, pts, width=0.06, depth=0.85, blur=0.5):
        """A dark stroke (dust lane) that dims what is already drawn."""
        px = self._px(np.asarray(pts, float))
        w = max(1, int(round(width * self.stroke * self.scale * self.size * _SS / 2)))
        mask = self._layer(lambda d: d.line(px, fill=255, width=w), blur)
        self.alpha *= 1 - depth * mask

    def add(self, layer: np.ndarray):
        self.alpha = np.maximum(self.alpha, layer.astype(np.float32))

    def image(self, brightness=1.0) -> Image.Image:
        a = np.clip(self.alpha * brightness, 0, 1)
        v = BACKGROUND + (FOREGROUND - BACKGROUND) * a
        rgb = np.stack([v, v, v * 1.02], -1)  # a hint of the interface's cool white
        return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


# --- building blocks -----------------------------------------------------------------------------

def _spiral(c: _Canvas, arms=2, pitch_deg=20.0, r0=0.12, r1=0.85, width=0.09, level=0.95, phase=0.0):
    b = math.tan(math.radians(pitch_deg))
    turns = math.log(r1 / r0) / b  # θ range that takes the arm from r0 to r1
    t = np.linspace(0, turns, 160)
    r = r0 * np.exp(b * t)
    for k in range(arms):
        th = t + phase + 2 * math.pi * k / arms
        c.line(np.stack([r * np.cos(th), r * np.sin(th)], 1), width=width, level=level)


def _bulge(c: _Canvas, r=0.18, level=1.0):
    c.glow(0, 0, r, level=level, profile=1.6)


def _face_on_disk(c: _Canvas, level=0.35, r=0.62):
    c.glow(0, 0, r, level=level, profile=2.4)


def _edge_on(c: _Canvas, thickness=0.07, level=0.95):
    c.glow(0, 0, 0.85, thickness, level=level, profile=3.0)


def _arc(c: _Canvas, r, t0, t1, cx=0.0, cy=0.0, width=0.07, level=0.9, squash=1.0):
    t = np.linspace(t0, t1, 80)
    c.line(np.stack([cx + r * np.cos(t), cy + squash * r * np.sin(t)], 1), width=width, level=level, taper=False)


def _star(c: _Canvas):
    c.glow(0, 0, 0.12, level=1.0, profile=1.5)
    for ang in (0, math.pi / 2):
        d = np.array([math.cos(ang), math.sin(ang)]) * 0.8
        c.line(np.stack([-d, d]), width=0.035, level=0.85, taper=False)


def _irregular(c: _Canvas):
    # clumpy, no symmetry: a fixed set of knots so the canonical glyph never changes
    knots = [(-0.35, 0.15, 0.2), (0.05, 0.3, 0.16), (0.3, -0.05, 0.22), (-0.1, -0.3, 0.14), (0.45, 0.35, 0.1),
             (-0.5, -0.25, 0.1)]
    for x, y, r in knots:
        c.glow(x, y, r, level=0.9, profile=2.0)
    c.glow(0, 0, 0.6, 0.45, 0.4, level=0.35, profile=2.5)


def _disturbed(c: _Canvas):
    c.glow(-0.1, 0.0, 0.35, 0.28, 0.3, level=0.95, profile=1.6)
    c.glow(0.25, 0.15, 0.55, 0.3, 0.6, level=0.45, profile=2.0)
    for x, y, r in [(0.45, 0.35, 0.1), (0.55, -0.1, 0.08), (0.2, 0.5, 0.07)]:
        c.glow(x, y, r, level=0.85)
    _arc(c, 0.55, 2.2, 3.6, cx=0.1, width=0.05, level=0.5)


def _merger(c: _Canvas):
    c.glow(-0.32, -0.1, 0.2, level=1.0, profile=1.6)
    c.glow(0.3, 0.15, 0.16, level=0.95, profile=1.6)
    _arc(c, 0.55, 0.2, 2.1, cx=-0.3, cy=-0.2, width=0.07, level=0.6)
    _arc(c, 0.5, 3.3, 5.0, cx=0.3, cy=0.25, width=0.06, level=0.55)


def _edge_on_bulge(c: _Canvas, boxy=False):
    _edge_on(c)
    if boxy:
        c.poly([(-0.2, -0.22), (0.2, -0.22), (0.2, 0.22), (-0.2, 0.22)], level=0.95, blur=1.2)
    else:
        c.glow(0, 0, 0.24, 0.22, level=1.0, profile=1.8)


def _fri(c: _Canvas):
    """Core-brightened: a bright core, jets that widen and fade into plumes."""
    c.glow(0, 0, 0.13, level=1.0, profile=1.6)
    for t in np.linspace(0.05, 1.0, 14):
        for side in (-1, 1):
            c.glow(side * (0.12 + 0.62 * t), 0.04 * side * t, 0.09 + 0.12 * t, 0.05 + 0.2 * t,
                   level=0.95 - 0.6 * t, profile=2.0)


def _frii(c: _Canvas):
    """Edge-brightened: a faint core, thin jets, lobes with bright hotspots at their outer ends."""
    c.glow(0, 0, 0.06, level=0.45, profile=1.6)
    c.line([(-0.62, 0.0), (0.62, 0.0)], width=0.025, level=0.3, taper=False)
    for side in (-1, 1):
        c.glow(side * 0.66, 0, 0.22, 0.17, level=0.5, profile=2.2)
        c.glow(side * 0.82, 0, 0.09, 0.1, level=1.0, profile=1.6)


def _compact(c: _Canvas):
    """A point source: one small round blob the size of the beam."""
    c.glow(0, 0, 0.16, level=1.0, profile=1.7)


def _bent(c: _Canvas):
    """A bent tail: a core and two jets swept back into a U."""
    c.glow(0, 0.35, 0.12, level=1.0, profile=1.6)
    for u in np.linspace(0.1, 1.9, 16):
        f = u / 1.9
        for side in (-1, 1):
            c.glow(side * 0.5 * math.sin(min(u, math.pi / 2)) * (1 - 0.15 * max(0.0, u - math.pi / 2)),
                   0.35 - 0.75 * (1 - math.cos(u)) * 0.7, 0.06 + 0.07 * f, 0.06 + 0.07 * f,
                   level=0.75 - 0.4 * f, profile=2.0)


# --- the glyphs ----------------------------------------------------------------------------------

_GLYPHS: dict[str, Callable[[_Canvas], None]] = {
    "t01_smooth": lambda c: c.glow(0, 0, 0.5, level=1.0, profile=1.4),
    "t01_features": lambda c: (_face_on_disk(c, 0.3), _bulge(c, 0.15), _spiral(c, 2, 22)),
    "t01_star": _star,
    "t02_yes": lambda c: _edge_on(c),
    "t02_no": lambda c: (_face_on_disk(c, 0.55, 0.58), _bulge(c, 0.16)),
    "t03_bar": lambda c: (_face_on_disk(c, 0.3), c.glow(0, 0, 0.55, 0.1, level=1.0, profile=4.0), _bulge(c, 0.14)),
    "t03_no_bar": lambda c: (_face_on_disk(c, 0.3), _bulge(c, 0.2)),
    "t04_spiral": lambda c: (_face_on_disk(c, 0.25), _bulge(c, 0.14), _spiral(c, 2, 20)),
    "t04_no_spiral": lambda c: (_face_on_disk(c, 0.6, 0.6), _bulge(c, 0.14)),
    "t05_no_bulge": lambda c: _face_on_disk(c, 0.55, 0.6),
    "t05_just_noticeable": lambda c: (_face_on_disk(c, 0.5, 0.6), _bulge(c, 0.1)),
    "t05_obvious": lambda c: (_face_on_disk(c, 0.45, 0.6), _bulge(c, 0.22)),
    "t05_dominant": lambda c: (_face_on_disk(c, 0.4, 0.62), _bulge(c, 0.4)),
    "t06_yes": lambda c: (c.glow(0, 0, 0.35, level=1.0, profile=1.6), c.glow(0.5, 0.45, 0.12, level=0.9),
                          _arc(c, 0.5, 0.3, 1.4, width=0.05, level=0.6)),
    "t06_no": lambda c: c.glow(0, 0, 0.42, level=1.0, profile=1.6),
    "t07_round": lambda c: c.glow(0, 0, 0.55, level=1.0, profile=1.8),
    "t07_in_between": lambda c: c.glow(0, 0, 0.6, 0.38, level=1.0, profile=1.8),
    "t07_cigar": lambda c: c.glow(0, 0, 0.75, 0.17, level=1.0, profile=1.8),
    "t08_ring": lambda c: (_bulge(c, 0.16), c.ellipse(0, 0, 0.6, 0.6, fill=False, width=0.1, level=0.85)),
    "t08_lens": lambda c: (_bulge(c, 0.16), _arc(c, 0.6, 0.4, 2.6, width=0.06, level=0.9)),
    "t08_disturbed": _disturbed,
    "t08_irregular": _irregular,
    "t08_other": lambda c: (c.glow(0, 0.15, 0.35, level=0.9),
                            *[c.glow(x, -0.6, 0.07, level=0.9, profile=4) for x in (-0.25, 0, 0.25)]),
    "t08_merger": _merger,
    "t08_dust_lane": lambda c: (c.glow(0, 0, 0.8, 0.2, level=1.0, profile=2.0),
                                c.dark([(-0.9, 0.0), (0.9, 0.0)], width=0.07)),
    "t09_rounded": lambda c: _edge_on_bulge(c),
    "t09_boxy": lambda c: _edge_on_bulge(c, boxy=True),
    "t09_no_bulge": lambda c: _edge_on(c, 0.06),
    "t10_tight": lambda c: (_bulge(c, 0.14), _spiral(c, 2, 10, r0=0.14)),
    "t10_medium": lambda c: (_bulge(c, 0.14), _spiral(c, 2, 20)),
    "t10_loose": lambda c: (_bulge(c, 0.14), _spiral(c, 2, 38)),
    "t11_1": lambda c: (_bulge(c, 0.14), _spiral(c, 1, 18)),
    "t11_2": lambda c: (_bulge(c, 0.14), _spiral(c, 2, 22)),
    "t11_3": lambda c: (_bulge(c, 0.14), _spiral(c, 3, 24, width=0.08)),
    "t11_4": lambda c: (_bulge(c, 0.14), _spiral(c, 4, 26, width=0.07)),
    "t11_more": lambda c: (_bulge(c, 0.14), _spiral(c, 6, 28, width=0.05, r1=0.8)),
    "t11_cant_tell": lambda c: (_face_on_disk(c, 0.45, 0.6), _bulge(c, 0.14),
                                _spiral(c, 2, 22, width=0.2, level=0.45)),
    # composite class symbols
    "galaxy10/disturbed": _disturbed,
    "galaxy10/merging": _merger,
    "galaxy10/round_smooth": lambda c: c.glow(0, 0, 0.55, level=1.0, profile=1.8),
    "galaxy10/in_between_round_smooth": lambda c: c.glow(0, 0, 0.6, 0.38, level=1.0, profile=1.8),
    "galaxy10/cigar_shaped_smooth": lambda c: c.glow(0, 0, 0.75, 0.17, level=1.0, profile=1.8),
    "galaxy10/barred_spiral": lambda c: (c.glow(0, 0, 0.36, 0.09, level=1.0, profile=4.0), _bulge(c, 0.14),
                                         _spiral(c, 2, 24, r0=0.36)),
    "galaxy10/unbarred_tight_spiral": lambda c: (_bulge(c, 0.17), _spiral(c, 2, 11, r0=0.15)),
    "galaxy10/unbarred_loose_spiral": lambda c: (_bulge(c, 0.14), _spiral(c, 2, 36)),
    "galaxy10/edge_on_without_bulge": lambda c: _edge_on(c, 0.06),
    "galaxy10/edge_on_with_bulge": lambda c: _edge_on_bulge(c),
    "galaxy_mnist/smooth_round": lambda c: c.glow(0, 0, 0.55, 0.48, level=1.0, profile=1.8),
    "galaxy_mnist/smooth_cigar": lambda c: c.glow(0, 0, 0.75, 0.17, level=1.0, profile=1.8),
    "galaxy_mnist/edge_on_disk": lambda c: _edge_on(c, 0.07),
    "galaxy_mnist/unbarred_spiral": lambda c: (_bulge(c, 0.15), _spiral(c, 2, 22)),
    # radio morphologies (FIRST label set)
    "radio/fri": _fri,
    "radio/frii": _frii,
    "radio/compact": _compact,
    "radio/bent": _bent,
}


def list_symbols() -> list[str]:
    """Every glyph name: 37 GZ2 answers, then ``"<label set>/<slug>"`` per class, then the radio glyphs."""
    return list(_GLYPHS)


def is_glyph(name: str) -> bool:
    """Whether ``name`` is a glyph of our vocabulary (label-set files may name one as a symbol)."""
    return name in _GLYPHS


def render_symbol(name: str, size: int = 128, rng: np.random.Generator | None = None) -> Image.Image:
    """Draw symbol ``name`` as a ``size``×``size`` RGB image.

    With ``rng`` it returns a random variant for training augmentation: rotated (any angle; the
    glyphs have no up), scaled by 0.8–1.1, shifted by up to 6 % of the width, strokes 0.7–1.3 times as
    thick and 0.8–1.0 as bright. Without it, the canonical glyph.
    """
    if name.lower().endswith(".png"):
        return _render_png(Path(name), int(size), rng)
    try:
        glyph = _GLYPHS[name]
    except KeyError:
        raise SymbolError(f"unknown symbol {name!r}: expected a GZ2 answer id like 't03_bar' or a class "
                          f"like 'galaxy10/barred_spiral'") from None
    if not isinstance(size, (int, np.integer)) or not 8 <= size <= 2048:
        raise ValueError(f"symbol size must be an integer from 8 to 2048, got {size!r}")
    if rng is None:
        canvas, brightness = _Canvas(int(size)), 1.0
    else:
        canvas = _Canvas(int(size), angle=rng.uniform(0, 2 * math.pi), scale=rng.uniform(0.8, 1.1),
                         shift=tuple(rng.uniform(-0.06, 0.06, 2)), stroke=rng.uniform(0.7, 1.3))
        brightness = rng.uniform(0.8, 1.0)
    glyph(canvas)
    return canvas.image(brightness)


def _render_png(path: Path, size: int, rng: np.random.Generator | None) -> Image.Image:
    """A label set's own PNG symbol at ``size``; with ``rng`` the same random similarity transform as
    the drawn glyphs (any rotation, scale 0.8–1.1, shift up to 6 %), on the symbols' dark grey."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.LANCZOS)
    except (OSError, ValueError) as e:
        raise SymbolError(f"{path}: unreadable symbol image ({e.__class__.__name__})") from None
    if rng is None:
        return im
    angle, scale = rng.uniform(0, 360), rng.uniform(0.8, 1.1)
    dx, dy = rng.uniform(-0.06, 0.06, 2) * size
    out = im.rotate(angle, resample=Image.BILINEAR, fillcolor=(BACKGROUND,) * 3)
    s = max(8, int(round(size * scale)))
    out = out.resize((s, s), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (BACKGROUND,) * 3)
    canvas.paste(out, (int(round((size - s) / 2 + dx)), int(round((size - s) / 2 + dy))))
    return canvas


def symbol_path(name: str, root: Path = SYMBOL_DIR) -> Path:
    """Where the committed PNG of ``name`` lives: ``assets/symbols/t03_bar.png``,
    ``assets/symbols/galaxy10/barred_spiral.png``."""
    if name not in _GLYPHS:
        raise SymbolError(f"unknown symbol {name!r}")
    return Path(root) / f"{name}.png"


def write_symbols(root: Path = SYMBOL_DIR, size: int = 128) -> list[Path]:
    """Render every canonical symbol to ``root`` (atomically, file by file); returns the paths."""
    out = []
    for name in list_symbols():
        path = symbol_path(name, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            render_symbol(name, size).save(tmp, format="PNG", optimize=True)
        out.append(path)
    return out
