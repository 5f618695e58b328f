"""Where the cases are: the status summary, members' caseloads and the members' feedback.

    in action             with the service: every status before `resolved` (triage,
                          awaiting response, escalated, delay advised, work scheduled,
                          member asked for clarification)
    actioned by services  the service's full response has gone: `resolved` or `closed`, of which
      closed by members     `closed` (by the member, or auto-closed after no reply)
      open with members     `resolved`: answered, waiting for the member to close it

A period (--from/--to) selects cases by the local date they were received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports.definitions import TOTAL, Bands, Period, one_place, past_due_threshold
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
from mailbridge.store.models import OPEN_STATUSES
from mailbridge.store.models import MemberRecord as _MemberRecord

IN_ACTION = OPEN_STATUSES
PAST_DUE_DAYS = 5
STATUS_COLUMNS = (
    "delivery_unit",
    "in_action",
    "actioned_by_services",
    "closed_by_members",
    "open_with_members",
    "total",
    "avg_working_days_to_first_response",
    "avg_working_days_to_resolution",
    "past_due_over_5_working_days",
)
_STATUS_SUMS = ("to_first", "n_first", "to_resolved", "n_resolved")
MEMBER_COLUMNS = ("band", "members", "requests", "highest_member", "highest_requests")
MEMBER_DETAIL_COLUMNS = ("member", "name", "ward", "requests", "band")
FEEDBACK_COLUMNS = (
    "delivery_unit",
    "resolved",
    "responses",
    "pct_responses",
    "satisfied",
    "pct_satisfied",
    "partly",
    "pct_partly",
    "not_satisfied",
    "pct_not_satisfied",
)


def status_summary(
    conn: Connection,
    calendar: WorkingCalendar,
    now: datetime,
    period: Period | None = None,
    units: Sequence[str] = (),
    measures: Measures | None = None,
) -> Report:
    """Cases by where they are now, the average working days to respond, and the late ones.

    `measures` (from measures.unit_measures, with the first and resolved spans) saves the
    pass over the cases when the caller already has them.
    """
    where = in_period(calendar, period)
    if measures is None:
        measures = unit_measures(conn, calendar, now, period, ("first", "resolved"))
    groups: dict[str, dict[str, Any]] = {}
    for (unit, status), figures in measures.items():
        counts = groups.setdefault(unit_name(unit), {})
        add_counts(counts, figures, _STATUS_SUMS)
        add_counts(counts, {_status_column(status): figures["cases"]}, STATUS_COLUMNS[1:5])
    threshold = past_due_threshold(calendar, calendar.local(now).date(), PAST_DUE_DAYS)
    late = (
        select(C.delivery_unit, func.count().label("n"))
        .where(counted(C.status.in_(IN_ACTION), C.due_at < threshold, *where))
        .group_by(C.delivery_unit)
    )
    for row in conn.execute(late).mappings():
        groups.setdefault(unit_name(row["delivery_unit"]), {})["late"] = row["n"]

    rows, total = [], {"delivery_unit": TOTAL}
    for unit in [*unit_order([*units, *groups]), TOTAL]:
        counts = total if unit == TOTAL else groups.get(unit, {})
        row = {"delivery_unit": unit, **{c: counts.get(c) or 0 for c in STATUS_COLUMNS[1:6]}}
        row["actioned_by_services"] = row["closed_by_members"] + row["open_with_members"]
        row["total"] = row["in_action"] + row["actioned_by_services"]
        row["avg_working_days_to_first_response"] = _average(counts, "to_first", "n_first")
        row["avg_working_days_to_resolution"] = _average(counts, "to_resolved", "n_resolved")
        row["past_due_over_5_working_days"] = counts.get("late") or 0
        if unit != TOTAL:
            add_counts(total, counts, (*_STATUS_SUMS, *STATUS_COLUMNS[1:5], "late"))
        rows.append(row)
    return Report(
        "status",
        period_title(f"Status of enquiries at {calendar.local(now):%d %b %Y %H:%M}", period),
        STATUS_COLUMNS,
        tuple(rows),
        notes=(
            "in_action: every status before resolved; actioned_by_services = closed_by_members"
            " (closed) + open_with_members (resolved, not yet closed).",
        ),
    )


def _status_column(status: str) -> str:
    if status == "closed":
        return "closed_by_members"
    if status == "resolved":
        return "open_with_members"
    return "in_action"


def _average(counts: Mapping[str, Any], total: str, n: str) -> Any:
    return one_place(counts[total] / counts[n]) if counts.get(n) else None


def members(
    conn: Connection,
    calendar: WorkingCalendar,
    known: Mapping[str, tuple[str, str]],
    period: Period | None = None,
    bands: Bands | None = None,
    detail: bool = False,
) -> Report:
    """Requests per member, banded, with the highest; `known` maps member id -> (name, ward).

    Members in `known` (the directory) who made no request count in the lowest band.
    """
    bands = bands or Bands()
    stmt = (
        select(C.member, func.count().label("n"))
        .where(counted(C.member.is_not(None), *in_period(calendar, period)))
        .group_by(C.member)
    )
    requests = {member: 0 for member in known}
    requests.update({row.member: row.n for row in conn.execute(stmt)})
    names = {**_historical_names(conn, requests), **known}
    title = period_title("Requests per member", period)
    if detail:
        rows = [
            {
                "member": m,
                "name": names.get(m, (m, ""))[0],
                "ward": names.get(m, (m, ""))[1],
                "requests": n,
                "band": bands.label(n),
            }
            for m, n in sorted(requests.items(), key=lambda kv: (-kv[1], kv[0].casefold()))
        ]
        total = {"member": TOTAL, "requests": sum(requests.values())}
        return Report("members", title, MEMBER_DETAIL_COLUMNS, (*rows, total))
    rows = []
    for label in bands.labels:
        in_band = {m: n for m, n in requests.items() if bands.label(n) == label}
        rows.append({"band": label, **_band_figures(in_band, names)})
    rows.append({"band": TOTAL, **_band_figures(requests, names)})
    return Report(
        "members",
        title,
        MEMBER_COLUMNS,
        tuple(rows),
        notes=("highest_member: the member (or members, if tied) with the most requests.",),
    )


def _band_figures(requests: Mapping[str, int], names: Mapping[str, tuple[str, str]]) -> dict:
    top = max(requests.values(), default=0)
    leaders = sorted((m for m, n in requests.items() if n == top and top), key=str.casefold)
    return {
        "members": len(requests),
        "requests": sum(requests.values()),
        "highest_member": "; ".join(names.get(m, (m, ""))[0] for m in leaders) or None,
        "highest_requests": top if leaders else None,
    }


def _historical_names(conn: Connection, ids: Mapping[str, int]) -> dict[str, tuple[str, str]]:
    table = _MemberRecord.__table__
    rows = conn.execute(select(table.c.id, table.c.name, table.c.ward)).all()
    return {r.id: (r.name or r.id, r.ward) for r in rows if r.id in ids}


def feedback(
    conn: Connection,
    calendar: WorkingCalendar,
    period: Period | None = None,
    units: Sequence[str] = (),
) -> Report:
    """The members' three-level feedback on resolved cases, by DU: counts and rates."""

    def given(value: str) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((C.feedback == value, 1), else_=0)), 0)

    stmt = (
        select(
            C.delivery_unit,
            func.count().label("resolved"),
            func.count(C.feedback).label("responses"),
            given("satisfied").label("satisfied"),
            given("partly").label("partly"),
            given("not_satisfied").label("not_satisfied"),
        )
        .where(counted(C.resolved_at.is_not(None), *in_period(calendar, period)))
        .group_by(C.delivery_unit)
    )
    keys = ("resolved", "responses", "satisfied", "partly", "not_satisfied")
    found: dict[str, dict[str, Any]] = {}
    for row in conn.execute(stmt).mappings():
        add_counts(found.setdefault(unit_name(row["delivery_unit"]), {}), row, keys)
    rows, total = [], {}
    for unit in unit_order([*units, *found]):
        counts = found.get(unit, {})
        add_counts(total, counts, keys)
        rows.append(_feedback_row(unit, counts, keys))
    rows.append(_feedback_row(TOTAL, total, keys))
    return Report(
        "feedback",
        period_title("Members' feedback on resolved enquiries", period),
        FEEDBACK_COLUMNS,
        tuple(rows),
        notes=("pct_responses is of resolved cases; the other rates are of responses.",),
    )


def _feedback_row(unit: str, counts: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    row = {"delivery_unit": unit, **{k: counts.get(k) or 0 for k in keys}}
    with_percentages(row, "resolved", ("responses",))
    return with_percentages(row, "responses", ("satisfied", "partly", "not_satisfied"))
