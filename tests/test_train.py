import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from galaxalign.model import load_model
from galaxalign.train import ConfigError, TrainCfg, load_config, stage_plan, train

TINY = dict(stage1_epochs=1, stage2_epochs=1, batch_size=8, warmup_steps=2, symbol_variants=3, eval_every_stage=True)


def _cfg(**kw):
    return TrainCfg.from_dict({**TINY, **kw})


def _rows(run):
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def test_two_stages_write_a_complete_run_folder(synth_h5, tmp_path):
    res = train(_cfg(), synth_h5, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "model.pt", "model.json", "last.pt"):
        assert (run / name).exists(), name
    rows = _rows(run)
    epochs = [r for r in rows if "loss" in r]
    assert [r["stage"] for r in epochs] == [1, 2]
    assert set(epochs[0]) >= {"img_txt", "sym_txt"} and "img_sym" not in epochs[0]
    assert set(epochs[1]) >= {"img_txt", "img_sym", "sym_txt"}
    assert [r["after_stage"] for r in rows if "eval" in r] == [1, 2]
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["batch_size"] == 8 and resolved["survey"] == str(synth_h5) and resolved["n_test"] == 11
    m = load_model(run)
    assert m.stage == 2 and m.class_names[5] == "Barred Spiral"
    assert {"accuracy", "macro_f1", "map_at_5", "map"} <= set(res["metrics"])
    assert json.loads((run / "model.json").read_text())["metrics"]["map"] == pytest.approx(res["metrics"]["map"])


@pytest.mark.parametrize("variant, stages, pairs", [
    ("galaxalign", [1, 2], [("img_txt", "sym_txt"), ("img_txt", "img_sym", "sym_txt")]),
    ("clip", [1], [("img_txt",)]),
    ("v1", [1], [("img_txt", "sym_txt")]),
    ("v2", [2], [("img_txt", "img_sym", "sym_txt")]),
    ("v3", [1], [("img_txt", "sym_txt")]),
    ("no_text", [1, 2], [("img_sym",), ("img_sym",)]),
])
def test_variants_follow_the_paper_ablations(variant, stages, pairs):
    plan = stage_plan(TrainCfg(variant=variant, stage1_epochs=3, stage2_epochs=5))
    assert [p.stage for p in plan] == stages and [p.pairs for p in plan] == pairs
    if variant in ("clip", "v2", "v3"):
        assert plan[0].epochs == 8  # the same total budget as the full method
    if variant == "v1":
        assert plan[0].epochs == 3


def test_unique_encoding_gives_the_same_loss_as_the_per_sample_loop(synth_h5, tmp_path):
    kw = dict(stage1_epochs=1, stage2_epochs=0, symbol_variants=1, augment=False, eval_every_stage=False)
    train(_cfg(**kw, unique_encode=True), synth_h5, tmp_path / "u")
    train(_cfg(**kw, unique_encode=False), synth_h5, tmp_path / "n")
    lu, ln = _rows(tmp_path / "u")[0], _rows(tmp_path / "n")[0]
    assert lu["loss"] == pytest.approx(ln["loss"], rel=1e-4)


def test_resume_continues_from_the_last_epoch(synth_h5, tmp_path):
    run = tmp_path / "run"
    train(_cfg(stage1_epochs=1, stage2_epochs=0), synth_h5, run)
    before = _rows(run)
    # a longer plan, resumed: the finished stage-1 epoch is not run again
    train(_cfg(stage1_epochs=1, stage2_epochs=1), synth_h5, run, resume=True)
    after = _rows(run)
    assert after[: len(before)] == before
    assert [r["stage"] for r in after if "loss" in r] == [1, 2]
    assert load_model(run).stage == 2


def test_ema_saves_the_moving_average_not_the_last_step(synth_h5, tmp_path):
    """``ema`` > 0: the saved model is the moving average of the last stage's parameters, one update a
    step (kept in last.pt for a resume), not the last step's; buffers are the model's own (a causal mask
    of -inf averaged with itself would be NaN), so the average the run scores still works."""
    import torch

    from galaxalign.data import load_survey
    from galaxalign.inference import class_prototypes
    from galaxalign.train import Trainer

    run = tmp_path / "run"
    trainer = Trainer(_cfg(stage2_epochs=2, ema=0.5, lr=0.01, eval_every_stage=False), load_survey(synth_h5), run)
    trainer.run()
    assert np.isfinite(class_prototypes(trainer.scored_model())).all()  # what valid accuracy is computed with
    last = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    steps = sum(r["steps"] for r in _rows(run) if r.get("stage") == 2 and "loss" in r)
    assert int(last["ema"]["n_averaged"]) == steps > 0
    m = load_model(run)
    saved, params = m.state_dict(), dict(m.named_parameters())
    ema = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    assert all(torch.equal(params[k], ema[k]) for k in params)
    assert any(not torch.equal(saved[k], last["model"][k]) for k in params)
    assert all(torch.equal(saved[k], last["model"][k]) for k in saved if k not in params)


def test_bad_configs_name_the_file_and_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("lr: 0.001\nbatch_sise: 64\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key\(s\) batch_sise"):
        load_config(p)
    p.write_text("variant: v7\n")
    with pytest.raises(ConfigError, match="variant 'v7'"):
        load_config(p)
    p.write_text("stage2_pairs: [img_txt, txt_txt]\n")
    with pytest.raises(ConfigError, match="stage2_pairs"):
        load_config(p)
    p.write_text("model: {arch: galaxalign-tiny, weights: x}\n")
    with pytest.raises(ConfigError, match="unknown model option"):
        load_config(p)
    p.write_text("ema: 1.0\n")
    with pytest.raises(ConfigError, match=r"ema must be in \[0, 1\)"):
        load_config(p)
    p.write_text(": : :\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    for name in ("tiny-cpu.yaml", "starter-cpu.yaml", "first-cpu.yaml", "first-d4.yaml", "vit-b-16.yaml",
                 "convnext-base.yaml"):
        load_config(Path(__file__).resolve().parent.parent / "configs" / name)


def test_paper_configs_carry_the_paper_hyperparameters():
    root = Path(__file__).resolve().parent.parent / "configs"
    vit, cnx = load_config(root / "vit-b-16.yaml"), load_config(root / "convnext-base.yaml")
    assert (vit.model.arch, vit.model.pretrained, vit.lr, vit.weight_decay) == (
        "ViT-B-16", "datacomp_xl_s13b_b90k", 1e-4, 0.02)
    assert (cnx.model.arch, cnx.model.pretrained, cnx.lr, cnx.weight_decay) == (
        "convnext_base_w", "laion2b_s13b_b82k", 5e-6, 2e-4)


def test_cli_train_then_eval_prints_the_metrics(synth_h5, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "galaxalign", "train", "--config", str(cfg), "--survey", str(synth_h5),
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "accuracy" in r.stdout
    r = subprocess.run([sys.executable, "-m", "galaxalign", "eval", "--model", str(tmp_path / "run"), "--survey",
                        str(synth_h5)], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert {"accuracy", "macro_f1", "map_at_5", "map"} <= set(out) and out["n"] == 11


def test_ddp_on_two_cpu_processes_with_gloo(synth_h5, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "batch_size": 4}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "galaxalign", "train", "--config", str(cfg), "--survey", str(synth_h5),
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["world_size"] == 2
    rows = _rows(tmp_path / "run")
    # 49 training galaxies, 2 ranks × batch 4 → 6 steps per epoch on each rank
    assert [r["steps"] for r in rows if "loss" in r] == [6, 6]
    assert load_model(tmp_path / "run").stage == 2
