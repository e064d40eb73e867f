"""What a volunteer sees next.

Never a galaxy they already classified, never a retired one. Gold-standard galaxies come at
``gold_rate``. Otherwise the active model's most uncertain galaxies come first (normalised entropy of
its class probabilities), with a random term of weight ``randomness`` so that volunteers working at
the same time spread over the queue and no galaxy waits for ever; galaxies closer to retirement get a
small bonus so that votes finish galaxies rather than scatter.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy import and_, exists, select

from .lookup import survey_row, volunteer_row
from .db import Store
from .models import Classification, Galaxy, ModelVersion, Prediction

__all__ = ["next_galaxy_for", "queue_scores"]


def queue_scores(entropy: np.ndarray, n_votes: np.ndarray, rng: np.random.Generator, randomness: float = 0.3,
                 retire_at: int = 5) -> np.ndarray:
    """Priority of each eligible galaxy: entropy (0–1) + a little for votes already in + noise."""
    return entropy + 0.1 * np.minimum(n_votes, retire_at) / retire_at + randomness * rng.random(len(entropy))


def next_galaxy_for(store: Store, volunteer: int | str, survey: int | str, rng: np.random.Generator | None = None,
                    gold_rate: float = 0.1, randomness: float = 0.3) -> Galaxy | None:
    """The next galaxy for ``volunteer`` in ``survey``, or ``None`` when nothing is left for them."""
    rng = rng or np.random.default_rng()
    with store.read() as s:
        v = volunteer_row(s, volunteer)
        sv = survey_row(s, survey)
        active = s.scalar(select(ModelVersion.id).where(ModelVersion.status == "active"))
        done = exists().where(Classification.galaxy_id == Galaxy.id, Classification.volunteer_id == v.id)
        base = (Galaxy.survey_id == sv.id, Galaxy.retired.is_(False), ~done)
        if gold_rate > 0 and rng.random() < gold_rate:
            gold = s.scalars(select(Galaxy.id).where(*base, Galaxy.gold.is_(True)).limit(200)).all()
            if gold:
                return s.get(Galaxy, int(rng.choice(gold)))
        q = select(Galaxy.id, Galaxy.n_votes, Prediction.entropy).where(*base)
        q = q.outerjoin(Prediction, and_(Prediction.galaxy_id == Galaxy.id,
                                         Prediction.model_version_id == (active if active is not None else -1)))
        rows = s.execute(q).all()
        if not rows:
            return None
        ids = np.array([r[0] for r in rows])
        votes = np.array([r[1] for r in rows], float)
        ent = np.array([r[2] if r[2] is not None else 0.5 for r in rows], float)
        return s.get(Galaxy, int(ids[np.argmax(queue_scores(ent, votes, rng, randomness))]))
