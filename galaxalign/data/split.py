"""Splitting and summarising a survey."""
from __future__ import annotations


import numpy as np
from .survey import Survey


def stratified_split(labels: np.ndarray, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random stratified split (paper A.1: 80/20): returns sorted ``(train_idx, test_idx)``.

    Unlabelled galaxies (-1) go to neither part. Classes with a single galaxy go to train.

    >>> tr, te = stratified_split(np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]), 0.2, seed=0)
    >>> len(tr), len(te)
    (8, 2)
    """
    labels = np.asarray(labels)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_size)) if len(idx) > 1 else 0
        n_test = min(max(n_test, 1 if len(idx) > 1 else 0), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(train), cat(test)


def survey_summary(survey: Survey) -> dict:
    """What ``galaxalign info`` prints: count, image shape, kind, class counts."""
    return {"path": str(survey.path), "kind": survey.kind, "galaxies": len(survey),
            "image_shape": list(survey.image_shape), "raw_shape": list(survey.raw_shape),
            "raw_dtype": str(survey._raw_dtype()),
            "label_set": survey.label_set.name if survey.label_set else None,
            "split": ({k: int(v) for k, v in survey.catalog["split"].value_counts().items()} if survey.has_split else None),
            "classes": survey.class_counts()}
