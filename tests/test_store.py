"""The store on SQLite and PostgreSQL: references, byte-exact raw mail, times, cursors."""

from __future__ import annotations

import multiprocessing
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import DATETIME
from sqlmodel import select

from mailbridge.cases.references import holding_references, next_reference
from mailbridge.clock import FrozenClock
from mailbridge.config import ReferenceFormat
from mailbridge.store.cursors import DbCursorStore
from mailbridge.store.db import make_engine, session
from mailbridge.store.models import Case, Message
from mailbridge.store.types import UTCDateTime

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FMT = ReferenceFormat()


def _open_cases(url: str, count: int, year: int, per_transaction: int = 1) -> None:
    """`count` cases, `per_transaction` at a time: in batches, as the daemon opens them, with
    the numbers held back (holding_references)."""
    engine = make_engine(url)
    for _ in range(count // per_transaction):
        with session(engine) as s:
            with holding_references(s) if per_transaction > 1 else nullcontext():
                for _ in range(per_transaction):
                    ref = next_reference(s, FMT, year)
                    s.add(Case(reference=ref, received_at=NOW, created_at=NOW, updated_at=NOW))
            s.commit()
    engine.dispose()


def test_references_count_up_within_a_year_and_restart_each_year(engine):
    with session(engine) as s:
        refs = [next_reference(s, FMT, 2026) for _ in range(3)] + [next_reference(s, FMT, 2027)]
        s.commit()
    assert refs == ["ME-2026-00001", "ME-2026-00002", "ME-2026-00003", "ME-2027-00001"]


def test_reference_prefix_and_width_are_configurable(engine):
    with session(engine) as s:
        assert next_reference(s, ReferenceFormat(prefix="MPE", width=7), 2026) == "MPE-2026-0000001"


def test_numbers_held_back_in_a_batch_carry_on_from_the_counter_and_end_in_it(engine):
    with session(engine) as s:
        next_reference(s, FMT, 2026)
        with holding_references(s):
            refs = [next_reference(s, FMT, 2026) for _ in range(3)]
            refs.append(next_reference(s, FMT, 2027))
        s.commit()
        assert next_reference(s, FMT, 2026) == "ME-2026-00005"
        assert next_reference(s, FMT, 2027) == "ME-2027-00002"
    assert refs == ["ME-2026-00002", "ME-2026-00003", "ME-2026-00004", "ME-2027-00001"]


def test_a_batch_that_fails_writes_none_of_its_held_numbers(engine):
    with session(engine) as s:
        next_reference(s, FMT, 2026)
        s.commit()
        with pytest.raises(RuntimeError), s.begin_nested(), holding_references(s):
            next_reference(s, FMT, 2026)
            next_reference(s, FMT, 2026)
            raise RuntimeError("a message failed")
        assert next_reference(s, FMT, 2026) == "ME-2026-00002"


def test_a_rolled_back_case_gives_its_number_back(engine):
    with session(engine) as s:
        next_reference(s, FMT, 2026)
        s.rollback()
        assert next_reference(s, FMT, 2026) == "ME-2026-00001"


@pytest.mark.slow
@pytest.mark.parametrize("per_transaction", [1, 5], ids=["one-by-one", "in-batches"])
def test_two_processes_opening_cases_at_once_never_share_a_reference(db_url, per_transaction):
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_open_cases, args=(db_url, 60, 2026, per_transaction)) for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    engine = make_engine(db_url)
    with session(engine) as s:
        refs = s.exec(select(Case.reference)).all()
    engine.dispose()
    assert len(refs) == 120
    assert sorted(refs) == [f"ME-2026-{n:05d}" for n in range(1, 121)]


def test_raw_mail_is_stored_byte_exact(engine):
    raw = b"From: a@b\r\nSubject: \xff\xfe odd\rbare CR\n\x00NUL\r\n\r\nbody\x80\r\n"
    with session(engine) as s:
        s.add(
            Message(
                dedupe_key="k",
                sha256="0" * 64,
                size=len(raw),
                raw=raw,
                fetched_at=NOW,
                received_at=NOW,
            )
        )
        s.commit()
    with session(engine) as s:
        assert s.exec(select(Message.raw)).one() == raw


def test_times_go_in_as_any_zone_and_come_back_as_utc(engine):
    bst = datetime(2026, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    with session(engine) as s:
        s.add(Case(reference="ME-2026-00001", received_at=bst, created_at=NOW, updated_at=NOW))
        s.commit()
    with session(engine) as s:
        received = s.exec(select(Case.received_at)).one()
        assert s.exec(select(Case).where(Case.received_at < bst + timedelta(seconds=1))).first()
    assert received == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert received.tzinfo is not None


def test_naive_times_are_refused(engine):
    with session(engine) as s:
        s.add(
            Case(
                reference="ME-2026-00001",
                received_at=datetime(2026, 1, 1),
                created_at=NOW,
                updated_at=NOW,
            )
        )
        with pytest.raises(Exception, match="naive"):
            s.commit()


def test_mailbox_cursors_remember_uidvalidity_and_last_uid_per_folder(engine):
    cursors = DbCursorStore(engine, FrozenClock(NOW))
    assert cursors.load("council@imap/INBOX") is None
    cursors.advance("council@imap/INBOX", 1795418775, 10)
    cursors.advance("council@imap/INBOX", 1795418775, 25)
    cursors.advance("council@imap/Cc", 7, 3)
    assert cursors.load("council@imap/INBOX") == (1795418775, 25)
    assert cursors.load("council@imap/Cc") == (7, 3)


def test_a_mailbox_cursor_never_moves_back_unless_the_folder_was_recreated(engine):
    cursors = DbCursorStore(engine, FrozenClock(NOW))
    cursors.advance("council@imap/INBOX", 1795418775, 25)
    cursors.advance("council@imap/INBOX", 1795418775, 12)  # a late batch, acknowledged after
    assert cursors.load("council@imap/INBOX") == (1795418775, 25)
    cursors.advance("council@imap/INBOX", 1795418999, 4)  # a new UIDVALIDITY: UIDs start again
    assert cursors.load("council@imap/INBOX") == (1795418999, 4)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.mark.unit
def test_a_time_is_bound_for_sqlite_as_sqlalchemys_datetime_text_of_its_utc_value():
    dialect = sqlite.dialect()
    column = UTCDateTime()
    bind = column.dialect_impl(dialect).bind_processor(dialect)
    as_sqlalchemy_stores_it = DATETIME().bind_processor(dialect)
    for value in (
        NOW,
        datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-1))),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ):
        naive_utc = value.astimezone(UTC).replace(tzinfo=None)
        assert bind(value) == as_sqlalchemy_stores_it(naive_utc)
    assert bind(NOW) == "2026-11-23 10:00:00.000000" and bind(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        bind(datetime(2026, 11, 23, 10, 0))
