"""The working-day calendar: Monday–Friday, minus England and Wales bank holidays, minus closures.

Pure: every function is handed the time. Times are stored in UTC and converted to the
council's zone (Europe/London) only here, so a clock change never moves a deadline.
A message received after the daily cut-off, or on a non-working day, starts the clock on the
next working day; the due time is the cut-off on the last working day of the allowance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

from mailbridge.config import ClockSettings


@dataclass(frozen=True)
class WorkingCalendar:
    timezone: str = "Europe/London"
    cutoff: time = time(17, 0)
    closure_days: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, clock: ClockSettings) -> WorkingCalendar:
        return cls(
            timezone=clock.timezone, cutoff=clock.cutoff, closure_days=frozenset(clock.closure_days)
        )

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _bank_holidays(self) -> holidays.HolidayBase:
        # subdiv="ENG" matters: without it Easter Monday and the August holiday are missing.
        # England and Wales share their bank holidays; expand=True fills years on demand.
        return holidays.country_holidays("GB", subdiv="ENG")

    @cached_property
    def _answers(self) -> dict[date, bool]:
        return {}  # memo: the holidays look-up is slow and the same few days recur

    @cached_property
    def _sums(self) -> dict[tuple[date, int], date]:
        return {}  # memo for add_working_days: a sweep asks the same (day, n) of many cases

    @cached_property
    def _cutoffs(self) -> dict[date, datetime]:
        return {}  # memo for at_cutoff: zoneinfo arithmetic is slow next to a dict look-up

    def is_working_day(self, day: date) -> bool:
        answer = self._answers.get(day)
        if answer is None:
            answer = self._answers[day] = (
                day.weekday() < 5
                and day not in self._bank_holidays
                and day not in self.closure_days
            )
        return answer

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day after `day` (n >= 0; n == 0 gives `day` itself)."""
        answer = self._sums.get((day, n))
        if answer is None:
            answer = day
            for _ in range(n):
                answer = self.next_working_day(answer)
            self._sums[(day, n)] = answer
        return answer

    def previous_working_day(self, day: date) -> date:
        """The last working day strictly before `day`: "the working day before" a date."""
        day -= timedelta(days=1)
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def working_day_on_or_after(self, day: date) -> date:
        """`day` itself if it is a working day, else the next one: when a date can be acted on."""
        return day if self.is_working_day(day) else self.next_working_day(day)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def clock_start(self, received: datetime) -> date:
        """The working day the clock starts on for a message received at `received`."""
        local = self.local(received)
        day = local.date()
        if not self.is_working_day(day) or local.time() >= self.cutoff:
            return self.next_working_day(day)
        return day

    def start_of_day(self, day: date) -> datetime:
        """Local midnight at the start of `day`, as a UTC instant."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def working_seconds_between(self, start: datetime, end: datetime) -> int:
        """Seconds of [start, end) that fall on working days, in local time.

        The measure behind "time for an officer to flag a misroute" (Case.misroute_flag_seconds):
        an evening, weekend or bank holiday does not count against the officer, so a case sent
        at 16:00 on Friday and flagged at 10:00 on Monday took 18 working hours.
        """
        total = 0
        day, last = self.local(start).date(), self.local(end).date()
        while start < end and day <= last:
            if self.is_working_day(day):
                lo = max(start, self.start_of_day(day))
                hi = min(end, self.start_of_day(day + timedelta(days=1)))
                total += max(0, int((hi - lo).total_seconds()))
            day += timedelta(days=1)
        return total

    def at_cutoff(self, day: date) -> datetime:
        """The cut-off time on `day`, in UTC (zoneinfo resolves BST/GMT for that date)."""
        answer = self._cutoffs.get(day)
        if answer is None:
            answer = datetime.combine(day, self.cutoff, tzinfo=self.zone).astimezone(UTC)
            self._cutoffs[day] = answer
        return answer

    def due_at(self, received: datetime, working_days: int) -> datetime:
        """Received + N working days, at the cut-off of that day.

        Also "working day N of the case": the clock's actions for a day fall due at its
        cut-off, when that day's time is up (a chaser on day 3, an escalation on day 5).
        """
        return self.at_cutoff(self.add_working_days(self.clock_start(received), working_days))

    def local_at(self, day: date, at: time) -> datetime:
        """A local wall-clock time on `day` (e.g. the Monday 08:00 digest), in UTC."""
        return datetime.combine(day, at, tzinfo=self.zone).astimezone(UTC)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Whole working days from the clock start of `start` to the local date of `end`."""
        first = self.clock_start(start)
        last = self.local(end).date()
        count, day = 0, first
        while day < last:
            day = self.next_working_day(day)
            if day <= last:
                count += 1
        return count
