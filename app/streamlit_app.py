"""The galaxalign app: sign-in and routing only. Run with ``streamlit run app/streamlit_app.py``.

Pages are chosen from the signed-in user's role; every privileged action is checked again on the
server by ``galaxalign.store.require_role``.
"""
import streamlit as st

from common import current_user, sign_in_page, sign_out

st.set_page_config(page_title="galaxalign", page_icon="🌌", layout="wide")

user = current_user()
if user is None:
    st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:", url_path="signin")]).run()
    st.stop()

PAGES = {
    "classify": st.Page("views/classify.py", title="Classify", icon=":material/touch_app:", url_path="classify"),
    "progress": st.Page("views/progress.py", title="My progress", icon=":material/insights:", url_path="progress"),
    "gallery": st.Page("views/gallery.py", title="Gallery", icon=":material/grid_view:", url_path="gallery"),
    "hunt": st.Page("views/hunt.py", title="Hunt", icon=":material/travel_explore:", url_path="hunt"),
    "talk": st.Page("views/talk.py", title="Talk", icon=":material/forum:", url_path="talk"),
    "explore": st.Page("views/explore.py", title="Explore", icon=":material/scatter_plot:", url_path="explore"),
    "admin": st.Page("views/admin.py", title="Admin", icon=":material/admin_panel_settings:", url_path="admin"),
}
ROLE_PAGES = {"volunteer": ["classify", "talk", "hunt", "progress", "gallery"],
              "researcher": ["classify", "talk", "hunt", "progress", "gallery", "explore"],
              "admin": ["classify", "talk", "hunt", "progress", "gallery", "explore", "admin"]}
pages = [PAGES[p] for p in ROLE_PAGES[user["role"]]]

with st.sidebar:
    st.markdown(f"Signed in as **{user['name']}** · {user['role']}")
    st.button("Sign out", on_click=sign_out, key="sign_out")
st.navigation(pages).run()
