"""People who are not there, end to end through Dovecot and the SMTP sink: an officer's bounce
or out-of-office passes their open cases to the deputy, who gets the forward, and the team is
told; new cases go round them."""

from __future__ import annotations

import email
import email.policy
from datetime import date

import pytest
from sqlmodel import select

from mailbridge.store.db import session
from mailbridge.store.models import Event, OfficerRecord
from tests.conftest import MAILBOX
from tests.mail import make_email
from tests.test_outbound_flow import PATEL, SINGH, Council, text_of

pytestmark = pytest.mark.imap
LEE, TEAM = "mia.lee@council.example", "team@council.example"


@pytest.fixture
def council(imap_account, smtp_sink, db_url, tmp_path):
    config = tmp_path / "mailbridge.toml"
    config.write_text(f'[team]\nsupervisors = ["{TEAM}"]\n')
    c = Council(imap_account, smtp_sink, db_url, config)
    yield c
    c.deps.engine.dispose()


def two_cases_for_singh(council: Council) -> email.message.EmailMessage:
    """Two enquiries that Dev Singh (Street Scene) holds; returns the first one's forward."""
    council.send(make_email(PATEL, [MAILBOX], "Fly-tipping on Mill Lane", "Bags dumped."))
    council.send(make_email(PATEL, [MAILBOX], "Litter on the green", "Crisp packets."))
    assert [council.case(r).officer for r in ("ME-2026-00001", "ME-2026-00002")] == ["o-singh"] * 2
    return council.inbox(SINGH)[0]


def bounce_of(sent: email.message.EmailMessage, recipient: str, status: str = "5.1.1") -> bytes:
    """The DSN a mail server sends back when `sent` could not reach `recipient` (RFC 3464)."""
    returned = "".join(f"{k}: {v}\r\n" for k, v in sent.items())
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.council.example>\r\n"
        f"To: {MAILBOX}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.council.example>\r\n"
        "Date: Mon, 23 Nov 2026 10:05:00 +0000\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\n"
        f"Your message could not be delivered to {recipient}.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.council.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} user unknown\r\n\r\n"
        f"--R\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}\r\n--R--\r\n"
    ).encode()


def forwards_to(council: Council, address: str) -> list[str]:
    return [m["Subject"] for m in council.inbox(address) if "[ME-" in (m["Subject"] or "")]


def officer_row(council: Council, ident: str) -> OfficerRecord:
    with session(council.deps.engine) as s:
        return s.get(OfficerRecord, ident)


def rules(council: Council, kind: str, reference: str = "ME-2026-00001") -> list[str]:
    case = council.case(reference)
    with session(council.deps.engine) as s:
        found = s.exec(select(Event).where(Event.case_id == case.id, Event.kind == kind))
        return [e.rule for e in found]


def test_a_bounce_from_an_officers_address_passes_all_their_open_cases_to_the_deputy(council):
    forward = two_cases_for_singh(council)

    council.send(bounce_of(forward, SINGH))

    for reference in ("ME-2026-00001", "ME-2026-00002"):
        case = council.case(reference)
        assert (case.officer, case.delivery_unit, case.status) == (
            "o-lee",
            "Street Scene",
            "awaiting_response",
        )
        assert rules(council, "reassigned", reference) == ["undeliverable; deputy-of:o-singh"]
    assert "bounce-received" in council.timeline()
    handed = council.inbox(LEE)
    assert len(handed) == 2
    assert all("Dev Singh" in text_of(m) for m in handed)  # where it was: the history
    assert any("Bags dumped." in text_of(m) for m in handed)
    [notice] = council.inbox(TEAM)
    said = text_of(notice)
    assert "Mail to Dev Singh bounced" in notice["Subject"]
    assert "ME-2026-00001 now with Street Scene (Mia Lee)" in said and "ME-2026-00002" in said
    singh = officer_row(council, "o-singh")
    assert singh.undeliverable_at is not None and "5.1.1" in singh.undeliverable_reason

    council.send(make_email(PATEL, [MAILBOX], "Graffiti on the bridge", "Again."))
    assert council.case("ME-2026-00003").officer == "o-lee"
    assert rules(council, "assigned", "ME-2026-00003") == ["keyword:graffiti; deputy-of:o-singh"]


def test_a_delayed_delivery_report_changes_nothing(council):
    forward = two_cases_for_singh(council)

    council.send(bounce_of(forward, SINGH, status="4.4.1"))

    assert council.case().officer == "o-singh"
    assert council.inbox(LEE) == [] and council.inbox(TEAM) == []
    assert officer_row(council, "o-singh").undeliverable_at is None


def test_an_out_of_office_from_the_case_officer_passes_it_to_the_deputy_until_their_return(
    council,
):
    forward = two_cases_for_singh(council)

    council.send(
        make_email(
            SINGH,
            ["enquiries+ME-2026-00001@council.example"],
            f"Automatic reply: {forward['Subject']}",
            "I am out of the office until 7th December 2026 with no access to email.",
            in_reply_to=forward["Message-ID"],
            headers={"Auto-Submitted": "auto-replied"},
        )
    )

    assert [council.case(r).officer for r in ("ME-2026-00001", "ME-2026-00002")] == ["o-lee"] * 2
    assert rules(council, "reassigned") == ["out-of-office; deputy-of:o-singh"]
    assert len(forwards_to(council, LEE)) == 2
    [notice] = council.inbox(TEAM)
    assert "Dev Singh is away until Monday 7 December 2026" in notice["Subject"]
    assert officer_row(council, "o-singh").reported_absent_until == date(2026, 12, 7)
    council.send(make_email(PATEL, [MAILBOX], "Bins not collected", "Again."))
    assert council.case("ME-2026-00003").officer == "o-lee"


def test_an_auto_reply_that_is_not_the_case_officers_absence_is_only_recorded(council):
    forward = two_cases_for_singh(council)

    council.send(
        make_email(
            LEE,  # on the same unit, but not the case's officer
            [MAILBOX],
            f"Automatic reply: {forward['Subject']}",
            "I am on annual leave until 7 December.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    council.send(
        make_email(
            SINGH,
            [MAILBOX],
            f"Auto-Response: {forward['Subject']}",
            "Thank you for your email, which the Street Scene team has received.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )

    assert council.case().officer == "o-singh"
    assert council.timeline().count("auto-reply-received") == 2
    assert council.inbox(TEAM) == []
