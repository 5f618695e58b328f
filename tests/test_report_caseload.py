"""Status, members and feedback, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from mailbridge.reports.caseload import feedback, members, status_summary
from mailbridge.reports.definitions import Bands, Period
from tests.test_report_support import CAL, case, london, row, run, store

NOW = london(2026, 12, 10, 12)  # Thursday


def test_status_sorts_cases_into_in_action_actioned_closed_and_open_with_members(engine):
    received = london(2026, 12, 1, 10)
    statuses = [
        "triage",
        "awaiting_response",
        "escalated",
        "delay_advised",
        "work_scheduled",
        "clarification",
        "resolved",
        "resolved",
        "closed",
    ]
    store(
        engine,
        *(
            case(f"ME-2026-{i:05d}", received, status=s, delivery_unit="Highways")
            for i, s in enumerate(statuses, start=1)
        ),
    )
    highways = row(run(engine, status_summary, NOW, None, ["Highways", "Housing"]), "Highways")
    assert highways["in_action"] == 6
    assert highways["actioned_by_services"] == 3
    assert highways["closed_by_members"] == 1
    assert highways["open_with_members"] == 2
    assert highways["total"] == 9


def test_status_averages_working_days_as_the_working_calendar_counts_them(engine):
    # Friday 18 December 2026 at 17:30: after the cut-off, so the clock starts on Monday 21st;
    # Christmas Day and the Boxing Day substitute (Monday 28th) are not working days.
    received = london(2026, 12, 18, 17, 30)
    first_response = london(2026, 12, 22, 9)  # 1 working day
    resolved = london(2026, 12, 29, 15)  # 4 working days (22, 23, 24, 29)
    other = london(2026, 12, 21, 9)
    store(
        engine,
        case(
            "ME-2026-00001",
            received,
            first_response_at=first_response,
            resolved_at=resolved,
            status="resolved",
        ),
        # Answered on the morning the clock started: 0 working days, not -1.
        case("ME-2026-00002", received, first_response_at=other, resolved_at=other),
        case("ME-2026-00003", received),  # no response yet: not in the averages
    )
    assert CAL.working_days_between(received, resolved) == 4
    total = row(run(engine, status_summary, london(2027, 1, 8, 12)), "Total")
    assert total["avg_working_days_to_first_response"] == Decimal("0.5")
    assert total["avg_working_days_to_resolution"] == Decimal("2.0")


def test_only_cases_with_the_service_more_than_5_working_days_past_due_count_as_late(engine):
    # On Thursday 10 December, a case due on Wednesday 2 December is 6 working days past due,
    # one due on Thursday 3 December is 5 (not more).
    store(
        engine,
        case("ME-2026-00001", london(2026, 11, 20, 9), due_at=london(2026, 12, 2, 17)),
        case("ME-2026-00002", london(2026, 11, 20, 9), due_at=london(2026, 12, 3, 17)),
        case(
            "ME-2026-00003",
            london(2026, 11, 20, 9),
            due_at=london(2026, 11, 1, 17),
            status="resolved",
            resolved_at=london(2026, 12, 9, 9),
        ),
    )
    assert row(run(engine, status_summary, NOW), "Total")["past_due_over_5_working_days"] == 1


def test_a_period_selects_cases_by_the_london_date_received(engine):
    store(
        engine,
        case("ME-2026-00001", london(2026, 11, 30, 23, 30)),
        case("ME-2026-00002", london(2026, 12, 1, 0, 0)),
    )
    december = Period("december", date(2026, 12, 1), date(2026, 12, 31))
    assert row(run(engine, status_summary, NOW, december), "Total")["total"] == 1


def test_members_are_banded_with_the_highest_named_and_silent_members_in_the_lowest(engine):
    received = london(2026, 6, 1, 10)
    counts = {"cllr-busy": 70, "cllr-mid": 30, "cllr-quiet": 29}
    rows = []
    for member, n in counts.items():
        rows += [
            case(f"ME-{member}-{i}", received + timedelta(minutes=i), member=member)
            for i in range(n)
        ]
    store(engine, *rows)
    known = {"cllr-busy": ("Cllr Busy", "Abbey"), "cllr-silent": ("Cllr Silent", "Castle")}
    report = run(engine, members, known)
    assert [r["band"] for r in report.rows] == ["0-29", "30-69", "70+", "Total"]
    low = row(report, "0-29")
    assert (low["members"], low["requests"], low["highest_member"]) == (2, 29, "cllr-quiet")
    top = row(report, "Total")
    assert (top["members"], top["requests"]) == (4, 129)
    assert (top["highest_member"], top["highest_requests"]) == ("Cllr Busy", 70)


def test_member_bands_are_configurable_and_can_be_listed_member_by_member(engine):
    store(engine, *(case(f"ME-2026-{i:05d}", london(2026, 6, 1, 10), member="a") for i in range(3)))
    banded = run(engine, members, {}, None, Bands.parse("2,10"))
    assert row(banded, "2-9")["members"] == 1
    detail = run(engine, members, {"b": ("Cllr B", "Ward")}, None, None, True)
    assert [(r["member"], r["requests"]) for r in detail.rows] == [
        ("a", 3),
        ("b", 0),
        ("Total", 3),
    ]


def test_feedback_counts_three_levels_and_rates_them_against_the_responses(engine):
    resolved = london(2026, 6, 10, 10)
    levels = ["satisfied", "satisfied", "partly", "not_satisfied", None, None, None, None]
    store(
        engine,
        *(
            case(
                f"ME-2026-{i:05d}",
                london(2026, 6, 1, 10),
                resolved_at=resolved,
                feedback=level,
                delivery_unit="Housing",
            )
            for i, level in enumerate(levels)
        ),
        case("ME-2026-00100", london(2026, 6, 1, 10), delivery_unit="Housing"),  # unresolved
    )
    housing = row(run(engine, feedback, None, ["Housing"]), "Housing")
    assert (housing["resolved"], housing["responses"]) == (8, 4)
    assert housing["pct_responses"] == Decimal("50.0")
    assert (housing["satisfied"], housing["pct_satisfied"]) == (2, Decimal("50.0"))
    assert (housing["partly"], housing["pct_partly"]) == (1, Decimal("25.0"))
    assert (housing["not_satisfied"], housing["pct_not_satisfied"]) == (1, Decimal("25.0"))
