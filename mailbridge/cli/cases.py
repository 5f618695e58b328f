"""`mailbridge case`: list and inspect cases, and the supervisor's actions on one.

The actions are thin shells over mailbridge.cases.supervision: one write transaction each,
with the daemon's wiring (directory, router, mailer), so the emails they cause — the enquiry
forwarded to a new officer — wait in the outbox for the daemon's sender.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from sqlmodel import Session

from mailbridge.cases import supervision
from mailbridge.cases.assignment import holder
from mailbridge.cases.queries import CaseFilter, case_detail, list_cases
from mailbridge.cli.context import fail
from mailbridge.cli.output import Format, emit_json, emit_table
from mailbridge.clock import SystemClock
from mailbridge.config import ConfigError
from mailbridge.daemon import build_deps
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.store.db import session
from mailbridge.store.models import KINDS, Case

app = typer.Typer(no_args_is_help=True, help="List, inspect and manage cases.")

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
    console.print(f"  routing: {_routing_words(detail['routing'])}", highlight=False)
    emit_table(detail["participants"], ["role", "address", "name", "person"], title="People")
    if detail["links"]:
        links = ["kind", "reference", "score", "reason", "actor"]
        emit_table(detail["links"], links, title="Links")
    emit_table(
        detail["messages"],
        ["id", "received_at", "from", "subject", "classification", "held"],
        title="Messages",
    )
    emit_table(detail["events"], ["at", "actor", "kind", "rule", "detail"], title="Timeline")


def _routing_words(routing: dict) -> str:
    """First assignment, reroutes and the misroute flag time, as one line."""
    if not routing["first_delivery_unit"]:
        return "never assigned"
    reroutes = routing["reroutes"]
    words = f"first to {routing['first_delivery_unit']} at {routing['first_assigned_at']}, " + (
        "reroutes not recorded" if reroutes is None else f"rerouted {reroutes} times"
    )
    hours = routing["misroute_flagged_after_working_hours"]
    return words if hours is None else f"{words}, misroute flagged after {hours} working hours"


# ----- the supervisor's actions ---------------------------------------------------------------

Reference = Annotated[str, typer.Argument(help="The case reference, e.g. ME-2026-00123.")]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Who is doing it (default: your login name).")
]
ApprovedBy = Annotated[str, typer.Option("--approved-by", help="Who approved it (required).")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why, for the timeline.")]
Target = Annotated[str, typer.Argument(help="A unit, or an officer by id, name or address.")]
Action = Callable[[Session, PipelineContext, Case, datetime], str]


def supervisor_name(by: str | None) -> str:
    """Who is acting, for the timeline: --by, else the login name (shared with case_links)."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a bare container): better to ask than guess
        raise fail("cannot tell who you are: give --by NAME") from None


def act_on_case(ctx: typer.Context, reference: str, action: Action) -> None:
    """One supervisor action on one case, in one transaction; prints what it did."""
    try:
        deps = build_deps(ctx.obj.settings)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail("fix the directory above, or run `mailbridge config check`") from None
    pipeline = PipelineContext.from_settings(deps.settings, deps.directory)
    try:
        with session(deps.engine) as s:
            try:
                case = supervision.case_for_update(s, reference)
                done = action(s, pipeline, case, deps.clock.now())
            except supervision.SupervisionError as exc:
                raise fail(str(exc)) from None
            s.commit()
    finally:
        deps.engine.dispose()
    typer.echo(done)


def _moved(case: Case, p: PipelineContext) -> str:
    now_with = {"delivery_unit": case.delivery_unit, "officer": case.officer}
    told = " (the officer is sent the enquiry and its history)" if case.officer else ""
    return f"{case.reference} is now with {holder(now_with, p.directory)}, {case.status}{told}"


@app.command("assign")
def case_assign(
    ctx: typer.Context,
    reference: Reference,
    to: Target,
    reason: ReasonOption = "",
    by: ByOption = None,
) -> None:
    """Give a case to a delivery unit (its available lead) or a named officer.

    For taking a case out of triage or sharing out work: it does not count against
    first-time-right (use `case reroute` for a case that went to the wrong place).

    Example: mailbridge case assign ME-2026-00123 Highways --by "A. Supervisor"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        supervision.assign(s, p.mailer, p.router, case, now, by=who, target=to, reason=reason)
        return _moved(case, p)

    act_on_case(ctx, reference, action)


@app.command("reroute")
def case_reroute(
    ctx: typer.Context,
    reference: Reference,
    to: Target,
    reason: ReasonOption = "",
    by: ByOption = None,
) -> None:
    """Send a misrouted case on to the right unit or officer; counts against first-time-right.

    Example: mailbridge case reroute ME-2026-00123 "Street Scene" --reason "fly-tipping, not roads"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        supervision.reroute(s, p.mailer, p.router, case, now, by=who, target=to, reason=reason)
        return _moved(case, p)

    act_on_case(ctx, reference, action)


@app.command("reclassify")
def case_reclassify(
    ctx: typer.Context,
    reference: Reference,
    kind: Annotated[str, typer.Argument(help=f"One of {', '.join(KINDS)}.")],
    approved_by: ApprovedBy,
    by: ByOption = None,
) -> None:
    """Change what kind of request a case is; needs the name of who approved it.

    Example: mailbridge case reclassify ME-2026-00123 foi --approved-by "J. Manager"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        supervision.reclassify(s, case, now, by=who, kind=kind, approved_by=approved_by)
        return f"{case.reference} is now {case.kind} (approved by {approved_by.strip()})"

    act_on_case(ctx, reference, action)


@app.command("reopen")
def case_reopen(
    ctx: typer.Context,
    reference: Reference,
    approved_by: ApprovedBy,
    reason: ReasonOption = "",
    by: ByOption = None,
) -> None:
    """Reopen a resolved or closed case: back with the service, still due when it was due.

    Example: mailbridge case reopen ME-2026-00123 --approved-by "J. Manager" --reason "half done"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        supervision.reopen(s, case, now, by=who, approved_by=approved_by, reason=reason)
        return f"{case.reference} reopened: {case.status}"

    act_on_case(ctx, reference, action)


@app.command("close")
def case_close(
    ctx: typer.Context,
    reference: Reference,
    reason: ReasonOption = "",
    by: ByOption = None,
) -> None:
    """Close a case by hand, e.g. withdrawn or answered outside mailbridge. Nobody is emailed.

    Example: mailbridge case close ME-2026-00123 --reason "withdrawn by the member"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        supervision.close(s, case, now, by=who, reason=reason)
        return f"{case.reference} closed"

    act_on_case(ctx, reference, action)


@app.command("note")
def case_note(
    ctx: typer.Context,
    reference: Reference,
    text: Annotated[str, typer.Argument(help="The note.")],
    by: ByOption = None,
) -> None:
    """Add an internal note to a case's timeline. Nobody is emailed.

    Example: mailbridge case note ME-2026-00123 "Rang the resident, bags still there"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        supervision.note(s, case, now, by=who, text=text)
        return f"note added to {case.reference}"

    act_on_case(ctx, reference, action)


@app.command("add-stakeholder")
def case_add_stakeholder(
    ctx: typer.Context,
    reference: Reference,
    address: Annotated[str, typer.Argument(help="Their email address.")],
    name: Annotated[str, typer.Option("--name", help="Their name.")] = "",
    by: ByOption = None,
) -> None:
    """Add someone to a case as a stakeholder: the officer's replies are copied to them.

    Example: mailbridge case add-stakeholder ME-2026-00123 jo@resident.example --name "Jo Bloggs"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        supervision.add_stakeholder(s, p.mailer, case, now, by=who, address=address, name=name)
        return f"{address.strip().lower()} added to {case.reference} as a stakeholder"

    act_on_case(ctx, reference, action)
