"""People (admins): the project's doors and home page, and its accounts — list and search with activity,
change a role, suspend or reinstate with a reason, hand over a one-time password-reset link, invite,
erase on request. Every action is checked against the store at the moment of acting and written to the
audit log shown at the bottom."""
from __future__ import annotations

import streamlit as st

from common import PAGE_CSS, get_survey_rows, require, settings, show_error, store, _settings, _stats
from galaxalign.access import make_link
from galaxalign.errors import GalaxalignError
from galaxalign.store import (GUEST_VOTE_RULES, JOIN_MODES, MAX_HOME_TEXT, create_link, default_home_text, erase_account,
                              list_accounts, moderation_log, reinstate_account, set_project_settings, set_role,
                              suspend_account)
from galaxalign.talk import render

user = require("admin")
S = st.session_state
st.title("People")


def act(fn, ok: str) -> None:
    """Run one admin action; its outcome shows as one line on the next run."""
    try:
        out = fn()
        S["acc_flash"] = ok.format(out=out)
        _settings.clear()
        _stats.clear()
    except GalaxalignError as e:
        S["acc_flash_err"] = str(e)


def change_role(who: str) -> str:
    """Give ``who`` the role in the box as it is when the button is pressed; returns that role."""
    role = S["acc_new_role"]
    set_role(store(), user["id"], who, role)
    return role


if msg := S.pop("acc_flash", None):
    st.success(msg)
if msg := S.pop("acc_flash_err", None):
    st.error(msg)

tab_doors, tab_home, tab_people, tab_log = st.tabs(["Doors", "Home page", "Accounts", "Audit log"])

with tab_doors:
    cfg = settings()
    with st.form("acc_doors"):
        join = st.radio("Who may join", JOIN_MODES, index=JOIN_MODES.index(cfg.join), horizontal=True, key="acc_join",
                        format_func={"open": "anyone (sign-up form)", "invite": "by invitation link only",
                                     "closed": "nobody (closed)"}.get)
        guests = st.toggle("Visitors may classify without an account (as guests)", value=cfg.guests, key="acc_guests")
        rule = st.radio("Guest votes", GUEST_VOTE_RULES, index=GUEST_VOTE_RULES.index(cfg.guest_votes), horizontal=True,
                        key="acc_guest_votes",
                        format_func={"count": "count toward retirement like anyone's",
                                     "store": "stored, counted once the guest joins"}.get)
        rate = st.number_input("Guest votes per minute (per guest; ten times that per address)", 1, 10_000,
                               cfg.guest_votes_per_minute, key="acc_guest_rate")
        if st.form_submit_button("Save", type="primary"):
            act(lambda: set_project_settings(store(), user["id"], join=join, guests=guests, guest_votes=rule,
                                             guest_votes_per_minute=int(rate)), "Saved the project's doors.")
            st.rerun()
    st.markdown("**Invitation link** — signed, single-use, expiring; hand it to one person.")
    c1, c2, c3 = st.columns([2, 2, 1])
    inv_role = c1.selectbox("Role it grants", ["volunteer", "researcher", "admin"], key="acc_inv_role")
    inv_days = c2.number_input("Valid for (days)", 1, 90, 7, key="acc_inv_days")
    if c3.button("Make link", key="acc_inv_make"):
        try:
            S["acc_link"] = make_link(store(), create_link(store(), user["id"], "invite", role=inv_role,
                                                           hours=24 * int(inv_days)), "invite")
        except GalaxalignError as e:
            show_error(e)
    if S.get("acc_link"):
        st.code(S["acc_link"], language=None)

with tab_home:
    cfg = settings()
    rows = get_survey_rows()
    with st.form("acc_home"):
        title = st.text_input("Title", cfg.title, max_chars=120, key="acc_title")
        tagline = st.text_input("Tagline", cfg.tagline, max_chars=300, key="acc_tagline")
        text = st.text_area("Home page text (Markdown)", cfg.home_text or default_home_text(rows[0].kind if rows else None),
                            height=300, max_chars=MAX_HOME_TEXT, key="acc_home_text")
        c1, c2 = st.columns(2)
        preview = c1.form_submit_button("Preview")
        save = c2.form_submit_button("Save", type="primary")
    if preview or save:
        st.caption("Preview, as visitors will see it")
        st.html(PAGE_CSS + f'<div class="ga-comment ga-home">{render(text, set())}</div>')
    if save:
        act(lambda: set_project_settings(store(), user["id"], title=title.strip(), tagline=tagline.strip(),
                                         home_text=text), "Saved the home page.")
        st.rerun()

with tab_people:
    c1, c2 = st.columns([3, 1])
    find = c1.text_input("Search by name", key="acc_find", max_chars=80)
    role_filter = c2.selectbox("Role", ["any", "guest", "volunteer", "researcher", "admin"], key="acc_role_filter")
    people = list_accounts(store(), search=find or None, role=None if role_filter == "any" else role_filter)
    st.dataframe(people.drop(columns=["id"]), hide_index=True, width="stretch", column_config={
        "votes": st.column_config.NumberColumn(format="%d"), "comments": st.column_config.NumberColumn(format="%d")})
    if len(people):
        who = st.selectbox("Account", people.name.tolist(), key="acc_who")
        row = people[people.name == who].iloc[0]
        st.caption(f"**{who}** · {row.role} · {int(row.votes):,} votes · {int(row.comments):,} comments"
                   + (f" · suspended: {row.reason}" if row.suspended else ""))
        r1, r2, r3 = st.columns(3)
        with r1.container(border=True):
            new_role = st.selectbox("Role", ["volunteer", "researcher", "admin"], key="acc_new_role",
                                    index=["volunteer", "researcher", "admin"].index(row.role) if row.role != "guest" else 0)
            # callbacks read the boxes when pressed (S[...]): the values bound at the last run may be stale
            st.button("Change role", key="acc_set_role", disabled=row.role == "guest",
                      on_click=act, args=(lambda: change_role(who), f"{who} is now a {{out}}."))
        with r2.container(border=True):
            reason = st.text_input("Reason", key="acc_reason", max_chars=200)
            if row.suspended:
                st.button("Reinstate", key="acc_reinstate", on_click=act,
                          args=(lambda: reinstate_account(store(), user["id"], who, S.get("acc_reason") or None),
                                f"{who} is reinstated."))
            else:
                st.button("Suspend", key="acc_suspend", on_click=act,
                          args=(lambda: suspend_account(store(), user["id"], who, S.get("acc_reason", "")),
                                f"{who} is suspended: they can neither sign in nor vote."))
        with r3.container(border=True):
            if st.button("Password-reset link", key="acc_reset", disabled=row.role == "guest"):
                try:
                    S["acc_reset_link"] = (who, make_link(store(), create_link(store(), user["id"], "reset", who), "reset"))
                except GalaxalignError as e:
                    show_error(e)
            if S.get("acc_reset_link") and S["acc_reset_link"][0] == who:
                st.caption("Hand this to them; it works once, for 24 hours:")
                st.code(S["acc_reset_link"][1], language=None)
            confirm = st.text_input("Type the name to erase the account", key="acc_erase_name")
            st.button("Erase account", key="acc_erase", disabled=confirm.strip() != who, on_click=act,
                      args=(lambda: erase_account(store(), user["id"], who),
                            f"Erased {who}: their votes stay, anonymised as {{out}}."))

with tab_log:
    st.caption("Every account, door and moderation action, newest first, with who took it and why.")
    log = moderation_log(store(), limit=300)
    st.dataframe(log, hide_index=True, width="stretch")
