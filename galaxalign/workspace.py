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

__all__ = ["Workspace", "default_workspace"]


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

    def embeddings_of(self, model: str, survey: str) -> Path:
        """Where model version ``model``'s embeddings, predictions, index and maps of ``survey`` live."""
        return self.embeddings / model / survey

    @property
    def database_url(self) -> str:
        return os.environ.get("GALAXALIGN_DATABASE_URL") or f"sqlite:///{self.root / 'galaxalign.db'}"

    def create(self) -> "Workspace":
        for p in (self.surveys, self.models, self.embeddings):
            p.mkdir(parents=True, exist_ok=True)
        return self


def default_workspace() -> Workspace:
    return Workspace(Path(os.environ.get("GALAXALIGN_WORKSPACE", "workspace")))
