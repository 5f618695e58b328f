"""Engine set-up and schema upgrades: SQLite (WAL, one writer at a time) or PostgreSQL."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session

from mailbridge.store.checkpoints import BackgroundCheckpoints
from mailbridge.store.types import dump_json, load_json

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_MS = 15_000
# A writer's page cache, per connection. One ingest batch of 100 emails dirties about 8 MiB of
# pages (raw bytes, parsed text, composed emails, two dozen indexes): in SQLite's default 2 MiB
# they spill to the WAL mid-transaction and are read back, costing the daemon about a tenth of
# its ingest rate. Readers keep the default.
SQLITE_WRITER_CACHE_KIB = 16 * 1024


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; for SQLite, the parent directory is created, WAL is switched on
    and checkpointed in the background (store/checkpoints.py).

    `read_only` engines (reports, listings) begin deferred SQLite transactions: they read a
    WAL snapshot without taking the write lock, so a long report never stalls the daemon.
    """
    parsed = make_url(url)
    json = {"json_serializer": dump_json, "json_deserializer": load_json}
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **json)
    on_disk = bool(parsed.database) and parsed.database != ":memory:"
    if on_disk:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000}, **json)
    checkpoints = BackgroundCheckpoints(parsed.database) if on_disk and not read_only else None

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi, _record) -> None:
        # Take BEGIN away from pysqlite so that we can issue BEGIN IMMEDIATE ourselves: a
        # deferred transaction that later writes fails at once with "database is locked" under
        # WAL, however long the busy timeout, because its snapshot cannot be upgraded.
        dbapi.isolation_level = None
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_MS}",
            "foreign_keys=ON",
            "synchronous=NORMAL",
            *(checkpoints.pragmas if checkpoints else ()),
            *(() if read_only else (f"cache_size=-{SQLITE_WRITER_CACHE_KIB}",)),
        ):
            dbapi.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        if checkpoints:
            checkpoints.before_writing()
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    if checkpoints:
        event.listen(engine.pool, "checkin", checkpoints.after_use)
    return engine


def session(engine: Engine) -> Session:
    """A unit-of-work session whose objects stay readable after commit."""
    return Session(engine, expire_on_commit=False)


def insert(engine_or_session, table):
    """A dialect INSERT that supports on_conflict_do_nothing / on_conflict_do_update."""
    bind = (
        engine_or_session.get_bind()
        if isinstance(engine_or_session, Session)
        else engine_or_session
    )
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignoring(
    session: Session, table: Table, *unique: str, returning: tuple[str, ...] = ()
) -> Insert:
    """INSERT … ON CONFLICT (unique) DO NOTHING for this session's dialect, built once.

    Hot paths execute prebuilt statements with parameters: building a statement costs
    several times more than SQLite takes to run it.
    """
    return _insert_ignoring(session.get_bind().dialect.name, table, unique, returning)


def insert_one(session: Session, stmt: Insert, values: dict[str, Any]) -> int | None:
    """Insert one row and return its id; None if ON CONFLICT DO NOTHING kept it out.

    Without RETURNING on SQLite, which runs a RETURNING clause as a trigger program and so
    costs a single-row insert three times over (a case: 20 -> 65 us): there, rowcount says
    whether the row went in and lastrowid which it is. PostgreSQL returns the id as usual.
    """
    result = session.connection().execute(stmt, values)
    if result.rowcount == 0:  # SQLite: nothing inserted (lastrowid is an earlier row's)
        return None
    key = result.inserted_primary_key
    return key[0] if key else None


@cache
def _insert_ignoring(
    dialect: str, table: Table, unique: tuple[str, ...], returning: tuple[str, ...]
) -> Insert:
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    return stmt.returning(*(table.c[name] for name in returning)) if returning else stmt


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start."""
    command.upgrade(alembic_config(url), revision)
