"""`mailbridge case`: list and inspect cases."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mailbridge.cases.queries import CaseFilter, case_detail, list_cases
from mailbridge.cli.context import fail
from mailbridge.cli.output import Format, emit_json, emit_table
from mailbridge.clock import SystemClock
from mailbridge.store.db import session

app = typer.Typer(no_args_is_help=True, help="List and inspect cases.")

LIST_COLUMNS = [
    "reference",
    "status",
    "origin",
    "member",
    "delivery_unit",
    "officer",
    "received_at",
    "due_at",
    "subject",
]
FormatOption = Annotated[Format, typer.Option("--format", help="table or json.")]


@app.command("list")
def case_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="e.g. triage, awaiting_response")] = None,
    du: Annotated[str | None, typer.Option("--du", help="Delivery unit name.")] = None,
    member: Annotated[str | None, typer.Option(help="Member id or address.")] = None,
    origin: Annotated[str | None, typer.Option(help="direct, cc, forwarded or imported.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open cases past due.")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many (oldest first).")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List cases, oldest first: every case unless filtered.

    Example: mailbridge case list --status triage --format json
    """
    filters = CaseFilter(
        status=status, delivery_unit=du, member=member, origin=origin, overdue=overdue, limit=limit
    )
    with session(ctx.obj.reader) as s:
        rows = list_cases(s, filters, SystemClock().now())
    if fmt is Format.json:
        emit_json(rows)
    else:
        emit_table(rows, LIST_COLUMNS, title=f"{len(rows)} cases")


@app.command("show")
def case_show(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="The case reference, e.g. ME-2026-00123.")],
    fmt: FormatOption = Format.table,
) -> None:
    """Show one case: its people, every message and the whole timeline.

    Example: mailbridge case show ME-2026-00123
    """
    with session(ctx.obj.reader) as s:
        detail = case_detail(s, reference, SystemClock().now())
    if detail is None:
        raise fail(f"no case {reference}")
    if fmt is Format.json:
        emit_json(detail)
        return
    console = Console()
    console.print(f"[bold]{detail['reference']}[/bold]  {detail['subject']}")
    for key in (
        "status",
        "origin",
        "kind",
        "member",
        "delivery_unit",
        "officer",
        "received_at",
        "due_at",
        "parent_reference",
    ):
        console.print(f"  {key}: {detail[key] or '-'}", highlight=False)
    emit_table(detail["participants"], ["role", "address", "name", "person"], title="People")
    emit_table(
        detail["messages"],
        ["id", "received_at", "from", "subject", "classification", "held"],
        title="Messages",
    )
    emit_table(detail["events"], ["at", "actor", "kind", "rule", "detail"], title="Timeline")
