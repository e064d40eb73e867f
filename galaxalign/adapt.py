"""Adapting a trained model to a survey it was not trained on (sim → real, one instrument → another).

Three terms, on the image tower only (the text tower, and so the class prompts, stay as they are):

- **self-supervised** — SimCLR on the target's unlabelled images (:mod:`galaxalign.pretrain` views),
  so the tower learns the target's look;
- **keep the classes** — cross-entropy of the labelled source galaxies against the class prompts'
  text embeddings (the model's own zero-shot head), so what it knows is not forgotten;
- **align** (optional) — the distance between source and target feature distributions in each batch:
  exact optimal transport (``ot``: POT's ``emd2`` on the cosine cost, differentiable through the
  cost matrix) or a Gaussian-kernel MMD (``mmd``), as in ``../shared/seeds/galaxy-da-readme.txt``.

The **domain AUC** tells how separable the two feature clouds are: a logistic regression trained to
tell source from target features, cross-validated ROC AUC — 1.0 means the model sees two different
worlds, 0.5 that they are mixed. It is measured before and after.

>>> res = adapt_model(model, source, src_idx, target, AdaptCfg(epochs=3, align="ot"))   # doctest: +SKIP
>>> res["domain_auc_before"], res["domain_auc_after"]                                   # doctest: +SKIP
(0.97, 0.71)
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .data import Survey
from .errors import GalaxalignError
from .inference import embed_images
from .engine import Engine
from .pretrain import SSLHead, encode_views, sky_views

__all__ = ["AdaptCfg", "domain_auc", "adapt_model", "ALIGN", "mmd", "ot_distance"]

ALIGN = ("none", "ot", "mmd")


@dataclass
class AdaptCfg:
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-4
    align: str = "ot"
    align_weight: float = 1.0
    ssl_weight: float = 1.0
    temperature: float = 0.2
    seed: int = 0

    def check(self) -> None:
        if self.align not in ALIGN:
            raise GalaxalignError(f"align must be one of {', '.join(ALIGN)}, got {self.align!r}")
        if self.epochs < 1 or self.batch_size < 4:
            raise GalaxalignError(f"adapt needs epochs ≥ 1 and batch_size ≥ 4, got {self.epochs} and {self.batch_size}")


def domain_auc(source: np.ndarray, target: np.ndarray, seed: int = 0, max_per_side: int = 2000) -> float:
    """Cross-validated ROC AUC of a logistic regression separating source from target features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    n = min(len(source), len(target), max_per_side)
    if n < 10:
        raise GalaxalignError(f"domain AUC needs at least 10 galaxies on each side, got {len(source)} and {len(target)}")
    xs = source[rng.choice(len(source), n, replace=False)]
    xt = target[rng.choice(len(target), n, replace=False)]
    x = np.concatenate([xs, xt])
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = LogisticRegression(max_iter=2000, C=1.0)
    return float(np.mean(cross_val_score(clf, x, y, cv=5, scoring="roc_auc")))


def mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared MMD with a Gaussian kernel at the median pairwise distance (biased estimator)."""
    x = torch.cat([a, b])
    d2 = torch.cdist(x, x).pow(2)
    bw = d2.detach().median().clamp(min=1e-6)
    k = torch.exp(-d2 / bw)
    n = len(a)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


def ot_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact optimal-transport cost (POT ``emd2``) between two batches under the cosine cost."""
    import ot

    cost = 1 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    wa = torch.full((len(a),), 1 / len(a), dtype=cost.dtype)
    wb = torch.full((len(b),), 1 / len(b), dtype=cost.dtype)
    return ot.emd2(wa, wb, cost)


def _embed(model, survey: Survey, idx: np.ndarray) -> np.ndarray:
    return embed_images(model, survey, idx)


def adapt_model(model, source: Survey, source_idx: np.ndarray, target: Survey, cfg: AdaptCfg,
                progress: Callable[[float, str], None] | None = None, max_auc: int = 1000) -> dict:
    """Adapt ``model`` (in place) from the labelled ``source`` galaxies at ``source_idx`` to the
    unlabelled ``target`` survey. Returns the domain AUC before and after and the loss history."""
    from lightly.loss import NTXentLoss

    cfg.check()
    if source.image_shape != target.image_shape:
        raise GalaxalignError(f"{target.path}: prepared images are {target.image_shape}, the source's "
                              f"{source.image_shape}: give the target a preparation of the same size first")
    rng = np.random.default_rng(cfg.seed)
    src_idx = np.asarray(source_idx)
    src_idx = src_idx[source.labels[src_idx] >= 0]
    auc_src = rng.choice(src_idx, min(len(src_idx), max_auc), replace=False)
    auc_tgt = rng.choice(len(target), min(len(target), max_auc), replace=False)
    before = domain_auc(_embed(model, source, auc_src), _embed(model, target, auc_tgt), cfg.seed)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = SSLHead(model).train()
    model.train()
    ntx = NTXentLoss(temperature=cfg.temperature)
    params = list(model.clip.visual.parameters()) + list(net.head.parameters())
    engine = Engine(params, cfg.lr, weight_decay=0.02, grad_clip=1.0)  # a constant rate: a short run
    with torch.no_grad():
        protos = F.normalize(model.encode_text(model.tokenize(model.prompts)), dim=-1)
    scale = float(model.logit_scale.detach())
    steps = max(1, len(target) // cfg.batch_size)
    history = []
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        sums = {"ssl": 0.0, "cls": 0.0, "align": 0.0}
        for step in range(steps):
            t_idx = np.sort(rng.choice(len(target), cfg.batch_size, replace=len(target) < cfg.batch_size))
            s_idx = np.sort(rng.choice(src_idx, cfg.batch_size, replace=len(src_idx) < cfg.batch_size))
            t_img = torch.from_numpy(target.images(t_idx))
            s_img = torch.from_numpy(source.images(s_idx))
            y = torch.as_tensor(source.labels[s_idx])

            def compute(t_img=t_img, s_img=s_img, y=y):
                v1, v2 = sky_views(t_img, gen), sky_views(t_img, gen)
                ssl = ntx(net(v1), net(v2))
                zs = encode_views(model, sky_views(s_img, gen))
                zt = encode_views(model, v1)
                cls = F.cross_entropy(scale * F.normalize(zs, dim=-1) @ protos.T, y)
                align = torch.zeros(())
                if cfg.align == "ot":
                    align = ot_distance(zs, zt)
                elif cfg.align == "mmd":
                    align = mmd(F.normalize(zs, dim=-1), F.normalize(zt, dim=-1))
                return {"loss": cfg.ssl_weight * ssl + cls + cfg.align_weight * align, "ssl": ssl, "cls": cls,
                        "align": align}
            terms = engine.step(compute)
            for k in ("ssl", "cls", "align"):
                sums[k] += float(terms[k].detach())
        history.append({k: round(v / steps, 4) for k, v in sums.items()})
        if progress:
            progress((epoch + 1) / cfg.epochs, f"adapt epoch {epoch + 1}/{cfg.epochs}: " +
                     ", ".join(f"{k} {v:.3f}" for k, v in history[-1].items()))
    model.eval()
    after = domain_auc(_embed(model, source, auc_src), _embed(model, target, auc_tgt), cfg.seed)
    return {"domain_auc_before": round(before, 4), "domain_auc_after": round(after, 4), "history": history,
            "seconds": round(time.perf_counter() - t0, 1), "config": asdict(cfg)}
