"""GalaxAlign's contrastive losses, returning named terms.

For a pair of modalities (a, b) and a batch of N aligned embeddings, the CLIP term is the symmetric
InfoNCE of open_clip's ``ClipLoss``::

    logits = s · â bᵀ            (N, N), â, b̂ L2-normalised, s = 1/τ learnable
    L(a, b) = ½ [CE(logits, y) + CE(logitsᵀ, y)]

- Paper targets (default): y = diag — only the i-th b is positive for the i-th a, so two galaxies
  of the same class in one batch count as negatives of each other (paper §3.2).
- Class-aware targets (``class_aware=True``): every same-class pair is positive, the target row is
  uniform over them (a soft cross-entropy).

Stage 1 = L(img, txt) + L(sym, txt); stage 2 = L(img, txt) + L(img, sym) + L(sym, txt) (paper
§3.2–3.3). Ablations drop pairs (``pairs=``).

>>> loss = GalaxAlignLoss(pairs=STAGE2_PAIRS)
>>> terms = loss({"img": zi, "sym": zs, "txt": zt}, logit_scale, labels)   # doctest: +SKIP
>>> sorted(terms)                                                            # doctest: +SKIP
['img_sym', 'img_txt', 'loss', 'sym_txt']
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["clip_pair_loss", "GalaxAlignLoss", "STAGE1_PAIRS", "STAGE2_PAIRS", "PAIR_NAMES", "parse_pairs",
           "dirichlet_multinomial_nll", "vote_nll"]

STAGE1_PAIRS = ("img_txt", "sym_txt")
STAGE2_PAIRS = ("img_txt", "img_sym", "sym_txt")
PAIR_NAMES = ("img_txt", "img_sym", "sym_txt")


def parse_pairs(pairs: Iterable[str]) -> tuple[str, ...]:
    out = tuple(pairs)
    bad = [p for p in out if p not in PAIR_NAMES]
    if bad or not out:
        raise ValueError(f"loss pairs must be a non-empty subset of {PAIR_NAMES}, got {out}")
    return out


def clip_pair_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, labels: torch.Tensor | None = None,
                   class_aware: bool = False) -> torch.Tensor:
    """Symmetric CLIP loss between ``a`` (N, D) and ``b`` (N, D); see the module docstring."""
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = logit_scale * a @ b.t()  # (N, N)
    n = logits.shape[0]
    if not class_aware:
        y = torch.arange(n, device=logits.device)
        return 0.5 * (F.cross_entropy(logits, y) + F.cross_entropy(logits.t(), y))
    if labels is None:
        raise ValueError("class-aware targets need the labels")
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(1, keepdim=True)  # rows of a symmetric matrix; its transpose is the same
    return 0.5 * (torch.sum(-target * F.log_softmax(logits, 1), 1).mean()
                  + torch.sum(-target * F.log_softmax(logits.t(), 1), 1).mean())


class GalaxAlignLoss(nn.Module):
    """Sum of :func:`clip_pair_loss` over the chosen pairs; returns ``{pair: term, "loss": sum}``."""

    def __init__(self, pairs: Iterable[str] = STAGE1_PAIRS, class_aware: bool = False):
        super().__init__()
        self.pairs = parse_pairs(pairs)
        self.class_aware = class_aware

    def forward(self, z: dict[str, torch.Tensor], logit_scale: torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        terms = {}
        for pair in self.pairs:
            a, b = pair.split("_")
            terms[pair] = clip_pair_loss(z[a], z[b], logit_scale, labels, self.class_aware)
        terms["loss"] = sum(terms[p] for p in self.pairs)
        return terms


def focal_loss(logits: torch.Tensor, y: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None):
    """Focal loss (Lin et al. 2017) for the supervised baseline: CE scaled by (1 − p_y)^γ."""
    logp = F.log_softmax(logits, 1)
    logp_y = logp.gather(1, y[:, None]).squeeze(1)
    loss = -((1 - logp_y.exp()) ** gamma) * logp_y
    if weight is not None:
        loss = loss * weight[y]
        return loss.sum() / weight[y].sum()
    return loss.mean()


def dirichlet_multinomial_nll(logits: torch.Tensor, counts: torch.Tensor, concentration: float = 10.0) -> torch.Tensor:
    """Negative log-likelihood of each galaxy's vote counts under a Dirichlet–multinomial whose mean is the
    model's class probabilities (Walmsley et al. 2020, Zoobot): (B, C) logits, (B, C) counts → (B,).

    With ``p = softmax(logits)`` and ``α = A p`` (``A`` = ``concentration``, how much volunteers agree
    beyond chance), N = Σ k::

        −log P(k) = −[log N! − Σ log k_c! + log Γ(A) − log Γ(N + A) + Σ (log Γ(k_c + α_c) − log Γ(α_c))]

    A galaxy with no votes contributes 0; two votes teach less than twenty, and twenty less than ten
    times two (the evidence saturates: volunteers' answers are over-dispersed). As ``A → ∞`` it tends to
    the multinomial, ``N ×`` the soft-label cross-entropy against the vote fractions (plus a constant).
    Counts may be fractional (skill-weighted votes).

    >>> dirichlet_multinomial_nll(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), 10.0)  # one vote, p = ½
    tensor([0.6931])
    """
    return _dm_nll(F.softmax(logits.float(), -1).to(logits.dtype), counts, concentration)


def vote_nll(logits: torch.Tensor, counts: torch.Tensor, implies: torch.Tensor, tasks, concentration: float = 10.0):
    """The vote term over the tasks of an :class:`~galaxalign.taxonomy.AnswerMap`: (B, C) class logits,
    (B, K) counts over its columns → (B,), the sum over tasks of the Dirichlet–multinomial NLL of each
    task's counts under the answer probabilities the classes imply there::

        q_T(a) = Σ_c p_c implies[c, a] / Σ_c p_c Σ_{a' ∈ T} implies[c, a']

    (among the classes that say something at T). With one task and ``implies`` the identity (a flat
    workflow) it is :func:`dirichlet_multinomial_nll`."""
    p = F.softmax(logits.float(), -1)
    implies = implies.to(p)
    counts = counts.to(p)
    total = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
    for cols in tasks:
        cols = torch.as_tensor(cols, device=p.device)
        k = counts[:, cols]
        if not bool((k.sum(1) > 0).any()):
            continue
        mass = p @ implies[:, cols]
        q = mass / mass.sum(1, keepdim=True).clamp_min(1e-12)
        total = total + _dm_nll(q, k, concentration)
    return total.to(logits.dtype)


def _dm_nll(q: torch.Tensor, counts: torch.Tensor, concentration: float) -> torch.Tensor:
    """−log DirMult(counts | α = A q), per row; ``q`` (B, C) probabilities."""
    counts = counts.to(q.dtype)
    a = torch.as_tensor(float(concentration), dtype=q.dtype, device=q.device)
    alpha = (a * q).clamp_min(1e-6)
    n = counts.sum(-1)
    ll = (torch.lgamma(n + 1) - torch.lgamma(counts + 1).sum(-1)
          + torch.lgamma(a) - torch.lgamma(n + a)
          + (torch.lgamma(counts + alpha) - torch.lgamma(alpha)).sum(-1))
    return -ll
