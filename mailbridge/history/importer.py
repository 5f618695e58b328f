"""`import cases`: check a whole file against the store, then write it in one transaction.

All or nothing, twice over: every row is checked (its own fields, duplicates in the file and
in the database, parents) before anything is written, and the writing is one transaction, so
a failure half-way (a disk, a constraint, a concurrent import) rolls every row back.
Imported cases send nothing: no outbox row, no event, no acknowledgement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.config import ReferenceFormat
from mailbridge.directory import Directory
from mailbridge.history.rows import CaseFile, Names, Progress, RowError, Rules, read_case_file
from mailbridge.store.db import insert
from mailbridge.store.models import Case, DeliveryUnitRecord, MemberRecord, ReferenceCounter

CHUNK = 1000
CASES = Case.__table__


@dataclass
class ImportResult:
    path: str
    rows: int = 0
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)
    new_members: list[str] = field(default_factory=list)
    new_units: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Importer:
    engine: Engine
    calendar: WorkingCalendar
    response_days: int
    references: ReferenceFormat
    directory: Directory

    def run(
        self,
        path: Path,
        now: datetime,
        dry_run: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> ImportResult:
        """Check `path` and, unless dry_run or anything is wrong, import it."""
        result = ImportResult(str(path))
        text = _read_text(path, result)
        if text is None:
            return result
        total = max(text.count("\n") - 1, 1)
        tick: Progress | None = (lambda n: progress("checking", n, total)) if progress else None
        with self.engine.connect() as conn:
            members, units = self._names(conn)
            rules = Rules(self.calendar, self.response_days, now)
            checked = read_case_file(str(path), text, rules, members, units, tick)
            result.rows = checked.rows
            _check_store(conn, checked)  # with the row errors, so the listing has them all
            result.errors = sorted(checked.errors, key=lambda e: (e.line, e.column))
            result.new_members, result.new_units = sorted(members.new), sorted(units.new)
            conn.rollback()
        if result.errors or dry_run:
            return result
        with self.engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite: one writer
            _write(conn, checked, result, now, self.references, progress)
        return result

    def _names(self, conn: Connection) -> tuple[Names, Names]:
        """Everyone the directory and earlier imports know, by every spelling."""
        members, units = Names(), Names()
        for m in self.directory.members:
            members.add(m.id, m.name, *m.addresses)
        for d in self.directory.delivery_units:
            units.add(d.name)
        member_table, unit_table = MemberRecord.__table__, DeliveryUnitRecord.__table__
        for key, name in conn.execute(select(member_table.c.id, member_table.c.name)):
            members.add(key, name)
        for (name,) in conn.execute(select(unit_table.c.name)):
            units.add(name)
        return members, units


def _read_text(path: Path, result: ImportResult) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        result.errors.append(RowError(str(path), 0, "-", f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = "not UTF-8 text: save the file as CSV UTF-8"
        result.errors.append(RowError(str(path), line, "-", message))
        return None


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _existing(conn: Connection, references: Iterable[str]) -> dict[str, int]:
    """Reference -> id for those of `references` already stored."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(references))):
        rows = conn.execute(
            select(CASES.c.reference, CASES.c.id).where(CASES.c.reference.in_(chunk))
        )
        found.update({r.reference: r.id for r in rows})
    return found


def _check_store(conn: Connection, checked: CaseFile) -> None:
    for reference in _existing(conn, checked.lines):
        checked.error(checked.lines[reference], "reference", f"{reference} is already stored")
    missing = set(checked.parents.values()) - set(checked.lines)
    stored = _existing(conn, missing)
    for reference, parent in checked.parents.items():
        if parent not in checked.lines and parent not in stored:
            line = checked.lines[reference]
            checked.error(line, "parent_reference", f"no case {parent} in this file or stored")


def _write(
    conn: Connection,
    checked: CaseFile,
    result: ImportResult,
    now: datetime,
    references: ReferenceFormat,
    progress: Callable[[str, int, int], None] | None,
) -> None:
    # Members and DUs the directory does not know: recorded as historical, so that history
    # can be imported before (or without) their directory entries.
    members = [
        {"id": m, "name": m, "ward": "", "party": "", "historical": True, "created_at": now}
        for m in result.new_members
    ]
    units = [
        {"name": u, "confidential": False, "historical": True, "created_at": now}
        for u in result.new_units
    ]
    for table, key, rows in (
        (MemberRecord.__table__, "id", members),
        (DeliveryUnitRecord.__table__, "name", units),
    ):
        if rows:
            conn.execute(insert(conn, table).on_conflict_do_nothing(index_elements=[key]), rows)
    done = 0
    for chunk in _chunks(checked.cases):
        conn.execute(CASES.insert(), chunk)
        done += len(chunk)
        if progress:
            progress("importing", done, len(checked.cases))
    if checked.parents:
        ids = _existing(conn, {*checked.parents, *checked.parents.values()})
        links = [{"row": ids[c], "parent": ids[p]} for c, p in checked.parents.items()]
        stmt = (
            update(CASES)
            .where(CASES.c.id == bindparam("row"))
            .values(parent_id=bindparam("parent"))
        )
        conn.execute(stmt, links)
    _advance_counters(conn, checked.lines, references)
    result.imported = len(checked.cases)


def _advance_counters(conn: Connection, refs: Iterable[str], fmt: ReferenceFormat) -> None:
    """Move each year's reference counter past imported references in our own format.

    Otherwise a case opened by the daemon could be given ME-2026-00007 when the CRM had
    already used it.
    """
    pattern = re.compile(rf"{re.escape(fmt.prefix)}-(\d{{4}})-(\d+)(?:-\d+)?", re.IGNORECASE)
    highest: dict[int, int] = {}
    for ref in refs:
        match = pattern.fullmatch(ref)
        if match:
            year, seq = int(match[1]), int(match[2])
            highest[year] = max(highest.get(year, 0), seq)
    table = ReferenceCounter.__table__
    larger = func.greatest if conn.dialect.name == "postgresql" else func.max
    for year, seq in sorted(highest.items()):
        stmt = insert(conn, table).values(prefix=fmt.prefix, year=year, last=seq)
        stmt = stmt.on_conflict_do_update(
            index_elements=["prefix", "year"],
            set_={"last": larger(table.c.last, stmt.excluded.last)},
        )
        conn.execute(stmt)
