"""The diverse simulated sky: our Galaxy10 galaxies seen through many instruments, depths and skies.

A model trained on one renderer learns that renderer. So everything that is not morphology is drawn at
random here, over the ranges real cut-outs span, and recorded in ``truth/``:

- **resolution**: the PSF family (Moffat with β from 2 to 5, Gaussian, Kolmogorov, an optical PSF with
  aberrations, a central obstruction and struts) and its FWHM relative to the galaxy, from HST-sharp
  (0.05 half-light radii) to half the galaxy's size (0.5; the benchmark sweeps to 1.2); the fraction of the stamp the galaxy fills, hence
  the pixel scale; centring offsets.
- **the field**: faint background galaxies, stars (some with diffraction spikes), a bright companion
  in projection that is not a merger (no tails, its own colour).
- **depth and detector**: S/N from 15 to 800 (log-uniform; the benchmark sweeps down to 5), correlated noise (resampled co-adds), a
  residual sky pedestal, cosmic rays in one band, a bad column or hot pixels.
- **bands and colour**: g r z (DECaLS), g r i (SDSS) or F435W F606W F814W (HST); each stellar
  population's flux follows a power law in wavelength (old bulges red, star-forming knots blue).
- **display**: the stretches cut-out services apply — Lupton asinh over a range of Q and stretch (half
  the galaxies), log (a third), linear (a sixth), on a fixed flux scale — and JPEG compression.

Morphology is widened inside the Galaxy10 classes: clumpy high-redshift disks and irregulars among the
disturbed, flocculent arms and rings among the spirals, lenses among the smooth, dust lanes across the
edge-ons. Each class keeps its defining feature; recipes are a registry (:data:`VARIANTS`).

>>> rgb, truth = render_sky(7, np.random.default_rng(0), 64)            # doctest: +SKIP
>>> truth["psf_family"], truth["band_set"], truth["stretch"]             # doctest: +SKIP
('kolmogorov', 'sdss', 'lupton')

Switch a nuisance off with :class:`Nuisance` (``Nuisance().but(stars=(0, 0))``); :data:`HELD_OUT`
names the factors the cross-configuration benchmark trains without and tests on.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields, replace
from typing import Callable

import numpy as np
from PIL import Image

from .taxonomy import GALAXY10

__all__ = ["Nuisance", "render_sky", "SKY_TRUTH_COLUMNS", "SKY_TEXT_COLUMNS", "BAND_SETS", "HELD_OUT", "VARIANTS"]

# band name → effective wavelength (nm); the reddest band goes to R, as cut-out services do
BAND_SETS = {
    "decals": (("g", 480.0), ("r", 620.0), ("z", 910.0)),
    "sdss": (("g", 477.0), ("r", 623.0), ("i", 763.0)),
    "hst": (("F435W", 435.0), ("F606W", 600.0), ("F814W", 810.0)),
}
# flux ∝ (λ / λ_mid)^slope: the spectral slope of each stellar population (red old stars, blue young ones)
SLOPES = {"bulge": 1.6, "bar": 1.3, "lens": 1.2, "disk": 0.5, "ring": -0.4, "arms": -0.7, "knots": -1.6, "dust": 0.5}
PSF_FAMILIES = ("moffat", "gaussian", "kolmogorov", "optical")
STRETCHES = ("lupton", "linear", "log")
SKY_TEXT_COLUMNS = ("psf_family", "band_set", "stretch", "variant")
SKY_TRUTH_COLUMNS = ("psf_beta", "psf_over_hlr", "fill", "offset_x_px", "offset_y_px", "n_background", "n_stars",
                     "n_spikes", "companion", "snr", "noise_corr_px", "sky_pedestal", "n_cosmic_rays",
                     "bad_pixels", "stretch_q", "stretch_scale", "jpeg_quality")


@dataclass(frozen=True)
class Nuisance:
    """The ranges of everything that is not morphology. ``(lo, hi)`` pairs are sampled uniformly
    (log-uniformly for ``psf_over_hlr`` and ``snr``); probabilities are in [0, 1]."""

    psf_families: tuple = PSF_FAMILIES
    psf_over_hlr: tuple = (0.05, 0.5)   # PSF FWHM / galaxy half-light radius
    fill: tuple = (0.08, 0.2)           # galaxy half-light radius / stamp side
    offset: float = 0.03                # centring offset (σ, fraction of the stamp side)
    background: tuple = (0, 4)          # faint background galaxies
    stars: tuple = (0, 2)
    spike_fraction: float = 0.35        # stars with diffraction spikes
    companion: float = 0.15             # chance of a bright companion in projection
    snr: tuple = (15.0, 800.0)        # Galaxy10's galaxies are bright; the sweep goes down to 5
    correlated_noise: float = 0.5       # chance the noise is correlated (resampled co-add)
    cosmic_rays: tuple = (0, 1)
    bad_pixels: float = 0.15            # chance of a bad column or hot pixels
    band_sets: tuple = tuple(BAND_SETS)
    stretches: tuple = ("lupton", "lupton", "lupton", "log", "log", "linear")  # repeat a name to weight it
    jpeg: float = 0.4                   # chance of JPEG compression (quality 55–95)
    variants: float = 0.4               # chance of a widened-morphology variant of the class

    def but(self, **changes) -> "Nuisance":
        """A copy with some ranges changed (``Nuisance().but(stars=(0, 0), jpeg=0)``)."""
        return replace(self, **changes)

    @classmethod
    def quiet(cls) -> "Nuisance":
        """Every nuisance off: one Moffat PSF family, DECaLS bands, Lupton, no neighbours, high S/N."""
        return cls(psf_families=("moffat",), offset=0.0, background=(0, 0), stars=(0, 0), companion=0.0,
                   snr=(200.0, 200.0), correlated_noise=0.0, cosmic_rays=(0, 0), bad_pixels=0.0,
                   band_sets=("decals",), stretches=("lupton",), jpeg=0.0, variants=0.0)

    def check(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(f.default, float) and not 0 <= v <= 1:
                raise ValueError(f"nuisance {f.name} must be a probability or fraction in [0, 1], got {v}")
            if isinstance(f.default, tuple) and isinstance(f.default[0], (int, float)) and (len(v) != 2 or v[0] > v[1]):
                raise ValueError(f"nuisance {f.name} must be a (low, high) pair with low ≤ high, got {v}")
        for name, allowed, chosen in (("psf_families", PSF_FAMILIES, self.psf_families),
                                      ("band_sets", tuple(BAND_SETS), self.band_sets),
                                      ("stretches", STRETCHES, self.stretches)):
            bad = [c for c in chosen if c not in allowed]
            if not chosen or bad:
                raise ValueError(f"nuisance {name}: {bad or 'empty'}; choose from {', '.join(allowed)}")


# The factors the cross-configuration benchmark holds out: (name, training ranges, test ranges).
HELD_OUT = {
    "psf_kolmogorov": (Nuisance().but(psf_families=("moffat", "gaussian", "optical")),
                       Nuisance().but(psf_families=("kolmogorov",))),
    "crowded_field": (Nuisance().but(background=(0, 3), stars=(0, 1), companion=0.05),
                      Nuisance().but(background=(8, 14), stars=(3, 5), companion=0.6)),
    "pixel_scale": (Nuisance().but(fill=(0.1, 0.2)), Nuisance().but(fill=(0.05, 0.08))),
    "band_set_hst": (Nuisance().but(band_sets=("decals", "sdss")), Nuisance().but(band_sets=("hst",))),
}


def _loguniform(rng, lo, hi) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _randint(rng, pair) -> int:
    return int(rng.integers(pair[0], pair[1] + 1))


# --- widened morphology: variants inside each class ------------------------------------------------

def _ring_profile(galsim, radius: float, width: float, scale: float):
    half = int(math.ceil((radius + 4 * width) / scale))
    u = np.arange(-half, half + 1) * scale
    r = np.hypot(*np.meshgrid(u, u))
    img = np.exp(-0.5 * ((r - radius) / width) ** 2)
    return galsim.InterpolatedImage(galsim.Image(img, scale=scale), calculate_stepk=False, calculate_maxk=False,
                                    normalization="flux")


def _flocculent(galsim, comps, rng, hlr, seed):
    """Many short arm fragments rather than grand-design arms: arms dimmed, knots multiplied."""
    obj, share = comps["arms"]
    comps["arms"] = (obj, share * 0.45)
    knot_share = comps["knots"][1] + share * 0.55
    comps["knots"] = (galsim.RandomKnots(npoints=int(rng.integers(60, 140)), half_light_radius=hlr * 1.1,
                                         rng=galsim.BaseDeviate(seed + 1)), knot_share)


def _ring(galsim, comps, rng, hlr, seed):
    """An inner ring (at the bar's end for a barred spiral) of young stars."""
    radius = hlr * float(rng.uniform(0.5, 0.9))
    share = float(rng.uniform(0.1, 0.2))
    comps["ring"] = (_ring_profile(galsim, radius, radius * 0.12, hlr / 25), share)
    obj, s = comps["disk"]
    comps["disk"] = (obj, max(0.05, s - share))


def _clumpy(galsim, comps, rng, hlr, seed):
    """A high-redshift clumpy disk: a few giant, resolved star-forming clumps carry much of the light."""
    clumps = []
    for _ in range(int(rng.integers(4, 9))):
        r, phi = hlr * float(rng.exponential(0.6)), float(rng.uniform(0, 2 * math.pi))
        clumps.append(galsim.Gaussian(sigma=hlr * float(rng.uniform(0.06, 0.15)))
                      .withFlux(float(rng.uniform(0.5, 1.5))).shift(r * math.cos(phi), r * math.sin(phi)))
    comps["knots"] = (galsim.Add(clumps).withFlux(1.0), float(rng.uniform(0.35, 0.55)))


def _irregular(galsim, comps, rng, hlr, seed):
    """No regular body at all: scattered knots over a lopsided faint exponential."""
    comps.pop("bulge", None)
    base = galsim.Exponential(half_light_radius=hlr * 1.2).shear(g1=float(rng.uniform(-0.4, 0.4)),
                                                                g2=float(rng.uniform(-0.4, 0.4)))
    comps["disk"] = (base.shift(float(rng.uniform(-0.3, 0.3) * hlr), 0), 0.4)
    comps["knots"] = (galsim.RandomKnots(npoints=int(rng.integers(20, 60)), half_light_radius=hlr * 1.3,
                                         rng=galsim.BaseDeviate(seed + 3)), 0.6)


def _lens(galsim, comps, rng, hlr, seed):
    """A lens: a flat-topped plateau around the bulge (n ≈ 0.3), common in S0-like smooth galaxies."""
    share = float(rng.uniform(0.12, 0.3))
    obj, s = comps["bulge"]
    comps["bulge"] = (obj, s - share)
    comps["lens"] = (galsim.Sersic(n=0.35, half_light_radius=hlr * float(rng.uniform(0.9, 1.4))), share)


def _dust_lane(galsim, comps, rng, hlr, seed):
    """A dust lane along the mid-plane: light removed in a thin layer (absorption as negative flux)."""
    depth = float(rng.uniform(0.1, 0.25))
    comps["dust"] = (galsim.InclinedExponential(89.5 * galsim.degrees, half_light_radius=hlr * 0.8,
                                                scale_h_over_r=0.02), -depth)


# class slug → [(variant name, recipe)]: a variant is drawn with probability Nuisance.variants
VARIANTS: dict[str, list[tuple[str, Callable]]] = {
    "disturbed": [("clumpy", _clumpy), ("irregular", _irregular)],
    "merging": [],
    "round_smooth": [("lens", _lens)],
    "in_between_round_smooth": [("lens", _lens)],
    "cigar_shaped_smooth": [("lens", _lens)],
    "barred_spiral": [("ring", _ring), ("flocculent", _flocculent)],
    "unbarred_tight_spiral": [("flocculent", _flocculent), ("ring", _ring)],
    "unbarred_loose_spiral": [("flocculent", _flocculent), ("clumpy", _clumpy)],
    "edge_on_without_bulge": [("dust_lane", _dust_lane)],
    "edge_on_with_bulge": [("dust_lane", _dust_lane)],
}


# --- the field: PSF, neighbours -----------------------------------------------------------------------

_PSF_POOL: dict = {}
FAST = None  # GSParams shared by every drawing (set on first use): 2 % folding, 0.5 % maxk thresholds


def _gsparams(galsim):
    global FAST
    if FAST is None:
        FAST = galsim.GSParams(folding_threshold=2e-2, maxk_threshold=5e-3)
    return FAST


def _tabulated(galsim, key: tuple, make: Callable):
    """A unit-FWHM PSF profile tabulated once per process as an image (±5 FWHM, 1/4 FWHM pixels):
    an aberrated optical PSF costs 0.1 s to build and is slow to convolve analytically."""
    if key not in _PSF_POOL:
        img = make().drawImage(nx=40, ny=40, scale=1 / 4, method="no_pixel")
        _PSF_POOL[key] = galsim.InterpolatedImage(img, normalization="flux", gsparams=_gsparams(galsim))
    return _PSF_POOL[key]


def _optical(galsim, k: int):
    """One of eight fixed aberration sets (obscuration, and struts for half of them), unit FWHM."""
    def make():
        ab = np.random.default_rng([12345, k])
        return galsim.OpticalPSF(
            lam_over_diam=1 / 1.03, defocus=float(ab.uniform(-0.4, 0.4)), astig1=float(ab.uniform(-0.3, 0.3)),
            astig2=float(ab.uniform(-0.3, 0.3)), coma1=float(ab.uniform(-0.2, 0.2)),
            coma2=float(ab.uniform(-0.2, 0.2)), obscuration=float(ab.uniform(0.1, 0.35)),
            nstruts=4 if k % 2 == 0 else 0)
    return _tabulated(galsim, ("optical", k % 8), make)


def _psf(galsim, family: str, fwhm: float, beta: float, k: int):
    if family == "moffat":
        return galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=_gsparams(galsim))
    if family == "gaussian":
        return galsim.Gaussian(fwhm=fwhm, gsparams=_gsparams(galsim))
    if family == "kolmogorov":
        return galsim.Kolmogorov(fwhm=fwhm, gsparams=_gsparams(galsim))
    return _optical(galsim, k).dilate(fwhm)


def _neighbours(galsim, rng, nz: Nuisance, hlr: float, half_field: float, p: dict) -> list[tuple]:
    """``[(GSObject of unit flux, flux relative to the galaxy, spectral slope, is_star_with_spikes)]``."""
    out = []
    p["n_background"] = n_bg = _randint(rng, nz.background)
    for _ in range(n_bg):
        obj = galsim.Exponential(half_light_radius=hlr * float(rng.uniform(0.08, 0.3))).shear(
            q=float(rng.uniform(0.3, 1.0)), beta=float(rng.uniform(0, 180)) * galsim.degrees)
        pos = rng.uniform(-half_field, half_field, 2)
        out.append((obj.shift(*pos), float(10 ** rng.uniform(-2.7, -1.3)), float(rng.uniform(-0.5, 2.5)), False))
    p["n_stars"] = n_st = _randint(rng, nz.stars)
    spikes = 0
    for _ in range(n_st):
        pos = rng.uniform(-half_field, half_field, 2)
        spiky = bool(rng.random() < nz.spike_fraction)
        spikes += spiky
        flux = float(10 ** rng.uniform(-1.5, 0.3 if spiky else -0.3))
        out.append((galsim.DeltaFunction().shift(*pos), flux, float(rng.uniform(-1.0, 1.5)), spiky))
    p["n_spikes"] = spikes
    p["companion"] = float(rng.random() < nz.companion)
    if p["companion"]:
        sep = hlr * float(rng.uniform(1.8, 3.2))
        ang = float(rng.uniform(0, 2 * math.pi))
        comp = galsim.Sersic(n=float(rng.uniform(1.0, 4.0)), half_light_radius=hlr * float(rng.uniform(0.3, 0.7)))
        comp = comp.shear(q=float(rng.uniform(0.4, 1.0)), beta=float(rng.uniform(0, 180)) * galsim.degrees)
        out.append((comp.shift(sep * math.cos(ang), sep * math.sin(ang)), float(rng.uniform(0.3, 1.0)),
                    float(rng.uniform(-0.5, 2.0)), False))
    return out


def _spikes(img: np.ndarray, x: float, y: float, peak: float, length: float) -> None:
    """Four diffraction spikes (struts) from a bright star at pixel (x, y), in place."""
    h, w = img.shape
    yy, xx = np.indices(img.shape)
    for dx, dy in ((xx - x, yy - y), (yy - y, xx - x)):
        along = np.abs(dx)
        core = np.exp(-0.5 * (dy / 0.6) ** 2)
        img += peak * 0.02 * core * np.exp(-along / length) * (along > 1.5)


# --- detector and display ------------------------------------------------------------------------------

def _noise(rng, shape, sigma: float, corr_px: float) -> np.ndarray:
    white = rng.normal(0.0, 1.0, shape)
    if corr_px > 0:
        from scipy.ndimage import gaussian_filter

        white = gaussian_filter(white, corr_px, mode="wrap")
        white /= white.std() + 1e-12
    return white * sigma


def _cosmic_ray(rng, img: np.ndarray, sigma: float) -> None:
    h, w = img.shape
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    ang, length = rng.uniform(0, math.pi), rng.uniform(2, 9)
    amp = sigma * rng.uniform(20, 120)
    for t in np.linspace(0, length, int(length * 3) + 1):
        x, y = int(x0 + t * math.cos(ang)), int(y0 + t * math.sin(ang))
        if 0 <= x < w and 0 <= y < h:
            img[y, x] = max(img[y, x], amp)


def _stretch(rng, bands: list[np.ndarray], sigma: float, kind: str, p: dict) -> np.ndarray:
    """Three flux images (blue → red) to 8-bit RGB (red band → R) with a cut-out service's stretch."""
    r, g, b = bands[2], bands[1], bands[0]
    if kind == "lupton":
        from astropy.visualization import make_lupton_rgb

        q, s = float(rng.uniform(2, 12)), _loguniform(rng, 5, 40)
        p["stretch_q"], p["stretch_scale"] = q, s
        return make_lupton_rgb(r, g, b, minimum=-0.5 * sigma, stretch=s * sigma, Q=q)
    # a fixed flux scale, as a survey's viewer has: the sky a few σ above black, the top at the bright
    # end of the image (never below 10 σ, so a faint galaxy stays faint rather than noise filling the range)
    stack = np.stack([r, g, b], -1)
    lo = -float(rng.uniform(1.0, 3.0)) * sigma
    hi = max(float(np.percentile(stack, 99.5)), 10 * sigma) * float(rng.uniform(0.4, 1.0))
    x = np.clip((stack - lo) / max(hi - lo, 1e-9), 0, 1)
    if kind == "log":
        a = _loguniform(rng, 10, 300)
        p["stretch_q"], p["stretch_scale"] = float("nan"), a
        x = np.log1p(a * x) / math.log1p(a)
    else:
        p["stretch_q"], p["stretch_scale"] = float("nan"), float(hi - lo) / sigma
    return (x * 255 + 0.5).astype(np.uint8)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


# --- one galaxy ---------------------------------------------------------------------------------------

def _morphology(galsim, cls: int, rng, nz: Nuisance, p: dict):
    from .morphology import galaxy_components

    comps, q = galaxy_components(galsim, cls, rng, 0.8, p)
    hlr = p["hlr_arcsec"]
    p["variant"] = "classic"
    options = VARIANTS[GALAXY10[cls].slug]
    if options and rng.random() < nz.variants:
        name, recipe = options[int(rng.integers(len(options)))]
        recipe(galsim, comps, rng, hlr, int(rng.integers(1, 2**30)))
        p["variant"] = name
    return comps, q, hlr


def _field_setup(rng, nz: Nuisance, size: int, hlr: float, p: dict) -> tuple:
    """Pixel scale, offset, PSF family, FWHM and β, band set: the instrument this galaxy is seen with."""
    fill = float(rng.uniform(*nz.fill))
    scale = hlr / (fill * size)
    offset = rng.normal(0, nz.offset * size, 2) if nz.offset > 0 else np.zeros(2)
    family = nz.psf_families[int(rng.integers(len(nz.psf_families)))]
    ratio = _loguniform(rng, *nz.psf_over_hlr)
    beta = float(rng.uniform(2.0, 5.0)) if family == "moffat" else float("nan")
    band_set = nz.band_sets[int(rng.integers(len(nz.band_sets)))]
    p.update(fill=fill, pixel_scale=scale, offset_x_px=float(offset[0]), offset_y_px=float(offset[1]),
             psf_family=family, psf_over_hlr=ratio, psf_fwhm_arcsec=ratio * hlr, psf_beta=beta, band_set=band_set)
    return scale, offset, family, ratio * hlr, beta, band_set


def render_sky(cls: int, rng: np.random.Generator, size: int = 64, nuisance: Nuisance | None = None):
    """Render one galaxy of Galaxy10 class ``cls`` on the diverse sky.

    Returns ``(rgb, params)``: (size, size, 3) uint8 and the truth — the morphology parameters of
    :data:`galaxalign.morphology.TRUTH_COLUMNS` plus every nuisance (:data:`SKY_TRUTH_COLUMNS`,
    :data:`SKY_TEXT_COLUMNS`).
    """
    import galsim

    from .morphology import TRUTH_COLUMNS

    nz = nuisance or Nuisance()
    p: dict = {c: float("nan") for c in (*TRUTH_COLUMNS, *SKY_TRUTH_COLUMNS)}
    p.update(label=cls, n_arms=0, knot_fraction=0.0, bar_length_arcsec=0.0, sky_sigma=1.0)
    comps, q, hlr = _morphology(galsim, cls, rng, nz, p)
    scale, offset, family, fwhm, beta, band_set = _field_setup(rng, nz, size, hlr, p)
    angle = float(rng.uniform(0, 180))
    neighbours = _neighbours(galsim, rng, nz, hlr, 0.5 * size * scale, p)
    psf_k = int(rng.integers(8))
    snr = _loguniform(rng, *nz.snr)
    corr = float(rng.uniform(0.5, 1.2)) if rng.random() < nz.correlated_noise else 0.0
    flux = 1000.0
    n_pix = math.pi * (2 * p["fill"] * size) ** 2  # pixels inside two half-light radii
    sigma = flux / (snr * math.sqrt(n_pix))
    pedestal = float(rng.normal(0, 0.3)) * sigma
    p.update(angle_deg=angle, flux_r=flux, snr=snr, noise_corr_px=corr, sky_pedestal=pedestal / sigma)
    bands = []
    waves = BAND_SETS[band_set]
    mid = waves[1][1]
    for _, lam in waves:
        colour = {pop: (lam / mid) ** SLOPES.get(pop, 0.5) for pop in comps}
        parts = [obj.withFlux(flux * share * colour[pop]) for pop, (obj, share) in comps.items() if share != 0]
        gal = galsim.Add(parts)
        if q < 0.999:
            gal = gal.shear(q=q, beta=0 * galsim.degrees)
        gal = gal.rotate(angle * galsim.degrees)
        scene = [gal] + [o.withFlux(flux * f * (lam / mid) ** s) for o, f, s, _ in neighbours]
        # seeing improves to the red on the ground; diffraction grows with wavelength in space
        band_fwhm = fwhm * ((lam / mid) if family == "optical" else (lam / mid) ** -0.2)
        psf = _psf(galsim, family, band_fwhm, beta if beta == beta else 3.5, psf_k)
        img = _convolved(galsim, galsim.Add(scene), psf, size, scale, offset)
        for o, f, s, spiky in neighbours:
            if spiky:
                c = o.centroid
                _spikes(img, size / 2 + offset[0] + c.x / scale - 0.5, size / 2 + offset[1] + c.y / scale - 0.5,
                        flux * f * (lam / mid) ** s / max(band_fwhm / scale, 0.7) ** 2, size * 0.15)
        bands.append(img + _noise(rng, img.shape, sigma, corr) + pedestal)
    _detector(rng, nz, bands, sigma, p)
    kind = nz.stretches[int(rng.integers(len(nz.stretches)))]
    p["stretch"] = kind
    rgb = _stretch(rng, bands, sigma, kind, p)
    p["jpeg_quality"] = int(rng.integers(55, 96)) if rng.random() < nz.jpeg else 0
    if p["jpeg_quality"]:
        rgb = _jpeg(rgb, p["jpeg_quality"])
    return rgb, p


def _convolved(galsim, scene, psf, size: int, scale: float, offset) -> np.ndarray:
    """``scene`` ⊗ PSF ⊗ pixel on a ``size``² grid. GalSim draws the scene with the pixel and a 0.5-px
    Gaussian (charge diffusion, which also bounds the k-space grid); the PSF, drawn as an image on
    the same pixels, is applied by FFT. This costs the same for every PSF family, where a Kolmogorov
    or an optical PSF inside GalSim's own convolution costs 2–4 times a Moffat."""
    from scipy.signal import fftconvolve

    core = galsim.Gaussian(sigma=0.5 * scale, gsparams=_gsparams(galsim))
    img = galsim.Convolve(scene, core, gsparams=_gsparams(galsim)).drawImage(
        nx=size, ny=size, scale=scale, offset=offset).array
    k = size - 1 if size % 2 == 0 else size
    kern = psf.drawImage(nx=k, ny=k, scale=scale, method="no_pixel").array
    kern /= kern.sum()
    return fftconvolve(img, kern, mode="same")


def _detector(rng, nz: Nuisance, bands: list[np.ndarray], sigma: float, p: dict) -> None:
    """Cosmic rays (one band each: single exposures) and bad pixels (all bands: masked to zero)."""
    p["n_cosmic_rays"] = n_cr = _randint(rng, nz.cosmic_rays)
    for _ in range(n_cr):
        _cosmic_ray(rng, bands[int(rng.integers(3))], sigma)
    p["bad_pixels"] = float(rng.random() < nz.bad_pixels)
    if p["bad_pixels"]:
        size = bands[0].shape[0]
        if rng.random() < 0.5:
            col = int(rng.integers(size))
            for b in bands:
                b[:, col] = 0.0
        else:
            for _ in range(int(rng.integers(2, 8))):
                y, x, b = int(rng.integers(size)), int(rng.integers(size)), int(rng.integers(3))
                bands[b][y, x] = sigma * float(rng.uniform(30, 200))
