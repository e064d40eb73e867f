"""Background jobs, run by ``galaxalign worker`` through a huey task queue.

The queue is huey with SQLite storage in the workspace (``huey.db``), or Redis when
``GALAXALIGN_REDIS_URL`` is set. Each job is also a row of the ``jobs`` table, which is what the app
shows: state, progress, message, log tail, heartbeat.

Kinds:

- ``retrain`` — fine-tune from the active model on the known labels plus the consensus labels of
  retired galaxies; evaluate the candidate and the active model on the same held-out split; register
  the candidate; embed and predict the survey and build its FAISS index; activate the candidate only
  if it is not worse (macro-F1 within ``tolerance``) or ``force_activate`` is set.
- ``embed`` — embed, predict and index the survey with a given model version.
- ``adapt`` — adapt a model to another registered survey (self-supervised on its images, classes kept
  on the source's labels, optional optimal-transport or MMD alignment; :mod:`galaxalign.adapt`),
  register the result as a candidate with the domain AUC before and after, embed the survey with it.
  It never activates anything: an admin compares and activates.

A job's process writes a heartbeat every few seconds. A worker killed mid-job leaves its job
``running`` with a stale heartbeat; :func:`reap_stale_jobs` (called by every worker at start and
every minute, and by the app) marks it ``failed``. Nothing is activated before the very last step,
so the active model stays as it was.
"""
from __future__ import annotations

import os
import secrets
import threading
import time
import traceback
from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from sqlalchemy import select
from tqdm.auto import tqdm

from . import data as survey_files
from .adapt import AdaptCfg, adapt_model
from .data import load_survey
from .errors import GalaxalignError
from .fsutil import remove_partial_dirs, staged_dir
from .importer import import_path, open_registered
from .index import SimilarityIndex
from .inference import calibrate_familiarity, embed_survey, evaluate_model, load_embeddings
from .model import load_model, save_model
from .projection import cached_projection
from .shards import MAX_ATTEMPTS, dispatch as dispatch_shards, embed_shard
from .store import (NotFound, activate_model, active_model, add_admin, append_log, claim_job, default_home_text,
                    enqueue_job_row, finish_job, get_job, get_model_version, get_survey, get_volunteer, list_jobs,
                    list_model_versions, project_settings, set_project_settings,
                    list_surveys, open_store, register_model, register_survey, require_role, set_model_embeddings,
                    store_predictions, training_labels, update_job)
from .store.models import Job, utcnow
from .train import TrainCfg, load_config, resolve_split, train
from .workspace import Workspace, default_workspace

__all__ = ["get_huey", "enqueue", "run_job", "reap_stale_jobs", "retrain", "embed_version", "publish_embeddings",
           "adapt", "project_map",
           "bootstrap", "JOBS", "JOB_ROLES",
           "JobCancelled", "HEARTBEAT_SECONDS", "STALE_AFTER_SECONDS", "JOB_KINDS", "DEFAULT_CONFIG"]

# A job beats every HEARTBEAT_SECONDS; one silent for STALE_AFTER_SECONDS is taken for dead.
HEARTBEAT_SECONDS = float(os.environ.get("GALAXALIGN_HEARTBEAT_SECONDS", 2.0))
STALE_AFTER_SECONDS = float(os.environ.get("GALAXALIGN_STALE_AFTER_SECONDS", 20.0))
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "starter-cpu.yaml"


class JobCancelled(GalaxalignError):
    pass


# --- the queue -------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def get_huey(workspace_root: str):
    """The huey instance of a workspace, with our task registered on it."""
    from huey import RedisHuey, SqliteHuey, crontab

    redis_url = os.environ.get("GALAXALIGN_REDIS_URL")
    if redis_url:
        huey = RedisHuey("galaxalign", url=redis_url)
    else:
        Path(workspace_root).mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("galaxalign", filename=str(Path(workspace_root) / "huey.db"))

    @huey.task(name="galaxalign.run_job")
    def run_job_task(job_id: int, root: str = workspace_root):
        run_job(job_id, Workspace(root))

    @huey.periodic_task(crontab(minute="*"), name="galaxalign.reap")
    def reap_task():
        ws = Workspace(workspace_root)
        reap_stale_jobs(open_store(ws.database_url, upgrade=False), workspace=ws)

    huey.galaxalign_run_job = run_job_task
    return huey


def enqueue(store, kind: str, params: dict | None = None, requested_by=None, workspace: Workspace | None = None) -> int:
    """Record a job and put it on the queue; returns the job id."""
    if kind not in JOB_KINDS:
        raise GalaxalignError(f"unknown job kind {kind!r}; known: {', '.join(JOB_KINDS)}")
    if requested_by is not None:  # jobs started from the app: admins, or the role JOB_ROLES names
        require_role(store, requested_by, JOB_ROLES.get(kind, "admin"))
    ws = workspace or default_workspace()
    job_id = enqueue_job_row(store, kind, params or {}, requested_by)
    get_huey(str(ws.root)).galaxalign_run_job(job_id, str(ws.root))
    return job_id


def reap_stale_jobs(store, stale_after: float = STALE_AFTER_SECONDS, workspace: Workspace | None = None) -> list[int]:
    """Mark ``running`` jobs whose heartbeat is older than ``stale_after`` seconds as failed, and remove
    the half-written model folders (``models/.partial-job<id>-…``) of every job that is not running."""
    cutoff = utcnow() - timedelta(seconds=stale_after)

    def fn(s):
        stale = list(s.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)))
        for j in stale:
            j.state, j.finished_at = "failed", utcnow()
            j.error = f"worker stopped: no heartbeat since {j.heartbeat_at:%Y-%m-%d %H:%M:%S} (pid {j.worker_pid})"
            append_log(j, j.error)
        running = {f"job{i}" for i in s.scalars(select(Job.id).where(Job.state.in_(("queued", "running"))))}
        return [j.id for j in stale], running
    reaped, running = store.write(fn)
    if workspace is not None:
        remove_partial_dirs(workspace.models, "job", running)
        for jid in reaped:  # a shard whose worker died goes back on the queue; it resumes where it stopped
            j = get_job(store, jid)
            attempt = int((j.params or {}).get("attempt", 1))
            if j.kind == "embed_shard" and attempt < MAX_ATTEMPTS:
                again = enqueue(store, "embed_shard", {**j.params, "attempt": attempt + 1}, workspace=workspace)
                update_job(store, jid, log=f"queued again as job {again} (attempt {attempt + 1} of {MAX_ATTEMPTS})")
    return reaped


class _Heartbeat:
    """Beats the job row from a side thread while the job runs in this one."""

    def __init__(self, store, job_id: int):
        self.store, self.job_id = store, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job_id}")

    def _run(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                update_job(self.store, self.job_id)
            except Exception:  # a missed beat is not worth killing the job for
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def run_job(job_id: int, workspace: Workspace) -> None:
    """Execute job ``job_id`` (called by the huey task): claim, beat, run, record the outcome."""
    store = open_store(workspace.database_url, upgrade=False)
    try:
        job = claim_job(store, job_id, os.getpid())
        if job is None:
            return  # cancelled or already taken
        with _Heartbeat(store, job_id):
            try:
                fn = JOBS[job.kind]
                result = fn(store, workspace, job_id, dict(job.params or {}))
            except JobCancelled:
                finish_job(store, job_id, "cancelled")
                return
            except Exception as e:  # the job fails; the worker goes on with the queue
                finish_job(store, job_id, "failed", error=f"{traceback.format_exc()}\n{e.__class__.__name__}: {e}")
                return
        if get_job(store, job_id).state == "running":
            finish_job(store, job_id, "succeeded", result=result)
    finally:
        store.dispose()


# --- job bodies ------------------------------------------------------------------------------------

def _reporter(store, job_id: int, lo: float, hi: float):
    """A progress callback mapping 0–1 of one phase onto ``lo``–``hi`` of the job; checks for cancel."""
    def report(frac: float, message: str) -> None:
        if get_job(store, job_id).state == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled")
        update_job(store, job_id, progress=lo + (hi - lo) * frac, message=message, log=message)
    return report


def _survey_for(store, name: str | None):
    """The registered survey ``name`` (the first one when None): its row and the opened survey."""
    row = get_survey(store, name) if name else (list_surveys(store) or [None])[0]
    if row is None:
        raise GalaxalignError("no survey is registered; run `galaxalign demo` first")
    return row, open_registered(row)


def embed_version(store, workspace: Workspace, job_id: int | None, params: dict, report=None,
                  survey=None, model=None) -> dict:
    """Embed + predict + index a survey with model version ``params["model"]`` (name or id). A caller
    that already holds the opened survey and the loaded model (the re-train) passes them."""
    if survey is None:
        row, survey = _survey_for(store, params.get("survey"))
    else:
        row = get_survey(store, params["survey"])
    mv = get_model_version(store, params["model"])
    report = report or (_reporter(store, job_id, 0.0, 1.0) if job_id else (lambda f, m: None))
    model = model if model is not None else load_model(mv.checkpoint_path)
    shards = params.get("shards", 1)
    if shards == "auto" or int(shards) > 1:  # split over the queue's workers (galaxalign.shards)
        res = dispatch_shards(store, workspace, job_id, row, survey, mv, model, shards)
        report(1.0, f"queued {res['shards']} shard jobs {res['shard_jobs']} for {len(survey):,} galaxies")
        return res
    report(0.0, f"embedding {len(survey)} galaxies of {row.name} with {mv.name}")
    out = workspace.embeddings / mv.name / row.name
    stats = embed_survey(model, survey, out, progress=False)
    emb, preds = stats.pop("embeddings"), stats.pop("predictions")
    report(0.6, f"embedded at {stats['images_per_second']:.0f} images/s; storing predictions")
    publish_embeddings(store, workspace, row, mv, emb, preds)
    report(1.0, f"predictions and index for {mv.name} ready")
    return {"model": mv.name, **stats}


def publish_embeddings(store, workspace: Workspace, row, mv, emb, preds) -> None:
    """After a survey is embedded (whole, or its last shard): predictions into the store, the FAISS
    index and the PCA map beside the embeddings, and the model version pointed at them."""
    out = workspace.embeddings / mv.name / row.name
    probs = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    store_predictions(store, mv.id, row.name, probs, ood=preds["ood"].to_numpy() if "ood" in preds else None,
                      disagreement=preds["disagreement"].to_numpy() if "disagreement" in preds else None)
    SimilarityIndex.build(emb, preds["id_str"].to_numpy()).save(out)
    cached_projection(out, emb, "pca")  # Explore's first map is read from disk, never computed in the page
    set_model_embeddings(store, mv.id, str(workspace.embeddings / mv.name))


def _embed_shard(store, workspace: Workspace, job_id: int | None, params: dict) -> dict:
    return embed_shard(store, workspace, job_id, params,
                       report=_reporter(store, job_id, 0.0, 1.0) if job_id else None)


@dataclass(frozen=True)
class RetrainParams:
    """What a re-training job is asked to do. The job row keeps the dict it was queued with; the job
    reads it through :meth:`from_dict`, which refuses unknown keys and out-of-range values.

    ``survey``: registered survey name (default: the first); ``config``: training YAML (default: the
    survey's own, else the starter's); epochs override the config's; ``from_scratch``: do not start
    from the active model; ``force_activate``: activate even if worse; ``tolerance``: how much worse
    (macro-F1) still counts as "not worse"; ``lr_scale``: the config's lr is scaled by this when
    starting from the active model; ``name``: the model version's name (default: a time stamp);
    ``seed``: the training seed (default: the config's).
    A negative ``tolerance`` asks the candidate to beat the active model by that margin."""
    survey: str | None = None
    config: str | None = None
    stage1_epochs: int | None = None
    stage2_epochs: int | None = None
    from_scratch: bool = False
    force_activate: bool = False
    tolerance: float = 0.005
    lr_scale: float = 0.1
    name: str | None = None
    seed: int | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> "RetrainParams":
        d = dict(d or {})
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise GalaxalignError(f"retrain: unknown parameter(s) {', '.join(unknown)}")
        for k in ("stage1_epochs", "stage2_epochs", "seed"):
            if d.get(k) is not None and (not isinstance(d[k], int) or isinstance(d[k], bool) or d[k] < 0):
                raise GalaxalignError(f"retrain: {k} must be a whole number ≥ 0, got {d[k]!r}")
        # tolerance < 0 asks the candidate to beat the active model by that much
        for k, lo, hi in (("tolerance", -1.0, 1.0), ("lr_scale", 1e-6, 10.0)):
            if k in d and not (isinstance(d[k], (int, float)) and not isinstance(d[k], bool) and lo <= d[k] <= hi):
                raise GalaxalignError(f"retrain: {k} must be a number between {lo:g} and {hi:g}, got {d[k]!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


def retrain(store, workspace: Workspace, job_id: int | None, params: dict | RetrainParams,
            show_bar: bool = False) -> dict:
    """See the module docstring and :class:`RetrainParams`. One way through: the survey and the model
    trained here go on to the embedding as they are, nothing is loaded back."""
    p = params if isinstance(params, RetrainParams) else RetrainParams.from_dict(params)
    report = _reporter(store, job_id, 0.0, 1.0) if job_id else (lambda f, m: None)
    row, survey = _survey_for(store, p.survey)
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
    train_idx = np.setdiff1d(np.flatnonzero(labels >= 0), np.concatenate([test_idx, valid_idx]))
    report(0.0, f"training on {len(train_idx)} labelled galaxies of {row.name}"
                f" (from {parent.name if init_from else 'scratch'})")
    name = p.name or f"v{utcnow():%Y%m%d-%H%M%S}"
    out = workspace.models / name
    phase = _reporter(store, job_id, 0.02, 0.75) if job_id else None
    with staged_dir(out, owner=f"job{job_id}" if job_id else "local") as tmp:  # a killed worker leaves no `out`
        res = train(cfg, survey=survey, out_dir=tmp, labels=labels, train_idx=train_idx, test_idx=test_idx,
                    valid_idx=valid_idx, init_from=init_from, progress=phase, show_bar=show_bar)
        _drop_resume_point(tmp)
    candidate = res["metrics"]
    parent_metrics = None
    if parent is not None:
        report(0.76, f"evaluating the active model {parent.name} on the same {len(test_idx)} galaxies")
        parent_metrics = evaluate_model(load_model(parent.checkpoint_path), survey, test_idx)
    mid = register_model(store, name, str(out), cfg.to_dict(), candidate, survey=row.name,
                         parent_id=parent.id if parent else None)
    report(0.8, f"registered candidate {name}: macro-F1 {candidate['macro_f1']:.4f}")
    embed_version(store, workspace, None, {"survey": row.name, "model": mid},
                  report=_reporter(store, job_id, 0.8, 0.98) if job_id else None, survey=survey,
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


def _source_split(model, source):
    """The source survey's training and held-out indices, as the model was trained on them."""
    tc = TrainCfg.from_dict({k: v for k, v in (model.checkpoint_meta.get("train_cfg") or {}).items()
                             if k != "model"}, "checkpoint")
    tr, va, te = resolve_split(source, tc)
    return tr, (va if len(va) else te)


def _target_truth(model, target, seed: int, limit: int = 2000) -> np.ndarray:
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


def adapt(store, workspace: Workspace, job_id: int | None, params: dict, show_bar: bool = False) -> dict:
    """See the module docstring. ``params``: ``survey`` (the target, required), ``model`` (default: the
    active one), ``epochs``, ``align`` (``ot``, ``mmd`` or ``none``), ``align_weight``, ``name``."""
    report = _reporter(store, job_id, 0.0, 1.0) if job_id else (lambda f, m: None)
    if not params.get("survey"):
        raise GalaxalignError("adapt needs the target survey's name (params 'survey')")
    row_t, target = _survey_for(store, params["survey"])
    mv = get_model_version(store, params["model"]) if params.get("model") else active_model(store)
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
    cfg = AdaptCfg(**{k: params[k] for k in ("epochs", "align", "align_weight", "seed") if k in params})
    train_idx, held_idx = _source_split(model, source)
    report(0.02, f"adapting {mv.name} from {row_s.name} ({len(train_idx)} labelled) to {row_t.name} "
                 f"({len(target)} galaxies), align {cfg.align}")
    phase = _reporter(store, job_id, 0.05, 0.75) if job_id else (
        _bar_reporter(cfg.epochs, f"adapting to {row_t.name}") if show_bar else None)
    scored = _target_truth(model, target, cfg.seed)
    acc_before = evaluate_model(model, target, scored)["accuracy"] if len(scored) else None
    res = adapt_model(model, source, train_idx, target, cfg, progress=phase)
    acc_after = evaluate_model(model, target, scored)["accuracy"] if len(scored) else None
    report(0.76, f"domain AUC {res['domain_auc_before']:.3f} → {res['domain_auc_after']:.3f}" +
           (f"; accuracy on {len(scored)} labelled {row_t.name} galaxies {acc_before:.3f} → {acc_after:.3f}"
            if len(scored) else "") + "; recalibrating")
    fam = calibrate_familiarity(model, source, source.labels, train_idx, held_idx, cfg.seed)
    name = params.get("name") or f"adapt-{row_t.name}-{utcnow():%Y%m%d-%H%M%S}"
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
    embed_version(store, workspace, None, {"survey": row_t.name, "model": mid},
                  report=_reporter(store, job_id, 0.8, 0.98) if job_id else None, survey=target, model=model)
    report(1.0, f"{name}: candidate for {row_t.name}; domain AUC {res['domain_auc_before']:.3f} → "
                f"{res['domain_auc_after']:.3f} (0.5: mixed). Activate it from Model versions.")
    return {"model": name, "model_id": mid, "source": row_s.name, "target": row_t.name, **metrics,
            "seconds": res["seconds"], "history": res["history"]}


# One table of job kinds: the queue accepts these and the worker dispatches through it.
def project_map(store, workspace: Workspace, job_id: int | None, params: dict) -> dict:
    """A t-SNE or UMAP map of a survey's embeddings for Explore (``params``: ``survey``, ``model`` (default:
    the active one), ``method``): past :data:`galaxalign.projection.FIT_LIMIT` galaxies fitted on a
    sample and the rest placed into it; cached beside the embeddings, where the page reads it."""
    method = params.get("method")
    if method not in ("pca", "tsne", "umap"):
        raise GalaxalignError(f"projection method {method!r} must be one of pca, tsne, umap")
    row = get_survey(store, params.get("survey") or list_surveys(store)[0].name)
    mv = get_model_version(store, params["model"]) if params.get("model") else active_model(store)
    if mv is None or not mv.embeddings_path:
        raise GalaxalignError(f"no embedded model to project for survey {row.name!r}")
    report = _reporter(store, job_id, 0.0, 1.0) if job_id else (lambda f, m: None)
    folder = Path(mv.embeddings_path) / row.name
    emb, _ = load_embeddings(folder)
    report(0.05, f"projecting {len(emb):,} galaxies of {row.name} by {method}")
    t0 = time.time()
    cached_projection(folder, emb, method)
    report(1.0, f"{method} map of {len(emb):,} galaxies ready in {time.time() - t0:.0f} s")
    return {"survey": row.name, "model": mv.name, "method": method, "galaxies": int(len(emb)),
            "seconds": round(time.time() - t0, 1)}


JOBS = {"retrain": retrain, "embed": embed_version, "embed_shard": _embed_shard, "adapt": adapt,
        "project": project_map}
# who may start a job of each kind from the app (default: admins); a map is a researcher's own view
JOB_ROLES = {"project": "researcher"}
JOB_KINDS = tuple(JOBS)

DEMO_SURVEYS = ("demo", "first")
FIRST_CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "first-cpu.yaml")


STARTER_MODES = ("now", "job")


def bootstrap(workspace: Workspace, n: int | None = None, config: str | None = None, progress: bool = True,
              survey: str = "demo", starter: str = "now") -> dict:
    """Make a workspace ready for the app: the embedded survey, store, survey registered, admin account,
    the project's home page text, and a starter model trained, registered, embedded and activated. Each
    step is skipped if done.

    ``starter``: ``now`` trains it here before returning; ``job`` queues it as the worker's first job
    (``make run``: the app serves the survey at once — nothing on Classify needs a model — and the
    proposals appear when the job lands). Returns ``{"starter_job": id}`` when it queued one.

    ``survey``: ``demo`` (our synthetic Galaxy10 survey, the GZ2 workflow) or ``first`` (the real FIRST
    radio galaxies of the ``firstgalaxydata`` package, the flat workflow with radio symbols; its
    preparation is detected from the images and printed)."""
    if survey not in DEMO_SURVEYS:
        raise GalaxalignError(f"embedded survey {survey!r} is not one of {', '.join(DEMO_SURVEYS)}")
    if starter not in STARTER_MODES:
        raise GalaxalignError(f"starter {starter!r} is not one of {', '.join(STARTER_MODES)}")
    if survey == "demo":
        workspace.ensure_demo_survey(**({"n": n} if n else {}), progress=progress)
    else:
        workspace.create()
    store = open_store(workspace.database_url)
    out: dict = {}
    try:
        registered = [s.name for s in list_surveys(store)]
        if survey == "first" and "first" not in registered:
            # volunteers are there to label what experts have not: a fifth of the train split is left to them
            first_zip = survey_files.first_package_dir() / "galaxy_data_h5.zip"
            out["import"] = import_path(store, workspace, first_zip, "first", workflow="flat",
                                        train_config=config or FIRST_CONFIG, progress=progress, known_fraction=0.8)
        if survey == "demo" and "demo" not in registered:
            # volunteers are there to label what experts have not: a fifth of the demo is left to them
            register_survey(store, load_survey(workspace.demo_survey), "demo", known_fraction=0.8)
        admin_pw_file = workspace.root / "admin-password.txt"

        try:
            get_volunteer(store, "admin")
        except NotFound:
            pw = secrets.token_urlsafe(12)
            add_admin(store, "admin", pw)
            admin_pw_file.write_text(pw + "\n")
            admin_pw_file.chmod(0o600)
        out["admin_password_file"] = str(admin_pw_file)
        if project_settings(store).home_text is None and survey == "first":
            set_project_settings(store, None, title="Radio Galaxy Zoo · FIRST", home_text=default_home_text("first"),
                                 tagline="Sort real radio galaxies from the VLA's FIRST survey by the shape of their jets.")
        if not list_model_versions(store) and starter == "job":
            reap_stale_jobs(store, workspace=workspace)  # a starter whose worker was stopped is not pending
            pending = [j for j in list_jobs(store, 200) if j.kind == "retrain" and j.state in ("queued", "running")
                       and (j.params or {}).get("name") == "starter"]
            if not pending:
                out["starter_job"] = enqueue(store, "retrain", {"survey": survey, "config": config, "name": "starter",
                                                                "force_activate": True}, workspace=workspace)
            else:
                out["starter_job"] = pending[0].id
        elif not list_model_versions(store):
            t0 = time.perf_counter()
            res = retrain(store, workspace, None, {"survey": survey, "config": config, "name": "starter",
                                                   "force_activate": True}, show_bar=progress)
            out["starter"] = {**res, "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        store.dispose()
    return out
