"""What happens to an inbound email, start to finish (DESIGN §3).

1. persist_raw: the exact bytes of a whole batch are inserted first, in one statement,
   deduplicated on Message-ID (or the SHA-256 of the bytes when there is none).
2. process_message, all or nothing for each message (runner.py): parse → classify → match to
   a case → open or update the case, its participants and its timeline → mark it processed.
   1 and 2 commit together: one transaction per batch.
3. The runner then acknowledges the batch upstream (IMAP move/flag, Maildir new/ → cur/).

Crash windows: before the commit nothing is stored and nothing acknowledged, so the batch is
fetched again; after it and before 3, a message is fetched again, found by its dedupe key and
processed only if its row is still "received". A failure inside 2 rolls back that message's
case change only and leaves its row "failed" with its error, for the team to replay; the
daemon carries on.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session, select

from mailbridge.cases.absence import officer_away, officer_bounced
from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.commands import new_text, read_commands
from mailbridge.cases.conversation import handle_reply, open_cases_of
from mailbridge.cases.links import flag_possible_duplicates
from mailbridge.cases.matching import Candidate, match_candidates
from mailbridge.cases.parts import SPLIT_RULE, Questions, Share, plan_parts
from mailbridge.cases.people import people_of
from mailbridge.cases.routing import NO_ROUTE, Route, Router
from mailbridge.cases.service import (
    add_participants,
    detached_row,
    find_case,
    open_case,
    participant_addresses,
    record_event,
    stakeholders_among,
    touch_case,
)
from mailbridge.cases.split import open_parts
from mailbridge.config import ReferenceFormat, Settings
from mailbridge.directory import Directory, Member
from mailbridge.ingest.classify import (
    AUTO_REPLY,
    BOUNCE,
    CC_ENQUIRY,
    NON_MEMBER,
    OWN,
    Verdict,
    classify,
    is_own_address,
)
from mailbridge.ingest.parse import ParsedMessage, ParseFailed
from mailbridge.ingest.parse_ahead import Prepared, read
from mailbridge.ingest.reading import Reading
from mailbridge.ingest.sources.base import Fetched
from mailbridge.outbound.compose import thread_under
from mailbridge.outbound.notices import (
    Mailer,
    queue_ack,
    queue_forward,
    queue_status,
)
from mailbridge.store.db import insert_ignoring
from mailbridge.store.models import (
    MESSAGE_FAILED,
    MESSAGE_PROCESSED,
    MESSAGE_RECEIVED,
    SPLIT,
    Case,
    Message,
    MessageCopy,
)
from mailbridge.store.people import learnt

log = logging.getLogger(__name__)

REPLY = "reply"  # a person's message that matched a case
UNPARSEABLE = "unparseable"
MACHINE_EVENTS = {
    OWN: "own-message-seen",
    BOUNCE: "bounce-received",
    AUTO_REPLY: "auto-reply-received",
}


@dataclass(frozen=True)
class PipelineContext:
    """Everything the pipeline needs besides the session and the time, built once per run."""

    mailbox: str
    own_addresses: frozenset[str]
    directory: Directory
    references: ReferenceFormat
    calendar: WorkingCalendar
    response_days: int
    router: Router
    mailer: Mailer

    @classmethod
    def from_settings(cls, settings: Settings, directory: Directory) -> PipelineContext:
        calendar = WorkingCalendar.from_settings(settings.clock)
        return cls(
            mailbox=settings.mailbox_address,
            own_addresses=settings.own_addresses,
            directory=directory,
            references=settings.references,
            calendar=calendar,
            response_days=settings.clock.response_days,
            router=Router(directory),
            mailer=Mailer.from_settings(settings, directory, calendar),
        )

    def with_directory(self, directory: Directory) -> PipelineContext:
        """The same context over another directory: a reload, or what mail taught."""
        if directory is self.directory:
            return self
        return replace(self, directory=directory, router=Router(directory),
                       mailer=replace(self.mailer, directory=directory))  # fmt: skip

    def refreshed(self, session: Session) -> PipelineContext:
        """With what the database now knows of officers' absences and bounces (one query)."""
        return self.with_directory(self.directory.with_learnt(learnt(session)))


@dataclass(frozen=True)
class Stored:
    message_db_id: int
    needs_processing: bool  # False: its message is processed, or comes earlier in this batch
    duplicate: bool = False  # the same Message-ID (or bytes) was stored before
    # Set when this transaction stored the row: it is "received", no other transaction sees it
    # yet, and this is its received_at, so processing need read nothing back.
    received_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    message_db_id: int
    classification: str
    action: str  # opened | attached | held | unmatched | unparseable | skipped
    reference: str | None = None
    people_changed: bool = False  # an officer was marked away or undeliverable: refresh


# Statements built once (see store.db.insert_ignoring): this module runs them for every message.
_MESSAGE = Message.__table__
_BY_DEDUPE_KEY = select(_MESSAGE.c.id, _MESSAGE.c.status, _MESSAGE.c.sha256).where(
    _MESSAGE.c.dedupe_key == bindparam("key")
)
_MESSAGE_STATE = select(_MESSAGE.c.status, _MESSAGE.c.received_at, _MESSAGE.c.classification).where(
    _MESSAGE.c.id == bindparam("row_id")
)
_MESSAGE_TO_PROCESS = _MESSAGE_STATE.add_columns(_MESSAGE.c.raw)
_UPDATE_MESSAGE = update(_MESSAGE).where(_MESSAGE.c.id == bindparam("row_id"))

# ----- 1. persist ------------------------------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n|\r\r")
_MESSAGE_ID = re.compile(rb"(?:^|[\r\n])message-id[ \t]*:\s*(<[^<>\s]{1,900}>)", re.IGNORECASE)


def dedupe_key(raw: bytes) -> tuple[str, str]:
    """(dedupe key, sha256): the Message-ID when the headers have one, else the bytes' hash.

    Read straight from the header block so that a duplicate is recognised before parsing.
    """
    sha = hashlib.sha256(raw).hexdigest()
    end = _HEADER_END.search(raw)
    found = _MESSAGE_ID.search(raw[: end.start()] if end else raw)
    if found:
        return found.group(1).decode("utf-8", "replace"), sha
    return f"sha256:{sha}", sha


def persist_raw(session: Session, batch: list[Fetched], now: datetime) -> list[Stored]:
    """Insert the batch's raw bytes (the caller commits), one Stored per item, in order; a
    duplicate maps to the row stored before, in an earlier batch or earlier in this one."""
    keyed = [(item, *dedupe_key(item.raw)) for item in batch]
    rows = [
        {
            "direction": "in",
            "dedupe_key": key,
            "sha256": sha,
            "size": len(item.raw),
            "raw": item.raw,
            "source": item.source,
            "source_key": item.key,
            "uidvalidity": item.uidvalidity,
            "uid": item.uid,
            "fetched_at": now,
            "received_at": item.internal_date or now,
            "status": MESSAGE_RECEIVED,
            "attempts": 0,
            "held": False,
            "to": [],
            "cc": [],
            "headers": {},
            "attachments": [],
            "defects": [],
        }
        for item, key, sha in keyed
    ]
    conn = session.connection()
    insert_raw = insert_ignoring(session, _MESSAGE, "dedupe_key", returning=("id", "dedupe_key"))
    # One statement for the batch: only the rows it inserted come back, with their keys.
    inserted = {key: row_id for row_id, key in conn.execute(insert_raw, rows)} if rows else {}
    stored = []
    for (item, key, sha), row in zip(keyed, rows, strict=True):
        new_id = inserted.pop(key, None)  # popped: the key's next item is its duplicate
        if new_id is not None:
            stored.append(Stored(new_id, True, received_at=row["received_at"]))
            continue
        existing_id, status, existing_sha = conn.execute(_BY_DEDUPE_KEY, {"key": key}).one()
        log.info("duplicate of message %s (%s) from %s %s", existing_id, key, item.source, item.key)
        if sha != existing_sha:  # same Message-ID, other bytes: keep them, process nothing
            conn.execute(
                insert_ignoring(session, MessageCopy.__table__, "message_db_id", "sha256"),
                {
                    "message_db_id": existing_id,
                    "sha256": sha,
                    "size": len(item.raw),
                    "raw": item.raw,
                    "source": item.source,
                    "source_key": item.key,
                    "fetched_at": now,
                },
            )
        in_this_batch = any(earlier.message_db_id == existing_id for earlier in stored)
        needs = status == MESSAGE_RECEIVED and not in_this_batch
        stored.append(Stored(existing_id, needs, duplicate=True))
    return stored


# ----- 2. process ------------------------------------------------------------------------------


@dataclass
class Inbound:
    """The stored message in hand, and the columns processing will write back to its row."""

    id: int
    raw: bytes
    received_at: datetime
    changes: dict[str, Any] = field(default_factory=dict)

    def as_message(self) -> Message:
        """A detached Message of what this run knows, for composing the emails it causes."""
        return detached_row(
            Message, id=self.id, raw=self.raw, received_at=self.received_at, **self.changes
        )


def process_message(
    session: Session,
    message_db_id: int,
    ctx: PipelineContext,
    now: datetime,
    prepared: Prepared | None = None,
    received_at: datetime | None = None,
) -> Outcome:
    """Parse, classify, match and record one stored message (the caller commits).

    `prepared`: its bytes, already in hand, and its reading, perhaps already under way (the
    runner's parse_ahead); without it the bytes are read back and parsed here. `received_at`:
    given when this transaction stored the row (Stored.received_at), with `prepared`, so
    that nothing is read back.
    """
    if prepared and received_at:
        raw = prepared.raw
    else:
        query = _MESSAGE_STATE if prepared else _MESSAGE_TO_PROCESS
        row = session.connection().execute(query, {"row_id": message_db_id}).one_or_none()
        if row is None or row.status == MESSAGE_PROCESSED:
            return Outcome(message_db_id, row.classification if row else "", "skipped")
        raw, received_at = (prepared.raw if prepared else row.raw), row.received_at
    inbound = Inbound(message_db_id, raw, received_at)
    reading = prepared.reading if prepared else partial(read, raw)
    outcome = _process(session, inbound, ctx, now, reading)
    session.connection().execute(
        _UPDATE_MESSAGE,
        {"row_id": message_db_id, "status": MESSAGE_PROCESSED, "processed_at": now, "error": None}
        | inbound.changes,
    )
    return outcome


def mark_failed(session: Session, message_db_id: int, error: str) -> None:
    """Record a processing failure on the stored message (in a fresh transaction)."""
    session.execute(
        update(Message)
        .where(Message.id == message_db_id)
        .values(status=MESSAGE_FAILED, error=error[:4000], attempts=Message.attempts + 1)
    )


def _process(
    session: Session,
    inbound: Inbound,
    ctx: PipelineContext,
    now: datetime,
    read_now: Callable[[], Reading],
) -> Outcome:
    try:
        reading = read_now()
    except ParseFailed as exc:
        # Kept byte-exact and shown to the team (`message list --classification unparseable`).
        inbound.changes |= {"parse_ok": False, "classification": UNPARSEABLE,
                            "rule": "parse-failed", "error": str(exc)}  # fmt: skip
        log.warning("message %s could not be parsed: %s", inbound.id, exc)
        return Outcome(inbound.id, UNPARSEABLE, "unparseable")
    parsed = reading.parsed
    inbound.changes |= parsed_columns(parsed)
    verdict = classify(
        parsed,
        own_addresses=ctx.own_addresses,
        is_member=lambda a: ctx.directory.member_by_address(a) is not None,
    )
    inbound.changes |= {"classification": verdict.kind, "rule": verdict.rule}
    found = find_case(session, match_candidates(parsed, mailbox=ctx.mailbox, fmt=ctx.references))
    if found is not None:
        return _attach(session, inbound, parsed, verdict, *found, now=now, ctx=ctx)
    if verdict.kind in MACHINE_EVENTS:
        return Outcome(inbound.id, verdict.kind, "unmatched")
    member = ctx.directory.member_by_address(parsed.from_.email) if parsed.from_ else None
    if member and verdict.kind != NON_MEMBER and _asks_status_only(parsed):
        queue_status(
            session,
            ctx.mailer,
            to=parsed.from_.email,
            member_name=member.name,
            cases=open_cases_of(session, member.id),
            inbound=inbound.as_message(),
            now=now,
        )
        return Outcome(inbound.id, verdict.kind, "status")
    case = _open(session, inbound, reading, verdict, ctx, now)
    return Outcome(inbound.id, verdict.kind, "opened", case.reference)


def parsed_columns(parsed: ParsedMessage) -> dict[str, Any]:
    """What the message table keeps of a parse, beside the raw bytes."""
    return {
        "parse_ok": True,
        "message_id": parsed.message_id,
        "from_address": parsed.from_.email if parsed.from_ else None,
        "from_name": parsed.from_.name if parsed.from_ else None,
        "subject": parsed.subject,
        "to": [[a.name, a.email] for a in parsed.to],
        "cc": [[a.name, a.email] for a in parsed.cc],
        "in_reply_to": parsed.in_reply_to[0] if parsed.in_reply_to else None,
        "references": " ".join(parsed.references) or None,
        "date": parsed.date,
        "headers": parsed.headers,
        "body_text": parsed.body_text,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in parsed.attachments
        ],
        "defects": list(parsed.defects),
    }


def _actor(address: str | None, directory: Directory) -> str:
    if not address:
        return "unknown"
    if member := directory.member_by_address(address):
        return f"member:{member.id}"
    if officer := directory.officer_by_address(address):
        return f"officer:{officer.id}"
    return address


def _attach(
    session: Session,
    inbound: Inbound,
    parsed: ParsedMessage,
    verdict: Verdict,
    case: Case,
    candidate: Candidate,
    *,
    now: datetime,
    ctx: PipelineContext,
) -> Outcome:
    """Add a message to the case it names: a reply, a bounce or an auto-reply."""
    inbound.changes["case_id"] = case.id
    touch_case(session, case.id, now)
    sender = parsed.from_.email if parsed.from_ else None
    detail = {"from": sender, "subject": parsed.subject, "matched_by": candidate.rule}
    event = partial(record_event, session, case.id, now, message_db_id=inbound.id)
    if verdict.kind in MACHINE_EVENTS:
        if verdict.kind == BOUNCE:
            detail |= {"status": parsed.dsn_status, "recipients": list(parsed.dsn_recipients)}
        event(
            MACHINE_EVENTS[verdict.kind],
            actor=_actor(sender, ctx.directory),
            rule=verdict.rule,
            detail=detail,
        )
        gone = _not_there(session, inbound, parsed, verdict, case, ctx, now)
        action = "attached+passed-on" if gone else "attached"
        return Outcome(inbound.id, verdict.kind, action, case.reference, people_changed=gone)
    inbound.changes["classification"] = REPLY
    # A reference is not a password: a stranger's message is kept but held for the team.
    known = sender and (
        sender in participant_addresses(session, case.id)
        or ctx.directory.member_by_address(sender)
        or ctx.directory.officer_by_address(sender)
        or sender in ctx.mailer.supervisors
    )
    if not known:
        inbound.changes["held"] = True
        event("message-held", actor=sender or "unknown", rule="sender-not-on-case", detail=detail)
        return Outcome(inbound.id, REPLY, "held", case.reference)
    event(
        "message-received", actor=_actor(sender, ctx.directory), rule=candidate.rule, detail=detail
    )
    done = handle_reply(session, ctx.mailer, ctx.router, case, inbound.as_message(), now)
    return Outcome(inbound.id, REPLY, "+".join(["attached", *done]), case.reference)


def _open(
    session: Session,
    inbound: Inbound,
    reading: Reading,
    verdict: Verdict,
    ctx: PipelineContext,
    now: datetime,
) -> Case:
    """Open a case for a new enquiry, with its member, officer and stakeholders."""
    directory, parsed = ctx.directory, reading.parsed
    sender = parsed.from_.email if parsed.from_ else ""
    member = directory.member_by_address(sender) if verdict.kind != NON_MEMBER else None
    route = _route(reading, verdict, ctx, now, member.ward if member else "")
    own = partial(is_own_address, own_addresses=ctx.own_addresses)
    cc_only = any(own(a.email) for a in parsed.cc) and not any(own(a.email) for a in parsed.to)
    plan = _parts(parsed, member, route, ctx, now)
    if plan:  # its questions go to two or more units: this case is the umbrella of their parts
        route = Route(None, None, SPLIT_RULE)
    status = "awaiting_response" if member and (route.officer or plan) else "triage"
    case = open_case(
        session,
        fmt=ctx.references,
        calendar=ctx.calendar,
        response_days=ctx.response_days,
        received_at=inbound.received_at,
        now=now,
        status=status,
        origin="cc" if cc_only else "direct",
        kind=SPLIT if plan else "members_enquiry",
        member=member.id if member else None,
        member_address=sender if member else None,
        delivery_unit=route.delivery_unit,
        officer=route.officer,
        subject=parsed.subject,
        thread_message_id=parsed.message_id,
        first_delivery_unit=route.delivery_unit,
        first_assigned_at=inbound.received_at if route.delivery_unit else None,
    )
    inbound.changes["case_id"] = case.id
    event = partial(record_event, session, case.id, now, message_db_id=inbound.id)
    event(
        "case-opened",
        actor=_actor(sender, directory),
        rule=verdict.rule,
        detail={
            "origin": case.origin,
            "classification": verdict.kind,
            "subject": parsed.subject,
            "from": sender,
        },
    )
    officer = directory.officer(route.officer) if route.officer else None
    people = people_of(parsed, member, officer, directory, ctx.own_addresses)
    add_participants(session, case.id, people, now, inbound.id)
    if route.delivery_unit or route.officer:
        event(
            "assigned",
            rule=route.rule,
            detail={"delivery_unit": route.delivery_unit, "officer": route.officer},
        )
    if status == "triage":
        reason = "sender is not a member" if member is None else "no unit or officer available"
        event(
            "triage", rule="non-member" if member is None else route.rule, detail={"reason": reason}
        )
    original = inbound.as_message()
    parts = open_parts(session, ctx, case, *plan, now, original=original) if plan else []
    if member is not None:  # never to a non-member, a bounce or an auto-reply: no mail loops
        thread = thread_under(parsed.message_id, parsed.references)
        # Opening its parts adds no one to this case: its stakeholders are those just added.
        copied = stakeholders_among(people)
        queue_ack(session, ctx.mailer, case, now, thread=thread, parts=parts, stakeholders=copied)
        # The officer the member wrote to already has the email; anyone else gets it.
        if route.rule != "cc-officer" and not parts:
            queue_forward(session, ctx.mailer, case, original, now, stakeholders=copied)
    flag_possible_duplicates(session, ctx.mailer, case, reading.wording, now)
    return case


def _parts(
    parsed: ParsedMessage,
    member: Member | None,
    route: Route,
    ctx: PipelineContext,
    now: datetime,
) -> tuple[Questions, list[Share]] | None:
    """A member's numbered questions for two or more units are split into parts, unless the
    member chose: an enquiry written to an officer, or to a unit named in the subject."""
    if member is None or route.rule.startswith(("cc-officer", "subject-unit")):
        return None
    return plan_parts(ctx.router, parsed.body_text, ctx.calendar.local(now).date(), member.ward)


def _asks_status_only(parsed: ParsedMessage) -> bool:
    """A new email that is nothing but `#status`: answered, not opened as a case."""
    commands, rejected = read_commands(parsed.body_text)
    if not commands or rejected or any(c.name != "status" for c in commands):
        return False
    return len(new_text(parsed.body_text).split()) <= 2 * len(commands)


def _route(
    reading: Reading, verdict: Verdict, ctx: PipelineContext, now: datetime, ward: str
) -> Route:
    if verdict.kind == NON_MEMBER:
        return NO_ROUTE
    parsed = reading.parsed
    today = ctx.calendar.local(now).date()
    if verdict.kind == CC_ENQUIRY:
        for person in parsed.to:
            if officer := ctx.directory.officer_by_address(person.email):
                return ctx.router.route_to_officer(officer, today)
    return ctx.router.route_by_text(
        parsed.subject, parsed.body_text, today, ward, reading.routing_words
    )


def _not_there(
    session: Session,
    inbound: Inbound,
    parsed: ParsedMessage,
    verdict: Verdict,
    case: Case,
    ctx: PipelineContext,
    now: datetime,
) -> bool:
    """A bounce of our mail to an officer, or the case officer's out-of-office, passes their
    open cases on (cases.absence). True when an officer was marked."""
    if verdict.kind == BOUNCE:
        return officer_bounced(session, ctx.mailer, failed=parsed.dsn_recipients,
                               status=parsed.dsn_status, now=now,
                               message_db_id=inbound.id)  # fmt: skip
    if verdict.kind == AUTO_REPLY and parsed.from_:
        return officer_away(session, ctx.mailer, case, sender=parsed.from_.email,
                            text=f"{parsed.subject}\n{parsed.body_text}", now=now,
                            message_db_id=inbound.id)  # fmt: skip
    return False
