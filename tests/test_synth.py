import h5py
import numpy as np
import pytest

from galaxalign.data import load_survey
from galaxalign.synth import GALAXY10_COUNTS, class_counts_for, load_truth, render_galaxy, synth_survey
from galaxalign.taxonomy import GALAXY10


def test_synthetic_file_follows_the_galaxy10_schema(synth_h5):
    with h5py.File(synth_h5) as f:
        assert f["images"].shape == (60, 32, 32, 3) and f["images"].dtype == np.uint8
        for key in ("ans", "ra", "dec", "redshift", "pxscale"):
            assert f[key].shape == (60,), key
        assert f["ans"][()].max() <= 9
        assert np.all((f["dec"][()] > -25) & (f["dec"][()] < 85))
    s = load_survey(synth_h5)
    assert len(s) == 60 and s.class_names == GALAXY10.class_names
    assert set(s.labels) == set(range(10))


def test_class_proportions_default_to_the_real_counts():
    counts = class_counts_for(17736)
    assert counts.sum() == 17736
    assert np.allclose(counts, GALAXY10_COUNTS, atol=1)
    small = class_counts_for(10)
    assert small.tolist() == [1] * 10


def test_same_seed_same_file_whatever_the_workers(tmp_path):
    a = synth_survey(tmp_path / "a.h5", n=12, size=24, seed=5, workers=1, progress=False)
    synth_survey(tmp_path / "b.h5", n=12, size=24, seed=5, workers=2, progress=False)
    synth_survey(tmp_path / "c.h5", n=12, size=24, seed=6, workers=1, progress=False)
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb, h5py.File(tmp_path / "c.h5") as fc:
        assert np.array_equal(fa["images"][()], fb["images"][()])
        assert np.array_equal(fa["ans"][()], fb["ans"][()])
        assert not np.array_equal(fa["images"][()], fc["images"][()])
    assert a["galaxies_per_second"] > 0
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def _second_moment_axis_ratio(rgb):
    """Axis ratio of the light distribution (flux-weighted second moments, sky clipped)."""
    img = rgb.astype(float).sum(-1)
    floor = np.median(img)
    img = np.clip(img - floor - 0.2 * (img.max() - floor), 0, None)  # keep the galaxy, drop the sky
    y, x = np.indices(img.shape)
    w = img / img.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    cxx, cyy, cxy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum(), (w * (x - mx) * (y - my)).sum()
    ev = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    return np.sqrt(ev[0] / ev[1])


def test_classes_have_the_shapes_their_names_promise():
    rng = np.random.default_rng(0)
    ratio = {c: np.median([_second_moment_axis_ratio(render_galaxy(c, rng, 64)[0]) for _ in range(6)])
             for c in (2, 3, 4, 8)}
    assert ratio[2] > 0.8  # round smooth
    assert ratio[8] < 0.3  # edge-on without bulge: a needle
    assert ratio[4] < ratio[3] < ratio[2]  # cigar < in-between < round


def test_spirals_are_bluer_than_ellipticals():
    rng = np.random.default_rng(1)

    def blue_minus_red(c):
        rgb = np.stack([render_galaxy(c, rng, 48)[0] for _ in range(4)]).astype(float)
        core = rgb[:, 16:32, 16:32]
        return (core[..., 2] - core[..., 0]).mean()

    assert blue_minus_red(7) > blue_minus_red(2) + 5


def test_truth_table_records_the_parameters(synth_h5):
    truth = load_truth(synth_h5)
    s = load_survey(synth_h5)
    assert len(truth) == len(s)
    assert np.array_equal(truth["label"].to_numpy(int), s.labels)
    spirals = truth[truth.label.isin([5, 6, 7])]
    assert (spirals.n_arms >= 2).all() and spirals.pitch_deg.notna().all()
    tight, loose = truth[truth.label == 6].pitch_deg, truth[truth.label == 7].pitch_deg
    assert tight.max() < loose.min()
    assert (truth[truth.label == 5].bar_length_arcsec > 0).all()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one galaxy"):
        synth_survey(tmp_path / "x.h5", n=0)
    with pytest.raises(ValueError, match="between 16 and 512"):
        synth_survey(tmp_path / "x.h5", n=1, size=8)
    with pytest.raises(ValueError, match="out of range"):
        render_galaxy(10, np.random.default_rng(0))
