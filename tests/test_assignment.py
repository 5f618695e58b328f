"""A case changes hands in one place: first assignment, reroutes, the misroute flag time, and
the new officer told with the history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailbridge.cases.assignment import (
    TO_TRIAGE,
    history_lines,
    reassign,
    route_to,
    status_after,
)
from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.routing import Route, Router
from mailbridge.directory import load_directory
from mailbridge.store.models import Event
from tests.casework import LEE, NOW, PATEL, SINGH, WALSH, Desk, fly_tipping
from tests.conftest import MAILBOX, TEST_DIRECTORY
from tests.mail import make_email

DIRECTORY, _ = load_directory(TEST_DIRECTORY)
HIGHWAYS = Route("Highways", "o-walsh", "named-unit")
TUESDAY_11 = NOW + timedelta(days=1, hours=1)  # 25 working hours after Monday 10:00


@pytest.mark.unit
@pytest.mark.parametrize(
    ("status", "has_officer", "misroute", "expected"),
    [
        ("awaiting_response", True, True, "awaiting_response"),
        ("triage", True, False, "awaiting_response"),
        ("awaiting_response", False, True, "triage"),
        ("delay_advised", True, False, "delay_advised"),  # a deputy takes over the promise
        ("work_scheduled", True, False, "work_scheduled"),
        ("clarification", True, False, "clarification"),
        ("delay_advised", True, True, "awaiting_response"),  # the wrong service's promise
        ("escalated", True, False, "awaiting_response"),  # the new officer starts afresh
        ("work_scheduled", False, False, "triage"),
        ("resolved", True, True, "resolved"),  # changing hands never reopens a case
        ("closed", False, False, "closed"),
    ],
)
def test_the_status_a_case_has_after_changing_hands(status, has_officer, misroute, expected):
    assert status_after(status, has_officer=has_officer, misroute=misroute) == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("highways", HIGHWAYS),
        (" Street Scene ", Route("Street Scene", "o-singh", "named-unit")),
        ("Mia Lee", Route("Street Scene", "o-lee", "named-officer")),
        ("RORY.WALSH@council.example", Route("Highways", "o-walsh", "named-officer")),
        ("o-khan", Route("Housing", "o-khan", "named-officer")),
        ("Parks", None),
        ("", None),
    ],
)
def test_a_target_names_a_unit_or_an_officer(target, expected):
    assert route_to(Router(DIRECTORY), target, NOW.date()) == expected


@pytest.mark.unit
def test_the_history_a_new_officer_reads_is_short_and_says_who_moved_it_where():
    class Mailer:  # what history_lines reads of the real one
        calendar, directory = WorkingCalendar(), DIRECTORY

    events = [
        Event(case_id=1, at=NOW, actor="member:cllr-patel", kind="case-opened",
              detail={"subject": "Bins"}),
        Event(case_id=1, at=NOW, actor="mailbridge", kind="email-queued", detail={}),
        Event(case_id=1, at=TUESDAY_11, actor="officer:o-singh", kind="rerouted",
              rule="named-unit", detail={"from": {"delivery_unit": "Street Scene",
              "officer": "o-singh"}, "to": {"delivery_unit": "Highways", "officer": "o-walsh"},
              "reason": "#wrong-service Highways"}),
    ]  # fmt: skip
    lines = history_lines(events, Mailer())
    assert lines == [
        "Mon 23 Nov 10:00  case-opened by member:cllr-patel: Bins",
        "Tue 24 Nov 11:00  rerouted (named-unit) by officer:o-singh: Street Scene (Dev Singh)"
        " -> Highways (Rory Walsh), #wrong-service Highways",
    ]
    many = [Event(case_id=1, at=NOW, actor="x", kind=f"k{i}", detail={}) for i in range(30)]
    assert len(history_lines(many, Mailer())) == 12


@pytest.fixture
def desk(maildir, db_url):
    d = Desk(maildir, db_url)
    yield d
    d.close()


def move(desk: Desk, route: Route, *, misroute: bool, actor="cli:sam", reason="test") -> None:
    now = desk.clock.now()
    desk.act("ME-2026-00001", lambda s, case: reassign(
        s, desk.ctx.mailer, case, route, now, actor=actor, reason=reason, misroute=misroute
    ))  # fmt: skip


def test_a_misroute_counts_one_reroute_and_the_working_time_to_the_flag(desk):
    desk.receive(fly_tipping())
    desk.clock.current = TUESDAY_11
    move(desk, HIGHWAYS, misroute=True)
    case = desk.case()
    assert (case.delivery_unit, case.officer, case.status) == ("Highways", "o-walsh",
                                                               "awaiting_response")  # fmt: skip
    assert (case.first_delivery_unit, case.first_assigned_at) == ("Street Scene", NOW)
    assert (case.reroutes, case.misroute_flag_seconds) == (1, 25 * 3600)
    assert case.next_action_at == TUESDAY_11
    last = desk.events()[-1]
    assert (last.kind, last.actor, last.rule) == ("rerouted", "cli:sam", "named-unit")
    assert last.detail == {
        "from": {"delivery_unit": "Street Scene", "officer": "o-singh"},
        "to": {"delivery_unit": "Highways", "officer": "o-walsh"},
        "reason": "test",
    }


def test_a_second_misroute_counts_again_but_the_flag_time_is_the_first(desk):
    desk.receive(fly_tipping())
    desk.clock.current = TUESDAY_11
    move(desk, HIGHWAYS, misroute=True)
    desk.clock.advance(timedelta(days=1))
    move(desk, Route("Housing", "o-khan", "named-unit"), misroute=True)
    case = desk.case()
    assert (case.reroutes, case.misroute_flag_seconds) == (2, 25 * 3600)
    assert case.first_delivery_unit == "Street Scene"


def test_the_new_officer_gets_the_enquiry_with_where_it_was_and_its_timeline(desk):
    desk.receive(fly_tipping())
    move(desk, HIGHWAYS, misroute=True, reason="potholes are ours")
    [row] = desk.outbox(to=[WALSH])
    assert row.kind == "forward" and row.dedupe_key.startswith("reassign:ME-2026-00001:")
    [text] = desk.mail_to(WALSH)
    assert "Was with:  Street Scene (Dev Singh)" in text
    assert "case-opened" in text and "rerouted (named-unit) by cli:sam" in text
    assert "potholes are ours" in text and "Bags dumped." in text
    assert desk.people()[WALSH] == "officer"


def test_each_reassignment_tells_its_officer_once_and_never_collides_with_the_first_forward(desk):
    desk.receive(fly_tipping())
    move(desk, HIGHWAYS, misroute=True)
    move(desk, Route("Street Scene", "o-singh", "named-unit"), misroute=True)
    keys = [r.dedupe_key for r in desk.outbox(kind="forward")]
    assert len(keys) == len(set(keys)) == 3 and keys[0] == "forward:ME-2026-00001"
    assert len(desk.outbox(to=[SINGH])) == 2  # first from the pipeline, then back again


def test_a_first_assignment_out_of_triage_is_not_a_reroute(desk):
    desk.receive(make_email("jo@resident.example", [MAILBOX], "Pothole", "Deep."))
    assert desk.case().status == "triage" and desk.case().first_assigned_at is None
    desk.clock.current = TUESDAY_11
    move(desk, HIGHWAYS, misroute=True)  # even when called a misroute: it was never routed
    case = desk.case()
    assert (case.first_delivery_unit, case.first_assigned_at) == ("Highways", TUESDAY_11)
    assert (case.reroutes, case.misroute_flag_seconds, case.status) == (
        0,
        None,
        "awaiting_response",
    )
    assert desk.events()[-1].kind == "assigned"


def test_a_handover_is_not_a_misroute_and_keeps_the_services_promise(desk):
    desk.receive(fly_tipping())
    desk.receive(make_email(SINGH, [MAILBOX], "Re: [ME-2026-00001]", "#delay 2026-12-11 crew"))
    move(desk, Route("Street Scene", "o-lee", "deputy"), misroute=False)
    case = desk.case()
    assert (case.officer, case.status, case.reroutes) == ("o-lee", "delay_advised", 0)
    assert desk.events()[-1].kind == "reassigned"
    assert [t for t in desk.mail_to(LEE) if "Was with:  Street Scene (Dev Singh)" in t]


def test_back_to_triage_counts_the_misroute_and_emails_nobody(desk):
    desk.receive(fly_tipping())
    before = len(desk.outbox())
    move(desk, TO_TRIAGE, misroute=True)
    case = desk.case()
    assert (case.status, case.delivery_unit, case.officer, case.reroutes) == (
        "triage",
        None,
        None,
        1,
    )
    assert len(desk.outbox()) == before


def test_an_officers_wrong_service_is_timed_to_the_email_not_to_when_it_was_read(desk):
    desk.receive(fly_tipping())
    desk.clock.current = NOW + timedelta(days=2)  # the daemon reads it on Wednesday
    flagged = make_email(SINGH, [MAILBOX], "Re: [ME-2026-00001]", "#wrong-service Highways")
    desk.receive(flagged, at=TUESDAY_11)
    case = desk.case()
    assert (case.delivery_unit, case.reroutes, case.misroute_flag_seconds) == (
        "Highways",
        1,
        25 * 3600,
    )
    last = desk.events()[-1]
    assert (last.kind, last.actor, last.detail["reason"]) == (
        "rerouted",
        "officer:o-singh",
        "#wrong-service Highways",
    )
    assert last.message_db_id is not None


def test_wrong_service_may_name_an_officer_or_send_an_unknown_unit_back_to_the_team(desk):
    desk.receive(fly_tipping())
    desk.receive(make_email(SINGH, [MAILBOX], "Re: [ME-2026-00001]", "#wrong-service Mia Lee"))
    assert (desk.case().officer, desk.case().reroutes) == ("o-lee", 1)
    desk.receive(make_email(LEE, [MAILBOX], "Re: [ME-2026-00001]", "#wrong-service Parks"))
    case = desk.case()
    assert (case.status, case.officer, case.reroutes) == ("triage", None, 2)
    assert "not a known unit or officer" in desk.events()[-1].detail["reason"]


def test_a_member_is_never_the_one_to_reroute(desk):
    desk.receive(fly_tipping())
    desk.receive(make_email(PATEL, [MAILBOX], "Re: [ME-2026-00001]", "#wrong-service Highways"))
    assert (desk.case().delivery_unit, desk.case().reroutes) == ("Street Scene", 0)
