"""The annotation store: SQLAlchemy models, Alembic migrations, votes, consensus, queue, exports.

See :mod:`galaxalign.store.api` for the functions the app and the worker call.
"""
from .api import *  # noqa: F401,F403
from .api import __all__ as _api_all
from .consensus import consensus_labels, skill_weights, volunteer_skill, volunteer_stats, vote_fractions
from .db import Store, StoreError, migrate, open_store
from .export import export_classifications, export_vote_fractions, neutralise, write_table
from .queue import next_galaxy_for

__all__ = [*_api_all, "Store", "StoreError", "open_store", "migrate", "vote_fractions", "consensus_labels",
           "volunteer_skill", "volunteer_stats", "skill_weights", "next_galaxy_for", "export_classifications",
           "export_vote_fractions", "neutralise", "write_table"]
