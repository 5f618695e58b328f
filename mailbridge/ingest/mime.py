"""The MIME tree under the headers: text decoding, body text, attachments, bounce and forward parts.

parse.py reads the top-level headers and builds the ParsedMessage; this module walks the parts,
in one pass without recursion, and holds the text decoding both need (raw 8-bit bytes, RFC 2047
encoded words, part charsets). It imports nothing from parse.py, so the dependency runs one way,
parse → mime. What the walk finds is plain data: text, (filename, type, size) tuples, and the
header blocks of the messages a bounce or a forward carries. Reading Message-IDs out of those
blocks and building the public dataclasses is parse.py's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from html import unescape
from html.parser import HTMLParser

PARTS_MAX = 500  # a bound on work for pathological MIME trees

_EMBEDDED_MESSAGES = frozenset({"message/rfc822", "message/global"})
_FOLD = re.compile(r"\r\n|\r|\n")
_DSN_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# Charsets that are routinely mislabelled: decode with the superset mail clients actually use.
_CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "",
    "ascii": "", "gb2312": "gb18030", "gbk": "gb18030", "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
    "x-sjis": "cp932", "unknown-8bit": "", "x-unknown": "", "unknown": "", "8bit": "",
}  # fmt: skip


# -- text decoding: shared with the headers in parse.py ---------------------------------------


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


def unfold(value: str) -> str:
    """A header value on one line, stripped."""
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
    """A raw compat32 header value (or parameter, such as a filename) as clean, unfolded,
    decoded text."""
    text = clean(unfold(str(raw_value)))
    return clean(decode_words(text)) if "=?" in text else text


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


# -- HTML to text ----------------------------------------------------------------------------

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


# -- the walk --------------------------------------------------------------------------------


@dataclass
class MimeContent:
    """What one walk over the MIME tree collects."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    inner_plain: list[str] = field(default_factory=list)  # inside a forwarded/returned message
    inner_html: list[str] = field(default_factory=list)
    attachments: list[tuple[str, str, int]] = field(default_factory=list)  # filename, type, size
    # Header blocks of message/rfc822 and text/rfc822-headers parts, in document order: how a
    # bounce or an out-of-office names the message it is about.
    embedded_headers: list[Message] = field(default_factory=list)
    dsn_statuses: list[str] = field(default_factory=list)
    dsn_recipients: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def body_text(self) -> str:
        """text/plain preferred, then HTML; the message's own parts before those of a message it
        forwards or returns. An empty text/plain beside real HTML (Outlook does this) gives way.
        Line ends are LF."""
        body = ""
        for plain, html in ((self.plain, self.html), (self.inner_plain, self.inner_html)):
            texts = [t for t in plain if t.strip()]
            if not texts:
                texts = [t for t in (html_to_text(h) for h in html) if t]
            if texts:
                body = "\n\n".join(texts)
                break
        if "\r" in body:
            body = body.replace("\r\n", "\n").replace("\r", "\n")
        return body

    def dsn_status(self) -> str:
        """The one status to act on: a permanent failure beats a delay beats a success."""
        for klass in ("5", "4", "2"):
            for status in self.dsn_statuses:
                if status.startswith(klass):
                    return status
        return ""


def walk(root: Message, defects: list[str]) -> MimeContent:
    """One pass over the tree, document order, without recursion (a nesting bomb stays flat).
    Defects are appended to `defects`, which the result shares."""
    found = MimeContent(defects=defects)
    stack: list[tuple[Message, bool]] = [(root, False)]
    seen = 0
    while stack:
        part, inner = stack.pop()
        seen += 1
        if seen > PARTS_MAX:
            found.defects.append("too-many-parts")
            break
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
                found.attachments.append((name, clean(ctype), _approximate_size(part)))
        elif part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, inner) for c in reversed(children) if isinstance(c, Message))
        else:
            _leaf(part, ctype, inner, found)
        # After the part is read: decoding its payload is what finds bad base64.
        found.defects.extend(type(d).__name__ for d in part.defects)
    return found


def _filename(part: Message, found: MimeContent) -> str:
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


def _leaf(part: Message, ctype: str, inner: bool, found: MimeContent) -> None:
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
        found.attachments.append((filename, clean(ctype), len(_payload_bytes(part))))


def _embedded_message(
    part: Message,
    is_root: bool,
    inner: bool,
    stack: list[tuple[Message, bool]],
    found: MimeContent,
) -> None:
    payload = part.get_payload()
    sub = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(sub, Message):
        return
    found.embedded_headers.append(sub)
    if not inner and not is_root:
        name = _filename(part, found)
        found.attachments.append((name, "message/rfc822", _approximate_size(sub)))
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


def _header_block(part: Message, found: MimeContent) -> None:
    """text/rfc822-headers: the returned message's header block, as text."""
    text = decode_text(_payload_bytes(part), part.get_content_charset())
    try:
        headers = HeaderParser().parsestr(text, headersonly=True)
    except Exception:
        return
    found.embedded_headers.append(headers)


def _delivery_status(part: Message, found: MimeContent) -> None:
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
            addr = clean(unfold(value)).rsplit(";", 1)[-1].strip().strip("<>").lower()
            if "@" in addr and addr not in found.dsn_recipients and len(addr) <= 320:
                found.dsn_recipients.append(addr)
