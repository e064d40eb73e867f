"""Image preparation: what each setting does, detection from the data, refusals, and the promise that
training, embedding and queries see the same pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxalign.data import load_survey
from galaxalign.prepare import Preparation, PreparationError, detect_preparation, source_extent


def test_identity_leaves_8bit_rgb_untouched():
    x = np.random.default_rng(0).integers(0, 255, (3, 20, 20, 3), dtype=np.uint8)
    assert Preparation().is_identity and Preparation().apply(x) is x


def test_cutout_is_centred_and_resampled_and_out_of_frame_is_zero():
    raw = np.zeros((1, 100, 100), np.uint8)
    raw[0, 48:52, 48:52] = 255  # a source at the centre
    out = Preparation(cutout=20, stretch="linear").apply(raw)
    assert out.shape == (1, 20, 20, 3) and out[0, 8:12, 8:12].min() == 255 and out[0, :8].max() == 0
    assert Preparation(cutout=20, size=10, stretch="linear").apply(raw).shape == (1, 10, 10, 3)
    # a catalog position near the edge: the cut-out keeps its size, the outside is zero
    edge = Preparation(cutout=20, centre="catalog", stretch="linear").apply(raw, centres=np.array([[2.0, 2.0]]))
    assert edge.shape == (1, 20, 20, 3) and edge[0, :5, :5].max() == 0


@pytest.mark.parametrize("stretch", ["linear", "sqrt", "log", "asinh"])
def test_stretches_are_monotonic_and_span_black_to_white(stretch):
    ramp = np.linspace(0, 1000, 64 * 64, dtype=np.float32).reshape(1, 64, 64)
    out = Preparation(stretch=stretch).apply(ramp)[0, ..., 0].ravel().astype(int)
    assert out[0] == 0 and out[-1] == 255 and np.all(np.diff(out) >= 0)
    if stretch != "linear":  # the non-linear ones lift the faint end
        assert out[len(out) // 10] > 255 * 0.1 + 10


def test_percentile_clip_and_lupton_colour():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (1, 32, 32, 3)).astype(np.float32)
    x[0, 14:18, 14:18, 0] += 50  # a red source
    out = Preparation(stretch="lupton", bands=(0, 1, 2), clip=(1, 99.9)).apply(x)[0]
    centre = out[14:18, 14:18].reshape(-1, 3).mean(0)
    assert centre[0] > centre[1] + 50 and centre[0] > centre[2] + 50


@pytest.mark.parametrize("kwargs, message", [
    ({"stretch": "cubic"}, "stretch 'cubic' is not one of"),
    ({"cutout": 4}, "cutout must be a whole number of pixels from 8 to 4096"),
    ({"clip": (60, 40)}, "clip percentiles must satisfy"),
    ({"stretch": "asinh", "asinh_a": -1.0}, "asinh_a=-1.0 is out of range for the asinh stretch"),
    ({"stretch": "log", "log_a": 0.5}, "log_a=0.5 is out of range"),
    ({"bands": (0, 1)}, "bands must name 1 or 3 band indices"),
    ({"centre": "peak"}, "centre 'peak' must be 'image' or 'catalog'"),
])
def test_invalid_settings_are_refused(kwargs, message):
    with pytest.raises(PreparationError, match=message):
        Preparation(**kwargs)


def test_checks_against_the_images_name_the_survey(galaxy10_file):
    s = load_survey(galaxy10_file)
    with pytest.raises(PreparationError, match=rf"{galaxy10_file}: cut-out of 24 px is larger than its 16×16-px"):
        s.with_preparation(Preparation(cutout=24))
    with pytest.raises(PreparationError, match="band 5 does not exist; the images have 3 band"):
        s.with_preparation(Preparation(stretch="linear", bands=(5, 1, 0)))


def test_round_trip_through_dict_and_json():
    p = Preparation(cutout=80, size=64, stretch="asinh", clip=(0.5, 99.5), asinh_a=0.05, bands=(2, 1, 0))
    assert Preparation.from_dict(p.to_dict()) == p
    import json

    assert Preparation.from_dict(json.dumps(p.to_dict())) == p
    with pytest.raises(PreparationError, match="unknown preparation setting"):
        Preparation.from_dict({"cutout": 80, "zoom": 2})


def test_detection_finds_a_small_source_in_a_big_field_and_says_why():
    rng = np.random.default_rng(0)
    raw = np.zeros((32, 300, 300), np.uint8)
    for k in range(32):
        r = rng.uniform(3, 12)
        yy, xx = np.mgrid[:300, :300] - 149.5
        raw[k] = (250 * np.exp(-(xx ** 2 + (yy / 2) ** 2) / (2 * r ** 2)) * (np.hypot(xx, yy / 2) < 2.5 * r)).astype(np.uint8)
    raw[:, 10:14, 10:14] = 200  # a neighbour far from the centre does not count
    assert source_extent(raw[0]) < 100
    prep, reasons = detect_preparation(raw, model_size=64)
    assert prep.cutout is not None and 40 <= prep.cutout <= 200 and prep.size == 64 and prep.stretch == "sqrt"
    assert any("cut-out" in r and "sampled sources" in r for r in reasons)


def test_detection_leaves_display_ready_rgb_alone():
    raw = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    prep, reasons = detect_preparation(raw, model_size=64)
    assert prep.stretch == "none" and prep.size is None and any("already stretched" in r for r in reasons)


def test_training_embedding_and_queries_see_the_same_pixels(tmp_path, monkeypatch):
    """The survey's preparation is applied in one place: the images the trainer holds, the images the
    embedder feeds the model and the image a query by galaxy uses are byte for byte the same."""
    from galaxalign import inference
    from galaxalign.model import ModelCfg, create_model
    from galaxalign.train import TrainCfg, Trainer
    from test_first import write_first_h5

    write_first_h5(tmp_path / "f.h5")
    prep = Preparation(cutout=96, size=32, stretch="asinh", clip=(0, 99.5))
    s = load_survey(tmp_path / "f.h5", preparation=prep)
    trainer = Trainer(TrainCfg(batch_size=4), s, tmp_path / "run", show_bar=False)
    idx = np.arange(len(s))
    held = trainer._batch_images(idx).numpy()
    assert held.shape == (20, 32, 32, 3)
    seen = []
    model = create_model(ModelCfg(image_size=32))
    real = model.preprocess
    monkeypatch.setattr(model, "preprocess", lambda imgs: (seen.append(np.asarray(imgs).copy()), real(imgs))[1])
    inference.embed_images(model, s, idx, batch_size=7)
    assert np.array_equal(np.concatenate(seen), held)
    assert np.array_equal(s.image(5), held[5])
    # and it is the preparation that made them: the raw pixels are 300 px grey
    assert s.raw_images([5]).shape == (1, 300, 300) and torch.equal(torch.from_numpy(prep.apply(s.raw_images([5]))[0]),
                                                                     torch.from_numpy(held[5]))


def test_a_query_by_uploaded_raw_image_is_prepared_like_the_survey(tmp_path):
    from galaxalign.index import query_image
    from galaxalign.inference import embed_images
    from galaxalign.model import ModelCfg, create_model
    from test_first import write_first_h5

    write_first_h5(tmp_path / "f.h5")
    prep = Preparation(cutout=96, size=32, stretch="sqrt")
    s = load_survey(tmp_path / "f.h5", preparation=prep)
    model = create_model(ModelCfg(image_size=32))
    raw = s.raw_images([3])[0]  # what a researcher would upload: the survey's own 300-px grey map
    q = query_image(model, raw, s.preparation)
    assert np.allclose(q, embed_images(model, s, [3])[0], atol=1e-5)
