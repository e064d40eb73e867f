"""Rare-object hunts in the store: a hunt (what it looks for, in which survey) and the volunteers'
grid decisions — one stored vote per volunteer, galaxy and hunt. The ranking lives in
:mod:`galaxalign.hunt`; here only what must never be lost or doubled."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..validate import check_name, is_integer, short
from .db import Store, StoreError
from .lookup import NotFound, key, survey_row, volunteer_row
from .models import Galaxy, Hunt, HuntVote

__all__ = ["create_hunt", "get_hunt", "list_hunts", "record_hunt_votes", "hunt_votes"]

QUERY_KEYS = ("examples", "text", "symbol", "target_class")


def _hunt_row(s: Session, hunt: int | str, survey: int | str | None = None) -> Hunt:
    k = key(hunt, "hunt")
    q = select(Hunt).where(Hunt.id == k) if isinstance(k, int) else select(Hunt).where(Hunt.name == k)
    if survey is not None:
        q = q.where(Hunt.survey_id == survey_row(s, survey).id)
    rows = list(s.scalars(q.limit(2)))
    if not rows:
        raise NotFound(f"hunt {short(hunt)} does not exist")
    if len(rows) > 1:
        raise StoreError(f"hunt {hunt!r} exists in several surveys; name the survey")
    return rows[0]


def create_hunt(store: Store, survey: int | str, name: str, query: dict, created_by: int | str | None = None) -> int:
    """A new hunt in ``survey``: ``query`` holds any of ``examples`` (galaxy id_strs), ``text``,
    ``symbol`` and ``target_class`` (a class index) — at least one of the first three."""
    check_name(name, "hunt name", StoreError)
    query = dict(query or {})
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise StoreError(f"hunt {name!r}: unknown query key(s) {', '.join(unknown)}")
    if not (query.get("examples") or query.get("text") or query.get("symbol")):
        raise StoreError(f"hunt {name!r}: start it from example galaxies, a text or a symbol")

    def fn(s: Session) -> int:
        sv = survey_row(s, survey)
        tc = query.get("target_class")
        if tc is not None and (not is_integer(tc) or not 0 <= int(tc) < len(sv.class_names)):
            raise StoreError(f"hunt {name!r}: target class {short(tc)} is not a class of survey {sv.name!r}")
        for ex in query.get("examples") or []:
            if s.scalar(select(Galaxy.id).where(Galaxy.survey_id == sv.id, Galaxy.id_str == str(ex))) is None:
                raise NotFound(f"hunt {name!r}: example galaxy {ex!r} is not in survey {sv.name!r}")
        if s.scalar(select(Hunt.id).where(Hunt.survey_id == sv.id, Hunt.name == name)) is not None:
            raise StoreError(f"hunt {name!r} already exists in survey {sv.name!r}")
        by = volunteer_row(s, created_by).id if created_by is not None else None
        h = Hunt(survey_id=sv.id, name=name, query=query, created_by=by)
        s.add(h)
        s.flush()
        return h.id
    return store.write(fn)


def get_hunt(store: Store, hunt: int | str, survey: int | str | None = None) -> Hunt:
    with store.read() as s:
        return _hunt_row(s, hunt, survey)


def list_hunts(store: Store, survey: int | str | None = None) -> list[Hunt]:
    with store.read() as s:
        q = select(Hunt).order_by(Hunt.id)
        if survey is not None:
            q = q.where(Hunt.survey_id == survey_row(s, survey).id)
        return list(s.scalars(q))


def record_hunt_votes(store: Store, hunt: int | str, volunteer: int | str, decisions: dict, round: int = 0) -> int:
    """Store one grid of decisions, ``{galaxy id or id_str: confirmed}``, in one transaction. A decision
    this volunteer already gave on this hunt is kept as it was and not written again (a grid sent
    twice doubles nothing); returns how many were written."""
    if not isinstance(decisions, dict) or not all(isinstance(v, bool) for v in decisions.values()):
        raise StoreError(f"hunt decisions {short(decisions)}: expected {{galaxy: True or False}}")

    def fn(s: Session) -> int:
        h = _hunt_row(s, hunt)
        v = volunteer_row(s, volunteer)
        gids = {}
        for g, ok in decisions.items():
            col = Galaxy.id if is_integer(g) else Galaxy.id_str
            gid = s.scalar(select(Galaxy.id).where(Galaxy.survey_id == h.survey_id, col == g))
            if gid is None:
                raise NotFound(f"galaxy {short(g)} is not in the survey of hunt {h.name!r}")
            gids[gid] = ok
        done = set(s.scalars(select(HuntVote.galaxy_id).where(HuntVote.hunt_id == h.id, HuntVote.volunteer_id == v.id,
                                                              HuntVote.galaxy_id.in_(list(gids)))))
        new = [HuntVote(hunt_id=h.id, galaxy_id=g, volunteer_id=v.id, confirmed=ok, round=int(round))
               for g, ok in gids.items() if g not in done]
        s.add_all(new)
        s.flush()
        return len(new)
    try:
        return store.write(fn)
    except IntegrityError:  # the same volunteer's grid in two transactions at once: the other one won;
        return store.write(fn)  # again, the decisions it wrote now count as done


def hunt_votes(store: Store, hunt: int | str) -> pd.DataFrame:
    """Per decided galaxy of a hunt: ``id_str, idx, confirmed, rejected, first_round, status`` (status:
    ``confirmed`` when more volunteers confirmed it than rejected it, else ``rejected``)."""
    with store.read() as s:
        h = _hunt_row(s, hunt)
        rows = s.execute(select(Galaxy.id_str, Galaxy.idx, func.sum(case((HuntVote.confirmed, 1), else_=0)),
                                func.count(), func.min(HuntVote.round))
                         .join(Galaxy, Galaxy.id == HuntVote.galaxy_id).where(HuntVote.hunt_id == h.id)
                         .group_by(Galaxy.id_str, Galaxy.idx).order_by(func.min(HuntVote.round), Galaxy.idx)).all()
    df = pd.DataFrame([(i, int(x), int(c), int(n) - int(c), int(r)) for i, x, c, n, r in rows],
                      columns=["id_str", "idx", "confirmed", "rejected", "first_round"])
    df["status"] = ["confirmed" if c > r else "rejected" for c, r in zip(df.confirmed, df.rejected)]
    return df

