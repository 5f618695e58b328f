"""The outbox table's rules: queue once, claim once, back off, give up, hold floods, team controls.

These run on SQLite and PostgreSQL (the `engine` fixture) with no mail server; delivery through
a real SMTP server is in test_sending.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from mailbridge.outbound import outbox
from mailbridge.outbound.outbox import (
    backoff,
    cancel,
    claim_due,
    enqueue,
    hold_over_limit,
    mark_failed,
    mark_retry,
    mark_sent,
    requeue_stale,
    retry,
    retrying_for,
)
from mailbridge.store.db import session
from mailbridge.store.models import Event, Outbox
from tests.conftest import MAILBOX
from tests.outgoing import OWN, add_case, outgoing

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PATEL = "asha.patel@council.example"
OKAFOR = "ben.okafor@council.example"
GIVE_UP = timedelta(hours=48)


def _events(s, case_id: int) -> list[Event]:
    return list(s.exec(select(Event).where(Event.case_id == case_id).order_by(Event.id)))


# ----- queueing -------------------------------------------------------------------------------


def test_a_queued_email_keeps_its_exact_crlf_bytes_recipients_and_message_id(engine):
    msg = outgoing([PATEL], cc=[f"Ben Okafor <{OKAFOR}>"], message_id="<ack-1@council.example>")
    with session(engine) as s:
        row = enqueue(s, kind="ack", dedupe_key="ack:ME-2026-00001", message=msg, now=NOW)
        s.commit()
    with session(engine) as s:
        [stored] = s.exec(select(Outbox)).all()
    assert row is not None and stored.id == row.id
    assert stored.raw.startswith(b"From: ") and b"\r\n\r\n" in stored.raw
    assert b"\n" not in stored.raw.replace(b"\r\n", b"")  # every line ends CRLF
    assert stored.message_id == "<ack-1@council.example>"
    assert (stored.to, stored.cc) == ([PATEL], [OKAFOR])
    assert stored.subject == "Your enquiry [ME-2026-00001]"
    assert (stored.status, stored.attempts, stored.next_attempt_at) == ("pending", 0, NOW)


def test_queueing_the_same_dedupe_key_twice_keeps_the_first_email_and_its_message_id(engine):
    with session(engine) as s:
        case = add_case(s, "ME-2026-00001", NOW)
        first = enqueue(
            s,
            kind="ack",
            dedupe_key="ack:ME-2026-00001",
            message=outgoing([PATEL]),
            now=NOW,
            case_id=case.id,
        )
        s.commit()
    with session(engine) as s:
        again = enqueue(
            s,
            kind="ack",
            dedupe_key="ack:ME-2026-00001",
            message=outgoing([PATEL]),
            now=NOW,
            case_id=case.id,
        )
        s.commit()
    with session(engine) as s:
        rows = s.exec(select(Outbox)).all()
        events = _events(s, case.id)
    assert again is None
    assert [r.message_id for r in rows] == [first.message_id]
    assert [e.kind for e in events] == ["email-queued"]  # once, for the one row
    assert (
        events[0].detail.items()
        >= {
            "kind": "ack",
            "to": [PATEL],
            "cc": [],
            "message_id": first.message_id,
        }.items()
    )


def test_queueing_never_commits_the_callers_transaction(engine):
    with session(engine) as s:
        enqueue(s, kind="ack", dedupe_key="ack:x", message=outgoing([PATEL]), now=NOW)
        s.rollback()
    with session(engine) as s:
        assert s.exec(select(Outbox)).all() == []


@pytest.mark.parametrize(
    ("to", "cc"),
    [
        ([MAILBOX], []),
        ([PATEL], ["Enquiries <ENQUIRIES@council.example>"]),
        ([PATEL], ["enquiries+ME-2026-00001@council.example"]),  # a plus-address is ours too
    ],
)
def test_an_email_to_our_own_mailbox_is_refused(engine, to, cc):
    with session(engine) as s, pytest.raises(ValueError, match="own mailbox"):
        enqueue(
            s, kind="ack", dedupe_key="k", message=outgoing(to, cc=cc), now=NOW, own_addresses=OWN
        )


def test_an_email_without_recipients_a_message_id_or_with_a_bcc_is_refused(engine):
    no_one = outgoing([PATEL])
    del no_one["To"]
    no_id = outgoing([PATEL])
    del no_id["Message-ID"]
    bcc = outgoing([PATEL], headers={"Bcc": OKAFOR})
    with session(engine) as s:
        for msg, why in ((no_one, "no recipients"), (no_id, "Message-ID"), (bcc, "Bcc")):
            with pytest.raises(ValueError, match=why):
                enqueue(s, kind="ack", dedupe_key="k", message=msg, now=NOW)


def test_one_message_id_under_two_dedupe_keys_is_a_bug_not_a_silent_drop(engine):
    with session(engine) as s:
        enqueue(
            s, kind="ack", dedupe_key="a", message=outgoing([PATEL], message_id="<x@c>"), now=NOW
        )
        with pytest.raises(IntegrityError):
            enqueue(
                s,
                kind="ack",
                dedupe_key="b",
                message=outgoing([PATEL], message_id="<x@c>"),
                now=NOW,
            )


# ----- claiming and outcomes ------------------------------------------------------------------


def _queue(engine, n: int, *, to=(PATEL,), at=NOW, case=False) -> list[int]:
    ids = []
    with session(engine) as s:
        case_id = add_case(s, "ME-2026-00001", at).id if case else None
        for i in range(n):
            row = enqueue(
                s,
                kind="ack",
                dedupe_key=f"ack:{i}",
                message=outgoing(list(to)),
                now=at,
                case_id=case_id,
            )
            ids.append(row.id)
        s.commit()
    return ids


def test_a_claimed_email_is_sending_and_no_one_else_can_claim_it(engine):
    _queue(engine, 3)
    with session(engine) as s:
        first = claim_due(s, NOW, limit=2)
        s.commit()
    with session(engine) as s:
        second = claim_due(s, NOW, limit=10)
        third = claim_due(s, NOW, limit=10)
        s.commit()
    assert [(r.status, r.attempts, r.claimed_at) for r in first] == [("sending", 1, NOW)] * 2
    assert len(second) == 1 and third == []


def test_an_email_is_not_claimed_before_it_is_due(engine):
    _queue(engine, 1, at=NOW + timedelta(minutes=1))
    with session(engine) as s:
        assert claim_due(s, NOW, limit=10) == []
        assert len(claim_due(s, NOW + timedelta(minutes=1), limit=10)) == 1


def test_transient_failures_back_off_longer_each_time(engine):
    [row_id] = _queue(engine, 1)
    now, seen = NOW, []
    for _ in range(4):
        with session(engine) as s:
            [row] = claim_due(s, now, limit=1)
            s.commit()
            mark_retry(s, row_id, now, "451 4.3.0 try later", GIVE_UP)
            s.commit()
            row = s.get(Outbox, row_id)
            seen.append((row.attempts, row.next_attempt_at - now))
            now = row.next_attempt_at
    assert seen == [
        (1, timedelta(seconds=30)),
        (2, timedelta(minutes=1)),
        (3, timedelta(minutes=2)),
        (4, timedelta(minutes=4)),
    ]
    assert row.status == "pending" and row.last_error == "451 4.3.0 try later"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("attempts", "pause"),
    [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (9, 3600), (500, 3600)],
)
def test_back_off_doubles_from_30_seconds_up_to_an_hour(attempts, pause):
    assert backoff(attempts) == timedelta(seconds=pause)


@pytest.mark.unit
def test_48_hours_of_retrying_is_about_54_attempts():
    assert retrying_for(53) < GIVE_UP <= retrying_for(54)


def test_after_48_hours_of_retries_an_email_fails_and_the_team_is_told(engine):
    [row_id] = _queue(engine, 1, case=True)
    with session(engine) as s:
        row = s.get(Outbox, row_id)
        row.attempts = 53  # claim_due makes it 54
        s.commit()
        claim_due(s, NOW, limit=1)
        s.commit()
        mark_retry(s, row_id, NOW, "Connect call failed", GIVE_UP)
        s.commit()
        row = s.get(Outbox, row_id)
        events = _events(s, row.case_id)
    assert row.status == "failed"
    assert row.last_error == "gave up after 48 h of retries: Connect call failed"
    assert events[-1].kind == "email-failed"
    assert events[-1].detail["error"] == row.last_error


def test_a_permanent_failure_goes_on_the_case_timeline(engine):
    [row_id] = _queue(engine, 1, case=True)
    with session(engine) as s:
        claim_due(s, NOW, limit=1)
        mark_failed(s, row_id, NOW, f"{PATEL}: 550 5.1.1 no such user")
        s.commit()
        row = s.get(Outbox, row_id)
        [_, failed] = _events(s, row.case_id)
    assert row.status == "failed"
    assert (failed.kind, failed.detail["error"]) == (
        "email-failed",
        f"{PATEL}: 550 5.1.1 no such user",
    )
    assert failed.detail["to"] == [PATEL] and failed.detail["message_id"] == row.message_id


def test_a_refused_recipient_is_recorded_on_the_sent_email_and_the_case(engine):
    [row_id] = _queue(engine, 1, to=(PATEL, OKAFOR), case=True)
    with session(engine) as s:
        claim_due(s, NOW, limit=1)
        mark_sent(s, row_id, NOW, {OKAFOR: (550, "5.1.1 no such user")})
        s.commit()
        row = s.get(Outbox, row_id)
        refused = _events(s, row.case_id)[-1]
    assert (row.status, row.sent_at) == ("sent", NOW)
    assert row.last_error == f"refused: {OKAFOR} 550 5.1.1 no such user"
    assert refused.kind == "email-recipient-refused"
    assert refused.detail["refused"] == {OKAFOR: [550, "5.1.1 no such user"]}


def test_emails_left_sending_by_a_crash_are_queued_again_only_once_stale(engine):
    _queue(engine, 2)
    with session(engine) as s:
        claim_due(s, NOW, limit=1)
        claim_due(s, NOW + timedelta(minutes=9), limit=1)
        s.commit()
        assert requeue_stale(s, NOW + timedelta(minutes=10, seconds=1), timedelta(minutes=10)) == 1
        s.commit()
        statuses = [r.status for r in s.exec(select(Outbox).order_by(Outbox.id))]
    assert statuses == ["pending", "sending"]


# ----- the flood limit ------------------------------------------------------------------------


def test_the_eleventh_email_to_one_address_in_an_hour_is_held_until_the_hour_has_passed(engine):
    _queue(engine, 11, case=True)
    with session(engine) as s:
        send, [row] = hold_over_limit(s, claim_due(s, NOW, limit=20), NOW, per_hour=10)
        s.commit()
        held = (row.status, row.attempts, row.next_attempt_at, row.last_error)
        for sent in send:
            mark_sent(s, sent.id, NOW)
        s.commit()
        too_soon = claim_due(s, NOW + timedelta(minutes=59), limit=20)
        an_hour_on = NOW + timedelta(hours=1)
        later, none = hold_over_limit(s, claim_due(s, an_hour_on, limit=20), an_hour_on, 10)
        s.commit()
        events = [e.kind for e in _events(s, row.case_id)]
    assert len(send) == 10
    assert held == ("held", 0, an_hour_on, f"rate limit: 10 per hour to {PATEL}")
    assert too_soon == []
    assert [r.id for r in later] == [row.id] and none == []
    assert events.count("email-held") == 1


def test_the_flood_limit_counts_each_recipient_on_to_and_cc(engine):
    with session(engine) as s:
        for i in range(3):
            enqueue(
                s,
                kind="relay",
                dedupe_key=f"r{i}",
                message=outgoing([f"m{i}@x.example"], cc=[OKAFOR]),
                now=NOW,
            )
        s.commit()
        send, held = hold_over_limit(s, claim_due(s, NOW, limit=20), NOW, per_hour=2)
    assert len(send) == 2
    assert [r.last_error for r in held] == [f"rate limit: 2 per hour to {OKAFOR}"]


# ----- the team's controls --------------------------------------------------------------------


def test_retry_puts_a_failed_email_back_in_the_queue_with_a_fresh_run_of_retries(engine):
    [row_id] = _queue(engine, 1, case=True)
    with session(engine) as s:
        claim_due(s, NOW, limit=1)
        mark_failed(s, row_id, NOW, "550 no")
        s.commit()
        row = retry(s, "ack:0", NOW + timedelta(hours=2), actor="cli:alice")
        s.commit()
        last = _events(s, row.case_id)[-1]
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "pending",
        0,
        NOW + timedelta(hours=2),
    )
    assert (last.kind, last.actor, last.detail["was"]) == ("email-retry", "cli:alice", "failed")


def test_cancel_stops_an_email_for_good_and_says_so_on_the_case(engine):
    [row_id] = _queue(engine, 1, case=True)
    with session(engine) as s:
        row = cancel(s, str(row_id), NOW, actor="cli:alice")
        s.commit()
        assert claim_due(s, NOW, limit=10) == []
        last = _events(s, row.case_id)[-1]
    assert row.status == "cancelled"
    assert (last.kind, last.actor) == ("email-cancelled", "cli:alice")


def test_sent_or_sending_emails_cannot_be_retried_or_cancelled(engine):
    [row_id] = _queue(engine, 1)
    with session(engine) as s:
        claim_due(s, NOW, limit=1)
        s.commit()
        with pytest.raises(ValueError, match="is sending"):
            cancel(s, "ack:0", NOW)
        mark_sent(s, row_id, NOW)
        with pytest.raises(ValueError, match="is sent"):
            retry(s, "ack:0", NOW)
        with pytest.raises(LookupError):
            cancel(s, "ack:nope", NOW)


def test_the_team_list_names_the_case_and_every_column_scripts_need(engine):
    _queue(engine, 1, case=True)
    with session(engine) as s:
        [row] = outbox.list_outbox(s)
        assert outbox.list_outbox(s, status="failed") == []
    assert row["reference"] == "ME-2026-00001"
    assert set(row) >= {
        "reference",
        "kind",
        "to",
        "cc",
        "subject",
        "status",
        "attempts",
        "message_id",
        "dedupe_key",
        "last_error",
    }
