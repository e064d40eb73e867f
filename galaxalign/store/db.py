"""Opening the store: engine, SQLite pragmas, migrations, and retried write transactions.

SQLite (the embedded default) runs in WAL mode with a 30 s busy timeout. A write transaction
(:meth:`Store.write`) takes the write lock at its start (``BEGIN IMMEDIATE``), so concurrent writers
queue instead of failing half-way; a read (:meth:`Store.read`) begins a deferred transaction, so in WAL
mode it reads its snapshot without waiting for any writer. PostgreSQL
(``GALAXALIGN_DATABASE_URL=postgresql+psycopg://…``) locks the rows it changes. Both retry a
transaction that lost a lock race, a few times with back-off.
"""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import GalaxalignError
from ..workspace import default_workspace

__all__ = ["Store", "open_store", "StoreError", "migrate"]

T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(GalaxalignError):
    """Anything the store refuses: the message names the galaxy, volunteer or id and the problem."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


WRITE = "galaxalign_write"  # execution option of the connections that write (Store.write, migrate)


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def _retryable(e: DBAPIError) -> bool:
    msg = str(e.orig).lower() if e.orig is not None else str(e).lower()
    return any(s in msg for s in ("database is locked", "database is busy", "deadlock detected",
                                  "could not serialize", "could not obtain lock"))


class Store:
    """An engine plus a session factory. Use :meth:`write` for changes, :meth:`read` for queries."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(engine.execution_options(**{WRITE: True}), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self):
        with self.sessions() as s:
            yield s

    def write(self, fn: Callable[[Session], T], attempts: int = 8) -> T:
        """Run ``fn(session)`` in one transaction, committed on return, rolled back on error.

        Lock timeouts and serialisation failures are retried with jittered back-off; anything else
        (our own :class:`StoreError` included) propagates after the rollback, so nothing is half-written.
        """
        for attempt in range(attempts):
            try:
                with self.write_sessions() as s, s.begin():
                    return fn(s)
            except (OperationalError, DBAPIError) as e:
                if attempt == attempts - 1 or not _retryable(e):
                    raise
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _revisions(engine: Engine, cfg, target: str) -> tuple[str | None, str]:
    """(the database's Alembic revision or None when it has none yet, the ``target`` revision's id)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, ScriptDirectory.from_config(cfg).get_revision(target).revision


def _backup_sqlite(engine: Engine, target: str) -> Path | None:
    """Copy a SQLite database that holds data to ``<file>.before-<target>`` (SQLite's online backup)
    before its schema changes: an upgrade that goes wrong leaves the old file beside the new one."""
    import sqlite3

    path = engine.url.database
    if not path or path == ":memory:" or not Path(path).exists():
        return None
    dest = Path(f"{path}.before-{target}")
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.partial")
    src, out = sqlite3.connect(path, timeout=30), sqlite3.connect(tmp)
    try:
        src.backup(out)
    finally:
        out.close()
        src.close()
    tmp.replace(dest)
    return dest


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default).

    SQLite cannot alter a column in place, so a migration rebuilds the table (a copy, then DROP and
    rename). With foreign keys enforced, dropping ``surveys`` or ``volunteers`` would cascade to every
    galaxy, vote and prediction: on SQLite the migrations therefore run with ``PRAGMA foreign_keys=OFF``
    (it only takes effect outside a transaction), the references are checked afterwards, and a database
    that already holds data is first backed up beside itself (``galaxalign.db.before-<revision>``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    current, target = _revisions(engine, cfg, revision)
    if current == target:
        return
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return
    if current is not None:
        _backup_sqlite(engine, target)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection  # autocommit (isolation_level None): outside any transaction
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.execution_options(**{WRITE: True}).begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:  # rolled back: the database stays as it was
                    raise StoreError(f"the migration to {target} would leave {len(broken)} broken references "
                                     f"(first: table {broken[0][0]}, row {broken[0][1]}); nothing was changed")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def open_store(url: str | None = None, upgrade: bool = True) -> Store:
    """Open (and migrate) the store at ``url``: ``sqlite:///workspace/galaxalign.db`` or
    ``postgresql+psycopg://user:pass@127.0.0.1/galaxalign``. Default: the workspace's database
    (``$GALAXALIGN_DATABASE_URL`` wins)."""
    if url is None:
        ws = default_workspace().create()
        url = ws.database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        if upgrade:
            migrate(engine)
    except OperationalError as e:
        raise StoreError(f"{engine.url.render_as_string(hide_password=True)}: cannot open the database "
                         f"({str(e.orig).splitlines()[0]})") from None
    return Store(engine)
