"""The Streamlit app, driven by streamlit.testing.v1.AppTest against a workspace fixture."""
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py")


@pytest.fixture
def workspace(tmp_path, synth_h5, monkeypatch):
    (tmp_path / "surveys").mkdir()
    shutil.copy(synth_h5, tmp_path / "surveys" / "demo.h5")
    monkeypatch.setenv("GALAXALIGN_WORKSPACE", str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    return tmp_path


def test_gallery_shows_galaxies_with_class_and_symbol(workspace):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Survey gallery"
    assert "60 galaxies" in at.caption[0].value
    # 24 galaxies on the first page, each an image plus a symbol
    assert len(at.get("image")) == 24 * 2
    at.selectbox(key="gallery_class").set_value("Barred Spiral").run()
    assert not at.exception
    assert any("A picture of a barred spiral galaxy" in m.value for m in at.markdown)
    captions = [c.value for c in at.caption[1:]]
    assert captions and all("Barred Spiral" in c for c in captions)


def test_missing_survey_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GALAXALIGN_WORKSPACE", str(tmp_path))
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "make run" in at.warning[0].value
