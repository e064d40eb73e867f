"""Rare-object hunts (GalaxySD §4.3): find the few galaxies of a kind a survey hides.

A researcher starts a hunt from a few example galaxies, a text ("a cigar-shaped smooth galaxy"), a
symbol, or a class; candidates are ranked by cosine similarity to the query in the model's embedding
space, plus ``classifier_weight`` × the model's probability of the target class when one is named.
Volunteers confirm or reject a grid of candidates at a time (:func:`galaxalign.store.record_hunt_votes`:
each decision a stored vote); every round re-ranks with what was decided — the query moves toward the
confirmed galaxies and away from the rejected ones (Rocchio's relevance feedback) and nothing decided
is shown again.

>>> q = start_query(embeddings, id_str, model, {"examples": ["g-17", "g-912"]})    # doctest: +SKIP
>>> rows = rank(embeddings, q, decided=hunt_votes(store, "cigars"))                # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import GalaxalignError
from .index import query_symbol, query_text

__all__ = ["HuntError", "start_query", "rank", "next_grid", "next_round", "hunt_query", "hunt_figures", "GRID",
           "CLASSIFIER_WEIGHT"]

GRID = 24                  # candidates per grid
CLASSIFIER_WEIGHT = 0.5    # weight of p(target class) beside the cosine similarity
TOWARD, AWAY = 1.0, 0.5    # relevance feedback: confirmed and rejected means


class HuntError(GalaxalignError):
    pass


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def start_query(embeddings: np.ndarray, id_str: np.ndarray, model, query: dict) -> np.ndarray:
    """(D,) unit vector of a hunt's start: the mean of its example galaxies' embeddings, its text
    through the text tower, its symbol through the image tower — whichever it has, summed."""
    parts = []
    examples = list(query.get("examples") or [])
    if examples:
        pos = {s: i for i, s in enumerate(np.asarray(id_str).astype(str))}
        missing = [e for e in examples if str(e) not in pos]
        if missing:
            raise HuntError(f"example galaxy {missing[0]!r} has no embedding; embed the survey with the active model")
        parts.append(_unit(_unit(embeddings[[pos[str(e)] for e in examples]]).mean(0)))
    if query.get("text"):
        parts.append(_unit(query_text(model, query["text"])))
    if query.get("symbol"):
        parts.append(_unit(query_symbol(model, query["symbol"])))
    if not parts:
        raise HuntError("a hunt starts from example galaxies, a text or a symbol")
    return _unit(np.sum(parts, 0))


def rank(embeddings: np.ndarray, query: np.ndarray, probs: np.ndarray | None = None, target_class: int | None = None,
         confirmed: np.ndarray = (), rejected: np.ndarray = (), exclude: np.ndarray = (), k: int = GRID,
         classifier_weight: float = CLASSIFIER_WEIGHT) -> np.ndarray:
    """Rows of the next ``k`` candidates, best first: never a row in ``exclude`` (decided, or the
    examples). ``confirmed`` / ``rejected``: rows decided so far, which move the query."""
    z = _unit(embeddings)
    q = np.asarray(query, np.float32).copy()
    confirmed, rejected = np.asarray(confirmed, int), np.asarray(rejected, int)
    if len(confirmed):
        q = q + TOWARD * z[confirmed].mean(0)
    if len(rejected):
        q = q - AWAY * z[rejected].mean(0)
    score = z @ _unit(q)
    if target_class is not None and probs is not None:
        score = score + classifier_weight * np.asarray(probs, np.float32)[:, int(target_class)]
    score[np.asarray(exclude, int)] = -np.inf
    k = min(int(k), int(np.isfinite(score).sum()))
    top = np.argpartition(-score, k - 1)[:k] if k > 0 else np.array([], int)
    return top[np.argsort(-score[top], kind="stable")]


def hunt_figures(votes: pd.DataFrame, truth: np.ndarray, target_class: int) -> list[dict]:
    """Purity and completeness after each round, against the known truth (simulations, or a survey
    whose labels are known): ``votes`` is :func:`galaxalign.store.hunt_votes`."""
    n_true = int(np.sum(np.asarray(truth) == target_class))
    out = []
    for r in sorted(votes.first_round.unique()) if len(votes) else []:
        seen = votes[votes.first_round <= r]
        conf = seen[seen.status == "confirmed"]
        hits = int(np.sum(np.asarray(truth)[conf.idx.to_numpy()] == target_class))
        out.append({"round": int(r), "shown": int(len(seen)), "confirmed": int(len(conf)), "true_found": hits,
                    "purity": hits / len(conf) if len(conf) else None,
                    "completeness": hits / n_true if n_true else None})
    return out


def hunt_query(examples: list[str] | None = None, text: str | None = None, symbol: str | None = None,
               target_class: int | None = None) -> dict:
    """The stored query of a new hunt from what the researcher gave (blank parts left out)."""
    query = {"examples": [e.strip() for e in examples or [] if e and e.strip()] or None,
             "text": (text or "").strip() or None, "symbol": symbol or None, "target_class": target_class}
    return {k: v for k, v in query.items() if v is not None}


def next_round(votes: pd.DataFrame) -> int:
    """The round a grid sent now belongs to (0 for the first), from :func:`galaxalign.store.hunt_votes`."""
    return int(votes.first_round.max()) + 1 if len(votes) else 0


def next_grid(embeddings: np.ndarray, id_str, query_vector: np.ndarray, probs: np.ndarray | None, query: dict,
              votes: pd.DataFrame, k: int = GRID) -> np.ndarray:
    """The rows of a hunt's next grid: ranked by :func:`rank` with the query moved by every stored decision
    (``votes``: :func:`galaxalign.store.hunt_votes`), never a galaxy anyone decided nor an example."""
    pos = {s: i for i, s in enumerate(np.asarray(id_str).astype(str))}
    exclude = np.array(list(votes.idx) + [pos[e] for e in query.get("examples", []) if e in pos], int)
    return rank(embeddings, query_vector, probs, query.get("target_class"),
                confirmed=votes.idx[votes.status == "confirmed"].to_numpy(),
                rejected=votes.idx[votes.status == "rejected"].to_numpy(), exclude=exclude, k=k)
