"""The clock in the daemon: APScheduler runs the sweep, and a leader lock picks the daemon that may.

Several daemons may share one PostgreSQL database and one mailbox. Only the leader runs the
sweeps AND reads the mailbox: it holds a session-level advisory lock on a dedicated connection
for as long as it leads. The others wait, trying for the lock every few seconds, and one takes
over when the leader dies (its connection closes and the lock goes with it) or loses the
database. Every daemon sends mail: the outbox claim is FOR UPDATE SKIP LOCKED, so no email goes
twice, and a sweep that overlaps another for a moment is harmless (dedupe keys, SKIP LOCKED).

SQLite has no such lock and needs none: it has one writer at a time (BEGIN IMMEDIATE), every
sweep is idempotent, and a second daemon on the same file would only repeat work, never mail.
So on SQLite every daemon leads; run one daemon per SQLite file.

The jobs run in APScheduler's own threads (BackgroundScheduler), in memory: one interval job
per daemon, never a job per case and never a shared job store (notes/libraries.md §5).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from mailbridge.clock import SystemClock

log = logging.getLogger(__name__)

LEADER_KEY = int.from_bytes(b"mbld")  # the advisory lock's key; the outbox claim uses "mbox"
LEADER_RETRY_SECONDS = 10  # how often a waiting daemon tries for the lock (at most)
WATCH_SECONDS = 2  # how often the leader checks its lock and the stop signal
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if it is free (never waits); True while this process holds it."""
        ...

    def holding(self) -> bool:
        """Whether the lock is still held: False once its connection is gone."""
        ...

    def release(self) -> None: ...


class SingleWriter:
    """SQLite: every daemon leads; the database's single-writer lock serialises the sweeps."""

    def acquire(self) -> bool:
        return True

    def holding(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLock:
    """PostgreSQL: pg_try_advisory_lock on a connection of its own, outside any pool.

    The lock belongs to the server session, so it survives commits and lives exactly as long
    as this connection (a pooled connection would keep the session, and the lock, after
    "closing"). The connection is kept while waiting too, in autocommit so that it never
    sits idle in a transaction, and replaced if it dies.
    """

    def __init__(self, url: str, key: int = LEADER_KEY):
        self.key = key
        self._engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None
        self._held = False

    def acquire(self) -> bool:
        if self._held:
            return self.holding()
        try:
            self._conn = self._conn or self._engine.connect()
            got = self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            self._held = bool(got.scalar_one())
        except SQLAlchemyError as exc:
            log.warning("leader lock: cannot reach the database (%s)", exc.__class__.__name__)
            self._drop()
        return self._held

    def holding(self) -> bool:
        if not self._held:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            log.warning("leader lock: the connection holding it is gone; no longer leading")
            self._drop()
            return False

    def release(self) -> None:
        if self._held:
            with suppress(SQLAlchemyError):  # if the connection is gone, the lock went with it
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            with suppress(SQLAlchemyError):
                conn.close()


def leader_lock(database_url: str) -> LeaderLock:
    if make_url(database_url).get_backend_name() == "postgresql":
        return AdvisoryLock(database_url)
    return SingleWriter()


def lead(
    lock: LeaderLock,
    stop: threading.Event,
    term: threading.Event,
    work: Callable[[], None],
    sweep: Callable[[], object],
    *,
    sweep_seconds: int,
    timezone: str = "Europe/London",
) -> None:
    """Until `stop`: wait to lead; while leading, sweep every `sweep_seconds` (at once first)
    and run `work()` (the mailbox ingest, which must return once `term` is set) until `stop`
    or a lost lock ends the term; then wait to lead again. Releases the lock on the way out."""
    retry = min(LEADER_RETRY_SECONDS, sweep_seconds)
    waiting_logged = False
    try:
        while not stop.is_set():
            if not lock.acquire():
                if not waiting_logged:
                    log.info("another mailbridge daemon leads; waiting to take over")
                    waiting_logged = True
                stop.wait(retry)
                continue
            waiting_logged = False
            log.info("leading: this daemon runs the clock and reads the mailbox")
            term.clear()
            _term(lock, stop, term, work, sweep, sweep_seconds, timezone)
            if not stop.is_set():
                log.warning("no longer leading; waiting to lead again")
    finally:
        lock.release()


def _term(
    lock: LeaderLock,
    stop: threading.Event,
    term: threading.Event,
    work: Callable[[], None],
    sweep: Callable[[], object],
    sweep_seconds: int,
    timezone: str,
) -> None:
    """One term as leader: the scheduled sweep and the watch beside `work`."""

    def watch() -> None:
        if stop.is_set() or not lock.holding():
            term.set()

    def sweep_job() -> None:
        if term.is_set():  # the lock was lost, or we are stopping: leave it to the next leader
            return
        try:
            sweep()
        except Exception:  # e.g. the database restarting: log it, the next run tries again
            log.exception("clock sweep failed; trying again in %s s", sweep_seconds)

    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # not every run
    scheduler = BackgroundScheduler(timezone=timezone, job_defaults=JOB_DEFAULTS)
    # The scheduler keeps real time (the sweep itself reads the daemon's clock): first run now.
    scheduler.add_job(sweep_job, "interval", seconds=sweep_seconds, id="clock-sweep",
                      next_run_time=SystemClock().now())  # fmt: skip
    scheduler.add_job(watch, "interval", seconds=WATCH_SECONDS, id="leader-watch")
    scheduler.start()
    try:
        work()
    finally:
        term.set()
        scheduler.shutdown(wait=True)  # a sweep in hand finishes its batch
