"""Model versions (candidate → active → retired, one active at a time), their per-galaxy predictions
and the proposal gate."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..fsutil import file_sha256
from ..validate import check_fraction, check_name, short
from .db import Store, StoreError
from .lookup import NotFound, active_model_row, jsonable, model_version_row, survey_row
from .models import Galaxy, ModelVersion, Prediction, utcnow

__all__ = ["register_model", "activate_model", "set_model_embeddings", "store_predictions", "prediction_for",
           "set_proposal_gate", "update_model_metrics"]


def register_model(store: Store, name: str, checkpoint_path: str, config: dict, metrics: dict,
                   survey: int | str | None = None, parent_id: int | None = None,
                   embeddings_path: str | None = None) -> int:
    """Record a trained model as a ``candidate``; its checkpoint's sha256 is computed here."""
    check_name(name, "model version name", StoreError)
    p = Path(checkpoint_path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.is_file():
        raise NotFound(f"{p}: checkpoint file does not exist")
    digest = file_sha256(p)

    def fn(s: Session) -> int:
        if s.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
            raise StoreError(f"model version {name!r} already exists")
        sid = survey_row(s, survey).id if survey is not None else None
        mv = ModelVersion(name=name, survey_id=sid, config=jsonable(config), checkpoint_path=str(p), sha256=digest,
                          metrics=jsonable(metrics), parent_id=parent_id, status="candidate",
                          embeddings_path=embeddings_path)
        s.add(mv)
        s.flush()
        return mv.id
    return store.write(fn)


def activate_model(store: Store, which: int | str) -> ModelVersion:
    """Make one version active and retire the one that was; one transaction, so there is always
    exactly one active model once any has been activated."""

    def fn(s: Session) -> ModelVersion:
        mv = model_version_row(s, which)
        s.execute(update(ModelVersion).where(ModelVersion.status == "active", ModelVersion.id != mv.id)
                  .values(status="retired"))
        mv.status, mv.activated_at = "active", utcnow()
        return mv
    return store.write(fn)


def set_model_embeddings(store: Store, model_id: int, path: str) -> None:
    def fn(s: Session):
        model_version_row(s, model_id).embeddings_path = path
    store.write(fn)


def store_predictions(store: Store, model_id: int, survey: int | str, probs: np.ndarray,
                      batch: int = 2000, ood: np.ndarray | None = None,
                      disagreement: np.ndarray | None = None, mutual_info: np.ndarray | None = None) -> int:
    """Replace the predictions of ``model_id`` for a survey with ``probs`` (N, C), row i = galaxy idx i;
    ``ood`` (N,) the unfamiliarity of each galaxy (:mod:`galaxalign.ood`) when the model has one;
    ``disagreement`` (N,) of its two heads (:func:`galaxalign.inference.head_disagreement`); ``mutual_info``
    (N,) of the refreshed ensemble (:func:`galaxalign.heads.mutual_information`)."""
    probs = np.asarray(probs, float)
    for name, extra in (("ood scores", ood), ("disagreements", disagreement), ("mutual informations", mutual_info)):
        if extra is not None and len(extra) != len(probs):
            raise StoreError(f"{name} cover {len(extra)} galaxies; the predictions {len(probs)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(probs > 0, probs * np.log(probs), 0.0), axis=1) / math.log(max(2, probs.shape[1]))

    def fn(s: Session) -> int:
        sv = survey_row(s, survey)
        if probs.shape[0] != sv.n_galaxies:
            raise StoreError(f"predictions cover {probs.shape[0]} galaxies; survey {sv.name!r} has {sv.n_galaxies}")
        gid = dict(s.execute(select(Galaxy.idx, Galaxy.id).where(Galaxy.survey_id == sv.id)).all())
        s.execute(Prediction.__table__.delete().where(Prediction.model_version_id == model_id,
                                                      Prediction.galaxy_id.in_(select(Galaxy.id).where(
                                                          Galaxy.survey_id == sv.id))))
        rows = [{"model_version_id": model_id, "galaxy_id": gid[i], "probs": [round(float(p), 5) for p in probs[i]],
                 "top_class": int(probs[i].argmax()), "confidence": float(probs[i].max()), "entropy": float(ent[i]),
                 "ood": _finite(ood, i), "disagreement": _finite(disagreement, i),
                 "mutual_info": _finite(mutual_info, i)}
                for i in range(len(probs))]
        for k in range(0, len(rows), batch):
            s.execute(Prediction.__table__.insert(), rows[k:k + batch])
        return len(rows)
    return store.write(fn)


def _finite(values: np.ndarray | None, i: int) -> float | None:
    return None if values is None or not np.isfinite(values[i]) else float(values[i])


def set_proposal_gate(store: Store, model: int | str, confidence_floor: float | None = None,
                      ood_max: float | None = None) -> dict:
    """Override when the Classify page pre-selects this model's proposals (see :mod:`galaxalign.ood`):
    below ``confidence_floor`` or above unfamiliarity ``ood_max`` nothing is pre-selected. Returns the gate."""
    if confidence_floor is not None:
        check_fraction(confidence_floor, "confidence_floor", StoreError)
    if ood_max is not None and not (isinstance(ood_max, (int, float)) and 0.0 <= float(ood_max) <= 1e9):
        raise StoreError(f"ood_max {short(ood_max)}: must be a number between 0 and 1e9")

    def fn(s: Session) -> dict:
        mv = model_version_row(s, model)
        metrics = dict(mv.metrics or {})
        gate = dict(metrics.get("proposal") or {})
        if confidence_floor is not None:
            gate["confidence_floor"] = float(confidence_floor)
        if ood_max is not None:
            gate["ood_max"] = float(ood_max)
        metrics["proposal"] = gate
        mv.metrics = metrics
        return gate
    return store.write(fn)


def update_model_metrics(store: Store, model: int | str, **entries) -> dict:
    """Merge ``entries`` into a model version's metrics (the refresh's results, its re-calibrated gate);
    its weights file is not touched. Returns the metrics."""
    def fn(s: Session) -> dict:
        mv = model_version_row(s, model)
        metrics = {**(mv.metrics or {}), **jsonable(entries)}
        mv.metrics = metrics
        return metrics
    return store.write(fn)


def prediction_for(store: Store, galaxy_id: int, model_id: int | None = None) -> Prediction | None:
    """The active (or given) model's prediction for a galaxy, if there is one."""
    with store.read() as s:
        if model_id is None:
            active = active_model_row(s)
            if active is None:
                return None
            model_id = active.id
        return s.scalar(select(Prediction).where(Prediction.galaxy_id == galaxy_id,
                                                 Prediction.model_version_id == model_id))
