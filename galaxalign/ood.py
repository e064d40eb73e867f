"""When to show the model's proposal: an out-of-distribution score and a confidence floor.

A pre-selected wrong proposal pulls volunteers toward it, so the Classify page pre-selects the model's
answer only when two checks pass, both calibrated at the end of training on galaxies the model has
not trained on (the valid split):

- **familiarity** — the distance from a galaxy's embedding to its k-th nearest training embedding
  (Sun et al. 2022, "Out-of-distribution detection with deep nearest neighbors"), divided by the
  distance that 95 % of held-out in-distribution galaxies stay within. A score above 1 means the
  galaxy looks unlike everything the model learnt from: another instrument, an artefact, a survey
  the model was never trained on.
- **confidence floor** — the lowest confidence at which the model's proposals on the valid split
  were still right at least 90 % of the time (counting from the most confident down).

>>> cal = Familiarity.fit(train_emb, valid_emb, valid_labels, valid_probs)   # doctest: +SKIP
>>> cal.scores(new_emb)                                                      # doctest: +SKIP
array([0.42, 0.87, 3.1 ])
>>> proposal_decision(0.81, 3.1, cal.summary())                              # doctest: +SKIP
(False, 'this galaxy looks unlike the galaxies the model learnt from (unfamiliarity 3.1 × the usual limit)')
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gate import TARGET_PRECISION, is_blind, proposal_decision

__all__ = ["Familiarity", "knn_distance", "confidence_floor", "proposal_decision", "DEFAULT_K", "QUANTILE",
           "TARGET_PRECISION"]

DEFAULT_K = 10
QUANTILE = 0.95          # held-out in-distribution galaxies within the limit
MAX_REFERENCE = 4096     # training embeddings kept in the checkpoint (float16: 1 MB at D = 128)


def knn_distance(queries: np.ndarray, reference: np.ndarray, k: int = DEFAULT_K, chunk: int = 4096,
                 exclude_self: bool = False) -> np.ndarray:
    """Cosine distance (1 − cos) from each unit-norm query to its k-th nearest reference vector."""
    q = np.asarray(queries, np.float32)
    ref = np.asarray(reference, np.float32)
    if q.ndim != 2 or ref.ndim != 2 or q.shape[1] != ref.shape[1]:
        raise ValueError(f"embeddings {q.shape} and reference {ref.shape} do not match")
    kk = min(k + int(exclude_self), len(ref))
    out = np.empty(len(q), np.float32)
    for s in range(0, len(q), chunk):
        sims = q[s:s + chunk] @ ref.T
        top = -np.partition(-sims, kk - 1, axis=1)[:, kk - 1]  # the kk-th largest similarity
        out[s:s + chunk] = 1.0 - top
    return out


def confidence_floor(confidence: np.ndarray, correct: np.ndarray, target: float = TARGET_PRECISION,
                     min_count: int = 5) -> float:
    """The lowest confidence t such that the proposals with confidence ≥ t were right ≥ ``target`` of
    the time (cumulative from the most confident; at least ``min_count`` of them). 1.0 when even the
    most confident proposals miss the target: then nothing is pre-selected.

    >>> confidence_floor(np.array([.9, .8, .7, .6, .5, .4]), np.array([1, 1, 1, 1, 1, 0]), 0.9, 2)
    0.5
    """
    conf = np.asarray(confidence, float)
    ok = np.asarray(correct, float)
    if len(conf) == 0:
        return 1.0
    order = np.argsort(-conf, kind="stable")
    precision = np.cumsum(ok[order]) / np.arange(1, len(conf) + 1)
    good = np.flatnonzero((precision >= target) & (np.arange(1, len(conf) + 1) >= min(min_count, len(conf))))
    if len(good) == 0:
        return 1.0
    return float(conf[order][good.max()])


@dataclass
class Familiarity:
    """The calibration a checkpoint carries: reference embeddings, k, the distance limit, the floor."""

    reference: np.ndarray  # (M, D) float16, unit-norm training embeddings
    k: int
    limit: float           # k-NN distance within which QUANTILE of held-out galaxies fall
    floor: float           # confidence floor (see :func:`confidence_floor`)
    quantile: float = QUANTILE
    target_precision: float = TARGET_PRECISION
    n_calibration: int = 0

    @classmethod
    def fit(cls, train_emb: np.ndarray, held_emb: np.ndarray, held_labels: np.ndarray, held_probs: np.ndarray,
            k: int = DEFAULT_K, seed: int = 0) -> "Familiarity":
        train_emb = np.asarray(train_emb, np.float32)
        if len(train_emb) > MAX_REFERENCE:
            keep = np.sort(np.random.default_rng(seed).choice(len(train_emb), MAX_REFERENCE, replace=False))
            train_emb = train_emb[keep]
        k = max(1, min(k, len(train_emb) - 1))
        if len(held_emb):
            d = knn_distance(held_emb, train_emb, k)
            limit = float(np.quantile(d, QUANTILE))
            correct = np.asarray(held_probs).argmax(1) == np.asarray(held_labels)
            floor = confidence_floor(np.asarray(held_probs).max(1), correct)
        else:  # nothing held out: the training galaxies themselves (leave-one-out) set the limit
            limit = float(np.quantile(knn_distance(train_emb, train_emb, k, exclude_self=True), QUANTILE))
            floor = 1.0
        return cls(train_emb.astype(np.float16), k, max(limit, 1e-6), floor, n_calibration=int(len(held_emb)))

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """Unfamiliarity of each embedding: its k-NN distance / the limit (> 1: out of distribution)."""
        return knn_distance(emb, self.reference.astype(np.float32), self.k) / self.limit

    def summary(self) -> dict:
        """The numbers the Classify page needs (no arrays): stored in the model version's metrics."""
        return {"k": self.k, "limit": round(self.limit, 6), "confidence_floor": round(self.floor, 4),
                "quantile": self.quantile, "target_precision": self.target_precision,
                "n_reference": int(len(self.reference)), "n_calibration": self.n_calibration}

    def to_dict(self) -> dict:
        return {**self.summary(), "limit": self.limit, "confidence_floor": self.floor, "reference": self.reference}

    @classmethod
    def from_dict(cls, d: dict) -> "Familiarity":
        return cls(np.asarray(d["reference"], np.float16), int(d["k"]), float(d["limit"]),
                   float(d["confidence_floor"]), float(d.get("quantile", QUANTILE)),
                   float(d.get("target_precision", TARGET_PRECISION)), int(d.get("n_calibration", 0)))


@dataclass(frozen=True)
class TaskProposal:
    """What one volunteer's task shows, and what its vote records (the Classify page and the simulated
    campaigns both decide through :func:`task_proposal`).

    ``record``: the model's ``(class, confidence)`` stored with the vote — also for a blind control
    task, where it was hidden; ``shown``: pre-selected on screen; ``blind``: a control task of the
    anchoring measurement (not announced to the volunteer); ``reason``: why nothing is shown when the
    gate withheld it (told to the volunteer)."""

    record: tuple[int, float] | None = None
    model_version_id: int | None = None
    shown: bool = False
    blind: bool = False
    reason: str | None = None


def task_proposal(pred, model_version, blind_fraction: float, volunteer_id: int, galaxy_id: int) -> TaskProposal:
    """The decision for one task: no model or prediction → nothing; the gate (:func:`proposal_decision`)
    withholds unfamiliar galaxies and unsure proposals, with a reason; of the rest, a ``blind_fraction``
    of tasks (:func:`galaxalign.gate.is_blind`, by volunteer and galaxy) hide the proposal as the
    anchoring control — only among tasks that would show one, so that blind and shown tasks compare
    like with like."""
    if pred is None or model_version is None:
        return TaskProposal()
    ok, reason = proposal_decision(pred.confidence, pred.ood, (model_version.metrics or {}).get("proposal"))
    if not ok:
        return TaskProposal(reason=reason)
    record = (int(pred.top_class), float(pred.confidence))
    blind = is_blind(blind_fraction, volunteer_id, galaxy_id)
    return TaskProposal(record=record, model_version_id=model_version.id, shown=not blind, blind=blind)
