"""The :class:`Survey` type: one interface over every source of galaxy images (pixels read lazily, the
catalogue in memory, the preparation applied on read), and :class:`SurveyError`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import GalaxalignError
from ..prepare import Preparation
from ..taxonomy import LabelSet


UNLABELLED = -1


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


MAX_IMAGE_SIDE = 4096


class SurveyError(GalaxalignError, ValueError):
    """A survey that cannot be read: the message names the file and the problem."""


@dataclass
class Survey:
    """Galaxies with lazy image access.

    ``len(survey)``; ``survey.image(i)`` → (H, W, 3) uint8; ``survey.images([i, j])`` → (n, H, W, 3);
    ``survey.labels`` (N,) int, :data:`UNLABELLED` (-1) where unknown; ``survey.id_str`` (N,) str;
    ``survey.class_names``; ``survey.catalog`` a DataFrame keyed by ``id_str`` (``label``, ``ra``,
    ``dec``… whatever the source has).
    """

    path: Path
    kind: str
    class_names: list[str]
    catalog: pd.DataFrame
    _reader: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    raw_shape: tuple[int, ...] = (0, 0, 3)
    label_set: LabelSet | None = None
    preparation: Preparation | None = None

    def __len__(self) -> int:
        return len(self.catalog)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one prepared image (what :meth:`images` returns)."""
        if self.preparation is None:
            return (self.raw_shape[0], self.raw_shape[1], 3)
        return self.preparation.output_shape(self.raw_shape)

    @property
    def has_split(self) -> bool:
        """Whether the survey carries its own train / valid / test split (a ``split`` column)."""
        return "split" in self.catalog.columns and bool(self.catalog["split"].isin(["train"]).any())

    def split_indices(self, part: str) -> np.ndarray:
        """Indices of the galaxies in ``part`` (``train``, ``valid`` or ``test``) of the fixed split."""
        if "split" not in self.catalog.columns:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.catalog["split"].to_numpy(str) == part)

    def with_preparation(self, prep: Preparation | None) -> "Survey":
        """The same survey seen through ``prep`` (checked against the raw images first)."""
        if prep is not None:
            prep.check(self.raw_shape, str(self.path))
        elif not display_ready(self.raw_shape, self._raw_dtype()):
            prep = Preparation(stretch="linear")
        return replace(self, preparation=prep)

    def _raw_dtype(self):
        return np.dtype(getattr(self._reader, "dtype", np.uint8))

    def raw_images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Raw pixels at ``indices``: (n, H, W) or (n, H, W, bands), the file's dtype."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: index out of range 0..{len(self) - 1}")
        return self._reader(idx)

    def centres(self, idx: np.ndarray) -> np.ndarray | None:
        if self.preparation is None or self.preparation.centre != "catalog":
            return None
        if not {"x", "y"} <= set(self.catalog.columns):
            raise SurveyError(f"{self.path}: centre 'catalog' needs x and y columns (pixels) in the catalog")
        return self.catalog[["x", "y"]].to_numpy(float)[idx]

    @property
    def labels(self) -> np.ndarray:
        return self.catalog["label"].to_numpy(np.int64)

    @property
    def id_str(self) -> np.ndarray:
        return self.catalog["id_str"].to_numpy(str)

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 prepared images at ``indices`` (any order, repeats allowed): the survey's
        :class:`~galaxalign.prepare.Preparation` applied to the raw pixels. Training, embedding,
        queries and the app all read images through here."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        raw = self.raw_images(idx)
        if self.preparation is None:
            return raw
        return self.preparation.apply(raw, self.centres(idx))

    def image(self, i: int) -> np.ndarray:
        return self.images([i])[0]

    def iter_batches(self, batch_size: int = 256, indices: Sequence[int] | None = None):
        """Yield ``(indices, images)`` in order, ``batch_size`` at a time."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices)
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            yield chunk, self.images(chunk)

    def class_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in self.class_names}
        for lab, n in zip(*np.unique(self.labels, return_counts=True)):
            counts[self.class_names[lab] if lab >= 0 else "(unlabelled)"] = int(n)
        return counts


def display_ready(shape: tuple[int, ...], dtype) -> bool:
    return len(shape) == 3 and shape[2] == 3 and np.dtype(dtype) == np.uint8


def error(path, problem: str) -> SurveyError:
    return SurveyError(f"{path}: {problem}")
