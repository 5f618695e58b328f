"""The committee's 5-day tables: the open position at a date, monthly performance, quarters.

Each is one GROUP BY with CASE sums. Dates become UTC instants in Python (local midnight via
the calendar), so the SQL compares indexed timestamps and never converts a time zone.

    closed in 5 days     resolved at or before due
    delay advised        not resolved by due, and delay advised at or before due
    responded in 5 days  closed in 5 days + delay advised
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports.definitions import (
    AGE_BUCKETS,
    OVER_10,
    TOTAL,
    Period,
    bounds,
    financial_quarters,
    financial_year_label,
    months,
)
from mailbridge.reports.report import (
    C,
    Report,
    add_counts,
    counted,
    unit_name,
    unit_order,
    with_percentages,
)

OPEN_COLUMNS = ("delivery_unit", *(b[0] for b in AGE_BUCKETS), OVER_10)
MEASURES = ("items_due", "closed_in_5_days", "delay_advised")
MONTHLY_FIGURES = (
    "items_due",
    "closed_in_5_days",
    "pct_closed_in_5_days",
    "not_closed_in_5_days",
    "pct_not_closed_in_5_days",
    "delay_advised",
    "pct_delay_advised",
    "responded_in_5_days",
    "pct_responded_in_5_days",
)
QUARTER_COLUMNS = ("delivery_unit", "quarter", "volume", "closed_in_5_days", "pct_closed_in_5_days")


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def open_position(
    conn: Connection, calendar: WorkingCalendar, at: date, units: Sequence[str] = ()
) -> Report:
    """Open at D: received on or before D and not resolved by D, by DU and calendar age."""
    end = calendar.start_of_day(at + timedelta(days=1))

    def received_before_age(age: int) -> datetime:
        # Age in calendar days = D - local date received, so "age >= n" is "received
        # before local midnight starting D - n + 1".
        return calendar.start_of_day(at - timedelta(days=age - 1))

    sums = []
    for name, low, high in AGE_BUCKETS:
        cond = [C.received_at < received_before_age(low)]
        if high is not None:
            cond.append(C.received_at >= received_before_age(high))
        sums.append(_count(and_(*cond)).label(name))
    stmt = (
        select(C.delivery_unit, *sums)
        .where(
            counted(
                C.received_at < end,
                or_(C.resolved_at.is_(None), C.resolved_at >= end),
            )
        )
        .group_by(C.delivery_unit)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in conn.execute(stmt).mappings():
        add_counts(found.setdefault(unit_name(row["delivery_unit"]), {}), row, OPEN_COLUMNS[1:-1])
    rows = []
    total: dict[str, Any] = {"delivery_unit": TOTAL, **{c: 0 for c in OPEN_COLUMNS[1:]}}
    for unit in unit_order([*units, *found]):
        row = {"delivery_unit": unit, **{b[0]: 0 for b in AGE_BUCKETS}, **found.get(unit, {})}
        row[OVER_10] = sum(row[b[0]] for b in AGE_BUCKETS[1:])
        add_counts(total, row, OPEN_COLUMNS[1:])
        rows.append(row)
    rows.append(total)
    return Report(
        "open",
        f"Open enquiries at {at:%d %B %Y} by delivery unit and age (calendar days)",
        OPEN_COLUMNS,
        tuple(rows),
    )


def _kpi_sums() -> list[ColumnElement[int]]:
    closed = and_(C.resolved_at.is_not(None), C.resolved_at <= C.due_at)
    delay = and_(
        or_(C.resolved_at.is_(None), C.resolved_at > C.due_at),
        C.delay_advised_at.is_not(None),
        C.delay_advised_at <= C.due_at,
    )
    return [
        func.count().label("items_due"),
        _count(closed).label("closed_in_5_days"),
        _count(delay).label("delay_advised"),
    ]


def _kpi_row(key: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    row = {**key, **{m: counts.get(m) or 0 for m in MEASURES}}
    row["not_closed_in_5_days"] = row["items_due"] - row["closed_in_5_days"]
    row["responded_in_5_days"] = row["closed_in_5_days"] + row["delay_advised"]
    with_percentages(
        row,
        "items_due",
        ("closed_in_5_days", "not_closed_in_5_days", "delay_advised", "responded_in_5_days"),
    )
    return row


def _period_label(periods: Sequence[Period], calendar: WorkingCalendar) -> ColumnElement[str]:
    """The label of the period due_at falls in (rows outside every period are filtered)."""
    whens = [(C.due_at < bounds(calendar, p)[1], literal(p.label)) for p in periods[:-1]]
    return case(*whens, else_=literal(periods[-1].label)) if whens else literal(periods[0].label)


def monthly(
    conn: Connection,
    calendar: WorkingCalendar,
    first: date,
    last: date,
    by: str = "month",
    units: Sequence[str] = (),
) -> Report:
    """Monthly 5-day performance, by month of due date (or by DU over the whole range)."""
    periods = months(first, last)
    start, end = bounds(calendar, Period("range", first, last))
    due_in_range = counted(C.due_at >= start, C.due_at < end)
    title = f"5-day performance by {{}}, due {first:%d %b %Y} to {last:%d %b %Y}"
    if by == "du":
        stmt = select(C.delivery_unit, *_kpi_sums()).where(due_in_range).group_by(C.delivery_unit)
        found: dict[str, dict[str, Any]] = {}
        for row in conn.execute(stmt).mappings():
            add_counts(found.setdefault(unit_name(row["delivery_unit"]), {}), row, MEASURES)
        keys = [("delivery_unit", u) for u in unit_order([*units, *found])]
        column, title = "delivery_unit", title.format("delivery unit")
    else:
        label = _period_label(periods, calendar).label("month")
        stmt = select(label, *_kpi_sums()).where(due_in_range).group_by(label)
        found = {row["month"]: dict(row) for row in conn.execute(stmt).mappings()}
        keys = [("month", p.label) for p in periods]
        column, title = "month", title.format("month of due date")
    rows = [_kpi_row({column: key}, found.get(key, {})) for _, key in keys]
    total: dict[str, Any] = {}
    for row in rows:
        add_counts(total, row, MEASURES)
    rows.append(_kpi_row({column: TOTAL}, total))
    return Report("monthly", title, (column, *MONTHLY_FIGURES), tuple(rows))


def quarters(
    conn: Connection,
    calendar: WorkingCalendar,
    fy: int,
    to: date | None = None,
    units: Sequence[str] = (),
) -> Report:
    """Closed in 5 days by DU and UK financial quarter (of due date), long format."""
    periods = financial_quarters(fy, to)
    if not periods:
        raise ValueError(f"--to {to} is before the financial year {financial_year_label(fy)}")
    start, _ = bounds(calendar, periods[0])
    _, end = bounds(calendar, periods[-1])
    label = _period_label(periods, calendar).label("quarter")
    closed = and_(C.resolved_at.is_not(None), C.resolved_at <= C.due_at)
    stmt = (
        select(
            C.delivery_unit,
            label,
            func.count().label("volume"),
            _count(closed).label("closed_in_5_days"),
        )
        .where(counted(C.due_at >= start, C.due_at < end))
        .group_by(C.delivery_unit, label)
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in conn.execute(stmt).mappings():
        key = (unit_name(row["delivery_unit"]), row["quarter"])
        add_counts(found.setdefault(key, {}), row, ("volume", "closed_in_5_days"))
    year = financial_year_label(fy)
    labels = [p.label for p in periods]
    rows: list[dict[str, Any]] = []
    for unit in [*unit_order([*units, *(u for u, _ in found)]), TOTAL]:
        year_total: dict[str, Any] = {}
        for quarter in labels:
            if unit == TOTAL:
                counts: dict[str, Any] = {}
                for (_, q), c in found.items():
                    if q == quarter:
                        add_counts(counts, c, ("volume", "closed_in_5_days"))
            else:
                counts = found.get((unit, quarter), {})
            rows.append(_quarter_row(unit, quarter, counts))
            add_counts(year_total, counts, ("volume", "closed_in_5_days"))
        rows.append(_quarter_row(unit, year, year_total))
    title = f"Closed in 5 days by financial quarter of due date, {year}"
    if to is not None:
        title += f" to {to:%d %b %Y}"
    return Report("quarters", title, QUARTER_COLUMNS, tuple(rows))


def _quarter_row(unit: str, quarter: str, counts: dict[str, Any]) -> dict[str, Any]:
    row = {
        "delivery_unit": unit,
        "quarter": quarter,
        "volume": counts.get("volume") or 0,
        "closed_in_5_days": counts.get("closed_in_5_days") or 0,
    }
    return with_percentages(row, "volume", ("closed_in_5_days",))
