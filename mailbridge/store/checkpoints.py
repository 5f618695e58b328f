"""SQLite's WAL checkpoints, taken off the writer's path.

In WAL mode a commit appends pages to the -wal file, and by default the commit that takes it
past 1,000 pages copies them all into the database file and syncs it: a pause of tens of
milliseconds for that writer, which in the daemon is the ingest loop. Here connections never
checkpoint as they commit. A connection given back to the pool with more than LIMIT bytes in
the WAL starts one in a thread of its own (PASSIVE: it blocks no reader or writer), which runs
while the daemon fetches its next batch (and moves committed ones upstream). A write transaction
first waits for it to finish, so that the WAL is then begun again from its start, and with
journal_size_limit truncated back to LIMIT: its size says when it has grown past that again.
As bounded as SQLite's own checkpoints, and as durable: synchronous=NORMAL syncs at each one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from contextlib import closing

log = logging.getLogger(__name__)

LIMIT = 4 * 1024 * 1024  # SQLite's own threshold: 1,000 pages of 4 KiB
BUSY_MS = 1_000


class BackgroundCheckpoints:
    """One database file's checkpoints; `pragmas` go on each of its write connections."""

    pragmas = ("wal_autocheckpoint=0", f"journal_size_limit={LIMIT}")

    def __init__(self, database: str):
        self._database, self._wal = database, f"{database}-wal"
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None

    def after_use(self, *_pool_event_args: object) -> None:
        """A connection is back in the pool: past LIMIT, checkpoint in the background."""
        try:
            if os.path.getsize(self._wal) <= LIMIT:
                return
        except OSError:  # no WAL yet, or the database was removed
            return
        with self._lock:
            if self._running is not None and self._running.is_alive():
                return
            self._running = threading.Thread(
                target=self._checkpoint, name="sqlite-checkpoint", daemon=True
            )
            self._running.start()

    def before_writing(self) -> None:
        """A write transaction is about to begin: let a running checkpoint finish first."""
        running = self._running
        if running is not None:
            running.join()

    def _checkpoint(self) -> None:
        try:
            with closing(sqlite3.connect(self._database, timeout=BUSY_MS / 1000)) as conn:
                busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except (sqlite3.Error, OSError) as exc:  # the next one catches up
            log.warning("WAL checkpoint of %s failed: %s", self._database, exc)
            return
        if busy or done < frames:  # readers on old snapshots: the next one catches up
            log.debug("WAL checkpoint of %s: %s of %s frames", self._database, done, frames)
