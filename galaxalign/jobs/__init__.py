"""Background jobs, run by ``galaxalign worker`` through a huey task queue.

- :mod:`~galaxalign.jobs.queue` — the queue, the heartbeat, the reaper, the worker's :func:`run_job`;
  every kind of job registers its body there.
- :mod:`~galaxalign.jobs.params` — one typed parameter object per kind, checked when the job is queued.
- one module per kind: :mod:`~galaxalign.jobs.retrain`, :mod:`~galaxalign.jobs.embed` (and
  :mod:`~galaxalign.jobs.shards`, its split over many workers), :mod:`~galaxalign.jobs.adapt`,
  :mod:`~galaxalign.jobs.project`, :mod:`~galaxalign.jobs.refresh` (the proposals refitted on the votes
  every K votes, in seconds); :mod:`~galaxalign.jobs.bootstrap` makes a workspace ready.

A job's process writes a heartbeat every few seconds. A worker killed mid-job leaves its job ``running``
with a stale heartbeat; :func:`reap_stale_jobs` (called by every worker at start and every minute, and by
the app) marks it ``failed``. Nothing is activated before a job's very last step, so the active model
stays as it was.
"""
from .adapt import adapt, target_truth
from .bootstrap import DEMO_SURVEYS, STARTER_MODES, bootstrap, ensure_demo_survey
from .embed import embed_version
from .params import (JOB_KINDS, PARAMS, AdaptParams, EmbedParams, EmbedShardParams, JobParams, ProjectParams,
                     RefreshParams, RetrainParams)
from .project import project_map
from .publish import publish_embeddings
from .queue import (HEARTBEAT_SECONDS, KINDS, STALE_AFTER_SECONDS, JobCancelled, enqueue, get_huey,
                    reap_stale_jobs, run_job)
from .refresh import maybe_refresh, refresh
from .retrain import DEFAULT_CONFIG, retrain
from .shards import MAX_ATTEMPTS, SHARD_ROWS, embed_shard, plan_ranges

__all__ = ["enqueue", "run_job", "reap_stale_jobs", "get_huey", "JobCancelled", "KINDS", "JOB_KINDS", "PARAMS",
           "JobParams", "RetrainParams", "EmbedParams", "EmbedShardParams", "AdaptParams", "ProjectParams",
           "RefreshParams", "retrain", "refresh", "maybe_refresh", "embed_version", "embed_shard", "publish_embeddings", "adapt", "project_map", "bootstrap",
           "ensure_demo_survey", "target_truth", "plan_ranges", "DEMO_SURVEYS", "STARTER_MODES", "DEFAULT_CONFIG",
           "MAX_ATTEMPTS", "SHARD_ROWS", "HEARTBEAT_SECONDS", "STALE_AFTER_SECONDS"]
