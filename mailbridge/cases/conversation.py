"""What a person's reply on a case does: commands obeyed, the officer's answer relayed,
the member's follow-up passed to the officer (DESIGN §3–4).

A service: it changes the case, writes the timeline and queues email in the caller's
transaction, with `now` passed in. Commands count only from the people they belong to —
officer commands from officers of the case's delivery unit, member commands from its
member; anyone else's are recorded and ignored. Unknown or malformed ones get the help reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from mailbridge.cases.assignment import TO_TRIAGE, reassign, route_to
from mailbridge.cases.commands import (
    FEEDBACK,
    MEMBER_COMMANDS,
    OFFICER_COMMANDS,
    Command,
    allowed,
    new_text,
    read_commands,
)
from mailbridge.cases.routing import Router
from mailbridge.cases.service import NewParticipant, add_participants, record_event
from mailbridge.cases.split import resolve_parent_when_done
from mailbridge.outbound.notices import (
    Mailer,
    queue_forward,
    queue_help,
    queue_notice,
    queue_relay,
    queue_status,
)
from mailbridge.store.models import OPEN_STATUSES, Case, Message


@dataclass(frozen=True)
class Speaker:
    """Who wrote the reply, as far as this case is concerned."""

    address: str
    actor: str  # "officer:o-singh", "member:cllr-patel", or the address
    is_case_officer: bool
    is_case_member: bool


def speaker_of(address: str, case: Case, mailer: Mailer) -> Speaker:
    directory = mailer.directory
    officer = directory.officer_by_address(address)
    member = directory.member_by_address(address)
    case_officer = bool(
        officer
        and (
            officer.id == case.officer
            or (
                case.delivery_unit
                and officer.delivery_unit
                and officer.delivery_unit.casefold() == case.delivery_unit.casefold()
            )
        )
    )
    supervisor = address.lower() in mailer.supervisors
    actor = (
        f"officer:{officer.id}"
        if officer
        else f"member:{member.id}"
        if member
        else f"supervisor:{address}"
        if supervisor
        else address
    )
    return Speaker(
        address, actor, case_officer or supervisor, bool(member and member.id == case.member)
    )


@dataclass(frozen=True)
class Turn:
    """One reply being acted on: the case, the message, who wrote it, and the time."""

    session: Session
    mailer: Mailer
    router: Router
    case: Case
    inbound: Message
    speaker: Speaker
    now: datetime
    # #resolved on a work_scheduled case confirms the work is done (the member is told so).
    completes_work: bool = False

    def event(self, kind: str, *, rule: str | None = None, detail: dict | None = None) -> None:
        record_event(self.session, self.case.id, self.now, kind, actor=self.speaker.actor,
                     rule=rule, detail=detail, message_db_id=self.inbound.id)  # fmt: skip


def handle_reply(
    session: Session,
    mailer: Mailer,
    router: Router,
    case: Case,
    inbound: Message,
    now: datetime,
) -> list[str]:
    """Act on a reply already attached to `case`; returns what was done, for the log."""
    speaker = speaker_of(inbound.from_address or "", case, mailer)
    turn = Turn(session, mailer, router, case, inbound, speaker, now,
                completes_work=case.status == "work_scheduled")  # fmt: skip
    if speaker.is_case_member:  # the member's last word: a resolved case no longer auto-closes
        case.member_replied_at, case.next_action_at = inbound.received_at, now
    commands, rejected = read_commands(inbound.body_text or "")
    done: list[str] = []
    if rejected:
        turn.event("commands-rejected", detail={"lines": [r.line for r in rejected]})
        queue_help(session, mailer, to=speaker.address, case=case, rejected=rejected,
                   inbound=inbound, now=now)  # fmt: skip
        done.append("help")
    obeyed = []
    for command in commands:
        if allowed(
            command, is_case_officer=speaker.is_case_officer, is_case_member=speaker.is_case_member
        ):
            obeyed.append(command)
        else:
            turn.event("command-ignored", rule="not-theirs", detail={"line": command.line})
    for command in obeyed:
        _apply(turn, command)
        done.append(command.name)
    text = _without_commands(new_text(inbound.body_text or ""))
    names = {c.name for c in obeyed}
    if speaker.is_case_officer:
        done += _officer_reply(turn, obeyed, text)
    elif speaker.is_case_member and text and not names & {"satisfied", "not-satisfied"}:
        officer = mailer.directory.officer(case.officer) if case.officer else None
        already = {a for _, a in (*inbound.to, *inbound.cc)}
        if officer and not already & set(officer.addresses):
            queue_forward(session, mailer, case, inbound, now, followup=True)
            done.append("followup")
    return done


def _officer_reply(turn: Turn, obeyed: list[Command], text: str) -> list[str]:
    """Relay the officer's words unless they are internal; notices for bare commands."""
    session, mailer, case, now = turn.session, turn.mailer, turn.case, turn.now
    by_name = {c.name: c for c in obeyed}
    # A #wrong-service reply is for the team and the next officer, not the member: its words
    # go on the timeline and into the forward as the reason.
    if text and not by_name.keys() & {"note", "private", "wrong-service"}:
        queue_relay(
            session,
            mailer,
            case,
            turn.inbound,
            now,
            reply_text=text,
            parent=session.get(Case, case.parent_id) if case.parent_id else None,
            parent_enquiry=_parent_enquiry(session, case),
            delay=by_name.get("delay"),
            scheduled=by_name.get("scheduled"),
            budget=case.budget if "budget" in by_name else None,
            feedback_links=mailer.feedback_links(case.reference) if "resolved" in by_name else None,
            completed=case.scheduled_for if turn.completes_work and "resolved" in by_name else None,
        )
        case.first_response_at = case.first_response_at or now
        turn.event("reply-relayed", rule="officer-reply")
        return ["relay"]
    # Nothing to relay (a bare command, or an internal note): the member still hears of a
    # delay, scheduled work, a budget implication or the resolution, each once.
    key = f"{case.reference}:{turn.inbound.id}"
    for name in ("delay", "scheduled", "resolved"):
        if command := by_name.get(name):
            template, on_date = name, command.on_date
            if name == "resolved" and turn.completes_work:  # the scheduled work is done
                template, on_date = "completion_confirmed", case.scheduled_for
            queue_notice(session, mailer, case, template, dedupe_key=f"{name}:{key}", now=now,
                         on_date=on_date, text=command.text)  # fmt: skip
    if "budget" in by_name and not by_name.keys() & {"delay", "scheduled", "resolved"}:
        queue_notice(session, mailer, case, "budget", dedupe_key=f"budget:{key}", now=now)
    return []


def _apply(turn: Turn, command: Command) -> None:
    """One obeyed command's change to the case, with its timeline entry."""
    case, now, name = turn.case, turn.now, command.name
    if name == "delay":
        case.status, case.target_date = "delay_advised", command.on_date
        case.delay_advised_at = case.delay_advised_at or now
        case.first_response_at = case.first_response_at or now  # a delay notice is a response
        detail = {"date": command.on_date.isoformat(), "reason": command.text}
        turn.event("delay-advised", detail=detail)
    elif name == "scheduled":
        case.status, case.scheduled_for = "work_scheduled", command.on_date
        case.scheduled_what = command.text or None
        turn.event(
            "work-scheduled", detail={"date": command.on_date.isoformat(), "what": command.text}
        )
    elif name == "resolved":
        case.status, case.resolved_at = "resolved", turn.inbound.received_at
        case.first_response_at = case.first_response_at or now
        done = {"work_done": case.scheduled_for.isoformat()} if turn.completes_work else None
        turn.event("resolved", detail=done)
        resolve_parent_when_done(turn.session, case, now)  # the last part resolves its parent
    elif name == "budget":
        case.budget = command.choice
        turn.event("budget-recorded", detail={"budget": command.choice})
    elif name == "wrong-service":
        _reroute(turn, command)
    elif name in ("note", "private"):
        turn.event("internal-note", detail={"text": command.text})
    elif name in FEEDBACK:
        case.feedback, case.feedback_at = FEEDBACK[name], now
        if name == "partly":
            case.status = "awaiting_response"  # kept open for the officer to follow up
        else:
            case.status, case.closed_at = "closed", now
        turn.event("feedback", detail={"feedback": FEEDBACK[name], "comment": command.text})
    elif name == "nocopy":
        case.nocopy = True
        turn.event("nocopy", detail={})
    elif name == "status":
        _status(turn, command)
        turn.event("status-requested", detail={"reference": command.choice or case.reference})
    case.updated_at = case.next_action_at = now  # the clock looks again at its next sweep


def _reroute(turn: Turn, command: Command) -> None:
    """#wrong-service: on to the named unit or officer, or back to triage. Not first time
    right: the case changes hands through the one reassignment service."""
    today = turn.mailer.calendar.local(turn.now).date()
    target = route_to(turn.router, command.choice, today) if command.choice else None
    reason = f"#wrong-service {command.choice}".strip()
    if words := _without_commands(new_text(turn.inbound.body_text or "")):
        reason += f": {' '.join(words.split())[:300]}"
    if command.choice and target is None:
        reason += " (not a known unit or officer: back to the team)"
    reassign(turn.session, turn.mailer, turn.case, target or TO_TRIAGE, turn.now,
             actor=turn.speaker.actor, reason=reason, misroute=True,
             message_db_id=turn.inbound.id)  # fmt: skip


def _status(turn: Turn, command: Command) -> None:
    """#status: this case, or another of the same member's cases named by reference."""
    case = turn.case
    asked = command.choice.upper() if command.choice else None
    if asked and asked != case.reference:
        same_member = select(Case).where(Case.reference == asked, Case.member == case.member)
        cases = list(turn.session.exec(same_member))
    else:
        cases = [case]
    queue_status(turn.session, turn.mailer, to=turn.inbound.from_address or "",
                 member_name=turn.mailer.member_name(case), cases=cases, inbound=turn.inbound,
                 now=turn.now)  # fmt: skip


def open_cases_of(session: Session, member_id: str) -> list[Case]:
    return list(
        session.exec(
            select(Case)
            .where(Case.member == member_id, Case.status.in_(OPEN_STATUSES))
            .order_by(Case.received_at)
        )
    )


def _parent_enquiry(session: Session, case: Case) -> str:
    """For a part, the originating enquiry's text: the email trail the relay quotes."""
    if not case.parent_id:
        return ""
    parent = session.get(Case, case.parent_id)
    body = session.exec(
        select(Message.body_text).where(Message.message_id == parent.thread_message_id)
    ).first()
    return body or ""


def _without_commands(text: str) -> str:
    """The reply's own words: command lines taken out, surrounding blank lines trimmed."""
    known = OFFICER_COMMANDS | MEMBER_COMMANDS
    kept = [
        line
        for line in text.split("\n")
        if not (line.strip().startswith("#") and line.strip()[1:].split(" ")[0].lower() in known)
    ]
    return "\n".join(kept).strip()


def release_held(
    session: Session, mailer: Mailer, message: Message, *, by: str, now: datetime
) -> Case:
    """A supervisor vouches for a held message (DESIGN §3): its sender joins the case as a
    stakeholder, so their next messages are not held, and the message goes on to the officer.
    Commands in it stay unobeyed: a stakeholder gives none."""
    if not message.held or message.case_id is None:
        raise ValueError(f"message {message.id} is not held on a case")
    case = session.get(Case, message.case_id)
    message.held = False
    sender = NewParticipant(message.from_address or "", "stakeholder", message.from_name or "")
    add_participants(session, case.id, [sender], now, message.id)
    record_event(session, case.id, now, "message-released", actor=f"cli:{by}",
                 message_db_id=message.id, detail={"from": message.from_address})  # fmt: skip
    queue_forward(session, mailer, case, message, now, followup=True)
    return case
