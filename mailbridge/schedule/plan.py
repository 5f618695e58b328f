"""What the clock does for one case, and when: pure, over a plain snapshot, the time passed in.

Every action falls due at the cut-off of a working day (WorkingCalendar.due_at), when that
day's time is up:

- awaiting a response: a chaser to the officer at day `chaser_day` (3), then an escalation to
  their manager at `escalate_day` (5, when the response is due) and every `escalate_every` (2)
  working days after, copying the unit's leads;
- delay advised (#delay D): no chasing against the old due date; the officer is reminded
  `delay_reminder_days_before` (1) working day before D; if D passes unresolved the member is
  told and the escalations start again from D, as from a new due date;
- work scheduled (#scheduled D): on D the officer is asked to confirm the work is done
  (#resolved on a work_scheduled case confirms it, and the member is told);
- in triage longer than `misroute_flag_days` (1): the team is told, once;
- resolved: closed `auto_close_days` (10) after resolution unless the member replied since;
- a case open again after a resolution is chased in a fresh round, with keys of its own,
  counted from the member's #partly (or, after `case reopen`, from the resolution: the case
  keeps no time of reopening).

Catch-up: each rule takes the latest slot at or before `now`, never a history of sends. A sweep
run late or after downtime finds the one thing due now (Monday's chaser once, not three; of
several missed escalations only the latest, numbered as it would have been), and each slot has
its own dedupe key, so running the same slot twice queues nothing twice. `Plan.next_at` is
always after `now`, or None when nothing can ever fall due without some other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.schedule.policy import Digest, Sla
from mailbridge.store.models import MERGED, SPLIT

CHASER = "chaser"
ESCALATION = "escalation"
DELAY_REMINDER = "delay-reminder"
DELAY_PASSED = "delay-passed"
COMPLETION_CHECK = "completion-check"
AUTO_CLOSE = "auto-close"
TRIAGE_OVERDUE = "triage-overdue"
CHASED = ("awaiting_response", "escalated", "delay_advised", "work_scheduled")
# Imported history is never chased. Nor is a split enquiry (its parts are, each on its own
# clock), a case merged into another (that one carries on), or one that is not ours (not_me).
UNCHASED_KINDS = (SPLIT, MERGED, "not_me")
DIGEST_CATCH_UP = timedelta(days=1)


@dataclass(frozen=True)
class CaseClock:
    """What the clock needs to know of a case, and nothing it does not."""

    reference: str
    status: str
    received_at: datetime
    origin: str = "direct"
    delivery_unit: str | None = None
    resolved_at: datetime | None = None
    feedback_at: datetime | None = None
    member_replied_at: datetime | None = None
    target_date: date | None = None  # #delay
    scheduled_for: date | None = None  # #scheduled
    kind: str = "members_enquiry"

    @classmethod
    def of(cls, case: Any) -> CaseClock:
        """The snapshot of a Case, or of a row with the same column names."""
        return cls(**{name: getattr(case, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Action:
    kind: str  # CHASER, ESCALATION, ...
    key: str  # the outbox dedupe key: one email per slot, ever
    to: str  # who it is for: "officer", "manager", "member" or "team"
    due: datetime  # when the slot fell due
    number: int = 0  # a chaser's or escalation's number within its round
    on_date: date | None = None  # the delay's or the work's date; a chaser's response date


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    next_at: datetime | None = None  # the next slot, strictly after `now`


NOTHING = Plan()


def plan_case(case: CaseClock, calendar: WorkingCalendar, sla: Sla, now: datetime) -> Plan:
    """The actions due for `case` at `now` and when the next one falls due."""
    if case.origin == "imported" or case.kind in UNCHASED_KINDS:
        return NOTHING
    if case.status == "triage":
        return _triage(case, calendar, sla, now)
    if case.status == "resolved":
        return _auto_close(case, calendar, sla, now)
    if case.status == "work_scheduled" and case.scheduled_for:
        return _completion(case, calendar, now)
    if case.status == "delay_advised" and case.target_date:
        return _delay(case, calendar, sla, now)
    if case.status in CHASED:
        return _chase(case, calendar, sla, now)
    return NOTHING  # closed; clarification waits on the member, not the service


def upcoming(
    case: CaseClock,
    calendar: WorkingCalendar,
    sla: Sla,
    start: datetime,
    end: datetime,
    sent: frozenset[str] = frozenset(),
) -> list[Action]:
    """Everything the clock will send for `case` from `start` to `end` if nothing else happens.

    The sweep's own plan, stepped from slot to slot as a sweep every minute would meet them;
    an action already due at `start` and not yet `sent` goes at the next sweep.
    """
    found: list[Action] = []
    seen = set(sent)
    at: datetime | None = start
    while at is not None and at <= end:
        plan = plan_case(case, calendar, sla, at)
        for action in plan.actions:
            if action.key not in seen:
                seen.add(action.key)
                found.append(action)
        at = plan.next_at
    return found


def digest_week(now: datetime, calendar: WorkingCalendar, digest: Digest) -> tuple[str, datetime]:
    """The ISO week `now` falls in, in council time ("2026-W48"), and when its digest is due."""
    today = calendar.local(now).date()
    year, week, weekday = today.isocalendar()
    day = today - timedelta(days=weekday - 1) + timedelta(days=digest.weekday)
    return f"{year}-W{week:02d}", calendar.local_at(day, digest.at)


def digest_due(now: datetime, calendar: WorkingCalendar, digest: Digest) -> str | None:
    """The week whose digest is due at `now`, if any: from its time for DIGEST_CATCH_UP, so
    a daemon that was down sends it late, but a week's digest never arrives mid-week."""
    week, due = digest_week(now, calendar, digest)
    return week if due <= now < due + DIGEST_CATCH_UP else None


def _key(kind: str, reference: str, *parts: object) -> str:
    return ":".join([kind, reference, *map(str, parts)])


def _chase(case: CaseClock, calendar: WorkingCalendar, sla: Sla, now: datetime) -> Plan:
    """A chaser, then escalations, counted from receipt (or from a reopening)."""
    anchor, tag = case.received_at, ()
    if case.resolved_at is not None:  # reopened: a fresh round, with keys of its own
        anchor = max(case.resolved_at, case.feedback_at or case.resolved_at)
        tag = (calendar.local(anchor).date().isoformat(),)
    chaser = calendar.due_at(anchor, sla.chaser_day)
    if now < chaser:
        return Plan((), chaser)
    first_day = calendar.add_working_days(calendar.clock_start(anchor), sla.escalate_day)
    first = calendar.at_cutoff(first_day)
    if now < first:
        key = _key(CHASER, case.reference, *tag, 1)
        action = Action(CHASER, key, "officer", chaser, 1, first_day)  # due by first_day
        return Plan((action,), first)
    return _escalation(case, calendar, sla, now, first_day, tag)


def _escalation(
    case: CaseClock,
    calendar: WorkingCalendar,
    sla: Sla,
    now: datetime,
    first_day: date,
    tag: tuple[str, ...],
    before: tuple[Action, ...] = (),
    on_date: date | None = None,
) -> Plan:
    """The latest escalation slot at or before `now` (the first falls on `first_day`)."""
    number, day = 1, first_day
    while True:
        following = calendar.add_working_days(day, sla.escalate_every)
        if calendar.at_cutoff(following) > now:
            break
        number, day = number + 1, following
    action = Action(
        ESCALATION,
        _key(ESCALATION, case.reference, *tag, number),
        "manager",
        calendar.at_cutoff(day),
        number,
        on_date,
    )
    return Plan((*before, action), calendar.at_cutoff(following))


def _delay(case: CaseClock, calendar: WorkingCalendar, sla: Sla, now: datetime) -> Plan:
    """A reminder before the new date; once it passes, the member hears and escalation starts."""
    new_date = case.target_date
    reminder_day = new_date
    for _ in range(sla.delay_reminder_days_before):
        reminder_day = calendar.previous_working_day(reminder_day)
    reminder = calendar.at_cutoff(reminder_day)
    if now < reminder:
        return Plan((), reminder)
    acted_on = calendar.working_day_on_or_after(new_date)
    passed = calendar.at_cutoff(acted_on)
    if now < passed:
        key = _key(DELAY_REMINDER, case.reference, new_date)
        return Plan((Action(DELAY_REMINDER, key, "officer", reminder, 0, new_date),), passed)
    told = Action(
        DELAY_PASSED, _key(DELAY_PASSED, case.reference, new_date), "member", passed, 0, new_date
    )
    tag = (new_date.isoformat(),)
    return _escalation(case, calendar, sla, now, acted_on, tag, (told,), new_date)


def _completion(case: CaseClock, calendar: WorkingCalendar, now: datetime) -> Plan:
    """On the scheduled date (or the next working day), ask the officer whether it is done."""
    on = case.scheduled_for
    check = calendar.at_cutoff(calendar.working_day_on_or_after(on))
    if now < check:
        return Plan((), check)
    key = _key(COMPLETION_CHECK, case.reference, on)
    return Plan((Action(COMPLETION_CHECK, key, "officer", check, 0, on),))


def _auto_close(case: CaseClock, calendar: WorkingCalendar, sla: Sla, now: datetime) -> Plan:
    """Closed after `auto_close_days` of silence from the member since the resolution."""
    if case.resolved_at is None:
        return NOTHING
    if case.member_replied_at is not None and case.member_replied_at > case.resolved_at:
        return NOTHING  # the member answered: the team or the officer takes it from here
    close = calendar.due_at(case.resolved_at, sla.auto_close_days)
    if now < close:
        return Plan((), close)
    return Plan((Action(AUTO_CLOSE, _key(AUTO_CLOSE, case.reference), "member", close),))


def _triage(case: CaseClock, calendar: WorkingCalendar, sla: Sla, now: datetime) -> Plan:
    """A case nobody has routed within `misroute_flag_days` is put in front of the team."""
    flag = calendar.due_at(case.received_at, sla.misroute_flag_days)
    if now < flag:
        return Plan((), flag)
    key = _key(TRIAGE_OVERDUE, case.reference)
    return Plan((Action(TRIAGE_OVERDUE, key, "team", flag),))
