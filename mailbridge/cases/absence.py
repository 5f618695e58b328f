"""People who are not there: no case waits on an officer whose mail bounces, who is away, or
who has left (DESIGN §3).

- A bounce (a permanent delivery failure) of our mail to an officer's address marks them
  undeliverable, until `mailbridge directory clear` says otherwise.
- An out-of-office from a case's own officer marks them away until the date it states, or for
  one working day when it states none.
- An officer who is inactive in the directory (or gone from it) has left.

Each passes ALL the officer's open cases on: to their deputy, else another available lead of
the case's unit, else triage (routing.instead_of). Each new officer is told with the case's
history (assignment.reassign) and the team is told once. A service: the caller's transaction,
`now` passed in, nothing sent here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, select

from mailbridge.cases.assignment import holder, reassign
from mailbridge.cases.out_of_office import absent_until, reads_as_absence
from mailbridge.cases.routing import instead_of
from mailbridge.cases.service import SYSTEM
from mailbridge.directory import Officer
from mailbridge.outbound.notices import Mailer, queue_team_notice
from mailbridge.store.models import OPEN_STATUSES, Case
from mailbridge.store.people import mark_absent, mark_undeliverable


def officer_bounced(
    session: Session,
    mailer: Mailer,
    *,
    failed: Sequence[str],
    status: str,
    now: datetime,
    message_db_id: int,
) -> bool:
    """A delivery failure report naming officers' addresses; True if anyone was marked.

    A delay (4.x.x) is not a failure: the mail is still being tried.
    """
    if status.startswith(("2", "4")):
        return False
    officers = {o.id: o for a in failed if (o := mailer.directory.officer_by_address(a))}
    for officer in officers.values():
        address = next(a for a in failed if a.lower() in officer.addresses)
        reason = f"{address}: {status or 'delivery failed'}"
        mark_undeliverable(session, officer.id, now, reason)
        pass_on(session, mailer, officer, now, why="undeliverable",
                headline=f"Mail to {officer.name} bounced ({reason})",
                message_db_id=message_db_id)  # fmt: skip
    return bool(officers)


def officer_away(
    session: Session,
    mailer: Mailer,
    case: Case,
    *,
    sender: str,
    text: str,
    now: datetime,
    message_db_id: int,
) -> bool:
    """An auto-reply on `case`: if it is its officer's out-of-office, they are away. True if
    they were marked."""
    officer = mailer.directory.officer_by_address(sender)
    if officer is None or officer.id != case.officer or not reads_as_absence(text):
        return False
    today = mailer.calendar.local(now).date()
    until = absent_until(text, today) or mailer.calendar.next_working_day(today)
    mark_absent(session, officer.id, until, now)
    pass_on(session, mailer, officer, now, why="out-of-office",
            headline=f"{officer.name} is away until {until:%A} {until.day} {until:%B %Y}",
            message_db_id=message_db_id)  # fmt: skip
    return True


def pass_on_from_leavers(session: Session, mailer: Mailer, now: datetime) -> int:
    """Open cases held by officers who are inactive or gone from the directory go on; returns
    how many. Imported history is left alone: its officers are the old CRM's names."""
    held = session.exec(
        select(Case.officer)
        .where(
            Case.officer.is_not(None),
            Case.status.in_(OPEN_STATUSES),
            Case.origin != "imported",
        )
        .distinct()
    ).all()
    moved = 0
    for officer_id in sorted(held):
        officer = mailer.directory.officer(officer_id)
        if officer is not None and officer.active:
            continue
        leaver = officer or Officer(officer_id, officer_id, ())
        moved += pass_on(session, mailer, leaver, now, why="left",
                         headline=f"{leaver.name} has left (not active in the directory)",
                         message_db_id=None)  # fmt: skip
    return moved


def pass_on(
    session: Session,
    mailer: Mailer,
    officer: Officer,
    now: datetime,
    *,
    why: str,
    headline: str,
    message_db_id: int | None,
) -> int:
    """Every open case of `officer` to whoever covers for them, and one notice to the team."""
    today = mailer.calendar.local(now).date()
    cases = session.exec(
        select(Case)
        .where(Case.officer == officer.id, Case.status.in_(OPEN_STATUSES))
        .order_by(Case.id)
    ).all()
    lines = []
    for case in cases:
        route = instead_of(officer.id, case.delivery_unit, mailer.directory, today, why)
        reassign(session, mailer, case, route, now, actor=SYSTEM, misroute=False,
                 reason=f"{officer.name}: {why}", message_db_id=message_db_id)  # fmt: skip
        to = {"delivery_unit": route.delivery_unit, "officer": route.officer}
        lines.append(f"{case.reference} now with {holder(to, mailer.directory)} ({route.rule})")
    if not cases:
        lines.append(f"{officer.name} has no open cases to pass on.")
    queue_team_notice(
        session,
        mailer,
        cases[0] if len(cases) == 1 else None,
        dedupe_key=f"{why}:{officer.id}:{message_db_id or now.isoformat()}",
        headline=headline,
        lines=lines,
        now=now,
    )
    return len(cases)
