"""Inbound mail becomes cases: the pipeline end to end through a Maildir, on SQLite and PG."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest import runner as runner_module
from mailbridge.ingest.runner import DrainStats
from mailbridge.store.db import session
from mailbridge.store.models import Case, Event, Message, Outbox, Participant
from tests.conftest import MAILBOX, deliver, make_settings
from tests.mail import make_email

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday morning
PATEL = "Cllr Asha Patel <asha.patel@council.example>"
OKAFOR = "ben.okafor@council.example"
MOSS = "carol.moss@council.example"
RESIDENT = "Jo Resident <jo@resident.example>"
SINGH = "dev.singh@council.example"
_serial = itertools.count()


class Mailbox:
    """Delivers mail into a Maildir and drains it through the real pipeline."""

    def __init__(self, maildir: Path, db_url: str):
        self.maildir = maildir
        self.deps = build_deps(make_settings(db_url, f"maildir://{maildir}"), FrozenClock(NOW))

    def deliver(self, *raws: bytes, at: datetime = NOW) -> None:
        """Deliver as an MTA would; the file's time is when the mail reached the mailbox."""
        for raw in raws:
            deliver(self.maildir, f"{next(_serial):06d}.test", raw, at)

    def drain(self) -> DrainStats:
        return build_runner(self.deps).drain()

    def receive(self, *raws: bytes) -> DrainStats:
        self.deliver(*raws)
        return self.drain()

    def cases(self) -> list[Case]:
        with session(self.deps.engine) as s:
            return list(s.exec(select(Case).order_by(Case.id)))

    def case(self, reference: str) -> Case:
        return next(c for c in self.cases() if c.reference == reference)

    def people(self, case: Case) -> dict[str, str]:
        with session(self.deps.engine) as s:
            rows = s.exec(select(Participant).where(Participant.case_id == case.id))
            return {p.address: p.role for p in rows}

    def events(self, case: Case) -> list[str]:
        """The timeline's kinds, leaving out the outbox's own entries (see queued())."""
        with session(self.deps.engine) as s:
            rows = s.exec(select(Event).where(Event.case_id == case.id).order_by(Event.id))
            return [e.kind for e in rows if e.kind != "email-queued"]

    def queued(self) -> list[tuple[str, list[str], list[str]]]:
        """(kind, to, cc) of every automatic email queued, in order."""
        with session(self.deps.engine) as s:
            return [(o.kind, o.to, o.cc) for o in s.exec(select(Outbox).order_by(Outbox.id))]

    def messages(self) -> list[Message]:
        with session(self.deps.engine) as s:
            return list(s.exec(select(Message).order_by(Message.id)))


@pytest.fixture
def mailbox(maildir, db_url):
    box = Mailbox(maildir, db_url)
    yield box
    box.deps.engine.dispose()


def test_a_councillors_email_opens_a_case_with_her_colleagues_and_resident_as_stakeholders(mailbox):
    mailbox.receive(
        make_email(PATEL, [MAILBOX], "Fly-tipping on Mill Lane", cc=[OKAFOR, MOSS, RESIDENT])
    )
    [case] = mailbox.cases()
    assert case.reference == "ME-2026-00001"
    assert (case.origin, case.status, case.member) == ("direct", "awaiting_response", "cllr-patel")
    assert (case.delivery_unit, case.officer) == ("Street Scene", "o-singh")
    assert case.due_at == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert mailbox.people(case) == {
        "asha.patel@council.example": "member",
        OKAFOR: "stakeholder",
        MOSS: "stakeholder",
        "jo@resident.example": "stakeholder",
        SINGH: "officer",
    }
    assert mailbox.events(case) == ["case-opened", "assigned"]


def test_an_email_to_an_officer_that_only_ccs_the_mailbox_is_a_cc_case_assigned_to_that_officer(
    mailbox,
):
    mailbox.receive(make_email(PATEL, [SINGH], "Overflowing bins", cc=[MAILBOX, OKAFOR]))
    [case] = mailbox.cases()
    assert (case.origin, case.officer, case.delivery_unit) == ("cc", "o-singh", "Street Scene")
    assert mailbox.people(case) == {
        "asha.patel@council.example": "member",
        SINGH: "officer",
        OKAFOR: "stakeholder",
    }


def test_a_cc_to_someone_who_is_not_an_officer_is_routed_like_any_enquiry(mailbox):
    mailbox.receive(make_email(PATEL, [RESIDENT], "Pothole outside no. 4", cc=[MAILBOX]))
    [case] = mailbox.cases()
    assert (case.origin, case.delivery_unit, case.officer) == ("cc", "Highways", "o-walsh")
    assert mailbox.people(case)["jo@resident.example"] == "stakeholder"


def test_mail_from_someone_who_is_not_a_member_opens_a_triage_case(mailbox):
    mailbox.receive(make_email(RESIDENT, [MAILBOX], "Litter everywhere"))
    [case] = mailbox.cases()
    assert (case.status, case.member, case.origin) == ("triage", None, "direct")
    assert mailbox.events(case) == ["case-opened", "triage"]


def test_an_enquiry_no_rule_can_route_waits_in_triage(mailbox):
    mailbox.receive(make_email(PATEL, [MAILBOX], "A general question"))
    [case] = mailbox.cases()
    assert (case.status, case.member, case.delivery_unit) == ("triage", "cllr-patel", None)


def test_replies_are_added_to_the_case_they_name_by_tag_or_by_thread(mailbox):
    original = make_email(
        PATEL, [MAILBOX], "Graffiti on the bridge", message_id="<orig@m.example>", cc=[OKAFOR]
    )
    mailbox.receive(original)
    mailbox.receive(
        make_email(OKAFOR, [MAILBOX], "Re: Graffiti on the bridge [ME-2026-00001]"),
        make_email(SINGH, [MAILBOX], "Re: Graffiti", in_reply_to="<orig@m.example>"),
    )
    [case] = mailbox.cases()
    assert mailbox.events(case) == [
        "case-opened",
        "assigned",
        "message-received",
        "message-received",
        "reply-relayed",  # the officer's answer goes on to the member and Cllr Okafor
    ]
    assert [m.classification for m in mailbox.messages()] == ["enquiry", "reply", "reply"]


def test_a_plus_address_beats_a_subject_tag(mailbox):
    mailbox.receive(make_email(PATEL, [MAILBOX], "Bins"), make_email(PATEL, [MAILBOX], "Litter"))
    local, domain = MAILBOX.split("@")
    mailbox.receive(make_email(PATEL, [f"{local}+ME-2026-00002@{domain}"], "Re: [ME-2026-00001]"))
    reply = mailbox.messages()[-1]
    assert reply.case_id == mailbox.case("ME-2026-00002").id


def test_a_parts_tag_beats_its_parents(mailbox):
    mailbox.receive(make_email(PATEL, [MAILBOX], "Two things: bins and potholes"))
    parent = mailbox.cases()[0]
    with session(mailbox.deps.engine) as s:
        s.add(
            Case(
                reference="ME-2026-00001-2",
                parent_id=parent.id,
                received_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        s.commit()
    mailbox.receive(make_email(PATEL, [MAILBOX], "Re: [ME-2026-00001] [ME-2026-00001-2] potholes"))
    assert mailbox.messages()[-1].case_id == mailbox.case("ME-2026-00001-2").id


def test_the_same_message_delivered_twice_is_recorded_once(mailbox):
    raw = make_email(PATEL, [MAILBOX], "Bins", message_id="<twice@m.example>")
    mailbox.receive(raw)
    stats = mailbox.receive(raw.replace(b"Subject:", b"X-Copy: 2\nSubject:"))
    assert stats.duplicates == 1
    assert len(mailbox.cases()) == 1
    assert len(mailbox.messages()) == 1


def test_without_a_message_id_identical_bytes_are_one_message_and_different_bytes_two(mailbox):
    raw = (
        b"From: asha.patel@council.example\nTo: " + MAILBOX.encode() + b"\nSubject: bins\n\nhello\n"
    )
    mailbox.receive(raw, raw)
    mailbox.receive(raw.replace(b"hello", b"hello again"))
    assert len(mailbox.messages()) == 2
    assert mailbox.messages()[0].dedupe_key.startswith("sha256:")


def test_an_auto_reply_to_a_case_goes_on_its_timeline_and_opens_nothing(mailbox):
    mailbox.receive(make_email(PATEL, [MAILBOX], "Bins", message_id="<b@m.example>"))
    mailbox.receive(
        make_email(
            PATEL,
            [MAILBOX],
            "Automatic reply: Bins [ME-2026-00001]",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    mailbox.receive(
        make_email(PATEL, [MAILBOX], "Out of office", headers={"Auto-Submitted": "auto-replied"})
    )
    [case] = mailbox.cases()
    assert mailbox.events(case)[-1] == "auto-reply-received"
    assert [m.classification for m in mailbox.messages()] == ["enquiry", "auto_reply", "auto_reply"]
    assert mailbox.messages()[-1].case_id is None


def test_a_bounce_attaches_to_the_case_of_the_message_it_bounced(mailbox):
    mailbox.receive(make_email(PATEL, [MAILBOX], "Bins", message_id="<orig@m.example>"))
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example>\n"
        b"To: " + MAILBOX.encode() + b"\nSubject: Undelivered Mail Returned to Sender\n"
        b"Message-ID: <dsn1@mx.example>\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=BB\n\n"
        b"--BB\nContent-Type: text/plain\n\nDelivery failed.\n"
        b"--BB\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
        b"Final-Recipient: rfc822; gone@council.example\nAction: failed\nStatus: 5.1.1\n"
        b"--BB\nContent-Type: text/rfc822-headers\n\nFrom: x@y\nSubject: Bins [ME-2026-00001]\n"
        b"Message-ID: <orig@m.example>\n\n--BB--\n"
    )
    mailbox.receive(bounce)
    [case] = mailbox.cases()
    assert mailbox.events(case)[-1] == "bounce-received"
    assert mailbox.messages()[-1].classification == "bounce"


def test_a_stranger_quoting_a_reference_is_held_not_obeyed(mailbox):
    mailbox.receive(make_email(PATEL, [MAILBOX], "Bins"))
    mailbox.receive(make_email("eve@elsewhere.example", [MAILBOX], "Re: [ME-2026-00001] #resolved"))
    [case] = mailbox.cases()
    assert mailbox.events(case)[-1] == "message-held"
    assert mailbox.messages()[-1].held


def test_our_own_messages_are_never_taken_for_enquiries(mailbox):
    mailbox.receive(make_email(MAILBOX, [PATEL], "Your enquiry", headers={"X-Mailbridge": "1"}))
    assert mailbox.cases() == []
    assert mailbox.messages()[0].classification == "own"


def test_an_unparseable_message_is_kept_byte_exact_and_flagged_and_the_next_one_goes_on(mailbox):
    junk = b"\x00\x01\x02 this is not an email at all \xff\xfe"
    stats = mailbox.receive(junk, make_email(PATEL, [MAILBOX], "Bins"))
    first, second = mailbox.messages()
    assert (first.raw, first.parse_ok, first.classification) == (junk, False, "unparseable")
    assert second.case_id is not None
    assert stats.processed == 2


def test_a_message_whose_processing_fails_is_kept_for_replay_and_the_next_one_goes_on(
    mailbox, monkeypatch
):
    from mailbridge.cases.routing import Router

    real = Router.route_by_text

    def flaky(self, subject, *args, **kwargs):
        if "explode" in subject:
            raise RuntimeError("routing table unavailable")
        return real(self, subject, *args, **kwargs)

    monkeypatch.setattr(Router, "route_by_text", flaky)
    explosive = make_email(PATEL, [MAILBOX], "explode")
    stats = mailbox.receive(explosive, make_email(PATEL, [MAILBOX], "Bins"))
    failed, ok = mailbox.messages()
    assert (failed.status, failed.case_id, stats.failed) == ("failed", None, 1)
    assert failed.raw == explosive  # kept byte-exact
    assert "routing table unavailable" in failed.error
    assert ok.case_id is not None
    assert len(mailbox.cases()) == 1  # the failed message's case was rolled back, reference too
    monkeypatch.setattr(Router, "route_by_text", real)
    build_runner(mailbox.deps).replay_pending()
    replayed = mailbox.messages()[0]
    assert (replayed.status, replayed.attempts) == ("processed", 1)
    assert mailbox.case("ME-2026-00002").id == replayed.case_id


def test_a_stop_midway_through_a_batch_keeps_the_rest_with_their_bytes_for_later(
    mailbox, monkeypatch
):
    """SIGTERM between two messages: those not reached stay "received" with their exact
    bytes, are not acknowledged, and are processed by the next run."""
    raws = [make_email(PATEL, [MAILBOX], f"Bins, round {n}") for n in range(3)]
    runner = build_runner(mailbox.deps)
    real = runner_module.process_message

    def then_stop(*args, **kwargs):
        runner.stop.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(runner_module, "process_message", then_stop)
    mailbox.deliver(*raws)
    assert runner.drain().processed == 1
    stored = mailbox.messages()
    assert [m.status for m in stored] == ["processed", "received", "received"]
    assert [m.raw for m in stored] == raws
    assert len(list((mailbox.maildir / "new").iterdir())) == 2  # not acknowledged
    monkeypatch.undo()
    mailbox.drain()
    assert [m.status for m in mailbox.messages()] == ["processed"] * 3
    assert [m.raw for m in mailbox.messages()] == raws
    assert len(mailbox.cases()) == 3


def test_processed_mail_moves_from_new_to_cur_only_after_commit(mailbox):
    mailbox.deliver(make_email(PATEL, [MAILBOX], "Bins"))
    assert len(list((mailbox.maildir / "new").iterdir())) == 1
    mailbox.drain()
    assert list((mailbox.maildir / "new").iterdir()) == []
    [done] = list((mailbox.maildir / "cur").iterdir())
    assert done.name.endswith(":2,")
