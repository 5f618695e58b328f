"""The report rules that need no database: quarters, months, bands, percentages, working time."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from mailbridge.reports.definitions import (
    Bands,
    Period,
    financial_quarters,
    months,
    past_due_threshold,
    pct,
)
from mailbridge.reports.workdays import utc_days
from tests.test_report_support import CAL, london

pytestmark = pytest.mark.unit


def test_the_financial_year_starts_in_april_and_q4_is_january_to_march():
    quarters = financial_quarters(2025)
    assert [(q.label, q.first, q.last) for q in quarters] == [
        ("Q1 2025/26", date(2025, 4, 1), date(2025, 6, 30)),
        ("Q2 2025/26", date(2025, 7, 1), date(2025, 9, 30)),
        ("Q3 2025/26", date(2025, 10, 1), date(2025, 12, 31)),
        ("Q4 2025/26", date(2026, 1, 1), date(2026, 3, 31)),
    ]


def test_financial_quarters_stop_at_the_to_date():
    quarters = financial_quarters(2025, to=date(2025, 11, 15))
    assert [q.label for q in quarters] == ["Q1 2025/26", "Q2 2025/26", "Q3 2025/26"]
    assert quarters[-1].last == date(2025, 11, 15)
    assert financial_quarters(2025, to=date(2025, 3, 31)) == []
    assert financial_quarters(1999)[3].label == "Q4 1999/00"


def test_months_cover_the_range_and_are_cut_at_its_ends():
    assert [(m.label, m.first, m.last) for m in months(date(2025, 11, 15), date(2026, 1, 10))] == [
        ("2025-11", date(2025, 11, 15), date(2025, 11, 30)),
        ("2025-12", date(2025, 12, 1), date(2025, 12, 31)),
        ("2026-01", date(2026, 1, 1), date(2026, 1, 10)),
    ]


def test_a_period_cannot_end_before_it_starts():
    with pytest.raises(ValueError):
        Period("x", date(2026, 2, 1), date(2026, 1, 31))


@pytest.mark.parametrize(
    ("requests", "band"), [(0, "0-29"), (29, "0-29"), (30, "30-69"), (69, "30-69"), (70, "70+")]
)
def test_members_fall_in_the_default_bands_at_their_edges(requests, band):
    assert Bands().label(requests) == band


@pytest.mark.parametrize("text", ["30,70", "0,30,70", "0-29,30-69,70+", " 0-29, 30-69, 70+ "])
def test_bands_can_be_written_as_bounds_or_labels(text):
    assert Bands.parse(text) == Bands((0, 30, 70))


def test_bands_must_rise():
    with pytest.raises(ValueError):
        Bands.parse("70,30")
    with pytest.raises(ValueError):
        Bands.parse("ten")
    assert Bands.parse("20,50,100").labels == ["0-19", "20-49", "50-99", "100+"]


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        (1, 3, "33.3"),
        (2, 3, "66.7"),
        (1, 8, "12.5"),
        (1, 16, "6.3"),  # 6.25: halves round up, as on paper (banker's rounding gives 6.2)
        (7, 7, "100.0"),
        (0, 7, "0.0"),
    ],
)
def test_percentages_have_one_decimal_place_and_round_halves_up(part, whole, expected):
    assert pct(part, whole) == Decimal(expected)


def test_a_percentage_of_nothing_is_empty_not_zero():
    assert pct(0, 0) is None


def test_working_time_leaves_out_evenings_only_on_non_working_days():
    friday_4pm, monday_10am = london(2026, 11, 27, 16), london(2026, 11, 30, 10)
    assert CAL.working_seconds_between(friday_4pm, monday_10am) == 18 * 3600


def test_working_time_skips_bank_holidays():
    # Thursday 24 December 16:00 to Tuesday 29 December 09:00: Christmas Day (Friday), the
    # weekend and the Boxing Day substitute (Monday 28th) do not count.
    start, end = london(2026, 12, 24, 16), london(2026, 12, 29, 9)
    assert CAL.working_seconds_between(start, end) == (8 + 9) * 3600
    assert CAL.working_seconds_between(end, start) == 0


@pytest.mark.parametrize(
    ("today", "threshold"),
    [
        # Thursday 3 December: five working days back is Thursday 26 November, so a case
        # due on Wednesday 25 November or earlier is more than 5 working days past due.
        (date(2026, 12, 3), london(2026, 11, 26)),
        # On Saturday 5 December, the last working day (Friday 4th) counts as today.
        (date(2026, 12, 5), london(2026, 11, 27)),
        # Tuesday 29 December: the 25th and 28th are bank holidays.
        (date(2026, 12, 29), london(2026, 12, 18)),
    ],
)
def test_more_than_five_working_days_past_due_starts_at_the_sixth(today, threshold):
    assert past_due_threshold(CAL, today, 5) == threshold


def _lookup(days, moment: datetime) -> tuple[int, int]:
    day = next(d for d in days if d.day == moment.date())
    naive = moment.replace(tzinfo=None)
    i = next((k for k, p in enumerate(day.breaks) if naive < p), len(day.breaks))
    return day.day_ords[i], day.start_ords[i]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (london(2026, 3, 27, 16, 59), london(2026, 3, 30, 9)),  # the clocks go forward
        (london(2026, 3, 27, 17, 0), london(2026, 3, 30, 9)),  # received at the cut-off
        (london(2026, 10, 23, 16, 30), london(2026, 10, 26, 0, 30)),  # and back
        (london(2026, 12, 24, 18), london(2026, 12, 29, 23, 59)),  # Christmas
        (london(2026, 12, 26, 10), london(2026, 12, 26, 11)),  # answered on a holiday
    ],
)
def test_the_sql_calendar_counts_working_days_as_the_working_calendar_does(start, end):
    days = utc_days(CAL, date(2026, 3, 1), date(2027, 1, 31))
    expected = CAL.working_days_between(start, end)
    assert max(0, _lookup(days, end)[0] - _lookup(days, start)[1]) == expected


def test_the_sql_calendar_agrees_with_the_working_calendar_on_random_times():
    days = utc_days(CAL, date(2025, 12, 1), date(2027, 3, 1))
    rnd = random.Random(6)
    for _ in range(3000):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rnd.randrange(525_600))
        end = start + timedelta(minutes=rnd.randrange(30 * 1440))
        expected = CAL.working_days_between(start, end)
        assert max(0, _lookup(days, end)[0] - _lookup(days, start)[1]) == expected, (start, end)
