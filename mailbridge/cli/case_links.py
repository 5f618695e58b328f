"""`mailbridge case split | link | merge`: a supervisor shares an enquiry out among units, or
joins cases that belong together (ISSUE 4 §3).

Thin shells over mailbridge.cases.split and mailbridge.cases.links, run like the other
supervisor actions (cli/cases.py): one write transaction each, the emails they cause left in
the outbox for the daemon's sender, and who did it on both timelines ("cli:NAME").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel import Session

from mailbridge.cases import supervision
from mailbridge.cases.assignment import holder, route_to
from mailbridge.cases.links import link_cases, merge_cases
from mailbridge.cases.routing import Route
from mailbridge.cases.split import split_by_hand
from mailbridge.cli.cases import ByOption, Reference, act_on_case, supervisor_name
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.store.models import Case

T = TypeVar("T")
Other = Annotated[str, typer.Argument(help="The other case's reference.")]
NoteOption = Annotated[str, typer.Option("--note", help="Why, for both timelines.")]
PartOption = Annotated[
    list[str],
    typer.Option(
        "--part",
        help='"UNIT: the question" (or "OFFICER: …"), once per part: two or more, or one more.',
    ),
]


def register(app: typer.Typer) -> None:
    """Add the commands to the `case` group."""
    app.command("split")(case_split)
    app.command("link")(case_link)
    app.command("merge")(case_merge)


def case_split(
    ctx: typer.Context,
    reference: Reference,
    part: PartOption,
    by: ByOption = None,
) -> None:
    """Split a case into parts, one per unit, each with its own reference, officer and clock.

    Each part is a new case (REF-1, REF-2 …) for the unit or officer named before the colon,
    forwarded to its officer with the question after it; the case itself stays as their
    umbrella and resolves when they all have. The member is sent every reference. A case that
    already has parts gains more.

    Example: mailbridge case split ME-2026-00123 --part "Highways: pothole" --part "Waste: bins"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        today = p.calendar.local(now).date()
        shares = [_share(p, text, today) for text in part]
        parts = _refused(split_by_hand, s, p, case, shares, now, by=who)
        lines = [f"{case.reference} is split; the member is sent every reference:"]
        lines += [f"  {q.reference}: {_with(q, p)}" for q in parts]
        return "\n".join(lines)

    act_on_case(ctx, reference, action)


def case_link(
    ctx: typer.Context,
    reference: Reference,
    other: Other,
    note: NoteOption = "",
    by: ByOption = None,
) -> None:
    """Link two cases as related: each timeline names the other. Nothing else changes.

    Example: mailbridge case link ME-2026-00123 ME-2026-00130 --note "same estate" --by Sam
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        second = supervision.case_for_update(s, other)
        if _refused(link_cases, s, case, second, now, by=who, note=note):
            return f"{case.reference} and {second.reference} are linked"
        return f"{case.reference} and {second.reference} were already linked"

    act_on_case(ctx, reference, action)


def case_merge(
    ctx: typer.Context,
    reference: Reference,
    into: Annotated[str, typer.Argument(help="The case that carries on.")],
    note: NoteOption = "",
    by: ByOption = None,
) -> None:
    """Merge a case into another: one enquiry, carried on as the second.

    The first is closed and counted in the reports as the second; its member and the people
    they copied in are copied on the second's answer; replies quoting its reference go on the
    second. Its own messages and timeline stay with it.

    Example: mailbridge case merge ME-2026-00130 ME-2026-00123 --by "A. Supervisor"
    """
    who = supervisor_name(by)

    def action(s: Session, p: PipelineContext, case: Case, now: datetime) -> str:
        survivor = supervision.case_for_update(s, into)
        added = _refused(merge_cases, s, case, survivor, now, by=who, note=note)
        people = f"; now also copied in: {', '.join(added)}" if added else ""
        return f"{case.reference} is merged into {survivor.reference}{people}"

    act_on_case(ctx, reference, action)


def _share(p: PipelineContext, text: str, today: date) -> tuple[Route, str]:
    """'Highways: the pothole' as the route to Highways and the question."""
    target, colon, question = text.partition(":")
    if not colon or not question.strip():
        raise supervision.SupervisionError(f'--part {text!r}: write it as "UNIT: the question"')
    route = route_to(p.router, target, today)
    if route is None:
        units = ", ".join(u.name for u in p.directory.delivery_units)
        raise supervision.SupervisionError(
            f"--part {text!r}: {target.strip()!r} is not a unit or an officer (units: {units})"
        )
    return route, question.strip()


def _refused(service: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a service; its ValueError is the supervisor's to read, not a traceback."""
    try:
        return service(*args, **kwargs)
    except ValueError as exc:
        raise supervision.SupervisionError(str(exc)) from None


def _with(case: Case, p: PipelineContext) -> str:
    who = holder({"delivery_unit": case.delivery_unit, "officer": case.officer}, p.directory)
    return f"{who}, {case.status}"
