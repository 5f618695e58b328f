"""A supervisor's actions on a case: each one event with who did it, and a clear refusal of
anything that makes no sense, with nothing changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mailbridge.cases import supervision
from mailbridge.cases.routing import Router
from mailbridge.cases.supervision import SupervisionError
from mailbridge.directory import Directory
from tests.casework import LEE, NOW, PATEL, SINGH, WALSH, Desk, fly_tipping
from tests.conftest import MAILBOX
from tests.mail import make_email

REF = "ME-2026-00001"


@pytest.fixture
def desk(maildir, db_url):
    d = Desk(maildir, db_url)
    yield d
    d.close()


def do(desk: Desk, action, *, reference=REF, **kw):
    """supervision.<action> on the case, as Sam at the desk's clock, with the desk's mailer
    and router for the actions that take them."""
    wiring = {supervision.assign: 2, supervision.reroute: 2, supervision.add_stakeholder: 1}
    extra = (desk.ctx.mailer, desk.ctx.router)[: wiring.get(action, 0)]
    now = desk.clock.now()
    return desk.act(reference, lambda s, case: action(s, *extra, case, now, by="sam", **kw))


def refused(desk: Desk, action, *, match: str, **kw) -> None:
    before = (desk.case().model_dump(), len(desk.events()), len(desk.outbox()))
    with pytest.raises(SupervisionError, match=match):
        do(desk, action, **kw)
    assert (desk.case().model_dump(), len(desk.events()), len(desk.outbox())) == before


def test_an_unknown_case_is_named_in_the_refusal(desk):
    with pytest.raises(SupervisionError, match="no case ME-2026-00999"):
        do(desk, supervision.note, reference="ME-2026-00999", text="hello")


def test_assigning_a_triage_case_is_its_first_assignment_not_a_reroute(desk):
    desk.receive(make_email("jo@resident.example", [MAILBOX], "Pothole", "Deep."))
    route = do(desk, supervision.assign, target="Highways", reason="a pothole")
    case = desk.case()
    assert (route.officer, case.status, case.first_delivery_unit, case.reroutes) == (
        "o-walsh",
        "awaiting_response",
        "Highways",
        0,
    )
    last = desk.events()[-1]
    assert (last.kind, last.actor, last.detail["reason"]) == ("assigned", "cli:sam", "a pothole")
    assert [t for t in desk.mail_to(WALSH) if "Deep." in t]


def test_assigning_to_a_colleague_is_a_handover(desk):
    desk.receive(fly_tipping())
    do(desk, supervision.assign, target="mia.lee@council.example")
    case = desk.case()
    assert (case.officer, case.reroutes, desk.events()[-1].kind) == ("o-lee", 0, "reassigned")
    assert desk.mail_to(LEE)


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("Parks", "no delivery unit or officer 'Parks'"),
        ("Street Scene", r"already with Street Scene \(Dev Singh\)"),
        ("Dev Singh", "already with"),
    ],
)
def test_assigning_where_it_cannot_go_is_refused(desk, target, match):
    desk.receive(fly_tipping())
    refused(desk, supervision.assign, target=target, match=match)


def test_an_officer_who_is_not_available_cannot_be_given_a_case(desk):
    desk.receive(fly_tipping())
    d = desk.ctx.directory
    away = Directory(
        members=d.members,
        delivery_units=d.delivery_units,
        officers=tuple(replace(o, active=False) if o.id == "o-lee" else o for o in d.officers),
    )
    desk.ctx = replace(
        desk.ctx, router=Router(away), mailer=replace(desk.ctx.mailer, directory=away)
    )
    refused(desk, supervision.assign, target="Mia Lee", match="Mia Lee is not available")


def test_a_supervisors_reroute_counts_against_first_time_right(desk):
    desk.receive(fly_tipping())
    desk.clock.advance(timedelta(hours=2))
    do(desk, supervision.reroute, target="Highways")
    case = desk.case()
    assert (case.delivery_unit, case.officer, case.reroutes) == ("Highways", "o-walsh", 1)
    assert case.misroute_flag_seconds == 2 * 3600
    last = desk.events()[-1]
    assert (last.kind, last.actor) == ("rerouted", "cli:sam")
    assert [t for t in desk.mail_to(WALSH) if "Was with:  Street Scene (Dev Singh)" in t]


def test_a_case_never_assigned_cannot_be_rerouted(desk):
    desk.receive(make_email("jo@resident.example", [MAILBOX], "Pothole", "Deep."))
    refused(desk, supervision.reroute, target="Highways", match="never assigned")


def test_a_closed_case_must_be_reopened_before_it_moves(desk):
    desk.receive(fly_tipping())
    do(desk, supervision.close)
    refused(desk, supervision.reroute, target="Highways", match="reopen it first")


def test_reclassifying_needs_an_approver_and_a_known_kind(desk):
    desk.receive(fly_tipping())
    do(desk, supervision.reclassify, kind="FOI", approved_by="Jo Manager")
    case = desk.case()
    assert (case.kind, case.next_action_at) == ("foi", NOW)
    last = desk.events()[-1]
    assert (last.kind, last.actor) == ("reclassified", "cli:sam")
    assert last.detail == {"from": "members_enquiry", "to": "foi", "approved_by": "Jo Manager"}
    refused(desk, supervision.reclassify, kind="not-me", approved_by=" ", match="--approved-by")
    refused(desk, supervision.reclassify, kind="complaint", approved_by="Jo", match="unknown kind")
    refused(desk, supervision.reclassify, kind="foi", approved_by="Jo", match="already foi")


def test_reopening_puts_a_resolved_case_back_with_the_service_and_keeps_its_dates(desk):
    desk.receive(fly_tipping())
    desk.receive(make_email(SINGH, [MAILBOX], "Re: [ME-2026-00001]", "Done.\n#resolved"))
    desk.receive(make_email(PATEL, [MAILBOX], "Re: [ME-2026-00001]", "#not-satisfied"))
    closed = desk.case()
    assert closed.status == "closed" and closed.closed_at is not None
    desk.clock.advance(timedelta(days=3))
    do(desk, supervision.reopen, approved_by="Jo Manager", reason="half answered")
    case = desk.case()
    assert (case.status, case.closed_at, case.officer) == ("awaiting_response", None, "o-singh")
    assert (case.due_at, case.resolved_at) == (closed.due_at, closed.resolved_at)
    assert case.next_action_at == NOW + timedelta(days=3)
    last = desk.events()[-1]
    assert (last.kind, last.actor, last.detail["approved_by"]) == (
        "reopened",
        "cli:sam",
        "Jo Manager",
    )
    assert last.detail["before"]["status"] == "closed"


def test_only_a_finished_case_can_be_reopened_and_only_with_approval(desk):
    desk.receive(fly_tipping())
    refused(desk, supervision.reopen, approved_by="Jo", match="is open .awaiting_response.")
    do(desk, supervision.close)
    refused(desk, supervision.reopen, approved_by="", match="--approved-by")


def test_closing_by_hand_records_why_and_when(desk):
    desk.receive(fly_tipping())
    desk.clock.advance(timedelta(hours=1))
    do(desk, supervision.close, reason="withdrawn")
    case = desk.case()
    assert (case.status, case.closed_at) == ("closed", NOW + timedelta(hours=1))
    assert desk.events()[-1].detail == {"from": "awaiting_response", "reason": "withdrawn"}
    refused(desk, supervision.close, match="already closed")


def test_closing_the_last_open_part_by_hand_resolves_the_originating_case(desk):
    desk.receive(
        make_email(PATEL, [MAILBOX], "Two things",
                   "Dear team,\n\n1. Fly-tipping on Mill Lane.\n2. A pothole on the High Street.\n")
    )  # fmt: skip
    assert desk.case().status == "awaiting_response" and desk.case(f"{REF}-1")
    desk.clock.advance(timedelta(hours=1))
    do(desk, supervision.close, reference=f"{REF}-1", reason="answered by phone")
    assert desk.case().status == "awaiting_response"  # one part is still with Highways
    do(desk, supervision.close, reference=f"{REF}-2", reason="duplicate of another case")
    parent = desk.case()
    assert (parent.status, parent.resolved_at) == ("resolved", NOW + timedelta(hours=1))
    assert desk.events()[-1].rule == "all-parts-resolved"


def test_a_note_is_on_the_timeline_and_emails_nobody(desk):
    desk.receive(fly_tipping())
    before = len(desk.outbox())
    do(desk, supervision.note, text="  Rang the resident  ")
    last = desk.events()[-1]
    assert (last.kind, last.actor, last.detail) == (
        "internal-note",
        "cli:sam",
        {"text": "Rang the resident"},
    )
    assert len(desk.outbox()) == before
    refused(desk, supervision.note, text=" ", match="needs some text")


def test_a_stakeholder_added_by_hand_is_copied_on_the_officers_reply(desk):
    desk.receive(fly_tipping())
    do(desk, supervision.add_stakeholder, address="Jo@Resident.example", name="Jo")
    assert desk.people()["jo@resident.example"] == "stakeholder"
    assert desk.events()[-1].detail == {"address": "jo@resident.example", "name": "Jo"}
    desk.receive(make_email(SINGH, [MAILBOX], "Re: [ME-2026-00001]", "Cleared today."))
    assert [t for t in desk.mail_to("jo@resident.example") if "Cleared today." in t]


@pytest.mark.parametrize(
    ("address", "match"),
    [
        ("not an address", "not an email address"),
        (MAILBOX, "our own mailbox"),
        ("enquiries+ME-2026-00001@council.example", "our own mailbox"),
        (PATEL, "the case's member"),
    ],
)
def test_who_cannot_be_a_stakeholder(desk, address, match):
    desk.receive(fly_tipping())
    refused(desk, supervision.add_stakeholder, address=address, match=match)


def test_a_stakeholder_is_added_once(desk):
    desk.receive(fly_tipping(cc=["ben.okafor@council.example"]))
    refused(desk, supervision.add_stakeholder, address="ben.okafor@council.example",
            match="already a stakeholder")  # fmt: skip
