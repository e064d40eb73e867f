"""My progress: a volunteer's classifications, how their agreement with the crowd and with the gold
standard grows, their favourites and odd flags, their Talk comments and the comments that mention them."""
import json

import numpy as np
import pandas as pd
import streamlit as st

from common import TALK_CSS, current_survey, current_user, display, require, show_comment, sign_out, store, picked_survey_row
from galaxalign.errors import GalaxalignError
from galaxalign.store import erase_account, mentions_of, my_data, volunteer_comments, volunteer_flags, volunteer_history

if current_user() is None:
    st.info("Nothing here yet: classify a galaxy first — your progress shows up here.")
    st.stop()
user = require("guest")
st.title("My progress")
if (hello := st.session_state.pop("welcome", None)):
    st.success(hello)


def my_data_section() -> None:
    """The volunteer's own data, to take away or to erase (votes are kept, anonymised: see the docs)."""
    with st.expander("My data: download or delete"):
        st.download_button("Download my data (JSON)", json.dumps(my_data(store(), user["id"]), indent=1),
                           file_name=f"galaxalign-{user['name']}.json", mime="application/json", key="me_download")
        st.markdown("**Delete my account.** Your name, e-mail and password are erased and your comments are shown as "
                    "by *[deleted]*. Your classifications stay in the science results, anonymised, so the labels "
                    "built from them do not change.")
        typed = st.text_input("Type your name to confirm", key="me_erase_name")
        if st.button("Delete my account", key="me_erase", disabled=typed.strip() != user["name"]):
            try:
                erase_account(store(), user["id"], user["id"])
            except GalaxalignError as e:
                st.error(str(e))
            else:
                sign_out()
                st.rerun()


def talk_section() -> None:
    """The volunteer's own Talk comments and those that mention them, rendered as Talk renders them."""
    mine, mentioned = volunteer_comments(store(), user["id"]), mentions_of(store(), user["id"])
    if len(mine) or len(mentioned):
        st.html(TALK_CSS)
    for frame, title in ((mine, "My comments"), (mentioned, "Mentions of me")):
        if len(frame):
            st.subheader(f"{title} ({len(frame):,})")
            for c in frame.head(20).itertuples():
                with st.container(border=True):
                    show_comment(c, on_galaxy=True)


hist = volunteer_history(store(), user["id"])
if hist.empty:
    st.info("No classifications yet. Every galaxy you classify shows up here, with how your answers compare "
            "with the crowd's and with galaxies whose answer experts know.")
    talk_section()
    my_data_section()
    st.stop()

last = hist.iloc[-1]
pct = lambda v: "—" if v is None or np.isnan(v) else f"{v:.0%}"  # noqa: E731
c1, c2, c3, c4 = st.columns(4)
c1.metric("Classifications", f"{len(hist):,}")
c2.metric("Agreement with the crowd", pct(last.crowd_agreement),
          help="On galaxies someone else classified too: how often your answer is the consensus")
c3.metric("Gold standard", pct(last.gold_accuracy), help="On galaxies experts have labelled: how often you were right")
c4.metric("Favourites", f"{int((volunteer_flags(store(), user['id']).kind == 'favourite').sum()):,}")

curve = pd.DataFrame({"classification": np.arange(1, len(hist) + 1), "with the crowd": hist.crowd_agreement,
                      "with the gold standard": hist.gold_accuracy}).set_index("classification")
st.line_chart(curve, height=260, y_label="agreement so far", x_label="your classifications")

row = picked_survey_row()
survey = current_survey(row)
flags = volunteer_flags(store(), user["id"])
if survey is not None and len(flags):
    ids = {s: i for i, s in enumerate(survey.id_str.astype(str))}
    for kind, title in (("favourite", "My favourites"), ("odd", "Galaxies I flagged as odd")):
        mine = flags[(flags.kind == kind) & flags.id_str.isin(ids)]
        if not len(mine):
            continue
        st.subheader(f"{title} ({len(mine):,})")
        cols = st.columns(6)
        for k, (gid, reason) in enumerate(zip(mine.id_str[:24], mine.reason[:24])):
            with cols[k % 6]:
                st.image(display(survey.image(ids[gid]), 128), width="stretch")
                st.caption(f"`{gid}`" + (f"  \n{reason}" if isinstance(reason, str) else ""))

talk_section()
with st.expander("Every classification"):
    st.dataframe(hist[["created_at", "id_str", "answer", "consensus", "n_votes", "gold"]].iloc[::-1],
                 hide_index=True, width="stretch")
my_data_section()
