"""Baselines the paper compares with, on the same image tower and split.

- :func:`train_supervised`: the image tower plus a linear head, trained with cross-entropy (or focal
  loss, optionally with effective-number class weights as in galaxy-da), image-only.
- :func:`linear_probe`: logistic regression on frozen features (sklearn).

Both return the same metric names as :func:`galaxalign.inference.evaluate_model`; retrieval uses the
tower's L2-normalised features.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import Survey
from .loss import focal_loss
from .metrics import classification_report, retrieval_map
from .model import create_model
from .engine import EarlyStop, Engine, amp_enabled, decay_groups, device_for
from .train import TrainCfg, augment_images, epoch_order, resolve_split

__all__ = ["train_supervised", "linear_probe", "tower_features", "effective_number_weights"]


def effective_number_weights(counts: np.ndarray, beta: float = 0.999) -> np.ndarray:
    """Class weights (1 − β) / (1 − β^n_c) (Cui et al. 2019), scaled to mean 1."""
    counts = np.maximum(np.asarray(counts, float), 1)
    w = (1 - beta) / (1 - beta ** counts)
    return w / w.mean()


def _metrics(y, pred, feats, names) -> dict:
    rep = classification_report(y, pred, names)
    out = {"n": int(len(y)), "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"]}
    try:
        out["map_at_5"], out["map"] = retrieval_map(feats, y, 5), retrieval_map(feats, y)
    except ValueError:
        out["map_at_5"] = out["map"] = None
    return out


@torch.inference_mode()
def tower_features(visual: nn.Module, preprocess, survey: Survey, idx: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """L2-normalised features (n, D) of an image tower."""
    visual.eval()
    out = [F.normalize(visual(preprocess(imgs)), dim=-1).cpu().numpy() for _, imgs in survey.iter_batches(batch_size, idx)]
    return np.concatenate(out)


def train_supervised(cfg: TrainCfg, survey: Survey, focal_gamma: float = 0.0, class_weights: bool = False,
                     epochs: int | None = None) -> dict:
    """Image tower + linear head, trained end to end for ``stage1_epochs + stage2_epochs`` epochs, on
    the same split, augmentation, precision and early stopping (``patience``, on the valid split) as
    :func:`galaxalign.train.train`."""
    torch.manual_seed(cfg.seed)
    device = device_for(cfg.device)
    labels = survey.labels
    tr, va, te = resolve_split(survey, cfg)
    tr, te = tr[labels[tr] >= 0], te[labels[te] >= 0]
    tm = create_model(cfg.model, device)
    visual = tm.clip.visual
    n_cls = len(survey.class_names)
    head = nn.Linear(tm.embed_dim, n_cls).to(device)
    epochs = epochs or (cfg.stage1_epochs + cfg.stage2_epochs)
    steps = len(tr) // cfg.batch_size
    engine = Engine(decay_groups(nn.ModuleList([visual, head]), cfg.weight_decay), cfg.lr, betas=(0.9, 0.98),
                    eps=1e-6, total_steps=steps * epochs, warmup_steps=cfg.warmup_steps,
                    grad_clip=cfg.grad_clip or None, amp=amp_enabled(cfg.amp, device), device_type=device.type)
    stopper = EarlyStop(cfg.patience)
    weight = None
    if class_weights:
        weight = torch.tensor(effective_number_weights(np.bincount(labels[tr], minlength=n_cls)), dtype=torch.float32,
                              device=device)
    images = torch.from_numpy(survey.images(np.arange(len(survey))))
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        visual.train()
        head.train()
        perm = epoch_order(tr, labels, cfg.seed, epoch, cfg.balanced)
        for s in range(steps):
            b = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            x = images[b]
            if cfg.augment:
                x = augment_images(x, gen, cfg.rotation, cfg.shift, cfg.noise)
            y = torch.as_tensor(labels[b], device=device)

            def compute(x=x, y=y):
                logits = head(visual(tm.preprocess(x))).float()
                return focal_loss(logits, y, focal_gamma, weight) if (focal_gamma or weight is not None) else \
                    F.cross_entropy(logits, y)
            engine.step(compute)
        if cfg.patience and len(va):
            acc = float(np.mean(_predict(visual, head, tm.preprocess, survey, va) == labels[va]))
            if stopper.update(acc, epoch + 1, visual, head):
                break
    stopper.restore(visual, head)
    feats = tower_features(visual, tm.preprocess, survey, te)
    out = _metrics(labels[te], _predict(visual, head, tm.preprocess, survey, te), feats, survey.class_names)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    if stopper.kept:
        out["selected_epoch"], out["valid_accuracy"] = stopper.epoch, stopper.score
    return out


@torch.inference_mode()
def _predict(visual: nn.Module, head: nn.Module, preprocess, survey: Survey, idx: np.ndarray) -> np.ndarray:
    visual.eval()
    head.eval()
    pred = [head(visual(preprocess(imgs))).argmax(1).cpu().numpy() for _, imgs in survey.iter_batches(256, idx)]
    return np.concatenate(pred) if pred else np.zeros(0, np.int64)


def linear_probe(train_feats: np.ndarray, y_train: np.ndarray, test_feats: np.ndarray, y_test: np.ndarray,
                 class_names: list[str], C: float = 1.0) -> dict:
    """Logistic regression on standardised frozen features; retrieval on the test features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # unit-norm features have tiny per-dimension variance: without scaling, C=1 underfits badly
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
    clf.fit(train_feats, y_train)
    return _metrics(y_test, clf.predict(test_feats), test_feats, class_names)
