"""The store's public API: volunteers, surveys, votes, model versions, predictions, jobs.

Every function takes the :class:`~galaxalign.store.db.Store` first and does its work in one
transaction; a refusal raises :class:`StoreError` (or a subclass) and writes nothing.

>>> store = open_store("sqlite:///workspace/galaxalign.db")                       # doctest: +SKIP
>>> add_volunteer(store, "ada", "volunteer", "correct horse battery")             # doctest: +SKIP
>>> sid = register_survey(store, load_survey("x.h5"), name="demo")                # doctest: +SKIP
>>> g = next_galaxy_for(store, "ada", "demo")                                     # doctest: +SKIP
>>> record_classification(store, "ada", g.id, [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]])
"""
from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..taxonomy import GZ2_TREE, LABELSET_DIR, PathError, get_label_set
from ..validate import NAME_RE, check_fraction, check_name, check_proposal, check_seconds, is_integer, short
from .db import Store, StoreError
from .models import (JOB_STATES, ROLES, Classification, Galaxy, Job, ModelVersion, Prediction, SurveyRow, Volunteer,
                     utcnow)

__all__ = [
    "NotFound", "DuplicateVote", "RetiredGalaxy", "InvalidAnswer", "AccessDenied", "RetirementRule",
    "VoteResult", "WORKFLOW_VERSION", "FLAT_TASK",
    "add_volunteer", "authenticate", "get_volunteer", "set_password", "require_role",
    "register_survey", "get_survey", "list_surveys", "get_galaxy",
    "record_classification", "undo_last_classification",
    "register_model", "activate_model", "active_model", "list_model_versions", "get_model_version",
    "set_model_embeddings", "store_predictions", "prediction_for", "set_proposal_gate",
    "enqueue_job_row", "update_job", "finish_job", "get_job", "list_jobs", "claim_job", "relocate_paths",
]

WORKFLOW_VERSION = "1.0"
FLAT_TASK = "FLAT"
LOG_TAIL_CHARS = 4000


class NotFound(StoreError):
    pass


class DuplicateVote(StoreError):
    pass


class RetiredGalaxy(StoreError):
    pass


class InvalidAnswer(StoreError):
    pass


class AccessDenied(StoreError):
    pass


@dataclass(frozen=True)
class RetirementRule:
    """Retire after ``n_votes`` votes, or from ``early_votes`` on when the top class has at least
    ``early_agreement`` of them (Zooniverse/Caesar-style "consensus" retirement)."""

    n_votes: int = 5
    early_votes: int = 3
    early_agreement: float = 0.8


@dataclass(frozen=True)
class VoteResult:
    classification_id: int
    galaxy_id: int
    resolved_class: int | None
    n_votes: int
    retired: bool
    consensus_label: int | None
    agreement: float | None


# --- volunteers ----------------------------------------------------------------------------------

_hasher = None


def _ph():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def _check_name(name: str, what: str = "volunteer name") -> str:
    return check_name(name, what, StoreError)


def _key(which: Any, what: str) -> int | str:
    """An id (integer) or a name (string) as given to a lookup; anything else is refused by name."""
    if is_integer(which):
        return int(which)
    if isinstance(which, str):
        return which
    raise NotFound(f"{what} {short(which)}: give an integer id or a name")


def add_volunteer(store: Store, name: str, role: str = "volunteer", password: str | None = None) -> int:
    """Create an account; the password is stored as an argon2 hash only. Returns its id."""
    _check_name(name)
    if role not in ROLES:
        raise StoreError(f"role {short(role)} is not one of {', '.join(ROLES)}")
    if password is not None and (not isinstance(password, str) or len(password) < 8):
        raise StoreError(f"the password for {name!r} must have at least 8 characters")
    hashed = _ph().hash(password) if password is not None else None

    def fn(s: Session) -> int:
        other = s.scalar(select(Volunteer.name).where(func.lower(Volunteer.name) == name.lower()))
        if other is not None:  # "ADA" and "ada" would be two people nobody can tell apart
            raise StoreError(f"volunteer {name!r} already exists" + (f" (as {other!r})" if other != name else ""))
        v = Volunteer(name=name, role=role, password_hash=hashed)
        s.add(v)
        s.flush()
        return v.id

    try:
        return store.write(fn)
    except IntegrityError:
        raise StoreError(f"volunteer {name!r} already exists") from None


def set_password(store: Store, name: str, password: str) -> None:
    if len(password) < 8:
        raise StoreError(f"the password for {name!r} must have at least 8 characters")
    hashed = _ph().hash(password)

    def fn(s: Session):
        v = _volunteer(s, name)
        v.password_hash = hashed
    store.write(fn)


def authenticate(store: Store, name: str, password: str) -> Volunteer | None:
    """The volunteer if ``password`` matches, else ``None`` (never says which part was wrong)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    with store.read() as s:
        v = s.scalar(select(Volunteer).where(Volunteer.name == name, Volunteer.active.is_(True)))
    if v is None or not v.password_hash:
        _ph().hash("timing-equaliser")  # comparable work whether or not the name exists
        return None
    try:
        _ph().verify(v.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return v


def _volunteer(s: Session, who: int | str) -> Volunteer:
    who = _key(who, "volunteer")
    v = s.get(Volunteer, who) if isinstance(who, int) else s.scalar(select(Volunteer).where(Volunteer.name == who))
    if v is None:
        raise NotFound(f"volunteer {short(who)} does not exist")
    return v


def require_role(store: Store, who: int | str, role: str) -> Volunteer:
    """The volunteer if their role is ``role`` or above (volunteer < researcher < admin), else
    :class:`AccessDenied`. The app calls this on the server before every privileged action."""
    v = get_volunteer(store, who)
    if ROLES.index(v.role) < ROLES.index(role) or not v.active:
        raise AccessDenied(f"{v.name!r} is a {v.role}; this needs a {role}")
    return v


def get_volunteer(store: Store, who: int | str) -> Volunteer:
    with store.read() as s:
        return _volunteer(s, who)


# --- surveys and galaxies ------------------------------------------------------------------------

def register_survey(store: Store, survey, name: str, workflow: str = "gz2", gold_fraction: float = 0.05,
                    known_fraction: float = 1.0, seed: int = 0, train_config: str | None = None) -> int:
    """Add a loaded :class:`~galaxalign.data.Survey` and all its galaxies; returns the survey id.

    ``workflow``: ``gz2`` (the decision tree; needs a Galaxy10 or GalaxyMNIST label set) or ``flat``
    (one question whose answers are the survey's classes). A random ``known_fraction`` of the file's
    labels is recorded as known (expert) labels — the rest is left for volunteers, and stays in the
    file as ground truth for evaluation — and a random ``gold_fraction`` of all labelled galaxies, taken
    from the known ones, becomes the gold standard used to measure volunteer skill.
    """
    _check_name(name, "survey name")
    if workflow not in ("gz2", "flat"):
        raise StoreError(f"workflow {workflow!r} must be 'gz2' or 'flat'")
    if workflow == "gz2" and (survey.label_set is None or survey.label_set.tree != "gz2"):
        raise StoreError(f"survey {name!r}: the GZ2 workflow needs a label set with the GZ2 tree (Galaxy10, "
                         "GalaxyMNIST or a file with 'tree: gz2'); use workflow 'flat' for a plain class list")
    cat = survey.catalog
    labels = survey.labels
    if not 0 <= known_fraction <= 1 or not 0 <= gold_fraction <= known_fraction:
        raise StoreError(f"survey {name!r}: need 0 ≤ gold_fraction ≤ known_fraction ≤ 1")
    rng = np.random.default_rng(seed)
    labelled = rng.permutation(np.flatnonzero(labels >= 0))
    known = set(labelled[:int(round(known_fraction * len(labelled)))].tolist())
    gold = set(labelled[:int(round(gold_fraction * len(labelled)))].tolist())
    ra = cat["ra"].to_numpy() if "ra" in cat else np.full(len(cat), np.nan)
    dec = cat["dec"].to_numpy() if "dec" in cat else np.full(len(cat), np.nan)

    def fn(s: Session) -> int:
        other = s.scalar(select(SurveyRow.name).where(func.lower(SurveyRow.name) == name.lower()))
        if other is not None:
            raise StoreError(f"survey {name!r} is already registered" + (f" (as {other!r})" if other != name else ""))
        ls = survey.label_set
        builtin = ls is not None and ls.source is not None and Path(ls.source).parent == LABELSET_DIR
        prep = getattr(survey, "preparation", None)
        row = SurveyRow(name=name, path=str(survey.path), kind=survey.kind,
                        label_set=ls.name if ls else None, label_set_file=None if (ls is None or builtin) else ls.source,
                        class_names=list(survey.class_names), workflow=workflow, n_galaxies=len(survey),
                        preparation=prep.to_dict() if prep is not None else None, train_config=train_config)
        s.add(row)
        s.flush()
        s.execute(Galaxy.__table__.insert(), [
            {"survey_id": row.id, "id_str": str(i_s), "idx": i, "ra": _f(ra[i]), "dec": _f(dec[i]),
             "known_label": int(labels[i]) if i in known else None, "gold": i in gold, "n_votes": 0,
             "retired": False} for i, i_s in enumerate(survey.id_str)])
        return row.id

    return store.write(fn)


def _f(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _survey(s: Session, which: int | str) -> SurveyRow:
    which = _key(which, "survey")
    row = s.get(SurveyRow, which) if isinstance(which, int) else s.scalar(select(SurveyRow).where(SurveyRow.name == which))
    if row is None:
        raise NotFound(f"survey {short(which)} is not registered")
    return row


def get_survey(store: Store, which: int | str) -> SurveyRow:
    with store.read() as s:
        return _survey(s, which)


def list_surveys(store: Store) -> list[SurveyRow]:
    with store.read() as s:
        return list(s.scalars(select(SurveyRow).order_by(SurveyRow.id)))


def _galaxy(s: Session, galaxy: int | str, survey_id: int | None = None, lock: bool = False) -> Galaxy:
    if is_integer(galaxy):
        q = select(Galaxy).where(Galaxy.id == int(galaxy))
    elif not isinstance(galaxy, str):
        raise NotFound(f"galaxy {short(galaxy)}: give an integer id or the catalogue's id_str")
    else:
        q = select(Galaxy).where(Galaxy.id_str == str(galaxy))
        if survey_id is not None:
            q = q.where(Galaxy.survey_id == survey_id)
    if lock and s.bind.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises writers
        q = q.with_for_update()
    rows = list(s.scalars(q.limit(2)))
    if not rows:
        raise NotFound(f"galaxy {short(galaxy)} does not exist" + (" in that survey" if survey_id is not None else ""))
    if len(rows) > 1:
        raise StoreError(f"galaxy {galaxy!r} exists in several surveys; name the survey")
    if survey_id is not None and rows[0].survey_id != survey_id:  # an integer id names one galaxy anywhere
        raise StoreError(f"galaxy {galaxy!r} belongs to another survey (id {rows[0].survey_id}), not survey {survey_id}")
    return rows[0]


def get_galaxy(store: Store, galaxy: int | str, survey: int | str | None = None) -> Galaxy:
    with store.read() as s:
        sid = _survey(s, survey).id if survey is not None else None
        return _galaxy(s, galaxy, sid)


# --- classifications -----------------------------------------------------------------------------

def _validate_answers(survey: SurveyRow, answers: Sequence) -> tuple[list[list], int | None]:
    """Check an answer path for this survey's workflow; return it (as JSON lists) and its class."""
    if (not isinstance(answers, (list, tuple)) or not answers
            or not all(isinstance(a, (list, tuple)) and len(a) == 2 for a in answers)):
        raise InvalidAnswer(f"answers {short(answers)}: expected a list of [task, answer] pairs")
    if survey.workflow == "flat":
        if (not isinstance(answers, (list, tuple)) or len(answers) != 1 or len(answers[0]) != 2
                or answers[0][0] != FLAT_TASK):
            raise InvalidAnswer(f"a flat-workflow answer is [[{FLAT_TASK!r}, class index]], got {answers!r}")
        k = answers[0][1]
        if not is_integer(k) or not 0 <= int(k) < len(survey.class_names):
            raise InvalidAnswer(f"class {short(k)} is out of range 0–{len(survey.class_names) - 1} for survey "
                                f"{survey.name!r}")
        return [[FLAT_TASK, int(k)]], int(k)
    try:
        path = GZ2_TREE.validate(answers)
    except PathError as e:
        raise InvalidAnswer(f"invalid answer path: {e}") from None
    return [list(p) for p in path], get_label_set(survey.label_set_file or survey.label_set).resolve(path)


def record_classification(store: Store, volunteer: int | str, galaxy: int | str, answers: Sequence,
                          seconds: float | None = None, proposal: tuple[int, float] | None = None,
                          model_version_id: int | None = None, survey: int | str | None = None,
                          rule: RetirementRule = RetirementRule()) -> VoteResult:
    """Record one volunteer's answers for one galaxy, update its vote count, consensus and retirement.

    ``proposal`` is the model's ``(class, confidence)`` that was pre-selected on screen; the vote is
    "accepted" when the volunteer's class equals it. Refused (nothing written): an unknown volunteer or
    galaxy, an invalid path, a second vote by the same volunteer, a vote for a retired galaxy.
    """
    seconds = check_seconds(seconds, StoreError)
    if model_version_id is not None and not is_integer(model_version_id):
        raise NotFound(f"model version {short(model_version_id)}: give its integer id")

    def fn(s: Session) -> VoteResult:
        v = _volunteer(s, volunteer)
        if not v.active:
            raise AccessDenied(f"volunteer {v.name!r} is deactivated")
        sid = _survey(s, survey).id if survey is not None else None
        g = _galaxy(s, galaxy, sid, lock=True)
        if g.retired:
            raise RetiredGalaxy(f"galaxy {g.id_str!r} is retired ({g.retired_reason}); it takes no more votes")
        path, cls = _validate_answers(g.survey, answers)
        prop = check_proposal(proposal, len(g.survey.class_names), InvalidAnswer)
        if model_version_id is not None and s.get(ModelVersion, int(model_version_id)) is None:
            raise NotFound(f"model version {int(model_version_id)} does not exist")
        if s.scalar(select(Classification.id).where(Classification.galaxy_id == g.id,
                                                     Classification.volunteer_id == v.id)) is not None:
            raise DuplicateVote(f"volunteer {v.name!r} has already classified galaxy {g.id_str!r}")
        c = Classification(galaxy_id=g.id, volunteer_id=v.id, workflow=g.survey.workflow,
                           workflow_version=WORKFLOW_VERSION, answers=path, resolved_class=cls,
                           proposal_class=None if prop is None else prop[0],
                           proposal_confidence=None if prop is None else prop[1],
                           model_version_id=model_version_id,
                           accepted=None if prop is None else (cls == prop[0]), seconds=seconds)
        s.add(c)
        s.flush()
        _refresh_consensus(s, g, rule)
        return VoteResult(c.id, g.id, cls, g.n_votes, g.retired, g.consensus_label, g.consensus_agreement)

    try:
        return store.write(fn)
    except IntegrityError:  # the unique constraint caught a race the check above could not see
        raise DuplicateVote(f"volunteer {volunteer!r} has already classified galaxy {galaxy!r}") from None


def _refresh_consensus(s: Session, g: Galaxy, rule: RetirementRule) -> None:
    classes = [c for c in s.scalars(select(Classification.resolved_class).where(Classification.galaxy_id == g.id))]
    n = len(classes)
    g.n_votes = n
    counts: dict[int | None, int] = {}
    for c in classes:
        counts[c] = counts.get(c, 0) + 1
    top, top_n = None, 0
    for c, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or 0)):  # ties: a class
        top, top_n = c, k
        break
    g.consensus_label = top
    g.consensus_agreement = top_n / n if n else None
    if not g.retired:
        if n >= rule.n_votes:
            g.retired, g.retired_reason = True, "vote_limit"
        elif n >= rule.early_votes and top is not None and top_n / n >= rule.early_agreement:
            g.retired, g.retired_reason = True, "consensus"
        if g.retired:
            g.retired_at = utcnow()


def undo_last_classification(store: Store, volunteer: int | str, galaxy: int | str,
                             rule: RetirementRule = RetirementRule()) -> None:
    """Withdraw a volunteer's vote (used by "Back" right after voting); un-retires if it no longer holds."""

    def fn(s: Session):
        v = _volunteer(s, volunteer)
        g = _galaxy(s, galaxy, lock=True)
        c = s.scalar(select(Classification).where(Classification.galaxy_id == g.id, Classification.volunteer_id == v.id))
        if c is None:
            raise NotFound(f"volunteer {v.name!r} has no vote on galaxy {g.id_str!r}")
        s.delete(c)
        s.flush()
        g.retired, g.retired_reason, g.retired_at = False, None, None
        _refresh_consensus(s, g, rule)
    store.write(fn)


# --- model versions and predictions --------------------------------------------------------------

def register_model(store: Store, name: str, checkpoint_path: str, config: dict, metrics: dict,
                   survey: int | str | None = None, parent_id: int | None = None,
                   embeddings_path: str | None = None) -> int:
    """Record a trained model as a ``candidate``; its checkpoint's sha256 is computed here."""
    from pathlib import Path

    from ..model import file_sha256

    _check_name(name, "model version name")
    p = Path(checkpoint_path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.is_file():
        raise NotFound(f"{p}: checkpoint file does not exist")
    digest = file_sha256(p)

    def fn(s: Session) -> int:
        if s.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
            raise StoreError(f"model version {name!r} already exists")
        sid = _survey(s, survey).id if survey is not None else None
        mv = ModelVersion(name=name, survey_id=sid, config=_jsonable(config), checkpoint_path=str(p), sha256=digest,
                          metrics=_jsonable(metrics), parent_id=parent_id, status="candidate",
                          embeddings_path=embeddings_path)
        s.add(mv)
        s.flush()
        return mv.id
    return store.write(fn)


def _jsonable(obj: Any) -> Any:
    """Plain JSON (no NaN, no numpy scalars) for JSON columns."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    return obj


def get_model_version(store: Store, which: int | str) -> ModelVersion:
    with store.read() as s:
        mv = s.get(ModelVersion, which) if isinstance(which, int) else \
            s.scalar(select(ModelVersion).where(ModelVersion.name == which))
        if mv is None:
            raise NotFound(f"model version {which!r} does not exist")
        return mv


def activate_model(store: Store, which: int | str) -> ModelVersion:
    """Make one version active and retire the one that was; one transaction, so there is always
    exactly one active model once any has been activated."""

    def fn(s: Session) -> ModelVersion:
        mv = s.get(ModelVersion, which) if isinstance(which, int) else \
            s.scalar(select(ModelVersion).where(ModelVersion.name == which))
        if mv is None:
            raise NotFound(f"model version {which!r} does not exist")
        s.execute(update(ModelVersion).where(ModelVersion.status == "active", ModelVersion.id != mv.id)
                  .values(status="retired"))
        mv.status, mv.activated_at = "active", utcnow()
        return mv
    return store.write(fn)


def active_model(store: Store) -> ModelVersion | None:
    with store.read() as s:
        return s.scalar(select(ModelVersion).where(ModelVersion.status == "active"))


def list_model_versions(store: Store) -> list[ModelVersion]:
    with store.read() as s:
        return list(s.scalars(select(ModelVersion).order_by(ModelVersion.id)))


def set_model_embeddings(store: Store, model_id: int, path: str) -> None:
    def fn(s: Session):
        mv = s.get(ModelVersion, model_id)
        if mv is None:
            raise NotFound(f"model version {model_id} does not exist")
        mv.embeddings_path = path
    store.write(fn)


def store_predictions(store: Store, model_id: int, survey: int | str, probs: np.ndarray,
                      batch: int = 2000, ood: np.ndarray | None = None) -> int:
    """Replace the predictions of ``model_id`` for a survey with ``probs`` (N, C), row i = galaxy idx i;
    ``ood`` (N,) the unfamiliarity of each galaxy (:mod:`galaxalign.ood`) when the model has one."""
    probs = np.asarray(probs, float)
    if ood is not None and len(ood) != len(probs):
        raise StoreError(f"ood scores cover {len(ood)} galaxies; the predictions {len(probs)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(probs > 0, probs * np.log(probs), 0.0), axis=1) / math.log(max(2, probs.shape[1]))

    def fn(s: Session) -> int:
        sv = _survey(s, survey)
        if probs.shape[0] != sv.n_galaxies:
            raise StoreError(f"predictions cover {probs.shape[0]} galaxies; survey {sv.name!r} has {sv.n_galaxies}")
        gid = dict(s.execute(select(Galaxy.idx, Galaxy.id).where(Galaxy.survey_id == sv.id)).all())
        s.execute(Prediction.__table__.delete().where(Prediction.model_version_id == model_id,
                                                      Prediction.galaxy_id.in_(select(Galaxy.id).where(
                                                          Galaxy.survey_id == sv.id))))
        rows = [{"model_version_id": model_id, "galaxy_id": gid[i], "probs": [round(float(p), 5) for p in probs[i]],
                 "top_class": int(probs[i].argmax()), "confidence": float(probs[i].max()), "entropy": float(ent[i]),
                 "ood": None if ood is None or not np.isfinite(ood[i]) else float(ood[i])}
                for i in range(len(probs))]
        for k in range(0, len(rows), batch):
            s.execute(Prediction.__table__.insert(), rows[k:k + batch])
        return len(rows)
    return store.write(fn)


def set_proposal_gate(store: Store, model: int | str, confidence_floor: float | None = None,
                      ood_max: float | None = None) -> dict:
    """Override when the Classify page pre-selects this model's proposals (see :mod:`galaxalign.ood`):
    below ``confidence_floor`` or above unfamiliarity ``ood_max`` nothing is pre-selected. Returns the gate."""
    if confidence_floor is not None:
        check_fraction(confidence_floor, "confidence_floor", StoreError)
    if ood_max is not None and not (isinstance(ood_max, (int, float)) and 0.0 <= float(ood_max) <= 1e9):
        raise StoreError(f"ood_max {short(ood_max)}: must be a number between 0 and 1e9")

    def fn(s: Session) -> dict:
        mv = s.get(ModelVersion, model) if isinstance(model, int) else \
            s.scalar(select(ModelVersion).where(ModelVersion.name == model))
        if mv is None:
            raise NotFound(f"model version {model!r} does not exist")
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


def prediction_for(store: Store, galaxy_id: int, model_id: int | None = None) -> Prediction | None:
    """The active (or given) model's prediction for a galaxy, if there is one."""
    with store.read() as s:
        if model_id is None:
            model_id = s.scalar(select(ModelVersion.id).where(ModelVersion.status == "active"))
            if model_id is None:
                return None
        return s.scalar(select(Prediction).where(Prediction.galaxy_id == galaxy_id,
                                                 Prediction.model_version_id == model_id))


# --- jobs ----------------------------------------------------------------------------------------

def enqueue_job_row(store: Store, kind: str, params: dict | None = None, requested_by: int | str | None = None) -> int:
    def fn(s: Session) -> int:
        vid = _volunteer(s, requested_by).id if requested_by is not None else None
        j = Job(kind=kind, state="queued", params=_jsonable(params or {}), requested_by=vid, log_tail="")
        s.add(j)
        s.flush()
        return j.id
    return store.write(fn)


def _job(s: Session, job_id: int) -> Job:
    j = s.get(Job, job_id)
    if j is None:
        raise NotFound(f"job {job_id} does not exist")
    return j


def claim_job(store: Store, job_id: int, pid: int) -> Job | None:
    """Move a queued job to running (returns None if it is no longer queued, e.g. cancelled)."""
    def fn(s: Session):
        j = _job(s, job_id)
        if j.state != "queued":
            return None
        j.state, j.started_at, j.heartbeat_at, j.worker_pid = "running", utcnow(), utcnow(), pid
        return j
    return store.write(fn)


def update_job(store: Store, job_id: int, progress: float | None = None, message: str | None = None,
               log: str | None = None) -> None:
    """Heartbeat plus optional progress (0–1), status message and a log line (tail kept)."""
    def fn(s: Session):
        j = _job(s, job_id)
        j.heartbeat_at = utcnow()
        if progress is not None:
            j.progress = float(min(1.0, max(0.0, progress)))
        if message is not None:
            j.message = message[:500]
        if log:
            stamp = utcnow().strftime("%H:%M:%S")
            j.log_tail = ((j.log_tail or "") + f"{stamp} {log}\n")[-LOG_TAIL_CHARS:]
    store.write(fn)


def finish_job(store: Store, job_id: int, state: str, result: dict | None = None, error: str | None = None) -> None:
    if state not in JOB_STATES or state in ("queued", "running"):
        raise StoreError(f"a job cannot finish as {state!r}")

    def fn(s: Session):
        j = _job(s, job_id)
        j.state, j.finished_at = state, utcnow()
        if result is not None:
            j.result = _jsonable(result)
        if error:
            j.error = error[-4000:]
            j.log_tail = ((j.log_tail or "") + f"{utcnow():%H:%M:%S} error: {error.splitlines()[-1][:300]}\n")[-LOG_TAIL_CHARS:]
        if state == "succeeded":
            j.progress = 1.0
    store.write(fn)


def get_job(store: Store, job_id: int) -> Job:
    with store.read() as s:
        return _job(s, job_id)


def list_jobs(store: Store, limit: int = 50) -> list[Job]:
    with store.read() as s:
        return list(s.scalars(select(Job).order_by(Job.id.desc()).limit(limit)))


def relocate_paths(store: Store, old_root: str, new_root: str) -> int:
    """After a workspace folder is copied or moved: rewrite the stored paths (survey files,
    checkpoints, embeddings) that start with ``old_root`` to start with ``new_root``. Returns the
    number of rows changed."""
    old_root, new_root = str(old_root).rstrip("/"), str(new_root).rstrip("/")

    def fn(s: Session) -> int:
        n = 0
        for obj in list(s.scalars(select(SurveyRow))) + list(s.scalars(select(ModelVersion))):
            for col in ("path", "checkpoint_path", "embeddings_path", "label_set_file", "train_config"):
                v = getattr(obj, col, None)
                if isinstance(v, str) and (v == old_root or v.startswith(old_root + "/")):
                    setattr(obj, col, new_root + v[len(old_root):])
                    n += 1
        return n
    return store.write(fn)
