"""Shared fixtures: databases (SQLite and PostgreSQL), settings, Maildirs, the Dovecot plugin."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from mailbridge.config import Settings, load_settings
from mailbridge.store.db import make_engine, upgrade

pytest_plugins = ["tests.imap_server", "tests.smtp_sink"]

REPO = Path(__file__).resolve().parents[1]
TEST_DIRECTORY = REPO / "tests" / "data" / "directory.toml"
MAILBOX = "enquiries@council.example"
PG_SERVER = os.environ.get(
    "MAILBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TABLES = (
    "outbox",
    "event",
    "participant",
    "message_copy",
    "message",
    "mailbox_cursor",
    "reference_counter",
    '"case"',
    "member",
    "delivery_unit",
    "officer",
    "case_link",
    "case_place",
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session, migrated once."""
    name = f"mailbridge_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at {PG_SERVER} is not reachable ({exc}); start it with "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the newest revision, for db_url to copy."""
    path = tmp_path_factory.mktemp("template") / "mailbridge.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:  # one file, no -wal beside it: a plain copy is the database
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs twice: on a fresh SQLite file and a truncated PostgreSQL database."""
    if request.param == "sqlite":
        # A copy of a file migrated once per session: running every revision per test cost
        # a third of a second each, a few minutes over the suite.
        path = tmp_path / "mailbridge.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        # A test that leaks an open transaction would make TRUNCATE wait for ever: fail fast.
        conn.execute(text("SET LOCAL lock_timeout = '15s'"))
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    return root


def deliver(maildir: Path, name: str, raw: bytes, at: datetime) -> Path:
    """Put a message in a Maildir's new/ with its delivery time set to `at`."""
    path = maildir / "new" / name
    path.write_bytes(raw)
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def settings_env(db_url: str, source: str, **extra: str) -> dict[str, str]:
    """The environment a test daemon or CLI runs with."""
    return {
        "MAILBRIDGE_DATABASE_URL": db_url,
        "MAILBRIDGE_SOURCE": source,
        "MAILBRIDGE_ADDRESS": MAILBOX,
        "MAILBRIDGE_DIRECTORY": str(TEST_DIRECTORY),
        "MAILBRIDGE_OUTBOX": "file:var/outbox",
        **extra,
    }


def make_settings(db_url: str, source: str) -> Settings:
    return load_settings(None, settings_env(db_url, source))


def wait_for(
    predicate: Callable[[], object], timeout: float = 20.0, why: Callable[[], str] | None = None
) -> None:
    """Poll until `predicate()` holds; AssertionError (saying `why()`) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(why() if why else "timed out")
        time.sleep(0.05)
