"""Votes: one volunteer's answers for one galaxy, validated against the survey's workflow, with the
galaxy's vote count, consensus and retirement refreshed in the same transaction."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..taxonomy import GZ2_TREE, PathError, get_label_set
from ..validate import check_fraction, check_proposal, check_seconds, is_integer, short
from .db import Store, StoreError
from .lookup import AccessDenied, NotFound, galaxy_row, model_version_row, survey_row, volunteer_row
from .models import Classification, Galaxy, RegisteredSurvey, utcnow

__all__ = ["DuplicateVote", "RetiredGalaxy", "InvalidAnswer", "RetirementRule", "VoteResult", "WORKFLOW_VERSION",
           "FLAT_TASK", "record_classification", "is_blind", "set_blind_fraction"]

WORKFLOW_VERSION = "1.0"
FLAT_TASK = "FLAT"


class DuplicateVote(StoreError):
    pass


class RetiredGalaxy(StoreError):
    pass


class InvalidAnswer(StoreError):
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
                          rule: RetirementRule = RetirementRule(), blind: bool = False) -> VoteResult:
    """Record one volunteer's answers for one galaxy, update its vote count, consensus and retirement.

    ``proposal`` is the model's ``(class, confidence)`` that was pre-selected on screen; the vote is
    "accepted" when the volunteer's class equals it. ``blind``: a control task (:func:`is_blind`) — the
    proposal is what the model *would* have shown, hidden on purpose; ``accepted`` stays empty. Refused
    (nothing written): an unknown volunteer or galaxy, an invalid path, a second vote by the same
    volunteer, a vote for a retired galaxy.
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
        sid = survey_row(s, survey).id if survey is not None else None
        g = galaxy_row(s, galaxy, sid, lock=True)
        if g.retired:
            raise RetiredGalaxy(f"galaxy {g.id_str!r} is retired ({g.retired_reason}); it takes no more votes")
        path, cls = _validate_answers(g.survey, answers)
        prop = check_proposal(proposal, len(g.survey.class_names), InvalidAnswer)
        if model_version_id is not None:
            model_version_row(s, int(model_version_id))  # NotFound when there is no such version
        if s.scalar(select(Classification.id).where(Classification.galaxy_id == g.id,
                                                     Classification.volunteer_id == v.id)) is not None:
            raise DuplicateVote(f"volunteer {v.name!r} has already classified galaxy {g.id_str!r}")
        c = Classification(galaxy_id=g.id, volunteer_id=v.id, workflow=g.survey.workflow,
                           workflow_version=WORKFLOW_VERSION, answers=path, resolved_class=cls,
                           proposal_class=None if prop is None else prop[0],
                           proposal_confidence=None if prop is None else prop[1],
                           model_version_id=model_version_id, blind=blind if prop is not None else None,
                           accepted=None if (prop is None or blind) else (cls == prop[0]), seconds=seconds)
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


def is_blind(blind_fraction: float, volunteer_id: int, galaxy_id: int) -> bool:
    """Whether this volunteer's task on this galaxy is a control that shows no proposal. Decided by a
    hash of the two ids, so the same task is blind on every page load and in every process, and a
    ``blind_fraction`` of all tasks are, independently of the galaxy's difficulty."""
    digest = hashlib.blake2b(f"{int(volunteer_id)}:{int(galaxy_id)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < float(blind_fraction)


def set_blind_fraction(store: Store, survey: int | str, fraction: float) -> float:
    """Set the share of tasks in ``survey`` that show no proposal (the anchoring control; 0 turns it off)."""
    fraction = check_fraction(fraction, "blind fraction", StoreError)

    def fn(s: Session) -> float:
        survey_row(s, survey).blind_fraction = fraction
        return fraction
    return store.write(fn)
