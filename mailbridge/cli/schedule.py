"""`mailbridge schedule preview` and `mailbridge sweep`: the working-day clock ahead, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from mailbridge import daemon
from mailbridge.cli.context import fail
from mailbridge.cli.output import Format, emit_json, emit_table
from mailbridge.clock import SystemClock
from mailbridge.config import ConfigError
from mailbridge.directory import load_directory
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.schedule.policy import ClockPolicy
from mailbridge.schedule.preview import preview
from mailbridge.store.db import session
from mailbridge.store.people import learnt

app = typer.Typer(no_args_is_help=True, help="The working-day clock: what it will send, and when.")

COLUMNS = ["at", "reference", "kind", "to", "key"]
Moment = Annotated[
    str | None,
    typer.Option(help="ISO date or time; without a zone, council time (e.g. 2026-12-21T09:00)."),
]


def register(root: typer.Typer) -> None:
    root.command("sweep")(sweep)


@app.command("preview")
def schedule_preview(
    ctx: typer.Context,
    start: Annotated[
        str | None, typer.Option("--from", help="Start (default now); ISO date or time.")
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="How many days ahead.")] = 7,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """List what the clock will send for every open case, and when, if nothing else happens.

    Chasers, escalations, delay reminders and notices, completion checks, auto-closes, triage
    notices and the weekly digests, worked out by the same plan the daemon's sweep uses. Emails
    already queued are left out; one already due goes at the next sweep. Reads only.

    Example: mailbridge schedule preview --from 2026-12-21 --days 14 --format json
    """
    settings = ctx.obj.settings
    zone = ZoneInfo(settings.clock.timezone)
    begin = _moment(start, zone) if start else SystemClock().now()
    directory, problems = load_directory(settings.directory_file)
    if any(p.severity == "error" for p in problems):
        raise fail("the directory has errors; see `mailbridge config check`")
    policy = ClockPolicy.from_settings(settings.clock)
    with session(ctx.obj.reader) as s:  # with what mail taught: who is away, whose mail bounces
        mailer = PipelineContext.from_settings(settings, directory.with_learnt(learnt(s))).mailer
        found = preview(s, mailer, policy, begin, begin + timedelta(days=days))
    rows = [
        {
            "at": u.at.astimezone(zone).isoformat(timespec="minutes"),
            "due": u.due.astimezone(zone).isoformat(timespec="minutes"),
            "reference": u.reference,
            "kind": u.kind,
            "to": list(u.to),
            "key": u.key,
        }
        for u in found
    ]
    if fmt is Format.json:
        emit_json(rows)
    else:
        title = f"The clock's emails in the {days} days from {begin.astimezone(zone):%d %b %H:%M}"
        emit_table(rows, COLUMNS, title=f"{title}: {len(rows)}")


def sweep(
    ctx: typer.Context,
    now: Annotated[
        str | None, typer.Option("--now", help="Sweep as of this time (default now).")
    ] = None,
) -> None:
    """Run one sweep of the working-day clock and exit: queue whatever is due.

    For recovery and testing: the daemon sweeps every clock.sweep_seconds by itself. A sweep
    is safe to repeat: each email has a dedupe key, so nothing is queued twice. The emails go
    with the daemon's sender, or `mailbridge outbox flush`.

    Example: mailbridge sweep --now 2026-12-22T17:05
    """
    settings = ctx.obj.settings
    at = _moment(now, ZoneInfo(settings.clock.timezone)) if now else None
    try:
        deps = daemon.build_deps(settings)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail("the directory has errors; see `mailbridge config check`") from None
    try:
        stats = daemon.sweep_once(deps, at)
    finally:
        deps.engine.dispose()
    queued = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.queued.items())) or "nothing"
    typer.echo(
        f"swept {stats.cases} cases: queued {queued}; closed {stats.closed}; failed {stats.failed}"
    )
    if stats.failed:
        raise typer.Exit(code=1)


def _moment(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date (its start) or date-time; one without an offset is council time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"not an ISO date or time: {text!r} (e.g. 2026-12-21T09:00)") from None
    if moment.tzinfo is None:  # a bare date is the start of that day
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
