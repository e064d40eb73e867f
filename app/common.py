"""Shared, cached resources of the app pages. Compute lives in ``galaxalign``; this only caches it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from galaxalign.data import Survey, SurveyError, load_survey
from galaxalign.symbols import SymbolError, render_symbol, symbol_path
from galaxalign.workspace import Workspace, default_workspace


@st.cache_resource
def get_workspace() -> Workspace:
    return default_workspace()


@st.cache_resource(show_spinner="Opening the survey…")
def get_survey(path: str) -> Survey:
    """Shared by all sessions: a Survey opens its HDF5 file per read, so it is thread-safe."""
    return load_survey(path)


@st.cache_data(max_entries=2048)
def symbol_image(name: str, size: int = 96) -> np.ndarray:
    """The committed PNG when present (what volunteers see everywhere), else drawn on the fly."""
    p = symbol_path(name)
    if p.exists():
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB").resize((size, size), Image.LANCZOS))
    return np.asarray(render_symbol(name, size))


def display(img: np.ndarray, size: int = 160) -> np.ndarray:
    """Upscale a small cutout for the screen without blurring the pixels into mush."""
    if img.shape[0] >= size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))


def current_survey() -> Survey | None:
    """The workspace's demo survey, or None with a message on the page saying what to run."""
    ws = get_workspace()
    path = ws.demo_survey
    if not path.exists():
        st.warning(f"No survey at `{path}`. Run `make run` (or `galaxalign demo`) to render the demo survey.")
        return None
    try:
        return get_survey(str(path))
    except SurveyError as e:
        st.error(str(e))
        return None


__all__ = ["get_workspace", "get_survey", "symbol_image", "display", "current_survey", "SymbolError", "Path"]
