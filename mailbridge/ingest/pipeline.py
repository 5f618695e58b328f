"""What happens to an inbound email, start to finish (DESIGN §3).

1. persist_raw: the exact bytes of a whole batch are committed first, deduplicated on
   Message-ID (or the SHA-256 of the bytes when there is none). From here on nothing can be lost.
2. process_message, one transaction per message: parse → classify → match to a case → open or
   update the case, its participants and its timeline → mark the message processed.
3. The runner then acknowledges the batch upstream (IMAP move/flag, Maildir new/ → cur/).

Crash windows: after 1 and before 3, the message is fetched again, found by its dedupe key and
processed only if its row is still "received". A failure inside 2 rolls the case change back and
leaves the row "failed" with its error, for the team to replay; the daemon carries on.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.matching import Candidate, match_candidates
from mailbridge.cases.routing import NO_ROUTE, Route, route_by_text, route_to_officer
from mailbridge.cases.service import (
    add_participant,
    find_case,
    open_case,
    participant_addresses,
    record_event,
)
from mailbridge.config import ReferenceFormat, Settings
from mailbridge.directory import Directory
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
from mailbridge.ingest.parse import ParsedMessage, ParseFailed, parse
from mailbridge.ingest.sources.base import Fetched
from mailbridge.store.db import insert
from mailbridge.store.models import (
    MESSAGE_FAILED,
    MESSAGE_PROCESSED,
    MESSAGE_RECEIVED,
    Case,
    Message,
    MessageCopy,
)

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

    @classmethod
    def from_settings(cls, settings: Settings, directory: Directory) -> PipelineContext:
        return cls(
            mailbox=settings.mailbox_address,
            own_addresses=settings.own_addresses,
            directory=directory,
            references=settings.references,
            calendar=WorkingCalendar.from_settings(settings.clock),
            response_days=settings.clock.response_days,
        )


@dataclass(frozen=True)
class Stored:
    fetched: Fetched
    message_db_id: int
    needs_processing: bool  # False: a duplicate of a message already processed


@dataclass(frozen=True)
class Outcome:
    message_db_id: int
    classification: str
    action: str  # opened | attached | held | unmatched | unparseable | skipped
    reference: str | None = None


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
    """Insert the batch's raw bytes (the caller commits); duplicates map to the stored row."""
    table = Message.__table__
    stored = []
    for item in batch:
        key, sha = dedupe_key(item.raw)
        new_id = session.execute(
            insert(session, table)
            .values(
                direction="in",
                dedupe_key=key,
                sha256=sha,
                size=len(item.raw),
                raw=item.raw,
                source=item.source,
                source_key=item.key,
                uidvalidity=item.uidvalidity,
                uid=item.uid,
                fetched_at=now,
                received_at=item.internal_date or now,
                status=MESSAGE_RECEIVED,
                attempts=0,
                held=False,
                to=[],
                cc=[],
                headers={},
                attachments=[],
                defects=[],
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(table.c.id)
        ).scalar_one_or_none()
        if new_id is not None:
            stored.append(Stored(item, new_id, True))
            continue
        existing_id, status, existing_sha = session.execute(
            select(Message.id, Message.status, Message.sha256).where(Message.dedupe_key == key)
        ).one()
        log.info("duplicate of message %s (%s) from %s %s", existing_id, key, item.source, item.key)
        if sha != existing_sha:  # same Message-ID, other bytes: keep them, process nothing
            session.execute(
                insert(session, MessageCopy.__table__)
                .values(
                    message_db_id=existing_id,
                    sha256=sha,
                    size=len(item.raw),
                    raw=item.raw,
                    source=item.source,
                    source_key=item.key,
                    fetched_at=now,
                )
                .on_conflict_do_nothing(index_elements=["message_db_id", "sha256"])
            )
        stored.append(Stored(item, existing_id, status == MESSAGE_RECEIVED))
    return stored


# ----- 2. process ------------------------------------------------------------------------------


def process_message(
    session: Session, message_db_id: int, ctx: PipelineContext, now: datetime
) -> Outcome:
    """Parse, classify, match and record one stored message (the caller commits)."""
    message = session.get(Message, message_db_id)
    if message is None or message.status == MESSAGE_PROCESSED:
        return Outcome(message_db_id, message.classification if message else "", "skipped")
    message.status, message.processed_at, message.error = MESSAGE_PROCESSED, now, None
    try:
        parsed = parse(message.raw)
    except ParseFailed as exc:
        # Kept byte-exact and shown to the team (`mailbridge message list --unparseable`).
        message.parse_ok, message.classification, message.rule = False, UNPARSEABLE, "parse-failed"
        message.error = str(exc)
        log.warning("message %s could not be parsed: %s", message.id, exc)
        return Outcome(message.id, UNPARSEABLE, "unparseable")
    _record_parsed(message, parsed)
    verdict = classify(
        parsed,
        own_addresses=ctx.own_addresses,
        is_member=lambda a: ctx.directory.member_by_address(a) is not None,
    )
    message.classification, message.rule = verdict.kind, verdict.rule
    found = find_case(session, match_candidates(parsed, mailbox=ctx.mailbox, fmt=ctx.references))
    if found is not None:
        return _attach(session, message, parsed, verdict, *found, now=now, ctx=ctx)
    if verdict.kind in MACHINE_EVENTS:
        return Outcome(message.id, verdict.kind, "unmatched")
    case = _open(session, message, parsed, verdict, ctx, now)
    return Outcome(message.id, verdict.kind, "opened", case.reference)


def mark_failed(session: Session, message_db_id: int, error: str) -> None:
    """Record a processing failure on the stored message (in a fresh transaction)."""
    message = session.get(Message, message_db_id)
    if message is not None:
        message.status, message.error = MESSAGE_FAILED, error[:4000]
        message.attempts += 1


def _record_parsed(message: Message, parsed: ParsedMessage) -> None:
    message.parse_ok = True
    message.message_id = parsed.message_id
    message.from_address = parsed.from_.email if parsed.from_ else None
    message.from_name = parsed.from_.name if parsed.from_ else None
    message.subject = parsed.subject
    message.to = [[a.name, a.email] for a in parsed.to]
    message.cc = [[a.name, a.email] for a in parsed.cc]
    message.in_reply_to = parsed.in_reply_to[0] if parsed.in_reply_to else None
    message.references = " ".join(parsed.references) or None
    message.date = parsed.date
    message.headers = parsed.headers
    message.body_text = parsed.body_text
    message.attachments = [
        {"filename": a.filename, "content_type": a.content_type, "size": a.size}
        for a in parsed.attachments
    ]
    message.defects = list(parsed.defects)


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
    message: Message,
    parsed: ParsedMessage,
    verdict: Verdict,
    case: Case,
    candidate: Candidate,
    *,
    now: datetime,
    ctx: PipelineContext,
) -> Outcome:
    """Add a message to the case it names: a reply, a bounce or an auto-reply."""
    message.case_id = case.id
    case.updated_at = now
    sender = message.from_address
    detail = {"from": sender, "subject": parsed.subject, "matched_by": candidate.rule}
    if verdict.kind in MACHINE_EVENTS:
        if verdict.kind == BOUNCE:
            detail |= {"status": parsed.dsn_status, "recipients": list(parsed.dsn_recipients)}
        record_event(
            session,
            case,
            now,
            MACHINE_EVENTS[verdict.kind],
            actor=_actor(sender, ctx.directory),
            rule=verdict.rule,
            detail=detail,
            message=message,
        )
        return Outcome(message.id, verdict.kind, "attached", case.reference)
    message.classification = REPLY
    # A reference is not a password: a stranger's message is kept but held for the team.
    known = sender and (
        sender in participant_addresses(session, case.id)
        or ctx.directory.member_by_address(sender)
        or ctx.directory.officer_by_address(sender)
    )
    if not known:
        message.held = True
        record_event(
            session,
            case,
            now,
            "message-held",
            actor=sender or "unknown",
            rule="sender-not-on-case",
            detail=detail,
            message=message,
        )
        return Outcome(message.id, REPLY, "held", case.reference)
    record_event(
        session,
        case,
        now,
        "message-received",
        actor=_actor(sender, ctx.directory),
        rule=candidate.rule,
        detail=detail,
        message=message,
    )
    return Outcome(message.id, REPLY, "attached", case.reference)


def _open(
    session: Session,
    message: Message,
    parsed: ParsedMessage,
    verdict: Verdict,
    ctx: PipelineContext,
    now: datetime,
) -> Case:
    """Open a case for a new enquiry, with its member, officer and stakeholders."""
    directory = ctx.directory
    sender = parsed.from_.email if parsed.from_ else ""
    member = directory.member_by_address(sender) if verdict.kind != NON_MEMBER else None
    route = _route(parsed, verdict, ctx, now)
    cc_only = any(is_own_address(a.email, ctx.own_addresses) for a in parsed.cc) and not any(
        is_own_address(a.email, ctx.own_addresses) for a in parsed.to
    )
    status = "awaiting_response" if member and route.officer else "triage"
    case = open_case(
        session,
        fmt=ctx.references,
        calendar=ctx.calendar,
        response_days=ctx.response_days,
        received_at=message.received_at,
        now=now,
        status=status,
        origin="cc" if cc_only else "direct",
        member=member.id if member else None,
        member_address=sender if member else None,
        delivery_unit=route.delivery_unit,
        officer=route.officer,
        subject=parsed.subject,
        thread_message_id=parsed.message_id,
    )
    message.case_id = case.id
    actor = _actor(sender, directory)
    record_event(
        session,
        case,
        now,
        "case-opened",
        actor=actor,
        rule=verdict.rule,
        message=message,
        detail={
            "origin": case.origin,
            "classification": verdict.kind,
            "subject": parsed.subject,
            "from": sender,
        },
    )
    officer = directory.officer(route.officer) if route.officer else None
    if sender:
        add_participant(
            session,
            case,
            address=sender,
            role="member" if member else "stakeholder",
            name=parsed.from_.name if parsed.from_ else "",
            person=member.id if member else None,
            now=now,
            message=message,
        )
    if officer:
        to_addresses = {a.email for a in parsed.to}
        address = next((a for a in officer.addresses if a in to_addresses), officer.addresses[0])
        add_participant(
            session,
            case,
            address=address,
            role="officer",
            name=officer.name,
            person=officer.id,
            now=now,
            message=message,
        )
    skip = set(member.addresses if member else (sender,)) | set(
        officer.addresses if officer else ()
    )
    for person in (*parsed.to, *parsed.cc):
        if (
            person.email
            and person.email not in skip
            and not is_own_address(person.email, ctx.own_addresses)
        ):
            add_participant(
                session,
                case,
                address=person.email,
                role="stakeholder",
                name=person.name,
                person=_known_id(person.email, directory),
                now=now,
                message=message,
            )
    if route.delivery_unit or route.officer:
        record_event(
            session,
            case,
            now,
            "assigned",
            rule=route.rule,
            message=message,
            detail={"delivery_unit": route.delivery_unit, "officer": route.officer},
        )
    if status == "triage":
        reason = "non-member" if member is None else route.rule
        record_event(
            session,
            case,
            now,
            "triage",
            rule=reason,
            message=message,
            detail={
                "reason": "sender is not a member"
                if member is None
                else "no delivery unit or officer available"
            },
        )
    return case


def _route(parsed: ParsedMessage, verdict: Verdict, ctx: PipelineContext, now: datetime) -> Route:
    if verdict.kind == NON_MEMBER:
        return NO_ROUTE
    today = ctx.calendar.local(now).date()
    if verdict.kind == CC_ENQUIRY:
        for person in parsed.to:
            if officer := ctx.directory.officer_by_address(person.email):
                return route_to_officer(officer, ctx.directory)
    return route_by_text(parsed.subject, parsed.body_text, ctx.directory, today)


def _known_id(address: str, directory: Directory) -> str | None:
    person = directory.member_by_address(address) or directory.officer_by_address(address)
    return person.id if person else None
