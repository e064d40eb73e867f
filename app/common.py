"""Shared pieces of the app pages: sign-in, cached resources, small widgets.

Compute lives in ``galaxalign``; this file only caches it. ``st.cache_resource`` holds objects shared by
all sessions (the store's engine, surveys, models, FAISS indexes: all safe to share); ``st.cache_data``
holds data frames and projections.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import streamlit as st
from PIL import Image

from galaxalign.data import Survey
from galaxalign.errors import GalaxalignError, os_error_message
from galaxalign.index import SimilarityIndex
from galaxalign.inference import load_embeddings
from galaxalign.model import load_model
from galaxalign.access import Doorkeeper, SignInFailed, Throttled
from galaxalign.store import (AccessDenied, account_for_sign_on, active_model, create_guest, list_surveys, open_store,
                              project_settings, project_stats, require_role)
from galaxalign.surveys import open_registered
from galaxalign.symbols import render_symbol, symbol_path
from galaxalign.talk import render as render_comment
from galaxalign.viewing import upscale
from galaxalign.workspace import Workspace, default_workspace

# --- resources ---------------------------------------------------------------------------------------

@st.cache_resource
def get_workspace() -> Workspace:
    return default_workspace()


@st.cache_resource(show_spinner=False)
def get_store(url: str):
    return open_store(url)


def store():
    return get_store(get_workspace().database_url)


@st.cache_resource(show_spinner="Opening the survey…")
def _survey_file(path: str, label_set: str | None = None, preparation: str | None = None) -> Survey:
    """Shared by all sessions: a Survey opens its HDF5 file per read, so it is thread-safe. The
    registered survey's label set and preparation (JSON) are part of the key: volunteers see the same
    prepared pixels the model was trained on."""
    return open_registered(SimpleNamespace(path=path, label_set_file=None, label_set=label_set,
                                           preparation=json.loads(preparation) if preparation else None))


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def get_model(checkpoint: str, sha256: str):
    return load_model(checkpoint)


@st.cache_resource(show_spinner="Loading the similarity index…", max_entries=6)
def get_index(folder: str):
    return SimilarityIndex.load(folder)


@st.cache_resource(show_spinner=False, max_entries=6)
def get_embeddings(folder: str):
    """Shared by all sessions, read-only: the embeddings memory-mapped (a million galaxies cost no copy
    and no pickling per run, as ``st.cache_data`` would), the predictions table as read."""
    return load_embeddings(folder, mmap=True)


@st.cache_data(max_entries=2048)
def symbol_image(name: str, size: int = 96) -> np.ndarray:
    """The committed PNG when present (what volunteers see everywhere), a label set's own PNG, else
    drawn on the fly."""
    p = Path(name) if name.lower().endswith(".png") else symbol_path(name)
    if p.exists():
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB").resize((size, size), Image.LANCZOS))
    return np.asarray(render_symbol(name, size))


@st.cache_data(max_entries=2048)
def symbol_png(name: str, size: int = 96) -> bytes:
    """:func:`symbol_image` as PNG bytes, for ``st.image``: encoded once per process, not on every run
    (a Classify run shows up to a dozen symbols; encoding each array again cost most of the page)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(symbol_image(name, size)).save(buf, format="PNG")
    return buf.getvalue()


def display(img: np.ndarray, size: int = 160) -> np.ndarray:
    """Upscale a small cutout for the screen."""
    return upscale(img, size)


# --- the current survey and model --------------------------------------------------------------------

@st.cache_resource(ttl=10, show_spinner=False)
def _survey_rows(url: str) -> list:
    return list_surveys(get_store(url))


def get_survey_rows() -> list:
    """The registered surveys, read at most every 10 s per process (the home page asks on every visit)."""
    return _survey_rows(get_workspace().database_url)


def picked_survey_row():
    """The survey picked in the sidebar (registered surveys), or the demo file before any is registered."""
    rows = list_surveys(store())
    if not rows:
        return None
    names = [r.name for r in rows]
    name = st.sidebar.selectbox("Survey", names, key="survey_name") if len(names) > 1 else names[0]
    return rows[names.index(name)]


_NO_ROW = object()


def current_survey(row=_NO_ROW) -> Survey | None:
    """The survey of ``row`` (default: the one picked in the sidebar), else the workspace's demo file,
    or None with a message. Pages that already hold the row pass it, so the sidebar picker is drawn
    once per run."""
    if row is _NO_ROW:
        row = picked_survey_row()
    path = Path(row.path) if row else get_workspace().demo_survey
    if not path.exists():
        st.warning(f"No survey at `{path}`. Run `make run` (or `galaxalign demo`) to build the demo workspace.")
        return None
    try:
        if row is None:
            return _survey_file(str(path))
        return _survey_file(str(path), row.label_set_file or row.label_set,
                          json.dumps(row.preparation, sort_keys=True) if row.preparation else None)
    except GalaxalignError as e:
        st.error(str(e))
        return None


def active_model_row():
    return active_model(store())


# --- who is here ------------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def get_doorkeeper(url: str) -> Doorkeeper:
    """One per web process: sign-in and guest limits (shared by all processes through Redis when configured)."""
    return Doorkeeper(get_store(url))


def doorkeeper() -> Doorkeeper:
    return get_doorkeeper(get_workspace().database_url)


@st.cache_data(ttl=10, show_spinner=False)
def _settings(url: str):
    return project_settings(get_store(url))


def settings():
    """The project's settings, read at most every 10 s per process (a role or door change shows within that)."""
    return _settings(get_workspace().database_url)


@st.cache_data(ttl=30, show_spinner=False)
def _stats(url: str) -> dict:
    return project_stats(get_store(url))


def stats() -> dict:
    """The home page's figures: computed at most every 30 s per web process, whoever is visiting."""
    return _stats(get_workspace().database_url)


@st.cache_data(ttl=5, show_spinner=False)
def _learning(url: str) -> dict | None:
    from galaxalign.store import list_jobs

    store_ = get_store(url)
    if active_model(store_) is not None:
        return None
    jobs = [j for j in list_jobs(store_, 20) if j.kind == "retrain" and j.state in ("queued", "running")]
    return {"job": jobs[-1].id, "state": jobs[-1].state, "progress": float(jobs[-1].progress or 0.0),
            "message": jobs[-1].message} if jobs else None


def model_learning() -> dict | None:
    """While there is no active model: the re-training job that will make one (``job, state, progress,
    message``), or None. Read at most every 5 s per process."""
    return _learning(get_workspace().database_url)


def client_address() -> str:
    """The visitor's address for rate limits: the socket's peer, or — only when ``$GALAXALIGN_TRUST_PROXY``
    is set, behind our own reverse proxy — the first address of ``X-Forwarded-For``."""
    if os.environ.get("GALAXALIGN_TRUST_PROXY"):
        fwd = (st.context.headers.get("X-Forwarded-For") or "").split(",")[0].strip()
        if fwd:
            return fwd[:64]
    return str(getattr(st.context, "ip_address", None) or "local")


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def current_user() -> dict | None:
    """``{"id", "name", "role"}`` of whoever is here: an account signed in, this browser session's guest
    (after their first vote), or someone signed in through OIDC (``st.login``); None for a new visitor."""
    user = st.session_state.get("user")
    if user is not None:
        return user
    if _oidc_configured() and getattr(st.user, "is_logged_in", False):
        try:
            v = account_for_sign_on(store(), str(st.user.get("email") or st.user.get("sub")))
        except AccessDenied as e:
            st.session_state["signin_error"] = str(e)
            st.logout()
            return None
        st.session_state["user"] = {"id": v.id, "name": v.name, "role": v.role}
        return st.session_state["user"]
    return None


VISITOR = {"id": None, "name": "visitor", "role": "guest"}


def classifier() -> dict:
    """Who classifies on this run: the signed-in user or this session's guest; a new visitor (no row until
    their first vote, :func:`ensure_identity`) where the project lets guests classify; else the page stops
    with the way in."""
    user = current_user()
    if user is not None:
        try:
            require_role(store(), user["id"], "guest")
        except GalaxalignError as e:
            st.session_state.pop("user", None)
            st.error(str(e))
            st.stop()
        return user
    if settings().guests:
        return dict(VISITOR)
    st.info("Please sign in or join to classify.")
    st.stop()


def ensure_identity() -> dict:
    """This session's identity before a first write: a visitor becomes a guest (one row, rate-limited per
    address); anyone else is returned as they are."""
    user = st.session_state.get("user")
    if user is not None:
        return user
    doorkeeper().check_new_guest(client_address())
    gid, name = create_guest(store())
    st.session_state["user"] = {"id": gid, "name": name, "role": "guest"}
    return st.session_state["user"]


def sign_in_page() -> None:
    st.title(f"Sign in to {settings().title}")
    if (msg := st.session_state.pop("signin_error", None)):
        st.error(msg)
    with st.form("signin"):
        name = st.text_input("Name", key="signin_name", max_chars=200)
        password = st.text_input("Password", type="password", key="signin_password", max_chars=1024)
        ok = st.form_submit_button("Sign in", type="primary")
    if ok:
        try:
            v = doorkeeper().sign_in(name, password, client_address())
        except (SignInFailed, Throttled, AccessDenied) as e:
            st.error(sentence(f"{str(e)[:1].upper()}{str(e)[1:]}"))
        else:
            st.session_state.clear()
            st.session_state["user"] = {"id": v.id, "name": v.name, "role": v.role}
            st.rerun()
    if _oidc_configured():
        st.button("Sign in with your institution", on_click=st.login, key="signin_oidc")
    if settings().join == "open":
        st.caption("No account? **Join** takes one short form — or just start classifying as a guest.")
    elif settings().join == "invite":
        st.caption("This project is invitation-only: open the invitation link an admin sent you.")


def sign_out() -> None:
    st.session_state.clear()
    if _oidc_configured() and getattr(st.user, "is_logged_in", False):
        st.logout()


def require(role: str) -> dict:
    """Stop the page unless the signed-in user has ``role`` or above (checked against the store on every
    run, so a role change or a suspension applies on the next request)."""
    user = current_user()
    if user is None:
        st.error("Please sign in.")
        st.stop()
    try:
        require_role(store(), user["id"], role)
    except AccessDenied as e:
        if "suspended" in str(e):
            st.session_state.pop("user", None)
        st.error(str(e))
        st.stop()
    except GalaxalignError as e:
        st.error(str(e))
        st.stop()
    return user


def sentence(e: Exception | str) -> str:
    """A refusal as one sentence for a form: its first line, ending in one full stop."""
    text = (str(e).splitlines() or [""])[0].strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def show_error(e: Exception) -> None:
    """One line for the person; never a traceback."""
    if isinstance(e, GalaxalignError):
        st.error(str(e))
    elif isinstance(e, OSError):
        st.error(os_error_message(e))
    else:
        st.error(f"{e.__class__.__name__}: {(str(e).splitlines() or [''])[0][:200]}")


# --- Talk comments -----------------------------------------------------------------------------------

PAGE_CSS = """<style>
.ga-home h3 { margin-top: 0.2rem; }
.ga-home p { font-size: 1.05rem; line-height: 1.55; }
</style>"""

TALK_CSS = """<style>
.ga-tag { color: #1c7ed6; font-weight: 600; }
.ga-mention { color: #7048e8; font-weight: 600; }
.ga-comment p { margin: 0.2rem 0; }
.ga-comment blockquote { border-left: 3px solid #ced4da; margin: 0.3rem 0; padding-left: 0.6rem; color: #495057; }
</style>"""


def show_comment(c, names: set[str] | None = None, on_galaxy: bool = False) -> None:
    """A comment row (``galaxalign.store`` Talk frames): who and when (and on which galaxy), whether a
    moderator hid it, and its text rendered by ``galaxalign.talk.render`` — never as typed markup."""
    head = f"**{c.volunteer}** · {c.created_at:%Y-%m-%d %H:%M} UTC"
    if on_galaxy:
        head += f" · on `{c.id_str}`"
    if c.hidden:
        head += " · :orange[hidden by a moderator]"
    st.markdown(head)
    st.html(f'<div class="ga-comment">{render_comment(c.body, names)}</div>')
