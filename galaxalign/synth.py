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
from .morphology import (BANDS, COLOURS, DECALS_PIXSCALE, TRUTH_COLUMNS,  # noqa: F401 (TRUTH_COLUMNS: API)
                         galaxy_components)
from .taxonomy import GALAXY10

__all__ = ["GALAXY10_COUNTS", "SKIES", "render_galaxy", "synth_survey", "TRUTH_COLUMNS", "load_truth", "class_counts_for"]

# Real Galaxy10 DECaLS class counts (astroNN's Galaxy10 DECaLS release): the default class proportions.
GALAXY10_COUNTS = (1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873)
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
    comps, q = galaxy_components(galsim, cls, rng, pixel_scale, p)

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
