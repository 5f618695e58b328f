"""The sender loop: claim what is due, deliver it, record what happened; retries and back-off.

`flush_outbox` is one pass (cron, `mailbridge outbox flush`, tests); `run_sender` is the
daemon's loop around it, in a thread of its own with its own asyncio event loop, beside the
blocking ingest loop. Each step is a short transaction; no row lock is held while talking to
the mail server. The loop reads the clock once per step and hands the time down.

Outcomes: accepted -> sent (recipients refused on the way are recorded); 4xx or connection
trouble -> pending again after a growing pause, failed after `give_up_after_hours`; 5xx ->
failed at once, on the case timeline and in `mailbridge outbox list`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from mailbridge.clock import Clock
from mailbridge.config import OutboxPolicy
from mailbridge.outbound.outbox import (
    FAILED,
    claim_due,
    hold_over_limit,
    mark_failed,
    mark_retry,
    mark_sent,
    release,
    requeue_stale,
)
from mailbridge.outbound.senders import Delivery, PermanentSendError, TransientSendError
from mailbridge.store.db import session
from mailbridge.store.models import Outbox

log = logging.getLogger(__name__)

BATCH_SIZE = 20
OUTAGE_BACKOFF_MAX = 300.0  # seconds between flushes while the database is down


@dataclass
class FlushStats:
    requeued: int = 0  # left `sending` by a crash, sent again
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    held: int = 0  # over the flood limit, for later
    refused: int = 0  # recipients refused on messages that went to the others

    def __bool__(self) -> bool:
        return any(vars(self).values())


async def flush_outbox(
    engine: Engine,
    delivery: Delivery,
    clock: Clock,
    policy: OutboxPolicy,
    *,
    stop: threading.Event | None = None,
    batch_size: int = BATCH_SIZE,
) -> FlushStats:
    """Send everything due now, batch by batch, until nothing is due (or `stop` is set).

    Database errors propagate (the caller backs off); one bad row never stops the pass.
    """
    if not policy.envelope_from:
        raise ValueError("OutboxPolicy.envelope_from is empty: bounces would have nowhere to go")
    stop = stop or threading.Event()
    stats = FlushStats()
    with session(engine) as s:
        stats.requeued = requeue_stale(
            s, clock.now(), timedelta(seconds=policy.stale_after_seconds)
        )
        s.commit()
    try:
        while not stop.is_set():
            with session(engine) as s:
                now = clock.now()
                claimed = claim_due(s, now, batch_size)
                batch, held = hold_over_limit(s, claimed, now, policy.per_recipient_per_hour)
                # Committed BEFORE any SMTP I/O: from here a crash leaves these rows
                # `sending` until requeue_stale, never locked and never silently lost.
                s.commit()
            stats.held += len(held)
            if not claimed:
                break
            for i, row in enumerate(batch):
                if stop.is_set():  # SIGTERM: finish the one in hand, give back the rest
                    with session(engine) as s:
                        release(s, [r.id for r in batch[i:]])
                        s.commit()
                    break
                unreachable = await _deliver(engine, delivery, clock, policy, row, stats)
                if unreachable:
                    # The server is down: the rest of the batch waits its turn with this
                    # row, rather than each sitting through its own connect time-out.
                    _retry_untried(engine, clock, policy, batch[i + 1 :], unreachable, stats)
                    break
    finally:
        await delivery.close()
    return stats


async def _deliver(
    engine: Engine,
    delivery: Delivery,
    clock: Clock,
    policy: OutboxPolicy,
    row: Outbox,
    stats: FlushStats,
) -> str | None:
    """Send one row and record the outcome; the error if the server could not be reached."""
    assert row.id is not None
    refused: dict[str, tuple[int, str]] = {}
    transient = permanent = unreachable = None
    try:
        refused = await delivery.send(row.raw, policy.envelope_from, _envelope(row))
    except TransientSendError as exc:
        transient = str(exc)
        unreachable = transient if exc.code is None else None  # no SMTP reply at all
    except PermanentSendError as exc:
        permanent = str(exc)
    except Exception as exc:  # a bug or a surprise from a library: this row only
        log.exception("outbox: sending %s (%s) raised", row.id, row.dedupe_key)
        permanent = f"internal error: {type(exc).__name__}: {exc}"
    # CRASH WINDOW: if the server accepted the message and we die before this commit, the
    # row stays `sending` and requeue_stale sends it again, same bytes, same Message-ID.
    with session(engine) as s:
        now = clock.now()
        if transient is not None:
            _retry(s, row, now, transient, policy, stats)
            log.info("outbox: %s not sent, will retry: %s", row.dedupe_key, transient)
        elif permanent is not None:
            mark_failed(s, row.id, now, permanent)
            stats.failed += 1
            log.warning("outbox: %s failed: %s", row.dedupe_key, permanent)
        else:
            mark_sent(s, row.id, now, refused)
            stats.sent += 1
            stats.refused += len(refused)
            if refused:
                log.warning("outbox: %s refused for %s", row.dedupe_key, ", ".join(refused))
        s.commit()
    return unreachable


def _retry(
    s: Session, row: Outbox, now: datetime, error: str, policy: OutboxPolicy, stats: FlushStats
) -> None:
    assert row.id is not None
    after = mark_retry(s, row.id, now, error, timedelta(hours=policy.give_up_after_hours))
    if after is not None and after.status == FAILED:
        stats.failed += 1
    else:
        stats.retrying += 1


def _retry_untried(
    engine: Engine,
    clock: Clock,
    policy: OutboxPolicy,
    rows: list[Outbox],
    error: str,
    stats: FlushStats,
) -> None:
    if not rows:
        return
    with session(engine) as s:
        now = clock.now()
        for row in rows:
            _retry(s, row, now, f"not tried, the server was unreachable: {error}", policy, stats)
        s.commit()


def _envelope(row: Outbox) -> list[str]:
    """To then Cc, each address once: the header's recipients are the envelope's."""
    seen: set[str] = set()
    recipients = []
    for address in (*row.to, *row.cc):
        if address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients


def run_sender(
    engine: Engine,
    delivery: Delivery,
    clock: Clock,
    policy: OutboxPolicy,
    stop: threading.Event,
    interval: float,
    wake: threading.Event | None = None,
) -> None:
    """The daemon's sender: flush every `interval` seconds until `stop`; run it in a thread.

    It has its own event loop, so aiosmtplib never meets the ingest thread. A database or
    mail-server outage slows it down (doubling pauses up to 5 minutes), never kills it.
    `wake`, set by the ingest loop when it commits, starts a flush at once: acknowledgements
    go out within moments of the email arriving rather than at the next tick.
    """
    wake = wake or threading.Event()
    asyncio.run(_sender_loop(engine, delivery, clock, policy, stop, interval, wake))


async def _sender_loop(
    engine: Engine,
    delivery: Delivery,
    clock: Clock,
    policy: OutboxPolicy,
    stop: threading.Event,
    interval: float,
    wake: threading.Event,
) -> None:
    pause = interval
    while not stop.is_set():
        try:
            stats = await flush_outbox(engine, delivery, clock, policy, stop=stop)
            pause = interval
            if stats:
                log.info("outbox: %s", stats)
        except Exception:
            pause = min(max(pause * 2, interval), OUTAGE_BACKOFF_MAX)
            log.exception("outbox: flush failed; trying again in %.0f s", pause)
        await _nap(stop, wake, pause)
    log.info("outbox sender stopped")


async def _nap(stop: threading.Event, wake: threading.Event, seconds: float) -> None:
    """Sleep `seconds`, or until woken; notice `stop` within a second, even in a long back-off."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if await asyncio.to_thread(wake.wait, min(left, 1.0)):
            wake.clear()
            return
