"""Proposals refreshed in seconds: an ensemble of linear heads on the stored embeddings.

Between two fine-tunes (minutes to hours) the tower does not change, so neither do the galaxies'
embeddings; what the votes teach in the meantime can reach the proposals through a light head on them.
Each head starts from the model's own classifier — ``s · cos(image, class text)``, the
probabilities the model proposes with — and is refitted on every galaxy's vote counts by the same
Dirichlet–multinomial likelihood the fine-tune uses (:func:`galaxalign.loss.vote_nll`),
with a Gaussian prior that keeps it near the model where votes are few. ``n`` heads, each on its own
Poisson bootstrap of the galaxies, form the ensemble whose disagreement is BALD's mutual information
(Houlsby et al. 2011; Walmsley et al. 2020): the galaxies on which more votes would teach the most.

A temperature fitted on held-out labelled galaxies (Guo et al. 2017) makes the ensemble's confidence
mean what it says; :func:`expected_calibration_error` measures how far it is from that.

>>> heads = fit_heads(emb, counts, prototypes, scale, n_heads=5)     # doctest: +SKIP
>>> p = heads.probs(emb)                                              # (n, 5, C), tempered
>>> mean, mi = p.mean(1), mutual_information(p)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .loss import vote_nll
from .taxonomy import AnswerMap

__all__ = ["Heads", "fit_heads", "choose_prior", "fit_temperature", "mutual_information", "expected_calibration_error",
           "pseudo_votes"]


PRIOR_GRID = (1.0, 10.0, 100.0, 1000.0)  # the prior's weight, in galaxies' worth of votes
DEFAULT_PRIOR = 10.0


@dataclass
class Heads:
    """``n`` linear heads: logits of head m = ``emb @ weight[m].T + bias[m]``, divided by ``temperature``."""

    weight: np.ndarray        # (M, C, D)
    bias: np.ndarray          # (M, C)
    temperature: float = 1.0

    def logits(self, emb: np.ndarray) -> np.ndarray:
        """(n, M, C) untempered logits."""
        e = np.asarray(emb, np.float32)
        return np.einsum("nd,mcd->nmc", e, self.weight, optimize=True) + self.bias[None]

    def probs(self, emb: np.ndarray, temperature: float | None = None, chunk: int = 50_000) -> np.ndarray:
        """(n, M, C) class probabilities of every head, tempered."""
        t = self.temperature if temperature is None else temperature
        out = []
        for s in range(0, len(emb), chunk):
            z = self.logits(emb[s:s + chunk]) / t
            z -= z.max(-1, keepdims=True)
            p = np.exp(z)
            out.append((p / p.sum(-1, keepdims=True)).astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, *self.bias.shape), np.float32)


def fit_heads(emb: np.ndarray, counts: np.ndarray, prototypes: np.ndarray, scale: float, n_heads: int = 5,
              concentration: float = 10.0, prior: float = DEFAULT_PRIOR, seed: int = 0, steps: int = 60,
              answer_map: AnswerMap | None = None) -> Heads:
    """Fit ``n_heads`` heads on the rows of ``counts`` (n, K) that hold votes, K the columns of
    ``answer_map`` (default: one per class); ``prototypes`` (C, D) and ``scale`` are the model's
    classifier, where every head starts and what its prior pulls toward (``prior``: the prior's weight
    against one galaxy's likelihood, ``prior / 2 · ‖W − W₀‖² / s²``). The first head sees every galaxy
    once; the others a Poisson(1) bootstrap of them."""
    emb = np.asarray(emb, np.float32)
    counts = np.asarray(counts, np.float32)
    rows = np.flatnonzero(counts.sum(1) > 0)
    w0 = torch.as_tensor(np.asarray(prototypes, np.float32) * scale)
    c = w0.shape[0]
    amap = answer_map or AnswerMap.flat(c)
    implies = torch.as_tensor(amap.implies)
    weights, biases = [], []
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(emb[rows])
    k = torch.as_tensor(counts[rows])
    for m in range(n_heads):
        boot = np.ones(len(rows), np.float32) if m == 0 else rng.poisson(1.0, len(rows)).astype(np.float32)
        if len(rows) == 0 or boot.sum() == 0:
            weights.append(w0.numpy().copy())
            biases.append(np.zeros(c, np.float32))
            continue
        bw = torch.as_tensor(boot)
        w = w0.clone().requires_grad_(True)
        b = torch.zeros(c, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            nll = vote_nll(x @ w.t() + b, k, implies, amap.tasks, concentration)
            loss = (bw * nll).sum() + 0.5 * prior * ((w - w0) ** 2).sum() / scale ** 2 + 0.5 * prior * (b ** 2).sum()
            loss = loss / max(float(bw.sum()), 1.0)
            loss.backward()
            return loss

        opt.step(closure)
        weights.append(w.detach().numpy())
        biases.append(b.detach().numpy())
    return Heads(np.stack(weights), np.stack(biases))


def choose_prior(emb: np.ndarray, counts: np.ndarray, prototypes: np.ndarray, scale: float, held_emb: np.ndarray,
                 held_labels: np.ndarray, grid=PRIOR_GRID, **kw) -> float:
    """The prior weight (how far the heads may move from the model) whose single head gives held-out
    labelled galaxies the highest likelihood: with few votes the model knows better, with many the votes."""
    held_labels = np.asarray(held_labels)
    best, best_nll = DEFAULT_PRIOR, np.inf
    for prior in grid:
        nll = _nll(fit_heads(emb, counts, prototypes, scale, n_heads=1, prior=prior, **kw).probs(held_emb)[:, 0],
                   held_labels)
        if nll < best_nll:
            best, best_nll = float(prior), nll
    return best


def fit_temperature(probs_of, labels: np.ndarray, grid: np.ndarray | None = None) -> float:
    """The temperature T minimising the held-out negative log-likelihood of ``labels`` under the
    ensemble's mean probabilities ``probs_of(T)`` (n, C): a search over log T (robust and 1-D)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121)) if grid is None else grid
    return float(grid[int(np.argmin([_nll(probs_of(t), labels) for t in grid]))])


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of ``labels`` under ``probs`` (n, C): how held-out galaxies judge a fit."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))


def mutual_information(p: np.ndarray) -> np.ndarray:
    """BALD: H(mean over heads) − mean over heads of H, per galaxy, divided by log C (0–1). ``p`` (n, M, C)."""
    p = np.asarray(p, np.float64)
    h = lambda q: -np.sum(np.where(q > 0, q * np.log(np.clip(q, 1e-12, None)), 0.0), -1)  # noqa: E731
    mi = h(p.mean(1)) - h(p).mean(1)
    return np.clip(mi / np.log(max(2, p.shape[-1])), 0.0, 1.0)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: Σ over equal-width confidence bins of (share of galaxies) × |accuracy − mean confidence|."""
    probs = np.asarray(probs, float)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    conf = probs.max(1)
    ok = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(ok[sel].mean() - conf[sel].mean())
    return float(ece)


def pseudo_votes(probs: np.ndarray, counts: np.ndarray, threshold: float, weight: float = 1.0) -> np.ndarray:
    """Counts with the galaxies that have no votes yet but a calibrated confidence ≥ ``threshold`` given
    ``weight`` pseudo-votes for their most probable class (self-training; 0 or ≥ 1 turns it off). The
    class columns come first in every :class:`~galaxalign.taxonomy.AnswerMap`."""
    out = np.array(counts, np.float32, copy=True)
    if not 0 < threshold < 1:
        return out
    free = (out.sum(1) == 0) & (probs.max(1) >= threshold)
    out[np.flatnonzero(free), probs[free].argmax(1)] = weight
    return out
