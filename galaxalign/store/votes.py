"""Votes: one volunteer's answers for one galaxy, validated against the survey's workflow, with the
galaxy's vote count, consensus and retirement refreshed in the same transaction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..gate import TARGET_PRECISION, is_blind, proposal_decision
from ..taxonomy import GZ2_TREE, PathError, get_label_set
from ..validate import check_fraction, check_proposal, check_seconds, is_integer, short
from .db import Store, StoreError
from .lookup import (AccessDenied, NotFound, active_model_row, galaxy_row, model_version_row, survey_row,
                     volunteer_row)
from .models import Classification, Galaxy, Lease, Prediction, RegisteredSurvey, Volunteer, utcnow
from .project import settings_in
from .retirement import RETIREMENT_METHODS, RetirementRule, confusion_from_gold, decide
from .surveys import gold_survey_ids

__all__ = ["DuplicateVote", "InvalidAnswer", "RetirementRule", "VoteResult", "WORKFLOW_VERSION",
           "FLAT_TASK", "record_classification", "is_blind", "set_blind_fraction", "set_retirement", "RETIREMENT_METHODS"]

WORKFLOW_VERSION = "1.0"
FLAT_TASK = "FLAT"


class DuplicateVote(StoreError):
    pass


class InvalidAnswer(StoreError):
    pass


@dataclass(frozen=True)
class VoteResult:
    classification_id: int
    galaxy_id: int
    resolved_class: int | None
    n_votes: int
    retired: bool
    consensus_label: int | None
    agreement: float | None
    late: bool = False  # the galaxy had retired while on screen: stored and exported, not counted


def _validate_answers(survey: RegisteredSurvey, answers: Sequence) -> tuple[list[list], int | None]:
    """Check an answer path for this survey's workflow; return it (as JSON lists) and its class."""
    if (not isinstance(answers, (list, tuple)) or not answers
            or not all(isinstance(a, (list, tuple)) and len(a) == 2 for a in answers)):
        raise InvalidAnswer(f"answers {short(answers)}: expected a list of [task, answer] pairs")
    if survey.workflow == "flat":
        if len(answers) != 1 or answers[0][0] != FLAT_TASK:
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
                          rule: RetirementRule | None = None, blind: bool = False) -> VoteResult:
    """Record one volunteer's answers for one galaxy, update its vote count, consensus and retirement.

    ``proposal`` is the model's ``(class, confidence)`` that was pre-selected on screen; the vote is
    "accepted" when the volunteer's class equals it. ``blind``: a control task (:func:`is_blind`) — the
    proposal is what the model *would* have shown, hidden on purpose; ``accepted`` stays empty. Refused
    (nothing written): an unknown volunteer or galaxy, an invalid path, a second vote by the same
    volunteer. A vote for a galaxy that retired while it was on the volunteer's screen is **stored**,
    flagged ``late`` (exported, never counted toward the galaxy's consensus or retirement), as Panoptes
    does: nobody's work is refused because others finished the galaxy first. The vote releases the
    volunteer's lease (:func:`galaxalign.store.next_galaxy_for`). ``rule``: the survey's own retirement
    rule unless given (:mod:`galaxalign.store.retirement`).
    """
    seconds = check_seconds(seconds, StoreError)
    if not isinstance(blind, bool):
        raise InvalidAnswer(f"blind {short(blind)}: must be True or False")
    if model_version_id is not None and not is_integer(model_version_id):
        raise NotFound(f"model version {short(model_version_id)}: give its integer id")

    def fn(s: Session) -> VoteResult:
        v = volunteer_row(s, volunteer)
        if not v.active:
            raise AccessDenied(f"volunteer {v.name!r} is deactivated")
        if v.suspended_at is not None:
            raise AccessDenied(f"volunteer {v.name!r} is suspended; the vote was not recorded")
        sid = survey_row(s, survey).id if survey is not None else None
        g = galaxy_row(s, galaxy, sid, lock=True, with_survey=True)
        late = bool(g.retired)
        path, cls = _validate_answers(g.survey, answers)
        prop = check_proposal(proposal, len(g.survey.class_names), InvalidAnswer)
        if model_version_id is not None:
            model_version_row(s, int(model_version_id))  # NotFound when there is no such version
        votes = _votes_on(s, g)  # read once: the duplicate check and the recount both need them
        if any(vid == v.id for vid, *_ in votes):
            raise DuplicateVote(f"volunteer {v.name!r} has already classified galaxy {g.id_str!r}")
        c = Classification(galaxy_id=g.id, volunteer_id=v.id, workflow=g.survey.workflow,
                           workflow_version=WORKFLOW_VERSION, answers=path, resolved_class=cls,
                           proposal_class=None if prop is None else prop[0],
                           proposal_confidence=None if prop is None else prop[1],
                           model_version_id=model_version_id, blind=blind if prop is not None else None,
                           accepted=None if (prop is None or blind) else (cls == prop[0]), seconds=seconds,
                           guest=v.role == "guest", late=late)
        s.add(c)
        s.execute(delete(Lease).where(Lease.volunteer_id == v.id))
        s.flush()
        if not late:
            counted = [(vid, k, guest) for vid, k, guest, was_late in votes if not was_late]
            _refresh_consensus(s, g, rule, _counted(s, counted + [(v.id, cls, v.role == "guest")]))
        return VoteResult(c.id, g.id, cls, g.n_votes, g.retired, g.consensus_label, g.consensus_agreement, late)

    try:
        return store.write(fn)
    except IntegrityError:  # the unique constraint caught a race the check above could not see
        raise DuplicateVote(f"volunteer {volunteer!r} has already classified galaxy {galaxy!r}") from None


def _votes_on(s: Session, g: Galaxy) -> list[tuple[int, int | None, bool, bool]]:
    """``(volunteer id, class, by a guest now, late)`` of every vote on ``g``, oldest first."""
    return [(vid, cls, role == "guest", bool(late)) for vid, cls, role, late in s.execute(
        select(Classification.volunteer_id, Classification.resolved_class, Volunteer.role, Classification.late)
        .join(Volunteer, Volunteer.id == Classification.volunteer_id)
        .where(Classification.galaxy_id == g.id).order_by(Classification.id))]


def _counted(s: Session, votes: list[tuple[int, int | None, bool]]) -> list[tuple[int, int | None]]:
    """The votes that count toward consensus and retirement: all of them, or — where the project's
    guest rule is ``store`` — those of people with an account (a guest's votes count once they join)."""
    if any(g for _, _, g in votes) and settings_in(s).guest_votes == "store":
        votes = [x for x in votes if not x[2]]
    return [(vid, cls) for vid, cls, _ in votes]


def _refresh_consensus(s: Session, g: Galaxy, rule: RetirementRule | None,
                       votes: list[tuple[int, int | None]]) -> None:
    """Recount ``g`` under ``rule`` (None: its survey's own, :attr:`RegisteredSurvey.retirement`) from
    all its ``votes`` (:func:`_votes_on` and the one just added)."""
    sv = g.survey
    rule = rule or RetirementRule.from_dict(sv.retirement)
    n_classes = len(sv.class_names)
    confusions = None
    if rule.method == "skill":
        gold: dict[int, list] = {v: [] for v, _ in votes}
        for vid, answer, known in s.execute(
                select(Classification.volunteer_id, Classification.resolved_class, Galaxy.known_label)
                .join(Galaxy, Galaxy.id == Classification.galaxy_id)
                .where(Galaxy.survey_id.in_(gold_survey_ids(sv)), Galaxy.gold.is_(True), Galaxy.known_label.is_not(None),
                       Classification.volunteer_id.in_(list(gold)), Classification.galaxy_id != g.id)):
            gold[vid].append((known, answer))
        confusions = [confusion_from_gold(gold[v], n_classes, rule.prior_accuracy) for v, _ in votes]
    model_class, precision = None, TARGET_PRECISION
    if rule.model_votes > 0:
        model_class, precision = _model_vote(s, g)
    d = decide(rule, [c for _, c in votes], n_classes, confusions, model_class, precision)
    g.n_votes = len(votes)
    g.consensus_label, g.consensus_agreement = d.label, d.agreement
    if not g.retired and d.retire:
        g.retired, g.retired_reason, g.retired_at = True, d.reason, utcnow()


def _model_vote(s: Session, g: Galaxy) -> tuple[int | None, float]:
    """The active model's top class for ``g`` when its proposal gate would show it (else None), and the
    precision its gate was calibrated to."""
    mv = active_model_row(s)
    if mv is None:
        return None, TARGET_PRECISION
    pred = s.scalar(select(Prediction).where(Prediction.galaxy_id == g.id, Prediction.model_version_id == mv.id))
    gate = (mv.metrics or {}).get("proposal")
    precision = float((gate or {}).get("target_precision", TARGET_PRECISION))
    if pred is None or not proposal_decision(pred.confidence, pred.ood, gate)[0]:
        return None, precision
    return int(pred.top_class), precision


def set_blind_fraction(store: Store, survey: int | str, fraction: float) -> float:
    """Set the share of tasks in ``survey`` that show no proposal (the anchoring control; 0 turns it off)."""
    fraction = check_fraction(fraction, "blind fraction", StoreError)

    def fn(s: Session) -> float:
        survey_row(s, survey).blind_fraction = fraction
        return fraction
    return store.write(fn)


def set_retirement(store: Store, survey: int | str, **settings) -> dict:
    """Change ``survey``'s retirement rule (the :class:`RetirementRule` fields given; the rest kept) for
    the votes to come; galaxies already retired stay retired. Returns the whole rule as stored."""

    def fn(s: Session) -> dict:
        sv = survey_row(s, survey)
        rule = RetirementRule.from_dict({**(sv.retirement or {}), **settings})
        sv.retirement = rule.to_dict()
        return sv.retirement
    return store.write(fn)
