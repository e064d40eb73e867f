"""The galaxalign app: who is here, and routing only. Run with ``streamlit run app/streamlit_app.py``.

A visitor lands on the project's home page and may classify at once as a guest (where the project allows
it), join, or sign in; ``?invite=…`` and ``?reset=…`` links open the join and reset forms. Signed-in
pages are chosen from the account's role, read from the store on every run (a role change or a
suspension applies on the next request); every privileged action is checked again on the server by
``galaxalign.store.require_role``.
"""
import streamlit as st

from common import current_user, sentence, settings, sign_out, store
from galaxalign.store import NotFound, get_volunteer

st.set_page_config(page_title=settings().title, page_icon="🌌", layout="wide")

user = current_user()
if user is not None:  # the role as stored now, not as it was at sign-in
    try:
        v = get_volunteer(store(), user["id"])
    except NotFound:
        v = None
    if v is None or not v.active or v.suspended_at is not None:
        st.session_state.pop("user", None)
        user = None
        if v is not None and v.suspended_at is not None:
            st.session_state["signin_error"] = sentence(f"Account {v.name!r} is suspended: {v.suspended_reason}")
    else:
        user = st.session_state["user"] = {"id": v.id, "name": v.name, "role": v.role}

PAGES = {  # name: (page file, title, icon)
    "home": ("views/home.py", "Home", ":material/home:"),
    "classify": ("views/classify.py", "Classify", ":material/touch_app:"),
    "join": ("views/join.py", "Join", ":material/person_add:"),
    "signin": ("views/signin.py", "Sign in", ":material/login:"),
    "reset": ("views/reset.py", "Reset password", ":material/key:"),
    "progress": ("views/progress.py", "My progress", ":material/insights:"),
    "gallery": ("views/gallery.py", "Gallery", ":material/grid_view:"),
    "hunt": ("views/hunt.py", "Hunt", ":material/travel_explore:"),
    "talk": ("views/talk.py", "Talk", ":material/forum:"),
    "explore": ("views/explore.py", "Explore", ":material/scatter_plot:"),
    "admin": ("views/admin.py", "Admin", ":material/admin_panel_settings:"),
    "people": ("views/accounts.py", "People", ":material/group:"),
}
ROLE_PAGES = {"guest": ["home", "classify", "progress", "join", "signin"],
              "volunteer": ["home", "classify", "talk", "hunt", "progress", "gallery"],
              "researcher": ["home", "classify", "talk", "hunt", "progress", "gallery", "explore"],
              "admin": ["home", "classify", "talk", "hunt", "progress", "gallery", "explore", "admin", "people"]}
cfg = settings()
params = st.query_params
if user is None:
    names = ["home"] + (["classify"] if cfg.guests else []) + (["join"] if cfg.join == "open" or "invite" in params else [])
    names += ["signin"] + (["reset"] if "reset" in params else [])
else:
    names = list(ROLE_PAGES[user["role"]])
    if user["role"] == "guest" and cfg.join != "open" and "invite" not in params:
        names.remove("join")
# an invitation or reset link opens its form first; the token waits in the session for that form
for kind, page in (("invite", "join"), ("reset", "reset")):
    if kind in params and page in names:
        st.session_state[f"{kind}_token"] = params[kind]
# visitors and guests land on the project's home page; people with an account on Classify
landing = "home" if user is None or user["role"] == "guest" else "classify"
default = next((p for k, p in (("invite", "join"), ("reset", "reset")) if k in params and p in names), landing)
pages = [st.Page(PAGES[n][0], title=PAGES[n][1], icon=PAGES[n][2], url_path=n, default=n == default) for n in names]
if "invite" in params and user is not None and user["role"] != "guest":
    st.info("You are signed in already: sign out to use an invitation link for a new account.")

with st.sidebar:
    if user is None:
        st.caption("Browsing as a visitor")
    elif user["role"] == "guest":
        st.markdown(f"Classifying as guest **{user['name']}**")
        st.caption("Join to keep your work under your own name: your votes come with you.")
    else:
        st.markdown(f"Signed in as **{user['name']}** · {user['role']}")
        st.button("Sign out", on_click=sign_out, key="sign_out")
st.navigation(pages).run()
