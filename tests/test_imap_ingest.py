"""Mail APPENDed to a real Dovecot INBOX becomes cases, and leaves INBOX only after commit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import select

from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest import runner as runner_module
from mailbridge.ingest.sources.base import Fetched
from mailbridge.store.db import session
from mailbridge.store.models import Case, Message
from tests.conftest import MAILBOX, make_settings
from tests.mail import make_email

pytestmark = pytest.mark.imap
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PATEL = "asha.patel@council.example"
SINGH = "dev.singh@council.example"


@pytest.fixture
def imap_deps(imap_account, db_url):
    deps = build_deps(make_settings(db_url, imap_account.url), FrozenClock(NOW))
    yield deps
    deps.engine.dispose()


def drain(deps):
    runner = build_runner(deps)
    try:
        return runner.drain()
    finally:
        runner.close()


def test_each_kind_of_mail_appended_to_inbox_becomes_what_it_should(imap_account, imap_deps):
    bounce = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: " + MAILBOX.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn@mx.example>\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; gone@x\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <direct@m.example>\r\n\r\n"
        b"--B--\r\n"
    )
    mails = [
        make_email(
            PATEL,
            [MAILBOX],
            "Fly-tipping",
            cc=["ben.okafor@council.example"],
            message_id="<direct@m.example>",
        ),
        make_email(PATEL, [SINGH], "Bins not collected", cc=[MAILBOX], message_id="<cc@m.example>"),
        make_email(SINGH, [MAILBOX], "Re: Fly-tipping", in_reply_to="<direct@m.example>"),
        make_email(PATEL, [MAILBOX], "Fly-tipping", message_id="<direct@m.example>"),  # again
        make_email("jo@resident.example", [MAILBOX], "Noise at night"),
        make_email(PATEL, [MAILBOX], "Out of office", headers={"Auto-Submitted": "auto-replied"}),
        bounce,
    ]
    for raw in mails:
        imap_account.append(raw)
    stats = drain(imap_deps)
    assert (stats.fetched, stats.duplicates, stats.failed) == (7, 1, 0)
    with session(imap_deps.engine) as s:
        cases = {c.reference: (c.origin, c.status, c.officer) for c in s.exec(select(Case))}
        kinds = [m.classification for m in s.exec(select(Message).order_by(Message.id))]
    assert cases == {
        "ME-2026-00001": ("direct", "awaiting_response", "o-singh"),
        "ME-2026-00002": ("cc", "awaiting_response", "o-singh"),
        "ME-2026-00003": ("direct", "triage", None),
    }
    assert kinds == ["enquiry", "cc_enquiry", "reply", "non_member", "auto_reply", "bounce"]
    assert imap_account.uids("INBOX") == []
    assert len(imap_account.uids("Processed")) == 7  # the duplicate too: moved, never deleted


def test_mail_stays_in_inbox_when_the_database_cannot_take_it(imap_account, imap_deps):
    imap_account.append(make_email(PATEL, [MAILBOX], "Bins"))
    with imap_deps.engine.begin() as conn:  # the fault, at the edge: the table is not there
        conn.execute(text("ALTER TABLE message RENAME TO message_away"))
    with pytest.raises(Exception, match="message"):
        drain(imap_deps)
    assert len(imap_account.uids("INBOX")) == 1
    assert imap_account.uids("Processed") == []
    with imap_deps.engine.begin() as conn:
        conn.execute(text("ALTER TABLE message_away RENAME TO message"))
    assert drain(imap_deps).processed == 1
    assert imap_account.uids("INBOX") == []


def test_a_backlog_is_moved_a_few_hundred_at_a_time_and_only_after_commit(
    imap_account, db_url, monkeypatch
):
    """One MOVE costs the server as much for one message as for hundreds: in a backlog the
    runner moves committed batches together, fetching the next batch before moving the last
    (its parse starts meanwhile), and moves whatever is left once nothing more comes."""
    monkeypatch.setattr(runner_module, "ACK_AT_LEAST", 12)
    settings = make_settings(db_url, imap_account.url)
    deps = build_deps(replace(settings, source=replace(settings.source, batch_size=5)),
                      FrozenClock(NOW))  # fmt: skip
    for n in range(32):
        imap_account.append(make_email(PATEL, [MAILBOX], f"Bins, street {n}"))
    runner = build_runner(deps)
    events: list[str] = []
    fetch_batches, acknowledge = runner.source.fetch_batches, runner.source.acknowledge

    def fetching() -> Iterator[list[Fetched]]:
        for batch in fetch_batches():
            events.append(f"fetch {len(batch)}")
            yield batch

    def acknowledging(batch: list[Fetched]) -> None:
        with session(deps.engine) as s:
            committed = s.exec(select(Message.uid).where(Message.status == "processed")).all()
        assert {m.uid for m in batch} <= set(committed)
        events.append(f"move {len(batch)}")
        acknowledge(batch)

    monkeypatch.setattr(runner.source, "fetch_batches", fetching)
    monkeypatch.setattr(runner.source, "acknowledge", acknowledging)
    try:
        assert runner.drain().processed == 32
    finally:
        runner.close()
        deps.engine.dispose()
    assert events == ["fetch 5"] * 4 + ["move 15"] + ["fetch 5", "fetch 5", "fetch 2", "move 15",
                                                   "move 2"]  # fmt: skip
    assert imap_account.uids("INBOX") == []
    assert len(imap_account.uids("Processed")) == 32
