"""The diverse simulated sky (galaxalign.sky): every nuisance switches, is recorded in truth/, and does
what its name says to the pixels."""
import h5py
import numpy as np
import pytest

from galaxalign.sky import HELD_OUT, SKY_TEXT_COLUMNS, SKY_TRUTH_COLUMNS, Nuisance, render_sky
from galaxalign.synth import load_truth, synth_survey

QUIET = Nuisance.quiet()


def _render(cls, nz, seed=0, size=48):
    return render_sky(cls, np.random.default_rng(seed), size, nz)


def test_quiet_sky_records_every_nuisance_off():
    rgb, p = _render(7, QUIET)
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    assert (p["n_background"], p["n_stars"], p["companion"], p["n_cosmic_rays"], p["bad_pixels"], p["jpeg_quality"]) \
        == (0, 0, 0.0, 0, 0.0, 0)
    assert (p["psf_family"], p["band_set"], p["stretch"], p["variant"]) == ("moffat", "decals", "lupton", "classic")
    assert p["offset_x_px"] == 0 and p["snr"] == pytest.approx(200)
    assert set(SKY_TRUTH_COLUMNS) | set(SKY_TEXT_COLUMNS) <= set(p)


@pytest.mark.parametrize("change, key, expected", [
    ({"stars": (3, 3), "spike_fraction": 1.0}, "n_spikes", 3),
    ({"background": (4, 4)}, "n_background", 4),
    ({"companion": 1.0}, "companion", 1.0),
    ({"cosmic_rays": (1, 1)}, "n_cosmic_rays", 1),
    ({"bad_pixels": 1.0}, "bad_pixels", 1.0),
    ({"psf_families": ("optical",)}, "psf_family", "optical"),
    ({"psf_families": ("kolmogorov",)}, "psf_family", "kolmogorov"),
    ({"band_sets": ("hst",)}, "band_set", "hst"),
    ({"band_sets": ("sdss",)}, "band_set", "sdss"),
    ({"stretches": ("log",)}, "stretch", "log"),
    ({"stretches": ("linear",)}, "stretch", "linear"),
])
def test_each_nuisance_switches_on_alone_and_is_recorded(change, key, expected):
    quiet_rgb, _ = _render(5, QUIET)
    rgb, p = _render(5, QUIET.but(**change))
    assert p[key] == expected
    assert not np.array_equal(rgb, quiet_rgb)


def test_jpeg_and_variants_switch_on():
    _, p = _render(0, QUIET.but(jpeg=1.0, variants=1.0))
    assert 55 <= p["jpeg_quality"] <= 95 and p["variant"] in ("clumpy", "irregular")
    _, p = _render(8, QUIET.but(variants=1.0))
    assert p["variant"] == "dust_lane"


def _concentration(rgb):
    x = rgb.astype(float).sum(-1)
    x = np.clip(x - np.median(x), 0, None)
    return np.sort(x.ravel())[-4:].sum() / x.sum()


def test_a_sharp_psf_concentrates_light_and_low_snr_is_noisier():
    linear = QUIET.but(stretches=("linear",))
    for s in range(4):  # the same galaxy (same seed) seen sharp and barely resolved
        sharp = _concentration(_render(2, linear.but(psf_over_hlr=(0.08, 0.08)), s)[0])
        blurred = _concentration(_render(2, linear.but(psf_over_hlr=(0.8, 0.8)), s)[0])
        assert sharp > 1.2 * blurred  # the display clips the brightest core, so the ratio is understated

    def corner_noise(snr):
        rgb = _render(2, QUIET.but(snr=(snr, snr), stretches=("linear",)))[0].astype(float)
        return rgb[:8, :8].std()

    assert corner_noise(8) > 2 * corner_noise(400)


def test_bad_nuisance_ranges_are_refused_by_name():
    with pytest.raises(ValueError, match="nuisance jpeg must be a probability"):
        Nuisance(jpeg=1.5).check()
    with pytest.raises(ValueError, match="nuisance snr must be a .low, high. pair"):
        Nuisance(snr=(50.0, 5.0)).check()
    with pytest.raises(ValueError, match="nuisance psf_families: \\['airy'\\]"):
        Nuisance(psf_families=("airy",)).check()
    with pytest.raises(ValueError, match="sky must be one of diverse, classic"):
        synth_survey("x.h5", n=1, sky="cartoon")


def test_held_out_factors_do_not_overlap_their_training_ranges():
    for name, (train, test) in HELD_OUT.items():
        train.check(), test.check()
        if name == "psf_kolmogorov":
            assert "kolmogorov" not in train.psf_families and test.psf_families == ("kolmogorov",)
        if name == "band_set_hst":
            assert "hst" not in train.band_sets and test.band_sets == ("hst",)
        if name == "pixel_scale":
            assert test.fill[1] < train.fill[0]  # smaller galaxies (coarser pixels) than any trained on
        if name == "crowded_field":
            assert train.background[1] < test.background[0] and train.stars[1] < test.stars[0]


def test_survey_file_carries_every_nuisance_in_truth(tmp_path):
    synth_survey(tmp_path / "s.h5", n=20, size=32, seed=4, workers=1, progress=False)
    truth = load_truth(tmp_path / "s.h5")
    assert len(truth) == 20
    for c in (*SKY_TRUTH_COLUMNS, *SKY_TEXT_COLUMNS):
        assert c in truth, c
    assert set(truth.psf_family) <= {"moffat", "gaussian", "kolmogorov", "optical"}
    assert truth.psf_family.nunique() > 1 and truth.band_set.nunique() > 1  # drawn, not fixed
    with h5py.File(tmp_path / "s.h5") as f:
        assert f.attrs["sky"] == "diverse" and "psf_over_hlr" in f.attrs["nuisance"]
        assert np.allclose(f["pxscale"][()], truth.pixel_scale)  # a pixel scale per galaxy
    synth_survey(tmp_path / "c.h5", n=5, size=32, seed=4, workers=1, progress=False, sky="classic")
    assert "psf_family" not in load_truth(tmp_path / "c.h5")
