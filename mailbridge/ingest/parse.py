"""Raw bytes → ParsedMessage: the public model, and the headers, addresses, ids and date in it.

mail-parser builds the compat32 `email.message.Message` (one parse of the bytes); every field is
then read from that Message with stdlib helpers, because mail-parser gets several of them wrong
(notes/libraries.md §2: addresses without '@' dropped, encoded words inside quotes left encoded,
raw 8-bit header bytes lost, ISO-2022-JP bodies undecoded, DSN parts hidden). The part tree —
body text, attachments, bounce and forward parts — is walked by mime.py, which also holds the
text decoding both modules use; nothing here reads a body part. Whatever leaves this
module is plain str with no lone surrogates and no NUL, so it can go straight into SQLite or
PostgreSQL text columns.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime

import mailparser
from mailparser.exceptions import MailParserRecursionError

from mailbridge.ingest.mime import clean, decode_words, header_text, unfold, walk


@dataclass(frozen=True)
class Address:
    name: str
    email: str  # lower-cased addr-spec; "" when the header held no usable address

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None  # "<id@host>", stripped; None when absent or unusable
    subject: str
    from_: Address | None
    from_header: str  # the raw From text, decoded; kept for mailer-daemon checks when no '@'
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    delivered_to: tuple[str, ...]  # Delivered-To, X-Original-To, Envelope-To, lower-cased
    in_reply_to: tuple[str, ...]  # "<id>" values
    references: tuple[str, ...]  # "<id>" values, oldest first
    date: datetime | None  # aware UTC, or None when missing/unparseable
    headers: dict[str, str]  # lower-cased header name -> first value, decoded and cleaned
    content_type: str  # top-level, lower-cased, e.g. "multipart/report"
    report_type: str  # the report-type parameter of a multipart/report, lower-cased, else ""
    body_text: str  # text/plain preferred; else text from HTML; "" if none
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()
    # Message-IDs and subjects named inside message/rfc822 or text/rfc822-headers parts:
    # how a bounce or an out-of-office names the message it is about.
    embedded_message_ids: tuple[str, ...] = ()
    embedded_subjects: tuple[str, ...] = ()
    dsn_status: str = ""  # e.g. "5.1.1" from a message/delivery-status part
    dsn_recipients: tuple[str, ...] = field(default=())  # Final-Recipient addresses


class ParseFailed(Exception):
    """The bytes could not be read as an email at all; the message stays stored and flagged."""


# mail-parser logs a WARNING for every multipart container and report part it meets ("Email
# content 'alternative' not handled"): on a daemon's journal that is noise on nearly every
# message, and formatting it costs time. Its errors still get through.
logging.getLogger("mailparser").setLevel(logging.ERROR)

HEADER_VALUE_MAX = 2_000
REFERENCES_MAX = 20  # root + the last 19, as we emit them (notes §7)
EMBEDDED_MAX = 10
DEFECTS_MAX = 20

# Headers that make bytes recognisably an email (or a MIME entity). Without any of them the
# "message" is text or junk, and there is nothing for the team to act on but the raw bytes.
_RECOGNISABLE = frozenset(
    {
        "from", "sender", "to", "cc", "bcc", "subject", "date", "message-id", "received",
        "return-path", "reply-to", "in-reply-to", "references", "delivered-to",
        "x-original-to", "envelope-to", "resent-from", "resent-to", "mime-version",
        "content-type",
    }
)  # fmt: skip
_DELIVERED_HEADERS = ("delivered-to", "x-original-to", "envelope-to")

_BOM = b"\xef\xbb\xbf"
# RFC 822 obsolete syntax allowed white space before the colon ("Subject : hi"); compat32 does not.
_OBS_HEADER_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:", re.MULTILINE)
_BLANK_LINE = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_MSGID = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID = re.compile(r"[^<>\s()\"]+@[^<>\s()\"]+")


def parse(raw: bytes) -> ParsedMessage:
    """Read one message; raise ParseFailed only when the bytes are not an email at all."""
    data, defects = _trim(raw)
    msg = _read_message(data)
    names = {str(name).strip().lower() for name in msg}
    if not names & _RECOGNISABLE:
        raise ParseFailed("no recognisable header")
    try:
        return _extract(msg, defects)
    except RecursionError as exc:  # a nesting bomb that got past mail-parser's guard
        raise ParseFailed("message nesting too deep") from exc
    except Exception as exc:  # a bug here must flag one message, not stop the daemon
        raise ParseFailed(f"cannot extract fields: {type(exc).__name__}: {exc}") from exc


def _trim(raw: bytes) -> tuple[bytes, list[str]]:
    """Remove what stops compat32 from seeing the headers: a BOM, leading blank lines,
    and obsolete "Name :" header syntax. Only a copy for parsing; the stored bytes stay exact."""
    defects: list[str] = []
    data = raw
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
        defects.append("utf8-bom")
    if data[:1] in (b" ", b"\t", b"\r", b"\n"):
        stripped = data.lstrip(b" \t\r\n")
        if stripped != data:
            data = stripped
            defects.append("leading-blank-lines")
    if b"\n" not in data and b"\r" in data:
        # Classic Mac line ends: compat32 splits headers on a bare CR, but quoted-printable
        # soft breaks and base64 inside the parts then go wrong.
        data = data.replace(b"\r", b"\n")
        defects.append("cr-line-endings")
    end = _BLANK_LINE.search(data)
    cut = end.start() if end else len(data)
    if _OBS_HEADER_NAME.search(data, 0, cut):
        # compat32 would end the header block at such a line and make the rest body.
        data = _OBS_HEADER_NAME.sub(rb"\1:", data[:cut]) + data[cut:]
        defects.append("obsolete-header-syntax")
    return data, defects


class _MessageOnly(mailparser.MailParser):
    """mail-parser's guarded build of the compat32 Message, without its field extraction.

    We read every field ourselves (see the module docstring), so its extraction was work
    thrown away: on the ingest benchmark it was 40% of a parse, 0.55 ms a message here. What
    we keep is its construction, which turns a nesting bomb into MailParserRecursionError.
    """

    def parse(self) -> _MessageOnly:
        return self


def _read_message(data: bytes) -> Message:
    """The bytes as mail-parser's compat32 Message."""
    try:
        return _MessageOnly.from_bytes(data).message
    except (MailParserRecursionError, RecursionError) as exc:
        raise ParseFailed("message nesting too deep") from exc
    except Exception as exc:
        raise ParseFailed(f"unreadable: {type(exc).__name__}: {exc}") from exc


# -- headers -------------------------------------------------------------------------------


def _header_index(msg: Message) -> dict[str, list[str]]:
    """Lower-cased name -> raw values (surrogate-escaped, still folded), in order; one pass."""
    index: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        key = str(name).strip().lower()
        if not key.isascii():
            key = clean(key)
        if key:
            index.setdefault(key, []).append(str(value))
    return index


def _addresses(values: list[str], *, keep_without_at: bool = False) -> list[Address]:
    """getaddresses over cleaned raw values, then decode each display name on its own, so an
    encoded word inside quotes (as Outlook writes it) is decoded and commas stay separators."""
    if not values:
        return []
    cleaned = [clean(unfold(v)) for v in values]
    try:
        pairs = getaddresses(cleaned)
    except Exception:  # a pathological header is no address at all
        return []
    out = []
    for name, addr in pairs:
        spec = addr.strip().strip("<>").strip().lower()
        if "@" not in spec or any(c.isspace() for c in spec) or len(spec) > 320:
            if not keep_without_at:
                continue  # groups, "undisclosed-recipients:;", bare local parts
            spec = ""
        out.append(Address(name=clean(decode_words(name)).strip()[:200], email=spec))
    return out


def normalise_message_id(value: str) -> str | None:
    """The "<id@host>" in a header value; a bare id gets brackets; anything else is None."""
    found = _MSGID.search(value)
    if found:
        return f"<{found.group(1)[:900]}>"
    bare = value.strip()
    if _BARE_MSGID.fullmatch(bare):
        return f"<{bare[:900]}>"
    return None


def message_ids(value: str) -> list[str]:
    """Every id in a References/In-Reply-To value, in order, without repeats."""
    ids = [f"<{i[:900]}>" for i in _MSGID.findall(value)]
    if not ids:
        one = normalise_message_id(value)
        ids = [one] if one else []
    return list(dict.fromkeys(ids))


def _date(raw_value: str | None, defects: list[str]) -> datetime | None:
    """Aware UTC, or None. A date without a zone, or with -0000, is taken as UTC."""
    if not raw_value:
        return None
    try:
        value = parsedate_to_datetime(clean(unfold(raw_value)))
    except Exception:  # TypeError/ValueError/OverflowError on junk dates
        defects.append("unparseable-date")
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        defects.append("unparseable-date")
        return None


def _embedded(blocks: list[Message]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Message-IDs and subjects in the header blocks of the messages a bounce, an out-of-office
    or a forward carries (as mime.walk found them): how such mail names the message it is about."""
    ids: list[str] = []
    subjects: list[str] = []
    for block in blocks:
        index = _header_index(block)
        if len(ids) < EMBEDDED_MAX and index.get("message-id"):
            mid = normalise_message_id(clean(unfold(index["message-id"][0])))
            if mid and mid not in ids:
                ids.append(mid)
        if len(subjects) < EMBEDDED_MAX and "subject" in index:
            subjects.append(header_text(index["subject"][0])[:HEADER_VALUE_MAX])
    return tuple(ids), tuple(subjects)


# -- assembly --------------------------------------------------------------------------------


def _extract(msg: Message, defects: list[str]) -> ParsedMessage:
    index = _header_index(msg)
    headers = {
        name: header_text(values[0][: HEADER_VALUE_MAX * 4])[:HEADER_VALUE_MAX]
        for name, values in index.items()
    }
    from_raw = index.get("from", [])[:1]
    from_header = headers.get("from", "")
    from_: Address | None = None
    if from_raw:
        candidates = _addresses(from_raw, keep_without_at=True)
        from_ = next((a for a in candidates if a.email), None)
        if from_ is None:
            name = candidates[0].name if candidates and candidates[0].name else from_header
            from_ = Address(name=name[:200], email="")
    delivered: list[str] = []
    for name in _DELIVERED_HEADERS:
        delivered.extend(a.email for a in _addresses(index.get(name, [])))
    refs = message_ids(clean(unfold(" ".join(index.get("references", [])[:1]))))
    if len(refs) > REFERENCES_MAX:
        refs = [refs[0], *refs[-(REFERENCES_MAX - 1) :]]
    in_reply_to = message_ids(clean(unfold(" ".join(index.get("in-reply-to", [])[:1]))))
    message_id = None
    if index.get("message-id"):
        message_id = normalise_message_id(clean(unfold(index["message-id"][0])))

    parts = walk(msg, defects)  # appends to defects, which _date below extends in turn
    embedded_ids, embedded_subjects = _embedded(parts.embedded_headers)
    content_type = msg.get_content_type()
    report_type = ""
    if content_type == "multipart/report":
        param = msg.get_param("report-type") or ""
        report_type = clean(collapse_rfc2231_value(param)).strip().lower()[:100]
    return ParsedMessage(
        message_id=message_id,
        subject=headers.get("subject", ""),
        from_=from_,
        from_header=from_header,
        to=tuple(_addresses(index.get("to", []))),
        cc=tuple(_addresses(index.get("cc", []))),
        reply_to=tuple(_addresses(index.get("reply-to", []))),
        delivered_to=tuple(dict.fromkeys(delivered)),
        in_reply_to=tuple(in_reply_to),
        references=tuple(refs),
        date=_date(index.get("date", [None])[0], defects),
        headers=headers,
        content_type=clean(content_type),
        report_type=report_type,
        body_text=parts.body_text(),
        attachments=tuple(
            Attachment(filename=name, content_type=ctype, size=size)
            for name, ctype, size in parts.attachments
        ),
        defects=tuple(dict.fromkeys(clean(d) for d in defects))[:DEFECTS_MAX],
        embedded_message_ids=embedded_ids,
        embedded_subjects=embedded_subjects,
        dsn_status=parts.dsn_status(),
        dsn_recipients=tuple(parts.dsn_recipients[:EMBEDDED_MAX]),
    )
