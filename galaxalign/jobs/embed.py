"""The ``embed`` job: embed, predict and index a registered survey with a model version (split over the
workers as shard jobs when asked, :mod:`galaxalign.jobs.shards`)."""
from __future__ import annotations

from ..inference import embed_survey
from ..model import load_model
from ..store import get_model_version, get_survey
from ..surveys import open_survey
from ..workspace import Workspace
from .params import EmbedParams
from .publish import publish_embeddings
from .queue import job_kind, reporter
from .shards import dispatch as dispatch_shards

__all__ = ["embed_version"]


@job_kind("embed")
def embed_version(store, workspace: Workspace, job_id: int | None, params: EmbedParams | dict, report=None,
                  survey=None, model=None) -> dict:
    """Embed + predict + index a survey with model version ``params.model`` (name or id). A caller that
    already holds the opened survey and the loaded model (the re-train) passes them."""
    p = params if isinstance(params, EmbedParams) else EmbedParams.from_dict(params)
    if survey is None:
        row, survey = open_survey(store, p.survey)
    else:
        row = get_survey(store, p.survey)
    mv = get_model_version(store, p.model)
    report = report or reporter(store, job_id)
    model = model if model is not None else load_model(mv.checkpoint_path)
    if p.shards == "auto" or p.shards > 1:  # split over the queue's workers
        res = dispatch_shards(store, workspace, job_id, row, survey, mv, model, p.shards)
        report(1.0, f"queued {res['shards']} shard jobs {res['shard_jobs']} for {len(survey):,} galaxies")
        return res
    report(0.0, f"embedding {len(survey)} galaxies of {row.name} with {mv.name}")
    out = workspace.embeddings_of(mv.name, row.name)
    stats = embed_survey(model, survey, out, progress=False)
    emb, preds = stats.pop("embeddings"), stats.pop("predictions")
    report(0.6, f"embedded at {stats['images_per_second']:.0f} images/s; storing predictions")
    publish_embeddings(store, workspace, row, mv, emb, preds)
    report(1.0, f"predictions and index for {mv.name} ready")
    return {"model": mv.name, **stats}
