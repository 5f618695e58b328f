"""The outbox: automatic emails queued with the change that caused them, and what became of them.

A service that "sends" an email queues it inside its own transaction (`queue_email`, which
Mailer.queue calls with a Draft's fields; `enqueue` for a message built whole), so the case
change and the email commit together or not at all. The dedupe key (`ack:ME-2026-00123`) is the
row's natural key: queueing the same email twice keeps the first row, its bytes and its
Message-ID, and returns None.

Delivery is claim-then-send (notes/libraries.md §4). `claim_due` marks a batch `sending` and
the caller commits *before* any SMTP I/O, so no row lock is ever held across the network; the
outcome is recorded afterwards in a short transaction of its own.

Delivery is at least once, never "at most once", and always with the SAME bytes. A process that
dies after the SMTP server accepted a message but before `mark_sent` committed leaves the row
`sending`; `requeue_stale` puts it back after `stale_after_seconds` and it is delivered again,
byte for byte, with the Message-ID it was queued with, never a new one. Recipients' mail
clients and our own inbound dedupe (on Message-ID) then see one message, not two. We chose
this over the alternative, marking the row before sending, because that loses an
acknowledgement whenever the crash falls the other way, and a lost email is what the
committee papers complain about.

Row status: pending -> sending -> sent | pending (retry) | failed; pending -> held (flood limit)
-> sending; pending | held | failed -> cancelled (by the team). `raw` is stored in SMTP's
canonical form, CRLF line endings (email.policy.SMTP): exactly the bytes that go on the wire
and into a file outbox's .eml, so what the team downloads is what was sent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from email.utils import getaddresses
from typing import Any

from sqlalchemy import and_, or_, text, update
from sqlmodel import Session, select

from mailbridge.cases.service import SYSTEM, record_event
from mailbridge.ingest.classify import is_own_address
from mailbridge.outbound.compose import wire_bytes
from mailbridge.store.db import insert_ignoring, insert_one
from mailbridge.store.models import Case, Outbox

log = logging.getLogger(__name__)

PENDING, HELD, SENDING, SENT, FAILED, CANCELLED = (
    "pending",
    "held",  # over the flood limit: waits for the hour to pass, never dropped
    "sending",
    "sent",
    "failed",
    "cancelled",
)
OUTBOX_STATUSES = (PENDING, HELD, SENDING, SENT, FAILED, CANCELLED)
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
RATE_WINDOW = timedelta(hours=1)
# pg_advisory_xact_lock key ("mbox"): claims take turns on PostgreSQL, see claim_due.
_CLAIM_LOCK = 0x6D626F78


# ----- queueing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    """What queue_email wrote: enough to name the row, without building an Outbox object (the
    ORM's construction cost a third of a millisecond, on every email the daemon queues)."""

    id: int
    case_id: int | None
    kind: str
    message_id: str


def enqueue(
    session: Session,
    *,
    kind: str,
    dedupe_key: str,
    message: Message,
    now: datetime,
    case_id: int | None = None,
    own_addresses: frozenset[str] = frozenset(),
) -> Queued | None:
    """Queue a complete message once per dedupe key; None if that key is already queued.

    Refuses (ValueError) a message with a Bcc (the outbox keeps To and Cc only, and a Bcc
    header would go out in the bytes), and whatever queue_email refuses. Never commits.
    """
    if message.get("Bcc") is not None:
        raise ValueError(f"{dedupe_key}: Bcc is not supported; put the address in To or Cc")
    return queue_email(
        session,
        kind=kind,
        dedupe_key=dedupe_key,
        message_id=str(message.get("Message-ID") or "").strip(),
        to=header_addresses(message, "To"),
        cc=header_addresses(message, "Cc"),
        subject=str(message.get("Subject") or ""),
        # Serialised in the policy family it was built with, with SMTP's CRLF line ends.
        raw=wire_bytes(message),
        now=now,
        case_id=case_id,
        own_addresses=own_addresses,
    )


def queue_email(
    session: Session,
    *,
    kind: str,
    dedupe_key: str,
    message_id: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    raw: bytes,
    now: datetime,
    case_id: int | None = None,
    own_addresses: frozenset[str] = frozenset(),
) -> Queued | None:
    """Queue an email, given its header fields and wire bytes (b"" while a worker builds
    them: outbound/compose_ahead.py), once per dedupe key; None if that key is queued.

    Refuses (ValueError) an email without a Message-ID, without recipients, or to our own
    mailbox in any plus-address form: that is how mail loops start. Never commits.
    """
    if not message_id:
        raise ValueError(f"{dedupe_key}: the message has no Message-ID")
    to, cc = unique_addresses(to, "To"), unique_addresses(cc, "Cc")
    if not to and not cc:
        raise ValueError(f"{dedupe_key}: the message has no recipients")
    ours = [a for a in (*to, *cc) if is_own_address(a, own_addresses)]
    if ours:
        raise ValueError(f"{dedupe_key}: refusing to send to our own mailbox ({', '.join(ours)})")
    # A Message-ID already queued under another dedupe key is a caller's bug: it raises
    # IntegrityError rather than being silently dropped.
    values = {
        "case_id": case_id,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "message_id": message_id,
        "to": to,
        "cc": cc,
        "subject": subject,
        "raw": raw,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    new_id = insert_one(session, insert_ignoring(session, Outbox.__table__, "dedupe_key"), values)
    if new_id is None:
        return None
    queued = Queued(new_id, case_id, kind, message_id)
    _event(session, queued, now, "email-queued", {"to": to, "cc": cc})
    return queued


def header_addresses(message: Message, name: str) -> list[str]:
    """The addr-specs in every `name` header, in order, each once (case-insensitively)."""
    found: list[str] = []
    for value in message.get_all(name, []):
        if hasattr(value, "addresses"):  # a structured header from a modern email policy
            found += [a.addr_spec for a in value.addresses]
        else:
            found += [addr for _, addr in getaddresses([str(value)])]
    return unique_addresses(found, name)


def unique_addresses(addresses: Sequence[str], name: str) -> list[str]:
    """Each address once (case-insensitively), in order; ValueError for one without '@'."""
    seen: set[str] = set()
    unique = []
    for address in addresses:
        address = address.strip()
        if "@" not in address:
            raise ValueError(f"{name}: not an email address: {address!r}")
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return unique


# ----- claiming -------------------------------------------------------------------------------


def claim_due(session: Session, now: datetime, limit: int) -> list[Outbox]:
    """Mark up to `limit` due rows `sending` (attempts + 1) and return them, oldest due first.

    The caller commits before sending anything. FOR UPDATE SKIP LOCKED lets several daemons
    on one PostgreSQL claim disjoint rows; on SQLite BEGIN IMMEDIATE already serialises it.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Claims take turns (for milliseconds), so the flood count that follows a claim sees
        # every other daemon's committed claims and the limit holds across daemons too.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    rows = session.exec(
        select(Outbox)
        .where(
            Outbox.status.in_((PENDING, HELD)),
            or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now),
        )
        .order_by(Outbox.next_attempt_at, Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status, row.claimed_at, row.attempts = SENDING, now, row.attempts + 1
    session.flush()
    return list(rows)


def hold_over_limit(
    session: Session, claimed: list[Outbox], now: datetime, per_hour: int
) -> tuple[list[Outbox], list[Outbox]]:
    """Split a fresh claim into (send now, held): at most `per_hour` emails to one address.

    Counts what was sent, or is being sent, to each address in the last hour (one query per
    batch; council volumes are small), then takes the batch in order. A row that would take
    any recipient over the limit is held until the hour frees up; a hold is not an attempt.
    Call it in the claim's transaction.
    """
    if not claimed:
        return [], []
    since = now - RATE_WINDOW
    mine = [row.id for row in claimed]
    recent: dict[str, list[datetime]] = defaultdict(list)
    for to, cc, status, sent_at, claimed_at in session.exec(
        select(Outbox.to, Outbox.cc, Outbox.status, Outbox.sent_at, Outbox.claimed_at).where(
            Outbox.id.not_in(mine),
            or_(
                and_(Outbox.status == SENT, Outbox.sent_at > since),
                and_(Outbox.status == SENDING, Outbox.claimed_at > since),
            ),
        )
    ):
        at = sent_at if status == SENT else claimed_at
        for address in _addresses(to, cc):
            recent[address].append(at)
    send, held = [], []
    for row in claimed:
        addresses = _addresses(row.to, row.cc)
        over = sorted(a for a in addresses if len(recent[a]) >= per_hour)
        if not over:
            for address in addresses:
                recent[address].append(now)
            send.append(row)
            continue
        was_held = row.last_error is not None and row.last_error.startswith("rate limit:")
        row.status, row.claimed_at, row.attempts = HELD, None, row.attempts - 1
        row.next_attempt_at = max(_window_frees(recent[a], per_hour) for a in over)
        row.last_error = f"rate limit: {per_hour} per hour to {over[0]}"
        if not was_held:  # once on the timeline, not at every look
            _event(session, row, now, "email-held", {"reason": row.last_error})
        held.append(row)
    session.flush()
    return send, held


def _window_frees(times: list[datetime], per_hour: int) -> datetime:
    """When enough of these sends leave the hour's window for one more to fit."""
    times = sorted(times)
    return times[len(times) - per_hour] + RATE_WINDOW


def _addresses(to: list[str], cc: list[str]) -> set[str]:
    return {a.lower() for a in (*to, *cc)}


def release(session: Session, ids: list[int]) -> None:
    """Give back claimed rows we did not get to (the daemon is stopping): not an attempt."""
    if ids:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids), Outbox.status == SENDING)
            .values(status=PENDING, claimed_at=None, attempts=Outbox.attempts - 1)
        )


def requeue_stale(session: Session, now: datetime, older_than: timedelta) -> int:
    """Put rows a dead process left `sending` back in the queue; how many there were.

    This is the documented resend window: the server may already have accepted such a row,
    and it will be delivered again with the same bytes and Message-ID.
    """
    result = session.execute(
        update(Outbox)
        .where(Outbox.status == SENDING, Outbox.claimed_at < now - older_than)
        .values(status=PENDING, next_attempt_at=now)
    )
    if result.rowcount:
        log.warning(
            "outbox: %d email(s) left sending by a crash will be sent again", result.rowcount
        )
    return result.rowcount


# ----- outcomes -------------------------------------------------------------------------------


def mark_sent(
    session: Session, row_id: int, now: datetime, refused: dict[str, tuple[int, str]] | None = None
) -> Outbox | None:
    """Delivered (to at least one recipient); recipients the server refused go on the record.

    Set whatever state the row is in now: the server accepted it, and that is the truth
    even if a stale-row sweep already queued it again.
    """
    row = session.get(Outbox, row_id)
    if row is None:
        return None
    row.status, row.sent_at = SENT, now
    row.last_error = None
    if refused:
        row.last_error = "refused: " + "; ".join(
            f"{address} {code} {reply}" for address, (code, reply) in sorted(refused.items())
        )
        detail = {"refused": {a: [code, reply] for a, (code, reply) in sorted(refused.items())}}
        _event(session, row, now, "email-recipient-refused", detail)
    return row


def mark_retry(
    session: Session, row_id: int, now: datetime, error: str, give_up_after: timedelta
) -> Outbox | None:
    """A 4xx or a connection error: try again after a growing pause, or give up (failed).

    It gives up once the pauses between attempts add up to `give_up_after` (48 h by default),
    counted in attempts rather than from created_at so that `retry` gives a row a fresh run.
    """
    row = session.get(Outbox, row_id)
    if row is None or row.status != SENDING:
        return row
    if retrying_for(row.attempts) >= give_up_after:
        hours = give_up_after.total_seconds() / 3600
        return mark_failed(session, row_id, now, f"gave up after {hours:g} h of retries: {error}")
    row.status, row.last_error = PENDING, error
    row.next_attempt_at = now + backoff(row.attempts)
    return row


def mark_failed(
    session: Session, row_id: int, now: datetime, error: str, *, actor: str = SYSTEM
) -> Outbox | None:
    """A 5xx (or given up): failed, and shown to the team on the case timeline."""
    row = session.get(Outbox, row_id)
    if row is None:
        return None
    row.status, row.last_error = FAILED, error
    detail = {"to": row.to, "cc": row.cc, "error": error, "attempts": row.attempts}
    _event(session, row, now, "email-failed", detail, actor=actor)
    return row


def backoff(attempts: int) -> timedelta:
    """The pause after the `attempts`-th failed attempt: 30 s, 1 min, 2 min ... at most 1 h."""
    if attempts >= 8:  # 30 s × 2^7 is past the cap; no need for huge powers
        return BACKOFF_MAX
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def retrying_for(attempts: int) -> timedelta:
    """How long a row that failed `attempts` times in a row will have been retried."""
    first = min(attempts, 8)
    return sum((backoff(n) for n in range(1, first + 1)), timedelta()) + BACKOFF_MAX * (
        attempts - first
    )


# ----- the team's controls --------------------------------------------------------------------


def find(session: Session, id_or_key: str) -> Outbox | None:
    """A row by its id (all digits) or its dedupe key."""
    if id_or_key.isdigit():
        return session.get(Outbox, int(id_or_key))
    return session.exec(select(Outbox).where(Outbox.dedupe_key == id_or_key)).first()


def retry(session: Session, id_or_key: str, now: datetime, *, actor: str = SYSTEM) -> Outbox:
    """A failed or held row back in the queue now; a failed one gets a fresh run of retries.

    A held row stays subject to the flood limit: the limit is there to stop mail loops.
    """
    row = _controllable(session, id_or_key, (FAILED, HELD), "retried")
    previous = row.status
    row.status, row.next_attempt_at, row.claimed_at = PENDING, now, None
    if previous == FAILED:
        row.attempts = 0
    _event(session, row, now, "email-retry", {"was": previous}, actor=actor)
    return row


def cancel(session: Session, id_or_key: str, now: datetime, *, actor: str = SYSTEM) -> Outbox:
    """Never send this one; recorded on the case timeline."""
    row = _controllable(session, id_or_key, (PENDING, HELD, FAILED), "cancelled")
    previous = row.status
    row.status = CANCELLED
    _event(session, row, now, "email-cancelled", {"was": previous}, actor=actor)
    return row


def _controllable(session: Session, id_or_key: str, allowed: tuple[str, ...], verb: str) -> Outbox:
    row = find(session, id_or_key)
    if row is None:
        raise LookupError(f"no outbox email {id_or_key}")
    if row.status not in allowed:
        raise ValueError(
            f"outbox email {row.id} ({row.dedupe_key}) is {row.status}; only "
            f"{' or '.join(allowed)} emails can be {verb}"
        )
    return row


def _event(
    session: Session,
    row: Outbox | Queued,
    now: datetime,
    kind: str,
    detail: dict[str, Any],
    *,
    actor: str = SYSTEM,
) -> None:
    """An entry on the row's case timeline, if it belongs to a case."""
    if row.case_id is None:
        return
    base = {"outbox_id": row.id, "kind": row.kind, "message_id": row.message_id}
    record_event(session, row.case_id, now, kind, actor=actor, detail=base | detail)


# ----- the team's view ------------------------------------------------------------------------


def list_outbox(
    session: Session, *, status: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Rows as the team sees them (`mailbridge outbox list`), newest first."""
    stmt = (
        select(Outbox, Case.reference)
        .outerjoin(Case, Outbox.case_id == Case.id)
        .order_by(Outbox.id.desc())
    )
    if status:
        stmt = stmt.where(Outbox.status == status)
    if limit:
        stmt = stmt.limit(limit)
    return [summary(row, reference) for row, reference in session.exec(stmt)]


def summary(row: Outbox, reference: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "reference": reference,
        "kind": row.kind,
        "to": row.to,
        "cc": row.cc,
        "subject": row.subject,
        "status": row.status,
        "attempts": row.attempts,
        "message_id": row.message_id,
        "dedupe_key": row.dedupe_key,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "next_attempt_at": row.next_attempt_at if row.status in (PENDING, HELD) else None,
        "sent_at": row.sent_at,
    }
