"""Part cases: an enquiry shared among delivery units, by its numbered questions or by hand.

Each unit's share is a case of its own, ME-2026-00123-1, -2 … (DESIGN §2): its own unit,
officer and clock (due from the originating case's received time, like the whole enquiry),
the originating case's people, and a forward to its officer with the enquiry's opening and its
own questions. The originating case stays as the umbrella the member wrote to: no unit or
officer of its own, never forwarded, kind SPLIT so the reports count its parts instead of it,
and resolved when its last part is.

A service: it writes the cases, the timeline and the outbox in the caller's transaction, with
`now` passed in, and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Protocol

from sqlmodel import Session, select

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.parts import SPLIT_RULE, Questions, Share, next_part_number, part_reference
from mailbridge.cases.routing import Route
from mailbridge.cases.service import (
    SYSTEM,
    NewParticipant,
    add_participants,
    open_case,
    record_event,
)
from mailbridge.config import ReferenceFormat
from mailbridge.outbound.notices import Mailer, member_thread, queue_ack, queue_forward
from mailbridge.store.models import KINDS, MERGED, OPEN_STATUSES, SPLIT, Case, Message, Participant

BY_HAND = "split-by-hand"


class Opening(Protocol):
    """What opening a case needs (the pipeline's PipelineContext has it)."""

    references: ReferenceFormat
    calendar: WorkingCalendar
    response_days: int
    mailer: Mailer


def open_part(
    session: Session,
    ctx: Opening,
    parent: Case,
    route: Route,
    text: str,
    now: datetime,
    *,
    original: Message | None,
    assigned_at: datetime,
    actor: str = SYSTEM,
    kind: str = KINDS[0],
    message_db_id: int | None = None,
) -> Case:
    """One unit's share of `parent` as the next part case, forwarded to its officer with
    `text` (when the member's original email is stored to attach)."""
    siblings = session.exec(select(Case.reference).where(Case.parent_id == parent.id)).all()
    part = open_case(
        session,
        fmt=ctx.references,
        calendar=ctx.calendar,
        response_days=ctx.response_days,
        received_at=parent.received_at,
        now=now,
        reference=part_reference(parent.reference, next_part_number(parent.reference, siblings)),
        parent_id=parent.id,
        status="awaiting_response" if route.officer else "triage",
        origin=parent.origin,
        kind=kind,
        member=parent.member,
        member_address=parent.member_address,
        delivery_unit=route.delivery_unit,
        officer=route.officer,
        subject=parent.subject,
        thread_message_id=parent.thread_message_id,
        nocopy=parent.nocopy,
        first_delivery_unit=route.delivery_unit,
        first_assigned_at=assigned_at if route.delivery_unit else None,
    )
    _copy_people(session, parent, part, ctx.mailer, now, message_db_id)
    event = partial(record_event, session, part.id, now, actor=actor, message_db_id=message_db_id)
    event("case-opened", rule="part-of", detail={"parent": parent.reference, "origin": part.origin})
    if route.delivery_unit:
        event("assigned", rule=route.rule,
              detail={"delivery_unit": route.delivery_unit, "officer": route.officer})  # fmt: skip
    if part.status == "triage":
        reason = "no unit or officer available" if route.delivery_unit else "no rule routes it"
        event("triage", rule=route.rule, detail={"reason": reason})
    if original is not None:
        queue_forward(session, ctx.mailer, part, original, now, body=text, part_of=parent.reference)
    return part


def open_parts(
    session: Session,
    ctx: Opening,
    parent: Case,
    questions: Questions,
    shares: Sequence[Share],
    now: datetime,
    *,
    original: Message,
) -> list[Case]:
    """A new enquiry whose numbered questions reach two or more units: a part for each unit
    (and one for the team with any question no rule routes), each told only its questions."""
    parts = [
        open_part(
            session,
            ctx,
            parent,
            share.route,
            questions.text_for(share.questions),
            now,
            original=original,
            assigned_at=parent.received_at,
            message_db_id=original.id,
        )
        for share in shares
    ]
    detail = [
        _summary(part) | {"questions": [q.label for q in share.questions], "rule": share.route.rule}
        for part, share in zip(parts, shares, strict=True)
    ]
    record_event(session, parent.id, now, "split", rule=SPLIT_RULE, detail={"parts": detail},
                 message_db_id=original.id)  # fmt: skip
    return parts


def split_by_hand(
    session: Session,
    ctx: Opening,
    parent: Case,
    shares: Sequence[tuple[Route, str]],
    now: datetime,
    *,
    by: str,
) -> list[Case]:
    """A supervisor shares `parent` out: a part per (route, question text). The case becomes
    the umbrella of its parts (if it was not already) and the member hears every reference.
    Raises ValueError, changing nothing, when the case cannot be split."""
    existing = session.exec(select(Case).where(Case.parent_id == parent.id).order_by(Case.id)).all()
    problem = _cannot_split(parent, len(shares), has_parts=bool(existing))
    if problem:
        raise ValueError(f"{parent.reference}: {problem}")
    original = (
        session.exec(select(Message).where(Message.message_id == parent.thread_message_id)).first()
        if parent.thread_message_id
        else None
    )
    actor = f"cli:{by}"
    kind = existing[0].kind if existing else parent.kind
    new = [
        open_part(
            session,
            ctx,
            parent,
            route,
            text,
            now,
            original=original,
            assigned_at=now,
            actor=actor,
            kind=kind,
        )
        for route, text in shares
    ]
    previous = {"delivery_unit": parent.delivery_unit, "officer": parent.officer}
    parent.kind, parent.delivery_unit, parent.officer = SPLIT, None, None
    parent.status = "awaiting_response"
    parent.next_action_at = parent.updated_at = now
    record_event(session, parent.id, now, "split", actor=actor, rule=BY_HAND,
                 detail={"parts": [_summary(p) for p in new], "previous": previous,
                         "forwarded": original is not None})  # fmt: skip
    queue_ack(session, ctx.mailer, parent, now, thread=member_thread(session, parent),
              parts=[*existing, *new], dedupe_key=f"parts:{new[-1].reference}")  # fmt: skip
    return new


def resolve_parent_when_done(session: Session, part: Case, now: datetime) -> Case | None:
    """When the last open part of an enquiry is resolved, the originating case is too: the
    member has had every service's full response. Returns the parent it resolved."""
    if part.parent_id is None:
        return None
    others = session.exec(
        select(Case.status, Case.resolved_at, Case.first_response_at).where(
            Case.parent_id == part.parent_id, Case.id != part.id
        )
    ).all()
    if any(status in OPEN_STATUSES for status, _, _ in others):
        return None
    parent = session.get(Case, part.parent_id)
    if parent is None or parent.status not in OPEN_STATUSES:
        return None
    resolved = [at for _, at, _ in others if at] + [part.resolved_at or now]
    responses = [at for _, _, at in others if at] + [part.first_response_at or now]
    parent.status, parent.resolved_at = "resolved", max(resolved)
    parent.first_response_at = parent.first_response_at or min(responses)
    parent.next_action_at = parent.updated_at = now
    record_event(session, parent.id, now, "resolved", rule="all-parts-resolved",
                 detail={"last_part": part.reference})  # fmt: skip
    return parent


def _cannot_split(parent: Case, n: int, *, has_parts: bool) -> str | None:
    if parent.parent_id is not None:
        return "is itself a part; split its originating case instead"
    if parent.kind == MERGED:
        return "was merged into another case"
    if parent.status not in OPEN_STATUSES:
        return f"is {parent.status}; reopen it first"
    if n < (1 if has_parts else 2):
        return "give at least two parts (one unit takes a case whole: reroute it instead)"
    return None


def _copy_people(
    session: Session,
    parent: Case,
    part: Case,
    mailer: Mailer,
    now: datetime,
    message_db_id: int | None,
) -> None:
    """The member and everyone they copied in are on each part; its officer is its own."""
    rows = session.exec(
        select(Participant).where(Participant.case_id == parent.id, Participant.role != "officer")
    )
    people = [NewParticipant(p.address, p.role, p.name, p.person) for p in rows]
    officer = mailer.directory.officer(part.officer) if part.officer else None
    if officer:
        people.append(NewParticipant(officer.addresses[0], "officer", officer.name, officer.id))
    add_participants(session, part.id, people, now, message_db_id)


def _summary(part: Case) -> dict[str, str | None]:
    return {
        "reference": part.reference,
        "delivery_unit": part.delivery_unit,
        "officer": part.officer,
    }
