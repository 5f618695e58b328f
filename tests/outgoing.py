"""Building automatic emails as the composition code would hand them to the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlmodel import Session

from mailbridge.config import OutboxPolicy
from mailbridge.store.models import Case
from tests.conftest import MAILBOX

POLICY = OutboxPolicy(envelope_from=MAILBOX)
OWN = frozenset({MAILBOX})


def outgoing(
    to: Sequence[str],
    subject: str = "Your enquiry [ME-2026-00001]",
    *,
    cc: Sequence[str] = (),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    body: str = "Thank you for your enquiry. We have passed it to Street Scene.\n",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Members' Enquiries <{MAILBOX}>"
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="council.example")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Mailbridge"] = "1"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def add_case(s: Session, reference: str, now: datetime) -> Case:
    case = Case(reference=reference, received_at=now, created_at=now, updated_at=now)
    s.add(case)
    s.flush()
    return case
