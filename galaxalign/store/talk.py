"""Talk in the store: comments per galaxy, their #hashtags and @mentions, moderation and its log.

A comment is stored as typed (Markdown); :mod:`galaxalign.talk` finds its tags and mentions here and
renders it safely wherever it is shown. A volunteer posts at most :data:`RATE_LIMITS` comments per
window (moderators are not limited); a volunteer suspended from Talk reads but cannot post. Admins hide
(and unhide) or delete comments and suspend volunteers; every such action is a row of the moderation
log, and a deleted comment's text stays there, for the record.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .. import talk
from ..validate import is_integer, short
from .db import Store, StoreError
from .export import neutralise_frame
from .lookup import AccessDenied, NotFound, admin_row, galaxy_row, survey_row, volunteer_row
from .models import (ROLES, Comment, CommentMention, CommentTag, Galaxy, ModerationAction, RegisteredSurvey,
                     Volunteer, utcnow)

__all__ = ["RATE_LIMITS", "MODERATION_ACTIONS", "TalkRateLimited", "post_comment", "galaxy_comments",
           "recent_comments", "tag_counts", "galaxies_tagged", "volunteer_comments", "mentions_of",
           "moderate_comment", "suspend_from_talk", "moderation_log", "export_comments", "comment_counts"]

# (comments, seconds): at most 5 a minute and 30 an hour per volunteer — enough to talk, too few to flood
RATE_LIMITS = ((5, 60), (30, 3600))
COMMENT_ACTIONS = ("hide", "unhide", "delete")
MODERATION_ACTIONS = COMMENT_ACTIONS + ("suspend", "unsuspend")
_COLUMNS = ["comment_id", "galaxy_id", "id_str", "survey", "volunteer", "body", "created_at", "hidden"]


class TalkRateLimited(StoreError):
    """A volunteer posted more than :data:`RATE_LIMITS` allow; says when they may post again."""


def _is_moderator(v: Volunteer) -> bool:
    return ROLES.index(v.role) >= ROLES.index("admin")


def _check_rate(s: Session, v: Volunteer, now: datetime) -> None:
    for n, seconds in RATE_LIMITS:
        since = now - timedelta(seconds=seconds)
        times = s.scalars(select(Comment.created_at).where(Comment.volunteer_id == v.id, Comment.created_at > since)
                          .order_by(Comment.created_at.desc()).limit(n)).all()
        if len(times) >= n:
            wait = max(1, int((times[-1] + timedelta(seconds=seconds) - now).total_seconds()) + 1)
            raise TalkRateLimited(f"volunteer {v.name!r} posted {n} comments in the last "
                                  f"{'minute' if seconds == 60 else 'hour'}; wait {wait} s before the next")


def post_comment(store: Store, volunteer: int | str, galaxy: int | str, body: str, now: datetime | None = None) -> int:
    """Store a comment by ``volunteer`` on ``galaxy`` (an id or its ``id_str``) with its tags and the
    mentions of volunteers who exist; returns its id. Refused, writing nothing: empty or over
    :data:`galaxalign.talk.MAX_COMMENT` characters, a volunteer suspended from Talk, or over the rate
    limit (:class:`TalkRateLimited`)."""
    if not isinstance(body, str):
        raise StoreError(f"a comment is text, not {type(body).__name__}")
    body = body.strip()
    if not body:
        raise StoreError("the comment is empty")
    if len(body) > talk.MAX_COMMENT:
        raise StoreError(f"the comment has {len(body)} characters; at most {talk.MAX_COMMENT}")
    if "\x00" in body:
        raise StoreError("the comment contains a NUL character")
    parsed = talk.parse(body)
    now = now or utcnow()

    def fn(s: Session) -> int:
        # the poster's row is locked (PostgreSQL; SQLite writes one at a time): two posts at once count each other
        v = s.scalar(select(Volunteer).where(Volunteer.id == volunteer_row(s, volunteer).id).with_for_update())
        if v.talk_suspended_at is not None:
            raise AccessDenied(f"volunteer {v.name!r} is suspended from Talk")
        if not _is_moderator(v):
            _check_rate(s, v, now)
        g = galaxy_row(s, galaxy)
        c = Comment(galaxy_id=g.id, volunteer_id=v.id, body=body, created_at=now)
        s.add(c)
        s.flush()
        for tag in parsed.tags:
            s.add(CommentTag(comment_id=c.id, tag=tag, galaxy_id=g.id))
        if parsed.mentions:
            lower = [m.lower() for m in parsed.mentions]
            for vid in s.scalars(select(Volunteer.id).where(func.lower(Volunteer.name).in_(lower))):
                s.add(CommentMention(comment_id=c.id, volunteer_id=vid))
        return c.id
    return store.write(fn)


def _comments(s: Session, where, include_hidden: bool, order, limit: int | None = None) -> pd.DataFrame:
    q = (select(Comment.id, Comment.galaxy_id, Galaxy.id_str, RegisteredSurvey.name, Volunteer.name, Comment.body,
                Comment.created_at, Comment.hidden_at.is_not(None)).select_from(Comment)
         .join(Galaxy, Galaxy.id == Comment.galaxy_id).join(RegisteredSurvey, RegisteredSurvey.id == Galaxy.survey_id)
         .join(Volunteer, Volunteer.id == Comment.volunteer_id))
    for w in where:
        q = q.where(w)
    if not include_hidden:
        q = q.where(Comment.hidden_at.is_(None))
    q = q.order_by(*order)
    if limit is not None:
        q = q.limit(int(limit))
    return pd.DataFrame(s.execute(q).all(), columns=_COLUMNS)


def galaxy_comments(store: Store, galaxy: int | str, include_hidden: bool = False) -> pd.DataFrame:
    """A galaxy's thread, oldest first: ``comment_id, galaxy_id, id_str, survey, volunteer, body, created_at,
    hidden`` (hidden comments only with ``include_hidden``: the moderators' view)."""
    with store.read() as s:
        g = galaxy_row(s, galaxy)
        return _comments(s, [Comment.galaxy_id == g.id], include_hidden, (Comment.created_at, Comment.id))


def recent_comments(store: Store, limit: int = 50, survey: int | str | None = None,
                    include_hidden: bool = False) -> pd.DataFrame:
    """The newest comments across galaxies (of one survey when given), newest first; columns as
    :func:`galaxy_comments`."""
    with store.read() as s:
        where = [Galaxy.survey_id == survey_row(s, survey).id] if survey is not None else []
        return _comments(s, where, include_hidden, (Comment.created_at.desc(), Comment.id.desc()), limit)


def volunteer_comments(store: Store, volunteer: int | str) -> pd.DataFrame:
    """One volunteer's comments, newest first (their hidden ones too, marked: it is their own page)."""
    with store.read() as s:
        v = volunteer_row(s, volunteer)
        return _comments(s, [Comment.volunteer_id == v.id], True, (Comment.created_at.desc(), Comment.id.desc()))


def mentions_of(store: Store, volunteer: int | str) -> pd.DataFrame:
    """Visible comments that mention a volunteer, newest first."""
    with store.read() as s:
        v = volunteer_row(s, volunteer)
        ids = select(CommentMention.comment_id).where(CommentMention.volunteer_id == v.id)
        return _comments(s, [Comment.id.in_(ids)], False, (Comment.created_at.desc(), Comment.id.desc()))


def tag_counts(store: Store, survey: int | str | None = None) -> pd.DataFrame:
    """Every tag on a visible comment: ``tag, galaxies, comments, last_at``, most galaxies first."""
    with store.read() as s:
        q = (select(CommentTag.tag, func.count(func.distinct(CommentTag.galaxy_id)), func.count(),
                    func.max(Comment.created_at)).select_from(CommentTag)
             .join(Comment, Comment.id == CommentTag.comment_id).where(Comment.hidden_at.is_(None)))
        if survey is not None:
            q = q.join(Galaxy, Galaxy.id == CommentTag.galaxy_id).where(Galaxy.survey_id == survey_row(s, survey).id)
        rows = s.execute(q.group_by(CommentTag.tag)).all()
    df = pd.DataFrame(rows, columns=["tag", "galaxies", "comments", "last_at"])
    return df.sort_values(["galaxies", "comments", "tag"], ascending=[False, False, True]).reset_index(drop=True)


def galaxies_tagged(store: Store, tag: str) -> pd.DataFrame:
    """The galaxies a tag collects (on visible comments): ``galaxy_id, id_str, idx, survey, comments,
    last_at``, most recently tagged first. ``tag`` with or without its ``#``, any case."""
    t = str(tag).lstrip("#").lower()
    with store.read() as s:
        rows = s.execute(select(Galaxy.id, Galaxy.id_str, Galaxy.idx, RegisteredSurvey.name, func.count(),
                                func.max(Comment.created_at)).select_from(CommentTag)
                         .join(Comment, Comment.id == CommentTag.comment_id).join(Galaxy, Galaxy.id == CommentTag.galaxy_id)
                         .join(RegisteredSurvey, RegisteredSurvey.id == Galaxy.survey_id)
                         .where(CommentTag.tag == t, Comment.hidden_at.is_(None))
                         .group_by(Galaxy.id, Galaxy.id_str, Galaxy.idx, RegisteredSurvey.name)).all()
    df = pd.DataFrame(rows, columns=["galaxy_id", "id_str", "idx", "survey", "comments", "last_at"])
    return df.sort_values(["last_at", "galaxy_id"], ascending=[False, True]).reset_index(drop=True)


def comment_counts(store: Store, galaxies: list[int]) -> dict[int, int]:
    """Visible comments per galaxy id, for the ids given (those without comments are absent)."""
    if not galaxies:
        return {}
    with store.read() as s:
        rows = s.execute(select(Comment.galaxy_id, func.count()).where(Comment.galaxy_id.in_([int(g) for g in galaxies]),
                                                                       Comment.hidden_at.is_(None))
                         .group_by(Comment.galaxy_id)).all()
    return {int(g): int(n) for g, n in rows}


def _moderator(s: Session, who: int | str) -> Volunteer:
    return admin_row(s, who, "moderating Talk")


def _reason(reason: str | None) -> str | None:
    if reason is None or not str(reason).strip():
        return None
    if not isinstance(reason, str) or len(reason) > 200:
        raise StoreError(f"a moderation reason is text of at most 200 characters, not {short(reason)}")
    return reason.strip()


def moderate_comment(store: Store, admin: int | str, comment_id: int, action: str, reason: str | None = None) -> None:
    """``hide``, ``unhide`` or ``delete`` a comment, as the admin ``admin``; logged with the reason (and,
    for a deletion, the comment's text)."""
    if action not in COMMENT_ACTIONS:
        raise StoreError(f"comment action {short(action)} must be one of {', '.join(COMMENT_ACTIONS)}")
    why = _reason(reason)

    def fn(s: Session) -> None:
        a = _moderator(s, admin)
        c = s.get(Comment, int(comment_id)) if is_integer(comment_id) else None
        if c is None:
            raise NotFound(f"comment {short(comment_id)} does not exist")
        s.add(ModerationAction(actor_id=a.id, action=action, comment_id=c.id, volunteer_id=c.volunteer_id, reason=why,
                               body=c.body if action == "delete" else None))
        if action == "delete":
            s.execute(delete(CommentTag).where(CommentTag.comment_id == c.id))
            s.execute(delete(CommentMention).where(CommentMention.comment_id == c.id))
            s.delete(c)
        else:
            c.hidden_at, c.hidden_by = (utcnow(), a.id) if action == "hide" else (None, None)
    store.write(fn)


def suspend_from_talk(store: Store, admin: int | str, who: int | str, on: bool = True, reason: str | None = None) -> None:
    """Suspend a volunteer from posting in Talk (``on``) or lift it; logged. Admins cannot be suspended."""
    why = _reason(reason)

    def fn(s: Session) -> None:
        a = _moderator(s, admin)
        v = volunteer_row(s, who)
        if on and _is_moderator(v):
            raise StoreError(f"{v.name!r} is an admin; admins are not suspended from Talk")
        v.talk_suspended_at = utcnow() if on else None
        s.add(ModerationAction(actor_id=a.id, action="suspend" if on else "unsuspend", volunteer_id=v.id, reason=why))
    store.write(fn)


def moderation_log(store: Store, limit: int | None = None) -> pd.DataFrame:
    """The moderation log, newest first: ``created_at, moderator, action, comment_id, volunteer, reason, body``."""
    actor, target = Volunteer.__table__.alias("actor"), Volunteer.__table__.alias("target")
    with store.read() as s:
        q = (select(ModerationAction.created_at, actor.c.name, ModerationAction.action, ModerationAction.comment_id,
                    target.c.name, ModerationAction.reason, ModerationAction.body)
             .outerjoin(actor, actor.c.id == ModerationAction.actor_id)
             .outerjoin(target, target.c.id == ModerationAction.volunteer_id)
             .order_by(ModerationAction.id.desc()))
        rows = s.execute(q.limit(int(limit)) if limit is not None else q).all()
    return pd.DataFrame(rows, columns=["created_at", "moderator", "action", "comment_id", "volunteer", "reason", "body"])


def export_comments(store: Store, survey: int | str) -> pd.DataFrame:
    """Every comment on a survey's galaxies with its volunteer, time, tags and whether it is hidden:
    ``comment_id, id_str, volunteer, created_at, hidden, tags, body`` (``body`` as typed, Markdown; a text
    cell a spreadsheet would run as a formula gets a leading ``'``, as in every export)."""
    with store.read() as s:
        sv = survey_row(s, survey)
        df = _comments(s, [Galaxy.survey_id == sv.id], True, (Comment.id,))
        tags = s.execute(select(CommentTag.comment_id, CommentTag.tag).join(Galaxy, Galaxy.id == CommentTag.galaxy_id)
                         .where(Galaxy.survey_id == sv.id).order_by(CommentTag.tag)).all()
    by = {}
    for cid, tag in tags:
        by.setdefault(cid, []).append(tag)
    df["tags"] = [" ".join(by.get(c, [])) for c in df.comment_id]
    return neutralise_frame(df[["comment_id", "id_str", "volunteer", "created_at", "hidden", "tags", "body"]].copy())
