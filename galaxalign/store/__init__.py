"""The annotation store: SQLAlchemy models, Alembic migrations, and one module per domain —
:mod:`~.accounts` (guests, sign-up, account management), :mod:`~.project` (settings, home page figures), :mod:`~.surveys`, :mod:`~.votes` (with :mod:`~.retirement`), :mod:`~.versions` (model
versions and predictions), :mod:`~.jobs`, :mod:`~.hunts` (rare-object hunts), :mod:`~.flags` (favourites
and odd flags), :mod:`~.talk` (comments, tags, mentions, moderation) — over one :mod:`~.lookup` module; read-side views in :mod:`~.consensus`, :mod:`~.queue`
and :mod:`~.export`.

Import from here (``from galaxalign.store import record_classification``), not from the modules. Every
function takes the :class:`Store` first and does its work in one transaction; a refusal raises
:class:`StoreError` (or a subclass) and writes nothing.

>>> store = open_store("sqlite:///workspace/galaxalign.db")                       # doctest: +SKIP
>>> add_volunteer(store, "ada", "volunteer", "correct horse battery")             # doctest: +SKIP
>>> sid = register_survey(store, load_survey("x.h5"), name="demo")                # doctest: +SKIP
>>> g = next_galaxy_for(store, "ada", "demo")                                     # doctest: +SKIP
>>> record_classification(store, "ada", g.id, [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]])
"""
from .accounts import *  # noqa: F401,F403
from .accounts import __all__ as _accounts
from .consensus import (CONSENSUS_METHODS, anchoring_estimate, retirement_summary, volunteer_history, consensus_labels, skill_weights, training_labels, training_votes, volunteer_skill,
                        volunteer_stats, vote_fractions)
from .db import Store, StoreError, migrate, open_store
from .export import export_classifications, export_vote_fractions, neutralise, write_table
from .flags import *  # noqa: F401,F403
from .flags import __all__ as _flags
from .hunts import *  # noqa: F401,F403
from .hunts import __all__ as _hunts
from .jobs import *  # noqa: F401,F403
from .jobs import __all__ as _jobs
from .lookup import *  # noqa: F401,F403
from .lookup import __all__ as _lookup
from .project import *  # noqa: F401,F403
from .project import __all__ as _project
from .queue import QUEUE_STRATEGIES, gold_rate_for, next_galaxy_for, set_queue_strategy
from .talk import *  # noqa: F401,F403
from .talk import __all__ as _talk
from .surveys import *  # noqa: F401,F403
from .surveys import __all__ as _surveys
from .versions import *  # noqa: F401,F403
from .versions import __all__ as _versions
from .votes import *  # noqa: F401,F403
from .votes import __all__ as _votes

__all__ = [*_lookup, *_project, *_accounts, *_surveys, *_votes, *_versions, *_jobs, *_hunts, *_flags, *_talk, "Store", "StoreError", "open_store",
           "migrate", "anchoring_estimate", "vote_fractions", "consensus_labels", "training_labels", "training_votes", "volunteer_skill", "volunteer_stats",
           "skill_weights", "next_galaxy_for", "set_queue_strategy", "gold_rate_for", "QUEUE_STRATEGIES", "CONSENSUS_METHODS", "retirement_summary", "volunteer_history", "export_classifications", "export_vote_fractions", "neutralise",
           "write_table"]
