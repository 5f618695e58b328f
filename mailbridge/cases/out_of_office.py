"""When is the officer back? The date an out-of-office reply states (pure, today passed in).

Only a date the text ties to the absence counts, read in UK order (07/12/2026 is 7 December):

- after "back", "returning", "return", "in the office", "available" or "resume" it is the day
  they are back ("back on Monday 7 December", "returning 07/12/2026"): away until the day before;
- after "until", "till", "through" or "up to and including", or at the end of a range ("from
  30 November to 4 December"), it is their last day away ("until 7th December 2026").

A back-date wins over an until-date. A date without a year is the nearest one to today; a
date in the past, or more than a year ahead, is ignored (an old auto-reply, a typo), and so is
a date nothing ties to the absence (a phone number, the quoted enquiry). A weekday alone
("back on Monday") is the next one after today; "back tomorrow" is tomorrow.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from mailbridge.cases.commands import new_text

SCAN_CHARS = 4000  # an out-of-office says when in its first lines; the rest is quoted mail

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?"
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATES = re.compile(
    rf"""(?:(?P<wd>{_WEEKDAY}),?\s+)?(?:the\s+)?(?:
        (?P<d1>\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?(?P<m1>{_MONTH})\b\.?(?:,?\s+(?P<y1>\d{{4}}))?
      | (?P<m2>{_MONTH})\b\.?\s+(?P<d2>\d{{1,2}}){_ORDINAL}\b(?:,?\s+(?P<y2>\d{{4}}))?
      | (?P<y3>\d{{4}})-(?P<m3>\d{{2}})-(?P<d3>\d{{2}})\b
      | (?<![\d/.])(?P<d4>\d{{1,2}})(?P<sep>[/.-])(?P<m4>\d{{1,2}})
            (?:(?P=sep)(?P<y4>\d{{4}}|\d{{2}}))?(?![\d/.]\d)
    )
    | (?P<alone>{_WEEKDAY}|tomorrow)\b""",
    re.IGNORECASE | re.VERBOSE,
)
_BACK_CUE = re.compile(
    r"\b(?:back|return(?:ing|s)?|resum\w*|in the office|in work|available)\b[^.!?\n]{0,30}$",
    re.IGNORECASE,
)
_UNTIL_CUE = re.compile(
    r"\b(?:until|till|til|through|thru|up to and including)\s+(?:and\s+including\s+)?$",
    re.IGNORECASE,
)
_RANGE_JOIN = re.compile(r"^\s*(?:to|-|–|—|until|till)\s*$", re.IGNORECASE)
# Words of an absence, as opposed to an automatic "we have received your email".
_AWAY = re.compile(
    r"out of (?:the )?office|\bOOO\b|on (?:annual |parental |maternity |paternity |sick |study )?"
    r"leave|\bholiday|vacation|(?:currently|will be|i am|i'm) (?:away|absent|out|off)|"
    r"not (?:in|at) (?:the office|work|my desk)|away from (?:the |my )?(?:office|desk)|"
    r"\b(?:back|returning|return) (?:to (?:the )?office |in the office |to work )?(?:on|from)\b",
    re.IGNORECASE,
)


def reads_as_absence(text: str) -> bool:
    """Whether an automatic reply says its writer is away (not just that mail arrived)."""
    return bool(_AWAY.search(new_text(text)[:SCAN_CHARS]))


def absent_until(text: str, today: date) -> date | None:
    """The last day the writer is away, as their out-of-office states it; None if it does not."""
    text = new_text(text)[:SCAN_CHARS]
    back: list[date] = []
    until: list[date] = []
    previous_end = None
    for found in _DATES.finditer(text):
        day = _date_of(found, today)
        window = text[max(0, found.start() - 60) : found.start()]
        joined = previous_end is not None and _RANGE_JOIN.match(text[previous_end : found.start()])
        previous_end = found.end()
        if day is None:
            continue
        if _BACK_CUE.search(window):
            back.append(day - timedelta(days=1))
        elif _UNTIL_CUE.search(window) or joined:
            until.append(day)
    for last_day in (*back, *until):
        if last_day >= today:
            return last_day
    return None


def _date_of(found: re.Match[str], today: date) -> date | None:
    """The date a match names, or None when it is not a real date within the coming year."""
    g = found.groupdict()
    if g["alone"]:
        word = g["alone"].lower()
        if word == "tomorrow":
            return today + timedelta(days=1)
        weekday = next(i for i, name in enumerate(_WEEKDAYS) if name.startswith(word[:3]))
        return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    if g["d1"] or g["d2"]:
        day, month = int(g["d1"] or g["d2"]), _MONTHS[(g["m1"] or g["m2"]).lower()]
        year = int(g["y1"] or g["y2"]) if g["y1"] or g["y2"] else None
    elif g["y3"]:
        day, month, year = int(g["d3"]), int(g["m3"]), int(g["y3"])
    else:
        if g["y4"] is None and g["sep"] != "/":
            return None  # 9.30 or 10-12 without a year is a time or a range, not a date
        day, month = int(g["d4"]), int(g["m4"])
        year = None if g["y4"] is None else int(g["y4"]) + (2000 if len(g["y4"]) == 2 else 0)
    return _within_a_year(day, month, year, today)


def _within_a_year(day: int, month: int, year: int | None, today: date) -> date | None:
    """The date (the nearest such day to today when no year is given), if it is to come."""
    years = [year] if year is not None else [today.year - 1, today.year, today.year + 1]
    candidates = []
    for y in years:
        try:
            candidates.append(date(y, month, day))
        except ValueError:
            continue
    if not candidates:
        return None
    nearest = min(candidates, key=lambda d: abs((d - today).days))
    if nearest < today or nearest > today + timedelta(days=366):
        return None
    return nearest
