"""Surveys and their galaxies in the store: registration (known and gold labels drawn here) and
moving a workspace."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..taxonomy import LABELSET_DIR
from ..validate import check_name
from .db import Store, StoreError
from .lookup import survey_row
from .models import Classification, Galaxy, ModelVersion, RegisteredSurvey

__all__ = ["register_survey", "relocate_paths", "link_gold", "gold_survey_ids", "set_refresh_every", "claim_refresh",
           "survey_votes"]

INSERT_CHUNK = 50_000  # galaxy rows per INSERT when a survey is registered


def register_survey(store: Store, survey, name: str, workflow: str = "gz2", gold_fraction: float = 0.05,
                    known_fraction: float = 1.0, seed: int = 0, train_config: str | None = None) -> int:
    """Add a loaded :class:`~galaxalign.data.Survey` and all its galaxies; returns the survey id.

    ``workflow``: ``gz2`` (the decision tree; needs a Galaxy10 or GalaxyMNIST label set) or ``flat``
    (one question whose answers are the survey's classes). A random ``known_fraction`` of the file's
    labels is recorded as known (expert) labels — the rest is left for volunteers, and stays in the
    file as ground truth for evaluation — and a random ``gold_fraction`` of all labelled galaxies, taken
    from the known ones, becomes the gold standard used to measure volunteer skill.
    """
    check_name(name, "survey name", StoreError)
    if workflow not in ("gz2", "flat"):
        raise StoreError(f"workflow {workflow!r} must be 'gz2' or 'flat'")
    if workflow == "gz2" and (survey.label_set is None or survey.label_set.tree != "gz2"):
        raise StoreError(f"survey {name!r}: the GZ2 workflow needs a label set with the GZ2 tree (Galaxy10, "
                         "GalaxyMNIST or a file with 'tree: gz2'); use workflow 'flat' for a plain class list")
    cat = survey.catalog
    labels = survey.labels
    if not 0 <= known_fraction <= 1 or not 0 <= gold_fraction <= known_fraction:
        raise StoreError(f"survey {name!r}: need 0 ≤ gold_fraction ≤ known_fraction ≤ 1")
    rng = np.random.default_rng(seed)
    labelled = rng.permutation(np.flatnonzero(labels >= 0))
    known = set(labelled[:int(round(known_fraction * len(labelled)))].tolist())
    gold = set(labelled[:int(round(gold_fraction * len(labelled)))].tolist())
    ra = cat["ra"].to_numpy() if "ra" in cat else np.full(len(cat), np.nan)
    dec = cat["dec"].to_numpy() if "dec" in cat else np.full(len(cat), np.nan)

    def fn(s: Session) -> int:
        other = s.scalar(select(RegisteredSurvey.name).where(func.lower(RegisteredSurvey.name) == name.lower()))
        if other is not None:
            raise StoreError(f"survey {name!r} is already registered" + (f" (as {other!r})" if other != name else ""))
        ls = survey.label_set
        builtin = ls is not None and ls.source is not None and Path(ls.source).parent == LABELSET_DIR
        prep = getattr(survey, "preparation", None)
        row = RegisteredSurvey(name=name, path=str(survey.path), kind=survey.kind,
                               label_set=ls.name if ls else None,
                               label_set_file=None if (ls is None or builtin) else ls.source,
                               class_names=list(survey.class_names), workflow=workflow, n_galaxies=len(survey),
                               preparation=prep.to_dict() if prep is not None else None, train_config=train_config)
        s.add(row)
        s.flush()
        ids = survey.id_str
        # in chunks, inside the one transaction: the memory stays bounded for a survey of millions
        for start in range(0, len(ids), INSERT_CHUNK):
            s.execute(Galaxy.__table__.insert(), [
                {"survey_id": row.id, "id_str": str(ids[i]), "idx": i, "ra": _f(ra[i]), "dec": _f(dec[i]),
                 "known_label": int(labels[i]) if i in known else None, "gold": i in gold, "n_votes": 0,
                 "retired": False} for i in range(start, min(len(ids), start + INSERT_CHUNK))])
        return row.id

    return store.write(fn)


def _f(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def relocate_paths(store: Store, old_root: str, new_root: str) -> int:
    """After a workspace folder is copied or moved: rewrite the stored paths (survey files,
    checkpoints, embeddings) that start with ``old_root`` to start with ``new_root``. Returns the
    number of rows changed."""
    old_root, new_root = str(old_root).rstrip("/"), str(new_root).rstrip("/")

    def fn(s: Session) -> int:
        n = 0
        for obj in list(s.scalars(select(RegisteredSurvey))) + list(s.scalars(select(ModelVersion))):
            for col in ("path", "checkpoint_path", "embeddings_path", "label_set_file", "train_config"):
                v = getattr(obj, col, None)
                if isinstance(v, str) and (v == old_root or v.startswith(old_root + "/")):
                    setattr(obj, col, new_root + v[len(old_root):])
                    n += 1
        return n
    return store.write(fn)


def link_gold(store: Store, survey: int | str, gold_survey: int | str) -> None:
    """Let ``survey``'s queue also serve the gold galaxies of ``gold_survey`` (rendered galaxies with
    known truth, the same classes), and count them in its volunteers' skill."""
    def fn(s: Session) -> None:
        sv, gv = survey_row(s, survey), survey_row(s, gold_survey)
        if sv.id == gv.id:
            raise StoreError(f"survey {sv.name!r} cannot take its gold from itself")
        if list(gv.class_names) != list(sv.class_names) or gv.workflow != sv.workflow:
            raise StoreError(f"survey {gv.name!r} has other classes or another workflow than {sv.name!r}")
        sv.gold_from_id = gv.id
    store.write(fn)


def gold_survey_ids(sv: RegisteredSurvey) -> list[int]:
    """The surveys whose gold galaxies count for ``sv``: itself and its linked gold survey, if any."""
    return [sv.id] + ([sv.gold_from_id] if sv.gold_from_id is not None else [])


def survey_votes(s: Session, sv: RegisteredSurvey) -> int:
    """Every vote cast on the survey's galaxies, late ones included (all of them teach)."""
    return int(s.scalar(select(func.count()).select_from(Classification).join(
        Galaxy, Galaxy.id == Classification.galaxy_id).where(Galaxy.survey_id == sv.id)) or 0)


def set_refresh_every(store: Store, survey: int | str, every: int) -> int:
    """Refresh ``survey``'s proposals after every ``every`` new votes (0: never; :mod:`galaxalign.jobs.refresh`)."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or not 0 <= int(every) <= 1_000_000:
        raise StoreError(f"refresh every {every!r} votes: must be a whole number from 0 to 1,000,000")

    def fn(s: Session) -> int:
        survey_row(s, survey).refresh_every = int(every)
        return int(every)
    return store.write(fn)


def claim_refresh(store: Store, survey: int | str, force: bool = False) -> int | None:
    """When ``refresh_every`` votes have come in since the last refresh (or ``force``), mark the survey
    refreshed at its current vote count and return that count; else None. The survey's row is locked
    while it decides, so of many volunteers voting at once exactly one is told to queue the refresh."""
    def fn(s: Session) -> int | None:
        sv = survey_row(s, survey, lock=True)
        votes = survey_votes(s, sv)
        if not force and (sv.refresh_every <= 0 or votes - sv.refreshed_votes < sv.refresh_every):
            return None
        sv.refreshed_votes = votes
        return votes
    return store.write(fn)
