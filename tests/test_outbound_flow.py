"""Councillors hear back in their own thread: end to end through Dovecot and an SMTP sink."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from mailbridge.cases.conversation import release_held
from mailbridge.clock import FrozenClock
from mailbridge.config import load_settings
from mailbridge.daemon import build_deps, build_runner, flush_once
from mailbridge.store.db import session
from mailbridge.store.models import Case, Event, Message, Participant
from tests.conftest import MAILBOX, settings_env
from tests.mail import make_email

pytestmark = pytest.mark.imap
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PATEL = "asha.patel@council.example"
OKAFOR, MOSS, RESIDENT = (
    "ben.okafor@council.example",
    "carol.moss@council.example",
    "jo@res.example",
)
SINGH, KHAN, WALSH = (
    "dev.singh@council.example",
    "sara.khan@council.example",
    "rory.walsh@council.example",
)
ORIGINAL = "<enquiry-1@gmail.example>"


class Council:
    """The shared mailbox, the daemon's two halves, and what reached people's inboxes."""

    def __init__(self, imap_account, smtp_sink, db_url, config_file=None):
        env = settings_env(db_url, imap_account.url, MAILBRIDGE_OUTBOX=smtp_sink.url)
        self.imap, self.sink = imap_account, smtp_sink
        self.deps = build_deps(load_settings(config_file, env), FrozenClock(NOW))

    def send(self, raw: bytes) -> None:
        """Someone's email reaches the mailbox; the daemon reads it and sends what it queued."""
        self.imap.append(raw, at=NOW)  # received when the frozen clock says, not the wall's
        runner = build_runner(self.deps)
        try:
            runner.drain()
        finally:
            runner.close()
        flush_once(self.deps)

    def inbox(self, address: str) -> list[email.message.EmailMessage]:
        """Every message delivered to `address` (by envelope), parsed."""
        return [
            email.message_from_bytes(m.raw, policy=email.policy.default)
            for m in self.sink.messages
            if address in m.recipients
        ]

    def case(self, reference: str = "ME-2026-00001") -> Case:
        with session(self.deps.engine) as s:
            return s.exec(select(Case).where(Case.reference == reference)).one()

    def timeline(self, reference: str = "ME-2026-00001") -> list[str]:
        case = self.case(reference)
        with session(self.deps.engine) as s:
            rows = s.exec(select(Event.kind).where(Event.case_id == case.id).order_by(Event.id))
            return [k for k in rows if k != "email-queued"]

    def officer_replies(self, body: str, *, to=(MAILBOX,), cc=(), sender=SINGH) -> None:
        [forward] = self.inbox(sender)[-1:]
        self.send(
            make_email(
                sender,
                list(to),
                f"Re: {forward['Subject']}",
                body,
                cc=list(cc),
                in_reply_to=forward["Message-ID"],
            )
        )


@pytest.fixture
def council(imap_account, smtp_sink, db_url):
    c = Council(imap_account, smtp_sink, db_url)
    yield c
    c.deps.engine.dispose()


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def enquiry(subject="Fly-tipping on Mill Lane", cc=(OKAFOR, MOSS, RESIDENT), body="Bags dumped."):
    return make_email(PATEL, [MAILBOX], subject, body, cc=list(cc), message_id=ORIGINAL)


def test_the_member_is_acknowledged_and_the_officer_gets_the_enquiry_once(council):
    council.send(enquiry())
    [ack] = council.inbox(PATEL)
    assert "ME-2026-00001" in ack["Subject"] and ack["In-Reply-To"] == ORIGINAL
    assert "Monday 30 November" in ack.get_body(("plain",)).get_content()
    assert ack["Auto-Submitted"] == "auto-replied" and ack["X-Mailbridge"] == "ME-2026-00001"
    assert ack["Reply-To"] == "enquiries+ME-2026-00001@council.example"
    [forward] = council.inbox(SINGH)
    assert "Bags dumped." in forward.get_body(("plain",)).get_content()
    assert any(p.get_content_type() == "message/rfc822" for p in forward.iter_attachments())
    for person in (OKAFOR, MOSS, RESIDENT):
        assert council.inbox(person) == []  # the acknowledgement is for the member alone


def test_an_officers_reply_reaches_the_member_and_every_person_copied_in_once_in_thread(council):
    council.send(enquiry())
    council.officer_replies("The bags will be cleared on Thursday.")
    for person in (PATEL, OKAFOR, MOSS, RESIDENT):
        relays = [m for m in council.inbox(person) if "cleared on Thursday" in text_of(m)]
        assert len(relays) == 1, person
        assert relays[0]["In-Reply-To"] == ORIGINAL
        assert ORIGINAL in relays[0]["References"]
    assert council.case().first_response_at is not None


def test_an_officer_who_replied_to_all_is_not_duplicated(council):
    council.send(enquiry())
    council.officer_replies("Cleared today.", to=(PATEL,), cc=(MAILBOX, OKAFOR, MOSS, RESIDENT))
    for person in (PATEL, OKAFOR, MOSS, RESIDENT):
        assert not [m for m in council.inbox(person) if "Cleared today" in text_of(m)], person
    assert "reply-relayed" in council.timeline()


def test_a_confidential_unit_answers_the_member_alone(council):
    council.send(enquiry("Damp and mould in my flat", body="Tenancy problem"))
    council.officer_replies("We will inspect on Monday.", sender=KHAN)
    assert [m for m in council.inbox(PATEL) if "inspect on Monday" in text_of(m)]
    for person in (OKAFOR, MOSS, RESIDENT):
        assert not [m for m in council.inbox(person) if "inspect on Monday" in text_of(m)]


def test_after_nocopy_only_the_member_hears_back(council):
    council.send(enquiry())
    council.send(make_email(PATEL, [MAILBOX], "Re: [ME-2026-00001]", "#nocopy\n"))
    council.officer_replies("Cleared.")
    assert [m for m in council.inbox(PATEL) if "Cleared." in text_of(m)]
    assert not [m for m in council.inbox(OKAFOR) if "Cleared." in text_of(m)]


def test_a_cc_case_is_not_forwarded_and_the_officers_reply_all_is_its_response(council):
    council.send(
        make_email(PATEL, [SINGH], "Bins missed", cc=[MAILBOX, OKAFOR], message_id=ORIGINAL)
    )
    assert council.inbox(SINGH) == []  # they already have it
    assert len(council.inbox(PATEL)) == 1  # the acknowledgement
    council.send(
        make_email(
            SINGH,
            [PATEL],
            "Re: Bins missed",
            "Collected this afternoon.",
            cc=[MAILBOX, OKAFOR],
            in_reply_to=ORIGINAL,
        )
    )
    case = council.case()
    assert case.origin == "cc" and case.first_response_at is not None
    assert not [m for m in council.inbox(OKAFOR) if "Collected" in text_of(m)]  # already had it


def test_officer_commands_change_the_case_and_tell_the_member(council):
    council.send(enquiry())
    council.officer_replies("#delay 2026-12-11 waiting for the contractor")
    case = council.case()
    assert (case.status, str(case.target_date)) == ("delay_advised", "2026-12-11")
    [notice] = [m for m in council.inbox(PATEL) if "delay" in text_of(m).lower()]
    assert "Friday 11 December" in text_of(notice)
    assert "waiting for the contractor" in text_of(notice)
    council.officer_replies("#scheduled 2026-12-14 clearance crew booked\n#budget no")
    assert (council.case().status, council.case().budget) == ("work_scheduled", "no")
    council.officer_replies("All cleared, thank you.\n#resolved")
    case = council.case()
    assert case.status == "resolved" and case.resolved_at is not None
    [final] = [m for m in council.inbox(OKAFOR) if "All cleared" in text_of(m)]
    assert "#satisfied" in final.get_body(("plain",)).get_content()  # feedback links
    council.officer_replies("#note spoke to the resident\n\nInternal only, do not send.")
    assert not [m for m in council.inbox(PATEL) if "Internal only" in text_of(m)]
    assert "internal-note" in council.timeline()


def test_wrong_service_sends_the_case_on_with_its_history(council):
    council.send(enquiry())
    council.officer_replies("#wrong-service Highways")
    case = council.case()
    assert (case.delivery_unit, case.officer, case.reroutes) == ("Highways", "o-walsh", 1)
    [forward] = council.inbox(WALSH)
    assert "Street Scene" in forward.get_body(("plain",)).get_content()


def test_member_commands_record_feedback_and_answer_status(council):
    council.send(enquiry())
    council.send(make_email(PATEL, [MAILBOX], "Re: [ME-2026-00001]", "#status\n"))
    status = council.inbox(PATEL)[-1]
    assert "ME-2026-00001" in status.get_body(("plain",)).get_content()
    council.send(make_email(PATEL, [MAILBOX], "Re: [ME-2026-00001]", "#partly still some bags\n"))
    assert council.case().feedback == "partly" and council.case().status == "awaiting_response"
    council.send(make_email(PATEL, [MAILBOX], "Re: [ME-2026-00001]", "#satisfied\n"))
    assert (council.case().feedback, council.case().status) == ("satisfied", "closed")


def test_a_new_email_that_only_asks_for_status_lists_open_cases_without_opening_one(council):
    council.send(enquiry())
    council.send(make_email(PATEL, [MAILBOX], "status please", "#status\n"))
    with session(council.deps.engine) as s:
        assert len(s.exec(select(Case)).all()) == 1
    assert "ME-2026-00001" in council.inbox(PATEL)[-1].get_body(("plain",)).get_content()


def test_unknown_and_malformed_commands_get_the_help_reply(council):
    council.send(enquiry())
    council.officer_replies("#frobnicate\n#delay soon")
    [help_reply] = [m for m in council.inbox(SINGH) if "could not act on" in text_of(m)]
    text = text_of(help_reply)
    assert "#frobnicate" in text and "#delay soon" in text


def test_commands_from_someone_else_are_recorded_and_ignored(council):
    council.send(enquiry())
    council.send(make_email(OKAFOR, [MAILBOX], "Re: [ME-2026-00001]", "#resolved\n"))
    assert council.case().status == "awaiting_response"
    assert "command-ignored" in council.timeline()


def test_a_part_names_its_originating_case_and_quotes_the_trail(council):
    council.send(enquiry())
    parent = council.case()
    with session(council.deps.engine) as s:
        s.add(
            Case(
                reference="ME-2026-00001-1",
                parent_id=parent.id,
                status="awaiting_response",
                member=parent.member,
                member_address=PATEL,
                delivery_unit="Highways",
                officer="o-walsh",
                subject=parent.subject,
                thread_message_id=ORIGINAL,
                received_at=NOW,
                due_at=parent.due_at,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        s.flush()
        part = s.exec(select(Case).where(Case.reference == "ME-2026-00001-1")).one()
        people = s.exec(select(Participant).where(Participant.case_id == parent.id)).all()
        for person in people:  # as a split copies the people
            s.add(
                Participant(case_id=part.id, address=person.address, role=person.role, added_at=NOW)
            )
        s.commit()
    council.send(make_email(WALSH, [MAILBOX], "Re: [ME-2026-00001-1]", "The pothole is filled."))
    [relay] = [m for m in council.inbox(OKAFOR) if "pothole is filled" in text_of(m)]
    text = relay.get_body(("plain",)).get_content()
    assert "ME-2026-00001" in text and "Bags dumped." in text
    assert relay["In-Reply-To"] == ORIGINAL


def test_a_supervisors_commands_count_on_any_case(imap_account, smtp_sink, db_url, tmp_path):
    config = tmp_path / "mailbridge.toml"
    config.write_text('[team]\nsupervisors = ["lead@council.example"]\n')
    council = Council(imap_account, smtp_sink, db_url, config)
    council.send(enquiry())
    council.send(make_email("lead@council.example", [MAILBOX], "Re: [ME-2026-00001]",
                            "#wrong-service Highways"))  # fmt: skip
    assert (council.case().delivery_unit, council.case().reroutes) == ("Highways", 1)
    council.deps.engine.dispose()


def test_a_held_message_released_by_a_supervisor_reaches_the_officer(council):
    council.send(enquiry())
    council.send(make_email("neighbour@street.example", [MAILBOX], "Re: [ME-2026-00001]",
                            "The bags are back again."))  # fmt: skip
    assert "message-held" in council.timeline()
    assert not [m for m in council.inbox(SINGH) if "back again" in text_of(m)]
    with session(council.deps.engine) as s:
        held = s.exec(select(Message).where(Message.held)).one()
        release_held(s, build_runner(council.deps).ctx.mailer, held, by="Sam", now=NOW)
        s.commit()
    flush_once(council.deps)
    assert [m for m in council.inbox(SINGH) if "back again" in text_of(m)]
    council.send(make_email("neighbour@street.example", [MAILBOX], "Re: [ME-2026-00001]", "Thanks"))
    assert council.timeline().count("message-held") == 1  # now on the case: not held again
