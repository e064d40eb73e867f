"""The queue: huey (SQLite in the workspace, or Redis when ``$GALAXALIGN_REDIS_URL`` is set) carries job
ids; the ``jobs`` table of the store carries everything the app shows (state, progress, message, log
tail, heartbeat).

Each kind of job registers its body here with :func:`job_kind` (the modules of this package do, on
import); :func:`enqueue` checks the parameters with the kind's :class:`~galaxalign.jobs.params.JobParams`
before anything is recorded, :func:`run_job` (the worker) claims, beats and runs, and
:func:`reap_stale_jobs` fails jobs whose worker died (a kind with ``attempts`` > 1 is queued again).
"""
from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from ..errors import GalaxalignError
from ..fsutil import remove_partial_dirs
from ..store import append_log, claim_job, enqueue_job_row, finish_job, get_job, open_store, require_role, update_job
from ..store.models import Job, utcnow
from ..workspace import Workspace, default_workspace
from .params import PARAMS, ROLES, JobParams

__all__ = ["JobKind", "job_kind", "KINDS", "get_huey", "enqueue", "run_job", "reap_stale_jobs", "reporter",
           "JobCancelled", "HEARTBEAT_SECONDS", "STALE_AFTER_SECONDS"]

# A job beats every HEARTBEAT_SECONDS; one silent for STALE_AFTER_SECONDS is taken for dead.
HEARTBEAT_SECONDS = float(os.environ.get("GALAXALIGN_HEARTBEAT_SECONDS", 2.0))
STALE_AFTER_SECONDS = float(os.environ.get("GALAXALIGN_STALE_AFTER_SECONDS", 20.0))


class JobCancelled(GalaxalignError):
    pass


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its parameter type, its body ``run(store, workspace, job_id, params)``, who may start
    it from the app, and how many times in all it is tried when its worker dies."""
    name: str
    params: type[JobParams]
    run: Callable
    role: str = "admin"
    attempts: int = 1


KINDS: dict[str, JobKind] = {}


def job_kind(name: str, attempts: int = 1):
    """Register the decorated function as the body of job kind ``name`` (its parameters: ``PARAMS[name]``)."""
    def register(fn: Callable) -> Callable:
        KINDS[name] = JobKind(name, PARAMS[name], fn, ROLES.get(name, "admin"), attempts)
        return fn
    return register


@lru_cache(maxsize=None)
def get_huey(workspace_root: str):
    """The huey instance of a workspace, with our tasks registered on it."""
    from huey import RedisHuey, SqliteHuey, crontab

    redis_url = os.environ.get("GALAXALIGN_REDIS_URL")
    if redis_url:
        huey = RedisHuey("galaxalign", url=redis_url)
    else:
        Path(workspace_root).mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("galaxalign", filename=str(Path(workspace_root) / "huey.db"))

    @huey.task(name="galaxalign.run_job")
    def run_job_task(job_id: int, root: str = workspace_root):
        run_job(job_id, Workspace(root))

    @huey.periodic_task(crontab(minute="*"), name="galaxalign.reap")
    def reap_task():
        ws = Workspace(workspace_root)
        reap_stale_jobs(open_store(ws.database_url, upgrade=False), workspace=ws)

    huey.galaxalign_run_job = run_job_task
    return huey


def enqueue(store, kind: str, params: dict | JobParams | None = None, requested_by=None,
            workspace: Workspace | None = None) -> int:
    """Check the parameters, record the job and put it on the queue; returns the job id. A bad parameter
    is refused here, with one line naming it, and nothing is recorded."""
    if kind not in KINDS:
        raise GalaxalignError(f"unknown job kind {kind!r}; known: {', '.join(KINDS)}")
    spec = KINDS[kind]
    p = params if isinstance(params, spec.params) else spec.params.from_dict(params)
    if requested_by is not None:  # jobs started from the app: admins, or the role the kind names
        require_role(store, requested_by, spec.role)
    ws = workspace or default_workspace()
    job_id = enqueue_job_row(store, kind, p.to_dict(), requested_by)
    get_huey(str(ws.root)).galaxalign_run_job(job_id, str(ws.root))
    return job_id


def reap_stale_jobs(store, stale_after: float = STALE_AFTER_SECONDS, workspace: Workspace | None = None) -> list[int]:
    """Mark ``running`` jobs whose heartbeat is older than ``stale_after`` seconds as failed, and remove
    the half-written model folders (``models/.partial-job<id>-…``) of every job that is not running. A
    reaped job of a kind tried more than once (an embedding shard) is queued again; it resumes."""
    cutoff = utcnow() - timedelta(seconds=stale_after)

    def fn(s):
        stale = list(s.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)))
        for j in stale:
            j.state, j.finished_at = "failed", utcnow()
            j.error = f"worker stopped: no heartbeat since {j.heartbeat_at:%Y-%m-%d %H:%M:%S} (pid {j.worker_pid})"
            append_log(j, j.error)
        running = {f"job{i}" for i in s.scalars(select(Job.id).where(Job.state.in_(("queued", "running"))))}
        return [j.id for j in stale], running
    reaped, running = store.write(fn)
    if workspace is not None:
        remove_partial_dirs(workspace.models, "job", running)
        for jid in reaped:
            j = get_job(store, jid)
            spec, attempt = KINDS.get(j.kind), int((j.params or {}).get("attempt", 1))
            if spec is not None and attempt < spec.attempts:
                again = enqueue(store, j.kind, {**j.params, "attempt": attempt + 1}, workspace=workspace)
                update_job(store, jid, log=f"queued again as job {again} (attempt {attempt + 1} of {spec.attempts})")
    return reaped


class _Heartbeat:
    """Beats the job row from a side thread while the job runs in this one."""

    def __init__(self, store, job_id: int):
        self.store, self.job_id = store, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{job_id}")

    def _run(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                update_job(self.store, self.job_id)
            except Exception:  # a missed beat is not worth killing the job for
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def run_job(job_id: int, workspace: Workspace) -> None:
    """Execute job ``job_id`` (called by the huey task): claim, beat, run, record the outcome."""
    store = open_store(workspace.database_url, upgrade=False)
    try:
        job = claim_job(store, job_id, os.getpid())
        if job is None:
            return  # cancelled or already taken
        with _Heartbeat(store, job_id):
            try:
                spec = KINDS[job.kind]
                result = spec.run(store, workspace, job_id, spec.params.from_dict(job.params))
            except JobCancelled:
                finish_job(store, job_id, "cancelled")
                return
            except Exception as e:  # the job fails; the worker goes on with the queue
                finish_job(store, job_id, "failed", error=f"{traceback.format_exc()}\n{e.__class__.__name__}: {e}")
                return
        if get_job(store, job_id).state == "running":
            finish_job(store, job_id, "succeeded", result=result)
    finally:
        store.dispose()


def reporter(store, job_id: int | None, lo: float = 0.0, hi: float = 1.0) -> Callable[[float, str], None]:
    """A progress callback mapping 0–1 of one phase onto ``lo``–``hi`` of job ``job_id``, which also stops
    the job when it was cancelled; without a job (run here and now), a callback that does nothing."""
    if not job_id:
        return lambda frac, message: None

    def report(frac: float, message: str) -> None:
        if get_job(store, job_id).state == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled")
        update_job(store, job_id, progress=lo + (hi - lo) * frac, message=message, log=message)
    return report
