"""The clock's database edge: find the cases due now, queue what their plans say, move them on.

"What is due now?" is an index range on case.next_action_at, never a scan of the open cases:
an idle sweep reads nothing. Each batch is one transaction. On PostgreSQL the batch's rows are
taken FOR UPDATE SKIP LOCKED, so a second sweeper (another daemon without the leader lock, or
`mailbridge sweep` run by hand) takes other cases and never waits; on SQLite BEGIN IMMEDIATE
makes sweepers take turns. Either way each email goes in under its dedupe key, so a slot swept
twice queues nothing twice, and a case's counters move only when its email is new.

Crash windows: a batch commits its emails, timeline events, counters and next_action_at
together. A crash before the commit leaves the cases due, and the next sweep does the same
work again; after it, the cases are moved on and nothing is redone.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session

from mailbridge.cases.routing import available
from mailbridge.cases.service import event_values, record_events
from mailbridge.directory import Officer
from mailbridge.outbound.notices import (
    Mailer,
    queue_digest,
    queue_notice,
    queue_service_notice,
    queue_team_notice,
)
from mailbridge.outbound.recipients import Recipients
from mailbridge.outbound.render import long_date
from mailbridge.schedule.plan import (
    AUTO_CLOSE,
    CHASER,
    COMPLETION_CHECK,
    DELAY_PASSED,
    DELAY_REMINDER,
    ESCALATION,
    TRIAGE_OVERDUE,
    Action,
    CaseClock,
    Plan,
    digest_due,
    plan_case,
)
from mailbridge.schedule.policy import ClockPolicy
from mailbridge.store.db import session
from mailbridge.store.models import OPEN_STATUSES, Case, Outbox

log = logging.getLogger(__name__)

BATCH = 500  # cases per transaction: short enough that SQLite's writer lock is never held long
RETRY_AFTER = timedelta(minutes=30)  # a case whose actions failed is looked at again then
# What each action writes on the case timeline when its email is new.
EVENTS = {
    CHASER: "chaser-sent",
    ESCALATION: "escalated",
    DELAY_REMINDER: "delay-reminder-sent",
    DELAY_PASSED: "delay-passed",
    COMPLETION_CHECK: "completion-check-sent",
    AUTO_CLOSE: "auto-closed",
    TRIAGE_OVERDUE: "triage-overdue",
}

_CASE = Case.__table__
_DUE = (  # the due cases' snapshots, oldest due first, locked (PostgreSQL) but never waited for
    select(_CASE.c.id, *(_CASE.c[name] for name in CaseClock.__dataclass_fields__))
    .where(_CASE.c.next_action_at <= bindparam("now"))
    .order_by(_CASE.c.next_action_at)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True)
)
_UPDATE_CASE = update(_CASE).where(_CASE.c.id == bindparam("case_row"))


@dataclass
class SweepStats:
    cases: int = 0  # cases whose plan was worked out
    queued: Counter[str] = field(default_factory=Counter)  # new emails, by action kind
    closed: int = 0
    failed: int = 0  # cases whose actions raised; retried after RETRY_AFTER


def sweep(
    engine: Engine, mailer: Mailer, policy: ClockPolicy, now: datetime, *, batch: int = BATCH
) -> SweepStats:
    """One sweep as of `now`: every case due, a batch per transaction, then the digests."""
    stats = SweepStats()
    while True:
        with session(engine) as s:
            seen = sweep_batch(s, mailer, policy, now, batch, stats)
            s.commit()
        if seen < batch:
            break
    if policy.digest is not None:
        with session(engine) as s:
            queue_digests(s, mailer, policy, now, stats)
            s.commit()
    return stats


def sweep_batch(
    s: Session, mailer: Mailer, policy: ClockPolicy, now: datetime, batch: int, stats: SweepStats
) -> int:
    """Plan up to `batch` due cases and act on them (the caller commits); returns how many."""
    rows = s.connection().execute(_DUE, {"now": now, "batch": batch}).all()
    calendar = mailer.calendar
    # _DUE selects the id, then CaseClock's fields in order: a snapshot by position is cheap.
    snapshots = {row[0]: CaseClock(*row[1:]) for row in rows}
    plans = {i: plan_case(c, calendar, policy.for_unit(c.delivery_unit), now)
             for i, c in snapshots.items()}  # fmt: skip
    stats.cases += len(rows)
    keys = [a.key for plan in plans.values() for a in plan.actions]
    done = queued_already(s, keys)
    busy = {
        case_id: plan
        for case_id, plan in plans.items()
        if any(a.key not in done or a.kind == AUTO_CLOSE for a in plan.actions)
    }
    cases = list(s.exec(select(Case).where(Case.id.in_(busy))).scalars()) if busy else []
    try:  # the fast path: the whole batch under one savepoint
        with s.connection().begin_nested():
            outcomes = [_act(s, mailer, policy, c, busy[c.id], done, now) for c in cases]
    except Exception:  # a case failed: again, a savepoint each, so that only it waits
        outcomes = [_act_alone(s, mailer, policy, c, busy[c.id], done, now) for c in cases]
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {("next_action_at",): [
        {"case_row": i, "next_action_at": p.next_at} for i, p in plans.items() if i not in busy
    ]}  # fmt: skip
    for case, outcome in zip(cases, outcomes, strict=True):
        changes = outcome.changes
        if set(changes) != {"next_action_at"}:
            changes["updated_at"] = now
        updates.setdefault(tuple(sorted(changes)), []).append({"case_row": case.id, **changes})
        stats.queued.update(outcome.queued)
        stats.closed += changes.get("status") == "closed"
        stats.failed += outcome.failed
    record_events(s, [entry for outcome in outcomes for entry in outcome.events])
    for params in updates.values():  # one executemany for each set of columns changed
        if params:
            s.connection().execute(_UPDATE_CASE, params)
    return len(rows)


def queued_already(s: Session, keys: list[str]) -> set[str]:
    """The dedupe keys among `keys` already in the outbox: a query per thousand keys."""
    found: set[str] = set()
    for i in range(0, len(keys), 1000):
        chunk = keys[i : i + 1000]
        rows = s.connection().execute(select(Outbox.dedupe_key).where(Outbox.dedupe_key.in_(chunk)))
        found.update(rows.scalars())
    return found


@dataclass
class _Outcome:
    """What acting on one case came to: its column changes, timeline entries and emails."""

    changes: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    queued: Counter[str] = field(default_factory=Counter)
    failed: bool = False


def _act(
    s: Session,
    mailer: Mailer,
    policy: ClockPolicy,
    case: Case,
    plan: Plan,
    done: set[str],
    now: datetime,
) -> _Outcome:
    """Queue one case's due emails; the rest (its changes, its timeline) is returned, to be
    written for the whole batch at once. The Case is only read, so nothing is flushed."""
    outcome = _Outcome({"next_action_at": plan.next_at})
    for action in plan.actions:
        new = action.key not in done and _send(s, mailer, policy, case, action, now)
        if new:
            outcome.queued[action.kind] += 1
            outcome.changes |= _counted(case, action)
        if action.kind == AUTO_CLOSE:
            outcome.changes |= {"status": "closed", "closed_at": now}
        if new or action.kind == AUTO_CLOSE:  # an auto-close is news even unmailed
            entry = event_values(case.id, now, EVENTS[action.kind], rule=f"clock:{action.kind}",
                                 detail=_detail(action))  # fmt: skip
            outcome.events.append(entry)
    return outcome


def _act_alone(
    s: Session,
    mailer: Mailer,
    policy: ClockPolicy,
    case: Case,
    plan: Plan,
    done: set[str],
    now: datetime,
) -> _Outcome:
    """`_act` under a savepoint of its own: a failure is logged and undone, and the case is
    looked at again after RETRY_AFTER while the sweep goes on with the others."""
    try:
        with s.connection().begin_nested():
            return _act(s, mailer, policy, case, plan, done, now)
    except Exception:  # one bad case must never stop the clock for the others
        log.exception("clock: case %s failed; retrying after %s", case.reference, RETRY_AFTER)
        return _Outcome({"next_action_at": now + RETRY_AFTER}, failed=True)


def _counted(case: Case, action: Action) -> dict[str, Any]:
    """What a new chaser or escalation changes on the case: its count, and its status."""
    if action.kind == CHASER:
        return {"chasers_sent": (case.chasers_sent or 0) + 1}
    if action.kind == ESCALATION:
        escalated = {"status": "escalated"} if case.status == "awaiting_response" else {}
        return {"escalations": (case.escalations or 0) + 1, **escalated}
    return {}


def _detail(action: Action) -> dict:
    detail = {"key": action.key, "due": action.due.isoformat()}
    if action.number:
        detail["number"] = action.number
    if action.on_date:
        detail["date"] = action.on_date.isoformat()
    return detail


def _send(
    s: Session, mailer: Mailer, policy: ClockPolicy, case: Case, action: Action, now: datetime
) -> bool:
    """Queue the action's email; True if it is new (False: queued before, or nobody to tell)."""
    key = action.key
    if action.to == "member":
        template = {DELAY_PASSED: "delay_passed", AUTO_CLOSE: "auto_closed"}[action.kind]
        return queue_notice(s, mailer, case, template, dedupe_key=key, now=now,
                            on_date=action.on_date)  # fmt: skip
    if action.to == "team":
        received = mailer.calendar.local(case.received_at)
        return queue_team_notice(
            s, mailer, case, dedupe_key=key, now=now,
            headline="Still in triage: no service has it yet",
            lines=[f"Received {long_date(received)} at {received:%H:%M}. Assign it with",
                   f"  mailbridge case assign {case.reference} UNIT --by NAME"],
        )  # fmt: skip
    recipients, manager = service_recipients(mailer, case, action.to, now)
    template, headline = {
        CHASER: ("chaser", "Reminder, response due"),
        ESCALATION: ("escalation", f"Escalation {action.number}"),
        DELAY_REMINDER: ("delay_reminder", "Delay date close"),
        COMPLETION_CHECK: ("completion_check", "Is the work done?"),
    }[action.kind]
    return queue_service_notice(
        s, mailer, case, template, dedupe_key=key, recipients=recipients, headline=headline,
        now=now, number=action.number, on_date=action.on_date, what=case.scheduled_what,
        manager_name=manager.name if manager else None,
        every=policy.for_unit(case.delivery_unit).escalate_every,
    )  # fmt: skip


def service_recipients(
    mailer: Mailer, case: Case, role: str, now: datetime
) -> tuple[Recipients, Officer | None]:
    """Who in the service a clock email goes to, and the manager named in an escalation.

    "officer": the case's officer, else the unit's leads, else the team. "manager": the
    officer's manager, else the unit's escalation manager (either only if available), else the
    team; copied to the unit's leads and the officer, so everyone sees the escalation.
    """
    directory = mailer.directory
    today = mailer.calendar.local(now).date()
    officer = directory.officer(case.officer) if case.officer else None
    unit = directory.delivery_unit(case.delivery_unit) if case.delivery_unit else None
    leads = [o for o in map(directory.officer, unit.leads if unit else ()) if o is not None]
    team = tuple(sorted(mailer.supervisors))
    if role == "officer":
        people = [officer] if officer else leads
        return Recipients(_first_addresses(people) or team, ()), None
    named = (officer.manager if officer else "", unit.escalation_manager if unit else "")
    manager = next(
        (m for m in map(directory.officer, filter(None, named)) if available(m, today)), None
    )
    copied = _first_addresses([*leads, *([officer] if officer else [])])
    to = _first_addresses([manager]) if manager else team
    return Recipients(to, tuple(a for a in copied if a not in to)), manager


def _first_addresses(people: list[Officer]) -> tuple[str, ...]:
    found: list[str] = []
    for person in people:
        if person.addresses and person.addresses[0] not in found:
            found.append(person.addresses[0])
    return tuple(found)


def queue_digests(
    s: Session, mailer: Mailer, policy: ClockPolicy, now: datetime, stats: SweepStats
) -> None:
    """This ISO week's digest, once it is due, to each opted-in member with open cases.

    Checked by every sweep for a day from its time (so a daemon down at 08:00 sends it when it
    is back) with one look-up of the week's dedupe keys; a member with no open case gets none.
    """
    week = digest_due(now, mailer.calendar, policy.digest)
    if week is None:
        return
    members = {f"digest:{m.id}:{week}": m for m in mailer.directory.members if m.digest}
    sent = queued_already(s, [*members])
    waiting = {m.id: m for key, m in members.items() if key not in sent}
    if not waiting:
        return
    cases = s.exec(
        select(Case)
        .where(Case.member.in_(waiting), Case.status.in_(OPEN_STATUSES))
        .order_by(Case.received_at, Case.id)
    ).scalars()
    by_member: dict[str, list[Case]] = {}
    for case in cases:
        by_member.setdefault(case.member, []).append(case)
    for member_id, open_cases in by_member.items():
        if queue_digest(s, mailer, waiting[member_id], open_cases, week=week, now=now):
            stats.queued["digest"] += 1
