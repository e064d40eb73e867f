"""Evaluation metrics — pure functions of arrays.

Classification
  - accuracy: fraction of correct top-1 predictions.
  - macro-F1: ``sklearn.metrics.f1_score(y, p, average="macro")``, the unweighted mean of per-class F1.

Retrieval (similarity search, paper §4.4)
  - similarity = dot product of L2-normalised embeddings;
  - every galaxy queries all the others (itself excluded); relevant = same class; R = number of
    relevant galaxies for that query;
  - AP@k = (1 / min(k, R)) · Σ_{i≤k} P@i · rel_i, with P@i the precision of the first i results;
  - AP (k = None) is the same sum over the whole ranking divided by R — exactly
    ``sklearn.metrics.average_precision_score(rel, scores)`` for that query when scores are untied;
  - mAP@k / mAP: the mean over queries with R > 0.

>>> retrieval_map(np.eye(3)[[0, 0, 1, 1]], np.array([0, 0, 1, 1]))
1.0
"""
from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "macro_f1", "retrieval_map", "average_precisions", "confusion", "classification_report"]


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"accuracy needs two equal, non-empty arrays, got {y_true.shape} and {y_pred.shape}")
    return float((y_true == y_pred).mean())


def macro_f1(y_true, y_pred, labels=None) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0))


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def average_precisions(embeddings: np.ndarray, labels: np.ndarray, k: int | None = None,
                       chunk: int = 1024) -> np.ndarray:
    """AP (or AP@k) of each galaxy querying the rest; NaN for a query with no relevant galaxy."""
    z = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    if z.ndim != 2 or len(z) != len(labels):
        raise ValueError(f"embeddings (N, D) and labels (N,) must match, got {z.shape} and {labels.shape}")
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    n = len(z)
    out = np.full(n, np.nan)
    depth = n - 1 if k is None else min(k, n - 1)
    for s in range(0, n, chunk):
        q = np.arange(s, min(n, s + chunk))
        sims = z[q] @ z.T  # (q, N)
        sims[np.arange(len(q)), q] = -np.inf  # the query itself is not a result
        # stable sort on -sims: ties keep index order, so results are deterministic
        order = np.argsort(-sims, axis=1, kind="stable")[:, :depth]
        rel = (labels[order] == labels[q][:, None])  # (q, depth)
        n_rel = (labels == labels[q][:, None]).sum(1) - 1  # R, the query excluded
        hits = np.cumsum(rel, axis=1)
        prec = hits / np.arange(1, depth + 1)
        ap_sum = (prec * rel).sum(1)
        denom = n_rel if k is None else np.minimum(k, n_rel)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[q] = np.where(n_rel > 0, ap_sum / denom, np.nan)
    return out


def retrieval_map(embeddings: np.ndarray, labels: np.ndarray, k: int | None = None) -> float:
    """mAP@k (or mAP for ``k=None``) of same-class retrieval; see the module docstring."""
    ap = average_precisions(embeddings, labels, k)
    if np.all(np.isnan(ap)):
        raise ValueError("no query has a relevant galaxy (every class has a single member)")
    return float(np.nanmean(ap))


def classification_report(y_true, y_pred, class_names: list[str]) -> dict:
    """Accuracy, macro-F1, per-class recall and the confusion matrix in one JSON-able dict."""
    m = confusion(y_true, y_pred, len(class_names))
    recall = {name: (float(m[i, i] / m[i].sum()) if m[i].sum() else None) for i, name in enumerate(class_names)}
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred),
            "recall": recall, "confusion": m.tolist()}
