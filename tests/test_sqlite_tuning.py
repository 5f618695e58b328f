"""SQLite tuned for the daemon's writes: the WAL checkpointed in the background, off the
writer's path, and bounded; a page cache that holds a batch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailbridge.store.checkpoints import LIMIT
from mailbridge.store.db import SQLITE_WRITER_CACHE_KIB, make_engine

MB = 1024 * 1024


@pytest.mark.unit
def test_a_busy_writers_wal_is_checkpointed_in_the_background_and_stays_bounded(tmp_path):
    path = tmp_path / "db.sqlite"
    wal = Path(f"{path}-wal")
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE mail (raw BLOB)")
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0  # not on commit
    sizes = []
    for _ in range(12):  # 2 MB a transaction: 24 MB in all
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO mail VALUES (?)", [(os.urandom(100_000),) for _ in range(20)]
            )
        sizes.append(wal.stat().st_size)
    engine.dispose()
    assert max(sizes) < LIMIT + 3 * MB  # begun again after each checkpoint, never 24 MB
    assert path.stat().st_size > 16 * MB  # the checkpoints copied the pages into the file


@pytest.mark.unit
def test_a_writer_caches_a_whole_batch_and_a_reporting_engine_keeps_sqlites_defaults(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with make_engine(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_WRITER_CACHE_KIB
    with make_engine(url, read_only=True).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
