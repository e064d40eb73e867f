"""What a volunteer sees next.

Never a galaxy they already classified, never a retired one. Gold-standard galaxies come at
``gold_rate`` — by default a rate that decays as the volunteer's skill becomes known
(:func:`gold_rate_for`: often for a newcomer, rarely once they have answered many), from the survey
and from its linked gold survey of rendered galaxies, if any. Otherwise the active model's most
uncertain galaxies come first (normalised entropy of its class probabilities), with a random term of
weight ``randomness`` so that volunteers working at the same time spread over the queue and no galaxy
waits for ever; galaxies closer to retirement get a small bonus so that votes finish galaxies rather
than scatter.

``strategy`` chooses the uncertainty: ``entropy`` (the default), ``margin`` (one minus the gap between
the two most probable classes), ``disagreement`` (BALD-like: how much the model's text head and
symbol head disagree, :func:`galaxalign.inference.head_disagreement`), ``bald`` (the mutual information
of the ensemble of heads the last refresh fitted, :func:`galaxalign.heads.mutual_information` — where
more votes would teach the model most; the two heads' disagreement until a refresh has run), or
``random`` (no model: the baseline of the campaign benchmark).

On a large survey a request never reads every eligible galaxy: when more than :data:`POOL` are left,
the candidates are the active model's most uncertain ones (through the index on predictions by model
and entropy, or disagreement) and a slice of the survey from a random row (through the index on
galaxies by survey and row), :data:`POOL` in all; the scoring above then picks among them.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.exc import IntegrityError

from .db import Store, StoreError
from .lookup import active_model_row, galaxy_row, survey_row, volunteer_row
from .models import Classification, Galaxy, Lease, Prediction, utcnow
from .retirement import RetirementRule
from .surveys import gold_survey_ids

__all__ = ["next_galaxy_for", "queue_scores", "gold_rate_for", "set_queue_strategy", "QUEUE_STRATEGIES",
           "LEASE_SECONDS"]

LEASE_SECONDS = 120.0  # how long a galaxy on a volunteer's screen is held for them

QUEUE_STRATEGIES = ("entropy", "margin", "disagreement", "bald", "random")
POOL = 2000  # candidates scored per request when more galaxies than this are eligible
GOLD_START, GOLD_FLOOR, GOLD_HALF_LIFE = 0.3, 0.03, 8  # the decaying gold rate (gold_rate_for)


def gold_rate_for(n_gold_answered: int, start: float = GOLD_START, floor: float = GOLD_FLOOR,
                  half_life: float = GOLD_HALF_LIFE) -> float:
    """The share of a volunteer's tasks that are gold galaxies: ``start`` for a newcomer, halving (above
    ``floor``) every ``half_life`` gold answers — skill is measured early, then gold costs little."""
    return floor + (start - floor) * 0.5 ** (n_gold_answered / half_life)


def queue_scores(entropy: np.ndarray, n_votes: np.ndarray, rng: np.random.Generator, randomness: float = 0.3,
                 retire_at: int = 5) -> np.ndarray:
    """Priority of each eligible galaxy: entropy (0–1) + a little for votes already in + noise."""
    return entropy + 0.1 * np.minimum(n_votes, retire_at) / retire_at + randomness * rng.random(len(entropy))


def _uncertainty(strategy: str, values: list) -> np.ndarray:
    """0–1 per galaxy from the active model's prediction (``values``: its entropy, or its class
    probabilities for ``margin``; None without a prediction, scored 0.5)."""
    if strategy == "random":
        return np.zeros(len(values))
    if strategy in ("disagreement", "bald"):
        return np.array([d if d is not None else 0.0 for d in values], float)
    if strategy == "margin":
        def margin(p):
            if not p:
                return 0.5
            top = np.sort(np.asarray(p, float))[::-1]
            return 1.0 - (top[0] - (top[1] if len(top) > 1 else 0.0))
        return np.array([margin(p) for p in values], float)
    return np.array([e if e is not None else 0.5 for e in values], float)


def next_galaxy_for(store: Store, volunteer: int | str | None, survey: int | str, rng: np.random.Generator | None = None,
                    gold_rate: float | None = None, randomness: float = 0.3, strategy: str | None = None,
                    lease_seconds: float = LEASE_SECONDS) -> Galaxy | None:
    """The next galaxy for ``volunteer`` in ``survey``, or ``None`` when nothing is left for them.
    ``volunteer`` None: a visitor who has not voted yet (no guest row until their first vote), served as a
    newcomer. ``gold_rate``: a fixed share of gold tasks; None, the decaying :func:`gold_rate_for`.
    ``strategy``: None, the survey's ``queue_strategy``.

    The galaxy served is **held** for the volunteer for ``lease_seconds`` (a row in ``leases``, replacing
    the one they held): the queue counts other volunteers' live leases as votes on their way, so a galaxy
    that needs one more vote is not sent to several volunteers at once. Their vote releases it; an
    abandoned lease expires and the galaxy is served again."""
    if strategy is not None:
        _check_strategy(strategy)
    rng = rng or np.random.default_rng()
    taken: list[int] = []
    for _ in range(HOLD_TRIES):
        with store.read() as s:
            g = _pick(s, volunteer, survey, rng, gold_rate, randomness, strategy, taken)
        if g is None or volunteer is None or lease_seconds <= 0 or _hold(store, g.id, volunteer, lease_seconds):
            return g
        taken.append(g.id)  # others took its last places between our read and our write: pick again
    return g


HOLD_TRIES = 4  # picks before a volunteer is served a galaxy others fill meanwhile (its vote is kept late)


def _held_by_others(galaxy_id, vid: int):
    """How many other volunteers hold ``galaxy_id`` now (a column in a correlated query, or an id)."""
    return select(func.count()).select_from(Lease).where(Lease.galaxy_id == galaxy_id, Lease.volunteer_id != vid,
                                                         Lease.expires_at > utcnow())


def _hold(store: Store, galaxy_id: int, volunteer: int | str, seconds: float) -> bool:
    """``volunteer``'s one lease, now on ``galaxy_id`` until ``seconds`` from now — unless the galaxy's
    votes and others' live leases already fill it (checked with its row locked, in the same transaction as
    the lease is written, so two volunteers cannot both take its last place). True when held."""
    def fn(s):
        vid = volunteer_row(s, volunteer).id
        g = galaxy_row(s, galaxy_id, lock=True, with_survey=True)
        if g.n_votes + int(s.scalar(_held_by_others(g.id, vid)) or 0) >= RetirementRule.from_dict(g.survey.retirement).n_votes:
            return False
        s.execute(delete(Lease).where(Lease.volunteer_id == vid))
        s.add(Lease(volunteer_id=vid, galaxy_id=galaxy_id, expires_at=utcnow() + timedelta(seconds=seconds)))
        return True
    try:
        return store.write(fn)
    except IntegrityError:  # the same volunteer served in two tabs at once: one of the two leases stands
        return True


def _check_strategy(strategy: str) -> None:
    if strategy not in QUEUE_STRATEGIES:
        raise StoreError(f"queue strategy {strategy!r} must be one of {', '.join(QUEUE_STRATEGIES)}")


def set_queue_strategy(store: Store, survey: int | str, strategy: str) -> str:
    """What ``survey``'s queue puts first (one of :data:`QUEUE_STRATEGIES`) for the volunteers to come."""
    _check_strategy(strategy)

    def fn(s) -> str:
        survey_row(s, survey).queue_strategy = strategy
        return strategy
    return store.write(fn)


def _pick(s, volunteer, survey, rng, gold_rate, randomness, strategy, taken: list[int] = ()) -> Galaxy | None:
    """The chosen galaxy (see :func:`next_galaxy_for`), inside a read transaction."""
    vid = volunteer_row(s, volunteer).id if volunteer is not None else -1  # -1: nobody's votes to skip
    sv = survey_row(s, survey)
    strategy = strategy or sv.queue_strategy  # None: the survey's own (the Admin page sets it)
    active_row = active_model_row(s)
    active = active_row.id if active_row is not None else None
    done = exists().where(Classification.galaxy_id == Galaxy.id, Classification.volunteer_id == vid)
    room = Galaxy.n_votes + _held_by_others(Galaxy.id, vid).scalar_subquery() < RetirementRule.from_dict(sv.retirement).n_votes  # not full with votes on the way
    base = (Galaxy.survey_id == sv.id, Galaxy.retired.is_(False), ~done, room, Galaxy.id.not_in(list(taken)))
    golds = Galaxy.survey_id.in_(gold_survey_ids(sv))  # its own and its linked survey's (rendered)
    if gold_rate is None:
        answered = s.scalar(select(func.count()).select_from(Classification).join(
            Galaxy, Galaxy.id == Classification.galaxy_id).where(
            Classification.volunteer_id == vid, golds, Galaxy.gold.is_(True)))
        gold_rate = gold_rate_for(int(answered or 0))
    if gold_rate > 0 and rng.random() < gold_rate:
        gold = s.scalars(select(Galaxy.id).where(golds, Galaxy.retired.is_(False), ~done,
                                                 Galaxy.gold.is_(True)).limit(200)).all()
        if gold:
            return s.get(Galaxy, int(rng.choice(gold)))
    rows = _candidates(s, base, sv, strategy, active, rng)
    if not rows:
        return None
    ids = np.array([r[0] for r in rows])
    votes = np.array([r[1] for r in rows], float)
    unc = _uncertainty(strategy, [r[2] for r in rows])
    noise = 1.0 if strategy == "random" else randomness
    return s.get(Galaxy, int(ids[np.argmax(queue_scores(unc, votes, rng, noise))]))


def _candidates(s, base: tuple, sv, strategy: str, active: int | None, rng: np.random.Generator) -> list:
    """(id, n_votes, entropy or probs) of the galaxies to score: every eligible one on a small survey;
    on a large one the most uncertain ``POOL // 2`` and a slice from a random row, ``POOL`` in all."""
    bald = func.coalesce(Prediction.mutual_info, Prediction.disagreement)
    value = {"margin": Prediction.probs, "disagreement": Prediction.disagreement, "bald": bald}.get(
        strategy, Prediction.entropy)
    order = {"disagreement": Prediction.disagreement, "bald": bald}.get(strategy, Prediction.entropy)
    on_active = and_(Prediction.galaxy_id == Galaxy.id, Prediction.model_version_id == (active if active is not None
                                                                                       else -1))
    cols = (Galaxy.id, Galaxy.n_votes, value)
    rows = s.execute(select(*cols).where(*base).outerjoin(Prediction, on_active).limit(POOL + 1)).all()
    if len(rows) <= POOL:
        return rows
    picked: dict[int, tuple] = {}
    if strategy != "random" and active is not None:
        q = (select(*cols).join(Prediction, on_active).where(*base).order_by(order.desc())
             .limit(POOL // 2))
        picked.update((r[0], r) for r in s.execute(q).all())
    start = int(rng.integers(0, max(1, sv.n_galaxies)))
    for cond in (Galaxy.idx >= start, Galaxy.idx < start):  # from the random row on, then round again
        want = POOL - len(picked)
        if want <= 0:
            break
        q = select(*cols).where(*base, cond).outerjoin(Prediction, on_active).order_by(Galaxy.idx).limit(want)
        picked.update((r[0], r) for r in s.execute(q).all())
    return list(picked.values())
