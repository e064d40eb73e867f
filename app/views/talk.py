"""Talk: a discussion thread per galaxy, #tags that collect galaxies, @mentions, and the recent comments.

Every comment is rendered by :func:`galaxalign.talk.render` (Markdown without raw HTML, then cleaned by
nh3): what a volunteer types can never act as markup on anyone's page. Admins hide, unhide and delete
comments and suspend volunteers from Talk here; every action goes to the moderation log (Admin page).
"""
import streamlit as st

from common import TALK_CSS, current_survey, display, require, show_comment, show_error, store
from galaxalign.errors import GalaxalignError
from galaxalign.store import (get_galaxy, get_survey, get_volunteer, galaxies_tagged, galaxy_comments, volunteer_names,
                              mentions_of, moderate_comment, post_comment, recent_comments, suspend_from_talk,
                              tag_counts)
from galaxalign.talk import MAX_COMMENT, parse

user = require("volunteer")
is_admin = user["role"] == "admin"
S = st.session_state
VIEWS = ("Recent", "Tags", "Thread")

st.html(TALK_CSS)
st.title("Talk")
st.caption("Discuss galaxies with other volunteers and the science team. Markdown works; **#tags** collect "
           "galaxies under a tag, **@name** tells someone. Be kind: moderators hide what is not.")


@st.cache_data(ttl=30, show_spinner=False)
def known_names() -> set[str]:
    return {n.lower() for n in volunteer_names(store())}


def open_thread(galaxy_id: int) -> None:
    S["talk_galaxy"], S["talk_view"], S["talk_find"] = int(galaxy_id), "Thread", ""


def open_tag(tag: str) -> None:
    S["talk_tag"], S["talk_view"] = tag, "Tags"


def thumbnail(survey_id: int, idx: int, size: int = 128):
    sv = current_survey(get_survey(store(), survey_id))
    return None if sv is None else display(sv.image(idx), size)


def comment_box(c, key: str, with_galaxy: bool = False) -> None:
    """One comment: who and when, the text rendered safely; moderators get hide / delete / suspend."""
    with st.container(border=True, key=f"talk_c_{key}_{c.comment_id}"):
        show_comment(c, known_names(), on_galaxy=with_galaxy)
        cols = st.columns([1, 1, 1, 3])
        if with_galaxy:
            cols[0].button("Open thread", key=f"talk_open_{key}_{c.comment_id}", on_click=open_thread,
                           args=(c.galaxy_id,))
        if is_admin:
            act = "unhide" if c.hidden else "hide"
            cols[1].button(act.capitalize(), key=f"talk_{act}_{key}_{c.comment_id}",
                           on_click=moderate, args=(c.comment_id, act))
            with cols[2].popover("Delete"):
                st.caption("Deleting cannot be undone; the text stays in the moderation log.")
                st.button("Delete for good", key=f"talk_del_{key}_{c.comment_id}", type="primary",
                          on_click=moderate, args=(c.comment_id, "delete"))
            if c.volunteer != user["name"]:
                with cols[3].popover(f"Suspend {c.volunteer}"):
                    why = f"talk_why_{key}_{c.comment_id}"
                    st.text_input("Reason", key=why, max_chars=200)
                    st.button("Suspend from Talk", key=f"talk_sus_{key}_{c.comment_id}",
                              on_click=suspend, args=(c.volunteer, why))


def moderate(comment_id: int, action: str) -> None:
    try:
        moderate_comment(store(), user["id"], int(comment_id), action)
        S["talk_msg"] = f"comment {comment_id}: {action}"
    except GalaxalignError as e:
        S["talk_err"] = str(e)


def suspend(name: str, reason_key: str) -> None:
    """The reason is read when the button is pressed (an argument bound at drawing time would be the text
    box's value before the admin typed)."""
    try:
        suspend_from_talk(store(), user["id"], name, reason=S.get(reason_key) or None)
        S["talk_msg"] = f"{name} is suspended from Talk"
    except GalaxalignError as e:
        S["talk_err"] = str(e)


if (msg := S.pop("talk_msg", None)):
    st.toast(msg)
if (err := S.pop("talk_err", None)):
    st.error(err)

if S.get("talk_view") not in VIEWS:
    S["talk_view"] = "Thread" if S.get("talk_galaxy") else "Recent"
view = st.segmented_control("Show", VIEWS, key="talk_view", label_visibility="collapsed") or "Recent"

if view == "Recent":
    mine = mentions_of(store(), user["id"])
    if len(mine):
        with st.expander(f"Mentions of you ({len(mine)})", icon=":material/alternate_email:"):
            for c in mine.head(20).itertuples():
                comment_box(c, "mention", with_galaxy=True)
    recent = recent_comments(store(), limit=30, include_hidden=is_admin)
    if recent.empty:
        st.info("No comments yet. Open a galaxy from Classify (:material/forum: Talk) and start the discussion.")
    for c in recent.itertuples():
        comment_box(c, "recent", with_galaxy=True)

elif view == "Tags":
    tags = tag_counts(store())
    if tags.empty:
        st.info("No tags yet: write #something in a comment and the galaxy is collected under it.")
        st.stop()
    options = list(tags.tag)
    if S.get("talk_tag") not in options:
        S["talk_tag"] = options[0]
    counts = dict(zip(tags.tag, tags.galaxies))
    tag = st.selectbox("Tag", options, key="talk_tag", format_func=lambda t: f"#{t} · {counts[t]} galaxies")
    found = galaxies_tagged(store(), tag)
    st.subheader(f"#{tag}: {len(found):,} {'galaxy' if len(found) == 1 else 'galaxies'}")
    cols = st.columns(6)
    for k, r in enumerate(found.head(60).itertuples()):
        with cols[k % 6], st.container(key=f"talk_tagged_{r.galaxy_id}"):
            thumb = thumbnail(get_galaxy(store(), r.galaxy_id).survey_id, r.idx)
            if thumb is not None:
                st.image(thumb, width="stretch")
            st.caption(f"`{r.id_str}` · {r.comments} comment{'s' if r.comments != 1 else ''}")
            st.button("Open thread", key=f"talk_tag_open_{r.galaxy_id}", on_click=open_thread, args=(r.galaxy_id,))

else:  # one galaxy's thread
    typed = st.text_input("Galaxy", key="talk_find", placeholder="a galaxy's id, as shown under its image")
    if typed.strip():
        try:
            S["talk_galaxy"] = get_galaxy(store(), typed.strip()).id
        except GalaxalignError as e:
            show_error(e)
            st.stop()
    gid = S.get("talk_galaxy")
    if gid is None:
        st.info("Pick a galaxy: type its id, open one from Recent or Tags, or press :material/forum: Talk on Classify.")
        st.stop()
    g = get_galaxy(store(), gid)
    left, right = st.columns([2, 5], gap="large")
    with left:
        thumb = thumbnail(g.survey_id, g.idx, 320)
        if thumb is not None:
            st.image(thumb, width="stretch")
        st.caption(f"`{g.id_str}`" + (f" · RA {g.ra:.4f}, Dec {g.dec:.4f}" if g.ra is not None else ""))
    with right:
        thread = galaxy_comments(store(), g.id, include_hidden=is_admin)
        st.subheader(f"{len(thread)} comment{'s' if len(thread) != 1 else ''} on {g.id_str}")
        tags_here = sorted({t for body in thread.body[~thread.hidden] for t in parse(body).tags})
        if tags_here:
            pills = f"talk_tags_{g.id}"
            st.pills("Tags on this galaxy", [f"#{t}" for t in tags_here], key=pills,
                     on_change=lambda: S.get(pills) and open_tag(S[pills][1:]))
        for c in thread.itertuples():
            comment_box(c, "thread")
        if get_volunteer(store(), user["id"]).talk_suspended_at is not None:
            st.warning("You are suspended from Talk: you can read, but not post. An admin can lift it.")
        else:
            with st.form(f"talk_post_{g.id}", clear_on_submit=True):
                body = st.text_area("Add to the discussion", key=f"talk_body_{g.id}", max_chars=MAX_COMMENT,
                                    placeholder="What do you see? Markdown works; #tag collects it, @name tells someone.")
                if st.form_submit_button("Post", type="primary"):
                    try:
                        post_comment(store(), user["id"], g.id, body)
                        st.rerun()
                    except GalaxalignError as e:
                        show_error(e)
