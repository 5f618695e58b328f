"""Delivering the outbox through a real SMTP server (the aiosmtpd sink) and the file outbox.

Faults come from the edge: the sink goes down, refuses a recipient with a 4xx or 5xx, hangs up
after taking a message; the sender is SIGKILLed. Time is a FrozenClock, moved by hand.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from mailbridge.clock import FrozenClock
from mailbridge.config import Endpoint, OutboxPolicy
from mailbridge.outbound.outbox import enqueue
from mailbridge.outbound.senders import Delivery, FileSender, SmtpSender
from mailbridge.outbound.sending import FlushStats, flush_outbox
from mailbridge.store.db import make_engine, session
from mailbridge.store.models import Event, Outbox
from tests.conftest import settings_env, wait_for
from tests.outgoing import OWN, POLICY, add_case, outgoing
from tests.smtp_sink import SmtpSink

PATEL = "asha.patel@council.example"
OKAFOR = "ben.okafor@council.example"
RESIDENT = "jo@resident.example"


def smtp(sink: SmtpSink, **kwargs) -> SmtpSender:
    endpoint = Endpoint(url=sink.url, scheme=sink.url.split(":")[0], host=sink.host, port=sink.port)
    return SmtpSender(endpoint, timeout=5, **kwargs)


def flush(
    engine, delivery: Delivery, clock: FrozenClock, policy: OutboxPolicy = POLICY, **kw
) -> FlushStats:
    return asyncio.run(flush_outbox(engine, delivery, clock, policy, **kw))


def queue(engine, clock, *messages, case: bool = False, kind: str = "ack") -> list[int]:
    """Queue each message under the dedupe key `<kind>:<n>`; returns the outbox ids."""
    with session(engine) as s:
        case_id = add_case(s, "ME-2026-00001", clock.now()).id if case else None
        ids = [
            enqueue(
                s,
                kind=kind,
                dedupe_key=f"{kind}:{n}",
                message=msg,
                now=clock.now(),
                case_id=case_id,
                own_addresses=OWN,
            ).id
            for n, msg in enumerate(messages)
        ]
        s.commit()
    return ids


def rows(engine) -> list[Outbox]:
    with session(engine) as s:
        return list(s.exec(select(Outbox).order_by(Outbox.id)))


def timeline(engine) -> list[Event]:
    with session(engine) as s:
        return list(s.exec(select(Event).order_by(Event.id)))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


# ----- delivery -------------------------------------------------------------------------------


def test_a_queued_email_is_delivered_once_byte_for_byte_with_its_message_id(
    engine, smtp_sink, clock
):
    msg = outgoing(
        [PATEL],
        cc=[OKAFOR],
        message_id="<ack-1@council.example>",
        in_reply_to="<orig@member.example>",
        body="Thank you.\n.A line starting with a dot\nÜmlauts stay 8-bit.\n",
    )
    queue(engine, clock, msg)
    [row] = rows(engine)

    stats = flush(engine, smtp(smtp_sink), clock)
    again = flush(engine, smtp(smtp_sink), clock)

    [got] = smtp_sink.messages
    assert got.raw == row.raw  # the stored bytes, CRLF and dot-stuffing undone, intact
    assert got.message_id == "<ack-1@council.example>"
    assert got.in_reply_to == got.references == "<orig@member.example>"
    assert (got.envelope_from, got.recipients) == (POLICY.envelope_from, (PATEL, OKAFOR))
    assert (stats.sent, again.sent) == (1, 0)
    [sent] = rows(engine)
    assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == (
        "sent",
        1,
        clock.now(),
        None,
    )


def test_while_the_server_is_down_emails_wait_longer_each_time_then_go_exactly_once(
    engine, smtp_sink, clock
):
    queue(engine, clock, outgoing([PATEL]), outgoing([OKAFOR]), outgoing([RESIDENT]))
    smtp_sink.stop()
    sender = smtp(smtp_sink)
    seen = []
    for _ in range(3):
        stats = flush(engine, sender, clock)
        assert (stats.sent, stats.retrying) == (0, 3)
        waits = {(r.attempts, r.next_attempt_at - clock.now()) for r in rows(engine)}
        seen.append(waits)
        [(_, wait)] = waits
        assert flush(engine, sender, clock).retrying == 0  # nothing due until the pause is over
        clock.advance(wait)
    assert seen == [
        {(1, timedelta(seconds=30))},
        {(2, timedelta(minutes=1))},
        {(3, timedelta(minutes=2))},
    ]
    assert all("Connect" in r.last_error for r in rows(engine))

    smtp_sink.start()
    stats = flush(engine, sender, clock)
    flush(engine, sender, clock)

    assert stats.sent == 3
    assert sorted(m.recipients for m in smtp_sink.messages) == [(PATEL,), (OKAFOR,), (RESIDENT,)]
    assert [(r.status, r.attempts) for r in rows(engine)] == [("sent", 4)] * 3


def test_a_5xx_fails_the_email_at_once_for_the_team_and_it_is_never_retried(
    engine, smtp_sink, clock
):
    smtp_sink.replies[PATEL] = "550 5.1.1 no such user"
    queue(engine, clock, outgoing([PATEL]), case=True)

    stats = flush(engine, smtp(smtp_sink), clock)
    for _ in range(3):  # no retry storm
        clock.advance(timedelta(hours=2))
        assert not flush(engine, smtp(smtp_sink), clock)

    [row] = rows(engine)
    assert stats.failed == 1 and smtp_sink.messages == []
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == f"{PATEL}: 550 5.1.1 no such user"
    failed = timeline(engine)[-1]
    assert (failed.kind, failed.detail["error"]) == ("email-failed", row.last_error)


def test_a_4xx_for_the_only_recipient_is_retried_later(engine, smtp_sink, clock):
    smtp_sink.replies[PATEL] = "451 4.3.0 try later"
    queue(engine, clock, outgoing([PATEL]))

    assert flush(engine, smtp(smtp_sink), clock).retrying == 1
    del smtp_sink.replies[PATEL]
    clock.advance(timedelta(seconds=30))
    assert flush(engine, smtp(smtp_sink), clock).sent == 1

    [row] = rows(engine)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp_sink.messages) == 1


def test_one_refused_recipient_among_several_does_not_stop_the_others(engine, smtp_sink, clock):
    smtp_sink.replies[OKAFOR] = "550 5.1.1 no such user"
    queue(engine, clock, outgoing([PATEL], cc=[OKAFOR, RESIDENT]), case=True)

    stats = flush(engine, smtp(smtp_sink), clock)

    [got] = smtp_sink.messages
    assert got.recipients == (PATEL, RESIDENT)
    assert (stats.sent, stats.refused) == (1, 1)
    [row] = rows(engine)
    assert row.status == "sent"
    assert row.last_error == f"refused: {OKAFOR} 550 5.1.1 no such user"
    refused = timeline(engine)[-1]
    assert refused.kind == "email-recipient-refused"
    assert refused.detail["refused"] == {OKAFOR: [550, "5.1.1 no such user"]}


def test_when_the_server_cannot_be_reached_the_rest_of_the_batch_waits_without_trying(
    engine, smtp_sink, clock
):
    queue(engine, clock, *(outgoing([f"m{n}@x.example"]) for n in range(4)))
    smtp_sink.stop()

    stats = flush(engine, smtp(smtp_sink), clock)

    assert stats.retrying == 4
    untried = [r.last_error for r in rows(engine)[1:]]
    assert all(e.startswith("not tried, the server was unreachable") for e in untried)
    assert {r.next_attempt_at for r in rows(engine)} == {clock.now() + timedelta(seconds=30)}


# ----- flood protection -----------------------------------------------------------------------


def test_the_eleventh_email_to_one_address_in_an_hour_is_held_and_sent_after_the_hour(
    engine, smtp_sink, clock
):
    queue(engine, clock, *(outgoing([PATEL], subject=f"enquiry {n}") for n in range(11)))
    start = clock.now()

    first = flush(engine, smtp(smtp_sink), clock)
    clock.advance(timedelta(minutes=59))
    too_soon = flush(engine, smtp(smtp_sink), clock)
    held = rows(engine)[-1]
    clock.advance(timedelta(minutes=1))
    after = flush(engine, smtp(smtp_sink), clock)

    assert (first.sent, first.held, too_soon.sent) == (10, 1, 0)
    assert (held.status, held.next_attempt_at) == ("held", start + timedelta(hours=1))
    assert held.last_error == f"rate limit: 10 per hour to {PATEL}"
    assert after.sent == 1
    assert len(smtp_sink.messages) == 11
    assert {r.status for r in rows(engine)} == {"sent"}


def test_the_flood_limit_is_a_setting(engine, smtp_sink, clock):
    queue(engine, clock, *(outgoing([PATEL]) for _ in range(3)))

    stats = flush(engine, smtp(smtp_sink), clock, replace(POLICY, per_recipient_per_hour=2))

    assert (stats.sent, stats.held) == (2, 1)


# ----- the file outbox ------------------------------------------------------------------------


def test_the_file_outbox_writes_one_eml_per_email_and_the_same_file_when_sent_again(
    engine, tmp_path, clock
):
    outdir = tmp_path / "outbox"
    queue(engine, clock, outgoing([PATEL]), outgoing([OKAFOR], message_id="<we/ird..id@c.example>"))

    assert flush(engine, FileSender(outdir), clock).sent == 2
    files = sorted(outdir.iterdir())
    by_bytes = {p.read_bytes(): p.name for p in files}
    assert set(by_bytes) == {r.raw for r in rows(engine)} and len(files) == 2
    assert all(name.endswith(".eml") and "/" not in name for name in by_bytes.values())

    # A crash after the write but before "sent" was recorded: the row goes out again.
    with session(engine) as s:
        for row in s.exec(select(Outbox)):
            row.status, row.next_attempt_at = "pending", clock.now()
        s.commit()
    assert flush(engine, FileSender(outdir), clock).sent == 2
    assert sorted(outdir.iterdir()) == files  # the same two files, rewritten; no tmp left over


# ----- the crash window -----------------------------------------------------------------------


def test_a_server_that_hangs_up_after_taking_the_message_gets_it_again_with_the_same_id(
    engine, smtp_sink, clock
):
    queue(engine, clock, outgoing([PATEL], message_id="<ack-7@council.example>"))
    smtp_sink.drop_after_data = 1  # stored, but the "250" never reaches us

    assert flush(engine, smtp(smtp_sink), clock).retrying == 1
    clock.advance(timedelta(seconds=30))
    assert flush(engine, smtp(smtp_sink), clock).sent == 1

    ids = [m.message_id for m in smtp_sink.messages]
    assert ids == ["<ack-7@council.example>"] * 2  # a duplicate, never a new Message-ID
    assert len({m.raw for m in smtp_sink.messages}) == 1


def test_sigterm_finishes_the_email_in_hand_and_gives_the_rest_back(engine, smtp_sink, clock):
    queue(engine, clock, *(outgoing([f"m{n}@x.example"]) for n in range(4)))
    stop = threading.Event()

    class StopAfterOne:
        """The real sender; SIGTERM arrives while the first email is being sent."""

        def __init__(self, inner: SmtpSender):
            self.inner = inner

        async def send(self, raw, envelope_from, recipients):
            stop.set()
            return await self.inner.send(raw, envelope_from, recipients)

        async def close(self):
            await self.inner.close()

    stats = flush(engine, StopAfterOne(smtp(smtp_sink)), clock, stop=stop)

    assert stats.sent == 1 and len(smtp_sink.messages) == 1
    assert [(r.status, r.attempts) for r in rows(engine)] == [("sent", 1)] + [("pending", 0)] * 3


def test_two_flushers_at_once_never_send_the_same_email_twice(db_url, smtp_sink):
    clock = FrozenClock()
    engines = [make_engine(db_url) for _ in range(2)]
    total = 120
    queue(engines[0], clock, *(outgoing([f"m{n}@x.example"]) for n in range(total)))
    smtp_sink.delay = 0.002  # long enough that the two overlap
    results: list[FlushStats] = []
    go = threading.Barrier(2)

    def flusher(engine) -> None:
        go.wait()
        results.append(flush(engine, smtp(smtp_sink), clock, batch_size=5))

    threads = [threading.Thread(target=flusher, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for e in engines:
        e.dispose()

    ids = [m.message_id for m in smtp_sink.messages]
    assert len(ids) == len(set(ids)) == total
    assert sorted(r.sent for r in results)[0] > 0, "one flusher did all the work"
    assert sum(r.sent for r in results) == total


# ----- TLS and login --------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls_with_a_checked_certificate_and_a_login(engine, clock, monkeypatch, tls):
    with SmtpSink(tls=tls, users={"casework": "s3cret"}) as sink:
        monkeypatch.setenv("SSL_CERT_FILE", str(sink.cert))
        endpoint = Endpoint(
            url=sink.url,
            scheme="smtps" if tls == "implicit" else "smtp",
            host=sink.host,
            port=sink.port,
            username="casework",
            password="s3cret",
        )
        queue(engine, clock, outgoing([PATEL]))

        assert flush(engine, SmtpSender(endpoint, timeout=5), clock).sent == 1
        assert len(sink.messages) == 1


def test_an_untrusted_certificate_fails_rather_than_sending_in_clear(engine, clock):
    with SmtpSink(tls="starttls") as sink:  # its certificate is not trusted here
        queue(engine, clock, outgoing([PATEL]))

        stats = flush(engine, smtp(sink), clock)

        [row] = rows(engine)
        assert stats.failed == 1 and sink.messages == []
        assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


def test_a_wrong_password_is_a_permanent_failure(engine, clock):
    with SmtpSink(users={"casework": "s3cret"}) as sink:
        endpoint = Endpoint(
            url=sink.url,
            scheme="smtp",
            host=sink.host,
            port=sink.port,
            username="casework",
            password="wrong",
        )
        queue(engine, clock, outgoing([PATEL]))

        assert flush(engine, SmtpSender(endpoint, timeout=5), clock).failed == 1
        assert rows(engine)[0].last_error.startswith("535")


# ----- whole processes ------------------------------------------------------------------------


def _env(db_url: str, tmp_path: Path, outbox: str, toml: str) -> dict[str, str]:
    config = tmp_path / "mailbridge.toml"
    config.write_text(toml)
    (tmp_path / "inbox").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")}
    return env | settings_env(
        db_url,
        f"maildir:{tmp_path / 'inbox'}",
        MAILBRIDGE_OUTBOX=outbox,
        MAILBRIDGE_CONFIG=str(config),
    )


@pytest.mark.slow
def test_killing_the_sender_at_random_moments_loses_nothing_and_never_changes_a_message_id(
    db_url, smtp_sink, tmp_path
):
    total = 300
    env = _env(
        db_url,
        tmp_path,
        smtp_sink.url,
        "[outbox]\nstale_after_seconds = 1\nper_recipient_per_hour = 1000\n",
    )
    engine = make_engine(db_url)

    def produce() -> int:
        """The producer runs again after every crash, with fresh Message-IDs each time."""
        queued, now = 0, datetime.now(UTC)
        with session(engine) as s:
            for n in range(total):
                msg = outgoing([f"member{n % 30}@x.example"], headers={"X-Test-Dedupe": f"ack:{n}"})
                row = enqueue(s, kind="ack", dedupe_key=f"ack:{n}", message=msg, now=now)
                queued += row is not None
            s.commit()
        return queued

    assert produce() == total
    smtp_sink.delay = 0.005
    command = [sys.executable, "-m", "mailbridge", "outbox", "flush", "--log-level", "ERROR"]
    rng = random.Random(2026)
    kills = 0
    for _ in range(10):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert produce() == 0  # while the sender runs: nothing is queued twice
        time.sleep(rng.uniform(0.6, 1.6))  # start-up takes about 0.8 s
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        proc.stderr.close()
    time.sleep(1.1)  # rows a kill left "sending" become stale (stale_after_seconds = 1)
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert final.returncode == 0, final.stderr
    assert kills >= 3, "the sender finished before it could be killed often enough"

    with session(engine) as s:
        stored = {r.dedupe_key: r for r in s.exec(select(Outbox))}
    engine.dispose()
    assert {r.status for r in stored.values()} == {"sent"}
    ids_per_key: dict[str, set[str]] = defaultdict(set)
    for m in smtp_sink.messages:
        ids_per_key[m.headers["X-Test-Dedupe"]].add(m.message_id)
    assert set(ids_per_key) == set(stored)  # every email arrived
    assert all(ids == {stored[key].message_id} for key, ids in ids_per_key.items())
    resent = len(smtp_sink.messages) - total
    print(f"\n{kills} kills; {resent} same-Message-ID resends of {total} emails ({db_url[:10]})")


@pytest.mark.slow
def test_the_daemon_sends_beside_the_ingest_loop_and_stops_on_sigterm(db_url, smtp_sink, tmp_path):
    clock = FrozenClock()
    engine = make_engine(db_url)
    queue(engine, clock, outgoing([PATEL]), outgoing([OKAFOR]))
    env = _env(db_url, tmp_path, smtp_sink.url, "[outbox]\nflush_seconds = 1\n")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "mailbridge", "run"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(smtp_sink.messages) == 2)
        queue(engine, clock, outgoing([RESIDENT]), kind="relay")  # while it runs
        wait_for(lambda: len(smtp_sink.messages) == 3)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        engine.dispose()
    log = daemon.stderr.read()
    assert "outbox sender stopped" in log and "mailbridge stopped" in log
