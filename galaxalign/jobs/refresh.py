"""The ``refresh`` job: the active model's proposals for a survey refitted on every vote so far, in
seconds, without touching its weights.

Queued by :func:`maybe_refresh` after every ``refresh_every`` new votes on the survey (a setting per
survey, 50 by default; the Admin page and ``galaxalign refresh`` change it or run one at once). It
reads the survey's stored embeddings, fits an ensemble of linear heads on the vote counts
(:mod:`galaxalign.heads`: the model's own classifier as the starting point and the prior, the
Dirichlet–multinomial likelihood of the fine-tune), tempers them on held-out labelled galaxies, and
writes back what the volunteers meet: the predictions (so the proposals), their mutual information
(the ``bald`` queue) and the gate's confidence floor. The model file, its embeddings and its index are
left as they are; the next full re-train replaces the head with a tower that learnt the same votes.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import GalaxalignError
from ..heads import (DEFAULT_PRIOR, choose_prior, expected_calibration_error, fit_heads, fit_temperature,
                     mutual_information, pseudo_votes)
from ..inference import class_prototypes, load_embeddings
from ..metrics import accuracy, macro_f1
from ..model import load_model
from ..ood import confidence_floor
from ..store import (active_model, claim_refresh, get_survey, store_predictions, training_votes,
                     update_model_metrics)
from ..surveys import open_survey
from ..train import ConfigError, TrainCfg, resolve_split
from ..workspace import Workspace
from .params import RefreshParams
from .queue import enqueue, job_kind, reporter

__all__ = ["refresh", "maybe_refresh"]

MIN_HELD = 20  # held-out labelled galaxies below which no temperature is fitted (T = 1) and the floor kept


@job_kind("refresh")
def refresh(store, workspace: Workspace, job_id: int | None, params: RefreshParams | dict) -> dict:
    """See the module docstring and :class:`~galaxalign.jobs.params.RefreshParams`."""
    p = params if isinstance(params, RefreshParams) else RefreshParams.from_dict(params)
    t0 = time.perf_counter()
    report = reporter(store, job_id)
    row, survey = open_survey(store, p.survey)
    mv = active_model(store)
    if mv is None:
        raise GalaxalignError("refresh: no active model; train one first")
    emb, preds = load_embeddings(workspace.embeddings_of(mv.name, row.name), mmap=True)
    model = load_model(mv.checkpoint_path)
    protos, scale = class_prototypes(model, "text"), float(model.logit_scale.detach())
    if protos.shape[0] != len(row.class_names) or len(emb) != len(survey):
        raise GalaxalignError(f"refresh: model {mv.name} ({protos.shape[0]} classes, embeddings of {len(emb)} "
                              f"galaxies) does not fit survey {row.name} ({len(row.class_names)} classes, "
                              f"{len(survey)} galaxies)")
    emb = np.asarray(emb, np.float32)
    report(0.1, f"refitting {p.heads} heads on {row.name}'s votes over {len(emb):,} embeddings of {mv.name}")
    cfg = _train_cfg(mv.config)
    counts, amap = training_votes(store, row.name, len(survey))
    labels = survey.labels
    calib, judge, test = _held_out(survey, cfg, p.seed)
    held = np.concatenate([calib, judge])
    counts[held] = 0  # the galaxies that judge the heads never teach them
    fit = dict(concentration=cfg.vote_concentration, answer_map=amap)
    prior = (choose_prior(emb, counts, protos, scale, emb[calib], labels[calib], **fit) if len(calib) >= MIN_HELD
             else DEFAULT_PRIOR)

    def tempered_heads(votes: np.ndarray):
        heads = fit_heads(emb, votes, protos, scale, p.heads, prior=prior, seed=p.seed, **fit)
        if len(calib) >= MIN_HELD:
            heads.temperature = fit_temperature(lambda t: heads.probs(emb[calib], t).mean(1), labels[calib])
        return heads

    heads = tempered_heads(counts)
    if p.pseudo > 0:  # self-training: confident galaxies nobody voted on yet join as one pseudo-vote each
        extra = pseudo_votes(heads.probs(emb).mean(1), counts, p.pseudo)
        extra[held] = 0
        heads = tempered_heads(extra)
    report(0.6, f"heads fitted (temperature {heads.temperature:.2f}); storing {len(emb):,} predictions")
    ps = heads.probs(emb)
    probs, mi = ps.mean(1), mutual_information(ps)
    out = {"model": mv.name, "survey": row.name, "heads": p.heads, "temperature": round(heads.temperature, 4),
           "prior": prior,
           "n_taught": int((counts.sum(1) > 0).sum()), "votes": float(counts.sum())}
    if len(test):  # the split every re-train is judged on, for learning curves that compare
        out["test_accuracy"] = accuracy(labels[test], probs[test].argmax(1))
    if len(judge):
        own = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
        yj = labels[judge]
        out.update(accuracy=accuracy(yj, probs[judge].argmax(1)), macro_f1=macro_f1(yj, probs[judge].argmax(1)),
                   model_accuracy=accuracy(yj, own[judge].argmax(1)),
                   ece_model=expected_calibration_error(own[judge], yj),
                   ece_untempered=expected_calibration_error(heads.probs(emb[judge], 1.0).mean(1), yj),
                   ece=expected_calibration_error(probs[judge], yj), n_judge=int(len(judge)))
    gate = dict((mv.metrics or {}).get("proposal") or {})
    if len(held) >= MIN_HELD:  # the floor from the refreshed proposals on galaxies they were not fitted on
        gate["confidence_floor"] = confidence_floor(probs[held].max(1), probs[held].argmax(1) == labels[held])
    store_predictions(store, mv.id, row.name, probs, ood=_column(preds, "ood"),
                      disagreement=_column(preds, "disagreement"), mutual_info=mi)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    refreshed = dict((mv.metrics or {}).get("refresh") or {})
    refreshed[row.name] = out
    update_model_metrics(store, mv.id, proposal=gate, refresh=refreshed)
    report(1.0, f"{row.name}: proposals of {mv.name} refreshed in {out['seconds']:.1f} s")
    return out


def maybe_refresh(store, survey: str, workspace: Workspace | None = None, run_now: bool = False) -> int | dict | None:
    """After a vote: when ``refresh_every`` votes have come in since the last refresh, queue one (its job
    id), or run it here with ``run_now`` (its result: the campaigns, which play the worker themselves);
    else None. Nothing is queued without an active model whose embeddings of the survey exist."""
    mv = active_model(store)
    if mv is None or not mv.embeddings_path or claim_refresh(store, survey) is None:
        return None
    if run_now:
        return refresh(store, workspace, None, RefreshParams(survey=get_survey(store, survey).name))
    return enqueue(store, "refresh", {"survey": survey}, workspace=workspace)


def _train_cfg(config: dict | None) -> TrainCfg:
    try:
        return TrainCfg.from_dict(config or {}, "model config")
    except ConfigError:  # a model from an older version: the defaults split and weigh the same way
        return TrainCfg()


def _held_out(survey, cfg: TrainCfg, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibrate on, judge on, test): labelled galaxies the model was not trained on — the valid split and
    the test split when the survey has both, else the test split cut in two halves — and the labelled test
    split every re-train is judged on."""
    _, valid, test = resolve_split(survey, cfg)
    valid, test = valid[survey.labels[valid] >= 0], test[survey.labels[test] >= 0]
    if len(valid) >= MIN_HELD:
        return valid, test, test
    cut = np.random.default_rng(seed).permutation(test)
    return np.sort(cut[:len(cut) // 2]), np.sort(cut[len(cut) // 2:]), test


def _column(preds, name: str):
    return preds[name].to_numpy() if name in preds else None
