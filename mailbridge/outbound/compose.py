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
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from mailbridge.ingest.classify import OWN_HEADER
from mailbridge.outbound.render import Rendered

REFERENCES_KEPT = 20  # the root and the last 19, as mail clients do
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
) -> EmailMessage:
    """A complete message, ready for the outbox."""
    msg = EmailMessage()
    msg["From"] = formataddr((clean_header(from_name), from_address))
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = clean_header(subject)
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
    msg.set_content(body.text)
    if body.html:
        msg.add_alternative(body.html, subtype="html")
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(item.data, maintype=maintype or "application",
                           subtype=subtype or "octet-stream", filename=item.filename)  # fmt: skip
    if original is not None:
        _attach_original(msg, original)
    return msg


def _attach_original(msg: EmailMessage, raw: bytes) -> None:
    """The inbound email itself, as message/rfc822, so its attachments travel with it."""
    try:
        inner = email.message_from_bytes(raw, policy=email.policy.default)
        msg.add_attachment(inner, filename="enquiry.eml")
    except Exception:  # a message too broken to re-serialise still goes, as opaque bytes
        msg.add_attachment(raw, maintype="application", subtype="octet-stream",
                           filename="enquiry.eml")  # fmt: skip


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
