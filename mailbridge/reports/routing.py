"""Routing: was the case sent to the right DU first time, how fast officers flagged it when not,
and what chasing and closing cost, by DU.

    first time right   routed cases never rerouted after their first assignment
                       (by the DU the case was first sent to)
    rerouted, reroutes cases first sent to the DU and later sent on, and how many times
    median hours to flag a misroute
                       working hours from first assignment to the officer's #wrong-service
                       (Case.misroute_flag_seconds), median per first DU and overall
    chasers / escalations per case, and average working days from received to closed
                       by the DU that has the case now

A case counts for routing only when its routing was recorded (a first DU and a reroute
count): history imported from a CRM that never recorded misroutes is left out rather than
counted as right first time. Likewise chasers per case skips cases whose count is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports.definitions import TOTAL, Period, one_place
from mailbridge.reports.measures import Measures, unit_measures
from mailbridge.reports.report import (
    C,
    Report,
    add_counts,
    counted,
    in_period,
    period_title,
    unit_name,
    unit_order,
    with_percentages,
)

ROUTING_COLUMNS = (
    "delivery_unit",
    "assigned_first",
    "first_time_right",
    "pct_first_time_right",
    "rerouted",
    "reroutes",
    "median_hours_to_flag_misroute",
    "cases",
    "chasers_per_case",
    "escalations_per_case",
    "avg_working_days_to_close",
)
_FIRST = ("assigned_first", "first_time_right", "rerouted", "reroutes")
_NOW = ("cases", "chasers", "n_chasers", "escalations", "n_escalations", "to_closed", "n_closed")


def _sum_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def routing(
    conn: Connection,
    calendar: WorkingCalendar,
    now: datetime,
    period: Period | None = None,
    units: Sequence[str] = (),
    measures: Measures | None = None,
) -> Report:
    """The routing table; `measures` (with the closed span) as for caseload.status_summary."""
    where = in_period(calendar, period)
    groups: dict[str, dict[str, Any]] = {}
    routed = counted(C.first_delivery_unit.is_not(None), C.reroutes.is_not(None), *where)
    first = (
        select(
            C.first_delivery_unit,
            func.count().label("assigned_first"),
            _sum_if(C.reroutes == 0).label("first_time_right"),
            _sum_if(C.reroutes > 0).label("rerouted"),
            func.coalesce(func.sum(C.reroutes), 0).label("reroutes"),
        )
        .where(routed)
        .group_by(C.first_delivery_unit)
    )
    for row in conn.execute(first).mappings():
        add_counts(groups.setdefault(unit_name(row["first_delivery_unit"]), {}), row, _FIRST)
    flagged = counted(C.first_delivery_unit.is_not(None), C.misroute_flag_seconds.is_not(None))
    medians = _medians(conn, flagged, where)
    for unit, seconds in medians.items():
        if unit != TOTAL:
            groups.setdefault(unit, {})["median"] = seconds

    if measures is None:
        measures = unit_measures(conn, calendar, now, period, ("closed",))
    for (unit, _), figures in measures.items():
        add_counts(groups.setdefault(unit_name(unit), {}), figures, _NOW)

    rows, total = [], {}
    for unit in unit_order([*units, *groups]):
        counts = groups.get(unit, {})
        add_counts(total, counts, (*_FIRST, *_NOW))
        rows.append(_row(unit, counts))
    total["median"] = medians.get(TOTAL)
    rows.append(_row(TOTAL, total))
    return Report(
        "routing", period_title("Routing and chasing", period), ROUTING_COLUMNS, tuple(rows)
    )


def _row(unit: str, counts: dict[str, Any]) -> dict[str, Any]:
    row = {"delivery_unit": unit, **{k: counts.get(k) or 0 for k in (*_FIRST, "cases")}}
    with_percentages(row, "assigned_first", ("first_time_right",))
    median = counts.get("median")
    row["median_hours_to_flag_misroute"] = None if median is None else one_place(median / 3600)
    for out, total, n in (
        ("chasers_per_case", "chasers", "n_chasers"),
        ("escalations_per_case", "escalations", "n_escalations"),
        ("avg_working_days_to_close", "to_closed", "n_closed"),
    ):
        row[out] = one_place(counts[total] / counts[n]) if counts.get(n) else None
    return row


def _medians(
    conn: Connection, flagged: ColumnElement[bool], where: list[ColumnElement[bool]]
) -> dict[str, float]:
    """Median misroute-flag time per first DU and overall (key TOTAL), in SQL on both databases.

    Neither SQLite nor (portably) PostgreSQL has MEDIAN: number the values in order within
    each group and average the one or two in the middle.
    """
    out: dict[str, float] = {}
    for partition in (C.first_delivery_unit, None):
        over = {"partition_by": partition} if partition is not None else {}
        ranked = (
            select(
                (partition if partition is not None else C.first_delivery_unit).label("unit"),
                C.misroute_flag_seconds.label("v"),
                func.row_number().over(order_by=C.misroute_flag_seconds, **over).label("rn"),
                func.count().over(**over).label("n"),
            )
            .where(flagged, *where)
            .subquery()
        )
        middle = ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2])
        if partition is not None:
            stmt = select(ranked.c.unit, func.avg(ranked.c.v)).where(middle).group_by(ranked.c.unit)
            out.update({unit_name(u): float(v) for u, v in conn.execute(stmt)})
        else:
            value = conn.execute(select(func.avg(ranked.c.v)).where(middle)).scalar()
            if value is not None:
                out[TOTAL] = float(value)
    return out
