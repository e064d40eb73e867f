"""Classify: one galaxy at a time, Galaxy Zoo style, with the model's proposal pre-selected.

The vote is written (one transaction) before the next galaxy is chosen; a refresh starts a new
galaxy and a repeated click on a finished galaxy is recognised as the same vote, never a second one.
"""
import logging
import time

import numpy as np
import streamlit as st

from common import (active_model_row, classifier, client_address, current_survey, display, doorkeeper, ensure_identity,
                    get_workspace, model_learning, settings, store, picked_survey_row, symbol_png)
from galaxalign.access import Throttled
from galaxalign.jobs import maybe_refresh
from galaxalign.store import (ODD_REASONS, DuplicateVote, comment_counts, get_galaxy, get_survey, get_volunteer,
                              mark_tutorial_seen, next_galaxy_for, prediction_for, record_classification, set_flag,
                              volunteer_flags, volunteer_stats)
from galaxalign.ood import TaskProposal, task_proposal
from galaxalign.store import FLAT_TASK
from galaxalign.taxonomy import GZ2_TREE
from galaxalign.viewing import VIEW_STRETCHES, ZOOMS, adjust_view

user = classifier()  # an account, this session's guest, or a visitor (a guest from their first vote)
row = picked_survey_row()
survey = current_survey(row)
if row is None or survey is None:
    st.info("No survey is registered yet. An admin runs `galaxalign demo` or imports one on the Admin page.")
    st.stop()
ls = survey.label_set if row.workflow == "gz2" else None
S = st.session_state
log = logging.getLogger("galaxalign.app")


def new_galaxy() -> None:
    who = (S.get("user") or user)["id"]  # a visitor's first vote made them a guest during this run
    g = next_galaxy_for(store(), who, row.id)
    S["cls_galaxy"] = None if g is None else g.id
    S["cls_path"] = []
    S["cls_started"] = time.time()


def commit(answers: list, galaxy: int) -> None:
    """Write the vote on ``galaxy``, then move on. A second click on the same galaxy is the same vote; a
    click or key meant for a galaxy no longer on screen (pressed twice quickly) votes for nothing."""
    gid = S["cls_galaxy"]
    if gid != galaxy:
        return
    tp = S.get("cls_task") or TaskProposal()
    try:
        me = ensure_identity()
        if me["role"] == "guest":
            doorkeeper().check_guest_vote(me["id"], client_address(), settings().guest_votes_per_minute)
        res = record_classification(store(), me["id"], gid, answers, seconds=round(time.time() - S["cls_started"], 2),
                                    proposal=tp.record, model_version_id=tp.model_version_id, blind=tp.blind)
        teach(row.name)
        if res.late:
            S["cls_toast"] = ("Others finished this galaxy while you looked at it: your answer is kept with it "
                              "(it no longer changes its label). Thank you!")
    except DuplicateVote:
        pass  # already recorded (double click or a second tab): no vote lost or doubled
    except Throttled as e:
        S["cls_error"] = str(e)
        return
    except Exception as e:  # noqa: BLE001 - shown as one line, the galaxy stays on screen
        S["cls_error"] = str(e)
        return
    new_galaxy()


def teach(survey_name: str) -> None:
    """Every ``refresh_every`` votes on the survey, queue the refresh of its proposals (one voter of many
    is told to; the worker refits them in seconds). A queue that cannot be reached never costs the vote."""
    try:
        maybe_refresh(store(), survey_name, get_workspace())
    except Exception as e:  # noqa: BLE001 - the vote is stored; the next K votes try again
        log.warning("refresh of %s not queued: %s", survey_name, e)


def flag_odd(galaxy: int, id_str: str) -> None:
    """Flag ``galaxy`` as odd for the reason chosen (a callback: the button shows the flag in the same run)."""
    why = S.get("cls_odd_reason")
    try:
        set_flag(store(), ensure_identity()["id"], galaxy, "odd", reason=why)
        S["cls_toast"] = f"Flagged {id_str} as odd ({why}). Thank you — researchers see every flag."
    except Exception as e:  # noqa: BLE001 - shown as one line
        S["cls_flag_error"] = f"The flag was not saved: {e}"


def guide_row(symbol: str, name: str, help_text: str, size: int = 56) -> None:
    """One line of a field guide: the symbol, then the answer's name and what it means."""
    g1, g2 = st.columns([1, 5])
    g1.image(symbol_png(symbol, size), width=size)
    g2.markdown(f"**{name}** — {help_text}")


def answer_key(k: int) -> str | None:
    """The key of the k-th answer as shown: 1–9 (Streamlit shows it on the button; keys typed into a text
    box do not act)."""
    return str(k + 1) if k < 9 else None


if "cls_galaxy" not in S or S.get("cls_survey") != row.id:
    S["cls_survey"] = row.id
    new_galaxy()

# Streamlit cuts a button's label short ("Features or d…") when it shows a shortcut key beside it: an
# answer is read before it is clicked, so on this page the labels wrap between words, the key below.
# a phone (narrow screen): the galaxy first and no taller than ~30 % of the screen, the title and tallies
# folded away, the answers two to a row with small symbols — question and answers under the galaxy
st.html("""<style>
[data-testid="stMain"] .stButton .stMarkdownEllipsis, [data-testid="stMain"] .stButton .stMarkdownEllipsis p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  word-break: normal !important; overflow-wrap: normal !important; }
[data-testid="stMain"] .stButton [data-has-shortcut] { flex-wrap: wrap; justify-content: center; }
.st-key-cls_answers .stButton button, .st-key-cls_flags .stButton button { padding-left: 0.5rem; padding-right: 0.5rem; }
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-top: 0.5rem !important; }
  .st-key-cls_image img { max-height: 30vh; width: auto !important; margin: 0 auto; display: block; }
  .st-key-cls_heading, .st-key-cls_stats, .st-key-cls_meta, .st-key-cls_guest_hint { display: none; }
  .st-key-cls_answers [data-testid="stHorizontalBlock"] { flex-wrap: wrap !important; gap: 0.3rem; }
  .st-key-cls_answers [data-testid="stColumn"] {
    min-width: 46% !important; flex: 1 1 46% !important; }
  .st-key-cls_answers img { max-width: 36px !important; }
  .st-key-cls_question h3 { font-size: 1.1rem !important; padding: 0.25rem 0 0 !important; }
  .st-key-cls_withheld p { font-size: 0.8rem !important; }
  [data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] { gap: 0.5rem; }
}
</style>""")
# "?" opens the field guide. Streamlit's shortcuts take letters and digits only, so our own listener clicks
# the guide's button, once per page, never while a text box has the focus (our code: nothing a user typed)
st.html("""<script>
if (!window.__gaGuideKey) {
  window.__gaGuideKey = true;
  window.parent.document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.key !== "?" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    const b = window.parent.document.querySelector(".st-key-cls_guide button");
    if (b) { e.preventDefault(); b.click(); }
  });
}
</script>""", unsafe_allow_javascript=True)
with st.container(key="cls_heading"):
    st.title("Classify")
def tutorial_due() -> bool:
    if S.get("cls_tutorial"):
        return True
    if user["id"] is None:  # a visitor: once per browser session
        return not S.get("cls_tutorial_seen")
    return get_volunteer(store(), user["id"]).tutorial_seen_at is None and not S.get("cls_tutorial_seen")


def toggle_favourite(galaxy: int, on: bool) -> None:
    try:
        set_flag(store(), ensure_identity()["id"], galaxy, "favourite", on=on)
    except Exception as e:  # noqa: BLE001 - shown as one line
        S["cls_flag_error"] = f"The favourite was not saved: {e}"


if user["role"] == "guest" and settings().join == "open" and not S.get("cls_join_hint_off"):
    st.container(key="cls_guest_hint").caption(
        "Classifying as a guest. **Join** (one short form) to keep your work under your own name — "
        "everything you did as a guest comes with you.")
if tutorial_due():
    with st.container(border=True, key="cls_tutorial_box"):
        st.markdown("### How classifying works")
        st.markdown(
            "1. **One question at a time.** Look at the galaxy and pick the answer that fits — each answer has "
            "a symbol drawn the way Galaxy Zoo draws it. Keys **1–9** pick the answers in the order shown.\n"
            "2. **The model may propose an answer** (pre-selected, *Confirm* or **Enter**). It is often wrong: "
            "you are free to disagree, and your disagreement is what teaches it. Sometimes it proposes nothing, "
            "on purpose.\n"
            "3. **Your votes count with others'.** Several volunteers see each galaxy; their consensus becomes "
            "the label astronomers use and the model learns from.\n"
            "4. **Not sure?** The field guide explains every symbol. *Skip* (**S**) is fine; ☆ (**F**) keeps a "
            "galaxy in your favourites; ⚑ *Odd* tells researchers about a strange one.")
        if st.button("Start classifying", key="cls_tutorial_done", type="primary"):
            if user["id"] is not None:
                mark_tutorial_seen(store(), user["id"])
            S["cls_tutorial"], S["cls_tutorial_seen"] = False, True
            st.rerun()
mine = volunteer_stats(store(), user["id"]) if user["id"] is not None else []  # this volunteer's rows only
if len(mine):
    m = mine.iloc[0]
    agree = "—" if np.isnan(m.crowd_agreement) else f"{m.crowd_agreement:.0%}"
    n = int(m.votes)
    st.container(key="cls_stats").caption(
        f"You have classified **{n}** {'galaxy' if n == 1 else 'galaxies'} · the crowd agreed with you on "
        f"**{agree}** of those others classified too.")
if (toast := S.pop("cls_toast", None)):
    st.toast(toast)
if (flag_err := S.pop("cls_flag_error", None)):
    st.error(flag_err)
err = S.pop("cls_error", None)
if err:
    st.error(f"That vote was not saved: {err}")

if S["cls_galaxy"] is None:
    st.success("You have seen every galaxy that still needs votes. Thank you!")
    st.stop()

g = get_galaxy(store(), S["cls_galaxy"])
# a gold task may come from the survey's linked gold survey (rendered galaxies): drawn from its own file
source = survey if g.survey_id == row.id else current_survey(get_survey(store(), g.survey_id))
if source is None:
    st.stop()
img = source.image(g.idx)

# the model's proposal: (class, confidence, model version) and, for the tree, its path
mv = active_model_row()
pred = prediction_for(store(), g.id, mv.id) if mv else None
# a wrong pre-selected answer anchors volunteers: an unfamiliar galaxy or an unsure model proposes nothing
# and a small blind fraction of tasks shows nothing at all: the control that measures anchoring
S["cls_task"] = tp = task_proposal(pred, mv, row.blind_fraction, user["id"] or 0, g.id)
withheld = tp.reason
pred = pred if tp.shown else None
proposal_path = ([tuple(s) for s in ls[pred.top_class].path] if (pred is not None and ls is not None) else None)

left, right = st.columns([5, 6], gap="large")
with left:
    with st.popover("Display: zoom, stretch, invert", icon=":material/tune:"):  # folded: the galaxy comes first
        zoom = st.select_slider("Zoom", list(ZOOMS), value=1.0, key="cls_zoom")
        stretch = st.select_slider("Stretch", list(VIEW_STRETCHES), value="linear", key="cls_stretch")
        invert = st.toggle("Invert", key="cls_invert")
    st.container(key="cls_image").image(display(adjust_view(img, zoom, stretch, invert), 420), width="stretch")
    st.container(key="cls_meta").caption(f"`{g.id_str}`" + (f" · RA {g.ra:.4f}, Dec {g.dec:.4f}" if g.ra is not None
                                                                   else ""))
    mine_now = (volunteer_flags(store(), user["id"], galaxy=g.id) if user["id"] is not None  # this galaxy's only
                else None)
    fav = mine_now is not None and (mine_now.kind == "favourite").any()
    flags = st.container(horizontal=True, key="cls_flags")  # a row that wraps: each keeps its whole label
    flags.button("★ Favourite" if fav else "☆ Favourite", key="cls_fav", shortcut="F",
                 on_click=toggle_favourite, args=(g.id, not fav), help="Keep this galaxy in My favourites (F)")
    odd = mine_now is not None and (mine_now.kind == "odd").any()
    with flags.popover("⚑ Odd ✓" if odd else "⚑ Odd",
                       help="Something odd about this galaxy? Tell the researchers"):
        st.radio("What is odd about it?", ODD_REASONS, key="cls_odd_reason")
        st.button("Flag it", key="cls_odd_flag", on_click=flag_odd, args=(g.id, g.id_str))
    n_talk = comment_counts(store(), [g.id]).get(g.id, 0)
    if user["role"] == "guest":
        flags.caption(f":material/forum: {n_talk} comment{'s' if n_talk != 1 else ''} · join to talk" if n_talk
                      else ":material/forum: Join to talk")
    elif flags.button(f"Talk ({n_talk})" if n_talk else "Talk", key="cls_talk", icon=":material/forum:",
                      help="Discuss this galaxy with other volunteers and the science team"):
        S["talk_galaxy"], S["talk_view"], S["talk_find"] = g.id, "Thread", ""
        st.switch_page("views/talk.py")

with right:
    if mv is None and (learning := model_learning()) is not None:
        st.container(key="cls_learning").caption(
            f"The model is still learning ({learning['progress']:.0%}); its proposals appear here when it is ready. "
            "Your answers count all the same — they are what it learns from.")
    if withheld:
        st.container(key="cls_withheld").info(
            f"**No model proposal for this galaxy:** {withheld}. Your own judgement counts all the more.",
            icon=":material/help:")
    if pred is not None:
        name = survey.class_names[pred.top_class]
        st.markdown(f"**Model proposal:** {name} · confidence {pred.confidence:.0%}")
        st.button(f"✓ Confirm: {name}", type="primary", key="cls_confirm", width="stretch", shortcut="Enter",
                  on_click=commit, args=([list(s) for s in proposal_path] if proposal_path else [[FLAT_TASK, pred.top_class]],
                                         g.id))
    path = S["cls_path"]
    if ls is None:  # flat workflow: one question, the survey's classes with their own symbols and help
        flat = survey.label_set
        st.container(key="cls_question").subheader(flat.question if flat else "Which class is this galaxy?")
        if flat is not None:
            with st.container(key="cls_guide").popover("Field guide (?)", icon=":material/menu_book:"):
                for c in flat:
                    guide_row(c.symbol, c.name, c.help)
        cols = st.container(key="cls_answers").columns(min(4, len(survey.class_names)))
        for k, cname in enumerate(survey.class_names):
            with cols[k % len(cols)]:
                sym = flat[k].symbol if flat else "t01_features"
                st.image(symbol_png(sym, 72), width=72)
                st.button(cname, key=f"ans_flat_{k}", on_click=commit, args=([[FLAT_TASK, k]], g.id),
                          help=flat[k].help if flat else None, width="stretch", shortcut=answer_key(k),
                          type="primary" if pred is not None and pred.top_class == k else "secondary")
                if flat and flat[k].help:
                    st.caption(flat[k].help.split(". ")[0].rstrip(".") + ".")
    else:
        task_id = GZ2_TREE.task_after(path)
        task = GZ2_TREE[task_id]
        st.container(key="cls_question").subheader(task.question)
        with st.container(key="cls_guide").popover("Field guide for this question (?)", icon=":material/menu_book:"):
            for a in task.answers:
                guide_row(a.id, a.text, a.help)
        on_proposal = proposal_path is not None and [tuple(p) for p in path] == proposal_path[: len(path)]
        proposed = dict(proposal_path).get(task_id) if on_proposal else None

        def answer(asked: str, a_id: str, galaxy: int) -> None:
            """One answer to the question ``asked`` about ``galaxy``; a click or key that arrives after the
            page moved on (a double press, a stale button) answers nothing."""
            if S.get("cls_galaxy") != galaxy or GZ2_TREE.task_after(S["cls_path"]) != asked:
                return
            S["cls_path"] = S["cls_path"] + [[asked, a_id]]
            if GZ2_TREE[asked].next_task(a_id) is None:
                commit(S["cls_path"], galaxy)

        cols = st.container(key="cls_answers").columns(min(4, len(task.answers)))
        for k, a in enumerate(task.answers):
            with cols[k % len(cols)]:
                st.image(symbol_png(a.id, 80), width=80)
                st.button(a.text + (" ✓" if a.id == proposed else ""), key=f"ans_{a.id}", help=a.help,
                          type="primary" if a.id == proposed else "secondary", on_click=answer, args=(task_id, a.id, g.id),
                          shortcut=answer_key(k))
        if path:
            st.caption("Your answers so far: " + " → ".join(GZ2_TREE[t].answer(a).text for t, a in path))
    # a row that wraps rather than three columns: each button keeps its whole label beside its key
    moves = st.container(horizontal=True, key="cls_moves")
    moves.button("← Back", key="cls_back", disabled=not path, on_click=lambda: S.update(cls_path=S["cls_path"][:-1]),
                 shortcut="Backspace")
    moves.button("Skip this galaxy", key="cls_skip", on_click=new_galaxy, shortcut="S")
    moves.button("How it works", key="cls_tutorial_again", on_click=lambda: S.update(cls_tutorial=True))

# every symbol of the survey is drawn only when asked for: forty images on every run were most of the page
if st.toggle("Field guide: every symbol and what it means", key="cls_full_guide"):
    if ls is None and survey.label_set is not None:
        for c in survey.label_set:
            guide_row(c.symbol, c.name, c.help, size=64)
    for task in (GZ2_TREE.tasks.values() if ls is not None else ()):
        st.markdown(f"**{task.id} · {task.question}**")
        cols = st.columns(7)
        for k, a in enumerate(task.answers):
            with cols[k % 7]:
                st.image(symbol_png(a.id, 64), width=64)
                st.caption(f"**{a.text}** — {a.help}")
