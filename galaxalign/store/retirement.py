"""When a galaxy has had enough votes: a survey's retirement rule and the consensus it retires on.

Two methods, chosen per survey (:func:`set_retirement`; the Admin page and ``galaxalign retirement``):

- ``majority`` — Zooniverse/Caesar style: retire after ``n_votes`` votes, or from ``early_votes`` on
  when the top class holds ``early_agreement`` of the tally.
- ``skill`` — SWAP style (Marshall et al. 2016, for many classes): every answer is weighed by its
  volunteer's confusion matrix measured on gold galaxies, each row smoothed toward their pooled gold
  accuracy (:func:`confusion_from_gold`; a volunteer never seen on gold is taken to be right
  ``prior_accuracy`` of the time). The posterior over the true
  class (uniform prior) retires the galaxy once its top class reaches ``skill_threshold`` after at
  least ``skill_min_votes`` human votes, or after ``n_votes`` anyway. Two skilled volunteers who agree
  can retire a galaxy that a spammer and a careless volunteer cannot.

Either method can count **the model as k volunteers** (``model_votes`` = k, 0 turns it off): when the
active model's prediction passes the proposal gate (:func:`galaxalign.gate.proposal_decision` — its
proposals at that confidence were right ``target_precision`` of the time on held-out galaxies), it adds
k votes for its top class; in ``skill`` as k voters right with that precision. The model never retires
a galaxy alone: its votes count once a human has voted.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, fields

import numpy as np

from .db import StoreError

__all__ = ["RetirementRule", "Decision", "decide", "confusion_from_gold", "RETIREMENT_METHODS"]

RETIREMENT_METHODS = ("majority", "skill")


@dataclass(frozen=True)
class RetirementRule:
    """See the module docstring. ``RetirementRule.from_dict(survey.retirement)`` reads a survey's rule."""

    n_votes: int = 5
    early_votes: int = 3
    early_agreement: float = 0.8
    method: str = "majority"
    skill_threshold: float = 0.95
    skill_min_votes: int = 2
    prior_accuracy: float = 0.7
    model_votes: float = 0.0

    def __post_init__(self):
        if self.method not in RETIREMENT_METHODS:
            raise StoreError(f"retirement method {self.method!r} must be one of {', '.join(RETIREMENT_METHODS)}")
        for name in ("n_votes", "early_votes", "skill_min_votes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10**6:  # 10**6: never retire
                raise StoreError(f"retirement {name} {v!r}: must be a whole number from 1 to 1,000,000")
        for name, lo, hi in (("early_agreement", 0.0, 1.0), ("skill_threshold", 0.0, 1.0),
                             ("prior_accuracy", 0.0, 1.0), ("model_votes", 0.0, 100.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
                raise StoreError(f"retirement {name} {v!r}: must be a number from {lo:g} to {hi:g}")
        if self.early_votes > self.n_votes or self.skill_min_votes > self.n_votes:
            raise StoreError(f"retirement: early_votes ({self.early_votes}) and skill_min_votes "
                             f"({self.skill_min_votes}) cannot exceed n_votes ({self.n_votes})")

    @classmethod
    def from_dict(cls, d: dict | None) -> "RetirementRule":
        d = dict(d or {})
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise StoreError(f"retirement: unknown setting(s) {', '.join(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    label: int | None          # the consensus class (None: the top answer names no class)
    agreement: float | None    # its share of the tally (majority) or its posterior probability (skill)
    retire: bool
    reason: str | None         # vote_limit, consensus, consensus_with_model, skill, skill_with_model


def confusion_from_gold(records: list[tuple[int, int | None]], n_classes: int, prior_accuracy: float,
                        strength: float = 2.0) -> np.ndarray:
    """A volunteer's ``P(answer | true class)`` (C × C, rows sum to 1) from their gold ``(true, answer)``
    records. Each row adds ``strength`` pseudo-votes centred on the volunteer's pooled gold accuracy
    (itself shrunk toward ``prior_accuracy``), so a class never seen on gold inherits their overall
    skill: a spammer stays a spammer on every class, a newcomer is assumed ``prior_accuracy``."""
    seen = [(t, a) for t, a in records if 0 <= t < n_classes]
    correct = sum(a == t for t, a in seen)
    pooled = (correct + prior_accuracy * strength) / (len(seen) + strength)
    off = (1 - pooled) / max(1, n_classes - 1)
    m = np.full((n_classes, n_classes), off * strength)
    np.fill_diagonal(m, pooled * strength)
    for true, answer in seen:
        if answer is not None and 0 <= answer < n_classes:
            m[true, answer] += 1
    return m / m.sum(1, keepdims=True)


def top_of(counts: dict) -> tuple:
    """The top key of a tally; ties go to a class before None, then to the lower class index."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or 0))[0]


def decide(rule: RetirementRule, answers: list[int | None], n_classes: int,
           confusions: list[np.ndarray | None] | None = None, model_class: int | None = None,
           model_precision: float = 0.9) -> Decision:
    """The consensus and retirement of one galaxy from its human ``answers`` (class per vote, None for
    a path that names no class), each volunteer's ``confusions`` (``skill``; None: the prior alone) and
    the model's top class when it counts (``model_class``; ignored when ``rule.model_votes`` is 0)."""
    n = len(answers)
    k = float(rule.model_votes) if (model_class is not None and rule.model_votes > 0 and n >= 1) else 0.0
    if n == 0:
        return Decision(None, None, False, None)
    if rule.method == "skill":
        prior = confusion_from_gold([], n_classes, rule.prior_accuracy)
        logp = np.zeros(n_classes)
        for i, a in enumerate(answers):
            if a is None:
                continue
            conf = confusions[i] if confusions is not None and confusions[i] is not None else prior
            logp += np.log(np.clip(conf[:, a], 1e-12, None))
        if k:
            lik = np.full(n_classes, (1 - model_precision) / max(1, n_classes - 1))
            lik[model_class] = model_precision
            logp += k * np.log(np.clip(lik, 1e-12, None))
        if all(a is None for a in answers):
            label, agreement = None, 1.0
        else:
            post = np.exp(logp - logp.max())
            post /= post.sum()
            label, agreement = int(post.argmax()), float(post.max())
        if n >= rule.n_votes:
            return Decision(label, agreement, True, "vote_limit")
        if label is not None and n >= rule.skill_min_votes and agreement >= rule.skill_threshold:
            return Decision(label, agreement, True, "skill_with_model" if k and label == model_class else "skill")
        return Decision(label, agreement, False, None)
    counts: dict[int | None, float] = defaultdict(float)
    for a in answers:
        counts[a] += 1.0
    if k:
        counts[model_class] += k
    label, top_n = top_of(counts)
    agreement = top_n / (n + k)
    if n >= rule.n_votes:
        return Decision(label, agreement, True, "vote_limit")
    if label is not None and n + k >= rule.early_votes and agreement >= rule.early_agreement:
        return Decision(label, agreement, True, "consensus_with_model" if k and label == model_class else "consensus")
    return Decision(label, agreement, False, None)
