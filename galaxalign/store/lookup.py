"""Looking things up in the store: the one place that turns an id or a name into a row, for every
domain module (accounts, surveys, votes, versions, jobs) and for consensus, queue and export.

Row functions (``*_row``) take an open session; ``get_*`` / ``list_*`` open a read transaction.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ..validate import is_integer, name_key, short
from .db import Store, StoreError
from .models import Galaxy, Job, ModelVersion, RegisteredSurvey, Volunteer

__all__ = ["NotFound", "AccessDenied", "get_volunteer", "get_survey", "list_surveys", "get_galaxy", "get_model_version",
           "active_model", "list_model_versions", "get_job", "list_jobs"]


class NotFound(StoreError):
    pass


class AccessDenied(StoreError):
    pass


def key(which: Any, what: str) -> int | str:
    """An id (integer) or a name (string) as given to a lookup; anything else is refused by name."""
    if is_integer(which):
        return int(which)
    if isinstance(which, str):
        return which
    raise NotFound(f"{what} {short(which)}: give an integer id or a name")


def _named_row(s: Session, model, which: int | str, what: str, missing: str, lock: bool = False):
    """The row of ``model`` with integer id or ``name`` ``which``; :class:`NotFound` naming it otherwise.
    ``lock``: on PostgreSQL, lock the row until the transaction ends (read afresh, not from the session)."""
    which = key(which, what)
    if lock and s.bind.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises writers
        q = select(model).where(model.id == which if isinstance(which, int) else model.name == which)
        row = s.scalar(q.with_for_update().execution_options(populate_existing=True))
    else:
        row = s.get(model, which) if isinstance(which, int) else s.scalar(select(model).where(model.name == which))
    if row is None:
        raise NotFound(f"{what} {short(which)} {missing}")
    return row


def volunteer_row(s: Session, who: int | str, lock: bool = False) -> Volunteer:
    """The account with integer id ``who``, or whose name is ``who`` in any case or width (``ADA`` finds
    ``Ada``: names compare by :func:`galaxalign.validate.name_key`). ``lock``: on PostgreSQL, lock the row."""
    who = key(who, "volunteer")
    if isinstance(who, int):
        q = select(Volunteer).where(Volunteer.id == who)
    else:
        q = select(Volunteer).where(Volunteer.name_key == name_key(who))
    if lock and s.bind.dialect.name != "sqlite":
        q = q.with_for_update()
    row = s.scalar(q)
    if row is None:
        raise NotFound(f"volunteer {short(who)} does not exist")
    return row


def admin_row(s: Session, who: int | str, doing: str) -> Volunteer:
    """The account ``who`` if it is an active, unsuspended admin, else :class:`AccessDenied` saying that
    ``doing`` (e.g. "moderating Talk") needs an admin."""
    a = volunteer_row(s, who)
    if a.role != "admin" or not a.active or a.suspended_at is not None:
        raise AccessDenied(f"{a.name!r} is a {a.role}; {doing} needs an admin")
    return a


def get_volunteer(store: Store, who: int | str) -> Volunteer:
    with store.read() as s:
        return volunteer_row(s, who)


def survey_row(s: Session, which: int | str, lock: bool = False) -> RegisteredSurvey:
    return _named_row(s, RegisteredSurvey, which, "survey", "is not registered", lock)


def get_survey(store: Store, which: int | str) -> RegisteredSurvey:
    with store.read() as s:
        return survey_row(s, which)


def list_surveys(store: Store) -> list[RegisteredSurvey]:
    with store.read() as s:
        return list(s.scalars(select(RegisteredSurvey).order_by(RegisteredSurvey.id)))


def galaxy_row(s: Session, galaxy: int | str, survey_id: int | None = None, lock: bool = False,
               with_survey: bool = False) -> Galaxy:
    """The galaxy with integer id or catalogue ``id_str`` ``galaxy`` (in ``survey_id`` when given).
    ``lock``: on PostgreSQL, lock its row (only its row) until the transaction ends. ``with_survey``:
    load its survey in the same query (a vote needs both: one round trip fewer)."""
    if is_integer(galaxy):
        q = select(Galaxy).where(Galaxy.id == int(galaxy))
    elif not isinstance(galaxy, str):
        raise NotFound(f"galaxy {short(galaxy)}: give an integer id or the catalogue's id_str")
    else:
        q = select(Galaxy).where(Galaxy.id_str == str(galaxy))
        if survey_id is not None:
            q = q.where(Galaxy.survey_id == survey_id)
    if with_survey:
        q = q.options(joinedload(Galaxy.survey, innerjoin=True))
    if lock and s.bind.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises writers
        q = q.with_for_update(of=Galaxy)  # not the survey's row, which every vote on it reads
    rows = list(s.scalars(q.limit(2)))
    if not rows:
        raise NotFound(f"galaxy {short(galaxy)} does not exist" + (" in that survey" if survey_id is not None else ""))
    if len(rows) > 1:
        raise StoreError(f"galaxy {galaxy!r} exists in several surveys; name the survey")
    if survey_id is not None and rows[0].survey_id != survey_id:  # an integer id names one galaxy anywhere
        raise StoreError(f"galaxy {galaxy!r} belongs to another survey (id {rows[0].survey_id}), not survey {survey_id}")
    return rows[0]


def get_galaxy(store: Store, galaxy: int | str, survey: int | str | None = None) -> Galaxy:
    with store.read() as s:
        sid = survey_row(s, survey).id if survey is not None else None
        return galaxy_row(s, galaxy, sid)


def model_version_row(s: Session, which: int | str) -> ModelVersion:
    return _named_row(s, ModelVersion, which, "model version", "does not exist")


def active_model_row(s: Session) -> ModelVersion | None:
    """The one active model version, or None before any has been activated."""
    return s.scalar(select(ModelVersion).where(ModelVersion.status == "active"))


def get_model_version(store: Store, which: int | str) -> ModelVersion:
    with store.read() as s:
        return model_version_row(s, which)


def active_model(store: Store) -> ModelVersion | None:
    with store.read() as s:
        return active_model_row(s)


def list_model_versions(store: Store) -> list[ModelVersion]:
    with store.read() as s:
        return list(s.scalars(select(ModelVersion).order_by(ModelVersion.id)))


def job_row(s: Session, job_id: int) -> Job:
    j = s.get(Job, job_id)
    if j is None:
        raise NotFound(f"job {job_id} does not exist")
    return j


def get_job(store: Store, job_id: int) -> Job:
    with store.read() as s:
        return job_row(s, job_id)


def list_jobs(store: Store, limit: int = 50) -> list[Job]:
    with store.read() as s:
        return list(s.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))


def jsonable(obj: Any) -> Any:
    """Plain JSON (no NaN, no numpy scalars) for JSON columns."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    return obj
