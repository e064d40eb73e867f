"""2-D maps of the embedding space: PCA, t-SNE (openTSNE), UMAP, and the paper's thumbnail grid.

>>> xy = project(embeddings, "pca")                     # (N, 2)
>>> cells = grid_assignment(xy, rows=12, cols=12)      # row index of the galaxy shown in each cell

The thumbnail grid (paper Fig. 5) places galaxies on a regular grid so that neighbours in the 2-D
projection are neighbours on the grid: the projection is scaled to the unit square and a subset of
galaxies is matched to grid cells by minimum total squared distance (Hungarian algorithm, scipy's
``linear_sum_assignment``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from .fsutil import atomic_path

__all__ = ["project", "grid_assignment", "cached_projection", "projection_path", "METHODS", "FIT_LIMIT", "IN_PAGE_LIMIT"]

METHODS = ("pca", "tsne", "umap")


FIT_LIMIT = 20_000  # t-SNE / UMAP are fitted on at most this many galaxies; the others are placed by transform
IN_PAGE_LIMIT = 20_000  # a t-SNE / UMAP of more galaxies is a worker job (jobs.project_map), never a page's


def project(embeddings: np.ndarray, method: str = "pca", seed: int = 0, fit_limit: int = FIT_LIMIT) -> np.ndarray:
    """(N, D) → (N, 2) float32 by ``pca``, ``tsne`` or ``umap``. Past ``fit_limit`` galaxies t-SNE and
    UMAP are fitted on a random sample of that many and every other galaxy is placed into that map
    (openTSNE's and UMAP's ``transform``): the cost grows linearly, not with the fit."""
    z = np.asarray(embeddings, np.float32)
    if z.ndim != 2 or len(z) < 3:
        raise ValueError(f"need at least 3 embeddings (N, D) to project, got {z.shape}")
    if method in ("tsne", "umap") and len(z) > fit_limit:
        fit = np.sort(np.random.default_rng(seed).choice(len(z), fit_limit, replace=False))
        rest = np.setdiff1d(np.arange(len(z)), fit)
        out = np.empty((len(z), 2), np.float32)
        if method == "tsne":
            from openTSNE import TSNE

            emb = TSNE(n_components=2, perplexity=30.0, metric="cosine", n_jobs=2, random_state=seed,
                       verbose=False).fit(z[fit])
            out[fit] = np.asarray(emb, np.float32)
            for s in range(0, len(rest), 50_000):  # bounded memory: the new points' neighbour graph per block
                out[rest[s:s + 50_000]] = np.asarray(emb.transform(z[rest[s:s + 50_000]]), np.float32)
        else:
            import umap

            reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1).fit(z[fit])
            out[fit] = reducer.embedding_.astype(np.float32)
            for s in range(0, len(rest), 50_000):
                out[rest[s:s + 50_000]] = reducer.transform(z[rest[s:s + 50_000]]).astype(np.float32)
        return out
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(2, random_state=seed).fit_transform(z).astype(np.float32)
    if method == "tsne":
        from openTSNE import TSNE

        perplexity = float(min(30, max(2, (len(z) - 1) / 3)))
        return np.asarray(TSNE(n_components=2, perplexity=perplexity, metric="cosine", n_jobs=2,
                               random_state=seed, verbose=False).fit(z), np.float32)
    if method == "umap":
        import umap

        n_neighbors = int(min(15, len(z) - 1))
        return umap.UMAP(n_neighbors=n_neighbors, min_dist=0.1, metric="cosine", random_state=seed,
                         n_jobs=1).fit_transform(z).astype(np.float32)
    raise ValueError(f"projection method must be one of {METHODS}, got {method!r}")


def grid_assignment(xy: np.ndarray, rows: int, cols: int, seed: int = 0, max_candidates: int = 4000) -> np.ndarray:
    """Row of ``xy`` shown in each cell of a ``rows``×``cols`` grid, as a (rows, cols) int array.

    Every cell gets a distinct galaxy when there are at least ``rows·cols`` of them (else -1 for the
    cells left empty). For large surveys a random subset of ``max_candidates`` competes for the cells.
    """
    from scipy.optimize import linear_sum_assignment

    xy = np.asarray(xy, float)
    n = len(xy)
    rng = np.random.default_rng(seed)
    cand = np.arange(n) if n <= max_candidates else np.sort(rng.choice(n, max_candidates, replace=False))
    p = xy[cand]
    p = (p - p.min(0)) / np.maximum(p.max(0) - p.min(0), 1e-12)  # unit square
    gy, gx = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols, indexing="ij")
    cells = np.stack([gx.ravel(), 1 - gy.ravel()], 1)  # row 0 at the top, y up as on a plot
    cost = ((cells[:, None, :] - p[None, :, :]) ** 2).sum(-1)  # (cells, candidates)
    r, c = linear_sum_assignment(cost)
    out = np.full(rows * cols, -1, np.int64)
    out[r] = cand[c]
    return out.reshape(rows, cols)


def projection_path(folder: str | os.PathLike, method: str, seed: int = 0) -> Path:
    """Where :func:`cached_projection` keeps a map: ``<folder>/proj_<method>_<seed>.npy``."""
    return Path(folder) / f"proj_{method}_{seed}.npy"


def cached_projection(folder: str | os.PathLike, embeddings: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """:func:`project`, cached as ``<folder>/proj_<method>_<seed>.npy`` (per model version folder)."""
    path = projection_path(folder, method, seed)
    if path.exists():
        xy = np.load(path)
        if len(xy) == len(embeddings):
            return xy
    xy = project(embeddings, method, seed)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, xy)
    return xy
