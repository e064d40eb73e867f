"""Telescope fields: `galaxalign import-field` finds the sources a test placed, cuts the galaxies out,
gives RA/Dec from the WCS, and ends every bad field in one line with nothing registered."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from test_cli import here

# (x, y) in FITS pixels (0-based, row 0 at the bottom), flux, half-light radius in px; the last two are stars
PLACED = [(40.0, 50.0, 900.0, 3.0), (120.0, 60.0, 1400.0, 4.0), (200.0, 45.0, 700.0, 2.5),
          (60.0, 150.0, 1100.0, 3.5), (150.0, 170.0, 1600.0, 5.0), (215.0, 200.0, 800.0, 3.0),
          (95.0, 215.0, 600.0, 2.5), (180.0, 110.0, 1000.0, 3.0),
          (30.0, 200.0, 2500.0, 0.0), (230.0, 130.0, 2500.0, 0.0)]
SIDE = 256


def _field(bands: int = 3, seed: int = 0, sources=PLACED, side: int = SIDE) -> list[np.ndarray]:
    """Exponential discs (and PSF-only stars) convolved with a Gaussian PSF, on noise: one array per band."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    psf = 1.2
    out = []
    for band in range(bands):
        img = rng.normal(0, 1.0, (side, side)).astype(np.float32)
        for x, y, flux, r50 in sources:
            s = np.hypot(psf, r50 / 1.18)  # an exponential's r50 ≈ 1.18 of its Gaussian-equivalent σ
            img += (flux * (1 + 0.2 * band)) / (2 * np.pi * s * s) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s))
        out.append(img)
    return out


def _wcs_header():
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.crpix = [SIDE / 2, SIDE / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    return w, w.to_header()


def _write_fits(path, data, header=None):
    from astropy.io import fits

    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


def _surveys(ws):
    from galaxalign.store import list_surveys, open_store

    store = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
    try:
        return [s.name for s in list_surveys(store)]
    finally:
        store.dispose()


def test_a_three_band_fits_field_finds_the_sources_placed_with_their_ra_dec(tmp_path):
    w, header = _wcs_header()
    files = [_write_fits(tmp_path / f"{b}.fits", img, header) for b, img in zip("grz", _field())]
    ws = tmp_path / "ws"
    r = here("import-field", *files, "--name", "deep", "--preview", tmp_path / "preview.png", "--workspace", ws)
    assert r.returncode == 0, r.stderr
    assert "(RA/Dec from the WCS)" in r.stdout and "threshold" in r.stdout and "stars:" in r.stdout
    cat = pd.read_csv(ws / "surveys" / "imported" / "deep.catalog.csv")
    for x, y, _, r50 in PLACED:  # every placed source found within a pixel (catalogue x, y: rows from the top)
        d = np.hypot(cat.x - x, cat.y - (SIDE - 1 - y))
        assert d.min() < 1.0, (x, y, d.min())
        k = int(d.argmin())
        ra, dec = w.pixel_to_world_values(x, y)
        assert abs(cat.ra[k] - ra) * 3600 * np.cos(np.radians(dec)) < 0.2 and abs(cat.dec[k] - dec) * 3600 < 0.2
        assert bool(cat.star[k]) == (r50 == 0.0)  # the two point sources are the stars
    assert len(cat) == len(PLACED)
    assert _surveys(ws) == ["deep"]
    from galaxalign.data import load_survey

    s = load_survey(ws / "surveys" / "imported" / "deep.h5")
    assert len(s) == 8 and s.image_shape == (64, 64, 3) and (s.labels == -1).all()
    assert Image.open(tmp_path / "preview.png").size == (SIDE, SIDE)


def test_a_fits_field_without_wcs_and_a_png_field_work_in_pixels(tmp_path):
    ws = tmp_path / "ws"
    r = here("import-field", _write_fits(tmp_path / "r.fits", _field(1)[0]), "--name", "nowcs", "--workspace", ws)
    assert r.returncode == 0, r.stderr
    assert "(no WCS)" in r.stdout
    assert "ra" not in pd.read_csv(ws / "surveys" / "imported" / "nowcs.catalog.csv")
    rgb = np.stack([np.clip(b[::-1] * 12 + 20, 0, 255) for b in _field(3, seed=1)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "field.png")
    r = here("import-field", tmp_path / "field.png", "--name", "picture", "--workspace", ws)
    assert r.returncode == 0, r.stderr
    assert _surveys(ws) == ["nowcs", "picture"]


@pytest.mark.parametrize("case, message", [
    ("empty", "no sources found above"),
    ("noise", "none of them a galaxy large enough to cut out"),
    ("shapes", "the bands have different shapes"),
    ("huge", "the field is too large"),
    ("mixed", "FITS bands and pictures cannot be mixed"),
    ("text", "not a readable FITS file"),
])
def test_a_bad_field_ends_in_one_line_and_registers_nothing(tmp_path, case, message):
    rng = np.random.default_rng(0)
    if case == "empty":  # an exposure of empty sky
        paths = [_write_fits(tmp_path / "flat.fits", np.full((128, 128), 100.0, np.float32))]
    elif case == "noise":  # noise only: a few peaks pass the threshold, none is a galaxy
        paths = [_write_fits(tmp_path / "noise.fits", rng.normal(0, 1, (128, 128)).astype(np.float32))]
    elif case == "shapes":
        paths = [_write_fits(tmp_path / "g.fits", _field(1)[0]),
                 _write_fits(tmp_path / "r.fits", _field(1, side=200, sources=PLACED[:3])[0])]
    elif case == "huge":  # 20,000 px on a side (a 1-bit picture keeps the test small)
        Image.new("1", (20_000, 20_000)).save(tmp_path / "huge.png")
        paths = [tmp_path / "huge.png"]
    elif case == "mixed":
        Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
        paths = [_write_fits(tmp_path / "b.fits", _field(1)[0]), tmp_path / "a.png"]
    else:
        (tmp_path / "notes.fits").write_text("not a FITS file")
        paths = [tmp_path / "notes.fits"]
    ws = tmp_path / "ws"
    r = here("import-field", *paths, "--name", "bad", "--workspace", ws)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert _surveys(ws) == []
    imported = ws / "surveys" / "imported"
    assert not imported.exists() or not any(imported.iterdir())


def test_the_hxdf_demo_imports_the_field_first_and_queues_its_starter(tmp_path):
    """`make run SURVEY=hxdf`: the galaxies of the Hubble eXtreme Deep Field that scikit-image ships, cut out
    and registered first (the survey the app opens on), the demo sky beside it to learn from, and the
    starter queued: trained on the demo sky, then the field embedded with it and an adaptation to it."""
    from galaxalign.jobs import bootstrap
    from galaxalign.store import list_jobs, open_store, project_settings
    from galaxalign.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    out = bootstrap(ws, n=40, survey="hxdf", starter="job", progress=False)
    field = out["import"]["field"]
    assert field["sources"] > 100 and field["galaxies"] > 100 and not field["wcs"]
    assert (ws.root / "hxdf-preview.png").exists() and (ws.surveys / "imported" / "hxdf.catalog.csv").exists()
    assert _surveys(ws.root) == ["hxdf", "demo"]
    store = open_store(ws.database_url)
    try:
        jobs = sorted(list_jobs(store, 10), key=lambda j: j.id)
        assert [(j.kind, j.params.get("survey")) for j in jobs] == [("retrain", "demo"), ("embed", "hxdf"),
                                                                     ("adapt", "hxdf")]
        assert "Deep Field" in project_settings(store).title
    finally:
        store.dispose()
    again = bootstrap(ws, n=40, survey="hxdf", starter="job", progress=False)  # a second make run: nothing twice
    assert again["starter_job"] == out["starter_job"] and "import" not in again
