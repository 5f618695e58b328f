"""Composing automatic emails: headers that keep the member's thread and mark the mail as ours.

Every message carries the case tag in its subject, In-Reply-To/References that sit it in the
member's own thread, Auto-Submitted (RFC 3834) so other robots stay quiet, Exchange's request
not to auto-reply, and our own header so that mailbridge never takes its mail for an enquiry.
Header values are cleaned here, once: nothing from an inbound subject or display name can
smuggle a line break into our headers.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid

from mailbridge.ingest.classify import OWN_HEADER
from mailbridge.outbound.render import Rendered

REFERENCES_KEPT = 20  # the root and the last 19, as mail clients do
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in any mail source view, unlike base64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


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

    Built with the compat32 MIME classes: the modern header registry re-parses every header
    on each set and get, which made composing cost more than the whole inbound pipeline.
    """
    text = MIMEText(body.text, "plain", _UTF8)
    content: Message = text
    if body.html:
        content = MIMEMultipart("alternative", _subparts=[text, MIMEText(body.html, "html", _UTF8)])
    if attachments or original is not None:
        parts = [content, *(_attachment(a) for a in attachments)]
        if original is not None:
            parts.append(_original(original))
        content = MIMEMultipart("mixed", _subparts=parts)
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


def _attachment(item: Attachment) -> Message:
    maintype, _, subtype = item.content_type.partition("/")
    part = MIMEBase(maintype or "application", subtype or "octet-stream")
    part.set_payload(item.data)
    encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", item.filename))
    return part


def _original(raw: bytes) -> Message:
    """The inbound email itself, as message/rfc822, so its attachments travel with it.

    An ASCII original goes in as text, written out as it came (line ends becoming CRLF): no
    re-parsing and re-folding of its headers. One with raw 8-bit bytes is parsed with
    compat32, which writes those bytes back unchanged.
    """
    if raw.isascii():
        part = MIMEBase("message", "rfc822")
        part.set_payload(raw.decode("ascii"))
    else:
        part = MIMEMessage(email.message_from_bytes(raw))
    part.add_header("Content-Disposition", "attachment", filename="enquiry.eml")
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
