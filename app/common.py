"""Shared pieces of the app pages: sign-in, cached resources, small widgets.

Compute lives in ``galaxalign``; this file only caches it. ``st.cache_resource`` holds objects shared by
all sessions (the store's engine, surveys, models, FAISS indexes: all safe to share); ``st.cache_data``
holds data frames and projections.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from galaxalign.data import Survey, load_survey
from galaxalign.errors import GalaxalignError, os_error_message
from galaxalign.index import SimilarityIndex
from galaxalign.inference import load_embeddings
from galaxalign.model import load_model
from galaxalign.store import account_for_sign_on, active_model, authenticate, list_surveys, open_store, require_role
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
def get_survey(path: str, label_set: str | None = None, preparation: str | None = None) -> Survey:
    """Shared by all sessions: a Survey opens its HDF5 file per read, so it is thread-safe. The
    registered survey's label set and preparation (JSON) are part of the key: volunteers see the same
    prepared pixels the model was trained on."""
    return load_survey(path, label_set=label_set, preparation=json.loads(preparation) if preparation else None)


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


def display(img: np.ndarray, size: int = 160) -> np.ndarray:
    """Upscale a small cutout for the screen."""
    return upscale(img, size)


# --- the current survey and model --------------------------------------------------------------------

def survey_row():
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
        row = survey_row()
    path = Path(row.path) if row else get_workspace().demo_survey
    if not path.exists():
        st.warning(f"No survey at `{path}`. Run `make run` (or `galaxalign demo`) to build the demo workspace.")
        return None
    try:
        if row is None:
            return get_survey(str(path))
        return get_survey(str(path), row.label_set_file or row.label_set,
                          json.dumps(row.preparation, sort_keys=True) if row.preparation else None)
    except GalaxalignError as e:
        st.error(str(e))
        return None


def active_model_row():
    return active_model(store())


# --- sign-in -----------------------------------------------------------------------------------------

def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def current_user() -> dict | None:
    """``{"id", "name", "role"}`` of the signed-in user, from the session or from OIDC (``st.login``)."""
    user = st.session_state.get("user")
    if user is not None:
        return user
    if _oidc_configured() and getattr(st.user, "is_logged_in", False):
        v = account_for_sign_on(store(), str(st.user.get("email") or st.user.get("sub")))
        st.session_state["user"] = {"id": v.id, "name": v.name, "role": v.role}
        return st.session_state["user"]
    return None


def sign_in_page() -> None:
    st.title("galaxalign")
    st.caption("Galaxy morphology by citizen scientists, with a model that learns from you.")
    with st.form("signin"):
        name = st.text_input("Name", key="signin_name")
        password = st.text_input("Password", type="password", key="signin_password")
        ok = st.form_submit_button("Sign in", type="primary")
    if ok:
        v = authenticate(store(), name.strip(), password)
        if v is None:
            time.sleep(0.5)
            st.error("Unknown name or wrong password.")
        else:
            st.session_state["user"] = {"id": v.id, "name": v.name, "role": v.role}
            st.rerun()
    if _oidc_configured():
        st.button("Sign in with your institution", on_click=st.login, key="signin_oidc")
    st.caption("No account? An admin creates one with `galaxalign user add NAME`.")


def sign_out() -> None:
    st.session_state.clear()
    if _oidc_configured() and getattr(st.user, "is_logged_in", False):
        st.logout()


def require(role: str) -> dict:
    """Stop the page unless the signed-in user has ``role`` or above (checked against the store)."""
    user = current_user()
    if user is None:
        st.error("Please sign in.")
        st.stop()
    try:
        require_role(store(), user["id"], role)
    except GalaxalignError as e:
        st.error(str(e))
        st.stop()
    return user


def show_error(e: Exception) -> None:
    """One line for the person; never a traceback."""
    if isinstance(e, GalaxalignError):
        st.error(str(e))
    elif isinstance(e, OSError):
        st.error(os_error_message(e))
    else:
        st.error(f"{e.__class__.__name__}: {(str(e).splitlines() or [''])[0][:200]}")


# --- Talk comments -----------------------------------------------------------------------------------

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
