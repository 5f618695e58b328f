"""The clock's plan for a case: what falls due when, over Christmas, delays and downtime (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.config import check_settings, load_settings
from mailbridge.schedule.plan import CaseClock, Plan, digest_week, plan_case, upcoming
from mailbridge.schedule.policy import ClockPolicy, Digest, Sla

pytestmark = pytest.mark.unit
CAL = WorkingCalendar()
SLA = Sla()
REF = "ME-2026-00123"
THURSDAY_17_DEC = datetime(2026, 12, 17, 10, 0, tzinfo=UTC)


def at(day: int, month: int = 12, year: int = 2026, hour: int = 17, minute: int = 0) -> datetime:
    """A UTC time (in winter, council time too)."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def case(status: str = "awaiting_response", **fields) -> CaseClock:
    return CaseClock(reference=REF, status=status, received_at=THURSDAY_17_DEC, **fields)


def walk(c: CaseClock, until: datetime, sla: Sla = SLA, start: datetime = THURSDAY_17_DEC):
    return [(a.kind, a.key, a.due) for a in upcoming(c, CAL, sla, start, until)]


def test_an_enquiry_of_thursday_17_december_is_chased_and_escalated_on_working_days():
    assert walk(case(), at(8, 1, 2027)) == [
        ("chaser", f"chaser:{REF}:1", at(22)),  # working day 3
        ("escalation", f"escalation:{REF}:1", at(24)),  # day 5: the response is due
        ("escalation", f"escalation:{REF}:2", at(30)),  # 2 working days on, over Christmas
        ("escalation", f"escalation:{REF}:3", at(4, 1, 2027)),  # over New Year's Day
        ("escalation", f"escalation:{REF}:4", at(6, 1, 2027)),
        ("escalation", f"escalation:{REF}:5", at(8, 1, 2027)),
    ]


def test_the_chaser_goes_to_the_officer_and_escalations_to_the_manager():
    [chaser] = plan_case(case(), CAL, SLA, at(22)).actions
    [escalation] = plan_case(case(), CAL, SLA, at(24)).actions
    assert (chaser.to, chaser.number, chaser.on_date) == ("officer", 1, date(2026, 12, 24))
    assert (escalation.to, escalation.number) == ("manager", 1)


def test_nothing_is_due_a_minute_before_the_cut_off_and_the_plan_says_when_it_will_be():
    assert plan_case(case(), CAL, SLA, at(22, hour=16, minute=59)) == Plan((), at(22))
    assert plan_case(case(), CAL, SLA, THURSDAY_17_DEC).next_at == at(22)


def test_a_daemon_down_over_the_weekend_finds_fridays_chaser_once_on_monday():
    tuesday = replace(case(), received_at=at(15, hour=9))  # its chaser: Friday 18th at 17:00
    weekend = [at(18) + timedelta(hours=h) for h in range(0, 64)]  # to Monday 09:00
    due = [plan_case(tuesday, CAL, SLA, moment).actions for moment in weekend]
    assert {a.key for actions in due for a in actions} == {f"chaser:{REF}:1"}
    assert all(len(actions) == 1 for actions in due)


def test_after_downtime_only_the_latest_escalation_is_due_numbered_as_it_would_have_been():
    [action] = plan_case(case(), CAL, SLA, at(5, 1, 2027, hour=9)).actions
    assert (action.kind, action.number, action.due) == ("escalation", 3, at(4, 1, 2027))
    # the chaser is not sent late once the escalation it warned of is due
    [action] = plan_case(case(), CAL, SLA, at(28, hour=9)).actions
    assert action.key == f"escalation:{REF}:1"


def test_a_delay_moves_every_later_action_to_the_new_date():
    delayed = case("delay_advised", target_date=date(2027, 1, 8))
    assert walk(delayed, at(14, 1, 2027)) == [
        ("delay-reminder", f"delay-reminder:{REF}:2027-01-08", at(7, 1, 2027)),
        ("delay-passed", f"delay-passed:{REF}:2027-01-08", at(8, 1, 2027)),
        ("escalation", f"escalation:{REF}:2027-01-08:1", at(8, 1, 2027)),
        ("escalation", f"escalation:{REF}:2027-01-08:2", at(12, 1, 2027)),
        ("escalation", f"escalation:{REF}:2027-01-08:3", at(14, 1, 2027)),
    ]
    before = plan_case(delayed, CAL, SLA, at(24))
    assert before == Plan((), at(7, 1, 2027))  # no escalation against the old due date


def test_a_delay_to_a_date_after_a_bank_holiday_is_reminded_on_the_working_day_before_it():
    delayed = case("delay_advised", target_date=date(2026, 12, 29))
    [reminder] = plan_case(delayed, CAL, SLA, at(24)).actions
    assert (reminder.kind, reminder.to, reminder.due) == ("delay-reminder", "officer", at(24))
    passed = plan_case(delayed, CAL, SLA, at(29)).actions
    assert [(a.kind, a.to) for a in passed] == [
        ("delay-passed", "member"),
        ("escalation", "manager"),
    ]


def test_scheduled_work_is_followed_up_on_its_date_and_only_then():
    scheduled = case("work_scheduled", scheduled_for=date(2027, 1, 6))
    assert walk(scheduled, at(31, 1, 2027)) == [
        ("completion-check", f"completion-check:{REF}:2027-01-06", at(6, 1, 2027))
    ]
    assert plan_case(scheduled, CAL, SLA, at(6, 1, 2027)).next_at is None


def test_work_scheduled_for_a_saturday_is_checked_on_the_monday():
    scheduled = case("work_scheduled", scheduled_for=date(2027, 1, 9))
    [check] = plan_case(scheduled, CAL, SLA, at(11, 1, 2027)).actions
    assert (check.due, check.on_date) == (at(11, 1, 2027), date(2027, 1, 9))


def test_a_case_left_in_triage_is_put_to_the_team_once():
    triage = case("triage")
    assert walk(triage, at(31, 1, 2027)) == [("triage-overdue", f"triage-overdue:{REF}", at(18))]


def test_a_resolved_case_closes_after_ten_working_days_of_silence():
    resolved = case("resolved", resolved_at=at(21, hour=11))
    assert walk(resolved, at(31, 1, 2027)) == [("auto-close", f"auto-close:{REF}", at(7, 1, 2027))]


def test_a_member_who_replied_after_the_resolution_stops_the_auto_close():
    replied = case("resolved", resolved_at=at(21, hour=11), member_replied_at=at(22, hour=9))
    assert plan_case(replied, CAL, SLA, at(31, 1, 2027)) == Plan()
    earlier = replace(replied, member_replied_at=at(18, hour=9))  # before the resolution
    assert [a.kind for a in plan_case(earlier, CAL, SLA, at(31, 1, 2027)).actions] == ["auto-close"]


def test_a_case_reopened_by_partly_is_chased_afresh_with_keys_of_its_own():
    reopened = case(
        "awaiting_response", resolved_at=at(21, hour=11), feedback_at=at(4, 1, 2027, hour=10)
    )
    actions = walk(reopened, at(12, 1, 2027), start=at(4, 1, 2027))
    assert actions == [
        ("chaser", f"chaser:{REF}:2027-01-04:1", at(7, 1, 2027)),
        ("escalation", f"escalation:{REF}:2027-01-04:1", at(11, 1, 2027)),
    ]


@pytest.mark.parametrize(
    "quiet",
    [
        case("closed"),
        case("clarification"),  # waiting on the member, not the service
        case(origin="imported"),  # history is never chased
        case(kind="split"),  # its parts are
        case(kind="merged"),
        case(kind="not_me"),
    ],
)
def test_some_cases_are_never_chased(quiet):
    assert plan_case(quiet, CAL, SLA, at(31, 1, 2027)) == Plan()


def test_a_unit_with_its_own_figures_is_chased_on_them(tmp_path):
    config = tmp_path / "mailbridge.toml"
    config.write_text('[clock.units."Highways"]\nchaser_day = 2\nescalate_day = 7\n')
    policy = ClockPolicy.from_settings(load_settings(config, env={}).clock)
    highways = policy.for_unit("highways")
    assert (highways.chaser_day, highways.escalate_day, highways.escalate_every) == (2, 7, 2)
    assert policy.for_unit("Street Scene") == Sla()
    kinds = walk(case(delivery_unit="Highways"), at(31, 12), highways)
    assert [(k, d) for k, _, d in kinds] == [("chaser", at(21)), ("escalation", at(30))]


STATUSES = ("triage", "awaiting_response", "escalated", "delay_advised", "work_scheduled",
            "clarification", "resolved", "closed")  # fmt: skip


@pytest.mark.parametrize("status", STATUSES)
def test_the_next_action_is_always_after_now_so_a_sweep_never_spins(status):
    c = case(status, target_date=date(2027, 1, 8), scheduled_for=date(2027, 1, 6),
             resolved_at=at(21, hour=11) if status == "resolved" else None)  # fmt: skip
    moment = THURSDAY_17_DEC
    while moment < at(28, 2, 2027):
        plan = plan_case(c, CAL, SLA, moment)
        assert plan.next_at is None or plan.next_at > moment
        assert all(a.due <= moment for a in plan.actions)
        moment += timedelta(minutes=97)


def test_the_weekly_digest_is_due_at_eight_on_monday_council_time():
    assert digest_week(at(2, 12, hour=12), CAL, Digest()) == ("2026-W49", at(30, 11, hour=8))
    # in summer, 08:00 in London is 07:00 UTC
    assert digest_week(at(1, 7), CAL, Digest()) == ("2026-W27", at(29, 6, hour=7))
    friday_noon = Digest(weekday=4, at=time(12, 0))
    assert digest_week(at(30, 11), CAL, friday_noon) == ("2026-W49", at(4, 12, hour=12))


def test_every_bad_clock_setting_is_reported_with_its_file_and_key(tmp_path):
    config = tmp_path / "mailbridge.toml"
    config.write_text(
        "[clock]\n"
        "chaser_day = 5\n"  # not before escalate_day
        "escalate_every = 0\n"
        'digest_weekday = "Caturday"\n'
        'digest_time = "8 o\'clock"\n'
        "digest = 1\n"
        "sweep_seconds = 0\n"
        '[clock.units."Highways"]\n'
        "escalate_day = 2\n"  # before the council's chaser_day? its own check
        "chaser_days = 1\n"
        'auto_close_days = "ten"\n'
        "[clock.units.Parks]\n"
        "escalate_day = 9\n"  # fine
    )
    _, problems = check_settings(config, env={})
    found = {(p.where, p.key) for p in problems if p.severity == "error"}
    where = str(config)
    assert found == {
        (where, "clock.chaser_day"),
        (where, "clock.escalate_every"),
        (where, "clock.digest_weekday"),
        (where, "clock.digest_time"),
        (where, "clock.digest"),
        (where, "clock.sweep_seconds"),
        (where, 'clock.units."Highways".escalate_day'),
        (where, 'clock.units."Highways".chaser_days'),
        (where, 'clock.units."Highways".auto_close_days'),
    }


def test_the_clock_settings_default_to_design_section_5():
    clock = check_settings(None, env={})[0].clock
    policy = ClockPolicy.from_settings(clock)
    assert policy.default == Sla(3, 5, 2, 1, 1, 10)
    assert policy.digest == Digest(weekday=0, at=time(8, 0))
    assert (clock.response_days, clock.sweep_seconds) == (5, 60)
    no_digest = ClockPolicy.from_settings(replace(clock, digest=False))
    assert no_digest.digest is None
