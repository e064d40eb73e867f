import numpy as np
import pytest

from galaxalign.baselines import effective_number_weights, linear_probe, train_supervised
from galaxalign.data import load_survey
from galaxalign.train import TrainCfg


def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    # nearly collapsed features, as a random tower gives: a shared direction plus a small class signal
    base = rng.normal(0, 1, 32)
    f = base / np.linalg.norm(base) + (rng.normal(0, 1, (120, 32)) + 3 * np.eye(32)[y]) * 1e-3
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    tr, te = np.arange(0, 120, 2), np.arange(1, 120, 2)
    res = linear_probe(f[tr], y[tr], f[te], y[te], ["a", "b", "c"])
    assert res["accuracy"] > 0.8 and res["macro_f1"] > 0.8 and res["map"] is not None


def test_effective_number_weights_favour_rare_classes():
    w = effective_number_weights(np.array([1000, 100, 10]))
    assert w[2] > w[1] > w[0] and w.mean() == pytest.approx(1.0)


def test_supervised_baseline_runs_on_the_same_split(synth_h5):
    cfg = TrainCfg(stage1_epochs=1, stage2_epochs=0, batch_size=8, warmup_steps=1)
    res = train_supervised(cfg, load_survey(synth_h5), focal_gamma=2.0, class_weights=True)
    assert res["n"] == 11 and 0 <= res["accuracy"] <= 1 and {"macro_f1", "map_at_5", "map"} <= set(res)
