"""Recording case changes: open a case, add people, write the timeline, resolve match candidates.

Services take a session and `now` and never commit: the caller owns the transaction, so a
case change, its events and (later) its outbox rows commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from pydantic.fields import FieldInfo
from sqlalchemy import Insert, bindparam, inspect, update
from sqlalchemy.orm import ClassManager, configure_mappers
from sqlmodel import Session, SQLModel, select

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.matching import Candidate
from mailbridge.cases.references import next_reference
from mailbridge.config import ReferenceFormat
from mailbridge.store.db import insert_ignoring, insert_one
from mailbridge.store.models import MERGED, Case, CaseLink, Event, Message, Outbox, Participant

SYSTEM = "mailbridge"

# Built once: the pipeline runs these for every message (see store.db.insert_ignoring).
_INSERT_EVENT = Event.__table__.insert()
_INSERT_CASE = Case.__table__.insert()
_UPDATE_CASE = update(Case.__table__).where(Case.__table__.c.id == bindparam("case_row"))
_HELD = "mailbridge.held_inserts"  # session.info key, set by holding_inserts


def record_event(session: Session, case_id: int, now: datetime, kind: str, **fields: Any) -> None:
    """Add one entry to a case's timeline (fields: see event_values); inside holding_inserts
    it is held back and written with the others."""
    insert_or_hold(session, _INSERT_EVENT, [event_values(case_id, now, kind, **fields)])


def insert_or_hold(session: Session, statement: Insert, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` now or, inside holding_inserts, at its end with the others of the same
    statement. Only for rows nothing reads before then but through write_held_inserts."""
    held: dict[Insert, list[dict[str, Any]]] | None = session.info.get(_HELD)
    if held is None:
        session.connection().execute(statement, rows)
    else:
        held.setdefault(statement, []).extend(rows)


@contextmanager
def holding_inserts(session: Session) -> Iterator[None]:
    """The timeline entries and duplicate links recorded inside are written at the end, one
    statement each (a new enquiry records about seven entries); none if the block raises."""
    session.info[_HELD] = {}
    try:
        yield
        write_held_inserts(session)
    finally:
        session.info.pop(_HELD, None)


def write_held_inserts(session: Session) -> None:
    """Write what holding_inserts holds back now: before reading a timeline in one."""
    held: dict[Insert, list[dict[str, Any]]] | None = session.info.get(_HELD)
    if held:
        for statement, rows in held.items():
            session.connection().execute(statement, rows)
        held.clear()


def record_events(session: Session, entries: list[dict[str, Any]]) -> None:
    """Add many timeline entries (event_values) at once: the clock's sweep does."""
    if entries:
        insert_or_hold(session, _INSERT_EVENT, entries)


def event_values(
    case_id: int,
    now: datetime,
    kind: str,
    *,
    actor: str = SYSTEM,
    rule: str | None = None,
    detail: dict[str, Any] | None = None,
    message_db_id: int | None = None,
) -> dict[str, Any]:
    """One timeline entry's row."""
    return {
        "case_id": case_id,
        "at": now,
        "actor": actor,
        "kind": kind,
        "rule": rule,
        "detail": detail or {},
        "message_db_id": message_db_id,
    }


def open_case(
    session: Session,
    *,
    fmt: ReferenceFormat,
    calendar: WorkingCalendar,
    response_days: int,
    received_at: datetime,
    now: datetime,
    reference: str | None = None,
    **fields: Any,
) -> Case:
    """A new case with the next reference of the year it was received in (council time), or
    with `reference` (a part's, ME-2026-00123-2, which takes no number of its own).

    Inserted with one Core statement (the ORM's unit of work costs more than the pipeline's
    whole SQL); the returned Case is a detached snapshot of the row.
    """
    year = calendar.local(received_at).year
    values = {
        "reference": reference or next_reference(session, fmt, year),
        "received_at": received_at,
        "due_at": calendar.due_at(received_at, response_days),
        "created_at": now,
        "updated_at": now,
        "next_action_at": now,  # the clock's next sweep works out when it is really due
        **fields,
    }
    case_id = insert_one(session, _INSERT_CASE, values)
    return detached_row(Case, id=case_id, **values)


_Row = TypeVar("_Row", bound=SQLModel)


def detached_row(model: type[_Row], /, **values: Any) -> _Row:
    """`model(**values)` for a row written with Core, at a tenth of the cost (a Case: ~90 → 6 µs).

    SQLModel's constructor sets each column through SQLAlchemy's instrumented setattr, which
    records it as a pending change; this object is made as the ORM makes a row it loads and
    filled directly, with the same columns, defaults, order and fields-set. Only that record
    of pending changes stays empty, which nothing reads: session.add and merge write the same.
    """
    manager, names, defaults = _row_layout(model)
    row = manager.new_instance()
    given = {name: values[name] for name in names if name in values}
    columns = row.__dict__
    columns.update(given)
    for name, (value, made) in defaults.items():
        if name not in given:
            columns[name] = value if made is None else made.get_default(call_default_factory=True)
    object.__setattr__(row, "__pydantic_fields_set__", set(given))
    return row


@cache
def _row_layout(
    model: type[SQLModel],
) -> tuple[ClassManager, tuple[str, ...], dict[str, tuple[Any, FieldInfo | None]]]:
    """A model's fields and its defaults: an immutable one is shared, as pydantic hands out
    the same object; a default_factory's or a mutable one is made afresh (its FieldInfo).

    The mappers are configured first, as a constructor would: before the first query or
    constructor a row's attributes have no implementation yet, and reading one raises.
    """
    configure_mappers()
    defaults: dict[str, tuple[Any, FieldInfo | None]] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        shared = field.default_factory is None and field.get_default() is field.default
        defaults[name] = (field.default, None) if shared else (None, field)
    return inspect(model).class_manager, tuple(model.model_fields), defaults


def touch_case(session: Session, case_id: int, now: datetime, **changes: Any) -> None:
    """Update a case's columns (and its updated_at) with one statement.

    Any change may move the clock, so next_action_at becomes `now` and the next sweep works
    out the case's real next action (mailbridge/schedule).
    """
    values = {"case_row": case_id, "updated_at": now, "next_action_at": now, **changes}
    session.connection().execute(_UPDATE_CASE, values)


@dataclass(frozen=True)
class NewParticipant:
    address: str
    role: str  # member | stakeholder | officer
    name: str = ""
    person: str | None = None  # directory id


def add_participants(
    session: Session,
    case_id: int,
    people: list[NewParticipant],
    now: datetime,
    message_db_id: int | None = None,
) -> None:
    """Add people to a case, each once per role, in one statement."""
    if not people:
        return
    stmt = insert_ignoring(session, Participant.__table__, "case_id", "address", "role")
    session.connection().execute(
        stmt,
        [
            {
                "case_id": case_id,
                "address": p.address.lower(),
                "name": p.name,
                "role": p.role,
                "person": p.person,
                "added_at": now,
                "message_db_id": message_db_id,
            }
            for p in people
        ],
    )


def stakeholders_among(people: list[NewParticipant]) -> list[str]:
    """The stakeholders add_participants writes of `people` for a case that had none, as
    notices.case_stakeholders would read them back: each address once, in order."""
    return list(dict.fromkeys(p.address.lower() for p in people if p.role == "stakeholder"))


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
            return surviving_case(session, case), candidate
    return None


def surviving_case(session: Session, case: Case) -> Case:
    """A case merged into another (`case merge`) answers for it: mail quoting the old
    reference goes on the case it was merged into, following a chain of merges."""
    seen = {case.id}
    while case.kind == MERGED:
        into = session.exec(
            select(CaseLink.other_case_id).where(
                CaseLink.case_id == case.id, CaseLink.kind == MERGED
            )
        ).first()
        if into is None or into in seen:
            break
        seen.add(into)
        case = session.get(Case, into)
    return case


def case_by_reference(session: Session, reference: str) -> Case | None:
    # References are generated in upper case; compare as stored so the unique index is used.
    return session.exec(select(Case).where(Case.reference == reference.upper())).first()
