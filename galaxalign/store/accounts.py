"""Accounts: volunteers, researchers and admins; passwords as argon2 hashes only."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..validate import check_name, short
from .db import Store, StoreError
from .lookup import AccessDenied, NotFound, get_volunteer, volunteer_row
from .models import ROLES, Volunteer, utcnow

__all__ = ["add_volunteer", "add_admin", "authenticate", "require_role", "account_for_sign_on", "sign_on_name",
           "mark_tutorial_seen", "volunteer_names"]

MIN_PASSWORD = 8
_hasher = None


def _ph():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def _check_password(name: str, password) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise StoreError(f"the password for {short(name)} must have at least {MIN_PASSWORD} characters")


def add_volunteer(store: Store, name: str, role: str = "volunteer", password: str | None = None) -> int:
    """Create an account; the password is stored as an argon2 hash only. Returns its id."""
    check_name(name, "volunteer name", StoreError)
    if role not in ROLES:
        raise StoreError(f"role {short(role)} is not one of {', '.join(ROLES)}")
    if password is not None:
        _check_password(name, password)
    hashed = _ph().hash(password) if password is not None else None

    def fn(s: Session) -> int:
        other = s.scalar(select(Volunteer.name).where(func.lower(Volunteer.name) == name.lower()))
        if other is not None:  # "ADA" and "ada" would be two people nobody can tell apart
            raise StoreError(f"volunteer {name!r} already exists" + (f" (as {other!r})" if other != name else ""))
        v = Volunteer(name=name, role=role, password_hash=hashed)
        s.add(v)
        s.flush()
        return v.id

    try:
        return store.write(fn)
    except IntegrityError:
        raise StoreError(f"volunteer {name!r} already exists") from None


def authenticate(store: Store, name: str, password: str) -> Volunteer | None:
    """The volunteer if ``password`` matches, else ``None`` (never says which part was wrong)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    with store.read() as s:
        v = s.scalar(select(Volunteer).where(Volunteer.name == name, Volunteer.active.is_(True)))
    if v is None or not v.password_hash:
        _ph().hash("timing-equaliser")  # comparable work whether or not the name exists
        return None
    try:
        _ph().verify(v.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return v


def require_role(store: Store, who: int | str, role: str) -> Volunteer:
    """The volunteer if their role is ``role`` or above (volunteer < researcher < admin), else
    :class:`AccessDenied`. The app calls this on the server before every privileged action."""
    v = get_volunteer(store, who)
    if ROLES.index(v.role) < ROLES.index(role) or not v.active:
        raise AccessDenied(f"{v.name!r} is a {v.role}; this needs a {role}")
    return v


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
    created on the first sign-in as a volunteer without a password."""
    name = sign_on_name(claim)
    try:
        return get_volunteer(store, name)
    except NotFound:
        add_volunteer(store, name, "volunteer", None)
        return get_volunteer(store, name)


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
        return list(s.scalars(select(Volunteer.name).order_by(Volunteer.name)))
