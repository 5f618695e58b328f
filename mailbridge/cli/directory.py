"""`mailbridge directory`: check the directory file, show who is in it, clear what mail taught.

Thin: the rules live in mailbridge.directory (every problem, with file and entry) and
mailbridge.store.people (the database's copy, with each officer's bounce and absence).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.exc import SQLAlchemyError

from mailbridge.cli.context import fail
from mailbridge.cli.output import Format, emit_json, emit_table
from mailbridge.directory import Directory, Officer, load_directory
from mailbridge.store.db import session
from mailbridge.store.people import clear_learnt, stored_people

app = typer.Typer(
    no_args_is_help=True,
    help="The directory of members, delivery units and officers.\n\n"
    "Example: mailbridge directory check /etc/mailbridge/directory.toml",
)


@app.command("check")
def check(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Argument(help="Directory file; default: the one in the settings.")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    today: Annotated[
        str | None, typer.Option(help="Judge review dates as of this day (YYYY-MM-DD).")
    ] = None,
) -> None:
    """List every problem in the directory file; exit 1 on any error (or warning, --strict).

    Errors (the daemon will not start on them): an unknown manager, deputy, lead, ward officer
    or escalation manager, a DU without an active lead, an address listed twice, a bad field.
    Warnings: an escalation list not reviewed in 12 months, a ward split no member sits in.
    One line per problem: "file: entry: severity: message".

    Example: mailbridge directory check config/directory.toml --strict
    """
    path = file or ctx.obj.settings.directory_file
    if path is None:
        raise fail("no directory file: name one, or set [directory] file in the settings")
    try:
        day = date.fromisoformat(today) if today else _today(ctx)
    except ValueError:
        raise fail(f"--today: expected a date such as 2026-11-23, got {today!r}") from None
    _, problems = load_directory(path, day)
    for problem in problems:
        typer.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    typer.echo(
        f"{path}: ok" if not problems else f"{path}: {errors} error(s), {warnings} warning(s)"
    )
    if errors or (strict and warnings):
        raise typer.Exit(code=1)


@app.command("show")
def show(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Members, delivery units and officers: the file, plus what mail has taught (an officer's
    bounce or out-of-office) and people kept as historical since they left the file.

    Example: mailbridge directory show --format json
    """
    settings = ctx.obj.settings
    directory, problems = load_directory(settings.directory_file)
    for problem in problems:
        typer.echo(str(problem), err=True)
    try:
        with session(ctx.obj.reader) as s:
            stored = stored_people(s)
            s.rollback()
    except SQLAlchemyError as exc:
        message = f"cannot read the database ({type(exc).__name__}); try `mailbridge db upgrade`"
        raise fail(message) from None
    shown = listing(directory, stored)
    if fmt is Format.json:
        emit_json({"file": str(settings.directory_file or ""), **shown})
        return
    for section, columns in COLUMNS.items():
        emit_table(shown[section], columns, title=section.replace("_", " ").capitalize())


COLUMNS = {
    "members": ["id", "name", "ward", "party", "addresses", "digest", "status"],
    "delivery_units": ["name", "leads", "wards", "escalation_manager", "escalation_reviewed",
                       "confidential", "keywords", "patterns", "status"],
    "officers": ["id", "name", "delivery_unit", "manager", "deputy", "active", "absent_until",
                 "reported_absent_until", "undeliverable_at", "status"],
}  # fmt: skip
LEARNT = ("reported_absent_until", "undeliverable_at", "undeliverable_reason")


def listing(directory: Directory, stored: dict[str, list[dict[str, Any]]]) -> dict[str, list]:
    """Each section's file entries (officers with the database's learnt columns), then the
    database's historical rows: people gone from the file, or known only from history."""
    shown = {}
    for section, key in (("members", "id"), ("delivery_units", "name"), ("officers", "id")):
        rows = {row[key]: row for row in stored[section]}
        entries = getattr(directory, section)
        listed = [_from_file(e, rows.get(getattr(e, key), {})) for e in entries]
        in_file = {getattr(e, key) for e in entries}
        listed += [
            {k: v for k, v in row.items() if k not in ("created_at", "updated_at", "historical")}
            | {"status": "historical"}
            for name, row in rows.items()
            if name not in in_file and row["historical"]
        ]
        shown[section] = listed
    return shown


def _from_file(entry: Any, row: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in vars(entry).items() if k != "learnt"}
    shown |= {k: list(v) for k, v in shown.items() if isinstance(v, tuple)}
    if "wards" in shown:
        shown["wards"] = [f"{ward}={officer}" for ward, officer in entry.wards]
    if isinstance(entry, Officer):
        shown |= {k: row.get(k) for k in LEARNT}
    return shown | {"status": "live"}


@app.command("clear")
def clear(
    ctx: typer.Context,
    officer: Annotated[str, typer.Argument(help="The officer's id in the directory.")],
) -> None:
    """Forget an officer's bounce and out-of-office, so new cases reach them again.

    A running daemon takes it into account from its next batch of mail.

    Example: mailbridge directory clear o-singh
    """
    with session(ctx.obj.engine) as s:
        was = clear_learnt(s, officer, datetime.now(UTC))
        s.commit()
    if was is None:
        raise fail(f"no officer {officer!r} in the database (is the directory loaded?)")
    marks = []
    if was.undeliverable_at:
        marks.append(
            f"undeliverable since {was.undeliverable_at:%Y-%m-%d} ({was.undeliverable_reason})"
        )
    if was.reported_absent_until:
        marks.append(f"away until {was.reported_absent_until}")
    typer.echo(
        f"{officer}: cleared {'; '.join(marks)}" if marks else f"{officer}: nothing to clear"
    )


def _today(ctx: typer.Context) -> date:
    """Today in the council's time zone."""
    return datetime.now(ZoneInfo(ctx.obj.settings.clock.timezone)).date()
