"""Favourites and "something odd" flags: what a volunteer marks on a galaxy beside their vote.

One flag of each kind per volunteer and galaxy; an odd flag carries a reason from :data:`ODD_REASONS`.
Researchers see the counts per galaxy (Explore colours and filters by them), they are exported with
their volunteer and time, and the galaxies flagged for one reason can seed a rare-object hunt.
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..validate import short
from .db import Store, StoreError
from .lookup import galaxy_row, survey_row, volunteer_row
from .models import Galaxy, GalaxyFlag, Volunteer

__all__ = ["FLAG_KINDS", "ODD_REASONS", "set_flag", "volunteer_flags", "galaxy_flag_counts", "export_flags"]

FLAG_KINDS = ("favourite", "odd")
ODD_REASONS = ("artefact", "lens or arc", "ring", "merger not in the tree", "other")


def set_flag(store: Store, volunteer: int | str, galaxy: int | str, kind: str, on: bool = True,
             reason: str | None = None) -> bool:
    """Set (``on``) or clear a volunteer's flag of ``kind`` on a galaxy; an odd flag needs a ``reason``
    (a second odd flag by the same volunteer replaces the reason). Returns whether the flag is now set."""
    if kind not in FLAG_KINDS:
        raise StoreError(f"flag kind {short(kind)} must be one of {', '.join(FLAG_KINDS)}")
    if on and kind == "odd" and reason not in ODD_REASONS:
        raise StoreError(f"odd-flag reason {short(reason)} must be one of {', '.join(ODD_REASONS)}")
    if kind == "favourite" and reason is not None:
        raise StoreError("a favourite takes no reason")

    def fn(s: Session) -> bool:
        v = volunteer_row(s, volunteer)
        g = galaxy_row(s, galaxy)
        row = s.scalar(select(GalaxyFlag).where(GalaxyFlag.galaxy_id == g.id, GalaxyFlag.volunteer_id == v.id,
                                                GalaxyFlag.kind == kind))
        if not on:
            if row is not None:
                s.execute(delete(GalaxyFlag).where(GalaxyFlag.id == row.id))
            return False
        if row is None:
            s.add(GalaxyFlag(galaxy_id=g.id, volunteer_id=v.id, kind=kind, reason=reason))
        else:
            row.reason = reason
        s.flush()
        return True
    try:
        return store.write(fn)
    except IntegrityError:  # the same flag set twice at once: the other transaction set it
        return store.write(fn)


def volunteer_flags(store: Store, volunteer: int | str, galaxy: int | None = None) -> pd.DataFrame:
    """One volunteer's flags (on one ``galaxy`` id when given), newest first: ``id_str, kind, reason,
    created_at``."""
    with store.read() as s:
        v = volunteer_row(s, volunteer)
        q = (select(Galaxy.id_str, GalaxyFlag.kind, GalaxyFlag.reason, GalaxyFlag.created_at)
             .join(Galaxy, Galaxy.id == GalaxyFlag.galaxy_id).where(GalaxyFlag.volunteer_id == v.id))
        if galaxy is not None:
            q = q.where(GalaxyFlag.galaxy_id == int(galaxy))
        rows = s.execute(q.order_by(GalaxyFlag.created_at.desc(), GalaxyFlag.id.desc())).all()
    return pd.DataFrame(rows, columns=["id_str", "kind", "reason", "created_at"])


def galaxy_flag_counts(store: Store, survey: int | str, reason: str | None = None) -> pd.DataFrame:
    """Per flagged galaxy of a survey: ``id_str, idx, favourites, odd`` (only odd flags for ``reason``
    counted in ``odd`` when given), most flagged first."""
    with store.read() as s:
        sv = survey_row(s, survey)
        odd = GalaxyFlag.kind == "odd"
        if reason is not None:
            odd = and_(odd, GalaxyFlag.reason == reason)
        rows = s.execute(select(Galaxy.id_str, Galaxy.idx,
                                func.sum(case((GalaxyFlag.kind == "favourite", 1), else_=0)),
                                func.sum(case((odd, 1), else_=0)))
                         .join(GalaxyFlag, GalaxyFlag.galaxy_id == Galaxy.id).where(Galaxy.survey_id == sv.id)
                         .group_by(Galaxy.id_str, Galaxy.idx)).all()
    df = pd.DataFrame([(i, int(x), int(f), int(o)) for i, x, f, o in rows],
                      columns=["id_str", "idx", "favourites", "odd"])
    return df.sort_values(["odd", "favourites", "idx"], ascending=[False, False, True]).reset_index(drop=True)


def export_flags(store: Store, survey: int | str) -> pd.DataFrame:
    """Every flag of a survey with its volunteer and time: ``volunteer, id_str, kind, reason, created_at``."""
    with store.read() as s:
        sv = survey_row(s, survey)
        rows = s.execute(select(Volunteer.name, Galaxy.id_str, GalaxyFlag.kind, GalaxyFlag.reason,
                                GalaxyFlag.created_at)
                         .join(Galaxy, Galaxy.id == GalaxyFlag.galaxy_id)
                         .join(Volunteer, Volunteer.id == GalaxyFlag.volunteer_id)
                         .where(Galaxy.survey_id == sv.id).order_by(GalaxyFlag.id)).all()
    return pd.DataFrame(rows, columns=["volunteer", "id_str", "kind", "reason", "created_at"])
