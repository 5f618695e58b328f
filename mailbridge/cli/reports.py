"""`mailbridge report`: the supervisors' and committee's tables, and the HTML pack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Connection

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cli.context import fail
from mailbridge.clock import SystemClock
from mailbridge.directory import Directory, load_directory
from mailbridge.reports import caseload, performance, routing
from mailbridge.reports.definitions import Bands, Period
from mailbridge.reports.formats import ReportFormat, print_report
from mailbridge.reports.pack import build_pack, render_pack
from mailbridge.reports.report import Report

app = typer.Typer(
    no_args_is_help=True,
    help="Reports: open cases, 5-day performance, quarters, status, members, feedback, routing.",
)

FormatOption = Annotated[
    ReportFormat, typer.Option("--format", help="table (people), csv, json or markdown.")
]
FromOption = Annotated[str | None, typer.Option("--from", help="First date, YYYY-MM-DD.")]
ToOption = Annotated[str | None, typer.Option("--to", help="Last date, YYYY-MM-DD (inclusive).")]
FromRequired = Annotated[str, typer.Option("--from", help="First date, YYYY-MM-DD.")]
ToRequired = Annotated[str, typer.Option("--to", help="Last date, YYYY-MM-DD (inclusive).")]


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r}: expected a date such as 2026-03-31") from None


def _period(first: str | None, last: str | None, required: bool = False) -> Period | None:
    if first is None and last is None and not required:
        return None
    if first is None or last is None:
        raise fail("give both --from and --to")
    start, end = _date(first, "--from"), _date(last, "--to")
    if end < start:
        raise fail(f"--to {end} is before --from {start}")
    return Period("period", start, end)


def _directory(ctx: typer.Context) -> Directory:
    directory, _ = load_directory(ctx.obj.settings.directory_file)
    return directory


def _units(ctx: typer.Context) -> list[str]:
    return [d.name for d in _directory(ctx).delivery_units]


@contextmanager
def _connection(ctx: typer.Context) -> Iterator[tuple[Connection, WorkingCalendar]]:
    calendar = WorkingCalendar.from_settings(ctx.obj.settings.clock)
    with ctx.obj.reader.connect() as conn:
        try:
            yield conn, calendar
        finally:
            conn.rollback()  # read-only: nothing to keep


def _show(ctx: typer.Context, fmt: ReportFormat, run: Callable[..., Report]) -> None:
    with _connection(ctx) as (conn, calendar):
        try:
            report = run(conn, calendar)
        except ValueError as exc:
            raise fail(str(exc)) from None
    print_report(report, fmt)


@app.command("open")
def report_open(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option("--at", help="The date, YYYY-MM-DD (default today).")
    ] = None,
    fmt: FormatOption = ReportFormat.table,
) -> None:
    """Open enquiries at a date by delivery unit and age in calendar days.

    Open at D: received on or before D and not resolved by D. Ages: under 10 days, 10-19,
    20-29, 30-39, 40+, and the number 10 days old or more.

    Example: mailbridge report open --at 2026-03-31 --format csv
    """
    units = _units(ctx)

    def run(conn: Connection, calendar: WorkingCalendar) -> Report:
        day = _date(at, "--at") if at else calendar.local(SystemClock().now()).date()
        return performance.open_position(conn, calendar, day, units)

    _show(ctx, fmt, run)


@app.command("monthly")
def report_monthly(
    ctx: typer.Context,
    first: FromRequired,
    last: ToRequired,
    by: Annotated[str, typer.Option("--by", help="month (of due date) or du.")] = "month",
    fmt: FormatOption = ReportFormat.table,
) -> None:
    """5-day performance by month of due date, or by delivery unit, for cases due in a range.

    Closed in 5 days: resolved at or before due. Delay advised: not resolved by due and a
    delay advised at or before due. Responded to in 5 days: the two together.

    Example: mailbridge report monthly --from 2025-04-01 --to 2026-03-31 --by du --format csv
    """
    period = _period(first, last, required=True)
    assert period is not None
    if by not in ("month", "du"):
        raise fail(f"--by {by!r}: use month or du")
    units = _units(ctx)
    _show(
        ctx,
        fmt,
        lambda conn, cal: performance.monthly(conn, cal, period.first, period.last, by, units),
    )


@app.command("quarters")
def report_quarters(
    ctx: typer.Context,
    fy: Annotated[int, typer.Option("--fy", help="Financial year starting 1 April YYYY.")],
    last: ToOption = None,
    fmt: FormatOption = ReportFormat.table,
) -> None:
    """Closed in 5 days by delivery unit and UK financial quarter (Q1 = April to June).

    Example: mailbridge report quarters --fy 2025 --to 2025-12-31 --format csv
    """
    to = _date(last, "--to") if last else None
    units = _units(ctx)
    _show(ctx, fmt, lambda conn, cal: performance.quarters(conn, cal, fy, to, units))


@app.command("status")
def report_status(
    ctx: typer.Context,
    first: FromOption = None,
    last: ToOption = None,
    fmt: FormatOption = ReportFormat.table,
) -> None:
    """Where enquiries are now, how fast the service responds, and how many are long overdue.

    Counts in action (every status before resolved), actioned by services (resolved or
    closed), closed by members (closed) and open with members (resolved, not yet closed);
    average working days to first response and to resolution; cases with the service more
    than 5 working days past due. --from/--to select cases by the date received.

    Example: mailbridge report status --from 2025-04-01 --to 2026-03-31
    """
    period, units = _period(first, last), _units(ctx)
    now = SystemClock().now()
    _show(ctx, fmt, lambda conn, cal: caseload.status_summary(conn, cal, now, period, units))


@app.command("members")
def report_members(
    ctx: typer.Context,
    first: FromOption = None,
    last: ToOption = None,
    bands: Annotated[
        str,
        typer.Option("--bands", help="Lower bounds of the bands, e.g. 30,70 (0-29, 30-69, 70+)."),
    ] = "0,30,70",
    detail: Annotated[bool, typer.Option("--by-member", help="One row per member.")] = False,
    fmt: FormatOption = ReportFormat.table,
) -> None:
    """Requests per member, banded, and the highest single member.

    Example: mailbridge report members --from 2025-04-01 --to 2026-03-31 --bands 0,30,70
    """
    period = _period(first, last)
    try:
        banding = Bands.parse(bands)
    except ValueError as exc:
        raise fail(f"--bands: {exc}") from None
    known = {m.id: (m.name, m.ward) for m in _directory(ctx).members}
    _show(ctx, fmt, lambda conn, cal: caseload.members(conn, cal, known, period, banding, detail))


@app.command("feedback")
def report_feedback(
    ctx: typer.Context,
    first: FromOption = None,
    last: ToOption = None,
    fmt: FormatOption = ReportFormat.table,
) -> None:
    """Members' feedback on resolved enquiries: satisfied, partly, not satisfied; counts and rates.

    Example: mailbridge report feedback --from 2025-04-01 --to 2026-03-31 --format markdown
    """
    period, units = _period(first, last), _units(ctx)
    _show(ctx, fmt, lambda conn, cal: caseload.feedback(conn, cal, period, units))


@app.command("routing")
def report_routing(
    ctx: typer.Context,
    first: FromOption = None,
    last: ToOption = None,
    fmt: FormatOption = ReportFormat.table,
) -> None:
    """Routing and chasing: first time right, reroutes, misroute flags, chasers, days to close.

    First time right: routed cases never rerouted after their first assignment, by the DU
    first assigned; median working hours for an officer to flag a misroute; chasers and
    escalations per case and average working days to close, by the DU that has the case.
    Imported history, which recorded no routing, is left out of the routing figures.

    Example: mailbridge report routing --from 2025-04-01 --to 2026-03-31 --format json
    """
    period, units = _period(first, last), _units(ctx)
    now = SystemClock().now()
    _show(ctx, fmt, lambda conn, cal: routing.routing(conn, cal, now, period, units))


@app.command("pack")
def report_pack(
    ctx: typer.Context,
    first: FromRequired,
    last: ToRequired,
    html: Annotated[Path, typer.Option("--html", help="The HTML file to write.")] = Path(
        "report.html"
    ),
) -> None:
    """Every report for a period in one self-contained HTML file with charts.

    For committee papers: no scripts, fonts or links to fetch, so it opens offline and
    prints on A4 with each report on its own page.

    Example: mailbridge report pack --from 2025-04-01 --to 2026-03-31 --html pack-2025-26.html
    """
    period = _period(first, last, required=True)
    assert period is not None
    directory = _directory(ctx)
    units = [d.name for d in directory.delivery_units]
    members = {m.id: (m.name, m.ward) for m in directory.members}
    with _connection(ctx) as (conn, calendar):
        pack = build_pack(
            conn, calendar, SystemClock().now(), period.first, period.last, units, members
        )
    try:
        html.write_text(render_pack(pack, ctx.obj.settings.template_dir), encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {html}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {html} ({len(pack.sections)} reports)")
