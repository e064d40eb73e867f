"""Admin: re-train, watch jobs, manage model versions, import surveys, volunteer statistics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from common import get_workspace, require, show_error, store
from galaxalign.errors import GalaxalignError
from galaxalign.importer import MAX_IMPORT_BYTES
from galaxalign.jobs import enqueue, reap_stale_jobs
from galaxalign.jobs.params import LEARN_FROM
from galaxalign.prepare import STRETCHES, Preparation
from galaxalign.taxonomy import LABEL_SETS
from galaxalign.store import (QUEUE_STRATEGIES, RETIREMENT_METHODS, active_model, activate_model, anchoring_estimate, list_jobs, list_model_versions,
                              list_surveys, moderation_log, require_role, retirement_summary, set_blind_fraction,
                              set_queue_strategy, set_refresh_every, set_retirement, suspend_from_talk,
                              volunteer_stats)

user = require("admin")
st.title("Admin")


def start_job(kind: str, params: dict) -> None:
    try:
        require_role(store(), user["id"], "admin")  # checked again at the moment of acting
        jid = enqueue(store(), kind, params, requested_by=user["id"], workspace=get_workspace())
        what = {"retrain": "re-training", "adapt": "adaptation"}.get(kind, kind)
        st.session_state["adm_flash"] = f"Queued {what} job {jid}. The worker picks it up."
    except GalaxalignError as e:
        st.session_state["adm_flash_err"] = str(e)


with st.sidebar:
    st.subheader("Re-train")
    s1 = st.number_input("Stage 1 epochs", 0, 200, 4, key="adm_s1")
    s2 = st.number_input("Stage 2 epochs", 0, 400, 8, key="adm_s2")
    scratch = st.checkbox("From scratch (not from the active model)", key="adm_scratch")
    force = st.checkbox("Activate even if not better", key="adm_force")
    learn_from = st.radio("Learn from", LEARN_FROM, key="adm_learn_from", horizontal=True,
                          help="consensus: one label per known or retired galaxy. votes: every galaxy's vote "
                               "counts as well (a galaxy with two votes already teaches, less than one with twenty).")
    surveys = [s.name for s in list_surveys(store())]
    sv = st.selectbox("Survey", surveys, key="adm_survey") if surveys else None
    st.button("Re-train now", type="primary", key="adm_retrain", disabled=sv is None, on_click=start_job,
              args=("retrain", {"survey": sv, "stage1_epochs": int(s1), "stage2_epochs": int(s2),
                                "from_scratch": scratch, "force_activate": force, "learn_from": learn_from},))
    st.subheader("Adapt to a survey")
    st.caption("Self-supervised training on the survey's own images, the classes kept from the model's survey, "
               "the two feature distributions aligned. Makes a candidate; the active model is not touched.")
    tgt = st.selectbox("Target survey", surveys, key="adm_adapt_survey") if surveys else None
    align = st.selectbox("Alignment", ["ot", "mmd", "none"], key="adm_adapt_align",
                         format_func=lambda a: {"ot": "optimal transport (POT)", "mmd": "MMD", "none": "none"}[a])
    a_ep = st.number_input("Epochs", 1, 50, 3, key="adm_adapt_epochs")
    st.button("Adapt now", key="adm_adapt", disabled=tgt is None, on_click=start_job,
              args=("adapt", {"survey": tgt, "align": align, "epochs": int(a_ep)},))

if msg := st.session_state.pop("adm_flash", None):
    st.success(msg)
if msg := st.session_state.pop("adm_flash_err", None):
    st.error(msg)


@st.fragment(run_every=2)
def jobs_panel() -> None:
    reap_stale_jobs(store(), workspace=get_workspace())
    jobs = list_jobs(store(), 20)
    running = [j for j in jobs if j.state in ("running", "queued")]
    for j in running:
        st.progress(j.progress, text=f"Job {j.id} · {j.kind} · {j.state} · {j.message or 'waiting for the worker'}")
        if j.log_tail:
            st.code("\n".join(j.log_tail.strip().splitlines()[-6:]), language=None)
    if not running:
        st.caption("No job is running.")
    if jobs:
        st.dataframe(pd.DataFrame([{"job": j.id, "kind": j.kind, "state": j.state, "progress": round(j.progress, 2),
                                    "message": j.message, "created": j.created_at, "finished": j.finished_at}
                                   for j in jobs]), hide_index=True, width="stretch")


st.subheader("Jobs")
jobs_panel()

st.subheader("Model versions")
versions = list_model_versions(store())
if versions:
    table = pd.DataFrame([{"version": m.name, "status": m.status, "accuracy": (m.metrics or {}).get("accuracy"),
                           "macro-F1": (m.metrics or {}).get("macro_f1"), "mAP@5": (m.metrics or {}).get("map_at_5"),
                           "mAP": (m.metrics or {}).get("map"), "created": m.created_at,
                           "parent": next((p.name for p in versions if p.id == m.parent_id), None)}
                          for m in versions])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        k: st.column_config.NumberColumn(format="%.4f") for k in ("accuracy", "macro-F1", "mAP@5", "mAP")})
    adapted = [m for m in versions if "domain_auc_before" in (m.metrics or {})]
    if adapted:
        st.markdown("**Adaptations** — domain AUC: how well a classifier tells the model's features of its own "
                    "survey from the target's (1.0 two worlds, 0.5 mixed); accuracy: on the target's labelled "
                    "galaxies, where it has some, before and after — the figure that says whether it helped")
        st.dataframe(pd.DataFrame([{"version": m.name, "from": m.metrics.get("adapted_from"),
                                    "alignment": m.metrics.get("align"),
                                    "AUC before": m.metrics["domain_auc_before"],
                                    "AUC after": m.metrics["domain_auc_after"],
                                    "accuracy before": m.metrics.get("target_accuracy_before"),
                                    "accuracy after": m.metrics.get("target_accuracy_after"),
                                    "labelled": m.metrics.get("target_scored")} for m in adapted]),
                     hide_index=True, width="stretch")
    c1, c2 = st.columns([3, 1])
    choice = c1.selectbox("Version", [m.name for m in versions], key="adm_version",
                          index=next((i for i, m in enumerate(versions) if m.status == "active"), 0))
    if c2.button("Activate / roll back", key="adm_activate"):
        try:
            require_role(store(), user["id"], "admin")
            activate_model(store(), choice)
            st.session_state["adm_flash"] = f"{choice} is now the active model."
            st.rerun()
        except GalaxalignError as e:
            show_error(e)
else:
    st.caption("No model yet: `make run` trains the starter model, or press Re-train now.")

st.subheader("Import a survey")
up = st.file_uploader("An HDF5 survey (Galaxy10, GalaxyMNIST or FIRST schema), a FIRST zip, or a zip of images with "
                      "catalog.csv", type=["h5", "hdf5", "zip"], key="adm_upload",
                      max_upload_size=MAX_IMPORT_BYTES // (1024 * 1024))
st.caption("Larger surveys: `galaxalign import PATH --name NAME` on the server has no size limit.")
new_name = st.text_input("Survey name", key="adm_survey_name", placeholder="e.g. decals-dr10-sample")
c1, c2 = st.columns(2)
workflow = c1.radio("Workflow", ["gz2", "flat"], horizontal=True, key="adm_workflow",
                    format_func=lambda w: "GZ2 decision tree" if w == "gz2" else "flat class list")
label_sets = ["(from the file)", *LABEL_SETS]
ls_choice = c2.selectbox("Label set", label_sets, key="adm_labelset",
                         help="Classes with their prompts, help texts and symbols (YAML files; see docs/labelsets.md)")
label_set = None if ls_choice == label_sets[0] else ls_choice


def preparation_controls(detected: Preparation) -> Preparation | None:
    """The detected preparation, editable; None (with the error shown) when the settings are invalid."""
    p1, p2, p3, p4 = st.columns(4)
    cutout = p1.number_input("Cut-out (px, 0 = whole image)", 0, 4096, detected.cutout or 0, key="adm_prep_cutout")
    size = p2.number_input("Size (px, 0 = native)", 0, 1024, detected.size or 0, key="adm_prep_size")
    stretch = p3.selectbox("Stretch", STRETCHES, index=STRETCHES.index(detected.stretch), key="adm_prep_stretch")
    lo, hi = p4.slider("Clip percentiles", 0.0, 100.0, tuple(detected.clip), step=0.1, key="adm_prep_clip")
    try:
        return Preparation.from_dict({**detected.to_dict(), "cutout": int(cutout) or None, "size": int(size) or None,
                                      "stretch": stretch, "clip": [lo, hi]})
    except GalaxalignError as e:
        show_error(e)
        return None


if up is not None:
    from galaxalign.data import load_survey
    from galaxalign.importer import import_survey, staged_upload
    from galaxalign.prepare import detect_for_survey, preview_sheet

    key = f"{up.name}:{up.size}:{label_set}"
    try:
        if st.session_state.get("adm_prep_key") != key:  # detect once per upload, not on every rerun
            with staged_upload(get_workspace(), up.name, bytes(up.getbuffer())) as path:
                s = load_survey(path, label_set=label_set)
                detected, reasons = detect_for_survey(s)
                rng = np.random.default_rng(0)
                idx = np.sort(rng.choice(len(s), min(8, len(s)), replace=False))
                st.session_state.update(adm_prep_key=key, adm_prep_detected=detected.to_dict(),
                                        adm_prep_reasons=reasons, adm_prep_raw=s.raw_images(idx),
                                        adm_prep_names=[s.class_names[k] if k >= 0 else s.id_str[i]
                                                        for i, k in zip(idx, s.labels[idx])])
                for k in ("adm_prep_cutout", "adm_prep_size", "adm_prep_stretch", "adm_prep_clip"):
                    st.session_state.pop(k, None)
        detected = Preparation.from_dict(st.session_state["adm_prep_detected"])
        st.markdown("**Image preparation** — detected from the data:")
        st.markdown("\n".join(f"- {r}" for r in st.session_state["adm_prep_reasons"]))
        prep = preparation_controls(detected)
        if prep is not None:
            raw = st.session_state["adm_prep_raw"]
            prep.check(raw.shape[1:], up.name)
            st.image(preview_sheet(raw, prep, st.session_state["adm_prep_names"], tile=110),
                     caption="Before (raw, the cut-out marked) and after: what the model and volunteers will see",
                     width="stretch")
        if st.button("Import", key="adm_import", disabled=not new_name or prep is None, type="primary"):
            require_role(store(), user["id"], "admin")
            with st.spinner("Importing…"):
                res = import_survey(store(), get_workspace(), up.name, bytes(up.getbuffer()), new_name, workflow,
                                    label_set=label_set, preparation=prep)
            st.success(f"Imported {res['galaxies']:,} galaxies as {new_name!r} ({res['preparation_text']}). "
                       "Re-train or embed to give it predictions.")
    except (GalaxalignError, OSError) as e:  # OSError: the workspace's disk (full, read-only), one line too
        show_error(e)

st.subheader("Volunteers")
stats = volunteer_stats(store())
if len(stats):
    st.dataframe(stats[["volunteer", "role", "votes", "crowd_agreement", "accept_rate", "gold", "gold_accuracy"]],
                 hide_index=True, width="stretch")

st.subheader("Talk moderation")
st.caption("Comments are hidden, unhidden or deleted from the Talk page itself; every action, and every "
           "suspension, is logged here with who took it and why (a deleted comment's text is kept, shown as text).")
with st.form("adm_suspend"):
    c1, c2, c3 = st.columns([2, 3, 1])
    who = c1.text_input("Volunteer", key="adm_sus_name")
    why = c2.text_input("Reason", key="adm_sus_reason", max_chars=200)
    lift = c3.toggle("Lift", key="adm_sus_lift", help="Lift a suspension instead of imposing one")
    if st.form_submit_button("Lift the suspension" if lift else "Suspend from Talk"):
        try:
            suspend_from_talk(store(), user["id"], who.strip(), on=not lift, reason=why or None)
            st.success(f"{who.strip()} {'may post in Talk again' if lift else 'is suspended from Talk'}.")
        except GalaxalignError as e:
            show_error(e)
log = moderation_log(store(), limit=200)
if len(log):
    st.dataframe(log, hide_index=True, width="stretch")

st.subheader("Anchoring control")
st.caption("A blind fraction of tasks shows no proposal. Comparing them with the shown ones, on galaxies whose "
           "answer is known, measures how often a shown wrong proposal is taken instead of the volunteer's own "
           "answer (95 % interval, bootstrap over volunteers).")
surveys_now = list_surveys(store())
if surveys_now:
    pick = st.selectbox("Survey", [s.name for s in surveys_now], key="adm_anchor_survey")
    row = next(s for s in surveys_now if s.name == pick)
    frac = st.slider("Blind fraction", 0.0, 0.5, float(row.blind_fraction), 0.05, key="adm_blind")
    if frac != row.blind_fraction:
        require_role(store(), user["id"], "admin")
        set_blind_fraction(store(), pick, frac)
    est = anchoring_estimate(store(), pick)
    pct = lambda v: "–" if v is None else f"{v:.0%}"  # noqa: E731
    st.dataframe(pd.DataFrame({
        "tasks": ["proposal shown", "blind (hidden)"], "votes": [est["n_shown"], est["n_blind"]],
        "agree with the known answer": [pct(est["truth_agreement_shown"]), pct(est["truth_agreement_blind"])],
        "agree with the model": [pct(est["model_agreement_shown"]), pct(est["model_agreement_blind"])],
        "take a wrong proposal": [pct(est["follow_shown"]), pct(est["follow_blind"])]}),
        hide_index=True, width="stretch")
    if est["anchoring"] is None:
        st.info("Not enough votes yet on galaxies with a known answer where the model was wrong, shown and blind.")
    else:
        lo, hi = est["anchoring_ci"]
        st.metric("Anchoring", f"{est['anchoring']:.0%}", help="the share of answers that would have been "
                  "otherwise but took the shown wrong proposal")
        st.caption(f"95 % interval {lo:.0%} – {hi:.0%}, from {est['n_wrong_shown']} shown and "
                   f"{est['n_wrong_blind']} blind votes on wrong proposals by {est['n_volunteers']} volunteers.")

st.subheader("Retirement")
st.caption("When a galaxy has had enough votes. **majority**: after a fixed number, or early when most agree. "
           "**skill**: each answer weighed by its volunteer's record on gold galaxies (SWAP-style); the galaxy "
           "retires when the most probable class reaches the threshold. **Model votes** count the active model "
           "as that many volunteers where its proposal would be shown (never alone). Changes apply to the votes "
           "to come.")
if surveys_now:
    pick_r = st.selectbox("Survey", [s.name for s in surveys_now], key="adm_ret_survey")
    summary = retirement_summary(store(), pick_r)
    rule = summary["rule"]
    with st.form("adm_retirement"):
        c1, c2, c3, c4 = st.columns(4)
        method = c1.radio("Method", RETIREMENT_METHODS, index=RETIREMENT_METHODS.index(rule["method"]),
                          key="adm_ret_method")
        n_votes = c2.number_input("Votes at most", 1, 100, int(rule["n_votes"]), key="adm_ret_n")
        threshold = c3.slider("Skill threshold", 0.5, 0.999, float(rule["skill_threshold"]), 0.005, key="adm_ret_thr")
        model_votes = c4.number_input("Model votes", 0.0, 10.0, float(rule["model_votes"]), 0.5, key="adm_ret_model")
        if st.form_submit_button("Save rule", key="adm_ret_save"):
            try:
                require_role(store(), user["id"], "admin")
                set_retirement(store(), pick_r, method=method, n_votes=int(n_votes), skill_threshold=float(threshold),
                               model_votes=float(model_votes),
                               early_votes=min(int(rule["early_votes"]), int(n_votes)),
                               skill_min_votes=min(int(rule["skill_min_votes"]), int(n_votes)))
                st.success(f"Saved the retirement rule of {pick_r!r}.")
                summary = retirement_summary(store(), pick_r)
            except GalaxalignError as e:
                show_error(e)
    if summary["retired"]:
        st.caption(f"{summary['retired']:,} galaxies retired, {summary['votes_per_retired']:.2f} human votes each on "
                   "average; by reason: " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary["by_reason"].items())))

st.subheader("Every vote teaches")
st.caption("Between full re-trains, the worker refits the active model's proposals on every vote so far — an "
           "ensemble of heads on the stored embeddings, in seconds — after every K new votes on the survey: the "
           "proposals, the gate's confidence and the queue's uncertainty follow the volunteers. **bald** puts first "
           "the galaxies where the heads disagree most (where more votes would teach the model most).")
if surveys_now:
    pick_v = st.selectbox("Survey", [s.name for s in surveys_now], key="adm_vote_survey")
    srow = next(s for s in surveys_now if s.name == pick_v)
    with st.form("adm_votes"):
        c1, c2 = st.columns(2)
        every = c1.number_input("Refresh the proposals every K votes (0: never)", 0, 1_000_000,
                                int(srow.refresh_every), key="adm_refresh_every")
        strategy = c2.selectbox("Queue puts first", QUEUE_STRATEGIES, index=QUEUE_STRATEGIES.index(srow.queue_strategy),
                                key="adm_queue_strategy")
        if st.form_submit_button("Save", key="adm_votes_save"):
            try:
                require_role(store(), user["id"], "admin")
                set_refresh_every(store(), pick_v, int(every))
                set_queue_strategy(store(), pick_v, strategy)
                st.success(f"Saved: {pick_v!r} refreshes every {int(every):,} votes; the queue puts {strategy} first.")
            except GalaxalignError as e:
                show_error(e)
    st.button("Refresh the proposals now", key="adm_refresh_now", on_click=start_job, args=("refresh", {"survey": pick_v}))
    mv = active_model(store())
    last = ((mv.metrics or {}).get("refresh") or {}).get(pick_v) if mv else None
    if last:
        ece = (f"; calibration error {last['ece_model']:.3f} (the model alone) → {last['ece']:.3f} (refreshed, tempered)"
               if last.get("ece") is not None else "")
        acc = f"; held-out accuracy {last['accuracy']:.3f}" if last.get("accuracy") is not None else ""
        st.caption(f"Last refresh of {mv.name} on {pick_v}: {last['n_taught']:,} galaxies taught, {last['heads']} heads, "
                   f"temperature {last['temperature']:.2f}{acc}{ece}, {last['seconds']:.1f} s.")
    elif mv:
        st.caption(f"{mv.name} has not been refreshed on {pick_v} yet.")
