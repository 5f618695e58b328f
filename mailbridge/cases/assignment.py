"""A case changes hands: the one place that reassigns a case to another unit or officer.

Everything that moves a case goes through `reassign`: a supervisor's assign or reroute, an
officer's `#wrong-service`, a bounce or an out-of-office passing the case to a deputy. It keeps
the first-time-right figures (DESIGN §6) honest:

- the first assignment (first_delivery_unit, first_assigned_at) is recorded once; a case that
  leaves triage for the first time is assigned, not rerouted;
- a misroute (`misroute=True`) after that counts one reroute, and the first one records the
  working time from the first assignment to the flag (Case.misroute_flag_seconds);
- a handover that is not a misroute (a deputy covering, a supervisor balancing work) counts
  nothing.

The new officer is told, with where the case was and its timeline so far. A service: it
changes the case (which must belong to `session`), writes the timeline and queues the email
in the caller's transaction, and never commits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, select

from mailbridge.cases.routing import Route, Router
from mailbridge.cases.service import (
    NewParticipant,
    add_participants,
    record_event,
    write_held_inserts,
)
from mailbridge.directory import Directory, Officer
from mailbridge.outbound.notices import Mailer, queue_forward
from mailbridge.store.models import OPEN_STATUSES, Case, Event, Message

# Statuses that are the member's or the service's standing commitment, not the officer's:
# a deputy or a colleague in the same service takes them over as they are.
KEPT_ON_HANDOVER = ("delay_advised", "work_scheduled", "clarification")
HISTORY_LINES = 12  # the forward shows the latest events, not a whole long timeline
_NOT_HISTORY = ("email-queued",)  # the outbox's own bookkeeping
TO_TRIAGE = Route(None, None, "to-triage")  # back to the team, who find the right service


def status_after(status: str, *, has_officer: bool, misroute: bool) -> str:
    """The status of a case that changes hands (pure).

    Without an officer it waits in triage. A delay advised, work scheduled or a question to the
    member survives a handover within the service, but not a misroute: the wrong service's
    promise does not bind the right one, which starts from awaiting its response. An
    escalation was about the previous officer, so the new one starts afresh. A resolved or
    closed case keeps its status: changing hands does not reopen it.
    """
    if status not in OPEN_STATUSES:
        return status
    if not has_officer:
        return "triage"
    if status in KEPT_ON_HANDOVER and not misroute:
        return status
    return "awaiting_response"


def reassign(
    session: Session,
    mailer: Mailer,
    case: Case,
    route: Route,
    now: datetime,
    *,
    actor: str,
    reason: str,
    misroute: bool,
    message_db_id: int | None = None,
) -> None:
    """Send `case` to `route` (a unit and officer, either may be None: triage).

    `misroute` says the previous assignment was wrong (counts against first-time-right);
    `message_db_id` is the email that asked for it, whose received time is when the misroute
    was flagged (else `now`).
    """
    when = _received_at(session, message_db_id) or now
    previous = {"delivery_unit": case.delivery_unit, "officer": case.officer}
    first = case.first_assigned_at is None and route.delivery_unit is not None
    rerouted = misroute and case.first_assigned_at is not None
    if first:
        case.first_delivery_unit, case.first_assigned_at = route.delivery_unit, when
    if rerouted:
        case.reroutes = (case.reroutes or 0) + 1
        if case.misroute_flag_seconds is None:
            case.misroute_flag_seconds = mailer.calendar.working_seconds_between(
                case.first_assigned_at, when
            )
    case.status = status_after(case.status, has_officer=bool(route.officer), misroute=misroute)
    case.delivery_unit, case.officer = route.delivery_unit, route.officer
    case.updated_at = case.next_action_at = now
    kind = "rerouted" if rerouted else "assigned" if first else "reassigned"
    to = {"delivery_unit": route.delivery_unit, "officer": route.officer}
    record_event(session, case.id, now, kind, actor=actor, rule=route.rule,
                 detail={"from": previous, "to": to, "reason": reason},
                 message_db_id=message_db_id)  # fmt: skip
    officer = mailer.directory.officer(route.officer) if route.officer else None
    if officer is None or route.officer == previous["officer"]:
        return
    add_participants(session, case.id, [_as_participant(officer)], now, message_db_id)
    _tell_new_officer(session, mailer, case, previous, now)


def route_to(router: Router, target: str, today: date) -> Route | None:
    """A delivery unit by name, or an officer by id, name or address; None if neither.

    A unit goes to its available lead (or triage within the unit when none is); a named
    officer gets it themselves, in their own unit.
    """
    wanted = target.strip()
    if not wanted:
        return None
    unit = router.directory.delivery_unit(wanted)
    if unit is not None:
        return router.route_to_unit(unit, today)
    officer = find_officer(router.directory, wanted)
    if officer is not None:
        return dataclasses.replace(router.route_to_officer(officer), rule="named-officer")
    return None


def find_officer(directory: Directory, wanted: str) -> Officer | None:
    """An officer by id, address or name (case-insensitively)."""
    folded = wanted.strip().casefold()
    return (
        directory.officer(wanted.strip())
        or directory.officer_by_address(folded)
        or next((o for o in directory.officers if o.name.casefold() == folded), None)
    )


def history_lines(events: Sequence[Event], mailer: Mailer) -> list[str]:
    """The case's timeline as short lines for the new officer, latest HISTORY_LINES of them."""
    lines = []
    for event in events:
        if event.kind in _NOT_HISTORY:
            continue
        when = mailer.calendar.local(event.at).strftime("%a %d %b %H:%M")
        rule = f" ({event.rule})" if event.rule else ""
        said = _summary(event.detail or {}, mailer.directory)
        lines.append(f"{when}  {event.kind}{rule} by {event.actor}{': ' + said if said else ''}")
    return lines[-HISTORY_LINES:]


def holder(assignment: dict[str, Any] | None, directory: Directory) -> str:
    """'Highways (Rory Walsh)', 'Highways', or 'triage': who had a case, in words."""
    if not assignment or not (assignment.get("delivery_unit") or assignment.get("officer")):
        return "triage"
    officer = directory.officer(assignment["officer"]) if assignment.get("officer") else None
    name = officer.name if officer else assignment.get("officer")
    unit = assignment.get("delivery_unit")
    return f"{unit} ({name})" if unit and name else unit or name


def _summary(detail: dict[str, Any], directory: Directory) -> str:
    if isinstance(detail.get("from"), dict) or isinstance(detail.get("to"), dict):
        moved = f"{holder(detail.get('from'), directory)} -> {holder(detail.get('to'), directory)}"
        return f"{moved}, {detail['reason']}" if detail.get("reason") else moved
    if "delivery_unit" in detail or "officer" in detail:  # the pipeline's first assignment
        return holder(detail, directory)
    for key in ("text", "reason", "date", "feedback", "subject"):
        if detail.get(key):
            return str(detail[key])
    return ""


def _tell_new_officer(
    session: Session, mailer: Mailer, case: Case, previous: dict[str, Any], now: datetime
) -> None:
    """The enquiry, forwarded again to its new officer with where it has been."""
    original = _original(session, case)
    if original is None:  # imported history: no email to forward
        return
    write_held_inserts(session)
    events = session.exec(
        select(Event).where(Event.case_id == case.id).order_by(Event.at, Event.id)
    ).all()
    # One forward per reassignment: the timeline only grows, so its length names this one.
    key = f"reassign:{case.reference}:{len(events)}"
    queue_forward(session, mailer, case, original, now,
                  rerouted_from=holder(previous, mailer.directory),
                  history=history_lines(events, mailer), dedupe_key=key)  # fmt: skip


def _original(session: Session, case: Case) -> Message | None:
    """The member's original email (a part's is its parent's), else the case's first email."""
    if case.thread_message_id:
        found = session.exec(
            select(Message).where(Message.message_id == case.thread_message_id).order_by(Message.id)
        ).first()
        if found is not None:
            return found
    return session.exec(
        select(Message)
        .where(Message.case_id == case.id, Message.direction == "in")
        .order_by(Message.received_at, Message.id)
    ).first()


def _received_at(session: Session, message_db_id: int | None) -> datetime | None:
    if message_db_id is None:
        return None
    return session.exec(select(Message.received_at).where(Message.id == message_db_id)).first()


def _as_participant(officer: Officer) -> NewParticipant:
    return NewParticipant(officer.addresses[0], "officer", officer.name, officer.id)
