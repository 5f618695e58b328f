"""Composing automatic emails: headers that keep the member's thread and mark the mail as ours.

Every message carries the case tag in its subject, In-Reply-To/References that sit it in the
member's own thread, Auto-Submitted (RFC 3834) so other robots stay quiet, Exchange's request
not to auto-reply, and our own header so that mailbridge never takes its mail for an enquiry.
Header values are cleaned here, once: nothing from an inbound subject or display name can
smuggle a line break into our headers. `wire_bytes` turns a message into the bytes the outbox
stores and sends.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.message import MIMEMessage
from email.policy import Compat32
from email.utils import format_datetime, formataddr, make_msgid
from io import BytesIO
from typing import Any

from mailbridge.ingest.classify import OWN_HEADER
from mailbridge.outbound.render import Rendered

REFERENCES_KEPT = 20  # the root and the last 19, as mail clients do
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_QP_LINE = 76  # RFC 2045's longest quoted-printable line
# A multipart's Content-Type as _multipart writes it, boundary and all.
_OWN_MULTIPART = re.compile(r'multipart/(?:alternative|mixed); boundary="(={15}\d{19}==)"')


@dataclass(frozen=True)
class Thread:
    """Where a message sits in a conversation."""

    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def thread_under(parent_id: str | None, parent_references: Sequence[str] = ()) -> Thread:
    """A reply to `parent_id`: its References plus itself, trimmed to the root and the last 19."""
    if not parent_id:
        return Thread()
    chain = [r for r in parent_references if r != parent_id] + [parent_id]
    if len(chain) > REFERENCES_KEPT:
        chain = chain[:1] + chain[-(REFERENCES_KEPT - 1) :]
    return Thread(parent_id, tuple(chain))


def clean_header(value: str, limit: int = 900) -> str:
    """One line, no control characters (so no CR/LF injection), bounded length."""
    return " ".join(_CONTROL.sub(" ", value or "").split())[:limit]


def tagged_subject(subject: str, reference: str, *, reply: bool = True) -> str:
    """The member's subject with the case tag, as the thread's other messages have it."""
    base = clean_header(subject) or "Your enquiry"
    if f"[{reference.upper()}]" not in base.upper():
        base = f"{base} [{reference}]"
    if reply and not re.match(r"(?i)^(re|aw|sv)\s*:", base):
        base = f"Re: {base}"
    return base


def new_message_id(kind: str, reference: str, mailbox: str) -> str:
    """A Message-ID in our domain, fixed when the email is queued and never changed after."""
    domain = mailbox.rpartition("@")[2] or "localhost"  # never socket.getfqdn(): it can block
    return make_msgid(idstring=f"{kind}.{reference}", domain=domain)


def plus_address(mailbox: str, reference: str) -> str:
    local, _, domain = mailbox.partition("@")
    return f"{local}+{reference}@{domain}"


def compose(
    *,
    from_name: str,
    from_address: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    body: Rendered,
    message_id: str,
    now: datetime,
    reference: str | None,
    thread: Thread = Thread(),
    reply_to: str | None = None,
    auto_submitted: str = "auto-replied",
    attachments: Sequence[Attachment] = (),
    original: bytes | None = None,
) -> Message:
    """A complete message, ready for the outbox.

    Built as compat32 messages: the modern header registry re-parses every header on each set
    and get, which made composing cost more than the whole inbound pipeline. Serialise it with
    `wire_bytes`.
    """
    text = _text_part(body.text, "plain")
    content = text
    if body.html:
        content = _multipart("alternative", [text, _text_part(body.html, "html")])
    if attachments or original is not None:
        parts = [content, *(_attachment(a) for a in attachments)]
        if original is not None:
            parts.append(_original(original))
        content = _multipart("mixed", parts)
    msg = content
    msg["From"] = formataddr((clean_header(from_name), from_address), charset="utf-8")
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    clean_subject = clean_header(subject)
    msg["Subject"] = clean_subject if clean_subject.isascii() else Header(clean_subject, "utf-8")
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    if thread.in_reply_to:
        msg["In-Reply-To"] = thread.in_reply_to
        msg["References"] = " ".join(thread.references)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Auto-Submitted"] = auto_submitted  # RFC 3834: auto-replied / auto-generated
    msg["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office or receipts to us
    msg[OWN_HEADER] = reference or "1"
    return msg


def _mime(content_type: str, payload: Any) -> Message:
    """A part as email.mime's classes begin one, the same headers in the same order, but with
    its Content-Type written here: they format it from parameters and, given a multipart's
    boundary, parse it and write it again, making a text part 3 times this cost, a multipart 5."""
    part = Message(policy=_POLICY)
    part["Content-Type"] = content_type
    part["MIME-Version"] = "1.0"
    part.set_payload(payload)
    return part


def _text_part(text: str, subtype: str) -> Message:
    """text/`subtype` in UTF-8 quoted-printable: readable in a mail source view, unlike base64."""
    part = _mime(f'text/{subtype}; charset="utf-8"', _quoted_printable(text))
    part["Content-Transfer-Encoding"] = "quoted-printable"
    return part


def _quoted_printable(text: str) -> str:
    """`text` in quoted-printable by binascii's C encoder (email.quoprimime's pure Python one
    cost 190 µs for a forward's 9 KB), each of CR, LF and CRLF ending a line, as quoprimime has it.

    b2a_qp quotes a space or tab before a line end after it has fixed the line's length, so such
    a line can reach 78; those few get a soft break before the quoted character, keeping to 76.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(text.encode())
    if b"=20\n" in encoded or b"=09\n" in encoded:
        lines = encoded.split(b"\n")
        encoded = b"\n".join(
            line if len(line) <= _QP_LINE else line[:-3] + b"=\n" + line[-3:] for line in lines
        )
    return encoded.decode("ascii")


def _multipart(subtype: str, parts: list[Message]) -> Message:
    """multipart/`subtype`, its boundary chosen here unless a part is a parsed message.

    The generator would choose it by compiling a new regular expression for every message
    (~50 µs) to search what it wrote. Our parts are written as their payloads stand (line ends
    aside) under headers of our own, so a substring test over the payloads and any nested
    boundary does the same job. A parsed original is regenerated, unseen here: the generator
    chooses then.
    """
    avoid: list[str] = []
    for part in parts:
        for sub in part.walk():
            if not sub.is_multipart():
                avoid.append(sub.get_payload())
            elif (nested := _own_boundary(sub)) is not None:
                avoid.append(nested)
            else:  # a parsed message, or a multipart around one
                return _mime(f"multipart/{subtype}", parts)
    while True:  # the email package's pattern: 15 "=", 19 random digits, "=="
        boundary = f"{'=' * 15}{random.randrange(sys.maxsize):019d}=="
        if not any(boundary in text for text in avoid):
            return _mime(f'multipart/{subtype}; boundary="{boundary}"', parts)


def _own_boundary(msg: Message) -> str | None:
    """The boundary `_multipart` chose, read from the Content-Type it wrote (get_boundary
    parses every parameter, at 8 times the cost); None for a part it did not write so."""
    value = msg.get("Content-Type")
    own = _OWN_MULTIPART.fullmatch(value) if isinstance(value, str) else None
    return own[1] if own else None


def _attachment(item: Attachment) -> Message:
    maintype, _, subtype = item.content_type.partition("/")
    part = _mime(f"{maintype or 'application'}/{subtype or 'octet-stream'}", item.data)
    encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", item.filename))
    return part


def _original(raw: bytes) -> Message:
    """The inbound email itself, as message/rfc822, so its attachments travel with it.

    An ASCII original goes in as text, written out exactly as it came, line ends and all: no
    re-parsing and re-folding of its headers. One with raw 8-bit bytes is parsed with
    compat32, which writes those bytes back unchanged.
    """
    if raw.isascii():
        part = _mime("message/rfc822", raw.decode("ascii"))
    else:
        part = MIMEMessage(email.message_from_bytes(raw), policy=_POLICY)
    part["Content-Disposition"] = 'attachment; filename="enquiry.eml"'
    return part


def attachments_of(raw: bytes) -> list[Attachment]:
    """The attachments of an inbound email (an officer's photos or letters), for a relay."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        found = []
        for part in message.iter_attachments():
            data = part.get_payload(decode=True) or b""
            found.append(Attachment(clean_header(part.get_filename() or "attachment", 200),
                                    part.get_content_type(), data))  # fmt: skip
        return found
    except Exception:  # an attachment we cannot read is still in the stored original
        return []


# ----- serialising ----------------------------------------------------------------------------


class _PlainFolding(Compat32):
    """compat32, writing the headers whose folding is plain without email.header.Header.

    compat32 sends every header through Header's folding: ~6 µs each even for
    "X-Auto-Response-Suppress: All", half as much again for a multipart's Content-Type. Given
    printable ASCII, Header returns a value that fits within max_line_length as it stands; one
    that does not, with a single space and that after a ";", it breaks there and only there
    (";" is its first choice, and it never splits the rest again). tests/test_compose_wire.py
    holds the two to the same bytes.
    """

    def fold(self, name: str, value: Any) -> str:
        folded = self._plain_fold(name, value)
        return super().fold(name, value) if folded is None else folded

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._plain_fold(name, value)
        return super().fold_binary(name, value) if folded is None else folded.encode("ascii")

    def _plain_fold(self, name: str, value: Any) -> str | None:
        """`name: value` as compat32 writes it, where that is plain; else None."""
        limit = self.max_line_length
        if not (
            isinstance(value, str)
            and limit
            and value.isascii()
            and value.isprintable()
            and name.isascii()
        ):
            return None
        if len(name) + 2 + len(value) <= limit:
            return f"{name}: {value}{self.linesep}"
        head, _, tail = value.partition(" ")
        if head.endswith(";") and len(name) + 2 + len(head) <= limit and tail and " " not in tail:
            return f"{name}: {head}{self.linesep} {tail}{self.linesep}"
        return None


_POLICY = _PlainFolding()
_WIRE = _POLICY.clone(linesep="\r\n")


def wire_bytes(message: Message) -> bytes:
    """What the outbox stores and sends: `message.as_bytes()` in the policy family it was built
    with, with SMTP's CRLF line ends."""
    written: list[bytes] = []
    if _write_composed(message, written):
        return b"".join(written)
    out = BytesIO()
    generator = _WireGenerator(out, mangle_from_=False, policy=message.policy.clone(linesep="\r\n"))
    generator.flatten(message)
    return out.getvalue()


def _write_composed(msg: Message, out: list[bytes]) -> bool:
    """Add `msg` to `out` as BytesGenerator writes it, if it is a tree of parts compose built;
    False for any other (`out` is then incomplete), which the generator writes.

    Around the work itself the generator spends more than the work (a policy, a buffer and a
    copy of itself per part, the Content-Type parsed again and again): it takes 2.6 times as
    long over an acknowledgement. What it writes for these parts is simple: each one's headers
    as its policy folds them and a blank line; then a multipart's parts, each after a line end
    and its boundary line, and a closing boundary line; a message kept as text as it stands;
    any other body with its line ends converted. tests/test_compose_wire.py holds the two to
    the same bytes.
    """
    if msg.policy is not _POLICY or msg.preamble is not None or msg.epilogue is not None:
        return False
    payload = msg.get_payload()
    if isinstance(payload, list):
        boundary = _own_boundary(msg)
        if boundary is None or not payload:  # an empty one is written otherwise; ours never are
            return False
        out.extend(_WIRE.fold_binary(name, value) for name, value in msg.raw_items())
        for part in payload:
            out.append(f"\r\n--{boundary}\r\n".encode())
            if not _write_composed(part, out):
                return False
        out.append(f"\r\n--{boundary}--\r\n".encode())
        return True
    kind = msg.get_content_type()
    main = kind.partition("/")[0]
    # The generator has handlers of its own for other multiparts and messages, and might for a
    # type that is not a plain word; not for text, images, documents or message/rfc822.
    plain = (main.isalpha() and main not in ("multipart", "message")) or kind == "message/rfc822"
    if not (plain and isinstance(payload, str) and payload.isascii()):
        return False
    out.extend(_WIRE.fold_binary(name, value) for name, value in msg.raw_items())
    out.append(b"\r\n")
    out.append((payload if main == "message" else _line_ends(payload, "\r\n")).encode("ascii"))
    return True


def _line_ends(text: str, linesep: str) -> str:
    """`text` with `linesep` ending each line, CRLF, CR and LF alike, as the generator writes a
    body: in one pass, a third of the regular expression's cost, and in none where they are
    `linesep` already (the text of an 8-bit original as IMAP delivers it)."""
    if "\r" in text:
        if linesep == "\r\n" and text.count("\r\n") == text.count("\r") == text.count("\n"):
            return text
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n", linesep)


class _WireGenerator(BytesGenerator):
    """BytesGenerator, writing a body's lines in one go rather than one by one (two writes a
    line: 70 µs for a forward's 9 KB text). Same bytes: the stock loop writes every piece of
    NLCRE.split (CRLF, CR and LF each ending one) with the line end after all but the last."""

    def _write_lines(self, lines: str) -> None:
        self.write(_line_ends(lines, self._NL))
