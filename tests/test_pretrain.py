"""Self-supervised pretraining (galaxalign.pretrain): the views, a tiny version of the recipe, and the
checkpoint loaded through open_clip's own ``pretrained=`` path in a fresh process."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from galaxalign.errors import GalaxalignError
from galaxalign.fsutil import file_sha256
from galaxalign.pretrain import PretrainCfg, pretrain, sky_views

ROOT = Path(__file__).resolve().parent.parent


def test_views_keep_shape_and_range_and_follow_the_generator():
    imgs = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    a = sky_views(imgs, torch.Generator().manual_seed(1))
    b = sky_views(imgs, torch.Generator().manual_seed(1))
    c = sky_views(imgs, torch.Generator().manual_seed(2))
    assert a.shape == (4, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_rotated_galaxy_gives_views_of_the_same_light():
    """A view only moves, blurs, dims and adds noise: a centred blob stays a centred blob."""
    y, x = np.mgrid[:48, :48]
    blob = (255 * np.exp(-((x - 23.5) ** 2 + (y - 23.5) ** 2) / 40))[..., None].repeat(3, -1).astype(np.uint8)
    v = sky_views(torch.from_numpy(blob[None].repeat(8, 0)), torch.Generator().manual_seed(0)).mean(1)
    peak = v.flatten(1).argmax(1)
    py, px = peak // 48, peak % 48
    assert ((py - 23.5).abs() < 6).all() and ((px - 23.5).abs() < 6).all()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """The default recipe (CNN tower, GroupNorm) at toy size."""
    out = tmp_path_factory.mktemp("pretrain") / "tiny.pt"
    res = pretrain(PretrainCfg(n_synthetic=32, epochs=2, batch_size=16, warmup_steps=1, image_size=32), out,
                   progress=False, command="pytest")
    return out, res


@pytest.fixture(scope="module")
def tiny_vit_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain-vit") / "vit.pt"
    pretrain(PretrainCfg(arch="galaxalign-tiny", norm="default", n_synthetic=16, epochs=1, batch_size=8,
                         warmup_steps=1, image_size=32), out, progress=False)
    return out


def test_tiny_recipe_writes_an_open_clip_checkpoint_with_its_card(tiny_checkpoint):
    out, res = tiny_checkpoint
    assert res["n_images"] == 32 and len(res["loss_per_epoch"]) == 2 and np.isfinite(res["loss_per_epoch"]).all()
    card = json.loads(out.with_suffix(".card.json").read_text())
    assert card["sha256"] == file_sha256(out) and card["recipe"]["epochs"] == 2 and card["command"] == "pytest"
    sd = torch.load(out, weights_only=True)["state_dict"]
    assert sd["visual.conv1.weight"].dtype == torch.float16  # small: fp16
    assert not list(out.parent.glob(".*tmp*"))


@pytest.mark.parametrize("arch, norm, which", [("galaxalign-tiny-rn", "group", "tiny_checkpoint"),
                                               ("galaxalign-tiny", "default", "tiny_vit_checkpoint")])
def test_the_checkpoint_loads_through_open_clip_pretrained_in_a_fresh_process(arch, norm, which, request):
    """The ViT goes through ``open_clip.create_model(pretrained=file)`` itself; the GroupNorm CNN through
    ``open_clip.load_checkpoint`` (the loader that path calls) after its BatchNorms become GroupNorms."""
    out = request.getfixturevalue(which)
    out = out[0] if isinstance(out, tuple) else out
    code = f"""
import torch
from galaxalign.model import ModelCfg, create_model
m = create_model(ModelCfg({arch!r}, pretrained={str(out)!r}, image_size=32, norm={norm!r}))
sd = torch.load({str(out)!r}, weights_only=True)["state_dict"]
w = m.clip.state_dict()["visual.conv1.weight"]
fresh = create_model(ModelCfg({arch!r}, image_size=32, norm={norm!r})).clip.state_dict()["visual.conv1.weight"]
print(torch.allclose(w, sd["visual.conv1.weight"].float()), torch.allclose(w, fresh))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"]  # the file's weights, not a random initialisation


def test_a_config_names_its_pretrained_file_relative_to_itself(tmp_path, tiny_checkpoint):
    from galaxalign.train import load_config

    out, _ = tiny_checkpoint
    (tmp_path / "configs").mkdir()
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "t.pt").write_bytes(out.read_bytes())
    cfg_file = tmp_path / "configs" / "c.yaml"
    cfg_file.write_text("model:\n  arch: galaxalign-tiny-rn\n  norm: group\n  pretrained: ../weights/t.pt\n")
    assert load_config(cfg_file).model.pretrained == str(tmp_path / "weights" / "t.pt")


def test_committed_pretrained_checkpoint_matches_its_card():
    card_file = ROOT / "models" / "pretrained" / "galaxalign-tiny-sky-gpu.card.json"
    card = json.loads(card_file.read_text())
    ckpt = card_file.parent / card["file"]
    assert file_sha256(ckpt) == card["sha256"]
    assert card["command"].startswith("galaxalign pretrain") and card["recipe"]["seed"] is not None
    assert card["steps"] > 0 and len(card["loss_per_epoch"]) >= 1


def test_the_starter_recipe_names_the_committed_tower():
    from galaxalign.train import load_config

    assert load_config(ROOT / "configs" / "starter-cpu.yaml").model.pretrained == str(
        ROOT / "models" / "pretrained" / "galaxalign-tiny-sky-gpu.pt")


def test_a_time_budget_fits_the_schedule_to_the_measured_step_rate(monkeypatch, tmp_path):
    """A clock that advances 0.1 s per step: calibration (steps 5 to 25) measures 10 steps/s, so a
    3-second budget ends after 30 steps, whatever the epochs setting says, and the schedule ends at 0."""
    from galaxalign import pretrain as pt

    clock = {"t": 0.0}
    real_step = pt._SSLRun.step
    lrs = []

    def step(self, batch):
        clock["t"] += 0.1
        loss = real_step(self, batch)
        lrs.append(self.engine.lr)
        return loss

    monkeypatch.setattr(pt._SSLRun, "_sync", lambda self: clock["t"])
    monkeypatch.setattr(pt._SSLRun, "step", step)
    cfg = PretrainCfg(n_synthetic=32, epochs=1, minutes=0.05, batch_size=16, warmup_steps=2, image_size=32)
    res = pretrain(cfg, tmp_path / "b.pt", progress=False)
    assert res["steps"] == 30 and len(lrs) == 30
    assert len(res["loss_per_epoch"]) == 15  # 32 images in batches of 16: two steps an epoch
    assert lrs[-1] < 0.01 * cfg.lr < max(lrs)  # the cosine reached its end at the budget's last step
    card = json.loads((tmp_path / "b.card.json").read_text())
    assert card["steps"] == 30 and card["recipe"]["minutes"] == 0.05 and card["device"] == "cpu"


def test_with_amp_only_the_tower_runs_in_bf16():
    from lightly.loss import NTXentLoss

    from galaxalign.model import ModelCfg, create_model
    from galaxalign.pretrain import SSLHead, ssl_step

    net = SSLHead(create_model(ModelCfg("galaxalign-tiny-rn", image_size=32, norm="group")))
    imgs = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    loss = ssl_step(net, NTXentLoss(temperature=0.2), imgs, torch.Generator().manual_seed(0), amp=True)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_bad_pretraining_settings_are_refused():
    with pytest.raises(GalaxalignError, match="unknown pretraining option"):
        PretrainCfg.from_dict({"epoch": 3})
    with pytest.raises(GalaxalignError, match="batch_size must be at least 2"):
        PretrainCfg.from_dict({"batch_size": 1})
    with pytest.raises(GalaxalignError, match="minutes and workers must not be negative"):
        PretrainCfg.from_dict({"minutes": -1})
    r = subprocess.run([sys.executable, "-m", "galaxalign", "pretrain", "--out", "x.pt", "--config", "nope.yaml"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nope.yaml: no such pretraining config" in r.stderr
