"""The parts of the report definitions that need no database (DESIGN §6, quoted in the README).

Periods are inclusive ranges of council-local dates; a date becomes an instant only at local
midnight, so "received on or before D" means "before midnight at the start of D + 1, London
time", whatever the season.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.store.models import MERGED, SPLIT

TOTAL = "Total"
UNASSIGNED = "Unassigned"  # cases in triage, or imported without a DU
# Not counted: not a Members' Enquiry at all (e.g. a planning objection); the originating case of
# a multi-part enquiry (its parts are counted, each with its own DU and clock); a case merged
# into another (that one is counted).
NOT_COUNTED_KINDS = ("not_me", SPLIT, MERGED)
ONE_PLACE = Decimal("0.1")


@dataclass(frozen=True)
class Period:
    """An inclusive range of local dates with the label it has in a report."""

    label: str
    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"{self.label}: {self.last} is before {self.first}")


def bounds(calendar: WorkingCalendar, period: Period) -> tuple[datetime, datetime]:
    """The half-open UTC interval [start of first day, start of the day after the last)."""
    return calendar.start_of_day(period.first), calendar.start_of_day(
        period.last + timedelta(days=1)
    )


def months(first: date, last: date) -> list[Period]:
    """Every calendar month touching first..last, labelled YYYY-MM and clipped to the range."""
    out: list[Period] = []
    day = first
    while day <= last:
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        out.append(Period(f"{day:%Y-%m}", day, min(last, following - timedelta(days=1))))
        day = following
    return out


def financial_year_label(fy: int) -> str:
    """The UK financial year that starts on 1 April `fy`: 2025 -> "2025/26"."""
    return f"{fy}/{(fy + 1) % 100:02d}"


def financial_quarters(fy: int, to: date | None = None) -> list[Period]:
    """Q1 = April–June of `fy` … Q4 = January–March of fy + 1, cut short at `to` if given."""
    out: list[Period] = []
    for n, month in enumerate((4, 7, 10, 13), start=1):
        first = date(fy + (month - 1) // 12, (month - 1) % 12 + 1, 1)
        after = date(first.year + (first.month + 2) // 12, (first.month + 2) % 12 + 1, 1)
        last = after - timedelta(days=1)
        if to is not None:
            if to < first:
                break
            last = min(last, to)
        out.append(Period(f"Q{n} {financial_year_label(fy)}", first, last))
    return out


# Calendar days since received: (column, lowest age, one past the highest age or None).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("under_10", 0, 10),
    ("d10_19", 10, 20),
    ("d20_29", 20, 30),
    ("d30_39", 30, 40),
    ("d40_plus", 40, None),
)
OVER_10 = "total_over_10"  # 10 days old or more


@dataclass(frozen=True)
class Bands:
    """Bands of requests per member, by their lower bounds: (0, 30, 70) is 0-29, 30-69, 70+."""

    lower: tuple[int, ...] = (0, 30, 70)

    def __post_init__(self) -> None:
        if not self.lower or self.lower[0] != 0 or list(self.lower) != sorted(set(self.lower)):
            raise ValueError("bands must start at 0 and rise, e.g. 0,30,70")

    @classmethod
    def parse(cls, text: str) -> Bands:
        """'30,70' or '0,30,70' (lower bounds) or '0-29,30-69,70+' (labels)."""
        lows: list[int] = []
        for part in text.replace(" ", "").split(","):
            low = part.split("-")[0].rstrip("+")
            if not low.isdigit():
                raise ValueError(f"not a band: {part!r}")
            lows.append(int(low))
        if lows and lows[0] != 0:
            lows.insert(0, 0)
        return cls(tuple(lows))

    @property
    def labels(self) -> list[str]:
        highs = [f"-{n - 1}" for n in self.lower[1:]] + ["+"]
        return [f"{low}{high}" for low, high in zip(self.lower, highs, strict=True)]

    def label(self, requests: int) -> str:
        index = sum(1 for low in self.lower if requests >= low) - 1
        return self.labels[index]


def pct(part: int | None, whole: int | None) -> Decimal | None:
    """part/whole as a percentage to one decimal place, halves rounded up (never banker's)."""
    if not whole or part is None:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def one_place(value: float | Decimal | None) -> Decimal | None:
    """An average or median to one decimal place, halves rounded up."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def median(values: Sequence[float]) -> float | None:
    """The middle value, or the mean of the two middle values (for tests and small lists)."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def past_due_threshold(calendar: WorkingCalendar, today: date, working_days: int) -> datetime:
    """Due before this instant means more than `working_days` working days past due today.

    With ord(d) the number of working days up to d, a case is that far past due when
    ord(today) - ord(due date) > n, i.e. when its due date is before the first day X with
    ord(X) = ord(today) - n: the working day n working days before today (or before the last
    working day, on a weekend or holiday).
    """
    day = today
    while not calendar.is_working_day(day):
        day -= timedelta(days=1)
    for _ in range(working_days):
        day -= timedelta(days=1)
        while not calendar.is_working_day(day):
            day -= timedelta(days=1)
    return calendar.start_of_day(day)
