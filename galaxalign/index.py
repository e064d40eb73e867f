"""Similarity search over a survey's embeddings with FAISS.

Embeddings are L2-normalised, so inner product = cosine similarity. ``IndexFlatIP`` is exact and is
the default up to 200,000 galaxies; past that an ``IndexHNSWFlat`` (inner-product metric) trades a
little recall for speed.

>>> idx = SimilarityIndex.build(embeddings, id_str)                  # doctest: +SKIP
>>> idx.search(query_vec, k=8)                                       # doctest: +SKIP
[Hit(row=12, id_str='synth-7-000012', score=0.97), ...]
>>> query_text(model, "A picture of a merging galaxy")              # (D,) → idx.search(...)

Queries come from a galaxy already in the index (:meth:`SimilarityIndex.search_row`), an uploaded
image (:func:`query_image`), a text (:func:`query_text`) or a symbol (:func:`query_symbol`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import GalaxalignError
from .fsutil import atomic_path

__all__ = ["SimilarityIndex", "Hit", "SearchError", "query_image", "query_text", "query_symbol", "EXACT_LIMIT"]

EXACT_LIMIT = 200_000


class SearchError(GalaxalignError):
    """A similarity index that cannot be built, read or queried."""


@dataclass(frozen=True)
class Hit:
    row: int
    id_str: str
    score: float


class SimilarityIndex:
    """A FAISS index plus the ``id_str`` of each row."""

    def __init__(self, index, id_str: np.ndarray):
        self.index = index
        self.id_str = np.asarray(id_str).astype(str)
        self._row_of = {s: i for i, s in enumerate(self.id_str)}

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, embeddings: np.ndarray, id_str, exact: bool | None = None) -> "SimilarityIndex":
        import faiss

        z = np.ascontiguousarray(embeddings, dtype=np.float32)
        if z.ndim != 2 or len(z) != len(id_str) or len(z) == 0:
            raise SearchError(f"embeddings must be (N, D) with N = {len(id_str)} ids and N > 0, got {z.shape}")
        z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        exact = len(z) <= EXACT_LIMIT if exact is None else exact
        if exact:
            index = faiss.IndexFlatIP(z.shape[1])
        else:
            index = faiss.IndexHNSWFlat(z.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = 128
        index.add(z)
        return cls(index, id_str)

    def search(self, query: np.ndarray, k: int = 10, exclude_row: int | None = None) -> list[Hit]:
        """Top-``k`` galaxies by cosine similarity to ``query`` (D,)."""
        q = np.asarray(query, np.float32).reshape(1, -1)
        if q.shape[1] != self.dim:
            raise SearchError(f"query has {q.shape[1]} dimensions; the index has {self.dim}")
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        want = min(len(self), k + (exclude_row is not None))
        scores, rows = self.index.search(q, want)
        hits = [Hit(int(r), str(self.id_str[r]), float(s)) for s, r in zip(scores[0], rows[0])
                if r >= 0 and r != exclude_row]
        return hits[:k]

    def search_row(self, id_str: str, k: int = 10) -> list[Hit]:
        """Galaxies most similar to galaxy ``id_str`` (itself excluded)."""
        row = self._row_of.get(str(id_str))
        if row is None:
            raise SearchError(f"galaxy {id_str!r} is not in the index")
        return self.search(self.index.reconstruct(row), k, exclude_row=row)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``index.faiss`` and ``index_ids.npy`` atomically into ``folder``."""
        import faiss

        folder = Path(folder)
        with atomic_path(folder / "index_ids.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, self.id_str)
        with atomic_path(folder / "index.faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        return folder / "index.faiss"

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "SimilarityIndex":
        import faiss

        folder = Path(folder)
        path = folder / "index.faiss"
        if not path.exists():
            raise SearchError(f"{path}: no similarity index there (the worker builds it after embedding)")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise SearchError(f"{path}: unreadable index ({str(e).splitlines()[0][:120]})") from None
        ids = np.load(folder / "index_ids.npy")
        if len(ids) != index.ntotal:
            raise SearchError(f"{path}: {index.ntotal} vectors but {len(ids)} ids")
        return cls(index, ids)


def query_image(model, image: np.ndarray, preparation=None) -> np.ndarray:
    """(D,) embedding of one image through the image tower. With the survey's ``preparation`` the
    image is raw (H, W) or (H, W, bands), prepared exactly as the survey's galaxies were; without, a
    ready (H, W, 3) uint8 picture."""
    import torch

    img = np.asarray(image)
    if preparation is not None:
        img = preparation.apply(img[None])[0]
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise SearchError(f"query image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    with torch.inference_mode():
        return model.encode_image(model.preprocess(img[None]), normalize=True)[0].float().cpu().numpy()


def query_text(model, text: str) -> np.ndarray:
    """(D,) embedding of a free text through the text tower ("A picture of a ring galaxy")."""
    import torch

    text = (text or "").strip()
    if not text:
        raise SearchError("the query text is empty")
    if len(text) > 300:
        raise SearchError(f"the query text is {len(text)} characters; 300 at most")
    with torch.inference_mode():
        return model.encode_text(model.tokenize([text]), normalize=True)[0].float().cpu().numpy()


def query_symbol(model, name: str) -> np.ndarray:
    """(D,) embedding of a canonical symbol (``"t08_merger"``, ``"galaxy10/barred_spiral"``)."""
    import torch

    from .symbols import render_symbol

    img = np.asarray(render_symbol(name, model.image_size))
    with torch.inference_mode():
        return model.encode_symbol(model.preprocess(img[None]), normalize=True)[0].float().cpu().numpy()
