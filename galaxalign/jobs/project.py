"""The ``project`` job: a t-SNE, UMAP or PCA map of a survey's embeddings for Explore."""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import GalaxalignError
from ..inference import load_embeddings
from ..projection import cached_projection
from ..store import active_model, get_model_version, get_survey, list_surveys
from ..workspace import Workspace
from .params import ProjectParams
from .queue import job_kind, reporter

__all__ = ["project_map"]


@job_kind("project")
def project_map(store, workspace: Workspace, job_id: int | None, params: ProjectParams | dict) -> dict:
    """A t-SNE or UMAP map of a survey's embeddings for Explore (``params``: ``survey``, ``model`` (default:
    the active one), ``method``): past :data:`galaxalign.projection.FIT_LIMIT` galaxies fitted on a
    sample and the rest placed into it; cached beside the embeddings, where the page reads it."""
    p = params if isinstance(params, ProjectParams) else ProjectParams.from_dict(params)
    method = p.method
    row = get_survey(store, p.survey) if p.survey else list_surveys(store)[0]
    mv = get_model_version(store, p.model) if p.model is not None else active_model(store)
    if mv is None or not mv.embeddings_path:
        raise GalaxalignError(f"no embedded model to project for survey {row.name!r}")
    report = reporter(store, job_id)
    folder = Path(mv.embeddings_path) / row.name
    emb, _ = load_embeddings(folder)
    report(0.05, f"projecting {len(emb):,} galaxies of {row.name} by {method}")
    t0 = time.time()
    cached_projection(folder, emb, method)
    report(1.0, f"{method} map of {len(emb):,} galaxies ready in {time.time() - t0:.0f} s")
    return {"survey": row.name, "model": mv.name, "method": method, "galaxies": int(len(emb)),
            "seconds": round(time.time() - t0, 1)}
