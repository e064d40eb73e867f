"""Password strength, checked before an account is made or a password changed: long enough, not the
name or e-mail, and not guessable — estimated by ``zxcvbn`` (Dropbox's estimator: dictionaries of
common passwords, names and words, keyboard patterns, dates, l33t substitutions), as Django's
password validators do with their common-password list.

A refusal is one line naming the problem (:class:`WeakPassword`); nothing is stored before it passes.
"""
from __future__ import annotations

from typing import Any

from .errors import GalaxalignError

__all__ = ["WeakPassword", "check_password", "MIN_LENGTH", "MIN_SCORE"]

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes anything, but a megabyte password is a denial of service, not a password
MIN_SCORE = 2  # zxcvbn's 0–4: 2 is "somewhat guessable" (≥ 10^6 guesses), fine behind a sign-in limit


class WeakPassword(GalaxalignError, ValueError):
    """A password the project refuses, with the reason."""


def check_password(password: Any, name: str | None = None, email: str | None = None) -> str:
    """``password`` if it is acceptable for the account ``name``, else :class:`WeakPassword` saying why."""
    if not isinstance(password, str) or not password:
        raise WeakPassword("password: must not be empty")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password: too short ({len(password)} characters); use at least {MIN_LENGTH}")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password: too long ({len(password):,} characters); at most {MAX_LENGTH}")
    folded = password.casefold()
    for what, value in (("name", name), ("e-mail address", email)):
        if value and (folded == value.casefold() or (len(value) >= 4 and value.casefold() in folded
                                                     and len(password) - len(value) < MIN_LENGTH)):
            raise WeakPassword(f"password: too close to your {what}")
    from zxcvbn import zxcvbn

    inputs = [x for x in (name, email, (email or "").split("@")[0], "galaxalign", "galaxy", "zooniverse") if x]
    result = zxcvbn(password[:100], user_inputs=inputs)  # zxcvbn is slow on very long input; 100 is plenty
    if result["score"] < MIN_SCORE:
        fb = result.get("feedback") or {}
        why = (fb.get("warning") or "easy to guess").rstrip(".").lower()
        hint = (fb.get("suggestions") or ["Add another word or two; uncommon words are better."])[0]
        raise WeakPassword(f"password: too weak ({why}). {hint}")
    return password
