"""Who comes in, and how fast: sign-in that resists guessing, guests' vote limits, and the signed one-time
links (invitations, password resets) — the application layer over :mod:`galaxalign.store`'s accounts,
called by the app's pages and the CLI.

Rate limits use the ``limits`` library (moving windows): in this process's memory by default, or shared
by every web process through Redis when ``$GALAXALIGN_REDIS_URL`` is set (compose.yaml sets it). A
failed sign-in counts against both the account's name and the client's address; when either window is
full the next attempt is refused **before** the password is checked ("try again in N s"), and the moment
a window fills is written to the audit log as a lock-out. Two windows per key give the back-off: a
burst is held for a minute, a slow, patient guesser for an hour.

Links carry the store's link id signed with the project's key (``itsdangerous``), so a tampered or
foreign link is refused without a lookup; the store's row makes each link single-use and expiring.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from .errors import GalaxalignError
from .store import LINK_KINDS, LinkInvalid, Store, authenticate, record_event, signing_key
from .validate import name_key

__all__ = ["Throttled", "SignInFailed", "Doorkeeper", "Limits", "make_link", "read_link", "public_url"]


class Throttled(GalaxalignError):
    """Too many attempts: ``retry_after`` seconds until the next one is taken."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class SignInFailed(GalaxalignError):
    """Unknown name or wrong password (never says which)."""


@dataclass(frozen=True)
class Limits:
    """Rate limits in ``limits``' notation ("5/minute"); each a tuple of windows that must all have room."""
    sign_in_account: tuple[str, ...] = ("5/minute", "20/hour")
    sign_in_client: tuple[str, ...] = ("20/minute", "100/hour")
    guest_new_client: tuple[str, ...] = ("20/hour",)  # new guest identities from one address
    sign_up_client: tuple[str, ...] = ("10/hour",)


def _storage_uri() -> str:
    url = os.environ.get("GALAXALIGN_REDIS_URL")
    return url if url and url.startswith(("redis://", "rediss://", "unix://")) else "memory://"


class Doorkeeper:
    """Rate-limited doors. One per web process (the app caches it); with Redis, all processes share counts."""

    def __init__(self, store: Store, limits: Limits | None = None, storage_uri: str | None = None):
        from limits import parse
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.store = store
        self.limits = limits or Limits()
        self._parse = parse
        uri = storage_uri or _storage_uri()
        self.storage = storage_from_string(uri)
        self.window = MovingWindowRateLimiter(self.storage)

    # --- generic ---------------------------------------------------------------------------------------
    def _full(self, limits: tuple[str, ...], *key: str) -> int:
        """Seconds until every window of ``limits`` for ``key`` has room again (0: it has room now)."""
        wait = 0
        for text in limits:
            item = self._parse(text)
            if not self.window.test(item, *key):
                reset, _ = self.window.get_window_stats(item, *key)
                wait = max(wait, int(reset - time.time()) + 1)
        return wait

    def _hit(self, limits: tuple[str, ...], *key: str, cost: int = 1) -> bool:
        """Count one attempt in every window; True if one of them is now full."""
        full = False
        for text in limits:
            item = self._parse(text)
            self.window.hit(item, *key, cost=cost)
            full |= not self.window.test(item, *key)
        return full

    def clear(self) -> None:
        self.storage.reset()

    # --- sign-in ---------------------------------------------------------------------------------------
    def sign_in(self, name: str, password: str, client: str | None = None):
        """The account for ``name`` and ``password``, checked against the limits first: refused
        (:class:`Throttled`) without checking the password while the account's or the client's window is
        full; :class:`SignInFailed` for a wrong name or password, counted in both windows;
        :class:`galaxalign.store.AccountSuspended` for a suspended account's right password."""
        acct = ("signin-acct", name_key(str(name).strip())[:80] if isinstance(name, str) else "?")
        cli = ("signin-client", client or "unknown")
        for limits, key, who in ((self.limits.sign_in_account, acct, "for this account"),
                                 (self.limits.sign_in_client, cli, "from this address")):
            wait = self._full(limits, *key)
            if wait:
                raise Throttled(f"too many failed sign-ins {who}; try again in {wait} s", wait)
        v = authenticate(self.store, name, password)
        if v is not None:
            return v
        locked = [w for limits, key, w in ((self.limits.sign_in_account, acct, "account"),
                                           (self.limits.sign_in_client, cli, "client")) if self._hit(limits, *key)]
        if locked:
            record_event(self.store, "lockout", name if isinstance(name, str) else None,
                         f"sign-in locked for {' and '.join(locked)}: name {acct[1]!r}, client {cli[1]}")
        raise SignInFailed("unknown name or wrong password")

    # --- guests and sign-ups ---------------------------------------------------------------------------
    def _admit(self, windows: list[tuple[tuple[str, ...], tuple[str, ...]]], refusal: str) -> None:
        """Count one attempt against every ``(limits, key)`` of ``windows``, or — when one is full — count
        nothing and raise :class:`Throttled` with ``refusal`` (its ``{wait}``: the seconds to wait)."""
        wait = max(self._full(limits, *key) for limits, key in windows)
        if wait:
            raise Throttled(refusal.format(wait=wait), wait)
        for limits, key in windows:
            self._hit(limits, *key)

    def check_guest_vote(self, guest: int, client: str | None, per_minute: int) -> None:
        """Count one guest vote; :class:`Throttled` when this guest or this address voted ``per_minute``
        times in the last minute (an address gets ten guests' worth: a classroom shares one)."""
        self._admit([((f"{per_minute}/minute",), ("guest", str(guest))),
                     ((f"{per_minute * 10}/minute",), ("guest-client", client or "unknown"))],
                    "you are classifying faster than the project allows for guests; try again in {wait} s "
                    "(or join: accounts have no such limit)")

    def check_new_guest(self, client: str | None) -> None:
        self._admit([(self.limits.guest_new_client, ("guest-new", client or "unknown"))],
                    "too many new guest sessions from this address; try again in {wait} s")

    def check_sign_up(self, client: str | None) -> None:
        wait = self._full(self.limits.sign_up_client, "signup", client or "unknown")
        if wait:
            raise Throttled(f"too many new accounts from this address; try again in {wait} s", wait)

    def count_sign_up(self, client: str | None) -> None:
        self._hit(self.limits.sign_up_client, "signup", client or "unknown")


# --- links -----------------------------------------------------------------------------------------------

def public_url() -> str:
    """Where the app is reached, for links handed to people: ``$GALAXALIGN_PUBLIC_URL`` or the local default."""
    return os.environ.get("GALAXALIGN_PUBLIC_URL", "http://localhost:8501").rstrip("/")


def _serializer(store: Store, kind: str):
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(signing_key(store), salt=f"galaxalign-{kind}-link")


def make_link(store: Store, link_id: int, kind: str, base_url: str | None = None) -> str:
    """The URL of a one-time link (``/?invite=…`` or ``/?reset=…``) for the store's link row ``link_id``."""
    if kind not in LINK_KINDS:
        raise LinkInvalid(f"link kind {kind!r} must be one of {', '.join(LINK_KINDS)}")
    token = _serializer(store, kind).dumps(int(link_id))
    return f"{(base_url or public_url()).rstrip('/')}/?{urlencode({kind: token})}"


def read_link(store: Store, token: str, kind: str) -> int:
    """The link id inside a signed ``token`` of ``kind``; :class:`LinkInvalid` when it was altered, made
    by another project or for another kind. (Expiry and single use are the store's, on its row.)"""
    from itsdangerous import BadSignature

    if not isinstance(token, str) or not token or len(token) > 400:
        raise LinkInvalid(f"{kind} link: missing or malformed")
    try:
        link_id = _serializer(store, kind).loads(token)
    except BadSignature:
        raise LinkInvalid(f"{kind} link: not valid (altered, or made by another project)") from None
    if not isinstance(link_id, int) or isinstance(link_id, bool):
        raise LinkInvalid(f"{kind} link: not valid")
    return link_id
