"""Routing and chasing, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from mailbridge.reports.routing import routing
from tests.test_report_support import case, london, row, run, store

RECEIVED = london(2026, 6, 1, 10)  # Monday
NOW = london(2026, 7, 1, 12)


def routed(ref: str, first: str, now: str, reroutes: int, **fields):
    return case(
        ref,
        RECEIVED,
        first_delivery_unit=first,
        delivery_unit=now,
        first_assigned_at=RECEIVED,
        reroutes=reroutes,
        **fields,
    )


def test_first_time_right_counts_cases_never_rerouted_after_their_first_assignment(engine):
    store(
        engine,
        routed("ME-2026-00001", "Highways", "Highways", 0),
        routed("ME-2026-00002", "Highways", "Highways", 0),
        routed("ME-2026-00003", "Highways", "Street Scene", 1, misroute_flag_seconds=3600),
        routed("ME-2026-00004", "Highways", "Parks", 2, misroute_flag_seconds=7200),
    )
    report = run(engine, routing, NOW)
    highways = row(report, "Highways")
    assert (highways["assigned_first"], highways["first_time_right"]) == (4, 2)
    assert highways["pct_first_time_right"] == Decimal("50.0")
    assert (highways["rerouted"], highways["reroutes"]) == (2, 3)
    assert highways["median_hours_to_flag_misroute"] == Decimal("1.5")  # (1 h + 2 h) / 2
    assert row(report, "Street Scene")["cases"] == 1
    assert row(report, "Street Scene")["assigned_first"] == 0


def test_the_median_misroute_flag_time_is_the_middle_one(engine):
    store(
        engine,
        *(
            routed(f"ME-2026-{i:05d}", "Parks", "Highways", 1, misroute_flag_seconds=hours * 3600)
            for i, hours in enumerate([1, 2, 30])
        ),
    )
    report = run(engine, routing, NOW)
    assert row(report, "Parks")["median_hours_to_flag_misroute"] == Decimal("2.0")
    assert row(report, "Total")["median_hours_to_flag_misroute"] == Decimal("2.0")


def test_imported_history_without_routing_is_left_out_rather_than_counted_right(engine):
    store(
        engine,
        routed("ME-2026-00001", "Highways", "Highways", 1),
        case(
            "ME-2019-00001",
            RECEIVED,
            origin="imported",
            delivery_unit="Highways",
            reroutes=None,
            chasers_sent=None,
            escalations=None,
        ),
    )
    highways = row(run(engine, routing, NOW), "Highways")
    assert (highways["assigned_first"], highways["first_time_right"]) == (1, 0)
    assert highways["cases"] == 2  # both are Highways' cases


def test_chasers_per_case_skip_cases_whose_chasers_were_never_recorded(engine):
    store(
        engine,
        case("ME-2026-00001", RECEIVED, delivery_unit="Housing", chasers_sent=3, escalations=1),
        case("ME-2026-00002", RECEIVED, delivery_unit="Housing", chasers_sent=0, escalations=0),
        case(
            "ME-2019-00001", RECEIVED, delivery_unit="Housing", chasers_sent=None, escalations=None
        ),
    )
    housing = row(run(engine, routing, NOW), "Housing")
    assert housing["chasers_per_case"] == Decimal("1.5")
    assert housing["escalations_per_case"] == Decimal("0.5")


def test_days_to_close_are_working_days_from_received_to_closed(engine):
    store(
        engine,
        # Monday 1 June to Monday 8 June: 5 working days.
        case("ME-2026-00001", RECEIVED, delivery_unit="Parks", closed_at=london(2026, 6, 8, 9)),
        # Closed the day it came in: 0.
        case("ME-2026-00002", RECEIVED, delivery_unit="Parks", closed_at=london(2026, 6, 1, 15)),
        case("ME-2026-00003", RECEIVED, delivery_unit="Parks"),  # open: not counted
    )
    assert row(run(engine, routing, NOW), "Parks")["avg_working_days_to_close"] == Decimal("2.5")
