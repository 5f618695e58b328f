"""Raw bytes → ParsedMessage: the fields the pipeline needs, read once, never raising on odd mail.

mail-parser builds the compat32 `email.message.Message` (one parse of the bytes); every field is
then read from that Message with stdlib helpers, because mail-parser gets several of them wrong
(notes/libraries.md §2: addresses without '@' dropped, encoded words inside quotes left encoded,
raw 8-bit header bytes lost, ISO-2022-JP bodies undecoded, DSN parts hidden). Whatever leaves this
module is plain str with no lone surrogates and no NUL, so it can go straight into SQLite or
PostgreSQL text columns.
"""

from __future__ import annotations

import email
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser

import mailparser
from mailparser.exceptions import MailParserRecursionError


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
PARTS_MAX = 500  # a bound on work for pathological MIME trees
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

_EMBEDDED_MESSAGES = frozenset({"message/rfc822", "message/global"})

_BOM = b"\xef\xbb\xbf"
# RFC 822 obsolete syntax allowed white space before the colon ("Subject : hi"); compat32 does not.
_OBS_HEADER_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:", re.MULTILINE)
_BLANK_LINE = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_MSGID = re.compile(r"<([^<>\s]+)>")
_BARE_MSGID = re.compile(r"[^<>\s()\"]+@[^<>\s()\"]+")
_FOLD = re.compile(r"\r\n|\r|\n")
_DSN_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# Charsets that are routinely mislabelled: decode with the superset mail clients actually use.
_CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "",
    "ascii": "", "gb2312": "gb18030", "gbk": "gb18030", "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
    "x-sjis": "cp932", "unknown-8bit": "", "x-unknown": "", "unknown": "", "8bit": "",
}  # fmt: skip


def clean(text: str) -> str:
    """Make `text` safe for a database text column: no lone surrogates, no NUL.

    compat32 keeps raw 8-bit header bytes as lone surrogates (surrogateescape); they are the
    sender's bytes, nearly always UTF-8 or Windows-1252, so decode them as such (notes §2).
    """
    if text.isascii():
        return text.replace("\x00", "") if "\x00" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # surrogates that were never bytes (e.g. from UTF-7)
            text = text.encode("utf-8", "replace").decode("utf-8")
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("cp1252", "replace")
    return text.replace("\x00", "") if "\x00" in text else text


def parse(raw: bytes) -> ParsedMessage:
    """Read one message; raise ParseFailed only when the bytes are not an email at all."""
    data, defects = _trim(raw)
    msg = _read_message(data, defects)
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


def _read_message(data: bytes, defects: list[str]) -> Message:
    """Parse the bytes once with mail-parser and hand back its compat32 Message.

    Cost, measured on the shared corpus: mail-parser ~700 µs/message (it also extracts
    addresses, Received chains and base64 copies of attachments that we do not use), the bare
    compat32 parse it wraps ~270 µs, our extraction below ~240 µs. Returning
    email.message_from_bytes(data) here instead would change no field of ParsedMessage.
    """
    try:
        message = mailparser.parse_from_bytes(data).message
        if isinstance(message, Message):
            return message
    except (MailParserRecursionError, RecursionError) as exc:
        raise ParseFailed("message nesting too deep") from exc
    except Exception as exc:
        # mail-parser crashes after building the Message on some broken MIME (4.8.0: an
        # epilogue defect with no epilogue raises AttributeError). The stdlib parse it wraps
        # does not fail, so take that Message rather than lose, say, a bounce.
        defects.append(f"mailparser-error:{type(exc).__name__}")
    try:
        return email.message_from_bytes(data)
    except RecursionError as exc:
        raise ParseFailed("message nesting too deep") from exc
    except Exception as exc:
        raise ParseFailed(f"unreadable: {type(exc).__name__}: {exc}") from exc


# -- headers -------------------------------------------------------------------------------


def _unfold(value: str) -> str:
    return _FOLD.sub("", value).strip() if ("\n" in value or "\r" in value) else value.strip()


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; a bad charset or bad base64 keeps what it can."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # LookupError, UnicodeError, HeaderParseError, binascii
        pass
    try:
        chunks = decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "raw-unicode-escape", "replace"))
        except Exception:  # an unknown charset, or a codec that is not a text codec
            out.append(chunk.decode("utf-8", "replace"))
    return "".join(out)


def header_text(raw_value: object) -> str:
    """A raw compat32 header value as clean, unfolded, decoded text."""
    text = clean(_unfold(str(raw_value)))
    return clean(decode_words(text)) if "=?" in text else text


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
    cleaned = [clean(_unfold(v)) for v in values]
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
        value = parsedate_to_datetime(clean(_unfold(raw_value)))
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


# -- bodies, attachments and reports ---------------------------------------------------------


def decode_text(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    """Bytes of a text part as str. Undeclared, ASCII-labelled or unknown charsets are read as
    UTF-8, else Windows-1252, which is what mislabelled mail nearly always is."""
    name = (charset or "").strip().strip("\"'").lower()
    name = _CHARSET_SUPERSETS.get(name, name)
    if name:
        try:
            return clean(data.decode(name, "replace"))
        except Exception:  # LookupError, or a codec that is not a text codec
            if defects is not None:
                defects.append(f"unknown-charset:{name[:40]}")
    if data.isascii():
        return clean(data.decode("ascii"))
    try:
        return clean(data.decode("utf-8"))
    except UnicodeDecodeError:
        return clean(data.decode("cp1252", "replace"))


_HTML_MAX = 300_000  # html.parser is pure Python: bound the cost of a giant HTML-only body
_HTML_BLOCKS = frozenset(
    {"address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "h1", "h2",
     "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "td",
     "th", "tr", "ul"}
)  # fmt: skip
_HTML_SKIP = frozenset({"script", "style", "title"})
_SPACES = re.compile(r"[ \t\f\v\xa0\u200b]+")
_MANY_NEWLINES = re.compile(r"\n\s*\n(\s*\n)+")
_TAG = re.compile(r"<[^>]*>")


class _HTMLText(HTMLParser):
    """Visible text of an HTML body: tags and scripts/styles dropped, entities unescaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIP:
            self.skipping += 1
        elif tag in _HTML_BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _HTML_BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable text from an HTML body, for messages that carry no text/plain part."""
    html = html[:_HTML_MAX]
    try:
        parser = _HTMLText()
        parser.feed(html)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # html.parser can still assert on some marked sections
        text = unescape(_TAG.sub(" ", html))
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


@dataclass
class _Found:
    """What one walk over the MIME tree collects."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    inner_plain: list[str] = field(default_factory=list)  # inside a forwarded/returned message
    inner_html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    embedded_ids: list[str] = field(default_factory=list)
    embedded_subjects: list[str] = field(default_factory=list)
    dsn_statuses: list[str] = field(default_factory=list)
    dsn_recipients: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def _filename(part: Message, found: _Found) -> str:
    try:
        name = part.get_filename()
    except Exception:  # a broken RFC 2231 parameter
        found.defects.append("bad-filename")
        return ""
    return header_text(name)[:255] if name else ""


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # compat32 swallows most CTE errors, not all
        return b""
    return data if isinstance(data, bytes) else b""


def _walk(root: Message, found: _Found) -> None:
    """One pass over the tree, document order, without recursion (a nesting bomb stays flat)."""
    stack: list[tuple[Message, bool]] = [(root, False)]
    seen = 0
    while stack:
        part, inner = stack.pop()
        seen += 1
        if seen > PARTS_MAX:
            found.defects.append("too-many-parts")
            return
        found.defects.extend(type(d).__name__ for d in part.defects)
        ctype = part.get_content_type()
        if ctype in _EMBEDDED_MESSAGES:
            _embedded_message(part, part is root, inner, stack, found)
        elif ctype in ("message/delivery-status", "message/global-delivery-status"):
            if not inner:  # a bounce forwarded inside another message is not our bounce
                _delivery_status(part, found)
        elif ctype == "text/rfc822-headers":
            _header_block(part, found)
        elif ctype.startswith("message/") and part is not root:
            # feedback-report, disposition-notification, partial, external-body: compat32
            # parses the body as a message of its own; it is a report or a fragment to list
            # (classify looks for a read receipt or abuse report re-wrapped in
            # multipart/mixed), never body text to walk into.
            if not inner:
                name = _filename(part, found)
                size = _approximate_size(part)
                found.attachments.append(
                    Attachment(filename=name, content_type=clean(ctype), size=size)
                )
        elif part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, inner) for c in reversed(children) if isinstance(c, Message))
        else:
            _leaf(part, ctype, inner, found)


def _leaf(part: Message, ctype: str, inner: bool, found: _Found) -> None:
    disposition = part.get_content_disposition()
    filename = _filename(part, found)
    if (
        ctype in ("text/plain", "text/html")
        and disposition != "attachment"
        and (not filename or disposition == "inline")
    ):
        text = decode_text(_payload_bytes(part), part.get_content_charset(), found.defects)
        if ctype == "text/plain":
            (found.inner_plain if inner else found.plain).append(text)
        else:
            (found.inner_html if inner else found.html).append(text)
    elif not inner:  # what a person attached, or what they forwarded it with
        size = len(_payload_bytes(part))
        found.attachments.append(
            Attachment(filename=filename, content_type=clean(ctype), size=size)
        )


def _embedded_message(
    part: Message, is_root: bool, inner: bool, stack: list[tuple[Message, bool]], found: _Found
) -> None:
    payload = part.get_payload()
    sub = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(sub, Message):
        return
    _note_embedded(_header_index(sub), found)
    if not inner and not is_root:
        name = _filename(part, found)
        size = _approximate_size(sub)
        found.attachments.append(
            Attachment(filename=name, content_type="message/rfc822", size=size)
        )
    stack.append((sub, True))


def _approximate_size(sub: Message) -> int:
    """Size of an attached message from its headers and encoded payloads: close enough for the
    team's view, and a fraction of the cost of regenerating its bytes with as_bytes()."""
    size = 0
    stack = [sub]
    while stack and size < 100_000_000:
        part = stack.pop()
        size += sum(len(k) + len(v) + 4 for k, v in part.raw_items()) + 2
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))
        elif isinstance(payload, str):
            size += len(payload)
    return size


def _note_embedded(index: dict[str, list[str]], found: _Found) -> None:
    if len(found.embedded_ids) < EMBEDDED_MAX and index.get("message-id"):
        mid = normalise_message_id(clean(_unfold(index["message-id"][0])))
        if mid and mid not in found.embedded_ids:
            found.embedded_ids.append(mid)
    if len(found.embedded_subjects) < EMBEDDED_MAX and "subject" in index:
        found.embedded_subjects.append(header_text(index["subject"][0])[:HEADER_VALUE_MAX])


def _header_block(part: Message, found: _Found) -> None:
    """text/rfc822-headers: the returned message's header block, as text."""
    text = decode_text(_payload_bytes(part), part.get_content_charset())
    try:
        headers = HeaderParser().parsestr(text, headersonly=True)
    except Exception:
        return
    _note_embedded(_header_index(headers), found)


def _delivery_status(part: Message, found: _Found) -> None:
    """Status and Final-Recipient of each per-recipient block (RFC 3464)."""
    blocks = part.get_payload()
    if isinstance(blocks, list):
        fields = [(k, str(v)) for b in blocks if isinstance(b, Message) for k, v in b.raw_items()]
    else:  # an encoded or malformed report: read it as plain text
        text = decode_text(_payload_bytes(part), part.get_content_charset())
        fields = [
            (k, v) for k, colon, v in (ln.partition(":") for ln in text.splitlines()) if colon
        ]
    for name, value in fields:
        key = name.strip().lower()
        if key == "status":
            status = _DSN_STATUS.search(value)
            if status:
                found.dsn_statuses.append(status.group(1))
        elif key == "final-recipient":
            addr = clean(_unfold(value)).rsplit(";", 1)[-1].strip().strip("<>").lower()
            if "@" in addr and addr not in found.dsn_recipients and len(addr) <= 320:
                found.dsn_recipients.append(addr)


def _dsn_status(statuses: list[str]) -> str:
    """The one status to act on: a permanent failure beats a delay beats a success."""
    for klass in ("5", "4", "2"):
        for status in statuses:
            if status.startswith(klass):
                return status
    return ""


def _body_text(found: _Found) -> str:
    """text/plain preferred, then HTML; the message's own parts before those of a message it
    forwards or returns. An empty text/plain beside real HTML (Outlook does this) gives way."""
    for plain, html in ((found.plain, found.html), (found.inner_plain, found.inner_html)):
        texts = [t for t in plain if t.strip()]
        if not texts:
            texts = [t for t in (html_to_text(h) for h in html) if t]
        if texts:
            return "\n\n".join(texts)
    return ""


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
    refs = message_ids(clean(_unfold(" ".join(index.get("references", [])[:1]))))
    if len(refs) > REFERENCES_MAX:
        refs = [refs[0], *refs[-(REFERENCES_MAX - 1) :]]
    in_reply_to = message_ids(clean(_unfold(" ".join(index.get("in-reply-to", [])[:1]))))
    message_id = None
    if index.get("message-id"):
        message_id = normalise_message_id(clean(_unfold(index["message-id"][0])))

    found = _Found(defects=defects)
    _walk(msg, found)
    body = _body_text(found)

    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
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
        date=_date(index.get("date", [None])[0], found.defects),
        headers=headers,
        content_type=clean(content_type),
        report_type=report_type,
        body_text=body,
        attachments=tuple(found.attachments),
        defects=tuple(dict.fromkeys(clean(d) for d in found.defects))[:DEFECTS_MAX],
        embedded_message_ids=tuple(found.embedded_ids),
        embedded_subjects=tuple(found.embedded_subjects),
        dsn_status=_dsn_status(found.dsn_statuses),
        dsn_recipients=tuple(found.dsn_recipients[:EMBEDDED_MAX]),
    )
