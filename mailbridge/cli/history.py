"""`mailbridge import` and `mailbridge export`: historical cases in from the old CRM, cases out.

(`import` is a Python keyword, hence `import_app`.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import SQLAlchemyError

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cli.context import fail
from mailbridge.clock import SystemClock
from mailbridge.directory import load_directory
from mailbridge.history.exporter import case_rows, write_csv, write_json
from mailbridge.history.importer import Importer

import_app = typer.Typer(no_args_is_help=True, help="Bring history in: cases from the old CRM.")
export_app = typer.Typer(no_args_is_help=True, help="Take cases out, in the import file's columns.")

SHOW_ERRORS = 50
PROGRESS_FROM_ROWS = 5000  # smaller files are checked before a bar would be worth drawing


@contextmanager
def _progress(total_lines: int) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr for large files at a terminal; nothing otherwise."""
    if total_lines < PROGRESS_FROM_ROWS or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


@import_app.command("cases")
def import_cases(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV file, UTF-8, with a header row.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, import nothing.")
    ] = False,
) -> None:
    """Import historical cases from a CSV file: all of them, or none if any row is wrong.

    Columns: reference, received_at, member, delivery_unit, subject, resolved_at,
    delay_advised_at, closed_at (the first four need a value on every row); optional officer,
    parent_reference, origin, kind, feedback. Times are ISO 8601; a time without an offset is
    Europe/London local time. Every bad row is listed as FILE:LINE: column: message. Imported
    cases have origin `imported` and send nothing.

    Example: mailbridge import cases crm-2019-2025.csv --dry-run
    """
    settings = ctx.obj.settings
    directory, _ = load_directory(settings.directory_file)
    importer = Importer(
        engine=ctx.obj.engine,
        calendar=WorkingCalendar.from_settings(settings.clock),
        response_days=settings.clock.response_days,
        references=settings.references,
        directory=directory,
    )
    try:
        lines = file.read_bytes().count(b"\n") if file.is_file() else 0
    except OSError:
        lines = 0
    try:
        with _progress(lines) as progress:
            result = importer.run(file, SystemClock().now(), dry_run=dry_run, progress=progress)
    except SQLAlchemyError as exc:  # e.g. another import took a reference meanwhile
        raise fail(
            f"nothing imported: the database refused the import: {exc.orig or exc}", 1
        ) from None
    if result.errors:
        for error in result.errors[:SHOW_ERRORS]:
            typer.echo(str(error), err=True)
        if len(result.errors) > SHOW_ERRORS:
            typer.echo(f"... and {len(result.errors) - SHOW_ERRORS} more errors", err=True)
        raise fail(f"{file}: {len(result.errors)} errors; nothing imported", code=1)
    historical = [
        f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"
        for names, noun in ((result.new_members, "member"), (result.new_units, "delivery unit"))
        if names
    ]
    done = "would be recorded" if dry_run else "recorded"
    recorded = f"; not in the directory, {done} as historical: {', '.join(historical)}"
    note = recorded if historical else ""
    if dry_run:
        typer.echo(f"{file}: {result.rows} cases, all good; nothing imported (--dry-run){note}")
    else:
        typer.echo(f"imported {result.imported} cases from {file}{note}")


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


@export_app.command("cases")
def export_cases(
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or json.")] = ExportFormat.csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    first: Annotated[
        str | None, typer.Option("--from", help="Received on or after, YYYY-MM-DD.")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Received on or before, YYYY-MM-DD.")
    ] = None,
) -> None:
    """Write cases in the columns `import cases` reads (times in local time with their offset).

    Example: mailbridge export cases --format csv --output cases.csv
    """
    calendar = WorkingCalendar.from_settings(ctx.obj.settings.clock)
    try:
        start = calendar.start_of_day(date.fromisoformat(first)) if first else None
        end = calendar.start_of_day(date.fromisoformat(last) + timedelta(days=1)) if last else None
    except ValueError:
        raise fail("--from/--to: expected dates such as 2026-03-31") from None
    write = write_json if fmt is ExportFormat.json else write_csv
    with ctx.obj.reader.connect() as conn:
        rows = case_rows(conn, calendar.zone, start, end)
        if output is None:
            count = write(rows, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = write(rows, out)
        conn.rollback()
    if output is not None:
        typer.echo(f"wrote {count} cases to {output}", err=True)
