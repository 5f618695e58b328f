"""parse(): odd mail in, clean fields out, and ParseFailed only for bytes that are not an email."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from mailbridge.ingest.parse import Address, Attachment, ParsedMessage, ParseFailed, parse
from tests.storable import storable

pytestmark = pytest.mark.unit

HEAD = (
    "From: Cllr Jane Smith <Jane.Smith@Council.example>\n"
    "To: Members Enquiries <enquiries@council.example>\n"
    "Subject: Pothole on Mill Lane\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
    "Message-ID: <abc@mail.example>\n"
)


def raw(text: str, *, eol: str = "\n") -> bytes:
    """A message written with LF in the test, sent with the line ending asked for."""
    return text.replace("\n", eol).encode("utf-8")


def assert_storable(msg: ParsedMessage) -> None:
    assert storable(msg), "a lone surrogate or a NUL would break a database text column"


# -- the ordinary case, whatever the line endings --------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_plain_email_gives_its_fields_whatever_the_line_endings(eol: str) -> None:
    msg = parse(raw(HEAD + "Cc: ward.colleague@council.example\n\nPlease look.\nThanks\n", eol=eol))

    assert msg.message_id == "<abc@mail.example>"
    assert msg.subject == "Pothole on Mill Lane"
    assert msg.from_ == Address("Cllr Jane Smith", "jane.smith@council.example")
    assert msg.to == (Address("Members Enquiries", "enquiries@council.example"),)
    assert msg.cc == (Address("", "ward.colleague@council.example"),)
    assert msg.date == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert msg.content_type == "text/plain"
    assert msg.body_text == "Please look.\nThanks\n"  # CRLF normalised for command parsing
    assert msg.headers["subject"] == "Pothole on Mill Lane"
    assert msg.defects == ()


# -- addresses ---------------------------------------------------------------------------------

ADDRESS_CASES = [
    pytest.param(
        '"=?utf-8?q?Fran=C3=A7ois_L=C3=A9ger?=" <F.Leger@Example.org>',
        (Address("François Léger", "f.leger@example.org"),),
        id="outlook-encoded-word-inside-quotes-is-decoded",
    ),
    pytest.param(
        '"Smith, John" <john@example.org>, =?iso-8859-1?q?J=FCrgen?= <j@example.org>',
        (Address("Smith, John", "john@example.org"), Address("Jürgen", "j@example.org")),
        id="a-comma-in-a-quoted-name-does-not-split-the-address",
    ),
    pytest.param(
        "undisclosed-recipients:;, postmaster, Real <real@example.org>",
        (Address("Real", "real@example.org"),),
        id="groups-and-addresses-without-at-are-dropped",
    ),
    pytest.param("", (), id="empty-header-gives-no-addresses"),
]


@pytest.mark.parametrize(("header", "expected"), ADDRESS_CASES)
def test_to_addresses(header: str, expected: tuple[Address, ...]) -> None:
    msg = parse(raw(f"From: a@example.org\nTo: {header}\nSubject: x\n\nbody\n"))
    assert msg.to == expected


def test_mailer_daemon_without_an_at_keeps_its_from_text() -> None:
    msg = parse(raw("From: MAILER-DAEMON\nTo: enquiries@council.example\nSubject: x\n\nbody\n"))
    assert msg.from_header == "MAILER-DAEMON"
    assert msg.from_ is not None and msg.from_.email == ""


def test_delivered_to_and_friends_are_collected_lower_cased_once() -> None:
    msg = parse(
        raw(
            "Delivered-To: Enquiries@Council.example\n"
            "X-Original-To: met+ME-2026-00001@council.example\n"
            "Delivered-To: enquiries@council.example\n" + HEAD + "\nbody\n"
        )
    )
    assert msg.delivered_to == ("enquiries@council.example", "met+me-2026-00001@council.example")


# -- raw 8-bit headers and NUL: nothing unstorable may leave parse() ---------------------------


def test_raw_utf8_header_bytes_are_read_as_utf8() -> None:
    msg = parse(b"From: a@example.org\nSubject: Stra\xc3\x9fe repairs\n\nbody\n")
    assert msg.subject == "Straße repairs"
    assert_storable(msg)


def test_raw_windows_1252_header_bytes_are_read_as_cp1252() -> None:
    msg = parse(b"From: M\xfcller <m@example.org>\nSubject: Caf\xe9 \x80 signs\n\nbody\n")
    assert msg.from_ == Address("Müller", "m@example.org")
    assert msg.subject == "Café € signs"
    assert_storable(msg)


def test_nul_characters_are_stripped_everywhere() -> None:
    msg = parse(
        b"From: a@example.org\nSubject: nul\x00here\nX-Odd: =?utf-8?q?a=00b?=\n\nbo\x00dy\n"
    )
    assert msg.subject == "nulhere"
    assert msg.headers["x-odd"] == "ab"
    assert msg.body_text == "body\n"
    assert_storable(msg)


def test_header_values_are_capped() -> None:
    msg = parse(raw(f"From: a@example.org\nX-Long: {'y' * 50_000}\n\nbody\n"))
    assert len(msg.headers["x-long"]) == 2_000


# -- message ids, threading and dates ---------------------------------------------------------

MESSAGE_ID_CASES = [
    pytest.param("<abc@host>", "<abc@host>", id="bracketed"),
    pytest.param("  abc@host  ", "<abc@host>", id="bare-id-gets-brackets"),
    pytest.param("<abc@host> (comment)", "<abc@host>", id="comment-ignored"),
    pytest.param("not an id", None, id="garbage-is-none"),
    pytest.param("", None, id="empty-is-none"),
]


@pytest.mark.parametrize(("header", "expected"), MESSAGE_ID_CASES)
def test_message_id_is_normalised(header: str, expected: str | None) -> None:
    msg = parse(raw(f"From: a@example.org\nMessage-ID: {header}\n\nbody\n"))
    assert msg.message_id == expected


def test_a_message_without_message_id_has_none() -> None:
    assert parse(raw("From: a@example.org\nSubject: x\n\nbody\n")).message_id is None


def test_references_keep_the_root_and_the_last_nineteen() -> None:
    refs = " ".join(f"<r{i}@host>" for i in range(30))
    msg = parse(
        raw(
            f"From: a@example.org\nReferences: {refs}\n"
            "In-Reply-To: Your message of Monday <r29@host>\n\nbody\n"
        )
    )
    assert msg.references[0] == "<r0@host>"
    assert msg.references[1:] == tuple(f"<r{i}@host>" for i in range(11, 30))
    assert msg.in_reply_to == ("<r29@host>",)


DATE_CASES = [
    pytest.param("Mon, 23 Nov 2026 10:00:00 +0100", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
    pytest.param("Mon, 23 Nov 2026 10:00:00 -0000", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
    pytest.param("23 Nov 2026 10:00:00", datetime(2026, 11, 23, 10, 0, tzinfo=UTC), id="no-zone"),
    pytest.param("yesterday-ish", None, id="junk"),
    pytest.param("Mon, 31 Feb 2026 10:00:00 +0000", None, id="impossible-day"),
]


@pytest.mark.parametrize(("header", "expected"), DATE_CASES)
def test_date_is_aware_utc_or_none(header: str, expected: datetime | None) -> None:
    assert parse(raw(f"From: a@example.org\nDate: {header}\n\nbody\n")).date == expected


# -- bodies --------------------------------------------------------------------------------------


def test_iso_2022_jp_body_is_decoded() -> None:
    body = "すみません。".encode("iso-2022-jp")
    msg = parse(
        b"From: a@example.org\nSubject: =?ISO-2022-JP?B?GyRCJF4kXyRgJGEkYhsoQg==?=\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n"
        + body
        + b"\n"
    )
    assert msg.subject == "まみむめも"
    assert msg.body_text.strip() == "すみません。"


def test_html_only_body_becomes_readable_text() -> None:
    html = (
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<p>Fish &amp; chips&nbsp;van</p><script>alert(1)</script><div>Ward&#39;s issue</div>"
        "</body></html>"
    )
    msg = parse(raw(f"From: a@example.org\nContent-Type: text/html; charset=utf-8\n\n{html}\n"))
    assert msg.body_text == "Fish & chips van\n\nWard's issue"


def test_text_plain_is_preferred_over_html() -> None:
    msg = parse(
        raw(
            "From: a@example.org\nMIME-Version: 1.0\n"
            'Content-Type: multipart/alternative; boundary="b"\n\n'
            "--b\nContent-Type: text/html\n\n<p>html</p>\n"
            "--b\nContent-Type: text/plain\n\nplain\n--b--\n"
        )
    )
    assert msg.body_text == "plain"  # the line end before a boundary belongs to the boundary


def test_an_empty_text_part_gives_way_to_the_html_beside_it() -> None:
    msg = parse(
        raw(
            'From: a@example.org\nContent-Type: multipart/alternative; boundary="b"\n\n'
            "--b\nContent-Type: text/plain\n\n\n"
            "--b\nContent-Type: text/html\n\n<p>Bins not collected</p>\n--b--\n"
        )
    )
    assert msg.body_text == "Bins not collected"


def test_unknown_charset_and_bad_base64_still_give_text() -> None:
    msg = parse(
        b'From: a@example.org\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=x-no-such-charset\n"
        b"Content-Transfer-Encoding: 8bit\n\nna\xc3\xafve\n"
        b"--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        b"!!!not base64 at all###\n--b--\n"
    )
    assert msg.body_text.startswith("naïve")
    assert "unknown-charset:x-no-such-charset" in msg.defects
    assert_storable(msg)


def test_attachments_have_name_type_and_decoded_size() -> None:
    pdf = base64.b64encode(b"%PDF" + b"x" * 996).decode()
    msg = parse(
        raw(
            'From: a@example.org\nContent-Type: multipart/mixed; boundary="b"\n\n'
            "--b\nContent-Type: text/plain\n\nSee attached.\n"
            "--b\nContent-Type: application/pdf\n"
            'Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="\n'
            f"Content-Transfer-Encoding: base64\n\n{pdf}\n--b--\n"
        )
    )
    assert msg.attachments == (Attachment("résumé.pdf", "application/pdf", 1000),)
    assert msg.body_text == "See attached."


def test_a_forwarded_message_is_an_attachment_and_names_its_subject() -> None:
    msg = parse(
        raw(
            'From: cllr@example.org\nContent-Type: multipart/mixed; boundary="b"\n\n'
            "--b\nContent-Type: text/plain\n\nSee the resident's email below.\n"
            "--b\nContent-Type: message/rfc822\n\n"
            "From: resident@example.net\nSubject: Bins not collected\n"
            "Message-ID: <res@example.net>\n\nThe bins.\n--b--\n"
        )
    )
    assert msg.body_text == "See the resident's email below."
    assert [a.content_type for a in msg.attachments] == ["message/rfc822"]
    assert msg.embedded_message_ids == ("<res@example.net>",)
    assert msg.embedded_subjects == ("Bins not collected",)


# -- bounces -------------------------------------------------------------------------------------

DSN = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: enquiries@council.example
Subject: Undelivered Mail Returned to Sender
Return-Path: <>
Message-ID: <dsn1@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=Delivery-Status; boundary="R"

--R
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.
--R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; Gone.Officer@council.example
Action: failed
Status: 5.1.1
--R
Content-Type: {embedded}

From: enquiries@council.example
Subject: =?utf-8?q?[ME-2026-00001]_Acknowledgement?=
Message-ID: <case-ME-2026-00001.ack@council.example>
X-Mailbridge: ME-2026-00001
{rest}--R--
"""


@pytest.mark.parametrize(
    ("embedded", "rest"),
    [("message/rfc822", "\nThank you.\n"), ("text/rfc822-headers", "")],
    ids=["returned-message", "returned-headers"],
)
def test_a_dsn_names_status_recipient_and_the_message_it_returned(embedded: str, rest: str) -> None:
    msg = parse(raw(DSN.format(embedded=embedded, rest=rest), eol="\r\n"))

    assert msg.content_type == "multipart/report"
    assert msg.report_type == "delivery-status"
    assert msg.dsn_status == "5.1.1"
    assert msg.dsn_recipients == ("gone.officer@council.example",)
    assert msg.embedded_message_ids == ("<case-ME-2026-00001.ack@council.example>",)
    assert msg.embedded_subjects == ("[ME-2026-00001] Acknowledgement",)
    assert msg.body_text.startswith("I'm sorry")
    assert "x-mailbridge" not in msg.headers  # the returned message's headers are not ours


# -- framing oddities that must still parse ----------------------------------------------------

ODD_FRAMING = [
    pytest.param(
        b"From MAILER-DAEMON Mon Nov 23 10:00:00 2026\n" + raw(HEAD + "\nbody\n"), id="mbox"
    ),
    pytest.param(b"\xef\xbb\xbf" + raw(HEAD + "\nbody\n"), id="utf8-bom"),
    pytest.param(raw(HEAD + "\nbody\n", eol="\r"), id="cr-only"),
    pytest.param(b"\n   \n" + raw(HEAD + "\nbody\n"), id="leading-blank-lines"),
    pytest.param(raw(HEAD.replace("Subject:", "Subject  :") + "\nbody\n"), id="obs-space-colon"),
]


@pytest.mark.parametrize("data", ODD_FRAMING)
def test_odd_framing_still_parses(data: bytes) -> None:
    msg = parse(data)
    assert msg.subject == "Pothole on Mill Lane"
    assert msg.from_ == Address("Cllr Jane Smith", "jane.smith@council.example")
    assert msg.body_text.strip() == "body"


def test_broken_mime_that_crashed_mail_parsers_extraction_parses_with_its_defects() -> None:
    # mail-parser 4.8.0's field extraction raises AttributeError on an epilogue defect with no
    # epilogue; we build the Message with it but read the fields ourselves.
    msg = parse(
        raw(
            'From: a@example.org\nSubject: broken\nContent-Type: multipart/mixed; boundary="ab"\n\n'
            '--ab\nContent-Type: multipart/mixed; boundary="cd"\n\n--ab\n'
            "Content-Type: text/plain\n\nhello\n"
        )
    )
    assert msg.subject == "broken"
    assert {"StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect"} <= set(msg.defects)


FAILS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"This is just some text.\nNo headers at all.\n", id="no-headers"),
    pytest.param(b"\x00\xff\xfe" * 300, id="binary"),
    pytest.param(b"X-Only-A-Custom: header\n\nbody\n", id="no-recognisable-header"),
]


@pytest.mark.parametrize("data", FAILS)
def test_bytes_that_are_not_an_email_raise_parse_failed(data: bytes) -> None:
    with pytest.raises(ParseFailed):
        parse(data)


def test_a_deeply_nested_message_fails_cleanly() -> None:
    depth = 3_000
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    with pytest.raises(ParseFailed):
        parse(raw("From: a@example.org\n" + opening + "\nx\n"))
