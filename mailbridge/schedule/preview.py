"""What the clock will send, and when, if nothing else happens: the supervisor's week ahead.

The sweep's own plan (plan.upcoming), stepped forward from slot to slot for every case it
could act on, less what the outbox already holds; with the weekly digests. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from mailbridge.outbound.notices import Mailer
from mailbridge.schedule.plan import DIGEST_CATCH_UP, CaseClock, digest_week, upcoming
from mailbridge.schedule.policy import ClockPolicy
from mailbridge.schedule.sweep import queued_already, service_recipients
from mailbridge.store.models import OPEN_STATUSES, Case


@dataclass(frozen=True)
class Upcoming:
    at: datetime  # when it goes: its slot, or the next sweep if that has already passed
    due: datetime  # when its slot fell (or falls) due
    reference: str | None  # None for a digest
    kind: str
    to: tuple[str, ...]
    key: str


def preview(
    s: Session, mailer: Mailer, policy: ClockPolicy, start: datetime, end: datetime
) -> list[Upcoming]:
    """Every email the clock would queue from `start` to `end`, in the order it would go."""
    found: list[Upcoming] = []
    cases = list(s.exec(select(Case).where(Case.status != "closed", Case.origin != "imported")))
    for case in cases:
        sla = policy.for_unit(case.delivery_unit)
        for action in upcoming(CaseClock.of(case), mailer.calendar, sla, start, end):
            at = max(action.due, start)
            to = _addressees(mailer, case, action.to, at)
            found.append(Upcoming(at, action.due, case.reference, action.kind, to, action.key))
    found += _digests(mailer, policy, cases, start, end)
    sent = queued_already(s, [u.key for u in found])
    return sorted((u for u in found if u.key not in sent), key=lambda u: (u.at, u.key))


def _addressees(mailer: Mailer, case: Case, role: str, at: datetime) -> tuple[str, ...]:
    if role == "member":
        return (case.member_address,) if case.member_address else ()
    if role == "team":
        return tuple(sorted(mailer.supervisors))
    recipients, _ = service_recipients(mailer, case, role, at)
    return recipients.to + recipients.cc


def _digests(
    mailer: Mailer, policy: ClockPolicy, cases: list[Case], start: datetime, end: datetime
) -> list[Upcoming]:
    """Each week's digest in the window, to opted-in members with open cases today."""
    if policy.digest is None:
        return []
    with_open = {c.member for c in cases if c.status in OPEN_STATUSES}
    members = [m for m in mailer.directory.members if m.digest and m.id in with_open]
    found, at = [], start
    while True:
        week, due = digest_week(at, mailer.calendar, policy.digest)
        if due > end:
            return found
        if start >= due + DIGEST_CATCH_UP:  # this week's has gone (or was missed)
            at = due + timedelta(days=7)
            continue
        found += [
            Upcoming(
                max(due, start), due, None, "digest", (m.addresses[0],), f"digest:{m.id}:{week}"
            )
            for m in members
        ]
        at = due + timedelta(days=7)
