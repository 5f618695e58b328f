"""The working-day calendar behind due dates: weekends, bank holidays, cut-off, clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.config import load_settings

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


# ----- walking the calendar, as the clock does (mailbridge/schedule) ---------------------------


def working_days(first: date, last: date, cal: WorkingCalendar = CAL) -> list[date]:
    days, day = [], first
    while day <= last:
        if cal.is_working_day(day):
            days.append(day)
        day = date.fromordinal(day.toordinal() + 1)
    return days


def test_christmas_and_new_year_2026_leave_four_working_days_in_a_fortnight():
    assert working_days(date(2026, 12, 21), date(2027, 1, 5)) == [
        date(2026, 12, 21),
        date(2026, 12, 22),
        date(2026, 12, 23),
        date(2026, 12, 24),
        # Fri 25 Christmas Day, Mon 28 the Boxing Day substitute, Fri 1 January
        date(2026, 12, 29),
        date(2026, 12, 30),
        date(2026, 12, 31),
        date(2027, 1, 4),
        date(2027, 1, 5),
    ]


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 12, 17), 3, date(2026, 12, 22)),  # the chaser of a Thursday 17 Dec enquiry
        (date(2026, 12, 17), 5, date(2026, 12, 24)),  # its first escalation
        (date(2026, 12, 24), 2, date(2026, 12, 30)),  # the next, over Christmas
        (date(2026, 12, 30), 2, date(2027, 1, 4)),  # and over New Year's Day
        (date(2027, 3, 25), 1, date(2027, 3, 30)),  # Good Friday and Easter Monday 2027
        (date(2026, 10, 23), 1, date(2026, 10, 26)),  # over the October clock change
        (date(2026, 12, 19), 0, date(2026, 12, 19)),  # n == 0 is the day itself
    ],
)
def test_adding_working_days_skips_weekends_and_bank_holidays(day, n, expected):
    assert CAL.add_working_days(day, n) == expected


@pytest.mark.parametrize(
    ("day", "before"),
    [
        (date(2026, 12, 29), date(2026, 12, 24)),  # the working day before Tue 29 Dec
        (date(2027, 1, 4), date(2026, 12, 31)),
        (date(2027, 3, 30), date(2027, 3, 25)),  # Tuesday after Easter: Maundy Thursday
        (date(2026, 12, 5), date(2026, 12, 4)),  # a Saturday's: the Friday
    ],
)
def test_the_working_day_before_a_date(day, before):
    assert CAL.previous_working_day(day) == before


def test_a_date_on_a_holiday_is_acted_on_the_next_working_day():
    assert CAL.working_day_on_or_after(date(2026, 12, 25)) == date(2026, 12, 29)
    assert CAL.working_day_on_or_after(date(2027, 3, 26)) == date(2027, 3, 30)
    assert CAL.working_day_on_or_after(date(2026, 12, 23)) == date(2026, 12, 23)


def test_the_cut_off_is_local_time_on_both_sides_of_the_october_clock_change():
    assert CAL.at_cutoff(date(2026, 10, 23)) == utc(2026, 10, 23, 16, 0)  # BST
    assert CAL.at_cutoff(date(2026, 10, 26)) == utc(2026, 10, 26, 17, 0)  # GMT
    # the Monday 08:00 digest, either side of the change
    assert CAL.local_at(date(2026, 10, 19), time(8, 0)) == utc(2026, 10, 19, 7, 0)
    assert CAL.local_at(date(2026, 10, 26), time(8, 0)) == utc(2026, 10, 26, 8, 0)


def test_an_enquiry_after_the_cut_off_on_christmas_eve_starts_after_the_holidays():
    assert CAL.clock_start(utc(2026, 12, 24, 17, 1)) == date(2026, 12, 29)
    assert CAL.due_at(utc(2026, 12, 24, 17, 1), 3) == utc(2027, 1, 4, 17, 0)


def test_closure_days_from_the_settings_stop_the_clock(tmp_path):
    config = tmp_path / "mailbridge.toml"
    config.write_text("[clock]\nclosure_days = [2026-12-29, 2026-12-30]\n")
    cal = WorkingCalendar.from_settings(load_settings(config, env={}).clock)
    assert cal.add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 31)
    assert cal.previous_working_day(date(2026, 12, 31)) == date(2026, 12, 24)
    assert cal.due_at(utc(2026, 12, 22, 9, 0), 5) == utc(2027, 1, 5, 17, 0)
