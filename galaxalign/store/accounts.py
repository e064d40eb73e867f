"""Accounts: guests, volunteers, researchers and admins; passwords as argon2 hashes only.

- A **guest** is an ordinary row with the role ``guest`` and a generated name, made on a visitor's first
  vote; :func:`sign_up` in the same browser session turns that row into the account, so the guest's
  votes, favourites and progress are the account's without copying anything.
- Names keep the form typed (NFKC-normalised) and are unique by :func:`galaxalign.validate.name_key`.
- Admins change roles, suspend and reinstate (a suspended account can neither sign in nor vote), hand
  out one-time links (invitations, password resets) and erase accounts. Every such action is written to
  the audit log (``moderation_log``, shared with Talk's moderation) in the same transaction.
- **Erasure** keeps the science: the account's votes, flags and hunt votes stay, on the same row, now an
  anonymous, inactive placeholder (``erased-…``, its role kept for the export's expert column) — so consensus, retirement and export row counts do not move —
  while its name, e-mail, password hash and sign-on identity go, its comments pass to the shared
  ``[deleted]`` author, mentions of it are removed and moderation records quoting its comments lose
  the text.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..passwords import check_password
from ..validate import check_volunteer_name, name_key, short
from .db import Store, StoreError
from .lookup import AccessDenied, NotFound, admin_row, get_volunteer, volunteer_row
from .models import (ROLES, AccountLink, Classification, Comment, CommentMention, Galaxy, GalaxyFlag, HuntVote,
                     ModerationAction, RegisteredSurvey, Volunteer, utcnow)
from .project import settings_in

__all__ = ["add_volunteer", "add_admin", "authenticate", "require_role", "account_for_sign_on", "sign_on_name",
           "mark_tutorial_seen", "volunteer_names", "create_guest", "sign_up", "set_role", "suspend_account",
           "reinstate_account", "erase_account", "list_accounts", "my_data", "create_link", "check_link",
           "reset_password", "audit", "record_event", "AccountSuspended", "LinkInvalid", "ACCOUNT_ACTIONS", "LINK_KINDS",
           "check_email", "MIN_PASSWORD"]

MIN_PASSWORD = 8
LINK_KINDS = ("invite", "reset")
LINK_HOURS = {"invite": 7 * 24, "reset": 24}  # how long a link lives unless the admin says otherwise
ACCOUNT_ACTIONS = ("sign-up", "role", "suspend-acct", "reinstate", "invite", "reset-link", "password-reset",
                   "erase", "lockout", "settings")
DELETED_AUTHOR = "[deleted]"  # the author of an erased account's comments (not a valid sign-in name)
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}")
_hasher = None


class AccountSuspended(AccessDenied):
    """A suspended account tried to sign in or act; the message gives the admin's reason."""


class LinkInvalid(StoreError):
    """An invitation or reset link that is unknown, used, expired or for something else."""


def _ph():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def _check_min_password(name: str, password) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise StoreError(f"the password for {short(name)} must have at least {MIN_PASSWORD} characters")


def check_email(email) -> str | None:
    """An optional e-mail address: None or empty for none, else a plausible address of at most 320 characters."""
    if email is None or (isinstance(email, str) and not email.strip()):
        return None
    if not isinstance(email, str) or len(email) > 320 or not EMAIL_RE.fullmatch(email.strip()):
        raise StoreError(f"e-mail {short(email)}: not an e-mail address")
    return email.strip()


def audit(s: Session, actor: int | None, action: str, volunteer: int | None = None, reason: str | None = None) -> None:
    """Add one line to the audit log inside the caller's transaction."""
    s.add(ModerationAction(actor_id=actor, action=action, volunteer_id=volunteer,
                           reason=None if reason is None else str(reason)[:200]))


def record_event(store: Store, action: str, who: int | str | None = None, reason: str | None = None) -> None:
    """One audit-log line from outside a store transaction (a sign-in lock-out, say); ``who`` need not exist."""
    def fn(s: Session) -> None:
        vid = None
        if who is not None:
            try:
                vid = volunteer_row(s, who).id
            except (NotFound, StoreError):
                vid = None
        audit(s, None, action, vid, reason)
    store.write(fn)


def _taken(s: Session, key: str, but: int | None = None) -> str | None:
    q = select(Volunteer.name).where(Volunteer.name_key == key)
    if but is not None:
        q = q.where(Volunteer.id != but)
    return s.scalar(q)


def _refuse_taken(s: Session, typed: str, name: str, but: int | None = None) -> None:
    """Refuse a name whose key another account holds, saying under which form (``typed``: as given)."""
    other = _taken(s, name_key(name), but)
    if other is not None:
        raise StoreError(f"volunteer {typed!r} already exists" + (f" (as {other!r})" if other != typed else ""))


def add_volunteer(store: Store, name: str, role: str = "volunteer", password: str | None = None,
                  email: str | None = None, strength: bool = False) -> int:
    """Create an account; the password is stored as an argon2 hash only. Returns its id. ``strength``:
    hold the password to :func:`galaxalign.passwords.check_password` (sign-up and the CLI do)."""
    typed, name = name, check_volunteer_name(name, StoreError)
    if role not in ROLES:
        raise StoreError(f"role {short(role)} is not one of {', '.join(ROLES)}")
    email = check_email(email)
    if password is not None:
        check_password(password, name, email) if strength else _check_min_password(name, password)
    hashed = _ph().hash(password) if password is not None else None

    def fn(s: Session) -> int:
        _refuse_taken(s, typed, name)  # "ADA" and "ada" would be two people nobody can tell apart
        v = Volunteer(name=name, name_key=name_key(name), role=role, password_hash=hashed, email=email)
        s.add(v)
        s.flush()
        return v.id

    try:
        return store.write(fn)
    except IntegrityError:
        raise StoreError(f"volunteer {name!r} already exists") from None


def create_guest(store: Store) -> tuple[int, str]:
    """A guest account for a visitor's first vote: ``(id, name)``, the name ``guest-`` and 8 hex digits."""
    def fn(s: Session) -> tuple[int, str]:
        name = f"guest-{secrets.token_hex(4)}"
        while _taken(s, name) is not None:
            name = f"guest-{secrets.token_hex(4)}"
        v = Volunteer(name=name, name_key=name_key(name), role="guest")
        s.add(v)
        s.flush()
        return v.id, v.name
    return store.write(fn)


def sign_up(store: Store, name: str, password: str, email: str | None = None, guest: int | None = None,
            link: int | None = None) -> int:
    """Join the project: an account named ``name`` (:func:`check_volunteer_name`) with a password strong
    enough (:func:`check_password`) and an optional e-mail. Allowed by the project's join mode: ``open``
    for anyone; ``invite`` only with ``link``, an unused, unexpired invitation's id (from a link
    :func:`galaxalign.access.read_link` verified), which grants its role and is then used up; ``closed``
    never. ``guest``: this browser session's guest row, which becomes the account (its votes, favourites
    and progress are the account's). Nothing is written when anything is refused. Returns the id."""
    typed, name = name, check_volunteer_name(name, StoreError)
    email = check_email(email)
    check_password(password, name, email)
    hashed = _ph().hash(password)

    def fn(s: Session) -> int:
        mode = settings_in(s).join
        role = "volunteer"
        inv = None
        if mode == "closed":
            raise AccessDenied("joining is closed for this project; ask its admins")
        if mode == "invite" or link is not None:
            if link is None:
                raise AccessDenied("this project is invitation-only: open the invitation link you were sent")
            inv = _usable_link(s, link, "invite")
            role = inv.role or "volunteer"
        _refuse_taken(s, typed, name, but=guest)
        if guest is not None:
            v = volunteer_row(s, guest, lock=True)
            if v.role != "guest" or v.erased_at is not None:
                raise StoreError(f"volunteer {v.name!r} is not a guest; sign in instead")
            v.name, v.name_key, v.role, v.password_hash, v.email = name, name_key(name), role, hashed, email
        else:
            v = Volunteer(name=name, name_key=name_key(name), role=role, password_hash=hashed, email=email)
            s.add(v)
        s.flush()
        if inv is not None:
            inv.used_at, inv.used_by = utcnow(), v.id
        audit(s, v.id, "sign-up", v.id, "from a guest session" if guest is not None else
              ("by invitation" if inv is not None else None))
        return v.id

    try:
        return store.write(fn)
    except IntegrityError:
        raise StoreError(f"volunteer {name!r} already exists") from None


def authenticate(store: Store, name: str, password: str) -> Volunteer | None:
    """The account if ``password`` matches, else ``None`` (never says which part was wrong). A right
    password for a suspended account raises :class:`AccountSuspended` with the reason. The name is
    matched as :func:`name_key` does (``ADA`` signs in as ``Ada``)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    v = None
    if isinstance(name, str) and isinstance(password, str) and 0 < len(name) <= 200 and len(password) <= 1024:
        with store.read() as s:
            v = s.scalar(select(Volunteer).where(Volunteer.name_key == name_key(name.strip()),
                                                 Volunteer.active.is_(True)))
    if v is None or not v.password_hash:
        _ph().hash("timing-equaliser")  # comparable work whether or not the name exists
        return None
    try:
        _ph().verify(v.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if v.suspended_at is not None:
        raise AccountSuspended(f"account {v.name!r} is suspended" + (f": {v.suspended_reason}" if v.suspended_reason else ""))
    return v


def require_role(store: Store, who: int | str, role: str) -> Volunteer:
    """The volunteer if their role is ``role`` or above (guest < volunteer < researcher < admin) and the
    account is neither deactivated nor suspended, else :class:`AccessDenied`. The app calls this on the
    server before every privileged action, so a role change applies on the next request."""
    v = get_volunteer(store, who)
    if v.suspended_at is not None:
        raise AccountSuspended(f"account {v.name!r} is suspended" + (f": {v.suspended_reason}" if v.suspended_reason else ""))
    if ROLES.index(v.role) < ROLES.index(role) or not v.active:
        raise AccessDenied(f"{v.name!r} is a {v.role}; this needs a {role}")
    return v


def _admin(s: Session, admin: int | str | None) -> Volunteer | None:
    """The acting admin (None: the command line, run by the workspace's owner)."""
    return None if admin is None else admin_row(s, admin, "managing accounts")


def _other_admins(s: Session, v: Volunteer) -> int:
    return s.scalar(select(func.count()).select_from(Volunteer).where(
        Volunteer.role == "admin", Volunteer.id != v.id, Volunteer.suspended_at.is_(None),
        Volunteer.active.is_(True))) or 0


def set_role(store: Store, admin: int | str | None, who: int | str, role: str) -> str:
    """Give ``who`` the role ``role`` (volunteer, researcher or admin); applies on their next request.
    The last admin cannot be demoted. Returns the previous role."""
    if role not in ROLES[1:]:
        raise StoreError(f"role {short(role)} is not one of {', '.join(ROLES[1:])}")

    def fn(s: Session) -> str:
        a = _admin(s, admin)
        v = volunteer_row(s, who, lock=True)
        if v.role == "guest" or v.erased_at is not None:
            raise StoreError(f"{v.name!r} has no account to give a role (guest or erased)")
        if v.role == "admin" and role != "admin" and _other_admins(s, v) == 0:
            raise StoreError(f"{v.name!r} is the last admin; make another admin first")
        before, v.role = v.role, role
        audit(s, a.id if a else None, "role", v.id, f"{before} -> {role}")
        return before
    return store.write(fn)


def suspend_account(store: Store, admin: int | str | None, who: int | str, reason: str) -> None:
    """Suspend ``who`` with a ``reason`` (required; shown to them at sign-in): they can neither sign in
    nor vote until reinstated. Nobody suspends themselves or the last admin."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 200:
        raise StoreError("reason: say why, in 1–200 characters")

    def fn(s: Session) -> None:
        a = _admin(s, admin)
        v = volunteer_row(s, who, lock=True)
        if a is not None and a.id == v.id:
            raise StoreError("admins cannot suspend themselves")
        if v.role == "admin" and _other_admins(s, v) == 0:
            raise StoreError(f"{v.name!r} is the last admin; make another admin first")
        v.suspended_at, v.suspended_reason = utcnow(), reason.strip()
        audit(s, a.id if a else None, "suspend-acct", v.id, reason.strip())
    store.write(fn)


def reinstate_account(store: Store, admin: int | str | None, who: int | str, reason: str | None = None) -> None:
    """Lift a suspension."""
    def fn(s: Session) -> None:
        a = _admin(s, admin)
        v = volunteer_row(s, who, lock=True)
        if v.suspended_at is None:
            raise StoreError(f"{v.name!r} is not suspended")
        v.suspended_at, v.suspended_reason = None, None
        audit(s, a.id if a else None, "reinstate", v.id, reason)
    store.write(fn)


def create_link(store: Store, admin: int | str | None, kind: str, who: int | str | None = None,
                role: str = "volunteer", hours: float | None = None) -> int:
    """A one-time link's row: an ``invite`` (joining with ``role``) or a ``reset`` of ``who``'s password;
    it expires after ``hours`` (default a week for invitations, a day for resets). Returns its id, which
    :func:`galaxalign.access.make_link` signs into the URL."""
    if kind not in LINK_KINDS:
        raise StoreError(f"link kind {short(kind)} must be one of {', '.join(LINK_KINDS)}")
    if role not in ROLES[1:]:
        raise StoreError(f"role {short(role)} is not one of {', '.join(ROLES[1:])}")
    hours = LINK_HOURS[kind] if hours is None else hours
    if not isinstance(hours, (int, float)) or isinstance(hours, bool) or not 0 < hours <= 24 * 90:
        raise StoreError(f"link lifetime {short(hours)}: must be more than 0 and at most 2,160 hours")

    def fn(s: Session) -> int:
        a = _admin(s, admin)
        target = None
        if kind == "reset":
            if who is None:
                raise StoreError("a reset link is for one account: name it")
            target = volunteer_row(s, who)
            if target.role == "guest" or target.erased_at is not None:
                raise StoreError(f"{target.name!r} has no password to reset (guest or erased)")
        link = AccountLink(kind=kind, volunteer_id=target.id if target else None, role=role if kind == "invite" else None,
                           created_by=a.id if a else None, expires_at=utcnow() + timedelta(hours=float(hours)))
        s.add(link)
        s.flush()
        audit(s, a.id if a else None, "invite" if kind == "invite" else "reset-link", target.id if target else None,
              f"link {link.id}, {role if kind == 'invite' else 'password reset'}, expires {link.expires_at:%Y-%m-%d %H:%M} UTC")
        return link.id
    return store.write(fn)


def _usable_link(s: Session, link: int, kind: str, now: datetime | None = None) -> AccountLink:
    row = s.get(AccountLink, int(link)) if isinstance(link, int) and not isinstance(link, bool) else None
    if row is None or row.kind != kind:
        raise LinkInvalid(f"{kind} link: not valid for this project")
    if row.used_at is not None:
        raise LinkInvalid(f"{kind} link: already used on {row.used_at:%Y-%m-%d %H:%M} UTC; each link works once")
    if (now or utcnow()) > row.expires_at:
        raise LinkInvalid(f"{kind} link: expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; ask an admin for a new one")
    return row


def check_link(store: Store, link: int, kind: str) -> dict:
    """What an unused, unexpired link is for: ``{"kind", "role", "volunteer"}``; :class:`LinkInvalid` otherwise."""
    with store.read() as s:
        row = _usable_link(s, link, kind)
        name = s.scalar(select(Volunteer.name).where(Volunteer.id == row.volunteer_id)) if row.volunteer_id else None
        return {"kind": row.kind, "role": row.role, "volunteer": name}


def reset_password(store: Store, link: int, password: str) -> str:
    """Set a new password through a reset link (used up by it). Returns the account's name."""
    def fn(s: Session) -> str:
        row = _usable_link(s, link, "reset")
        v = volunteer_row(s, row.volunteer_id, lock=True)
        check_password(password, v.name, v.email)
        v.password_hash = _ph().hash(password)
        row.used_at, row.used_by = utcnow(), v.id
        audit(s, v.id, "password-reset", v.id, f"link {row.id}")
        return v.name
    return store.write(fn)


def erase_account(store: Store, actor: int | str | None, who: int | str) -> str:
    """Erase ``who``'s personal data on request (by an admin, or by themselves): see the module's text.
    Returns the placeholder name the votes now stand under."""
    def fn(s: Session) -> str:
        v = volunteer_row(s, who, lock=True)
        a = None
        if actor is not None:
            a = volunteer_row(s, actor)
            if a.id != v.id:
                _admin(s, a.id)
        if v.erased_at is not None:
            raise StoreError(f"account {v.name!r} is already erased")
        if v.role == "admin" and _other_admins(s, v) == 0:
            raise StoreError(f"{v.name!r} is the last admin; make another admin first")
        placeholder = f"erased-{secrets.token_hex(6)}"
        deleted = s.scalar(select(Volunteer).where(Volunteer.name_key == name_key(DELETED_AUTHOR)))
        if deleted is None:
            deleted = Volunteer(name=DELETED_AUTHOR, name_key=name_key(DELETED_AUTHOR), role="volunteer", active=False)
            s.add(deleted)
            s.flush()
        mine = select(Comment.id).where(Comment.volunteer_id == v.id)
        s.execute(update(ModerationAction).where(ModerationAction.comment_id.in_(mine)).values(body=None))
        s.execute(update(Comment).where(Comment.volunteer_id == v.id).values(volunteer_id=deleted.id))
        s.execute(delete(CommentMention).where(CommentMention.volunteer_id == v.id))
        s.execute(delete(AccountLink).where(AccountLink.volunteer_id == v.id))
        v.name, v.name_key, v.email, v.password_hash = placeholder, name_key(placeholder), None, None
        v.active, v.erased_at, v.suspended_reason = False, utcnow(), None
        audit(s, a.id if a else None, "erase", v.id, "personal data erased on request; votes kept anonymised")
        return placeholder
    return store.write(fn)


def list_accounts(store: Store, search: str | None = None, role: str | None = None, limit: int = 500) -> pd.DataFrame:
    """Accounts with their activity, most recently active first: ``id, name, role, email, created_at,
    votes, last_vote, comments, suspended, reason``. ``search``: part of the name (any case or width);
    ``role``: only that role. Erased accounts and guests who never voted are left out."""
    votes = (select(Classification.volunteer_id.label("vid"), func.count().label("n"),
                    func.max(Classification.created_at).label("last"))
             .group_by(Classification.volunteer_id).subquery())
    comments = (select(Comment.volunteer_id.label("vid"), func.count().label("n"))
                .group_by(Comment.volunteer_id).subquery())
    q = (select(Volunteer.id, Volunteer.name, Volunteer.role, Volunteer.email, Volunteer.created_at,
                func.coalesce(votes.c.n, 0), votes.c.last, func.coalesce(comments.c.n, 0), Volunteer.suspended_at,
                Volunteer.suspended_reason)
         .outerjoin(votes, votes.c.vid == Volunteer.id).outerjoin(comments, comments.c.vid == Volunteer.id)
         .where(Volunteer.erased_at.is_(None), Volunteer.name != DELETED_AUTHOR))
    if search:
        q = q.where(Volunteer.name_key.contains(name_key(str(search).strip()[:80]), autoescape=True))
    if role:
        if role not in ROLES:
            raise StoreError(f"role {short(role)} is not one of {', '.join(ROLES)}")
        q = q.where(Volunteer.role == role)
    q = q.where((Volunteer.role != "guest") | (votes.c.n > 0))
    with store.read() as s:
        rows = s.execute(q.order_by(votes.c.last.desc().nulls_last(), Volunteer.id).limit(int(limit))).all()
    df = pd.DataFrame(rows, columns=["id", "name", "role", "email", "created_at", "votes", "last_vote", "comments",
                                     "suspended", "reason"])
    df["suspended"] = df.suspended.notna()
    return df


def my_data(store: Store, who: int | str) -> dict:
    """Everything the store holds about one account, for "download my data": the account (no password
    hash), every vote with its galaxy and survey, favourites and flags, and comments."""
    with store.read() as s:
        v = volunteer_row(s, who)
        votes = s.execute(select(Classification.created_at, RegisteredSurvey.name, Galaxy.id_str, Classification.answers,
                                 Classification.resolved_class, Classification.seconds, Classification.guest)
                          .join(Galaxy, Galaxy.id == Classification.galaxy_id)
                          .join(RegisteredSurvey, RegisteredSurvey.id == Galaxy.survey_id)
                          .where(Classification.volunteer_id == v.id).order_by(Classification.id)).all()
        flags = s.execute(select(GalaxyFlag.created_at, Galaxy.id_str, GalaxyFlag.kind, GalaxyFlag.reason)
                          .join(Galaxy, Galaxy.id == GalaxyFlag.galaxy_id)
                          .where(GalaxyFlag.volunteer_id == v.id).order_by(GalaxyFlag.id)).all()
        comments = s.execute(select(Comment.created_at, Galaxy.id_str, Comment.body)
                             .join(Galaxy, Galaxy.id == Comment.galaxy_id)
                             .where(Comment.volunteer_id == v.id).order_by(Comment.id)).all()
        hunts = s.scalar(select(func.count()).select_from(HuntVote).where(HuntVote.volunteer_id == v.id)) or 0

    def t(x):
        return None if x is None else x.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"account": {"name": v.name, "role": v.role, "email": v.email, "created_at": t(v.created_at),
                        "suspended": v.suspended_at is not None},
            "classifications": [{"at": t(a), "survey": sv, "galaxy": g, "answers": ans, "class": c, "seconds": sec,
                                 "as_guest": bool(gu)} for a, sv, g, ans, c, sec, gu in votes],
            "flags": [{"at": t(a), "galaxy": g, "kind": k, "reason": r} for a, g, k, r in flags],
            "comments": [{"at": t(a), "galaxy": g, "text": b} for a, g, b in comments],
            "hunt_votes": int(hunts)}


def add_admin(store: Store, name: str, password: str | None = None) -> int:
    """Create an admin account (an :func:`add_volunteer` with the admin role); returns its id."""
    return add_volunteer(store, name, "admin", password)


def sign_on_name(claim: str) -> str:
    """The account name for a single-sign-on identity: the part of the e-mail before ``@``, with any
    character a name may not hold replaced by ``-``, at most 40 characters (``"user"`` if nothing is left)."""
    local = str(claim).split("@")[0]
    name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "-" for ch in local)[:40].strip("-._")
    return name if len(name) >= 2 else "user"


def account_for_sign_on(store: Store, claim: str) -> Volunteer:
    """The volunteer for an identity the single-sign-on provider vouched for (its e-mail or subject),
    created on the first sign-in as a volunteer without a password. Refused for a suspended account."""
    name = sign_on_name(claim)
    try:
        v = get_volunteer(store, name)
    except NotFound:
        add_volunteer(store, name, "volunteer", None, email=claim if EMAIL_RE.fullmatch(str(claim)) else None)
        v = get_volunteer(store, name)
    if v.suspended_at is not None:
        raise AccountSuspended(f"account {v.name!r} is suspended" + (f": {v.suspended_reason}" if v.suspended_reason else ""))
    return v


def mark_tutorial_seen(store: Store, volunteer: int | str) -> None:
    """Record that a volunteer finished the first-visit tutorial (it is not shown to them again unless
    they ask)."""
    def fn(s: Session) -> None:
        v = volunteer_row(s, volunteer)
        if v.tutorial_seen_at is None:
            v.tutorial_seen_at = utcnow()
    store.write(fn)


def volunteer_names(store: Store) -> list[str]:
    """Every account's name (Talk marks an ``@name`` only when it is one of them)."""
    with store.read() as s:
        return list(s.scalars(select(Volunteer.name).where(Volunteer.erased_at.is_(None)).order_by(Volunteer.name)))
