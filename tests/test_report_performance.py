"""The 5-day tables at their boundaries, on SQLite and PostgreSQL: monthly, quarters, open."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from mailbridge.reports.performance import monthly, open_position, quarters
from tests.test_report_support import CAL, case, london, row, run, store

RECEIVED = london(2026, 11, 23, 10)  # Monday 10:00
DUE = london(2026, 11, 30, 17)  # five working days later, at the cut-off
SECOND = timedelta(seconds=1)


def test_the_due_time_is_received_plus_five_working_days_at_the_cut_off():
    assert CAL.due_at(RECEIVED, 5) == DUE


def _november(engine):
    return run(engine, monthly, date(2026, 11, 1), date(2026, 12, 31), "month")


def test_a_case_resolved_exactly_at_its_due_time_counts_as_closed_in_5_days(engine):
    store(engine, case("ME-2026-00001", RECEIVED, resolved_at=DUE))
    november = row(_november(engine), "2026-11")
    assert (november["items_due"], november["closed_in_5_days"]) == (1, 1)
    assert november["pct_closed_in_5_days"] == Decimal("100.0")


def test_a_case_resolved_a_second_after_its_due_time_is_not_closed_in_5_days(engine):
    store(engine, case("ME-2026-00001", RECEIVED, resolved_at=DUE + SECOND))
    november = row(_november(engine), "2026-11")
    assert (november["closed_in_5_days"], november["not_closed_in_5_days"]) == (0, 1)
    assert november["delay_advised"] == 0


def test_a_delay_advised_at_the_due_time_counts_but_one_after_it_does_not(engine):
    store(
        engine,
        case("ME-2026-00001", RECEIVED, delay_advised_at=DUE),
        case("ME-2026-00002", RECEIVED, delay_advised_at=DUE + SECOND),
        case("ME-2026-00003", RECEIVED, delay_advised_at=DUE - SECOND, resolved_at=DUE + SECOND),
    )
    november = row(_november(engine), "2026-11")
    assert november["items_due"] == 3
    assert november["delay_advised"] == 2  # the first and the third (resolved late)
    assert november["responded_in_5_days"] == 2
    assert november["pct_delay_advised"] == Decimal("66.7")


def test_a_case_closed_in_time_is_not_also_counted_as_delay_advised(engine):
    store(engine, case("ME-2026-00001", RECEIVED, delay_advised_at=DUE - SECOND, resolved_at=DUE))
    november = row(_november(engine), "2026-11")
    assert (november["closed_in_5_days"], november["delay_advised"]) == (1, 0)
    assert november["responded_in_5_days"] == 1


def test_cases_count_in_the_month_of_their_due_date_in_london_time(engine):
    store(
        engine,
        # Received in November, due in December.
        case("ME-2026-00001", london(2026, 11, 27, 10)),
        # Due at 00:30 BST on 1 April (23:30 UTC on 31 March): April, not March.
        case("ME-2026-00002", london(2026, 3, 20, 10), due_at=london(2026, 4, 1, 0, 30)),
    )
    report = run(engine, monthly, date(2026, 3, 1), date(2026, 12, 31), "month")
    assert row(report, "2026-11")["items_due"] == 0
    assert row(report, "2026-12")["items_due"] == 1
    assert row(report, "2026-03")["items_due"] == 0
    assert row(report, "2026-04")["items_due"] == 1
    assert report.rows[-1]["month"] == "Total" and report.rows[-1]["items_due"] == 2


def test_every_month_in_the_range_has_a_row_even_with_nothing_due(engine):
    report = run(engine, monthly, date(2026, 1, 1), date(2026, 3, 31), "month")
    assert [r["month"] for r in report.rows] == ["2026-01", "2026-02", "2026-03", "Total"]
    assert row(report, "Total")["items_due"] == 0
    assert row(report, "Total")["pct_closed_in_5_days"] is None


def test_monthly_by_du_lists_every_known_du_and_unassigned_cases_last(engine):
    store(
        engine,
        case("ME-2026-00001", RECEIVED, delivery_unit="Street Scene", resolved_at=DUE),
        case("ME-2026-00002", RECEIVED, delivery_unit="Highways"),
        case("ME-2026-00003", RECEIVED, delivery_unit=None),
    )
    report = run(
        engine, monthly, date(2026, 11, 1), date(2026, 12, 31), "du", ["Housing", "Highways"]
    )
    assert [r["delivery_unit"] for r in report.rows] == [
        "Highways",
        "Housing",
        "Street Scene",
        "Unassigned",
        "Total",
    ]
    assert row(report, "Street Scene")["closed_in_5_days"] == 1
    assert row(report, "Housing")["items_due"] == 0
    assert row(report, "Total")["items_due"] == 3


def test_cases_that_are_not_members_enquiries_are_not_counted(engine):
    store(engine, case("ME-2026-00001", RECEIVED, kind="not_me"))
    store(engine, case("ME-2026-00002", RECEIVED, kind="service_request"))
    assert row(_november(engine), "Total")["items_due"] == 1


def test_quarters_split_at_the_end_of_march_and_the_end_of_june(engine):
    store(
        engine,
        case("ME-2026-00001", london(2026, 3, 20, 9), due_at=london(2026, 3, 31, 23, 59)),
        case("ME-2026-00002", london(2026, 3, 24, 9), due_at=london(2026, 4, 1, 0, 0)),
        case(
            "ME-2026-00003",
            london(2026, 6, 22, 9),
            due_at=london(2026, 6, 30, 17),
            resolved_at=london(2026, 6, 30, 16),
            delivery_unit="Highways",
        ),
        case("ME-2026-00004", london(2026, 6, 24, 9), due_at=london(2026, 7, 1, 17)),
    )
    last_year = run(engine, quarters, 2025, None, ["Highways"])
    assert row_for(last_year, "Total", "Q4 2025/26")["volume"] == 1
    this_year = run(engine, quarters, 2026, None, ["Highways"])
    assert row_for(this_year, "Unassigned", "Q1 2026/27")["volume"] == 1
    highways = row_for(this_year, "Highways", "Q1 2026/27")
    assert (highways["volume"], highways["closed_in_5_days"]) == (1, 1)
    assert highways["pct_closed_in_5_days"] == Decimal("100.0")
    assert row_for(this_year, "Total", "Q2 2026/27")["volume"] == 1
    year = row_for(this_year, "Total", "2026/27")
    assert (year["volume"], year["closed_in_5_days"]) == (3, 1)
    assert this_year.rows[-1] == year


def test_quarters_to_a_date_leave_out_the_quarters_after_it(engine):
    store(engine, case("ME-2026-00001", london(2026, 6, 24, 9), due_at=london(2026, 7, 1, 17)))
    report = run(engine, quarters, 2026, date(2026, 6, 30))
    assert {r["quarter"] for r in report.rows} == {"Q1 2026/27", "2026/27"}
    assert row_for(report, "Total", "2026/27")["volume"] == 0


def row_for(report, unit, quarter):
    matches = [r for r in report.rows if (r["delivery_unit"], r["quarter"]) == (unit, quarter)]
    assert len(matches) == 1, (unit, quarter)
    return matches[0]


AT = date(2026, 11, 30)


def _open(engine):
    return row(run(engine, open_position, AT), "Total")


def test_a_case_received_on_the_date_is_open_on_it(engine):
    store(engine, case("ME-2026-00001", london(2026, 11, 30, 23, 59)))
    assert _open(engine)["under_10"] == 1


def test_a_case_received_the_day_after_is_not_counted(engine):
    store(engine, case("ME-2026-00001", london(2026, 12, 1, 0, 0)))
    assert _open(engine)["under_10"] == 0


def test_a_case_resolved_on_the_date_is_not_open_but_one_resolved_the_next_day_is(engine):
    store(
        engine,
        case("ME-2026-00001", london(2026, 11, 20, 9), resolved_at=london(2026, 11, 30, 23, 59)),
        case("ME-2026-00002", london(2026, 11, 20, 9), resolved_at=london(2026, 12, 1, 0, 0)),
    )
    assert _open(engine)["d10_19"] == 1


def test_ages_are_calendar_days_since_the_london_date_received(engine):
    ages = {
        "ME-2026-00001": london(2026, 11, 21, 23, 59),  # 9 days
        "ME-2026-00002": london(2026, 11, 20, 0, 0),  # 10 days
        "ME-2026-00003": london(2026, 11, 11, 12),  # 19 days
        "ME-2026-00004": london(2026, 11, 10, 12),  # 20 days
        "ME-2026-00005": london(2026, 11, 1, 0, 30),  # 29 days (23:30 UTC on 31 October)
        "ME-2026-00006": london(2026, 10, 31, 12),  # 30 days
        "ME-2026-00007": london(2026, 10, 22, 12),  # 39 days
        "ME-2026-00008": london(2026, 10, 21, 12),  # 40 days
        "ME-2025-00001": london(2025, 6, 1, 12),  # very old
    }
    store(engine, *(case(ref, at, delivery_unit="Parks") for ref, at in ages.items()))
    parks = row(run(engine, open_position, AT, ["Parks"]), "Parks")
    assert parks == {
        "delivery_unit": "Parks",
        "under_10": 1,
        "d10_19": 2,
        "d20_29": 2,
        "d30_39": 2,
        "d40_plus": 2,
        "total_over_10": 8,
    }
