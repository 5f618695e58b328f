"""Checking a case file row by row, with no database: every problem with its line and column.

The result is either a list of errors or insert-ready case rows. Imported cases follow the
rules live cases do: due = received + the configured working days on the WorkingCalendar;
first response = the earlier of resolved and delay advised (both are a substantive word to
the member); status from the latest thing that happened. Chasers, escalations and routing
were never recorded by the old CRM, so they are NULL (unknown), not zero.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.history.csvformat import (
    ALL_COLUMNS,
    COLUMNS,
    REQUIRED,
    TIME_COLUMNS,
    normalise_feedback,
    parse_time,
)
from mailbridge.store.models import KINDS, ORIGINS

MAX_TEXT = {"reference": 40, "member": 120, "delivery_unit": 120, "officer": 120}
Progress = Callable[[int], None]  # called with the number of rows done so far


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.column}: {self.message}"


@dataclass
class Names:
    """Members or DUs by any spelling people use (id, name, address; any case) -> the key."""

    keys: dict[str, str] = field(default_factory=dict)
    new: dict[str, str] = field(default_factory=dict)  # key -> name, first seen in this file

    def add(self, key: str, *spellings: str) -> None:
        for spelling in (key, *spellings):
            if spelling:
                self.keys.setdefault(spelling.strip().casefold(), key)

    def resolve(self, text: str) -> str:
        """The known key for `text`, or `text` itself, remembered as a new historical entry."""
        found = self.keys.get(text.casefold())
        if found is None:
            found = self.keys[text.casefold()] = text
            self.new[text] = text
        return found


@dataclass(frozen=True)
class Rules:
    """What checking a row needs to know, all handed in (the time too)."""

    calendar: WorkingCalendar
    response_days: int
    now: datetime

    @property
    def zone(self) -> ZoneInfo:
        return self.calendar.zone


@dataclass
class CaseFile:
    path: str
    rows: int = 0
    cases: list[dict[str, Any]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # reference -> line
    parents: dict[str, str] = field(default_factory=dict)  # reference -> parent reference
    errors: list[RowError] = field(default_factory=list)

    def error(self, line: int, column: str, message: str) -> None:
        self.errors.append(RowError(self.path, line, column, message))


def read_case_file(
    name: str,
    text: str,
    rules: Rules,
    members: Names,
    units: Names,
    progress: Progress | None = None,
) -> CaseFile:
    """Check every row of `text` (the file's contents); nothing stops at the first error."""
    out = CaseFile(name)
    records = _records(text)
    header_line, header = next(records, (1, []))
    header = [h.strip().lower() for h in header]
    for column in REQUIRED + COLUMNS[4:]:
        if column not in header:
            out.error(header_line, column, "missing column")
    for column in header:
        if column not in ALL_COLUMNS:
            out.error(
                header_line, column or "-", f"unknown column (known: {', '.join(ALL_COLUMNS)})"
            )
    if len(set(header)) != len(header):
        out.error(header_line, "-", "a column appears twice")
    if out.errors:
        return out
    due = _due_rule(rules)
    for line, record in records:
        out.rows += 1
        if len(record) > len(header):
            out.error(line, "-", f"{len(record)} fields, but the header has {len(header)}")
            continue
        values = dict(zip(header, (v.strip() for v in record), strict=False))
        case = _check_row(out, line, values, rules, members, units, due)
        if case is not None:
            reference = case["reference"]
            if reference in out.lines:
                out.error(line, "reference", f"{reference} is also on line {out.lines[reference]}")
            else:
                out.lines[reference] = line
                out.cases.append(case)
        if progress and out.rows % 1000 == 0:
            progress(out.rows)
    for reference, parent in out.parents.items():
        if parent == reference:
            out.error(out.lines[reference], "parent_reference", "a case cannot be its own part")
    return out


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for each non-blank CSV record; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    last = 0
    for record in reader:
        start, last = last + 1, reader.line_num
        if any(field.strip() for field in record):
            yield start, record


def _due_rule(rules: Rules) -> Callable[[datetime], datetime]:
    @cache
    def due_from(start: date) -> datetime:
        return rules.calendar.at_cutoff(rules.calendar.add_working_days(start, rules.response_days))

    return lambda received: due_from(rules.calendar.clock_start(received))


def _check_row(
    out: CaseFile,
    line: int,
    values: dict[str, str],
    rules: Rules,
    members: Names,
    units: Names,
    due: Callable[[datetime], datetime],
) -> dict[str, Any] | None:
    before = len(out.errors)
    for column in REQUIRED:
        if not values.get(column):
            out.error(line, column, "is required")
    for column, limit in MAX_TEXT.items():
        if len(values.get(column) or "") > limit:
            out.error(line, column, f"longer than {limit} characters")
    reference = (values.get("reference") or "").upper()
    if reference and any(ch.isspace() for ch in reference):
        out.error(line, "reference", f"{reference!r} contains a space")
    times: dict[str, datetime | None] = {}
    for column in TIME_COLUMNS:
        times[column] = None
        if values.get(column):
            try:
                times[column] = parse_time(values[column], rules.zone)
            except ValueError as exc:
                out.error(line, column, str(exc))
                continue
            if times[column] > rules.now:
                out.error(line, column, f"{values[column]} is in the future")
    received = times["received_at"]
    for column, earlier in (
        ("resolved_at", "received_at"),
        ("delay_advised_at", "received_at"),
        ("closed_at", "received_at"),
        ("closed_at", "resolved_at"),
    ):
        a, b = times[column], times[earlier]
        if a is not None and b is not None and a < b:
            out.error(line, column, f"{values[column]} is before {earlier} {values[earlier]}")
    origin = values.get("origin") or ""
    if origin and origin.lower() not in ORIGINS:
        out.error(line, "origin", f"{origin!r} is not one of {', '.join(ORIGINS)}")
    kind = (values.get("kind") or "members_enquiry").lower()
    if kind not in KINDS:
        out.error(line, "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    feedback = None
    if values.get("feedback"):
        feedback = normalise_feedback(values["feedback"])
        if feedback is None:
            out.error(
                line, "feedback", f"{values['feedback']!r}: use satisfied, partly or not_satisfied"
            )
    if len(out.errors) > before or received is None:
        return None
    resolved, delay, closed = times["resolved_at"], times["delay_advised_at"], times["closed_at"]
    if values.get("parent_reference"):
        out.parents[reference] = values["parent_reference"].upper()
    status = "awaiting_response"
    if closed:
        status = "closed"
    elif resolved:
        status = "resolved"
    elif delay:
        status = "delay_advised"
    return {
        "reference": reference,
        "status": status,
        # Always "imported", whatever the file says: it is how the daemon's sweeps know never
        # to chase, escalate or auto-close a case the old CRM handled.
        "origin": "imported",
        "kind": kind,
        "member": members.resolve(values["member"]),
        "delivery_unit": units.resolve(values["delivery_unit"]),
        "officer": values.get("officer") or None,
        "subject": values.get("subject") or "",
        "received_at": received,
        "due_at": due(received),
        "first_response_at": min((t for t in (resolved, delay) if t), default=None),
        "resolved_at": resolved,
        "delay_advised_at": delay,
        "closed_at": closed,
        "feedback": feedback,
        "created_at": rules.now,
        "updated_at": rules.now,
        "chasers_sent": None,
        "escalations": None,
        "reroutes": None,
    }
