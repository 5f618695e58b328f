"""The per-DU working-day figures the status and routing reports share, in one pass over cases.

Per (DU, status): the number of cases, and the sum and count of working days from received to
first response, to resolution and to close, of chasers and of escalations. Each report asks
for the spans it shows; the pack asks once for all of them and hands the result to both, so
a committee pack scans the cases and looks their times up in the calendar once, not twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports.definitions import Period
from mailbridge.reports.report import CASE, C, counted, in_period
from mailbridge.reports.workdays import working_days

SPANS = {"first": C.first_response_at, "resolved": C.resolved_at, "closed": C.closed_at}
Measures = dict[tuple[str | None, str], dict[str, Any]]  # (DU, status) -> figures


def unit_measures(
    conn: Connection,
    calendar: WorkingCalendar,
    now: datetime,
    period: Period | None = None,
    spans: Iterable[str] = tuple(SPANS),
) -> Measures:
    """Figures keyed `cases`, `chasers`/`n_chasers`, `escalations`/`n_escalations` and, for
    each span asked for, `to_<span>` (working days, summed) and `n_<span>` (cases counted)."""
    where = in_period(calendar, period)
    earliest = conn.execute(select(func.min(C.received_at)).where(counted(*where))).scalar()
    if earliest is None:
        return {}
    with working_days(conn, calendar, earliest, now) as wd:
        received = wd.at(C.received_at)
        points = {name: wd.at(SPANS[name]) for name in spans}
        columns = [
            C.delivery_unit,
            C.status,
            func.count().label("cases"),
            func.sum(C.chasers_sent).label("chasers"),
            func.count(C.chasers_sent).label("n_chasers"),
            func.sum(C.escalations).label("escalations"),
            func.count(C.escalations).label("n_escalations"),
        ]
        for name, point in points.items():
            columns.append(func.sum(wd.between(received, point)).label(f"to_{name}"))
            columns.append(func.count(SPANS[name]).label(f"n_{name}"))
        stmt = (
            select(*columns)
            .select_from(wd.join(CASE, received, *points.values()))
            .where(counted(*where))
            .group_by(C.delivery_unit, C.status)
        )
        return {
            (row["delivery_unit"], row["status"]): dict(row)
            for row in conn.execute(stmt).mappings()
        }
