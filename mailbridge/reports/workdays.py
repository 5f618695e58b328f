"""Working days in SQL: a small calendar the report queries look case times up in.

"Working days from received to resolved" is `WorkingCalendar.working_days_between`: the
working days after the clock starts, up to the local date of the end. Calling it per case is
a Python loop over a million rows; asking SQL for the local date is impossible on SQLite (no
time zones). Instead every *UTC date* in the range gets one row holding working-day ordinals
(how many working days have begun since the range started):

    day         the UTC date a case time falls on
    p1..p3      the instants within that day where something changes: local midnight (the
                local date turns) and the local cut-off (the clock start moves on); London
                has at most two, any zone at most three; unused ones are the next UTC midnight
    d0..d3      the ordinal of the local date in each of the segments the p's cut the day into
    s0..s3      the ordinal of the day the clock would start on for a message received then

so working_days_between(a, b) = max(0, d(b) - s(a)), exactly. Per case that is one look-up
by day and a CASE comparing the case's own timestamp with the day's instants: no time-zone or
time-of-day arithmetic per row. About 365 rows a year, derived from the WorkingCalendar on
every run, so the reports can never disagree with the clock the daemon runs on.

How the look-up is done differs, because each database is fast at a different thing:

- SQLite: a temporary table keyed by the first ten characters of the stored UTC string
  ('YYYY-MM-DD'), joined with LEFT JOIN, which also makes the case table the outer loop.
- PostgreSQL: the columns are array parameters of a one-row subquery, subscripted by
  (UTC date - first date). A join against `unnest()` or a temporary table was measured
  slower: the planner cannot know there is one calendar row per day, over-estimates the join
  by six orders of magnitude, spills merge-join sorts to disk and JIT-compiles for two
  seconds; a temporary table also forbids a parallel scan. Subscripts need no estimate.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    FromClause,
    Integer,
    MetaData,
    Table,
    bindparam,
    case,
    cast,
    func,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from mailbridge.cases.calendar import WorkingCalendar

BREAKS = 3  # breakpoints per UTC day the calendar can hold
BREAKPOINTS = tuple(f"p{i}" for i in range(1, BREAKS + 1))
ORDINALS = tuple(f"{kind}{i}" for kind in "ds" for i in range(BREAKS + 1))
COLUMNS = ("day", *BREAKPOINTS, *ORDINALS)
_TEMP = "mb_report_workdays"


@dataclass(frozen=True)
class UtcDay:
    day: date
    breaks: tuple[datetime, ...]  # BREAKS instants (naive UTC, as SQLite stores them)
    day_ords: tuple[int, ...]  # BREAKS + 1 entries
    start_ords: tuple[int, ...]

    def row(self, aware: bool = False) -> dict[str, object]:
        out: dict[str, object] = {"day": self.day}
        out.update(
            {f"p{i + 1}": p.replace(tzinfo=UTC) if aware else p for i, p in enumerate(self.breaks)}
        )
        out.update({f"d{i}": v for i, v in enumerate(self.day_ords)})
        out.update({f"s{i}": v for i, v in enumerate(self.start_ords)})
        return out


@lru_cache(maxsize=8)
def utc_days(calendar: WorkingCalendar, first: date, last: date) -> tuple[UtcDay, ...]:
    """One row per UTC date first..last (pure; the unit tests check it against the calendar).

    Memoised: the pack asks for the same range twice, and building it costs a tenth of a
    second a decade.
    """
    # Every change of (local-date ordinal, clock-start ordinal), in time order. At local
    # midnight the date turns; at the cut-off, or all day on a non-working day, the clock
    # would start on the next working day, whose ordinal is one more.
    changes: list[tuple[datetime, int, int]] = []
    ordinal = 0
    day = first - timedelta(days=2)
    while day <= last + timedelta(days=2):
        working = calendar.is_working_day(day)
        ordinal += working
        changes.append((calendar.start_of_day(day), ordinal, ordinal + (not working)))
        changes.append((calendar.at_cutoff(day), ordinal, ordinal + 1))
        day += timedelta(days=1)
    changes.sort(key=lambda c: c[0])  # stable: a 00:00 cut-off still follows its midnight
    instants = [c[0] for c in changes]

    out: list[UtcDay] = []
    day = first
    while day <= last:
        begin = datetime.combine(day, time(0), tzinfo=UTC)
        end = begin + timedelta(days=1)
        i = bisect_right(instants, begin) - 1
        _, d, s = changes[i]
        breaks: list[datetime] = []
        day_ords, start_ords = [d], [s]
        i += 1
        while i < len(changes) and changes[i][0] < end:
            at, d, s = changes[i]
            i += 1
            if (d, s) == (day_ords[-1], start_ords[-1]):
                continue  # e.g. the cut-off on a Sunday: nothing changes, no CASE branch
            breaks.append(at.replace(tzinfo=None))
            day_ords.append(d)
            start_ords.append(s)
        if len(breaks) > BREAKS:
            raise ValueError(f"{day}: more than {BREAKS} local changes in one UTC day")
        while len(breaks) < BREAKS:
            # Never reached: every time of this UTC day is before the next UTC midnight.
            breaks.append(end.replace(tzinfo=None))
            day_ords.append(day_ords[-1])
            start_ords.append(start_ords[-1])
        out.append(UtcDay(day, tuple(breaks), tuple(day_ords), tuple(start_ords)))
        day += timedelta(days=1)
    return tuple(out)


@dataclass(frozen=True)
class Point:
    """One case time looked up in the calendar: its local-date and clock-start ordinals."""

    day_ord: ColumnElement[int]
    start_ord: ColumnElement[int]
    table: FromClause | None = None  # SQLite: the calendar alias to LEFT JOIN on `on`
    on: ColumnElement[bool] | None = None


class WorkingDays:
    """The calendar for one report run, bound to one connection."""

    def __init__(self, conn: Connection, days: tuple[UtcDay, ...]):
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self.first = days[0].day if days else date.min
        self._n = 0
        rows = [d.row(aware=self.postgres) for d in days]
        self._table: Table | None = None
        self._arrays: FromClause | None = None
        if self.postgres:
            self._arrays = _array_row(rows)
        else:
            self._table = _fill_temp_table(conn, rows)

    def at(self, column: ColumnElement) -> Point:
        """Look `column` (a UTC timestamp) up; join what `join` says before reading it."""
        if self._arrays is not None:
            cal = self._arrays.c
            index = cast(func.timezone("UTC", column), Date) - self.first

            def pick(name: str) -> ColumnElement:
                return cal[name][index]

            on, table = None, None
        else:
            assert self._table is not None
            self._n += 1
            table = self._table.alias(f"wd{self._n}")
            # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: the date is the first ten.
            on = table.c.day == func.substr(column, 1, 10)

            def pick(name: str) -> ColumnElement:
                return table.c[name]

        def segment(kind: str) -> ColumnElement[int]:
            whens = [(column < pick(f"p{i}"), pick(f"{kind}{i - 1}")) for i in range(1, BREAKS + 1)]
            return case(*whens, else_=pick(f"{kind}{BREAKS}"))

        return Point(segment("d"), segment("s"), table, on)

    def join(self, source: FromClause, *points: Point) -> FromClause:
        """`source` with whatever the points need to be read."""
        if self._arrays is not None:
            return source.join(self._arrays, true())
        for point in points:
            assert point.table is not None and point.on is not None
            source = source.outerjoin(point.table, point.on)
        return source

    def between(self, start: Point, end: Point) -> ColumnElement[int]:
        """Working days from the clock start of `start` to the local date of `end`, to SUM.

        Where the end is NULL this is NULL on SQLite but 0 on PostgreSQL (GREATEST skips
        NULLs): harmless in a SUM, so count the cases with COUNT(end column), never with
        COUNT of this. One MAX/GREATEST, not a CASE, so the difference is computed once.
        """
        diff = end.day_ord - start.start_ord
        return func.greatest(diff, 0) if self.postgres else func.max(diff, 0)

    def close(self) -> None:
        if self._table is not None:
            self._table.drop(self.conn, checkfirst=True)


def _array_row(rows: list[dict[str, object]]) -> FromClause:
    """PostgreSQL: one row whose columns are the calendar's columns as 0-based arrays."""
    columns = []
    for name in COLUMNS[1:]:
        element = DateTime(timezone=True) if name in BREAKPOINTS else Integer
        kind = ARRAY(element, zero_indexes=True)
        value = bindparam(f"wd_{name}", [row[name] for row in rows], type_=kind)
        columns.append(cast(value, kind).label(name))
    return select(*columns).subquery("wd")


def _fill_temp_table(conn: Connection, rows: list[dict[str, object]]) -> Table:
    table = Table(
        _TEMP,
        MetaData(),
        Column("day", Date, primary_key=True),
        *(Column(c, DateTime) for c in BREAKPOINTS),
        *(Column(c, Integer) for c in ORDINALS),
        prefixes=["TEMPORARY"],
        sqlite_with_rowid=False,
    )
    table.drop(conn, checkfirst=True)  # left behind by a run that died on this connection
    table.create(conn)
    if rows:
        conn.execute(table.insert(), rows)
    return table


@contextmanager
def working_days(
    conn: Connection, calendar: WorkingCalendar, earliest: datetime, now: datetime
) -> Iterator[WorkingDays]:
    """The calendar for case times from `earliest` to `now`, for the queries inside the block.

    A year to spare after `now`: a time the calendar does not cover would count as 0 days,
    and a report run on a machine whose clock is a little behind the daemon's must not.
    """
    first = earliest.astimezone(UTC).date() - timedelta(days=1)
    last = now.astimezone(UTC).date() + timedelta(days=366)
    wd = WorkingDays(conn, utc_days(calendar, first, last))
    try:
        yield wd
    finally:
        wd.close()
