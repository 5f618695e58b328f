"""Recording case changes: open a case, add people, write the timeline, resolve match candidates.

Services take a session and `now` and never commit: the caller owns the transaction, so a
case change, its events and (later) its outbox rows commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.matching import Candidate
from mailbridge.cases.references import next_reference
from mailbridge.config import ReferenceFormat
from mailbridge.store.db import insert
from mailbridge.store.models import Case, Event, Message, Outbox, Participant

SYSTEM = "mailbridge"


def record_event(
    session: Session,
    case: Case,
    now: datetime,
    kind: str,
    *,
    actor: str = SYSTEM,
    rule: str | None = None,
    detail: dict[str, Any] | None = None,
    message: Message | None = None,
) -> Event:
    event = Event(
        case_id=case.id,
        at=now,
        actor=actor,
        kind=kind,
        rule=rule,
        detail=detail or {},
        message_db_id=message.id if message else None,
    )
    session.add(event)
    return event


def open_case(
    session: Session,
    *,
    fmt: ReferenceFormat,
    calendar: WorkingCalendar,
    response_days: int,
    received_at: datetime,
    now: datetime,
    **fields: Any,
) -> Case:
    """A new case with the next reference of the year it was received in (council time)."""
    year = calendar.local(received_at).year
    case = Case(
        reference=next_reference(session, fmt, year),
        received_at=received_at,
        due_at=calendar.due_at(received_at, response_days),
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(case)
    session.flush()  # the id, for participants and events
    return case


def add_participant(
    session: Session,
    case: Case,
    *,
    address: str,
    role: str,
    now: datetime,
    name: str = "",
    person: str | None = None,
    message: Message | None = None,
) -> bool:
    """Add someone to a case once per role; True if they were not there before."""
    stmt = (
        insert(session, Participant.__table__)
        .values(
            case_id=case.id,
            address=address.lower(),
            name=name,
            role=role,
            person=person,
            added_at=now,
            message_db_id=message.id if message else None,
        )
        .on_conflict_do_nothing(index_elements=["case_id", "address", "role"])
    )
    return session.execute(stmt).rowcount == 1


def participant_addresses(session: Session, case_id: int) -> set[str]:
    rows = session.exec(select(Participant.address).where(Participant.case_id == case_id))
    return set(rows.all())


def find_case(session: Session, candidates: list[Candidate]) -> tuple[Case, Candidate] | None:
    """The case named by the first candidate that names one, and that candidate."""
    for candidate in candidates:
        case = None
        if candidate.reference:
            case = case_by_reference(session, candidate.reference)
        elif candidate.message_id:
            case_id = (
                session.exec(
                    select(Message.case_id).where(
                        Message.message_id == candidate.message_id, Message.case_id.is_not(None)
                    )
                ).first()
                or session.exec(
                    select(Outbox.case_id).where(
                        Outbox.message_id == candidate.message_id, Outbox.case_id.is_not(None)
                    )
                ).first()
            )
            case = session.get(Case, case_id) if case_id else None
        if case is not None:
            return case, candidate
    return None


def case_by_reference(session: Session, reference: str) -> Case | None:
    # References are generated in upper case; compare as stored so the unique index is used.
    return session.exec(select(Case).where(Case.reference == reference.upper())).first()
