"""A synthetic Galaxy10 DECaLS survey rendered with GalSim: the embedded default data set.

Each galaxy is built from physical components — Sérsic bulges, exponential and inclined disks, bars,
logarithmic spiral arms, star-forming knots (``galsim.RandomKnots``), tidal tails — drawn in the g, r
and z bands with band-dependent colours, convolved with a Moffat PSF, given sky noise, and combined
to RGB with Lupton's asinh stretch (astropy) as DECaLS cutouts are (z, r, g → R, G, B).

>>> from galaxalign.synth import synth_survey
>>> stats = synth_survey("x.h5", n=100, size=64, seed=7)   # doctest: +SKIP
>>> stats["galaxies_per_second"]                           # doctest: +SKIP
60.3

The file follows the Galaxy10 DECaLS schema (``images`` (N, H, W, 3) uint8, ``ans``, ``ra``, ``dec``,
``redshift``, ``pxscale``) plus ``id_str`` and a ``truth/`` group with the true parameters of every
galaxy (see :func:`load_truth`). The same seed gives the same file, whatever the number of workers.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .fsutil import atomic_path
from .taxonomy import GALAXY10

__all__ = ["GALAXY10_COUNTS", "SKIES", "render_galaxy", "synth_survey", "load_truth", "class_counts_for"]

# Real Galaxy10 DECaLS class counts (astroNN's Galaxy10 DECaLS release): the default class proportions.
GALAXY10_COUNTS = (1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873)
DECALS_PIXSCALE = 0.262  # arcsec / pixel of a 256-px Galaxy10 cutout
BANDS = ("g", "r", "z")
# Relative flux per band (g, r, z) of each stellar population: old bulges are red, arms and knots blue.
COLOURS = {
    "bulge": (0.55, 1.0, 1.45),
    "disk": (0.8, 1.0, 1.15),
    "arms": (1.35, 1.0, 0.7),
    "knots": (1.6, 1.0, 0.6),
    "bar": (0.65, 1.0, 1.35),
}
TRUTH_COLUMNS = ("label", "hlr_arcsec", "flux_r", "axis_ratio", "angle_deg", "bulge_fraction", "sersic_n",
                 "n_arms", "pitch_deg", "bar_length_arcsec", "knot_fraction", "companion_sep_arcsec",
                 "psf_fwhm_arcsec", "sky_sigma", "pixel_scale")


def class_counts_for(n: int, weights=GALAXY10_COUNTS) -> np.ndarray:
    """Split ``n`` galaxies among classes in proportion to ``weights`` (largest remainder), so every
    class with weight gets at least one galaxy once ``n`` ≥ the number of classes.

    >>> class_counts_for(100).tolist()
    [6, 10, 15, 11, 2, 11, 10, 15, 8, 12]
    """
    w = np.asarray(weights, float)
    if n < 0 or w.ndim != 1 or (w < 0).any() or w.sum() <= 0:
        raise ValueError("class weights must be non-negative with a positive sum, and n ≥ 0")
    raw = n * w / w.sum()
    counts = np.floor(raw).astype(int)
    if n >= (w > 0).sum():
        counts[(counts == 0) & (w > 0)] = 1
    while counts.sum() > n:
        counts[np.argmax(counts - raw)] -= 1
    while counts.sum() < n:
        counts[np.argmax(raw - counts)] += 1
    return counts


# --- components -------------------------------------------------------------------------------------

def _spiral_disk(galsim, h: float, n_arms: int, pitch_deg: float, r0: float, amp: float, pixel_scale: float,
                 phase: float):
    """A face-on exponential disk with ``n_arms`` logarithmic arms, as an InterpolatedImage.

    The arm pattern is analytic in the disk frame: I(r, φ) = exp(-r/h) · (Σ_k exp(-Δφ_k² / 2w²))^1,
    Δφ_k the angle from arm k, which follows φ = φ_k + ln(r/r0) / tan(pitch).
    """
    scale = pixel_scale / 2  # oversample so the later shear and PSF see smooth arms
    half = int(math.ceil(6 * h / scale))
    u = (np.arange(-half, half + 1)) * scale
    X, Y = np.meshgrid(u, u)
    r = np.hypot(X, Y) + 1e-6
    phi = np.arctan2(Y, X)
    wind = np.log(np.maximum(r, r0) / r0) / math.tan(math.radians(pitch_deg))
    width = 0.35 + 0.1 * (4 - n_arms) / 2  # angular width of an arm (rad)
    pattern = np.zeros_like(r)
    for k in range(n_arms):
        d = np.angle(np.exp(1j * (phi - phase - 2 * math.pi * k / n_arms - wind)))
        pattern += np.exp(-0.5 * (d / width) ** 2)
    arms = np.exp(-r / h) * pattern * amp * (r > 0.6 * r0) * np.clip((r - 0.6 * r0) / (0.4 * r0), 0, 1)
    image = galsim.Image(arms.astype(np.float64), scale=scale)
    return galsim.InterpolatedImage(image, calculate_stepk=False, calculate_maxk=False, normalization="flux")


def _bar(galsim, length: float, q: float, angle_deg: float):
    return galsim.Sersic(n=0.5, half_light_radius=length * 0.55).shear(q=q, beta=angle_deg * galsim.degrees)


# One recipe per Galaxy10 class (a registry, like symbols._GLYPHS). A recipe gets the class slug, the
# generator, the half-light radius drawn for the galaxy (arcsec), the pixel scale, a GalSim seed and the
# truth dict ``p``; it returns ``({population: (GSObject, flux share)}, axis ratio, Sersic n, bulge
# fraction)``. The draws happen in the same order as before the split, so a seed gives the same file.
_RECIPES: dict = {}


def _recipe(*slugs: str):
    def register(fn):
        for slug in slugs:
            _RECIPES[slug] = fn
        return fn
    return register


@_recipe("round_smooth", "in_between_round_smooth", "cigar_shaped_smooth")
def _smooth(galsim, name, rng, hlr, pixel_scale, seed, p):
    n_sersic = float(rng.uniform(2.0, 4.0))
    q = {"round_smooth": rng.uniform(0.85, 1.0), "in_between_round_smooth": rng.uniform(0.5, 0.78),
         "cigar_shaped_smooth": rng.uniform(0.18, 0.38)}[name]
    hlr *= 0.5 if name == "cigar_shaped_smooth" else 0.6
    p["hlr_arcsec"] = hlr
    return {"bulge": (galsim.Sersic(n=n_sersic, half_light_radius=hlr, trunc=6 * hlr), 1.0)}, q, n_sersic, 1.0


@_recipe("edge_on_without_bulge", "edge_on_with_bulge")
def _edge_on(galsim, name, rng, hlr, pixel_scale, seed, p):
    comps, n_sersic, bulge_frac = {}, float("nan"), 0.0
    disk = galsim.InclinedExponential(float(rng.uniform(84, 90)) * galsim.degrees, half_light_radius=hlr * 0.85,
                                      scale_h_over_r=float(rng.uniform(0.05, 0.11)))
    if name == "edge_on_with_bulge":
        bulge_frac = float(rng.uniform(0.25, 0.5))
        n_sersic = float(rng.uniform(1.5, 4.0))
        bulge = galsim.Sersic(n=n_sersic, half_light_radius=hlr * rng.uniform(0.18, 0.3)).shear(
            q=float(rng.uniform(0.6, 0.9)), beta=0 * galsim.degrees)
        comps["bulge"] = (bulge, bulge_frac)
    comps["disk"] = (disk, 1 - bulge_frac)
    return comps, 1.0, n_sersic, bulge_frac


@_recipe("barred_spiral", "unbarred_tight_spiral", "unbarred_loose_spiral")
def _spiral(galsim, name, rng, hlr, pixel_scale, seed, p):
    barred = name == "barred_spiral"
    tight = name == "unbarred_tight_spiral"
    pitch = float(rng.uniform(8, 14) if tight else rng.uniform(24, 36) if name.endswith("loose_spiral")
                  else rng.uniform(14, 24))
    n_arms = int(rng.choice([2, 2, 2, 3, 4]))
    h = hlr / 1.678  # exponential scale length
    bar_len = float(rng.uniform(0.5, 0.8) * hlr) if barred else 0.0
    r0 = bar_len if barred else float(rng.uniform(0.25, 0.45) * h)
    phase = float(rng.uniform(0, 2 * math.pi))
    bulge_frac = float(rng.uniform(0.25, 0.4) if tight else rng.uniform(0.08, 0.2))
    n_sersic = float(rng.uniform(1.5, 3.5))
    arm_frac = float(rng.uniform(0.35, 0.5))
    comps = {"bulge": (galsim.Sersic(n=n_sersic, half_light_radius=hlr * rng.uniform(0.12, 0.2)), bulge_frac)}
    rest = 1 - bulge_frac
    if barred:
        bar_frac = float(rng.uniform(0.12, 0.2))
        comps["bar"] = (_bar(galsim, bar_len, float(rng.uniform(0.15, 0.25)), math.degrees(phase)), bar_frac)
        rest -= bar_frac
    comps["disk"] = (galsim.Exponential(half_light_radius=hlr), rest * (1 - arm_frac))
    comps["arms"] = (_spiral_disk(galsim, h, n_arms, pitch, r0, 1.0, pixel_scale, phase), rest * arm_frac)
    knots = galsim.RandomKnots(npoints=int(rng.integers(15, 40)), half_light_radius=hlr, rng=galsim.BaseDeviate(seed))
    comps["knots"] = (knots, rest * 0.1)
    q = float(rng.uniform(0.55, 1.0))  # cos(inclination) of a disk seen near face-on
    p.update(n_arms=n_arms, pitch_deg=pitch, bar_length_arcsec=bar_len)
    return comps, q, n_sersic, bulge_frac


@_recipe("disturbed")
def _disturbed(galsim, name, rng, hlr, pixel_scale, seed, p):
    knot_frac = float(rng.uniform(0.3, 0.55))
    base = galsim.Exponential(half_light_radius=hlr).shear(g1=float(rng.uniform(-0.3, 0.3)),
                                                           g2=float(rng.uniform(-0.3, 0.3)))
    lopsided = galsim.Exponential(half_light_radius=hlr * 0.7).shift(float(rng.uniform(0.3, 0.7) * hlr), 0)
    knots = galsim.RandomKnots(npoints=int(rng.integers(30, 80)), half_light_radius=hlr * 1.2,
                               rng=galsim.BaseDeviate(seed)).shift(float(rng.uniform(0, 0.4) * hlr), 0)
    comps = {"disk": (base, (1 - knot_frac) * 0.6), "bulge": (lopsided, (1 - knot_frac) * 0.4),
             "knots": (knots, knot_frac)}
    q = float(rng.uniform(0.6, 1.0))
    p["knot_fraction"] = knot_frac
    return comps, q, float("nan"), 0.0


@_recipe("merging")
def _merging(galsim, name, rng, hlr, pixel_scale, seed, p):
    sep = float(rng.uniform(1.2, 2.4) * hlr)
    ratio = float(rng.uniform(0.35, 1.0))  # flux of the companion / primary
    n_sersic = float(rng.uniform(1.5, 4.0))
    g1 = galsim.Sersic(n=n_sersic, half_light_radius=hlr * 0.5).shift(-sep / 2 * ratio, 0)
    g2 = galsim.Sersic(n=float(rng.uniform(1.0, 3.0)), half_light_radius=hlr * 0.45).shift(sep / 2, 0)
    # tidal tails: knots strung along two arcs leaving the pair in opposite directions
    tail = []
    bend = float(rng.uniform(0.8, 1.6))
    for sgn in (-1, 1):
        for t in np.linspace(0.2, 1.0, 14):
            ang = sgn * (math.pi / 2) + sgn * bend * t
            rr = sep * (0.4 + 0.9 * t)
            tail.append(galsim.Gaussian(sigma=hlr * 0.22 * (1.1 - 0.5 * t)).withFlux(1.0 - 0.7 * t)
                        .shift(sgn * 0.3 * sep + rr * math.cos(ang) * 0.6, rr * math.sin(ang) * 0.6))
    tails = galsim.Add(tail).withFlux(1.0)
    tail_frac = float(rng.uniform(0.15, 0.3))
    comps = {"bulge": (g1, (1 - tail_frac) / (1 + ratio)), "disk": (g2, (1 - tail_frac) * ratio / (1 + ratio)),
             "knots": (tails, tail_frac)}
    p["companion_sep_arcsec"] = sep
    return comps, 1.0, n_sersic, 0.0


def _galaxy(galsim, cls: int, rng: np.random.Generator, pixel_scale: float, p: dict) -> tuple[dict, float]:
    """Components of one galaxy of Galaxy10 class ``cls``: ``({population: (GSObject, flux share)},
    axis ratio)``. ``p`` receives the true parameters."""
    seed = int(rng.integers(1, 2**31 - 1))
    hlr = float(rng.uniform(3.5, 9.0))  # arcsec; a 256-px DECaLS cutout spans 67"
    p["hlr_arcsec"] = hlr
    name = GALAXY10[cls].slug
    if name not in _RECIPES:  # pragma: no cover - GALAXY10 has exactly the classes above
        raise ValueError(f"no recipe for class {cls} ({name})")
    comps, q, n_sersic, bulge_frac = _RECIPES[name](galsim, name, rng, hlr, pixel_scale, seed, p)
    p.update(axis_ratio=float(q), sersic_n=n_sersic, bulge_fraction=bulge_frac)
    return comps, q


def render_galaxy(cls: int, rng: np.random.Generator, size: int = 64, pixel_scale: float | None = None):
    """Render one galaxy of Galaxy10 class ``cls`` (0–9).

    Returns ``(rgb, params)``: ``rgb`` (size, size, 3) uint8, Lupton asinh of (z, r, g); ``params`` the
    true parameters (keys of ``TRUTH_COLUMNS``; ``nan`` where a parameter does not apply).
    """
    import galsim
    from astropy.visualization import make_lupton_rgb

    if not 0 <= cls < len(GALAXY10):
        raise ValueError(f"class {cls} is out of range for Galaxy10 (0–{len(GALAXY10) - 1})")
    pixel_scale = pixel_scale or DECALS_PIXSCALE * 256 / size
    p = {c: float("nan") for c in TRUTH_COLUMNS}
    p.update(label=cls, n_arms=0, knot_fraction=0.0, bar_length_arcsec=0.0, pixel_scale=pixel_scale)
    comps, q = _galaxy(galsim, cls, rng, pixel_scale, p)

    angle = float(rng.uniform(0, 180))
    flux_r = float(10 ** rng.uniform(3.6, 4.4)) * (size / 64) ** 2
    psf_fwhm = float(rng.uniform(1.0, 1.6))
    sky = 1.0
    offset = rng.normal(0, 0.6, 2) * (size / 64)  # cutouts are not perfectly centred
    p.update(angle_deg=angle, flux_r=flux_r, psf_fwhm_arcsec=psf_fwhm, sky_sigma=sky)

    bands = []
    for b, band in enumerate(BANDS):
        parts = [obj.withFlux(flux_r * share * COLOURS[pop][b]) for pop, (obj, share) in comps.items() if share > 0]
        gal = galsim.Add(parts)
        if q < 0.999:
            gal = gal.shear(q=q, beta=0 * galsim.degrees)
        gal = gal.rotate(angle * galsim.degrees)
        psf = galsim.Moffat(beta=3.5, fwhm=psf_fwhm * (1.08, 1.0, 0.94)[b])  # seeing improves to the red
        img = galsim.Convolve(gal, psf).drawImage(nx=size, ny=size, scale=pixel_scale, offset=offset)
        arr = img.array + rng.normal(0, sky, (size, size))
        bands.append(arr)
    g, r, z = bands
    # Lupton et al. (2004) asinh: keeps colour in bright cores while showing faint arms and tails.
    rgb = make_lupton_rgb(z, r, g, minimum=-0.5 * sky, stretch=12 * sky, Q=8)
    return rgb, p


SKIES = ("diverse", "classic")


@dataclass(frozen=True)
class _Job:
    index: int
    label: int
    seed: int
    size: int
    sky: str = "diverse"
    nuisance: object = None


def _render_job(job: _Job):
    rng = np.random.default_rng([job.seed, job.index])
    if job.sky == "classic":
        rgb, params = render_galaxy(job.label, rng, job.size)
    else:
        from .sky import render_sky

        rgb, params = render_sky(job.label, rng, job.size, job.nuisance)
    sky_rng = np.random.default_rng([job.seed, job.index, 1])
    # a DECaLS-like footprint: ra anywhere, dec between -20 and +80; redshift smaller for big galaxies
    meta = (float(sky_rng.uniform(0, 360)), float(np.degrees(np.arcsin(sky_rng.uniform(-0.34, 0.98)))),
            float(np.clip(0.35 / params["hlr_arcsec"] * sky_rng.lognormal(0, 0.25), 0.005, 0.3)))
    return job.index, rgb, params, meta


def _jobs(n: int, size: int, seed: int, weights, sky: str = "diverse", nuisance=None) -> list[_Job]:
    counts = class_counts_for(n, weights)
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    return [_Job(i, int(l), seed, size, sky, nuisance) for i, l in enumerate(labels)]


def _iter_rendered(jobs: list[_Job], workers: int) -> Iterator[tuple]:
    if workers <= 1:
        yield from map(_render_job, jobs)
        return
    # fork keeps start-up cheap; every job seeds its own generator, so the order of workers is irrelevant
    with get_context("fork").Pool(workers) as pool:
        yield from pool.imap_unordered(_render_job, jobs, chunksize=4)


def synth_survey(out: str | os.PathLike, n: int = 1000, size: int = 64, seed: int = 0, weights=GALAXY10_COUNTS,
                 workers: int | None = None, progress: bool = True, sky: str = "diverse", nuisance=None) -> dict:
    """Render ``n`` galaxies to the HDF5 file ``out`` (Galaxy10 DECaLS schema + ``id_str`` + ``truth/``).

    ``sky="diverse"`` (the default) draws every nuisance at random (:mod:`galaxalign.sky`, ranges from
    ``nuisance``, a :class:`galaxalign.sky.Nuisance`); ``sky="classic"`` is the first renderer (one
    instrument: DECaLS bands, Moffat PSF, Lupton stretch), kept to reproduce the wave-1 figures.
    The file is written under a temporary name and renamed, so an interrupted run leaves no partial
    survey behind. Returns ``{"n", "size", "seconds", "galaxies_per_second", "path"}``.
    """
    from .sky import SKY_TEXT_COLUMNS, SKY_TRUTH_COLUMNS, Nuisance

    if n < 1:
        raise ValueError(f"a survey needs at least one galaxy, got n={n}")
    if not 16 <= size <= 512:
        raise ValueError(f"image size must be between 16 and 512 pixels, got {size}")
    if sky not in SKIES:
        raise ValueError(f"sky must be one of {', '.join(SKIES)}, got {sky!r}")
    nuisance = (nuisance or Nuisance()) if sky == "diverse" else None
    if nuisance is not None:
        nuisance.check()
    columns = TRUTH_COLUMNS + (SKY_TRUTH_COLUMNS if sky == "diverse" else ())
    text_columns = SKY_TEXT_COLUMNS if sky == "diverse" else ()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    jobs = _jobs(n, size, seed, weights, sky, nuisance)
    t0 = time.perf_counter()
    with atomic_path(out) as tmp:  # an interrupted run leaves no partial survey behind
        with h5py.File(tmp, "w") as f:
            images = f.create_dataset("images", (n, size, size, 3), np.uint8, chunks=(1, size, size, 3),
                                      compression="gzip", compression_opts=4)
            f["ans"] = np.array([j.label for j in jobs], np.uint8)
            ra, dec, z = np.zeros(n), np.zeros(n), np.zeros(n)
            truth = {c: np.zeros(n) for c in columns}
            text = {c: np.zeros(n, "S16") for c in text_columns}
            for i, rgb, params, meta in tqdm(_iter_rendered(jobs, workers), total=n, desc="rendering galaxies",
                                             unit="gal", disable=not progress):
                images[i] = rgb
                ra[i], dec[i], z[i] = meta
                for c in columns:
                    truth[c][i] = params[c]
                for c in text_columns:
                    text[c][i] = params[c].encode()
            f["ra"], f["dec"], f["redshift"] = ra, dec, z
            f["pxscale"] = truth["pixel_scale"] if sky == "diverse" else np.full(n, DECALS_PIXSCALE * 256 / size)
            f["id_str"] = np.array([f"synth-{seed}-{i:06d}" for i in range(n)], dtype="S")
            grp = f.create_group("truth")
            for c, v in {**truth, **text}.items():
                grp[c] = v
            f.attrs["generator"] = "galaxalign.synth"
            f.attrs["sky"] = sky
            if nuisance is not None:
                f.attrs["nuisance"] = json.dumps(asdict(nuisance))
            f.attrs["seed"] = seed
            f.attrs["label_set"] = "galaxy10"
            f.attrs["class_names"] = json.dumps(GALAXY10.class_names)

    seconds = time.perf_counter() - t0
    return {"path": str(out), "n": n, "size": size, "seconds": round(seconds, 3),
            "galaxies_per_second": round(n / seconds, 2), "workers": workers}


def load_truth(path: str | os.PathLike) -> pd.DataFrame:
    """The true parameters of a synthetic survey as a DataFrame indexed like the images."""
    with h5py.File(path, "r") as f:
        if "truth" not in f:
            raise KeyError(f"{path}: no truth/ table (not a galaxalign synthetic survey)")
        cols = {c: f["truth"][c][()] for c in f["truth"]}
    return pd.DataFrame({c: v.astype(str) if v.dtype.kind == "S" else v for c, v in cols.items()})
