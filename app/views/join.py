"""Join: one short form — name, password, optional e-mail. Open projects take anyone; invite-only ones
take the holder of an invitation link (signed, expiring, single-use); closed ones nobody. A guest who
joins keeps everything they did as a guest: their guest row becomes the account."""
import streamlit as st

from common import client_address, current_user, doorkeeper, sentence, settings, store
from galaxalign.access import Throttled, read_link
from galaxalign.errors import GalaxalignError
from galaxalign.passwords import MIN_LENGTH
from galaxalign.store import check_link, sign_up

S = st.session_state
cfg = settings()
user = current_user()
st.title(f"Join {cfg.title}")

link_id, granted = None, "volunteer"
token = S.get("invite_token")
if token:
    try:
        link_id = read_link(store(), token, "invite")
        granted = check_link(store(), link_id, "invite")["role"] or "volunteer"
    except GalaxalignError as e:
        st.error(sentence(e))
        st.stop()
    st.success(f"You have been invited to join as a **{granted}**.")
elif cfg.join == "closed":
    st.info("Joining is closed for this project at the moment.")
    st.stop()
elif cfg.join == "invite":
    st.info("This project is invitation-only: open the invitation link an admin sent you.")
    st.stop()

if user is not None and user["role"] == "guest":
    st.caption(f"You have been classifying as **{user['name']}**: your votes, favourites and progress come with you.")
elif user is not None:
    st.info(f"You are signed in as {user['name']}.")
    st.stop()

with st.form("join"):
    name = st.text_input("Name", key="join_name", max_chars=200,
                         help="2–40 letters, digits, '.', '_' or '-'. Shown beside your comments.")
    password = st.text_input("Password", type="password", key="join_password", max_chars=1024,
                             help=f"At least {MIN_LENGTH} characters, not easy to guess — a few uncommon words work well.")
    email = st.text_input("E-mail (optional)", key="join_email", max_chars=320,
                          help="Only for the project's team to reach you; never shown to others.")
    ok = st.form_submit_button("Join", type="primary")
if ok:
    try:
        doorkeeper().check_sign_up(client_address())
        vid = sign_up(store(), name, password, email or None,
                      guest=user["id"] if user is not None else None, link=link_id)
    except (GalaxalignError, Throttled) as e:
        st.error(sentence(e))
    else:
        doorkeeper().count_sign_up(client_address())
        S.pop("invite_token", None)
        st.query_params.clear()
        S["user"] = {"id": vid, "name": name.strip(), "role": granted}
        S["welcome"] = ("Welcome! Your classifications as a guest are yours now: see **My progress**."
                        if user is not None else "Welcome! Press **Start classifying** to begin.")
        st.rerun()
