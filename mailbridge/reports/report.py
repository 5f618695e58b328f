"""The shape every report has: a title, stable column names, and rows with the Total row last."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports.definitions import (
    NOT_COUNTED_KINDS,
    TOTAL,
    UNASSIGNED,
    Period,
    bounds,
    pct,
)
from mailbridge.store.models import Case

CASE = Case.__table__
C = CASE.c


@dataclass(frozen=True)
class Report:
    name: str  # the CLI command: "monthly"
    title: str  # what people read above the table
    columns: tuple[str, ...]  # lower_snake_case, stable: scripts and spreadsheets key on them
    rows: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = field(default=())

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    @property
    def numeric_columns(self) -> frozenset[str]:
        """Columns that hold figures (right-aligned in tables)."""
        return frozenset(c for c in self.columns if any(is_number(r.get(c)) for r in self.rows))

    @property
    def body(self) -> tuple[dict[str, Any], ...]:
        """The rows without the Total row(s)."""
        first = self.columns[0]
        return tuple(r for r in self.rows if r.get(first) != TOTAL)


def counted(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """Every case the reports count: all but those that are not Members' Enquiries at all."""
    return and_(C.kind.not_in(NOT_COUNTED_KINDS), *conditions)


def in_period(calendar: WorkingCalendar, period: Period | None) -> list[ColumnElement[bool]]:
    """Cases received on the local dates of `period` (all cases for None)."""
    if period is None:
        return []
    start, end = bounds(calendar, period)
    return [C.received_at >= start, C.received_at < end]


def period_title(title: str, period: Period | None) -> str:
    if period is None:
        return f"{title}, all cases"
    return f"{title}, received {period.first:%d %b %Y} to {period.last:%d %b %Y}"


def unit_name(value: str | None) -> str:
    return value if value else UNASSIGNED


def unit_order(units: Iterable[str]) -> list[str]:
    """DUs alphabetically (ignoring case), with Unassigned last."""
    names = set(units)
    ordered = sorted((u for u in names if u != UNASSIGNED), key=str.casefold)
    return ordered + ([UNASSIGNED] if UNASSIGNED in names else [])


def with_percentages(row: dict[str, Any], whole: str, parts: Sequence[str]) -> dict[str, Any]:
    """Add pct_<part> = part / whole for each part, one decimal place."""
    for part in parts:
        row[f"pct_{part}"] = pct(row[part], row[whole])
    return row


def add_counts(total: dict[str, Any], row: dict[str, Any], keys: Sequence[str]) -> None:
    for key in keys:
        total[key] = (total.get(key) or 0) + (row.get(key) or 0)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
