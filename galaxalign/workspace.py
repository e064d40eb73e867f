"""The workspace folder: where the survey, models, embeddings, indexes and database live.

``Workspace("workspace")`` (default: ``$GALAXALIGN_WORKSPACE`` or ``./workspace``)::

    workspace/
      surveys/demo.h5        the embedded synthetic survey
      models/<version>/      checkpoints, config, metrics (one folder per model version)
      embeddings/<version>/  embeddings, predictions, FAISS index, cached projections
      galaxalign.db          the SQLite annotation store
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .synth import synth_survey

__all__ = ["Workspace", "default_workspace", "DEMO_SURVEY_SIZE", "DEMO_SURVEY_N"]

DEMO_SURVEY_N = 2000
DEMO_SURVEY_SIZE = 64
DEMO_SURVEY_SEED = 7


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def surveys(self) -> Path:
        return self.root / "surveys"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"

    @property
    def demo_survey(self) -> Path:
        return self.surveys / "demo.h5"

    @property
    def database_url(self) -> str:
        return os.environ.get("GALAXALIGN_DATABASE_URL") or f"sqlite:///{self.root / 'galaxalign.db'}"

    def create(self) -> "Workspace":
        for p in (self.surveys, self.models, self.embeddings):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def ensure_demo_survey(self, n: int = DEMO_SURVEY_N, size: int = DEMO_SURVEY_SIZE, progress: bool = True):
        """Render the demo survey if it is missing; returns the synth stats, or ``None`` if it existed."""
        self.create()
        if self.demo_survey.exists():
            return None
        return synth_survey(self.demo_survey, n=n, size=size, seed=DEMO_SURVEY_SEED, progress=progress)


def default_workspace() -> Workspace:
    return Workspace(Path(os.environ.get("GALAXALIGN_WORKSPACE", "workspace")))
