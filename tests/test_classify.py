"""classify(): which messages may be acknowledged, and which rule said so."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from mailbridge.ingest.classify import (
    AUTO_REPLY,
    BOUNCE,
    CC_ENQUIRY,
    ENQUIRY,
    NON_MEMBER,
    OWN,
    RULES,
    classify,
    is_own_address,
)
from mailbridge.ingest.parse import parse

pytestmark = pytest.mark.unit

MAILBOX = "enquiries@council.example"
OWN_ADDRESSES = frozenset({MAILBOX, "met@council.example"})
CLLR = "Cllr Jane Smith <jane.smith@council.example>"
MEMBERS = {"jane.smith@council.example", "bob.jones@council.example"}


def email(
    *,
    sender: str = CLLR,
    to: str = MAILBOX,
    cc: str = "",
    subject: str = "Pothole on Mill Lane",
    headers: str = "",
    body: str = "Please can someone look at the pothole outside no. 12.",
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    lines = [f"From: {sender}", f"To: {to}"] + ([f"Cc: {cc}"] if cc else [])
    lines += [
        f"Subject: {subject}",
        "Date: Mon, 23 Nov 2026 10:00:00 +0000",
        "Message-ID: <m1@mail.example>",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
    ]
    head = "\r\n".join(lines) + "\r\n" + headers.replace("\n", "\r\n")
    return (head + "\r\n" + body.replace("\n", "\r\n") + "\r\n").encode("utf-8")


def verdict(raw: bytes) -> tuple[str, str]:
    v = classify(parse(raw), own_addresses=OWN_ADDRESSES, is_member=MEMBERS.__contains__)
    return v.kind, v.rule


REPORT = """\
--R
Content-Type: text/plain

Your message could not be delivered.
--R
Content-Type: {part}

{fields}
--R
Content-Type: message/rfc822

From: enquiries@council.example
Subject: [ME-2026-00001] Acknowledgement
Message-ID: <ack@council.example>
X-Mailbridge: ME-2026-00001

Thank you.
--R--"""


@dataclass(frozen=True)
class Case:
    raw: bytes
    kind: str
    rule: str


CASES = {
    # -- people: what must be acknowledged ---------------------------------------------------
    "a councillor's email with cc'd ward colleagues is an enquiry, not an auto-reply": Case(
        email(cc="Cllr Bob Jones <bob.jones@council.example>, resident@example.net"),
        ENQUIRY,
        "member-to",
    ),
    "a councillor's email to an officer copying the mailbox is a cc enquiry": Case(
        email(to="officer@council.example", cc=f"Members Enquiries <{MAILBOX}>"),
        CC_ENQUIRY,
        "member-cc",
    ),
    "a councillor who Bccs the mailbox has written an enquiry": Case(
        email(to="officer@council.example", headers=f"Delivered-To: {MAILBOX}\n"),
        ENQUIRY,
        "member-bcc",
    ),
    "a councillor's email with only Cc lines is written to us": Case(
        email(to="undisclosed-recipients:;", cc=MAILBOX), ENQUIRY, "member-cc-no-to"
    ),
    "a councillor writing to our plus-address is writing to us": Case(
        email(to="met+ME-2026-00001@council.example"), ENQUIRY, "member-to"
    ),
    "a councillor's Outlook asking not to be auto-answered is still an enquiry": Case(
        email(headers="X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply\n"),
        ENQUIRY,
        "member-to",
    ),
    "a councillor's subject about out-of-office hours is not an out-of-office": Case(
        email(subject="Out of office hours noise from the pub", body="I am away next week too."),
        ENQUIRY,
        "member-to",
    ),
    "a councillor replying to an auto-reply is a person, not an auto-reply": Case(
        email(subject="RE: Automatic reply: Pothole", body="I am back on Monday, are you?"),
        ENQUIRY,
        "member-to",
    ),
    "a councillor's 'Returned mail' subject is no bounce without a bounce's envelope": Case(
        email(subject="Returned mail from the sorting office", body="5.1.1 was not delivered"),
        ENQUIRY,
        "member-to",
    ),
    "a subject 'Auto Response' with nothing to back it stays a person's email": Case(
        email(subject="Auto Response", body="Why does the council website send these?"),
        ENQUIRY,
        "member-to",
    ),
    "Auto-Submitted: no is a person saying so": Case(
        email(headers="Auto-Submitted: no\n"), ENQUIRY, "member-to"
    ),
    "someone not in the directory is triaged, not acknowledged": Case(
        email(sender="Resident <resident@example.net>"), NON_MEMBER, "unknown-sender"
    ),
    # -- our own mail ----------------------------------------------------------------------------
    "an email we sent carries our header and is ours": Case(
        email(sender=MAILBOX, headers="X-Mailbridge: ME-2026-00001\n"), OWN, "own-header"
    ),
    "an email from our plus-address is ours even without the header": Case(
        email(sender="met+ME-2026-00001@council.example"), OWN, "own-address"
    ),
    # -- bounces ------------------------------------------------------------------------------
    "a DSN that returns our acknowledgement is a bounce": Case(
        email(
            sender="Mail Delivery System <MAILER-DAEMON@mx.example.net>",
            subject="Undelivered Mail Returned to Sender",
            content_type='multipart/report; report-type=delivery-status; boundary="R"',
            body=REPORT.format(
                part="message/delivery-status",
                fields="Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; x@y.example\n"
                "Action: failed\nStatus: 5.1.1",
            ),
        ),
        BOUNCE,
        "dsn-report",
    ),
    "a read receipt is a report, never an officer's out-of-office": Case(
        email(
            sender="officer@council.example",
            subject="Read: [ME-2026-00001] New enquiry",
            content_type='multipart/report; report-type=disposition-notification; boundary="R"',
            body=REPORT.format(
                part="message/disposition-notification",
                fields="Final-Recipient: rfc822; officer@council.example\n"
                "Disposition: manual-action/MDN-sent-manually; displayed",
            ),
        ),
        BOUNCE,
        "other-report",
    ),
    "an abuse report that Outlook re-wrapped in multipart/mixed is still a report": Case(
        email(
            sender="abuse@mail.example.net",
            subject="[DMARC Failure Report] Pothole on Mill Lane",
            content_type='multipart/mixed; boundary="R"',
            body=REPORT.format(
                part="message/feedback-report",
                fields="Feedback-Type: auth-failure\nUser-Agent: Reporter/1.0\nVersion: 1",
            ),
        ),
        BOUNCE,
        "other-report",
    ),
    "a bounce from MAILER-DAEMON without an '@' is a bounce": Case(
        email(sender="MAILER-DAEMON", subject="Warning"), BOUNCE, "mailer-daemon-sender"
    ),
    "Exim's X-Failed-Recipients marks a bounce": Case(
        email(
            sender="Mail Delivery System <mail@mx.example.net>",
            subject="Mail delivery failed: returning message to sender",
            headers="X-Failed-Recipients: gone@example.net\n",
        ),
        BOUNCE,
        "x-failed-recipients",
    ),
    "a qmail 'failure notice' with a null sender is a bounce": Case(
        email(
            sender="qmail@mx.example.net",
            subject="failure notice",
            headers="Return-Path: <>\n",
            body="Hi. This is the qmail-send program. I'm afraid I wasn't able to deliver.",
        ),
        BOUNCE,
        "bounce-subject",
    ),
    # -- automatic replies ----------------------------------------------------------------------
    "a councillor's out-of-office with Auto-Submitted is an auto-reply": Case(
        email(
            subject="Out of office: Pothole on Mill Lane",
            headers="Auto-Submitted: auto-replied (vacation)\n",
            body="I am on leave until 1 December.",
        ),
        AUTO_REPLY,
        "auto-submitted",
    ),
    "an Exchange OOF (subject prefix, X-Auto-Response-Suppress) is an auto-reply": Case(
        email(
            subject="Automatic reply: [ME-2026-00001] New enquiry",
            headers="X-Auto-Response-Suppress: All\nThread-Topic: [ME-2026-00001] New enquiry\n",
            body="I am out of the office until Monday. Please contact my deputy.",
        ),
        AUTO_REPLY,
        "autoreply-subject",
    ),
    "a bare 'Auto Response' with an absence notice in the body is an auto-reply": Case(
        email(subject="Auto Response", body="I will be out of the office until 29 December."),
        AUTO_REPLY,
        "autoreply-subject",
    ),
    "a responder that says X-Autoreply is an auto-reply": Case(
        email(headers="X-Autoreply: yes\n"), AUTO_REPLY, "x-autoreply"
    ),
    "a mailing-list post is never acknowledged": Case(
        email(headers="List-Id: Ward members <ward.lists.example>\n"), AUTO_REPLY, "list-id"
    ),
    "bulk mail is never acknowledged": Case(
        email(headers="Precedence: bulk\n"), AUTO_REPLY, "precedence-bulk"
    ),
    "a null reverse path alone still marks machine mail": Case(
        email(headers="Return-Path: <>\n"), AUTO_REPLY, "null-return-path"
    ),
    "a non-member's out-of-office is an auto-reply, not a triage case": Case(
        email(sender="resident@example.net", headers="Auto-Submitted: auto-replied\n"),
        AUTO_REPLY,
        "auto-submitted",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_classify(case: Case) -> None:
    assert verdict(case.raw) == (case.kind, case.rule)


OWN_ADDRESS_CASES = [
    ("met@council.example", True),
    ("MET@Council.Example", True),
    ("met+ME-2026-00001@council.example", True),
    ("met+@council.example", True),
    ("metro@council.example", False),
    ("met@other.example", False),
    ("met+ME-2026-00001@other.example", False),
    ("met", False),
    ("", False),
]


@pytest.mark.parametrize(("address", "ours"), OWN_ADDRESS_CASES)
def test_is_own_address_handles_plus_addresses_and_case(address: str, ours: bool) -> None:
    assert is_own_address(address, frozenset({"Met@Council.example"})) is ours


def test_membership_is_not_asked_about_mail_a_rule_already_stopped() -> None:
    asked: list[str] = []

    def is_member(address: str) -> bool:
        asked.append(address)
        return True

    classify(
        parse(email(headers="Auto-Submitted: auto-replied\n")),
        own_addresses=OWN_ADDRESSES,
        is_member=is_member,
    )
    assert asked == []


def test_rules_are_named_in_kebab_case_once_each_and_end_with_a_catch_all() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]+(?:-[a-z]+)*", name) for name in names)
    assert RULES[-1].kind == NON_MEMBER
