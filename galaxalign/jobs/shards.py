"""Sharded embedding: one embed job over a large survey split into shards that any number of workers
take from the same queue (huey: Redis for several machines; every worker sees the same workspace
volume, as in ``compose.yaml``).

The embed job with ``shards`` > 1 (:func:`dispatch`) writes a plan and an empty memory-mapped array
``.embeddings.partial.npy`` (N × D) beside where the embeddings will live, and queues one
``embed_shard`` job per row range. A shard (:func:`embed_shard`) fills its rows chunk by chunk,
remembering how far it got, and marks itself done. The shard that finds every shard done — and wins
the claim, an exclusive file creation, so only one does — publishes: the array renamed into place, the
prediction table, the predictions in the store, the FAISS index, the PCA map, exactly as an unsharded
embed job would. A worker killed mid-shard leaves that shard's job without a heartbeat; the reaper fails
it and queues it again (up to :data:`MAX_ATTEMPTS`), and the new attempt resumes from the shard's last
chunk. Nothing of the other shards is lost or redone.

    layout in workspace/embeddings/<model>/<survey>/:
      .embeddings.partial.npy        the array every shard writes its rows into
      .shards/plan.json              what is embedded (weights, survey size, precision) and the ranges
      .shards/<i>.json               how far shard i got ({"done": row})
      .shards/<i>.done               shard i finished
      .shards/publish.claimed        the shard that publishes (created exclusively)
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import GalaxalignError
from ..fsutil import atomic_path
from ..inference import embed_rows, prediction_table, weights_key
from ..model import load_model
from ..store import get_model_version
from ..surveys import open_survey
from .params import EmbedShardParams
from .publish import publish_embeddings
from .queue import enqueue, job_kind, reporter

__all__ = ["SHARD_ROWS", "MAX_ATTEMPTS", "plan_ranges", "dispatch", "embed_shard"]

SHARD_ROWS = 50_000  # rows per shard when the job asks for ``shards: "auto"``
MAX_ATTEMPTS = 3  # a shard whose worker died is queued again at most this many times in all


def plan_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous row ranges covering ``0..n`` (the first ones one row longer when uneven)."""
    if shards < 1 or n < 1:
        raise GalaxalignError(f"cannot split {n} galaxies into {shards} shards")
    shards = min(shards, n)
    edges = np.linspace(0, n, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _paths(out: Path) -> tuple[Path, Path]:
    return out / ".embeddings.partial.npy", out / ".shards"


def dispatch(store, workspace, job_id: int | None, row, survey, mv, model, shards: int | str,
             precision: str = "fp32") -> dict:
    """Plan the shards of embedding ``survey`` with model version ``mv`` and queue one job each."""
    n, dim = len(survey), int(model.embed_dim)
    k = max(1, -(-n // SHARD_ROWS)) if shards == "auto" else int(shards)
    ranges = plan_ranges(n, k)
    out = workspace.embeddings_of(mv.name, row.name)
    partial, folder = _paths(out)
    shutil.rmtree(folder, ignore_errors=True)  # a plan replaces any earlier one: nothing half-known is reused
    folder.mkdir(parents=True)
    np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, dim)).flush()
    key = {"n": n, "dim": dim, "weights": weights_key(model), "precision": precision}
    with atomic_path(folder / "plan.json") as tmp:
        Path(tmp).write_text(json.dumps({**key, "ranges": ranges, "parent": job_id}))
    jobs = [enqueue(store, "embed_shard", {"survey": row.name, "model": mv.name, "shard": i, "attempt": 1},
                    workspace=workspace) for i in range(len(ranges))]
    return {"model": mv.name, "survey": row.name, "shards": len(ranges), "shard_jobs": jobs, "n": n}


@job_kind("embed_shard", attempts=MAX_ATTEMPTS)
def embed_shard(store, workspace, job_id: int | None, params: EmbedShardParams | dict, report=None) -> dict:
    """Embed one shard's rows into the shared array (resuming where an earlier attempt stopped); the shard
    that completes the set publishes the whole survey (see the module docstring)."""
    p = params if isinstance(params, EmbedShardParams) else EmbedShardParams.from_dict(params)
    report = report or reporter(store, job_id)
    row, survey = open_survey(store, p.survey)
    mv = get_model_version(store, p.model)
    out = workspace.embeddings_of(mv.name, row.name)
    partial, folder = _paths(out)
    try:
        plan = json.loads((folder / "plan.json").read_text())
    except (OSError, ValueError):
        raise GalaxalignError(f"{folder / 'plan.json'}: no shard plan (a newer embed job replaced it?)") from None
    i = p.shard
    a, b = plan["ranges"][i]
    model = load_model(mv.checkpoint_path)
    if plan["weights"] != weights_key(model) or plan["n"] != len(survey):
        raise GalaxalignError(f"shard {i} of {row.name}: the plan was made for other weights or another survey size")
    mark = folder / f"{i}.json"
    done = a
    if mark.exists():
        try:
            done = max(a, min(b, int(json.loads(mark.read_text())["done"])))
        except (OSError, ValueError, KeyError, TypeError):
            done = a
    resumed = done - a
    emb = np.load(partial, mmap_mode="r+")
    embed_rows(model, survey, emb, done, b, mark, precision=plan["precision"],
               on_chunk=lambda row: report((row - a) / (b - a), f"shard {i}: rows {a}–{row} of {a}–{b}"))
    del emb
    with atomic_path(folder / f"{i}.done") as tmp:
        Path(tmp).write_text(str(b))
    published = False
    if all((folder / f"{k}.done").exists() for k in range(len(plan["ranges"]))) and _claim(folder):
        _publish(store, workspace, row, survey, mv, model, out)
        published = True
    return {"model": mv.name, "survey": row.name, "shard": i, "rows": [a, b], "resumed_rows": resumed,
            "attempt": p.attempt, "published": published}


def _claim(folder: Path) -> bool:
    """True for exactly one caller: the exclusive creation of ``publish.claimed``."""
    try:
        os.close(os.open(folder / "publish.claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def _publish(store, workspace, row, survey, mv, model, out: Path) -> None:
    """Every shard is in: what an unsharded embed job does after embedding."""
    partial, folder = _paths(out)
    partial.replace(out / "embeddings.npy")
    emb = np.load(out / "embeddings.npy", mmap_mode="r")
    preds = prediction_table(model, survey, emb)
    with atomic_path(out / "predictions.parquet") as tmp:
        preds.to_parquet(tmp, index=False)
    publish_embeddings(store, workspace, row, mv, emb, preds)
    shutil.rmtree(folder, ignore_errors=True)
