"""Reset password: the form behind a one-time reset link an admin handed over."""
import streamlit as st

from common import sentence, store
from galaxalign.access import read_link
from galaxalign.errors import GalaxalignError
from galaxalign.store import check_link, reset_password

S = st.session_state
st.title("Choose a new password")
token = S.get("reset_token")
if not token:
    st.info("Open the reset link an admin gave you.")
    st.stop()
try:
    link_id = read_link(store(), token, "reset")
    who = check_link(store(), link_id, "reset")["volunteer"]
except GalaxalignError as e:
    st.error(sentence(e))
    st.stop()
st.caption(f"For the account **{who}**.")
with st.form("reset"):
    pw1 = st.text_input("New password", type="password", key="reset_pw1", max_chars=1024)
    pw2 = st.text_input("Again", type="password", key="reset_pw2", max_chars=1024)
    ok = st.form_submit_button("Set password", type="primary")
if ok:
    if pw1 != pw2:
        st.error("The two passwords differ.")
    else:
        try:
            name = reset_password(store(), link_id, pw1)
        except GalaxalignError as e:
            st.error(sentence(e))
        else:
            S.pop("reset_token", None)
            st.query_params.clear()
            st.success(f"Password changed for {name}. Sign in with it now.")
