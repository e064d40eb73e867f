"""Similarity search over a survey's embeddings with FAISS.

Embeddings are L2-normalised, so inner product = cosine similarity. The index is chosen by size and
by a recall target (:func:`choose_kind`): exact (``IndexFlatIP``) up to 200,000 galaxies; past that
an inverted file (``IndexIVFFlat``, √N·4 lists, memory-mappable) or a graph (``IndexHNSWFlat``), whose
search breadth (``nprobe`` / ``efSearch``) is tuned on held-out queries until recall@10 against the
exact search reaches the target (:meth:`SimilarityIndex.tune`). What was chosen and measured is kept
beside the index in ``index_meta.json``; galaxies are added without a rebuild (:meth:`add`).

>>> idx = SimilarityIndex.build(embeddings, id_str)                  # doctest: +SKIP
>>> idx.search(query_vec, k=8)                                       # doctest: +SKIP
[Hit(row=12, id_str='synth-7-000012', score=0.97), ...]
>>> query_text(model, "A picture of a merging galaxy")              # (D,) → idx.search(...)

Queries come from a galaxy already in the index (:meth:`SimilarityIndex.search_row`), an uploaded
image (:func:`query_image`), a text (:func:`query_text`) or a symbol (:func:`query_symbol`).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import GalaxalignError
from .fsutil import atomic_path
from .symbols import render_symbol

__all__ = ["SimilarityIndex", "Hit", "SearchError", "IndexMeta", "choose_kind", "recall_at_k", "query_image",
           "query_text", "query_symbol", "EXACT_LIMIT", "KINDS"]

EXACT_LIMIT = 200_000
KINDS = ("exact", "ivf", "hnsw")
RECALL_TARGET = 0.95
SCAN_LIMIT = 8  # "auto": an inverted file that must search over 1/8 of its lists falls back to exact
TUNE_QUERIES = 200
# the search breadths tried, narrowest first; the first to reach the target is kept
# (steps of about 1.5×: the cost of a query grows with the breadth, so a coarse ladder overshoots)
NPROBES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
EF_SEARCHES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


class SearchError(GalaxalignError):
    """A similarity index that cannot be built, read or queried."""


@dataclass(frozen=True)
class Hit:
    row: int
    id_str: str
    score: float


@dataclass
class IndexMeta:
    """What the index is and what was measured when it was built (``index_meta.json``)."""

    kind: str = "exact"
    nlist: int = 0           # ivf: number of inverted lists
    nprobe: int = 0          # ivf: lists searched per query
    ef_search: int = 0       # hnsw: candidates kept per query
    recall_at_10: float = 1.0
    tuned_on: int = 0        # held-out queries the recall was measured on
    build_seconds: float = 0.0
    history: list = field(default_factory=list)  # [(breadth, recall@10), …] as tuned
    note: str = ""           # why the index is what it is, when it is not what the size suggested

    @classmethod
    def from_dict(cls, d: dict) -> "IndexMeta":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def choose_kind(n: int, kind: str = "auto") -> str:
    """``auto``: exact up to :data:`EXACT_LIMIT` galaxies, an inverted file past it (it trains in a
    minute at a million, memory-maps, and tunes to the recall target at a fraction of the exact scan)."""
    if kind == "auto":
        return "exact" if n <= EXACT_LIMIT else "ivf"
    if kind not in KINDS:
        raise SearchError(f"index kind {kind!r}: not one of auto, {', '.join(KINDS)}")
    return kind


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the true top-``k`` rows that the approximate search found (rows as (Q, ≥k))."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits) / k)


def _drop_self(rows_found: np.ndarray, query_rows: np.ndarray, k: int) -> np.ndarray:
    """Each query's answer without the query's own row, cut to ``k``."""
    return np.array([[r for r in found if r != own][:k] for found, own in zip(rows_found.tolist(), query_rows)])


def _normalised(embeddings: np.ndarray) -> np.ndarray:
    z = np.ascontiguousarray(embeddings, dtype=np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def _new_index(z: np.ndarray, kind: str, seed: int):
    """A filled FAISS index of ``kind`` over the normalised ``z`` and its :class:`IndexMeta` (untuned)."""
    import faiss

    n, d = z.shape
    meta = IndexMeta(kind=kind)
    if kind == "exact":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = meta.ef_search = 128
    else:
        meta.nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, meta.nlist, faiss.METRIC_INNER_PRODUCT)
        sample = z[np.random.default_rng(seed).choice(n, min(n, 64 * meta.nlist), replace=False)]
        index.train(sample)
        index.nprobe = meta.nprobe = min(meta.nlist, 32)
    index.add(z)
    if kind == "ivf":
        index.make_direct_map()  # so a galaxy's own vector can be read back (search_row)
    return index, meta


class SimilarityIndex:
    """A FAISS index plus the ``id_str`` of each row and its :class:`IndexMeta`."""

    def __init__(self, index, id_str: np.ndarray, meta: IndexMeta | None = None, read_only: bool = False):
        self.index = index
        self.id_str = np.asarray(id_str).astype(str)
        self.meta = meta or IndexMeta()
        self.read_only = read_only
        self._row_of = {s: i for i, s in enumerate(self.id_str)}

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def describe(self) -> str:
        """One line for the researcher: how the index searches and how well it was measured to."""
        m, n = self.meta, f"{len(self):,} galaxies"
        if m.kind == "exact":
            return f"{n}, exact search" + (f" ({m.note})" if m.note else "")
        how = (f"an inverted file (searching {m.nprobe} of {m.nlist} lists)" if m.kind == "ivf"
               else f"an HNSW graph (efSearch {m.ef_search})")
        measured = f"recall@10 {m.recall_at_10:.2f} against the exact search on {m.tuned_on} of them" if m.tuned_on \
            else "recall not measured"
        return f"{n}, {how}; {measured}"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, embeddings: np.ndarray, id_str, exact: bool | None = None, kind: str = "auto",
              recall: float = RECALL_TARGET, seed: int = 0) -> "SimilarityIndex":
        """Index ``embeddings`` (N, D). ``exact=True/False`` is the older switch (exact / HNSW)."""
        z = _normalised(embeddings)
        if z.ndim != 2 or len(z) != len(id_str) or len(z) == 0:
            raise SearchError(f"embeddings must be (N, D) with N = {len(id_str)} ids and N > 0, got {z.shape}")
        if len(set(map(str, id_str))) != len(z):
            raise SearchError("the ids given to the index are not unique")
        auto = exact is None and kind == "auto"
        kind = ("exact" if exact else "hnsw") if exact is not None else choose_kind(len(z), kind)
        t0 = time.perf_counter()
        index, meta = _new_index(z, kind, seed)
        meta.build_seconds = round(time.perf_counter() - t0, 2)
        idx = cls(index, id_str, meta)
        if kind != "exact":
            idx.tune(recall, seed=seed)
        if auto and kind == "ivf" and idx.meta.nprobe > idx.meta.nlist // SCAN_LIMIT:
            # the cloud has no structure the lists can use (recall needs a large share of them):
            # scanning that share costs what the exact search costs, so search exactly
            note = (f"an inverted file needed {idx.meta.nprobe} of {idx.meta.nlist} lists for recall@10 "
                    f"{idx.meta.recall_at_10:.2f}; exact search instead")
            index, meta = _new_index(z, "exact", seed)
            meta.note = note
            idx = cls(index, id_str, meta)
        return idx

    def _set_breadth(self, breadth: int) -> None:
        if self.meta.kind == "ivf":
            self.index.nprobe = self.meta.nprobe = int(breadth)
        elif self.meta.kind == "hnsw":
            self.index.hnsw.efSearch = self.meta.ef_search = int(breadth)

    def tune(self, recall: float = RECALL_TARGET, queries: int = TUNE_QUERIES, seed: int = 0) -> IndexMeta:
        """Widen the search until recall@10 against the exact scan reaches ``recall`` on ``queries``
        of the index's own galaxies, each query's own row left out of both answers (as in
        :meth:`search_row`). Keeps the narrowest breadth that does; the widest tried when none does
        (its recall says so)."""
        n = len(self)
        k = min(10, n - 1)
        if k < 1:
            return self.meta
        rows = np.random.default_rng(seed).choice(n, min(queries, n), replace=False)
        q = np.stack([self.index.reconstruct(int(r)) for r in rows])
        truth = _drop_self(self._exact_top(q, k + 1), rows, k)
        steps = NPROBES if self.meta.kind == "ivf" else EF_SEARCHES
        if self.meta.kind == "ivf":
            steps = tuple(p for p in steps if p < self.meta.nlist) + (self.meta.nlist,)
        self.meta.history = []
        for breadth in steps:
            self._set_breadth(breadth)
            _, found = self.index.search(q, k + 1)
            r = recall_at_k(_drop_self(found, rows, k), truth, k)
            self.meta.history.append([int(breadth), round(r, 4)])
            self.meta.recall_at_10 = round(r, 4)
            if r >= recall:
                break
        self.meta.tuned_on = len(rows)
        return self.meta

    def _exact_top(self, q: np.ndarray, k: int, chunk: int = 100_000) -> np.ndarray:
        """Exact top-``k`` rows for queries ``q``, reading the index's vectors a chunk at a time."""
        best_s = np.full((len(q), 0), -np.inf, np.float32)
        best_r = np.zeros((len(q), 0), np.int64)
        for start in range(0, len(self), chunk):
            block = self.index.reconstruct_n(start, min(chunk, len(self) - start))
            s = np.concatenate([best_s, q @ block.T], 1)
            r = np.concatenate([best_r, np.broadcast_to(np.arange(start, start + len(block)), (len(q), len(block)))], 1)
            keep = np.argsort(-s, 1, kind="stable")[:, :k]
            best_s, best_r = np.take_along_axis(s, keep, 1), np.take_along_axis(r, keep, 1)
        return best_r

    def add(self, embeddings: np.ndarray, id_str) -> None:
        """Add galaxies without a rebuild (an IVF index files them under its trained lists)."""
        if self.read_only:
            raise SearchError("this index was loaded memory-mapped (read-only); load it with mmap=False to add")
        z = _normalised(embeddings)
        ids = np.asarray(id_str).astype(str)
        if z.ndim != 2 or z.shape[1] != self.dim or len(z) != len(ids):
            raise SearchError(f"new embeddings must be (N, {self.dim}) with one id each, got {z.shape} and {len(ids)}")
        seen = set(self._row_of)
        for s in ids.tolist():  # one already indexed, or one given twice
            if s in seen:
                raise SearchError(f"galaxy {s!r} is already in the index")
            seen.add(s)
        start = len(self)
        self.index.add(z)
        if self.meta.kind == "ivf":
            self.index.make_direct_map()
        self.id_str = np.concatenate([self.id_str, ids])
        self._row_of.update({s: start + i for i, s in enumerate(ids)})

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
        """Write ``index.faiss``, ``index_ids.npy`` and ``index_meta.json`` atomically into ``folder``."""
        import faiss

        folder = Path(folder)
        with atomic_path(folder / "index_ids.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, self.id_str)
        with atomic_path(folder / "index.faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        with atomic_path(folder / "index_meta.json") as tmp:
            Path(tmp).write_text(json.dumps(asdict(self.meta), indent=1) + "\n")
        return folder / "index.faiss"

    @classmethod
    def load(cls, folder: str | os.PathLike, mmap: bool | None = None) -> "SimilarityIndex":
        """Read an index saved by :meth:`save`. An inverted file is memory-mapped (read-only) unless
        ``mmap=False``: its lists stay on disk and the page cache serves them."""
        import faiss

        folder = Path(folder)
        path = folder / "index.faiss"
        if not path.exists():
            raise SearchError(f"{path}: no similarity index there (the worker builds it after embedding)")
        meta_file = folder / "index_meta.json"
        try:
            meta = IndexMeta.from_dict(json.loads(meta_file.read_text())) if meta_file.exists() else None
        except (OSError, ValueError) as e:
            raise SearchError(f"{meta_file}: unreadable ({e})") from None
        use_mmap = meta is not None and meta.kind == "ivf" and mmap is not False
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if use_mmap else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as e:
            raise SearchError(f"{path}: unreadable index ({str(e).splitlines()[0][:120]})") from None
        ids = np.load(folder / "index_ids.npy")
        if len(ids) != index.ntotal:
            raise SearchError(f"{path}: {index.ntotal} vectors but {len(ids)} ids")
        if meta is None:  # saved before index_meta.json existed
            meta = IndexMeta(kind="hnsw" if "HNSW" in type(index).__name__ else "exact")
        idx = cls(index, ids, meta, read_only=use_mmap)
        if meta.nprobe or meta.ef_search:  # the breadth it was tuned to
            idx._set_breadth(meta.nprobe or meta.ef_search)
        return idx


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

    img = np.asarray(render_symbol(name, model.image_size))
    with torch.inference_mode():
        return model.encode_symbol(model.preprocess(img[None]), normalize=True)[0].float().cpu().numpy()
