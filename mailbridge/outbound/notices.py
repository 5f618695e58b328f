"""The automatic emails of a case, queued in the transaction of the change that causes them.

Each kind has a template (templates/mail), a dedupe key that makes queueing it twice a no-op,
and a place in the member's thread. Nothing here sends: rows go to the outbox (DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam
from sqlmodel import Session, select

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.commands import HELP_LINES, Rejected
from mailbridge.config import Settings
from mailbridge.directory import Directory, Member
from mailbridge.ingest.classify import is_own_address
from mailbridge.outbound.compose import (
    Attachment,
    Thread,
    attachments_of,
    clean_header,
    new_message_id,
    plus_address,
    tagged_subject,
    thread_under,
)
from mailbridge.outbound.compose_ahead import SESSION_KEY as COMPOSE_AHEAD
from mailbridge.outbound.compose_ahead import ComposeAhead
from mailbridge.outbound.draft import Draft
from mailbridge.outbound.outbox import queue_email
from mailbridge.outbound.recipients import Recipients, relay_recipients
from mailbridge.outbound.render import Renderer
from mailbridge.store.models import Case, Message, Participant

STATUS_WORDS = {
    "triage": "with the Members' Enquiries team, finding the right service",
    "awaiting_response": "with the service, awaiting its response",
    "escalated": "with the service, escalated to a manager",
    "delay_advised": "with the service, which has advised a delay",
    "work_scheduled": "work scheduled",
    "clarification": "waiting for more information from you",
    "resolved": "answered in full by the service",
    "closed": "closed",
}
FEEDBACK_CHOICES = (
    ("Satisfied", "#satisfied"),
    ("Partly satisfied", "#partly"),
    ("Not satisfied", "#not-satisfied"),
)


@dataclass(frozen=True)
class Mailer:
    """What composing a case's emails needs, built once per run."""

    renderer: Renderer
    mailbox: str
    plus_addressing: bool
    from_name: str
    own_addresses: frozenset[str]
    directory: Directory
    calendar: WorkingCalendar
    auto_close_days: int = 10
    supervisors: frozenset[str] = frozenset()

    @classmethod
    def from_settings(
        cls, settings: Settings, directory: Directory, calendar: WorkingCalendar
    ) -> Mailer:
        return cls(
            renderer=Renderer(settings.template_dir),
            mailbox=settings.mailbox_address,
            plus_addressing=settings.plus_addressing,
            from_name=settings.outbox_policy.from_name,
            own_addresses=settings.own_addresses,
            directory=directory,
            calendar=calendar,
            supervisors=settings.supervisors,
            auto_close_days=settings.clock.auto_close_days,
        )

    def reply_address(self, reference: str) -> str:
        """Where replies about a case should go: its plus-address, where the mailbox has them."""
        return plus_address(self.mailbox, reference) if self.plus_addressing else self.mailbox

    def is_own(self, address: str) -> bool:
        return is_own_address(address, self.own_addresses)

    def case_view(self, case: Case) -> dict[str, Any]:
        """A case as templates see it: words and dates in council time, no database objects."""
        officer = self.directory.officer(case.officer) if case.officer else None
        return {
            "reference": case.reference,
            "subject": case.subject,
            "origin": case.origin,
            "status": case.status,
            "status_words": STATUS_WORDS.get(case.status, case.status),
            "delivery_unit": case.delivery_unit,
            "officer_name": officer.name if officer else None,
            "due": self.calendar.local(case.due_at).date() if case.due_at else None,
            "target": case.target_date,
        }

    def member_name(self, case: Case) -> str:
        member = self.directory.member(case.member) if case.member else None
        return member.name if member else "Councillor"

    def feedback_links(self, reference: str) -> list[tuple[str, str, str]]:
        """One-click mailto: links that pre-fill each feedback command (DESIGN §4)."""
        to = self.reply_address(reference)
        subject = quote(f"Feedback [{reference}]")
        return [
            (label, command, f"mailto:{to}?subject={subject}&body={quote(command)}")
            for label, command in FEEDBACK_CHOICES
        ]

    def queue(
        self,
        session: Session,
        *,
        kind: str,
        dedupe_key: str,
        case: Case | None,
        recipients: Recipients,
        template: str,
        context: dict[str, Any],
        thread: Thread,
        now: datetime,
        subject: str,
        auto_submitted: str = "auto-replied",
        attachments: Sequence[Attachment] = (),
        original: bytes | None = None,
    ) -> bool:
        """Render and queue one email; False if it was already queued or has nobody to go to.

        Built here, or, in a batch the runner composes ahead, by a worker before the batch
        commits (outbound/compose_ahead.py): the row is the same either way.
        """
        to = [a for a in recipients.to if not self.is_own(a)]
        cc = [a for a in recipients.cc if not self.is_own(a) and a not in to]
        if not to and not cc:
            return False
        reference = case.reference if case else ""
        draft = Draft(
            template=template,
            context={
                "mailbox": self.mailbox,
                "help_lines": HELP_LINES,
                "case": self.case_view(case) if case else None,
                **context,
            },
            from_name=self.from_name,
            from_address=self.mailbox,
            to=tuple(to),
            cc=tuple(cc),
            subject=clean_header(subject),
            message_id=new_message_id(kind, reference or "mailbridge", self.mailbox),
            now=now,
            reference=reference or None,
            thread=thread,
            reply_to=self.reply_address(reference) if reference else None,
            auto_submitted=auto_submitted,
            attachments=tuple(attachments),
            original=original,
        )
        ahead: ComposeAhead | None = session.info.get(COMPOSE_AHEAD)
        row = queue_email(
            session,
            kind=kind,
            dedupe_key=dedupe_key,
            message_id=draft.message_id,
            to=to,
            cc=cc,
            subject=draft.subject,
            raw=b"" if ahead else draft.build(self.renderer),
            now=now,
            case_id=case.id if case else None,
            own_addresses=self.own_addresses,
        )
        if row is not None and ahead:
            ahead.add(row.id, draft)
        return row is not None


def member_thread(session: Session, case: Case) -> Thread:
    """Under the member's original message, keeping that message's own References."""
    references = session.exec(
        select(Message.references).where(Message.message_id == case.thread_message_id)
    ).first()
    return thread_under(case.thread_message_id, (references or "").split())


def queue_ack(
    session: Session,
    mailer: Mailer,
    case: Case,
    now: datetime,
    *,
    thread: Thread,
    parts: Sequence[Case] = (),
    dedupe_key: str | None = None,
    stakeholders: Sequence[str] | None = None,
) -> bool:
    """The member hears the reference(s), who has it and when it is due, the same day; again
    (under another `dedupe_key`) when a supervisor splits the case into parts.
    `stakeholders`: the case's, when the caller has just read them (case_stakeholders)."""
    if not case.member_address:
        return False
    copied = [] if case.nocopy else _or_read(stakeholders, session, case)
    return mailer.queue(
        session,
        kind="ack",
        dedupe_key=dedupe_key or f"ack:{case.reference}",
        case=case,
        recipients=Recipients((case.member_address,), ()),
        template="ack",
        context={
            "member_name": mailer.member_name(case),
            "copied": copied,
            "parts": [mailer.case_view(p) for p in parts],
        },
        thread=thread,
        now=now,
        subject=tagged_subject(case.subject, case.reference),
    )


def queue_forward(
    session: Session,
    mailer: Mailer,
    case: Case,
    inbound: Message,
    now: datetime,
    *,
    followup: bool = False,
    rerouted_from: str | None = None,
    history: Sequence[str] = (),
    dedupe_key: str | None = None,
    part_of: str | None = None,
    body: str | None = None,
    stakeholders: Sequence[str] | None = None,
) -> bool:
    """The officer gets the enquiry (or the member's follow-up) with the original attached;
    a case that changed hands says who had it (`rerouted_from`) and its timeline (`history`).
    A part names its originating case (`part_of`) and shows only its own questions (`body`)."""
    officer = mailer.directory.officer(case.officer) if case.officer else None
    if officer is None:
        return False
    unit = mailer.directory.delivery_unit(case.delivery_unit) if case.delivery_unit else None
    member = mailer.directory.member(case.member) if case.member else None
    kind = "followup" if followup else "forward"
    key = dedupe_key or (
        f"followup:{case.reference}:{inbound.id}" if followup else f"forward:{case.reference}"
    )
    return mailer.queue(
        session,
        kind=kind,
        dedupe_key=key,
        case=case,
        recipients=Recipients((officer.addresses[0],), ()),
        template="forward",
        context={
            "officer_name": officer.name,
            "member_name": mailer.member_name(case),
            "member_address": case.member_address or inbound.from_address or "",
            "ward": member.ward if member else "",
            "followup": followup,
            "received": mailer.calendar.local(inbound.received_at),
            "subject": inbound.subject or case.subject,
            "body": (inbound.body_text or "") if body is None else body,
            "part_of": part_of,
            "attachments": [a["filename"] for a in inbound.attachments if a.get("filename")],
            "copied": [] if unit and unit.confidential else _or_read(stakeholders, session, case),
            "confidential": bool(unit and unit.confidential),
            "rerouted_from": rerouted_from,
            "history": list(history),
        },
        thread=Thread(),
        now=now,
        auto_submitted="auto-generated",
        original=inbound.raw,
        subject=tagged_subject(inbound.subject or case.subject, case.reference, reply=False),
    )


def queue_help(
    session: Session,
    mailer: Mailer,
    *,
    to: str,
    case: Case | None,
    rejected: Sequence[Rejected],
    inbound: Message,
    now: datetime,
) -> bool:
    """Unknown or malformed commands are answered, never silently dropped (DESIGN §4)."""
    return mailer.queue(
        session,
        kind="help",
        dedupe_key=f"help:{inbound.id}",
        case=case,
        recipients=Recipients((to,), ()),
        template="help",
        context={"rejected": list(rejected)},
        thread=thread_under(inbound.message_id, (inbound.references or "").split()),
        now=now,
        subject=tagged_subject(inbound.subject or "Commands", case.reference)
        if case
        else f"Re: {inbound.subject or 'Commands'}",
    )


def queue_status(
    session: Session,
    mailer: Mailer,
    *,
    to: str,
    member_name: str,
    cases: Sequence[Case],
    inbound: Message,
    now: datetime,
) -> bool:
    """#status: where one case, or each of the member's open cases, has got to."""
    case = cases[0] if len(cases) == 1 else None
    return mailer.queue(
        session,
        kind="status",
        dedupe_key=f"status:{inbound.id}",
        case=case,
        recipients=Recipients((to,), ()),
        template="status",
        context={"member_name": member_name, "cases": [mailer.case_view(c) for c in cases]},
        thread=thread_under(inbound.message_id, (inbound.references or "").split()),
        now=now,
        subject=tagged_subject(inbound.subject or "Status", case.reference)
        if case
        else f"Re: {inbound.subject or 'Your open enquiries'}",
    )


def queue_notice(
    session: Session,
    mailer: Mailer,
    case: Case,
    template: str,
    *,
    dedupe_key: str,
    now: datetime,
    **context: Any,
) -> bool:
    """A notice to the member alone: delay advised, work scheduled, resolved, budget."""
    if not case.member_address:
        return False
    officer = mailer.directory.officer(case.officer) if case.officer else None
    return mailer.queue(
        session,
        kind=template,
        dedupe_key=dedupe_key,
        case=case,
        recipients=Recipients((case.member_address,), ()),
        template=template,
        context={
            "member_name": mailer.member_name(case),
            "officer_name": officer.name if officer else None,
            "budget": case.budget,
            "feedback_links": mailer.feedback_links(case.reference),
            "auto_close_days": mailer.auto_close_days,
            **context,
        },
        thread=member_thread(session, case),
        now=now,
        auto_submitted="auto-generated",
        subject=tagged_subject(case.subject, case.reference),
    )


def queue_relay(
    session: Session,
    mailer: Mailer,
    case: Case,
    inbound: Message,
    now: datetime,
    *,
    reply_text: str,
    parent: Case | None = None,
    parent_enquiry: str = "",
    **banner: Any,
) -> bool:
    """The officer's reply, to the member and everyone they copied in, in the member's thread.

    DESIGN §3: minus our mailbox, minus anyone the officer already wrote to, and only the
    member where the DU is confidential or the member said #nocopy.
    """
    officer = mailer.directory.officer_by_address(inbound.from_address or "")
    unit = mailer.directory.delivery_unit(case.delivery_unit) if case.delivery_unit else None
    member = mailer.directory.member(case.member) if case.member else None
    recipients = relay_recipients(
        member=case.member_address,
        member_addresses=member.addresses if member else (),
        stakeholders=case_stakeholders(session, case),
        already_sent_to=[a for _, a in (*inbound.to, *inbound.cc)],
        is_own=mailer.is_own,
        member_only=case.nocopy or bool(unit and unit.confidential),
    )
    return mailer.queue(
        session,
        kind="relay",
        dedupe_key=f"relay:{case.reference}:{inbound.id}",
        case=case,
        recipients=recipients,
        template="relay",
        context={
            "officer_name": officer.name if officer else inbound.from_name or "The officer",
            "reply_text": reply_text,
            "part_of": parent.reference if parent else None,
            "trail": parent_enquiry,
            "trail_reference": parent.reference if parent else "",
            "delay": None,
            "scheduled": None,
            "budget": None,
            "feedback_links": None,
            "completed": None,  # the date of scheduled work the officer confirmed is done
            **banner,
        },
        thread=member_thread(session, case),
        now=now,
        subject=tagged_subject(case.subject, case.reference),
        attachments=attachments_of(inbound.raw),
    )


def case_stakeholders(session: Session, case: Case) -> list[str]:
    """The people the member copied in (or a supervisor added), in the order they joined."""
    return list(session.connection().execute(_STAKEHOLDERS, {"case_row": case.id}).scalars())


def _or_read(stakeholders: Sequence[str] | None, session: Session, case: Case) -> list[str]:
    return list(stakeholders) if stakeholders is not None else case_stakeholders(session, case)


_STAKEHOLDERS = (  # built once: every acknowledgement and forward asks it
    select(Participant.address)
    .where(Participant.case_id == bindparam("case_row"), Participant.role == "stakeholder")
    .order_by(Participant.id)
)


def queue_team_notice(
    session: Session,
    mailer: Mailer,
    case: Case | None,
    *,
    dedupe_key: str,
    headline: str,
    lines: Sequence[str] = (),
    now: datetime,
) -> bool:
    """Tell the Members' Enquiries team (the [team] supervisors) something needs their eye:
    an officer's address bounced, a case passed on, a possible duplicate. Without supervisors
    configured it is only on the case's timeline."""
    return mailer.queue(
        session,
        kind="team",
        dedupe_key=dedupe_key,
        case=case,
        recipients=Recipients(tuple(sorted(mailer.supervisors)), ()),
        template="team",
        context={"headline": headline, "lines": list(lines)},
        thread=Thread(),
        now=now,
        auto_submitted="auto-generated",
        subject=tagged_subject(headline, case.reference, reply=False) if case else headline,
    )


def queue_service_notice(
    session: Session,
    mailer: Mailer,
    case: Case,
    template: str,
    *,
    dedupe_key: str,
    recipients: Recipients,
    headline: str,
    now: datetime,
    **context: Any,
) -> bool:
    """A clock email to the service about a case (chaser, escalation, delay reminder,
    completion check): in a thread of its own under the case tag, as the forward is, with
    the case's plus-address to reply to."""
    officer = mailer.directory.officer(case.officer) if case.officer else None
    return mailer.queue(
        session,
        kind=template,
        dedupe_key=dedupe_key,
        case=case,
        recipients=recipients,
        template=template,
        context={
            "officer_name": officer.name if officer else None,
            "member_name": mailer.member_name(case),
            **context,
        },
        thread=Thread(),
        now=now,
        auto_submitted="auto-generated",
        subject=tagged_subject(f"{headline}: {case.subject}", case.reference, reply=False),
    )


def queue_digest(
    session: Session,
    mailer: Mailer,
    member: Member,
    cases: Sequence[Case],
    *,
    week: str,
    now: datetime,
) -> bool:
    """The weekly digest of a member's open cases, once per member per ISO week."""
    return mailer.queue(
        session,
        kind="digest",
        dedupe_key=f"digest:{member.id}:{week}",
        case=None,
        recipients=Recipients((member.addresses[0],), ()),
        template="digest",
        context={
            "member_name": member.name,
            "week": week,
            "cases": [mailer.case_view(c) for c in cases],
        },
        thread=Thread(),
        now=now,
        auto_submitted="auto-generated",
        subject=f"Your open enquiries, week {week}",
    )
