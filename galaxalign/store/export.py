"""Exports: classifications in Zooniverse's column layout and per-galaxy vote fractions.

Zooniverse classification export columns (JSON in ``metadata``, ``annotations``, ``subject_data``)::

    classification_id, user_name, user_id, workflow_id, workflow_name, workflow_version, created_at,
    gold_standard, expert, metadata, annotations, subject_data, subject_ids

Text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR)
is prefixed with a single quote in every text cell, so an export opened in Excel runs nothing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from ..taxonomy import GZ2_TREE
from .db import StoreError
from .lookup import survey_row
from .votes import FLAT_TASK
from .consensus import consensus_labels
from .db import Store
from .models import Classification, Galaxy, Volunteer
from ..fsutil import atomic_path
from ..validate import check_output_file

__all__ = ["export_classifications", "export_vote_fractions", "neutralise", "neutralise_frame", "write_table",
           "ZOONIVERSE_COLUMNS"]

ZOONIVERSE_COLUMNS = ["classification_id", "user_name", "user_id", "workflow_id", "workflow_name", "workflow_version",
                      "created_at", "gold_standard", "expert", "metadata", "annotations", "subject_data", "subject_ids"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """``"=HYPERLINK(…)"`` → ``"'=HYPERLINK(…)"``; anything else unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`neutralise` every text column of ``df`` (object or string dtype)."""
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].map(neutralise)
    return df


def _annotations(workflow: str, answers: list, class_names: list[str]) -> list[dict]:
    if workflow == "flat":
        k = answers[0][1]
        return [{"task": FLAT_TASK, "task_label": "Which class is this galaxy?", "value": class_names[k]}]
    out = []
    for task, answer in answers:
        t = GZ2_TREE[task]
        out.append({"task": task, "task_label": t.question, "value": t.answer(answer).text, "answer_id": answer})
    return out


def export_classifications(store: Store, survey: int | str) -> pd.DataFrame:
    """Every classification of a survey, one row each, in Zooniverse's layout (JSON strings in the
    JSON columns; text cells neutralised). A late vote (its galaxy retired while it was on screen) is
    exported like any other, with ``"late": true`` and ``subject_selection_state.retired`` in its
    metadata, as Panoptes marks a classification of a retired subject."""
    with store.read() as s:
        sv = survey_row(s, survey)
        rows = s.execute(
            select(Classification, Volunteer.name, Volunteer.role, Galaxy.id_str, Galaxy.idx, Galaxy.gold,
                   Galaxy.known_label, Galaxy.ra, Galaxy.dec)
            .join(Volunteer, Volunteer.id == Classification.volunteer_id)
            .join(Galaxy, Galaxy.id == Classification.galaxy_id)
            .where(Galaxy.survey_id == sv.id).order_by(Classification.id)).all()
        names, wf = list(sv.class_names), sv.workflow
        sid, sname = sv.id, sv.name
    out = []
    for c, user, role, id_str, idx, gold, known, ra, dec in rows:
        meta = {"seconds": c.seconds, "resolved_class": c.resolved_class,
                "resolved_class_name": names[c.resolved_class] if c.resolved_class is not None else None,
                "model_proposal": c.proposal_class, "model_confidence": c.proposal_confidence,
                "model_version_id": c.model_version_id, "accepted_proposal": c.accepted,
                # the anchoring control: shown = the proposal was on screen; blind = hidden on purpose
                "proposal_shown": c.proposal_class is not None and not c.blind, "blind": bool(c.blind),
                "guest": bool(c.guest),  # cast without an account (Panoptes: a not-logged-in classification)
                # late: the subject had retired while on screen — kept, not counted (Panoptes' selection state)
                "late": bool(c.late),
                "subject_selection_state": {"retired": bool(c.late), "already_seen": False}}
        subject = {str(c.galaxy_id): {"id_str": id_str, "index": idx, "ra": ra, "dec": dec, "retired": None,
                                      "known_label": known}}
        out.append({"classification_id": c.id, "user_name": f"not-logged-in-{user}" if c.guest else user,
                    "user_id": c.volunteer_id, "workflow_id": sid,
                    "workflow_name": f"{sname} ({'GZ2 decision tree' if wf == 'gz2' else 'class list'})",
                    "workflow_version": c.workflow_version, "created_at": c.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    "gold_standard": bool(gold), "expert": role == "admin",
                    "metadata": json.dumps(meta), "annotations": json.dumps(_annotations(wf, c.answers, names)),
                    "subject_data": json.dumps(subject), "subject_ids": c.galaxy_id})
    return neutralise_frame(pd.DataFrame(out, columns=ZOONIVERSE_COLUMNS))


def export_vote_fractions(store: Store, survey: int | str, weighted: bool = False) -> pd.DataFrame:
    """Per galaxy: votes, retirement, consensus and the fraction of votes for each class
    (``frac_<class name>``)."""
    with store.read() as s:
        names = list(survey_row(s, survey).class_names)
    df = consensus_labels(store, survey, weighted=weighted)
    df = df.rename(columns={f"frac_{i}": f"frac_{n}" for i, n in enumerate(names)})
    df["consensus_name"] = df["consensus_label"].map(lambda k: names[int(k)] if pd.notna(k) else None)
    return neutralise_frame(df)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write CSV or Parquet (by suffix) under a temporary name, then rename."""
    path = check_output_file(path, (".csv", ".parquet"), StoreError)
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return path
