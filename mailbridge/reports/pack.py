"""The committee pack: every report for a period in one self-contained HTML file, with charts.

One file with inline CSS and inline SVG: no script, no web font, no network, so it opens the
same from an email attachment or a shared drive in ten years' time, and prints on A4 with
each report starting a page. Rendered from templates/reports/ (autoescaped: DU and member
names are data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Connection

from mailbridge import bundled_templates
from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports import caseload, performance, routing
from mailbridge.reports.charts import Chart, grouped_bars, line_chart, stacked_bars
from mailbridge.reports.definitions import AGE_BUCKETS, Bands, Period, financial_year_label
from mailbridge.reports.measures import unit_measures
from mailbridge.reports.report import Report

TEMPLATES = bundled_templates()
AGE_LABELS = {"under_10": "under 10 days", "d10_19": "10–19", "d20_29": "20–29",
              "d30_39": "30–39", "d40_plus": "40+ days"}  # fmt: skip


@dataclass
class Section:
    report: Report
    intro: str = ""
    chart: Chart | None = None


@dataclass
class Pack:
    title: str
    first: date
    last: date
    generated: datetime
    sections: list[Section] = field(default_factory=list)


def financial_year_of(day: date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def build_pack(
    conn: Connection,
    calendar: WorkingCalendar,
    now: datetime,
    first: date,
    last: date,
    units: Sequence[str] = (),
    members: Mapping[str, tuple[str, str]] | None = None,
    bands: Bands | None = None,
) -> Pack:
    """Run every report for first..last (by due date, or received date where that is the rule)."""
    period = Period("pack", first, last)
    pack = Pack(
        f"Members' Enquiries performance, {first:%d %B %Y} to {last:%d %B %Y}",
        first,
        last,
        calendar.local(now),
    )
    monthly = performance.monthly(conn, calendar, first, last, "month", units)
    body = monthly.body
    pack.sections.append(
        Section(
            monthly,
            "Items due each month and how many the service closed, or advised a delay on, "
            "within 5 working days.",
            line_chart(
                "chart-monthly",
                "5-day performance by month of due date",
                [r["month"] for r in body],
                [
                    ("% closed in 5 days", [r["pct_closed_in_5_days"] for r in body]),
                    ("% responded to in 5 days", [r["pct_responded_in_5_days"] for r in body]),
                ],
            ),
        )
    )
    pack.sections.append(Section(performance.monthly(conn, calendar, first, last, "du", units)))
    open_now = performance.open_position(conn, calendar, last, units)
    rows = [r for r in open_now.body if any(r[b[0]] for b in AGE_BUCKETS)] or list(open_now.body)
    pack.sections.append(
        Section(
            open_now,
            "Enquiries received on or before the date and not yet resolved by it, by age in "
            "calendar days since they were received.",
            stacked_bars(
                "chart-open",
                f"Open enquiries at {last:%d %b %Y} by age",
                [r["delivery_unit"] for r in rows],
                [(AGE_LABELS[b[0]], [r[b[0]] for r in rows]) for b in AGE_BUCKETS],
            ),
        )
    )
    for fy in range(financial_year_of(first), financial_year_of(last) + 1):
        quarters = performance.quarters(conn, calendar, fy, last, units)
        pack.sections.append(Section(_by_quarter(quarters), chart=_quarter_chart(quarters, fy)))
    shared = unit_measures(conn, calendar, now, period)  # one pass for status and routing
    pack.sections.append(
        Section(caseload.status_summary(conn, calendar, now, period, units, shared))
    )
    pack.sections.append(Section(caseload.members(conn, calendar, members or {}, period, bands)))
    pack.sections.append(Section(caseload.feedback(conn, calendar, period, units)))
    pack.sections.append(Section(routing.routing(conn, calendar, now, period, units, shared)))
    return pack


def _by_quarter(report: Report) -> Report:
    """The long quarters table turned wide for paper: a row per DU, volume and % per quarter."""
    periods = list(dict.fromkeys(r["quarter"] for r in report.rows))
    short = {q: q.split()[0] if q.startswith("Q") else "Year" for q in periods}
    columns = ["delivery_unit"]
    for q in periods:
        columns += [f"{short[q]} volume", f"{short[q]} %"]
    rows: dict[str, dict] = {}
    for r in report.rows:
        row = rows.setdefault(r["delivery_unit"], {"delivery_unit": r["delivery_unit"]})
        row[f"{short[r['quarter']]} volume"] = r["volume"]
        row[f"{short[r['quarter']]} %"] = r["pct_closed_in_5_days"]
    notes = ("Volume: items due in the quarter; %: closed in 5 days.", *report.notes)
    return Report(report.name, report.title, tuple(columns), tuple(rows.values()), notes)


def _quarter_chart(report: Report, fy: int) -> Chart:
    year = financial_year_label(fy)
    quarters = [r["quarter"] for r in report.rows if r["delivery_unit"] == "Total"]
    quarters = [q for q in quarters if q != year]
    units = sorted({r["delivery_unit"] for r in report.rows if r["volume"]} - {"Total"})
    value = {(r["delivery_unit"], r["quarter"]): r["pct_closed_in_5_days"] for r in report.rows}
    return grouped_bars(
        f"chart-quarters-{fy}",
        f"Closed in 5 days by quarter, {year}",
        [*units, "Total"],
        [(q.split()[0], [value.get((u, q)) for u in [*units, "Total"]]) for q in quarters],
    )


def heading(column: str) -> str:
    """A column name as a table heading: pct_closed_in_5_days -> "% closed in 5 days"."""
    special = {
        "under_10": "Under 10 days",
        "d10_19": "10–19 days",
        "d20_29": "20–29 days",
        "d30_39": "30–39 days",
        "d40_plus": "40+ days",
        "total_over_10": "10 days or more",
    }
    if column in special:
        return special[column]
    words = column.replace("_", " ")
    if words.startswith("pct "):
        return "% " + words[4:]
    return words[:1].upper() + words[1:]


def environment(template_dir: Path | None = None) -> Environment:
    """Templates from the configured directory first, then the ones shipped with mailbridge."""
    paths = [str(p) for p in (template_dir, TEMPLATES) if p is not None]
    env = Environment(
        loader=FileSystemLoader(paths),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["heading"] = heading
    return env


def render_pack(pack: Pack, template_dir: Path | None = None) -> str:
    return environment(template_dir).get_template("reports/pack.html.j2").render(pack=pack)
