"""The working-day calendar behind due dates: weekends, bank holidays, cut-off, clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from mailbridge.cases.calendar import WorkingCalendar

pytestmark = pytest.mark.unit
CAL = WorkingCalendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # "by Friday 4 December": a Friday morning enquiry is due a week later.
        (utc(2026, 11, 27, 10, 0), utc(2026, 12, 4, 17, 0)),
        # Thursday 17 December: Christmas Day falls after the due date.
        (utc(2026, 12, 17, 10, 0), utc(2026, 12, 24, 17, 0)),
        # After the cut-off on Friday 18 December the clock starts on Monday 21st, and
        # Christmas Day (Fri 25) and the Boxing Day substitute (Mon 28) are skipped.
        (utc(2026, 12, 18, 17, 30), utc(2026, 12, 30, 17, 0)),
        # A Saturday enquiry starts on Monday.
        (utc(2026, 11, 28, 11, 0), utc(2026, 12, 7, 17, 0)),
        # New Year's Day 2027 is a Friday.
        (utc(2026, 12, 29, 9, 0), utc(2027, 1, 6, 17, 0)),
        # Summer time: 17:00 in London is 16:00 UTC.
        (utc(2026, 7, 1, 8, 0), utc(2026, 7, 8, 16, 0)),
        # The clocks go back on Sunday 25 October 2026: received in BST, due in GMT.
        (utc(2026, 10, 22, 9, 0), utc(2026, 10, 29, 17, 0)),
        # Easter 2027: Good Friday 26 March and Easter Monday 29 March.
        (utc(2027, 3, 24, 9, 0), utc(2027, 4, 2, 16, 0)),
    ],
)
def test_due_is_five_working_days_after_the_clock_starts(received, due):
    assert CAL.due_at(received, 5) == due


def test_just_before_the_cut_off_counts_today_and_on_it_counts_tomorrow():
    before = utc(2026, 11, 23, 16, 59)  # 16:59 GMT on Monday
    at = utc(2026, 11, 23, 17, 0)
    assert CAL.clock_start(before) == date(2026, 11, 23)
    assert CAL.clock_start(at) == date(2026, 11, 24)


def test_closure_days_and_a_custom_cut_off_are_honoured():
    cal = WorkingCalendar(cutoff=time(16, 0), closure_days=frozenset({date(2026, 12, 24)}))
    assert cal.clock_start(utc(2026, 12, 23, 16, 30)) == date(2026, 12, 29)
    assert not cal.is_working_day(date(2026, 12, 24))


def test_working_days_between_counts_only_working_days():
    assert CAL.working_days_between(utc(2026, 12, 23, 9, 0), utc(2026, 12, 30, 12, 0)) == 3
    assert CAL.working_days_between(utc(2026, 11, 23, 9, 0), utc(2026, 11, 23, 15, 0)) == 0
