"""Hunt: find the rare galaxies of a kind, a grid at a time (GalaxySD §4.3).

Researchers start a hunt from example galaxies, a text, a symbol or a class; volunteers confirm or
reject a grid of candidates (mouse, or the keyboard: arrows move, Space marks, Enter sends). Each
grid is stored in one transaction, one vote per galaxy; the next grid is ranked with what was decided.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from common import (active_model_row, current_survey, display, get_embeddings, get_model, require, show_error,
                    store, picked_survey_row)
from galaxalign.errors import GalaxalignError
from galaxalign.hunt import GRID, hunt_query, next_grid, next_round, start_query
from galaxalign.store import (ODD_REASONS, create_hunt, galaxy_flag_counts, hunt_votes, list_hunts, record_hunt_votes,
                              require_role)

user = require("volunteer")
S = st.session_state
COLS = 6
st.title("Hunt")
row = picked_survey_row()
survey = current_survey(row)
mv = active_model_row()
if row is None or survey is None or mv is None or not mv.embeddings_path:
    st.info("A hunt needs a registered survey and an active model with embeddings (re-train or embed first).")
    st.stop()
try:
    emb, preds = get_embeddings(str(Path(mv.embeddings_path) / row.name))
except GalaxalignError as e:
    show_error(e)
    st.stop()
if len(preds) != len(survey):
    st.info(f"The active model's embeddings cover another survey ({len(preds):,} galaxies, not {len(survey):,}).")
    st.stop()
probs = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
ls = survey.label_set

if user["role"] in ("researcher", "admin"):
    with st.expander("Start a hunt", expanded=not list_hunts(store(), row.id)):
        with st.form("hunt_new"):
            name = st.text_input("Name", key="hunt_name", placeholder="cigars")
            examples = st.text_input("Example galaxies (ids, comma-separated)", key="hunt_examples")
            flagged_as = st.selectbox("…and/or the galaxies volunteers flagged as odd for", ["(none)", *ODD_REASONS],
                                      key="hunt_flagged")
            text = st.text_input("…or a text", key="hunt_text", placeholder="a smooth galaxy shaped like a cigar")
            symbols = ["(none)"] + ([c.symbol for c in ls] if ls is not None else [])
            symbol = st.selectbox("…or a symbol", symbols, key="hunt_symbol")
            target = st.selectbox("Target class (its probability joins the ranking)", ["(none)"] + survey.class_names,
                                  key="hunt_target")
            if st.form_submit_button("Start the hunt", key="hunt_start"):
                seeds = examples.split(",")
                if flagged_as != "(none)":
                    odd = galaxy_flag_counts(store(), row.id, reason=flagged_as)
                    seeds += [i for i in odd.id_str[odd.odd > 0] if i not in seeds]
                query = hunt_query(seeds, text, None if symbol == "(none)" else symbol,
                                   None if target == "(none)" else survey.class_names.index(target))
                try:
                    require_role(store(), user["id"], "researcher")
                    create_hunt(store(), row.id, name.strip(), query, created_by=user["id"])
                    S["hunt_pick"] = name.strip()
                    st.success(f"Hunt {name.strip()!r} started.")
                except GalaxalignError as e:
                    show_error(e)

hunts = list_hunts(store(), row.id)
if not hunts:
    st.info("No hunt in this survey yet. A researcher starts one above.")
    st.stop()
names = [h.name for h in hunts]
if S.get("hunt_pick") not in names:
    S["hunt_pick"] = names[-1]
pick = st.selectbox("Hunt", names, key="hunt_pick")
hunt = hunts[names.index(pick)]
votes = hunt_votes(store(), hunt.id)
q = hunt.query
target = q.get("target_class")


def new_grid() -> None:
    """Rank the next grid: nothing anyone decided, nor the examples; the query moved by the decisions."""
    try:
        q0 = start_query(emb, preds.id_str.to_numpy(), get_model(mv.checkpoint_path, mv.sha256), q)
    except GalaxalignError as e:
        S["hunt_error"] = str(e)
        return
    rows = next_grid(emb, preds.id_str.to_numpy(), q0, probs, q, votes)
    S["hunt_grid"] = {"hunt": hunt.id, "rows": [int(r) for r in rows], "cursor": 0}
    for k in range(GRID):
        S[f"hunt_mark_{k}"] = False


if (S.get("hunt_grid") or {}).get("hunt") != hunt.id:  # a new hunt, or the grid just sent
    new_grid()
grid = S.get("hunt_grid") or {"rows": [], "cursor": 0}


def move(step: int) -> None:
    n = len(grid["rows"])
    if n:
        grid["cursor"] = (grid["cursor"] + step) % n


def toggle() -> None:
    k = f"hunt_mark_{grid['cursor']}"
    S[k] = not S.get(k, False)


def send() -> None:
    """Store the grid (one transaction), then let the next run rank a new one."""
    decisions = {str(survey.id_str[r]): bool(S.get(f"hunt_mark_{k}", False)) for k, r in enumerate(grid["rows"])}
    try:
        require_role(store(), user["id"], "volunteer")
        n = record_hunt_votes(store(), hunt.id, user["id"], decisions, round=next_round(votes))
        S["hunt_flash"] = f"Stored {n} decisions ({sum(decisions.values())} confirmed)."
        S["hunt_grid"] = None
    except GalaxalignError as e:
        S["hunt_send_error"] = str(e)


done = votes.status.eq("confirmed").sum() if len(votes) else 0
looking = ", ".join(filter(None, [f"{len(q.get('examples', []))} examples" if q.get("examples") else None,
                                  f"“{q['text']}”" if q.get("text") else None, q.get("symbol"),
                                  survey.class_names[target] if target is not None else None]))
st.caption(f"Looking for: {looking}. {len(votes):,} candidates decided so far, {done:,} confirmed. "
           "Mark the galaxies that are what the hunt looks for, then send the grid.")
if S.pop("hunt_error", None):
    st.error("This hunt cannot rank candidates with the active model (its example galaxies are not embedded).")
if not grid["rows"]:
    st.success("Every candidate has been decided.")
else:
    keys = st.columns([1, 1, 1, 1, 2, 3])
    keys[0].button("◀", key="hunt_left", shortcut="Left", on_click=move, args=(-1,), help="previous (←)")
    keys[1].button("▶", key="hunt_right", shortcut="Right", on_click=move, args=(1,), help="next (→)")
    keys[2].button("▲", key="hunt_up", shortcut="Up", on_click=move, args=(-COLS,), help="row above (↑)")
    keys[3].button("▼", key="hunt_down", shortcut="Down", on_click=move, args=(COLS,), help="row below (↓)")
    keys[4].button("Mark / unmark", key="hunt_toggle", shortcut="Space", on_click=toggle, help="Space")
    keys[5].button(f"Send these {len(grid['rows'])} decisions", key="hunt_send", type="primary", shortcut="Enter",
                   on_click=send)
    cols = st.columns(COLS)
    images = survey.images(np.array(grid["rows"]))
    for k, (r, img) in enumerate(zip(grid["rows"], images)):
        with cols[k % COLS].container(border=k == grid["cursor"]):
            st.image(display(img, 128), width="stretch")
            st.checkbox(("▶ " if k == grid["cursor"] else "") + f"`{survey.id_str[r]}`", key=f"hunt_mark_{k}")
    if S.get("hunt_send_error"):
        st.error(S.pop("hunt_send_error"))
if S.get("hunt_flash"):
    st.toast(S.pop("hunt_flash"))

confirmed = votes[votes.status == "confirmed"] if len(votes) else votes
if len(confirmed):
    st.subheader(f"Confirmed ({len(confirmed):,})")
    table = pd.DataFrame({"id_str": confirmed.id_str, "votes for": confirmed.confirmed, "against": confirmed.rejected,
                          "round": confirmed.first_round + 1})
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Download the confirmed list (CSV)", table.to_csv(index=False).encode(),
                       file_name=f"hunt-{hunt.name}.csv", mime="text/csv", key="hunt_csv")
