"""Read-only views of cases for the CLI: the list with its filters, and one case in full."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from mailbridge.store.models import (
    OPEN_STATUSES,
    Case,
    CaseLink,
    Event,
    Message,
    Participant,
)


@dataclass(frozen=True)
class CaseFilter:
    status: str | None = None
    delivery_unit: str | None = None
    member: str | None = None
    origin: str | None = None
    overdue: bool = False
    limit: int | None = None


def list_cases(session: Session, f: CaseFilter, now: datetime) -> list[dict[str, Any]]:
    parent = aliased(Case)
    stmt = select(Case, parent.reference).outerjoin(parent, Case.parent_id == parent.id)
    if f.status:
        stmt = stmt.where(Case.status == f.status)
    if f.delivery_unit:
        stmt = stmt.where(Case.delivery_unit == f.delivery_unit)
    if f.member:
        stmt = stmt.where((Case.member == f.member) | (Case.member_address == f.member.lower()))
    if f.origin:
        stmt = stmt.where(Case.origin == f.origin)
    if f.overdue:
        stmt = stmt.where(Case.status.in_(OPEN_STATUSES), Case.due_at < now)
    stmt = stmt.order_by(Case.received_at, Case.id)
    if f.limit:
        stmt = stmt.limit(f.limit)
    rows = session.exec(stmt).all()
    stakeholders = _stakeholders(session, [case.id for case, _ in rows])
    return [
        case_summary(case, parent_ref, stakeholders.get(case.id, []), now)
        for case, parent_ref in rows
    ]


def case_summary(
    case: Case, parent_reference: str | None, stakeholders: list[str], now: datetime
) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "status": case.status,
        "origin": case.origin,
        "kind": case.kind,
        "member": case.member,
        "member_address": case.member_address,
        "delivery_unit": case.delivery_unit,
        "officer": case.officer,
        "subject": case.subject,
        "received_at": _iso(case.received_at),
        "due_at": _iso(case.due_at),
        "overdue": bool(case.due_at and case.status in OPEN_STATUSES and case.due_at < now),
        "resolved_at": _iso(case.resolved_at),
        "closed_at": _iso(case.closed_at),
        "parent_reference": parent_reference,
        "stakeholders": stakeholders,
    }


def case_detail(session: Session, reference: str, now: datetime) -> dict[str, Any] | None:
    case = session.exec(select(Case).where(Case.reference == reference.upper())).first()
    if case is None:
        return None
    parent_ref = session.get(Case, case.parent_id).reference if case.parent_id else None
    detail = case_summary(case, parent_ref, _stakeholders(session, [case.id]).get(case.id, []), now)
    detail["participants"] = [
        {"address": p.address, "name": p.name, "role": p.role, "person": p.person}
        for p in session.exec(
            select(Participant).where(Participant.case_id == case.id).order_by(Participant.id)
        )
    ]
    detail["messages"] = [
        message_summary(m)
        for m in session.exec(
            select(Message)
            .where(Message.case_id == case.id)
            .order_by(Message.received_at, Message.id)
        )
    ]
    detail["routing"] = {
        "first_delivery_unit": case.first_delivery_unit,
        "first_assigned_at": _iso(case.first_assigned_at),
        "reroutes": case.reroutes,
        "misroute_flagged_after_working_hours": None
        if case.misroute_flag_seconds is None
        else round(case.misroute_flag_seconds / 3600, 1),
    }
    detail["links"] = case_links(session, case.id)
    detail["events"] = [
        {
            "at": _iso(e.at),
            "actor": e.actor,
            "kind": e.kind,
            "rule": e.rule,
            "detail": e.detail,
            "message": e.message_db_id,
        }
        for e in session.exec(
            select(Event).where(Event.case_id == case.id).order_by(Event.at, Event.id)
        )
    ]
    return detail


def case_links(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The cases linked to this one, either way round; a merge says which way it went."""
    other = aliased(Case)
    rows = session.exec(
        select(CaseLink, other.reference)
        .join(
            other,
            ((CaseLink.case_id == case_id) & (other.id == CaseLink.other_case_id))
            | ((CaseLink.other_case_id == case_id) & (other.id == CaseLink.case_id)),
        )
        .order_by(CaseLink.created_at, CaseLink.id)
    ).all()
    return [
        {
            "kind": _link_kind(link, case_id),
            "reference": reference,
            "score": link.score,
            "reason": link.reason,
            "actor": link.actor,
            "created_at": _iso(link.created_at),
        }
        for link, reference in rows
    ]


def _link_kind(link: CaseLink, case_id: int) -> str:
    if link.kind != "merged":
        return link.kind
    return "merged into" if link.case_id == case_id else "merged from"


def message_summary(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction,
        "message_id": m.message_id,
        "from": m.from_address,
        "subject": m.subject,
        "received_at": _iso(m.received_at),
        "classification": m.classification,
        "rule": m.rule,
        "held": m.held,
        "status": m.status,
        "parse_ok": m.parse_ok,
        "size": m.size,
        "attachments": m.attachments,
        "error": m.error,
        "body_text": m.body_text,
    }


def _stakeholders(session: Session, case_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start : start + 500]
        rows = session.exec(
            select(Participant.case_id, Participant.address)
            .where(Participant.case_id.in_(chunk), Participant.role == "stakeholder")
            .order_by(Participant.id)
        )
        for case_id, address in rows:
            out.setdefault(case_id, []).append(address)
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
