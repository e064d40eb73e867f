"""What a galaxy of each Galaxy10 class is made of: GalSim recipes of physical components (Sérsic
bulges, exponential and inclined disks, bars, logarithmic spiral arms, star-forming knots, tidal tails)
and their colours. The classic renderer (:mod:`galaxalign.synth`) and the diverse sky
(:mod:`galaxalign.sky`) both draw galaxies from :func:`galaxy_components`."""
from __future__ import annotations

import math

import numpy as np

from .taxonomy import GALAXY10

__all__ = ["galaxy_components", "BANDS", "COLOURS", "DECALS_PIXSCALE", "TRUTH_COLUMNS"]

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


def galaxy_components(galsim, cls: int, rng: np.random.Generator, pixel_scale: float, p: dict) -> tuple[dict, float]:
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
