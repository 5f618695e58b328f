"""What a supervisor does to a case by hand (`mailbridge case assign|reroute|…`, DESIGN §1).

Services: each takes a session and `now`, changes the case, writes one timeline event whose
actor is `cli:NAME` (with `approved_by` in the detail where an approver is required) and queues
any email in the caller's transaction; the caller commits. A request that makes no sense — an
unknown case, unit, officer or kind, a missing approver, reopening an open case — raises
SupervisionError with a message for the supervisor, and changes nothing.

Reopening does not restart the due date. The member asked when they asked: a reopened case is
still measured against its first due date, so the committee's figures for past months do not
move when a supervisor reopens one, and while it is open again it shows as overdue. Its first
resolution time is kept too (as an officer's answer to a member's #partly keeps it), and the
clock treats an open case with a resolution as reopened: a fresh round of chasers with keys of
its own (mailbridge/schedule/plan.py). Only the closing time is cleared; the "reopened" event
keeps what it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from mailbridge.cases.assignment import holder, reassign, route_to
from mailbridge.cases.routing import Route, Router, available
from mailbridge.cases.service import NewParticipant, add_participants, record_event
from mailbridge.cases.split import resolve_parent_when_done
from mailbridge.config import ADDRESS_RE
from mailbridge.outbound.notices import Mailer
from mailbridge.store.models import KINDS, OPEN_STATUSES, Case, Participant


class SupervisionError(ValueError):
    """A supervisor's request that cannot be carried out, in words for the supervisor."""


def case_for_update(session: Session, reference: str) -> Case:
    """The case named by `reference`, locked for this transaction on PostgreSQL (the daemon
    may be changing it too; SQLite's BEGIN IMMEDIATE already serialises writers)."""
    found = session.exec(
        select(Case).where(Case.reference == reference.strip().upper()).with_for_update()
    ).first()
    if found is None:
        raise SupervisionError(f"no case {reference}")
    return found


def assign(
    session: Session,
    mailer: Mailer,
    router: Router,
    case: Case,
    now: datetime,
    *,
    by: str,
    target: str,
    reason: str = "",
) -> Route:
    """Give the case to a unit (its available lead) or a named officer. Not a misroute: taking
    a case out of triage, or sharing out work, does not count against first-time-right."""
    route = _route(mailer, router, case, now, target)
    reassign(session, mailer, case, route, now, actor=_actor(by),
             reason=reason or "assigned by a supervisor", misroute=False)  # fmt: skip
    return route


def reroute(
    session: Session,
    mailer: Mailer,
    router: Router,
    case: Case,
    now: datetime,
    *,
    by: str,
    target: str,
    reason: str = "",
) -> Route:
    """Send a wrongly routed case on to the right unit or officer: counts as a reroute."""
    if case.first_assigned_at is None:
        raise SupervisionError(
            f"{case.reference} was never assigned, so it cannot have been misrouted: "
            "use `mailbridge case assign`"
        )
    route = _route(mailer, router, case, now, target)
    reassign(session, mailer, case, route, now, actor=_actor(by),
             reason=reason or "misrouted: rerouted by a supervisor", misroute=True)  # fmt: skip
    return route


def reclassify(
    session: Session, case: Case, now: datetime, *, by: str, kind: str, approved_by: str
) -> None:
    """Change what kind of request the case is (members_enquiry, service_request, foi, not_me);
    reports count members' enquiries only, so this needs an approver."""
    approver = _approver(approved_by, "reclassify")
    wanted = kind.strip().lower().replace("-", "_")
    if wanted not in KINDS:
        raise SupervisionError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    if wanted == case.kind:
        raise SupervisionError(f"{case.reference} is already {wanted}")
    _event(session, case, now, by, "reclassified",
           {"from": case.kind, "to": wanted, "approved_by": approver})  # fmt: skip
    case.kind = wanted
    case.updated_at = case.next_action_at = now


def reopen(
    session: Session, case: Case, now: datetime, *, by: str, approved_by: str, reason: str = ""
) -> None:
    """A resolved or closed case back with the service (see the module for its clock)."""
    approver = _approver(approved_by, "reopen")
    if case.status in OPEN_STATUSES:
        raise SupervisionError(f"{case.reference} is open ({case.status}): nothing to reopen")
    before = {"status": case.status, "closed_at": _iso(case.closed_at)}
    case.status = "awaiting_response" if case.officer else "triage"
    case.closed_at = None
    case.updated_at = case.next_action_at = now
    _event(session, case, now, by, "reopened",
           {"before": before, "approved_by": approver, "reason": reason})  # fmt: skip


def close(session: Session, case: Case, now: datetime, *, by: str, reason: str = "") -> None:
    """Close a case by hand (withdrawn, answered outside mailbridge, ...)."""
    if case.status == "closed":
        raise SupervisionError(f"{case.reference} is already closed")
    _event(session, case, now, by, "closed", {"from": case.status, "reason": reason})
    case.status, case.closed_at = "closed", now
    case.updated_at = case.next_action_at = now
    resolve_parent_when_done(session, case, now)  # a part closed by hand is done with too


def note(session: Session, case: Case, now: datetime, *, by: str, text: str) -> None:
    """An internal note on the timeline; nobody is emailed."""
    if not text.strip():
        raise SupervisionError("a note needs some text")
    _event(session, case, now, by, "internal-note", {"text": text.strip()})
    case.updated_at = now


def add_stakeholder(
    session: Session,
    mailer: Mailer,
    case: Case,
    now: datetime,
    *,
    by: str,
    address: str,
    name: str = "",
) -> None:
    """Someone joins the case as a stakeholder: the officer's replies are relayed to them too
    (unless the unit is confidential or the member said #nocopy), and their mail is not held."""
    wanted = address.strip().lower()
    if not ADDRESS_RE.match(wanted):
        raise SupervisionError(f"not an email address: {address!r}")
    if mailer.is_own(wanted):
        raise SupervisionError(f"{wanted} is our own mailbox: it cannot be a stakeholder")
    if wanted == (case.member_address or "").lower():
        raise SupervisionError(f"{wanted} is the case's member")
    already = session.exec(
        select(Participant.id).where(
            Participant.case_id == case.id,
            Participant.address == wanted,
            Participant.role == "stakeholder",
        )
    ).first()
    if already is not None:
        raise SupervisionError(f"{wanted} is already a stakeholder on {case.reference}")
    known = mailer.directory.member_by_address(wanted) or mailer.directory.officer_by_address(
        wanted
    )
    person = NewParticipant(wanted, "stakeholder", name or (known.name if known else ""),
                            known.id if known else None)  # fmt: skip
    add_participants(session, case.id, [person], now)
    _event(session, case, now, by, "stakeholder-added", {"address": wanted, "name": person.name})
    case.updated_at = now


def _route(mailer: Mailer, router: Router, case: Case, now: datetime, target: str) -> Route:
    """Where `target` sends the case, refusing what would leave it stuck or unchanged."""
    if case.status not in OPEN_STATUSES:
        raise SupervisionError(
            f"{case.reference} is {case.status}: reopen it first (`mailbridge case reopen`)"
        )
    today = mailer.calendar.local(now).date()
    route = route_to(router, target, today)
    if route is None:
        raise SupervisionError(f"no delivery unit or officer {target!r} in the directory")
    if route.rule == "named-officer":
        officer = mailer.directory.officer(route.officer)
        if not available(officer, today):
            raise SupervisionError(
                f"{officer.name} is not available (left, or absent): choose someone else"
            )
    if (route.delivery_unit, route.officer) == (case.delivery_unit, case.officer):
        now_with = {"delivery_unit": case.delivery_unit, "officer": case.officer}
        raise SupervisionError(
            f"{case.reference} is already with {holder(now_with, mailer.directory)}"
        )
    return route


def _approver(approved_by: str, action: str) -> str:
    approver = (approved_by or "").strip()
    if not approver:
        raise SupervisionError(f"to {action} a case, say who approved it: --approved-by NAME")
    return approver


def _actor(by: str) -> str:
    return f"cli:{by}"


def _event(
    session: Session, case: Case, now: datetime, by: str, kind: str, detail: dict[str, Any]
) -> None:
    record_event(session, case.id, now, kind, actor=_actor(by), detail=detail)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
