"""The project: its settings (title, home page text, who may join, whether guests classify and whether
their votes count) and the progress figures its home page shows.

Settings are rows of ``project_settings`` read as one :class:`ProjectSettings`; every change goes to the
audit log. :func:`project_stats` is a handful of counting queries on indexed columns — the app caches
its result for all visitors for a short while, so a crowd on the home page costs one count, not a scan
each.
"""
from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..validate import short
from .db import Store, StoreError
from .lookup import admin_row
from .models import (Classification, Galaxy, GalaxyFlag, ModerationAction, ProjectSetting, RegisteredSurvey, Volunteer,
                     utcnow)

__all__ = ["JOIN_MODES", "GUEST_VOTE_RULES", "ProjectSettings", "project_settings", "set_project_settings",
           "project_stats", "signing_key", "default_home_text", "MAX_HOME_TEXT"]

JOIN_MODES = ("open", "invite", "closed")  # sign-up form for anyone · only through an invitation link · no joining
GUEST_VOTE_RULES = ("count", "store")  # guest votes count toward retirement like anyone's · stored, not counted
MAX_HOME_TEXT = 20_000

DEMO_HOME = """\
### Help us sort the galaxies

Astronomers have images of millions of galaxies — far more than any team can look at. Their shapes
(smooth or spiral, barred, edge-on, merging) tell how each galaxy formed and how it will change.
Computers can learn to sort them, but only from examples that **people** have classified.

**How to help:** press *Classify*, look at the galaxy, and answer a few questions by clicking the
symbol that matches what you see. A machine-learning model makes a first guess, already selected for
you — confirm it with one click, or choose another answer when it is wrong. Your corrections teach it.

No experience is needed, and you can start without an account. Each galaxy is shown to several people;
when they agree, it is *retired* and its label goes into the catalogue.

*This demo shows simulated galaxies rendered to look like a telescope survey.*
"""

FIRST_HOME = """\
### Radio galaxies from the FIRST survey

The Very Large Array's FIRST survey mapped the radio sky and found hundreds of thousands of sources.
Many are galaxies whose central black hole launches jets. Their shapes tell the jets' story:
**FRI** jets fade away from the centre, **FRII** jets end in bright hot spots, **bent** jets are
swept back as the galaxy moves through its cluster, and **compact** sources are unresolved.

**How to help:** press *Classify*, look at the radio image, and click the symbol of the class that
fits. The model's guess is pre-selected; confirm it or correct it. Every galaxy is seen by several
volunteers, and their agreement becomes its label.

*Images: real VLA FIRST data (Griese et al. 2023, the `firstgalaxydata` set).*
"""


HXDF_HOME = """\
### Galaxies of the Hubble eXtreme Deep Field

The eXtreme Deep Field is the deepest picture of the sky ever taken in visible light: two million
seconds of Hubble Space Telescope exposures of one tiny patch in the constellation Fornax. Almost
every speck in it is a galaxy, many seen as they were billions of years ago.

**How to help:** press *Classify* and answer a few questions about the galaxy on screen by clicking
the symbol that matches what you see. These are **real galaxies**, found and cut out of the field by
Source Extractor's algorithms; a model trained on simulated galaxies makes a first guess. Nobody knows
the answers yet — your votes are the labels.

*Image: NASA, ESA, G. Illingworth et al. (the XDF), as shipped with scikit-image.*
"""

HOME_TEXTS = {"first": FIRST_HOME, "hxdf": HXDF_HOME}


def default_home_text(survey_kind: str | None = None) -> str:
    """The home page's text before an admin writes the project's own: the embedded survey's (FIRST, the
    Hubble eXtreme Deep Field), else the demo's."""
    return HOME_TEXTS.get(survey_kind or "", DEMO_HOME)


@dataclass(frozen=True)
class ProjectSettings:
    title: str = "galaxalign"
    tagline: str = "Galaxy morphology by citizen scientists, with a model that learns from you."
    home_text: str | None = None  # Markdown (rendered safely, as Talk is); None: default_home_text
    join: str = "open"
    guests: bool = True  # visitors may classify without an account
    guest_votes: str = "count"
    guest_votes_per_minute: int = 30  # per guest and per client address (galaxalign.access)

    def check(self) -> "ProjectSettings":
        if not isinstance(self.title, str) or not 1 <= len(self.title.strip()) <= 120:
            raise StoreError(f"project title {short(self.title)}: must be 1–120 characters")
        if not isinstance(self.tagline, str) or len(self.tagline) > 300:
            raise StoreError(f"project tagline {short(self.tagline)}: must be at most 300 characters")
        if self.home_text is not None and (not isinstance(self.home_text, str) or len(self.home_text) > MAX_HOME_TEXT):
            raise StoreError(f"home page text: must be Markdown of at most {MAX_HOME_TEXT:,} characters")
        if self.join not in JOIN_MODES:
            raise StoreError(f"join mode {short(self.join)} must be one of {', '.join(JOIN_MODES)}")
        if not isinstance(self.guests, bool):
            raise StoreError(f"guests {short(self.guests)}: must be true or false")
        if self.guest_votes not in GUEST_VOTE_RULES:
            raise StoreError(f"guest vote rule {short(self.guest_votes)} must be one of {', '.join(GUEST_VOTE_RULES)}")
        n = self.guest_votes_per_minute
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10_000:
            raise StoreError(f"guest votes per minute {short(n)}: must be a whole number 1–10,000")
        return self


_FIELDS = {f.name for f in fields(ProjectSettings)}
_SECRET = "signing_key"


def settings_in(s: Session) -> ProjectSettings:
    """The settings as stored in an open session (defaults for whatever was never set)."""
    got = {k: v for k, v in s.execute(select(ProjectSetting.key, ProjectSetting.value)) if k in _FIELDS}
    return ProjectSettings(**got)


def project_settings(store: Store) -> ProjectSettings:
    with store.read() as s:
        return settings_in(s)


def set_project_settings(store: Store, admin: int | str | None, **changes: Any) -> ProjectSettings:
    """Change some settings (the rest kept); ``admin`` must be an admin (None: the command line, as the
    workspace's owner). Checked before anything is written; logged with what changed."""
    unknown = set(changes) - _FIELDS
    if unknown:
        raise StoreError(f"project setting {short(sorted(unknown)[0])} does not exist; "
                         f"settings: {', '.join(sorted(_FIELDS))}")

    def fn(s: Session) -> ProjectSettings:
        actor = None if admin is None else admin_row(s, admin, "changing the project")
        new = ProjectSettings(**{**asdict(settings_in(s)), **changes}).check()
        for k, v in changes.items():
            row = s.get(ProjectSetting, k)
            if row is None:
                s.add(ProjectSetting(key=k, value=v, updated_at=utcnow()))
            else:
                row.value, row.updated_at = v, utcnow()
        what = ", ".join(f"{k}={'(text)' if k == 'home_text' else v!r}" for k, v in sorted(changes.items()))
        s.add(ModerationAction(actor_id=actor.id if actor else None, action="settings", reason=what[:200]))
        return new
    return store.write(fn)


def signing_key(store: Store) -> str:
    """The project's secret for signed links (invitations, password resets), made on first use and kept in
    the store so every web process shares it; ``$GALAXALIGN_SECRET_KEY`` overrides it."""
    import os

    if os.environ.get("GALAXALIGN_SECRET_KEY"):
        return os.environ["GALAXALIGN_SECRET_KEY"]
    with store.read() as s:
        row = s.get(ProjectSetting, _SECRET)
        if row is not None:
            return str(row.value)

    def fn(s: Session) -> str:
        row = s.get(ProjectSetting, _SECRET)
        if row is None:  # checked again inside the write: two processes racing make one key
            row = ProjectSetting(key=_SECRET, value=secrets.token_urlsafe(48), updated_at=utcnow())
            s.add(row)
        return str(row.value)
    return store.write(fn)


def project_stats(store: Store, days: int = 30, recent: int = 6, now: datetime | None = None) -> dict:
    """What the home page shows: ``galaxies``, ``classified`` (at least one vote), ``retired``,
    ``volunteers`` (accounts and guests who voted), ``classifications``, ``today`` (since midnight UTC),
    ``per_day`` (a frame ``day, classifications`` over the last ``days`` days, zeros included), and the
    latest ``recent`` ``retired_galaxies`` and ``favourites`` (survey id, galaxy idx, id_str).
    Gold galaxies of linked rendered surveys are not the project's galaxies and are not counted."""
    now = now or utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since = midnight - timedelta(days=days - 1)
    with store.read() as s:
        linked = select(RegisteredSurvey.gold_from_id).where(RegisteredSurvey.gold_from_id.is_not(None))
        own = Galaxy.survey_id.not_in(linked)
        galaxies, classified, retired = s.execute(
            select(func.count(), func.count().filter(Galaxy.n_votes > 0), func.count().filter(Galaxy.retired.is_(True)))
            .select_from(Galaxy).where(own)).one()
        n_class = s.scalar(select(func.count()).select_from(Classification)) or 0
        today = s.scalar(select(func.count()).select_from(Classification)
                         .where(Classification.created_at >= midnight)) or 0
        voters = s.scalar(select(func.count(func.distinct(Classification.volunteer_id)))) or 0
        accounts = s.scalar(select(func.count()).select_from(Volunteer).where(
            Volunteer.role != "guest", Volunteer.erased_at.is_(None))) or 0
        day = func.date(Classification.created_at)
        by_day = dict(s.execute(select(day, func.count()).where(Classification.created_at >= since).group_by(day)).all())
        ret = s.execute(select(Galaxy.survey_id, Galaxy.idx, Galaxy.id_str).where(own, Galaxy.retired.is_(True))
                        .order_by(Galaxy.retired_at.desc()).limit(recent)).all()
        fav = s.execute(select(Galaxy.survey_id, Galaxy.idx, Galaxy.id_str).join(GalaxyFlag, GalaxyFlag.galaxy_id == Galaxy.id)
                        .where(GalaxyFlag.kind == "favourite").order_by(GalaxyFlag.id.desc()).limit(recent * 3)).all()
    per_day = pd.DataFrame({"day": pd.date_range(since.date(), midnight.date(), freq="D")})
    counts = {str(k)[:10]: int(v) for k, v in by_day.items()}
    per_day["classifications"] = [counts.get(d.strftime("%Y-%m-%d"), 0) for d in per_day.day]
    seen, favourites = set(), []
    for r in fav:  # one galaxy favourited by several people shows once
        if r[2] not in seen:
            seen.add(r[2])
            favourites.append(tuple(r))
    return {"galaxies": int(galaxies), "classified": int(classified), "retired": int(retired),
            "volunteers": int(max(voters, 0)), "accounts": int(accounts), "classifications": int(n_class),
            "today": int(today), "per_day": per_day, "retired_galaxies": [tuple(r) for r in ret],
            "favourites": favourites[:recent]}
