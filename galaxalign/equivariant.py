"""Convolutions that commute with the dihedral group D4: the quarter turns and mirror images of the
pixel grid (Cohen & Welling 2016, "Group equivariant convolutional networks").

A radio galaxy's class does not change when the sky is turned or mirrored. Augmentation teaches a CNN
that from examples; these layers build it in: a feature map carries, for every channel, one plane per
element of D4, and turning or mirroring the input turns the planes and permutes them — exactly, with
no interpolation (quarter turns and mirrors map the pixel grid onto itself). Pooling over the planes
at the end gives features that do not change at all. The same filters are shared by the eight
orientations, so a D4 network with ``w`` channels has the parameters of a plain one with ``w`` and
the arithmetic of one with ``8 w``.

    net = d4_cnn(channels=1, width=8, classes=4)
    x = torch.randn(2, 1, 64, 64)
    torch.allclose(net(x), net(torch.rot90(x, 1, (2, 3))), atol=1e-4)   # True, by construction

Interpolated turns (45°) are not exact on a pixel grid; the rest of a galaxy's orientations still
come from augmentation, or from ``turns``: the tower then also sees the galaxy turned by 90° / turns,
2 × 90° / turns, … (bilinear) and keeps, per feature, the largest over the copies — with ``turns=2``
the sixteen elements of D8, the 45° turns interpolated.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ORDER = 8  # |D4|


def transform(t: torch.Tensor, g: int) -> torch.Tensor:
    """Act with D4's element ``g`` on the last two (spatial) axes of ``t``: ``g = 2 k + m`` is a
    mirror (left–right) when ``m`` is 1, then ``k`` quarter turns."""
    k, m = divmod(g, 2)
    if m:
        t = t.flip(-1)
    return torch.rot90(t, k, (-2, -1)) if k else t


def _table() -> tuple[np.ndarray, np.ndarray]:
    """D4's multiplication table (``mul[a, b]`` = a∘b: b first) and inverses, found by acting on an
    asymmetric array rather than written out by hand."""
    probe = torch.arange(9.0).reshape(3, 3)
    seen = [transform(probe, g) for g in range(ORDER)]

    def which(t):
        return next(i for i, s in enumerate(seen) if torch.equal(s, t))

    mul = np.array([[which(transform(transform(probe, b), a)) for b in range(ORDER)] for a in range(ORDER)])
    inv = np.array([int(np.where(mul[a] == 0)[0][0]) for a in range(ORDER)])
    return mul, inv


MUL, INV = _table()
# _PERM[g, h] = g⁻¹∘h: the input plane that output plane g's filter reads as its plane h
_PERM = torch.as_tensor(np.array([[MUL[INV[g], h] for h in range(ORDER)] for g in range(ORDER)]))


class LiftD4(nn.Conv2d):
    """An image (B, C, H, W) to D4 feature planes (B, O, 8, H, W): the filter, turned and mirrored
    eight ways."""

    def __init__(self, cin: int, cout: int, k: int = 3, padding: int = 1):
        super().__init__(cin, cout, k, padding=padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.stack([transform(self.weight, g) for g in range(ORDER)], 1)  # (O, 8, C, k, k)
        y = F.conv2d(x, w.flatten(0, 1), padding=self.padding)
        return y.unflatten(1, (self.out_channels, ORDER))


class ConvD4(nn.Module):
    """D4 planes to D4 planes: output plane ``g`` reads input plane ``h`` through the filter turned by
    ``g`` and taken at ``g⁻¹h``."""

    def __init__(self, cin: int, cout: int, k: int = 3, padding: int = 1):
        super().__init__()
        self.cin, self.cout, self.padding = cin, cout, padding
        self.weight = nn.Parameter(torch.empty(cout, cin, ORDER, k, k))
        nn.init.kaiming_uniform_(self.weight.view(cout, cin * ORDER, k, k), a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, _, h, w = x.shape
        filt = torch.stack([transform(self.weight[:, :, _PERM[g]], g) for g in range(ORDER)], 1)  # (O, 8, I, 8, k, k)
        y = F.conv2d(x.reshape(b, self.cin * ORDER, h, w), filt.flatten(0, 1).flatten(1, 2), padding=self.padding)
        return y.unflatten(1, (self.cout, ORDER))


class PoolD4(nn.Module):
    """2 × 2 max pooling of each plane (exact for even sizes: the windows map onto windows)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, g, h, w = x.shape
        return F.max_pool2d(x.reshape(b, c * g, h, w), 2).unflatten(1, (c, g))


class InvariantD4(nn.Module):
    """Mean over space, max over the eight orientations: features no turn or mirror changes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((-2, -1)).amax(-1)


def _norm(kind: str, c: int) -> nn.Module:
    """BatchNorm or GroupNorm over whole channels: both share statistics across a channel's eight
    planes, so both keep the layer equivariant. Groups of at least four channels (up to 8 groups): a
    group of one channel would normalise away how bright that channel is in this galaxy."""
    if kind == "batch":
        return nn.BatchNorm3d(c)
    return nn.GroupNorm(next(g for g in (8, 4, 2, 1) if c % g == 0 and c // g >= 4 or g == 1), c)


def turn(f: torch.Tensor, angle: torch.Tensor, flip: torch.Tensor | None = None,
         shift: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, H, W) float turned by ``angle`` (B,) radians, mirrored where ``flip`` (B,) is -1 and moved by
    ``shift`` (B, 2) in units of half the width: bilinear, edges extended so no black corners appear.
    Any angle, interpolated — training's augmentation (:func:`galaxalign.train.turn_images`) and the
    tower's turned copies both turn images with it."""
    b = f.shape[0]
    flip = torch.ones(b, device=f.device) if flip is None else flip
    t = torch.zeros(b, 2, device=f.device) if shift is None else shift
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos * flip, -sin, t[:, 0]], 1), torch.stack([sin * flip, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(f.dtype), list(f.shape), align_corners=False)
    return F.grid_sample(f, grid, mode="bilinear", padding_mode="border", align_corners=False)


def turned_copies(x: torch.Tensor, turns: int) -> torch.Tensor:
    """(B, C, H, W) → (turns · B, C, H, W): the batch, then the batch turned by 90° / turns, by 2 × 90° /
    turns, … (:func:`turn`). The quarter turns themselves are D4's, exact inside the tower."""
    if turns == 1:
        return x
    b = x.shape[0]
    angles = torch.arange(1, turns, dtype=torch.float32, device=x.device).repeat_interleave(b) * (math.pi / 2 / turns)
    return torch.cat([x, turn(x.repeat(turns - 1, 1, 1, 1), angles)])


class D4Tower(nn.Module):
    """A D4-invariant CNN, the image tower of :class:`~galaxalign.model.TriModalCLIP` with ``model:
    {tower: d4}``: four stages of two 3 × 3 D4 convolutions (widths w, 2w, 4w, 8w per orientation),
    2 × 2 pooling between stages, then the mean over space, the max over the orientations and a linear
    map to ``output_dim`` (the embedding; a probe's classes).

    ``turns`` > 1 pools over turned copies inside the network as well (:func:`turned_copies`): the max
    over the orientations runs over the copies' too, so the features also keep still under turns by
    90° / turns (up to interpolation), at ``turns`` times the arithmetic and no more parameters."""

    def __init__(self, width: int, output_dim: int, image_size: int | None, channels: int = 3, norm: str = "group",
                 drop: float = 0.0, turns: int = 1):
        super().__init__()
        w, self.image_size, self.output_dim, self.turns = width, image_size, output_dim, turns
        convs = [LiftD4(channels, w), ConvD4(w, w), ConvD4(w, 2 * w), ConvD4(2 * w, 2 * w),
                 ConvD4(2 * w, 4 * w), ConvD4(4 * w, 4 * w), ConvD4(4 * w, 8 * w), ConvD4(8 * w, 8 * w)]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(_norm(norm, c.out_channels if isinstance(c, LiftD4) else c.cout) for c in convs)
        self.pool, self.invariant, self.drop = PoolD4(), InvariantD4(), nn.Dropout(drop)
        self.proj = nn.Linear(8 * w, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = turned_copies(x, self.turns)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(norm(conv(x)), inplace=True)
            if i in (1, 3, 5):
                x = self.pool(x)
        f = self.invariant(x)
        if self.turns > 1:
            f = f.unflatten(0, (self.turns, b)).amax(0)
        return self.proj(self.drop(f))


def d4_cnn(channels: int, width: int, classes: int, drop: float = 0.3) -> D4Tower:
    """The VGG-style probe of ``bench/first_recipes.py`` made D4-invariant: the tower with BatchNorm,
    dropout and a classifier in place of the projection."""
    return D4Tower(width, classes, None, channels, norm="batch", drop=drop)
