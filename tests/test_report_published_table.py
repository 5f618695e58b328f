"""A committee's published monthly table, rebuilt from cases and read back figure for figure.

The table below is the kind a Members' Enquiries team publishes. From it the test makes a CSV
of cases that would produce it (with traps at every boundary: resolved exactly at the due
time, a second after it, a delay advised at the due time and after it, cases that are not
Members' Enquiries, cases due outside the year), imports it with `mailbridge import cases`,
and expects `mailbridge report monthly --format csv` to give the table back exactly,
percentages and rounding included (9/80 = 11.25% is published as 11.3).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest

from tests.test_import_cases import HEADER
from tests.test_report_support import CAL, cli_runner, csv_text

PUBLISHED = """\
month,items_due,closed_in_5_days,pct_closed_in_5_days,not_closed_in_5_days,pct_not_closed_in_5_days,delay_advised,pct_delay_advised,responded_in_5_days,pct_responded_in_5_days
2025-04,120,97,80.8,23,19.2,9,7.5,106,88.3
2025-05,134,110,82.1,24,17.9,12,9.0,122,91.0
2025-06,98,85,86.7,13,13.3,4,4.1,89,90.8
2025-07,141,119,84.4,22,15.6,10,7.1,129,91.5
2025-08,87,70,80.5,17,19.5,8,9.2,78,89.7
2025-09,126,101,80.2,25,19.8,13,10.3,114,90.5
2025-10,150,128,85.3,22,14.7,11,7.3,139,92.7
2025-11,129,108,83.7,21,16.3,7,5.4,115,89.1
2025-12,80,62,77.5,18,22.5,9,11.3,71,88.8
2026-01,136,117,86.0,19,14.0,8,5.9,125,91.9
2026-02,16,12,75.0,4,25.0,1,6.3,13,81.3
2026-03,8,5,62.5,3,37.5,1,12.5,6,75.0
Total,1225,1014,82.8,211,17.2,93,7.6,1107,90.4
"""


def _local(day: date, hour: int, minute: int = 0, second: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, second).isoformat(sep=" ")


def _received_for(due: date) -> date:
    """The working day whose enquiry (at 10:00) is due on `due`: five working days before."""
    day = due
    for _ in range(5):
        day -= timedelta(days=1)
        while not CAL.is_working_day(day):
            day -= timedelta(days=1)
    return day


def _working_days(year: int, month: int) -> list[date]:
    day, out = date(year, month, 1), []
    while day.month == month:
        if CAL.is_working_day(day):
            out.append(day)
        day += timedelta(days=1)
    return out


def _case(ref: str, due: date, outcome: str) -> list[str]:
    """A case due at 17:00 on `due` whose history makes it count as `outcome`."""
    received = _received_for(due)
    at_due = _local(due, 17)
    later = _local(due + timedelta(days=3), 11)
    resolved = delay = closed = ""
    if outcome == "closed:at-due":
        resolved, closed = at_due, later
    elif outcome == "closed:early":
        resolved = _local(received + timedelta(days=1), 9, 15)
    elif outcome == "closed:with-delay-too":
        resolved, delay = _local(due, 16, 59, 59), _local(due, 9)
    elif outcome == "delay:at-due":
        delay, resolved = at_due, later
    elif outcome == "delay:open":
        delay = _local(received, 15)
    elif outcome == "late:by-a-second":
        resolved = _local(due, 17, 0, 1)
    elif outcome == "late:delay-after-due":
        delay, resolved = _local(due, 17, 30), later
    elif outcome == "late:open":
        pass
    member = ("cllr-patel", "Cllr Ben Okafor", "carol.moss@council.example")[len(ref) % 3]
    return [ref, _local(received, 10), member, "Highways", "", resolved, delay, closed]


def _cases_for(published: list[dict[str, str]]) -> list[list[str]]:
    rows, n = [], 0
    for month in published[:-1]:
        year, mon = map(int, month["month"].split("-"))
        due_days = _working_days(year, mon)
        closed, delay = int(month["closed_in_5_days"]), int(month["delay_advised"])
        outcomes = (
            [
                ("closed:at-due", "closed:early", "closed:with-delay-too")[i % 3]
                for i in range(closed)
            ]
            + [("delay:at-due", "delay:open")[i % 2] for i in range(delay)]
            + [
                ("late:by-a-second", "late:delay-after-due", "late:open")[i % 3]
                for i in range(int(month["items_due"]) - closed - delay)
            ]
        )
        for i, outcome in enumerate(outcomes):
            n += 1
            rows.append(_case(f"ME-{year}-{n:05d}", due_days[i % len(due_days)], outcome))
    # Noise the table must not see: cases due just outside the year, and a planning objection.
    rows.append(_case("ME-2025-90001", date(2025, 3, 31), "closed:early"))
    rows.append(_case("ME-2026-90002", date(2026, 4, 1), "late:open"))
    return rows


@pytest.fixture
def mailbridge(db_url, monkeypatch, tmp_path):
    return cli_runner(db_url, monkeypatch, tmp_path)


def test_a_published_monthly_table_comes_back_figure_for_figure(mailbridge, tmp_path):
    published = list(csv.DictReader(io.StringIO(PUBLISHED)))
    rows = [[*row, "members_enquiry"] for row in _cases_for(published)]
    objection = _case("ME-2025-90003", date(2025, 6, 10), "closed:early")
    rows.append([*objection, "not_me"])
    path = tmp_path / "crm.csv"
    path.write_text(csv_text([*HEADER, "kind"], rows), encoding="utf-8")
    assert f"imported {len(rows)} cases" in mailbridge("import", "cases", path).stdout

    result = mailbridge(
        "report", "monthly", "--from", "2025-04-01", "--to", "2026-03-31", "--format", "csv"
    )
    assert result.stdout == PUBLISHED
