"""The directory in the database: loaded from the file on start and on SIGHUP, and what mail
teaches about officers (an out-of-office's return date, a bounce from their address).

A load upserts every member, delivery unit and officer in the file and keeps the rows of
people no longer in it, marked historical (officers also inactive): old cases name them. It
never touches the columns mail fills in, so a reload forgets no bounce and no absence; a
historical row left by `import cases` becomes a live one when the file names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlmodel import Session

from mailbridge.directory import Directory, Learnt
from mailbridge.store.db import insert
from mailbridge.store.models import DeliveryUnitRecord, MemberRecord, OfficerRecord

MEMBERS: Table = MemberRecord.__table__
UNITS: Table = DeliveryUnitRecord.__table__
OFFICERS: Table = OfficerRecord.__table__


@dataclass(frozen=True)
class Loaded:
    members: int
    delivery_units: int
    officers: int
    gone: int  # rows kept as historical: people and units no longer in the file


def load_people(session: Session, directory: Directory, now: datetime) -> Loaded:
    """Upsert the directory's entries; mark rows no longer in it historical (the caller commits)."""
    members = [
        {"id": m.id, "name": m.name, "ward": m.ward, "party": m.party,
         "addresses": list(m.addresses), "digest": m.digest}
        for m in directory.members
    ]  # fmt: skip
    units = [
        {"name": u.name, "confidential": u.confidential, "leads": list(u.leads),
         "escalation_manager": u.escalation_manager or None,
         "escalation_reviewed": u.escalation_reviewed}
        for u in directory.delivery_units
    ]  # fmt: skip
    officers = [
        {"id": o.id, "name": o.name, "addresses": list(o.addresses),
         "delivery_unit": o.delivery_unit or None, "manager": o.manager or None,
         "deputy": o.deputy or None, "active": o.active, "absent_until": o.absent_until}
        for o in directory.officers
    ]  # fmt: skip
    gone = 0
    for table, key, rows in ((MEMBERS, "id", members), (UNITS, "name", units),
                             (OFFICERS, "id", officers)):  # fmt: skip
        _upsert(session, table, key, rows, now)
        retired = {"historical": True, "updated_at": now}
        if table is OFFICERS:
            retired["active"] = False
        gone += session.execute(
            update(table)
            .where(table.c[key].not_in([r[key] for r in rows]), table.c.historical.is_(False))
            .values(retired)
        ).rowcount
    return Loaded(len(members), len(units), len(officers), gone)


def _upsert(
    session: Session, table: Table, key: str, rows: list[dict[str, Any]], now: datetime
) -> None:
    """Insert or update the file's columns only: mail-learnt columns and created_at stay."""
    if not rows:
        return
    stmt = insert(session, table)
    columns = [c for c in rows[0] if c != key]
    stmt = stmt.on_conflict_do_update(
        index_elements=[key],
        set_={**{c: stmt.excluded[c] for c in columns}, "historical": False, "updated_at": now},
    )
    session.execute(stmt, [r | {"historical": False, "created_at": now} for r in rows])


def learnt(session: Session) -> dict[str, Learnt]:
    """What mail has taught about officers, by id: those with an absence or a bounce on record."""
    rows = session.execute(
        select(
            OFFICERS.c.id,
            OFFICERS.c.reported_absent_until,
            OFFICERS.c.undeliverable_at,
            OFFICERS.c.undeliverable_reason,
        ).where(
            OFFICERS.c.reported_absent_until.is_not(None) | OFFICERS.c.undeliverable_at.is_not(None)
        )
    )
    return {r.id: Learnt(r[1], r[2], r[3] or "") for r in rows}


def mark_undeliverable(session: Session, officer_id: str, now: datetime, reason: str) -> None:
    """Their address bounced; the first bounce's time is kept until someone clears it."""
    session.execute(
        update(OFFICERS)
        .where(OFFICERS.c.id == officer_id)
        .values(
            undeliverable_at=func.coalesce(OFFICERS.c.undeliverable_at, now),
            undeliverable_reason=reason[:500],
            updated_at=now,
        )
    )


def mark_absent(session: Session, officer_id: str, until: date, now: datetime) -> None:
    """Their out-of-office says they are away through `until`."""
    session.execute(
        update(OFFICERS)
        .where(OFFICERS.c.id == officer_id)
        .values(reported_absent_until=until, updated_at=now)
    )


def clear_learnt(session: Session, officer_id: str, now: datetime) -> Learnt | None:
    """Forget a bounce and a reported absence (`mailbridge directory clear`); returns what was
    on record, or None when there is no such officer."""
    row = session.execute(
        select(
            OFFICERS.c.reported_absent_until,
            OFFICERS.c.undeliverable_at,
            OFFICERS.c.undeliverable_reason,
        ).where(OFFICERS.c.id == officer_id)
    ).first()
    if row is None:
        return None
    session.execute(
        update(OFFICERS)
        .where(OFFICERS.c.id == officer_id)
        .values(
            reported_absent_until=None,
            undeliverable_at=None,
            undeliverable_reason=None,
            updated_at=now,
        )
    )
    return Learnt(row[0], row[1], row[2] or "")


def stored_people(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every member, unit and officer row, for `directory show` (historical ones included)."""
    return {
        name: [dict(r._mapping) for r in session.execute(select(table).order_by(table.c[key]))]
        for name, table, key in (
            ("members", MEMBERS, "id"),
            ("delivery_units", UNITS, "name"),
            ("officers", OFFICERS, "id"),
        )
    }
