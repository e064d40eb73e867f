"""Registered surveys, opened one way.

Three things are called "survey" in galaxalign; the names say which is meant:

- a **survey file** (``.h5``, a folder of images, a ZIP): :func:`galaxalign.data.load_survey` reads one
  into a :class:`~galaxalign.data.Survey` — pixels, labels, label set, preparation;
- a **registered survey**: the store's row (:class:`~galaxalign.store.models.RegisteredSurvey`, from
  :func:`galaxalign.store.get_survey`) — name, path, workflow, label set, preparation, retirement rule;
- an **opened survey**: :func:`open_survey` here, the row and its :class:`~galaxalign.data.Survey`
  together. This is the only place the two meet: the jobs, the app, the campaigns and the benchmarks
  open registered surveys through it.
"""
from __future__ import annotations

from typing import NamedTuple

from .data import Survey, load_survey
from .errors import GalaxalignError
from .store import get_survey, list_surveys

__all__ = ["OpenedSurvey", "open_registered", "open_survey"]


class OpenedSurvey(NamedTuple):
    row: object  # galaxalign.store.models.RegisteredSurvey
    survey: Survey


def open_registered(row) -> Survey:
    """The :class:`~galaxalign.data.Survey` of a registered survey's row, read with its own label set and
    preparation."""
    return load_survey(row.path, label_set=row.label_set_file or row.label_set, preparation=row.preparation)


def open_survey(store, name: str | int | None = None) -> OpenedSurvey:
    """The registered survey ``name`` (or id; the first registered one when ``None``), opened."""
    row = get_survey(store, name) if name is not None else (list_surveys(store) or [None])[0]
    if row is None:
        raise GalaxalignError("no survey is registered; run `galaxalign demo` first")
    return OpenedSurvey(row, open_registered(row))
