"""Job rows: what the worker is doing, its heartbeat, progress, log tail and result."""
from __future__ import annotations

from sqlalchemy.orm import Session

from .db import Store, StoreError
from .lookup import job_row, jsonable, volunteer_row
from .models import JOB_STATES, Job, utcnow

__all__ = ["enqueue_job_row", "claim_job", "update_job", "finish_job", "append_log"]

LOG_TAIL_CHARS = 4000


def append_log(j: Job, line: str) -> None:
    """Add one time-stamped line to a job's log tail (the last ``LOG_TAIL_CHARS`` characters are kept)."""
    j.log_tail = ((j.log_tail or "") + f"{utcnow():%H:%M:%S} {line}\n")[-LOG_TAIL_CHARS:]


def enqueue_job_row(store: Store, kind: str, params: dict | None = None, requested_by: int | str | None = None) -> int:
    def fn(s: Session) -> int:
        vid = volunteer_row(s, requested_by).id if requested_by is not None else None
        j = Job(kind=kind, state="queued", params=jsonable(params or {}), requested_by=vid, log_tail="")
        s.add(j)
        s.flush()
        return j.id
    return store.write(fn)


def claim_job(store: Store, job_id: int, pid: int) -> Job | None:
    """Move a queued job to running (returns None if it is no longer queued, e.g. cancelled)."""
    def fn(s: Session):
        j = job_row(s, job_id)
        if j.state != "queued":
            return None
        j.state, j.started_at, j.heartbeat_at, j.worker_pid = "running", utcnow(), utcnow(), pid
        return j
    return store.write(fn)


def update_job(store: Store, job_id: int, progress: float | None = None, message: str | None = None,
               log: str | None = None) -> None:
    """Heartbeat plus optional progress (0–1), status message and a log line (tail kept)."""
    def fn(s: Session):
        j = job_row(s, job_id)
        j.heartbeat_at = utcnow()
        if progress is not None:
            j.progress = float(min(1.0, max(0.0, progress)))
        if message is not None:
            j.message = message[:500]
        if log:
            append_log(j, log)
    store.write(fn)


def finish_job(store: Store, job_id: int, state: str, result: dict | None = None, error: str | None = None) -> None:
    if state not in JOB_STATES or state in ("queued", "running"):
        raise StoreError(f"a job cannot finish as {state!r}")

    def fn(s: Session):
        j = job_row(s, job_id)
        j.state, j.finished_at = state, utcnow()
        if result is not None:
            j.result = jsonable(result)
        if error:
            j.error = error[-4000:]
            append_log(j, f"error: {error.splitlines()[-1][:300]}")
        if state == "succeeded":
            j.progress = 1.0
    store.write(fn)
