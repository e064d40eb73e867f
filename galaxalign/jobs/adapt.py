"""The ``adapt`` job: adapt a model to another registered survey (self-supervised on its images, classes
kept on the source's labels, optional optimal-transport or MMD alignment; :mod:`galaxalign.adapt`),
register the result as a candidate with the domain AUC before and after, embed the survey with it. It
never activates anything: an admin compares and activates."""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..adapt import AdaptCfg, adapt_model
from ..errors import GalaxalignError
from ..fsutil import staged_dir
from ..inference import calibrate_familiarity, evaluate_model
from ..model import load_model, save_model
from ..store import active_model, get_model_version, get_survey, register_model
from ..store.models import utcnow
from ..surveys import open_registered, open_survey
from ..train import TrainCfg, resolve_split
from ..workspace import Workspace
from .embed import embed_version
from .params import AdaptParams, EmbedParams
from .queue import job_kind, reporter

__all__ = ["adapt", "target_truth"]


def _source_split(model, source):
    """The source survey's training and held-out indices, as the model was trained on them."""
    tc = TrainCfg.from_dict({k: v for k, v in (model.checkpoint_meta.get("train_cfg") or {}).items()
                             if k != "model"}, "checkpoint")
    tr, va, te = resolve_split(source, tc)
    return tr, (va if len(va) else te)


def target_truth(model, target, seed: int, limit: int = 2000) -> np.ndarray:
    """The target galaxies an adaptation can be scored on: labelled in the target's file, under the
    model's own classes (none when the classes differ), at most ``limit`` of them, drawn with ``seed``.
    Adaptation never trains on them, so scoring on them leaks nothing."""
    if list(target.class_names) != list(model.class_names):
        return np.zeros(0, np.int64)
    idx = np.flatnonzero(target.labels >= 0)
    if len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    return idx


def _bar_reporter(total: int, desc: str):
    """A progress callback drawing a tqdm bar (the CLI's ``--wait``)."""
    bar = tqdm(total=total, desc=desc, unit="epoch")

    def report(frac: float, message: str) -> None:
        bar.update(round(frac * total) - bar.n)
        bar.set_postfix_str(message.split(": ", 1)[-1])
        if frac >= 1:
            bar.close()
    return report


@job_kind("adapt")
def adapt(store, workspace: Workspace, job_id: int | None, params: AdaptParams | dict, show_bar: bool = False) -> dict:
    """See the module docstring and :class:`~galaxalign.jobs.params.AdaptParams`."""
    p = params if isinstance(params, AdaptParams) else AdaptParams.from_dict(params)
    report = reporter(store, job_id)
    row_t, target = open_survey(store, p.survey)
    mv = get_model_version(store, p.model) if p.model is not None else active_model(store)
    if mv is None:
        raise GalaxalignError("no model to adapt: none is active and none was named")
    if mv.survey_id is None:
        raise GalaxalignError(f"model version {mv.name!r} records no source survey to keep its classes from")
    row_s = get_survey(store, mv.survey_id)
    if row_s.id == row_t.id:
        raise GalaxalignError(f"model version {mv.name!r} was trained on {row_t.name!r}: nothing to adapt to")
    source = open_registered(row_s)
    model = load_model(mv.checkpoint_path)
    if list(model.class_names) != list(source.class_names):
        raise GalaxalignError(f"model version {mv.name!r} has other classes than its survey {row_s.name!r}")
    cfg = AdaptCfg(**{k: getattr(p, k) for k in ("epochs", "align", "align_weight", "seed")
                      if getattr(p, k) is not None})
    train_idx, held_idx = _source_split(model, source)
    report(0.02, f"adapting {mv.name} from {row_s.name} ({len(train_idx)} labelled) to {row_t.name} "
                 f"({len(target)} galaxies), align {cfg.align}")
    phase = reporter(store, job_id, 0.05, 0.75) if job_id else (
        _bar_reporter(cfg.epochs, f"adapting to {row_t.name}") if show_bar else None)
    scored = target_truth(model, target, cfg.seed)
    acc_before = evaluate_model(model, target, scored)["accuracy"] if len(scored) else None
    res = adapt_model(model, source, train_idx, target, cfg, progress=phase)
    acc_after = evaluate_model(model, target, scored)["accuracy"] if len(scored) else None
    report(0.76, f"domain AUC {res['domain_auc_before']:.3f} → {res['domain_auc_after']:.3f}" +
           (f"; accuracy on {len(scored)} labelled {row_t.name} galaxies {acc_before:.3f} → {acc_after:.3f}"
            if len(scored) else "") + "; recalibrating")
    fam = calibrate_familiarity(model, source, source.labels, train_idx, held_idx, cfg.seed)
    name = p.name or f"adapt-{row_t.name}-{utcnow():%Y%m%d-%H%M%S}"
    out = workspace.models / name
    meta = model.checkpoint_meta
    with staged_dir(out, owner=f"job{job_id}" if job_id else "local") as tmp:
        save_model(model, tmp, extra={"train_cfg": meta.get("train_cfg"), "survey": str(target.path),
                                      "preparation": target.preparation.to_dict() if target.preparation else None,
                                      "familiarity": {**fam.to_dict(), "calibrated_on": f"{row_s.name} held-out"},
                                      "adapted_from": mv.name, "adapt": res, "init_from": mv.checkpoint_path})
    metrics = {"domain_auc_before": res["domain_auc_before"], "domain_auc_after": res["domain_auc_after"],
               "adapted_from": mv.name, "align": cfg.align, "proposal": fam.summary()}
    if len(scored):  # what says whether the adaptation helped; the AUC only says the features mixed
        metrics.update(target_accuracy_before=round(acc_before, 4), target_accuracy_after=round(acc_after, 4),
                       target_scored=int(len(scored)))
    mid = register_model(store, name, str(out), {"adapt": res["config"]}, metrics, survey=row_t.name, parent_id=mv.id)
    embed_version(store, workspace, None, EmbedParams(model=mid, survey=row_t.name),
                  report=reporter(store, job_id, 0.8, 0.98), survey=target, model=model)
    report(1.0, f"{name}: candidate for {row_t.name}; domain AUC {res['domain_auc_before']:.3f} → "
                f"{res['domain_auc_after']:.3f} (0.5: mixed). Activate it from Model versions.")
    return {"model": name, "model_id": mid, "source": row_s.name, "target": row_t.name, **metrics,
            "seconds": res["seconds"], "history": res["history"]}
