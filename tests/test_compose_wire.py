"""Our emails' quick composing and serialising means exactly what the email package's would.

compose() encodes its text parts with binascii's quoted-printable encoder, chooses multipart
boundaries itself, and gives its messages a compat32 policy that writes plainly folded headers
directly; wire_bytes() writes the trees compose builds itself and converts body line ends in
one pass. Each is held here to the stock behaviour: the same header bytes, the same decoded
text, the same wire bytes from one tree.
"""

from __future__ import annotations

import email
import email.policy
import random
import re
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.text import MIMEText
from email.policy import compat32

import pytest

from mailbridge.outbound import compose as compose_module
from mailbridge.outbound.compose import Attachment, Thread, compose, thread_under, wire_bytes
from mailbridge.outbound.render import Rendered
from tests.mail import make_email

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
STOCK_WIRE = compat32.clone(linesep="\r\n")
UTF8_QP = Charset("utf-8")  # the text parts' encoding before binascii took over
UTF8_QP.body_encoding = QP
NO_THREAD = Thread()
BOUNDARY = re.compile(r'multipart/(alternative|mixed); boundary="={15}\d{19}=="')


def composed(
    text: str = "Thank you.\n",
    *,
    html: str | None = None,
    original: bytes | None = None,
    attachments: tuple[Attachment, ...] = (),
    subject: str = "Bins not collected",
    from_name: str = "Members' Enquiries",
    thread: Thread = NO_THREAD,
    cc: tuple[str, ...] = (),
) -> Message:
    return compose(
        from_name=from_name,
        from_address="enquiries@council.example",
        to=["jane.smith@council.example"],
        cc=cc,
        subject=subject,
        body=Rendered(text, html),
        message_id="<ack.ME-2026-00123.1@council.example>",
        now=NOW,
        reference="ME-2026-00123",
        thread=thread,
        reply_to="enquiries+ME-2026-00123@council.example",
        attachments=attachments,
        original=original,
    )


OURS = composed().policy  # the policy compose gives its messages


# ----- plainly folded headers ------------------------------------------------------------------

NAMES = ("To", "Subject", "References", "X-Auto-Response-Suppress", "Content-Type")
TRICKY = [
    "",
    "All",
    " ",
    "  ",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "two trailing spaces  ",
    "tab\tinside",
    "trailing tab\t",
    "\tleading tab",
    "many    spaces   inside",
    "a@b.example, c@d.example,e@f.example",
    'param; boundary="x"; charset=utf-8',
    "=?utf-8?q?caf=C3=A9?=",
    "=?utf-8?b?Y2Fmw6k=?= and more",
    "café",
    "日本語の件名",
    "emoji 😀",
    "nul\x00inside",
    "del\x7finside",
    "vertical\x0btab",
    "form\x0cfeed",
    "file\x1cseparator",
    "line\nbreak",
    "line\nX-Injected: header",
    "carriage\rreturn",
    "crlf\r\n continued",
    "surrogate \udce9 byte",
]


def header_values() -> list[object]:
    """Fixed tricky values, every filler at and around each name's line limit, a seeded
    random spread of the characters folding cares about, and Header objects."""
    values: list[object] = list(TRICKY)
    for name in NAMES:
        room = 78 - len(name) - 2
        for filler in ("x", "ab ", "a,b ", "w\t", "é", "a=?b "):
            for size in (room - 2, room - 1, room, room + 1, room + 2, 2 * room, 300):
                values.append((filler * size)[:size])
                values.append((filler * size)[:size].rstrip() + "z")
    rng = random.Random(20261123)
    alphabet = ["a", "b", " ", " ", "  ", "\t", ",", ";", "=", "?", "é", "\n", "\r", "-"]
    for _ in range(500):
        size = rng.randrange(0, 120)
        values.append(
            "".join(rng.choice(alphabet) if rng.random() < 0.3 else "x" for _ in range(size))
        )
    for head in range(40, 80, 3):  # one space, after a ";": folded there when it does not fit
        for tail in (1, 20, 40, 80, 120):
            split = "h" * (head - 1) + "; " + "t" * tail
            values += [split, split + " ", split + " x", split.replace(";", ","), split + ";"]
            values += [split.replace("; ", ";  "), split.replace("; ", ";\t"), " " + split]
    for subtype in ("alternative", "mixed", "related"):
        values.append(f'multipart/{subtype}; boundary="===============1234567890123456789=="')
    values += [Header("plain"), Header("café", "utf-8"), Header("x " * 60), Header("日本", "utf-8")]
    return values


VALUES = header_values()


def outcome(fold, name: str, value: object) -> object:
    """What a fold gives, or the exception it raises (an embedded header, say)."""
    try:
        return fold(name, value)
    except Exception as exc:  # compared by type: both must refuse the same values
        return type(exc)


@pytest.mark.parametrize("linesep", ["\n", "\r\n"])
def test_one_line_headers_fold_exactly_as_compat32(linesep):
    ours, stock = OURS.clone(linesep=linesep), compat32.clone(linesep=linesep)
    for name in NAMES:
        for value in VALUES:
            assert outcome(ours.fold, name, value) == outcome(stock.fold, name, value), value
            assert outcome(ours.fold_binary, name, value) == outcome(
                stock.fold_binary, name, value
            ), value


def test_a_message_of_tricky_headers_is_written_byte_for_byte_as_compat32_writes_it():
    msg = Message()
    for n, value in enumerate(v for v in VALUES if "\n" not in str(v)):
        msg[NAMES[n % len(NAMES)]] = value
    msg.set_payload("body\n")
    for linesep in ("\n", "\r\n"):
        assert msg.as_bytes(policy=OURS.clone(linesep=linesep)) == msg.as_bytes(
            policy=compat32.clone(linesep=linesep)
        )


# ----- whole messages -------------------------------------------------------------------------

ENQUIRY = make_email(  # with CRLF line ends, as IMAP delivers it
    "Cllr Jane Smith <jane.smith@council.example>",
    ["enquiries@council.example"],
    "Bins not collected",
    "The bins in Acacia Avenue were missed again.\n" * 200,
).replace(b"\n", b"\r\n")
EIGHT_BIT = (
    b"From: Jane <jane.smith@council.example>\r\nSubject: Caf\xc3\xa9 bins\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nLe caf\xc3\xa9 \xe2\x80\x93 missed again.\r\n"
)
LONG_THREAD = thread_under(
    "<m30@mail.example>", [f"<m{n}.a-longish-id@mail.example>" for n in range(30)]
)


def stock_examples() -> list[Message]:
    """Ours and others': every shape compose makes, and the EmailMessage tests enqueue."""
    outgoing = EmailMessage()
    outgoing["From"], outgoing["To"], outgoing["Subject"] = "a@b.example", "c@d.example", "Hi"
    outgoing.set_content("Thank you.\nFrom the team \n")
    legacy = Message()
    legacy["Subject"] = "mixed line ends"
    legacy.set_payload("one\r\ntwo\rthree\nfour\r\n")
    crlf = Message()
    crlf["Subject"] = "CRLF line ends"
    crlf.set_payload("one\r\ntwo\r\n\r\nthree")
    return [
        composed(),
        composed("no newline at the end"),
        composed(html="<p>Thank you.</p>\n", thread=LONG_THREAD, cc=("c@council.example",)),
        composed("Forwarded.\n" * 300, original=ENQUIRY),
        composed("Forwarded.\n", original=EIGHT_BIT),
        composed(
            "Relayed.\n",
            html="<p>Relayed.</p>",
            attachments=(
                Attachment("photo é.jpg", "image/jpeg", bytes(range(256)) * 20),
                Attachment("letter.pdf", "application/pdf", b"%PDF-1.4\n"),
            ),
            original=ENQUIRY,
        ),
        composed(
            "Relayed.\n",
            attachments=(
                Attachment("forwarded.eml", "message/rfc822", b"Subject: x\r\n\r\nHi.\r\n" * 9),
                Attachment("signed", "multipart/signed", b"--b\r\n\r\nsigned\r\n--b--\r\n"),
                Attachment("odd", "x-odd/thing", b"one\r\ntwo\n"),
            ),
        ),
        composed(subject="Café on the High Street – noise", from_name="Équipe Members"),
        composed(subject="A very long subject line " * 6),
        outgoing,
        legacy,
        crlf,
    ]


def test_wire_bytes_are_what_the_stock_generator_writes_from_the_same_message():
    for msg in stock_examples():
        ours = wire_bytes(msg)  # first: a boundary left to the generator is fixed by it
        assert ours == msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        if msg.policy is OURS:
            assert ours == msg.as_bytes(policy=STOCK_WIRE)


def test_what_compose_builds_is_written_without_the_generator_bar_a_parsed_original():
    relayed = (Attachment("letter.pdf", "application/pdf", b"%PDF-1.4\n"),)
    for msg in (
        composed(),
        composed(html="<p>Thank you.</p>\n", thread=LONG_THREAD),
        composed("Forwarded.\n", original=ENQUIRY),
        composed("Relayed.\n", html="<p>Relayed.</p>", attachments=relayed, original=ENQUIRY),
    ):
        assert compose_module._write_composed(msg, [])
    assert not compose_module._write_composed(composed(original=EIGHT_BIT), [])


def test_multipart_boundaries_are_in_the_email_packages_style():
    msg = composed(html="<p>Thank you.</p>", original=ENQUIRY)
    mixed, alternative = msg["Content-Type"], msg.get_payload(0)["Content-Type"]
    assert BOUNDARY.fullmatch(mixed) and BOUNDARY.fullmatch(alternative)
    assert msg.get_boundary() != msg.get_payload(0).get_boundary()


def test_a_boundary_found_in_the_original_is_not_used(monkeypatch):
    taken = "=" * 15 + "0" * 18 + "7=="
    original = ENQUIRY + f"--{taken}\r\n--{taken}--\r\n".encode()
    tokens = iter([7, 8])
    monkeypatch.setattr(compose_module.random, "randrange", lambda _: next(tokens))
    msg = composed(original=original)
    assert msg.get_boundary() == "=" * 15 + "0" * 18 + "8=="
    wire = wire_bytes(msg)
    assert original in wire
    text, attached = email.message_from_bytes(wire, policy=email.policy.default).get_payload()
    assert text.get_content() == "Thank you.\r\n"
    assert attached.get_content_type() == "message/rfc822"


def test_an_8bit_original_is_attached_with_its_bytes_and_a_boundary_the_generator_chose():
    msg = composed(original=EIGHT_BIT)
    assert msg.get_boundary() is None  # its regenerated text is the generator's to search
    wire = wire_bytes(msg)
    assert BOUNDARY.fullmatch(msg["Content-Type"])
    assert b"Le caf\xc3\xa9 \xe2\x80\x93 missed again.\r\n" in wire


# ----- quoted-printable text ------------------------------------------------------------------

BODIES = {
    "trailing space": "Dear Cllr Smith, \nThank you.\t\n",
    "trailing space at 75": "a" * 74 + " \n" + "b" * 75 + "\t\n" + "c" * 76 + " \n",
    "trailing space at the end": "no newline after the space ",
    "long line": "word " * 40 + "\n",
    "long line of escapes": "é" * 60 + "\n" + "x" * 73 + "é=é=" * 10 + "\n",
    "equals signs": "a = b\n== heading ==\n=\n=3D is not an escape here\n",
    "non-ascii": "Café – £40 – naïve\n😀 emoji\n中文 日本語 한국어\n",
    "a lone dot": "first\n.\nlast\n",
    "from lines": "From the team\nFrom here on\n>From quoted\n",
    "empty lines": "\n\nafter two empty lines\n\n\n",
    "no trailing newline": "the end",
    "crlf": "one\r\ntwo\r\n\r\nthree\r\n",
    "lone cr": "one\rtwo\r\rthree",
    "controls": "form\x0cfeed, nul\x00, del\x7f, vertical\x0btab\n",
    "boundary lookalike": "--===============1234567890123456789==\n",
    "empty": "",
    "only newline": "\n",
}


def normalised(text: str) -> str:
    """What a member's mail client shows: CR, LF and CRLF each end a line, as before."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize("name", BODIES)
def test_text_parts_decode_to_the_rendered_text(name):
    text = BODIES[name]
    for html, original in ((None, None), (text, ENQUIRY)):
        wire = wire_bytes(composed(text, html=html, original=original))
        assert wire.isascii()
        assert all(len(line) <= 78 for line in wire.split(b"\r\n"))
        parsed = email.message_from_bytes(wire, policy=email.policy.default)
        for subtype in ("plain", "html") if html else ("plain",):
            part = parsed.get_body((subtype,))
            assert part.get_content().replace("\r\n", "\n") == normalised(text)
            assert part["Content-Transfer-Encoding"] == "quoted-printable"


@pytest.mark.parametrize("name", BODIES)
def test_text_parts_have_the_stock_headers_and_the_stock_decoded_bytes(name):
    text = BODIES[name]
    for subtype in ("plain", "html") if text else ("plain",):
        part = composed("x", html=text).get_payload(1) if subtype == "html" else composed(text)
        stock = MIMEText(text, subtype, UTF8_QP)
        assert part.items()[:3] == stock.items()
        assert part.get_payload(decode=True) == stock.get_payload(decode=True)
        assert all(len(line) <= 76 for line in part.get_payload().split("\n"))
