"""Home: the project's front page, for everyone — what it is for, how to help, how far it has come.

The text is the project's own Markdown (Admin → Project), rendered as Talk renders comments (no raw
HTML, safe links). The figures come from ``common.stats``: a few counts shared by every visitor and
refreshed at most every 30 s, never a scan per visit.
"""
import pandas as pd
import streamlit as st

from common import PAGE_CSS, current_survey, current_user, display, get_survey_rows, model_learning, settings, stats
from galaxalign.store import default_home_text
from galaxalign.talk import render

cfg = settings()
fig = stats()
user = current_user()
rows = get_survey_rows()

st.html(PAGE_CSS)
if (hello := st.session_state.pop("welcome", None)):
    st.success(hello)
st.title(cfg.title)
st.markdown(f"#### {cfg.tagline}")

# the way in first, above the text: on a phone the columns stack and a visitor should not scroll to start
c1, c2, _ = st.columns([1, 1, 1])
if user is not None or cfg.guests:
    if c1.button("Start classifying", type="primary", key="home_classify", icon=":material/touch_app:",
                 width="stretch"):
        st.switch_page("views/classify.py")
if user is None or user["role"] == "guest":
    if cfg.join == "open":
        if c2.button("Join the project", key="home_join", icon=":material/person_add:", width="stretch"):
            st.switch_page("views/join.py")
    elif cfg.join == "invite":
        c2.caption("Joining is by invitation: ask the project's team for a link.")
if user is None and not cfg.guests:
    st.caption("Sign in to classify.")

left, right = st.columns([3, 2], gap="large")
with left:
    text = cfg.home_text or default_home_text(rows[0].kind if rows else None)
    st.html(f'<div class="ga-comment ga-home">{render(text, set())}</div>')

with right:
    st.subheader("Progress")
    n = fig["galaxies"]
    done = fig["retired"] / n if n else 0.0
    st.progress(done, text=f"**{fig['retired']:,}** of **{n:,}** galaxies retired ({done:.0%})")
    m1, m2, m3 = st.columns(3)
    m1.metric("Galaxies", f"{n:,}")
    m2.metric("Classified", f"{fig['classified']:,}", help="Galaxies with at least one vote")
    m3.metric("Retired", f"{fig['retired']:,}", help="Galaxies whose volunteers agreed: labelled")
    m4, m5, m6 = st.columns(3)
    m4.metric("Volunteers", f"{fig['volunteers']:,}", help="People who classified, guests included")
    m5.metric("Classifications", f"{fig['classifications']:,}")
    m6.metric("Today", f"{fig['today']:,}", help="Classifications since midnight UTC")
    if (learning := model_learning()) is not None:
        # a visitor reads how far it has come; the job's own message (epochs, loss) is on the Admin page
        st.progress(learning["progress"], text="The model is learning from the first labels"
                    + (f" ({learning['progress']:.0%} done)" if learning["state"] == "running" else
                       " (waiting to start)") + ". Its proposals appear on Classify when it is ready.")
    per_day = fig["per_day"]
    if isinstance(per_day, pd.DataFrame) and per_day.classifications.sum() > 0:
        st.caption("Classifications per day, last 30 days")
        st.bar_chart(per_day.set_index("day"), height=160, y_label="", x_label="")


def strip(items, title: str) -> None:
    """A row of small galaxy images (``(survey id, idx, id_str)``)."""
    shown = []
    for sid, idx, id_str in items:
        sv = current_survey(rows_by_id[sid]) if sid in rows_by_id else None
        if sv is not None:
            shown.append((sv.image(idx), id_str))
    if shown:
        st.subheader(title)
        cols = st.columns(6)
        for k, (img, id_str) in enumerate(shown[:6]):
            cols[k].image(display(img, 128), width="stretch", caption=id_str)


rows_by_id = {r.id: r for r in rows}
strip(fig["retired_galaxies"], "Recently retired")
strip(fig["favourites"], "Volunteers' favourites")
