"""The ``retrain`` job: fine-tune from the active model on the known labels plus the consensus labels of
retired galaxies; evaluate the candidate and the active model on the same held-out split; register the
candidate; embed and predict the survey and build its FAISS index; activate the candidate only if it is
not worse (macro-F1 within ``tolerance``) or ``force_activate`` is set. Nothing is activated before the
very last step, so a job that dies leaves the active model as it was."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..fsutil import staged_dir
from ..inference import evaluate_model
from ..model import load_model
from ..store import activate_model, active_model, register_model, training_labels, training_votes
from ..store.models import utcnow
from ..surveys import open_survey
from ..train import load_config, resolve_split, train
from ..workspace import Workspace
from .embed import embed_version
from .params import EmbedParams, RetrainParams
from .queue import job_kind, reporter

__all__ = ["retrain", "DEFAULT_CONFIG"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "starter-cpu.yaml"
SEMI_THRESHOLD = 0.95  # FixMatch's confidence for a pseudo-label (Sohn et al. 2020) unless the config sets one


@job_kind("retrain")
def retrain(store, workspace: Workspace, job_id: int | None, params: RetrainParams | dict,
            show_bar: bool = False) -> dict:
    """See the module docstring and :class:`~galaxalign.jobs.params.RetrainParams`. One way through: the
    survey and the model trained here go on to the embedding as they are, nothing is loaded back."""
    p = params if isinstance(params, RetrainParams) else RetrainParams.from_dict(params)
    report = reporter(store, job_id)
    row, survey = open_survey(store, p.survey)
    cfg = load_config(p.config or row.train_config or DEFAULT_CONFIG,
                      stage1_epochs=p.stage1_epochs, stage2_epochs=p.stage2_epochs)
    cfg = replace(cfg, eval_every_stage=False, **({"seed": p.seed} if p.seed is not None else {}))
    parent = active_model(store)
    init_from = None if (parent is None or p.from_scratch) else parent.checkpoint_path
    if init_from:  # fine-tuning a trained model: a full-size first step would undo what it knows
        cfg = replace(cfg, lr=cfg.lr * p.lr_scale)
    labels, n_consensus = training_labels(store, row.name, len(survey))
    # held-out split on the survey's own labels (its fixed split when it has one): the same galaxies
    # judge the candidate and the parent; the valid part, if any, chooses the epoch
    _, valid_idx, test_idx = resolve_split(survey, cfg)
    test_idx = test_idx[survey.labels[test_idx] >= 0]
    valid_idx = valid_idx[survey.labels[valid_idx] >= 0]
    votes, vote_map = training_votes(store, row.name, len(survey)) if p.learn_from == "votes" else (None, None)
    taught = labels >= 0 if votes is None else (labels >= 0) | (votes.sum(1) > 0)
    held_out = np.concatenate([test_idx, valid_idx])
    train_idx = np.setdiff1d(np.flatnonzero(taught), held_out)
    unlabelled = None
    if p.semi:
        cfg = replace(cfg, semi_threshold=cfg.semi_threshold or SEMI_THRESHOLD)
        unlabelled = np.setdiff1d(np.flatnonzero(~taught), held_out)
    what = "labelled galaxies" if votes is None else "galaxies with a label or votes"
    report(0.0, f"training on {len(train_idx)} {what} of {row.name}"
                f" (from {parent.name if init_from else 'scratch'})")
    name = p.name or f"v{utcnow():%Y%m%d-%H%M%S}"
    out = workspace.models / name
    phase = reporter(store, job_id, 0.02, 0.75) if job_id else None
    with staged_dir(out, owner=f"job{job_id}" if job_id else "local") as tmp:  # a killed worker leaves no `out`
        res = train(cfg, survey=survey, out_dir=tmp, labels=labels, train_idx=train_idx, test_idx=test_idx,
                    valid_idx=valid_idx, init_from=init_from, progress=phase, show_bar=show_bar, votes=votes,
                    vote_map=vote_map, unlabelled_idx=unlabelled)
        _drop_resume_point(tmp)
    candidate = res["metrics"]
    parent_metrics = None
    if parent is not None:
        report(0.76, f"evaluating the active model {parent.name} on the same {len(test_idx)} galaxies")
        parent_metrics = evaluate_model(load_model(parent.checkpoint_path), survey, test_idx)
    mid = register_model(store, name, str(out), cfg.to_dict(), candidate, survey=row.name,
                         parent_id=parent.id if parent else None)
    report(0.8, f"registered candidate {name}: macro-F1 {candidate['macro_f1']:.4f}")
    embed_version(store, workspace, None, EmbedParams(model=mid, survey=row.name),
                  report=reporter(store, job_id, 0.8, 0.98), survey=survey,
                  model=res["model"])
    better = parent_metrics is None or candidate["macro_f1"] >= parent_metrics["macro_f1"] - p.tolerance
    activated = bool(better or p.force_activate)
    if activated:
        activate_model(store, mid)
    verdict = "activated" if activated else f"kept {parent.name} (candidate macro-F1 {candidate['macro_f1']:.4f} < " \
                                            f"{parent_metrics['macro_f1']:.4f})"
    report(1.0, f"{name}: {verdict}")
    strip = lambda m: None if m is None else {k: v for k, v in m.items() if k not in ("confusion", "recall")}  # noqa
    return {"model": name, "model_id": mid, "activated": activated, "metrics": strip(candidate),
            "parent": parent.name if parent else None, "parent_metrics": strip(parent_metrics),
            "n_train": int(len(train_idx)), "n_test": int(len(test_idx)), "n_consensus_labels": n_consensus}


def _drop_resume_point(run_dir: Path) -> None:
    """A registered version is finished: its ``last.pt`` (weights plus optimiser state, three times the
    model) would only resume a run that is over, so every retrain would leave that much behind."""
    (Path(run_dir) / "last.pt").unlink(missing_ok=True)
