import subprocess
import sys

import numpy as np
import pytest
import torch

from galaxalign.loss import GalaxAlignLoss
from galaxalign.model import ModelCfg, ModelError, create_model, list_models, load_model, save_model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model(ModelCfg("galaxalign-tiny"))


def _inputs(model, b=4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 3, model.image_size, model.image_size, generator=g)
    s = torch.randn(b, 3, model.image_size, model.image_size, generator=g)
    t = model.tokenize(["A picture of a barred spiral galaxy", "A picture of a merging galaxy",
                        "A picture of a round smooth galaxy", "A picture of a cigar shaped smooth galaxy"][:b])
    return x, s, t


def test_paper_architectures_and_tags_are_valid_choices():
    names = list_models()
    assert {"ViT-B-16", "convnext_base_w", "galaxalign-tiny"} <= set(names)
    import open_clip

    assert "datacomp_xl_s13b_b90k" in open_clip.list_pretrained_tags_by_model("ViT-B-16")
    assert "laion2b_s13b_b82k" in open_clip.list_pretrained_tags_by_model("convnext_base_w")
    with pytest.raises(ModelError, match="no pretrained tag 'imagenet'"):
        create_model(ModelCfg("ViT-B-16", pretrained="imagenet"))
    with pytest.raises(ModelError, match="unknown architecture"):
        create_model(ModelCfg("resnet-9000"))
    with pytest.raises(ModelError, match="not found"):
        create_model(ModelCfg("galaxalign-tiny", pretrained="/nonexistent/weights.pt"))


def test_encoders_give_normalised_embeddings_of_one_size(tiny):
    x, s, t = _inputs(tiny)
    zi, zs, zt = tiny.encode_image(x, normalize=True), tiny.encode_symbol(s, normalize=True), tiny.encode_text(t, True)
    for z in (zi, zs, zt):
        assert z.shape == (4, 128)
        assert torch.allclose(z.norm(dim=-1), torch.ones(4), atol=1e-5)
    # in stage 1 a symbol goes through the image tower
    assert torch.allclose(tiny.encode_symbol(x), tiny.encode_image(x))


def test_preprocess_resizes_and_rejects_bad_shapes(tiny):
    imgs = np.zeros((2, 32, 32, 3), np.uint8)
    assert tiny.preprocess(imgs).shape == (2, 3, 64, 64)
    with pytest.raises(ModelError, match=r"\(B, H, W, 3\)"):
        tiny.preprocess(np.zeros((2, 32, 32), np.uint8))


def test_stage2_copies_the_image_tower_then_the_towers_diverge():
    torch.manual_seed(0)
    m = create_model(ModelCfg("galaxalign-tiny"))
    x, s, t = _inputs(m)
    m.begin_stage2()
    assert m.stage == 2
    assert torch.allclose(m.encode_symbol(s), m.encode_image(s))  # an exact copy
    assert m.symbol_visual is not m.clip.visual
    with pytest.raises(ModelError, match="already in stage 2"):
        m.begin_stage2()
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    loss = GalaxAlignLoss(("img_txt",))(m(image=x, text=t), m.logit_scale)["loss"]
    loss.backward()
    opt.step()
    # only the image tower moved: the symbol tower still encodes like the untouched copy did
    assert not torch.allclose(m.encode_symbol(s), m.encode_image(s), atol=1e-4)


def _grad_towers(model, pairs):
    x, s, t = _inputs(model)
    model.zero_grad(set_to_none=True)
    z = model(image=x, symbol=s, text=t)
    GalaxAlignLoss(pairs)(z, z["scale"])["loss"].backward()

    def has(mod):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in mod.parameters())

    text_params = [p for n, p in model.clip.named_parameters() if not n.startswith("visual") and "logit_scale" not in n]
    return {"img": has(model.clip.visual), "sym": model.symbol_visual is not None and has(model.symbol_visual),
            "txt": any(p.grad is not None and p.grad.abs().sum() > 0 for p in text_params)}


@pytest.mark.parametrize("pair, towers", [
    ("img_txt", {"img", "txt"}), ("img_sym", {"img", "sym"}), ("sym_txt", {"sym", "txt"})])
def test_each_stage2_term_sends_gradients_only_to_its_towers(pair, towers):
    torch.manual_seed(0)
    m = create_model(ModelCfg("galaxalign-tiny"))
    m.begin_stage2()
    got = _grad_towers(m, (pair,))
    assert {k for k, v in got.items() if v} == towers


def test_stage1_symbol_term_trains_the_shared_image_tower():
    torch.manual_seed(0)
    m = create_model(ModelCfg("galaxalign-tiny"))
    got = _grad_towers(m, ("sym_txt",))
    assert got["img"] and got["txt"] and not got["sym"]


def test_checkpoint_round_trip_in_a_fresh_process(tmp_path):
    torch.manual_seed(1)
    m = create_model(ModelCfg("galaxalign-tiny"))
    m.begin_stage2()
    m.set_classes(["a", "b"], ["A picture of an a galaxy", "A picture of a b galaxy"], ["t01_smooth", "t02_yes"], None)
    path = save_model(m, tmp_path / "run")
    assert path.name == "model.pt" and (tmp_path / "run" / "model.json").exists()
    assert not list((tmp_path / "run").glob(".*tmp*"))
    x, _, _ = _inputs(m, 2)
    expected = m.encode_symbol(x).detach().numpy()
    np.save(tmp_path / "x.npy", x.numpy())
    code = (f"import numpy as np, torch; from galaxalign.model import load_model; m = load_model(r'{tmp_path / 'run'}');"
            f"x = torch.from_numpy(np.load(r'{tmp_path / 'x.npy'}'));"
            f"np.save(r'{tmp_path / 'z.npy'}', m.encode_symbol(x).detach().numpy()); print(m.stage, m.class_names)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "2 ['a', 'b']"
    assert np.allclose(np.load(tmp_path / "z.npy"), expected, atol=1e-5)


def test_a_local_open_clip_checkpoint_loads_through_the_pretrained_path(tmp_path):
    """Pretrained weights come from open_clip's `pretrained=` argument, a tag or a file; we make the file."""
    import open_clip

    torch.manual_seed(2)
    src = open_clip.create_model("galaxalign-tiny")
    torch.save(src.state_dict(), tmp_path / "tiny-open_clip.pt")
    m = create_model(ModelCfg("galaxalign-tiny", pretrained=str(tmp_path / "tiny-open_clip.pt")))
    assert torch.equal(m.clip.visual.conv1.weight, src.visual.conv1.weight)
    fresh = create_model(ModelCfg("galaxalign-tiny"))
    assert not torch.equal(fresh.clip.visual.conv1.weight, src.visual.conv1.weight)


def test_damaged_checkpoints_are_clear_errors(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="unreadable checkpoint"):
        load_model(tmp_path)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a galaxalign checkpoint"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(ModelError, match="no model checkpoint"):
        load_model(tmp_path / "missing")


def test_bf16_embeddings_stay_unit_float32_vectors_close_to_fp32(tmp_path):
    """bf16 autocast changes the tower's arithmetic, not what comes out: float32 unit vectors pointing
    where the fp32 ones do; 'auto' takes bf16 only where it is native; a bad name is refused."""
    from galaxalign.data import load_survey
    from galaxalign.inference import embed_images, use_bf16
    from galaxalign.synth import synth_survey

    synth_survey(tmp_path / "s.h5", n=12, size=32, seed=3, workers=1, progress=False)
    survey = load_survey(tmp_path / "s.h5")
    torch.manual_seed(0)
    model = create_model(ModelCfg("galaxalign-tiny-rn", image_size=32, norm="group"))
    a = embed_images(model, survey, precision="fp32")
    b = embed_images(model, survey, precision="bf16")
    assert a.dtype == b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert (a * b).sum(1).min() > 0.99 and not np.array_equal(a, b)
    from galaxalign.model import cpu_has_bf16

    assert use_bf16("auto", torch.device("cpu")) == cpu_has_bf16() and use_bf16("auto", torch.device("cuda"))
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, auto, got 'int4'"):
        embed_images(model, survey, precision="int4")


def test_an_interrupted_survey_embedding_resumes_where_it_stopped(tmp_path, monkeypatch):
    """embed_survey streams to disk a chunk at a time: killed after two of three chunks, the next run
    embeds only the third and writes what an uninterrupted run writes; other weights start over."""
    import galaxalign.inference as inference
    from galaxalign.data import load_survey
    from galaxalign.synth import synth_survey

    synth_survey(tmp_path / "s.h5", n=12, size=32, seed=4, workers=1, progress=False)
    survey = load_survey(tmp_path / "s.h5")
    from galaxalign.train import class_text_for

    torch.manual_seed(0)
    model = create_model(ModelCfg("galaxalign-tiny-rn", image_size=32, norm="group"))
    text = class_text_for(survey)
    model.set_classes(*text)
    whole = inference.embed_survey(model, survey, tmp_path / "whole", progress=False, chunk=4)
    real, calls = inference.embed_images, []

    def dies_on_the_third_chunk(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("worker killed")
        return real(*a, **k)

    monkeypatch.setattr(inference, "embed_images", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        inference.embed_survey(model, survey, tmp_path / "run", progress=False, chunk=4)
    assert not (tmp_path / "run" / "embeddings.npy").exists()  # nothing half-written in place
    calls.clear()
    again = inference.embed_survey(model, survey, tmp_path / "run", progress=False, chunk=4)
    assert again["resumed_from"] == 8 and len(calls) == 1
    assert np.allclose(np.load(tmp_path / "run" / "embeddings.npy"), whole["embeddings"], atol=1e-6)
    assert again["predictions"]["pred"].tolist() == whole["predictions"]["pred"].tolist()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["embeddings.npy", "predictions.parquet"]
    # a partial run of other weights is not resumed
    monkeypatch.setattr(inference, "embed_images", real)
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(inference, "embed_images", dies_on_the_third_chunk)
        calls.clear()
        inference.embed_survey(model, survey, tmp_path / "other", progress=False, chunk=4)
    monkeypatch.setattr(inference, "embed_images", real)
    torch.manual_seed(1)
    other = create_model(ModelCfg("galaxalign-tiny-rn", image_size=32, norm="group"))
    other.set_classes(*text)
    assert inference.embed_survey(other, survey, tmp_path / "other", progress=False, chunk=4)["resumed_from"] == 0
