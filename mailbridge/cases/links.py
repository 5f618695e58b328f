"""Cases that belong together: possible duplicates flagged at open, and a supervisor's links
and merges (ISSUE 4 §3, §7).

A service over case_link and case_place: it writes links, the timeline of both cases and the
team's notices in the caller's transaction, with `now` passed in, and never commits. Nothing
is merged automatically: a possible duplicate is a link and a notice; merging is a person's
decision (`mailbridge case merge`).

Finding possible duplicates is cheap enough to do for every new enquiry: the places a case
names are stored in case_place, and the candidates are two bounded index look-ups — the same
member's open cases received in the last 30 days (case.member, received_at) and the open cases
naming one of the same places in that window (case_place.place, received_at) — whose subjects
and opening text are then scored in memory (cases/duplicates.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, or_
from sqlmodel import Session, select

from mailbridge.cases.duplicates import (
    TEXT_CHARS,
    WINDOW,
    Enquiry,
    Match,
    enquiry,
    possible_duplicates,
)
from mailbridge.cases.service import (
    SYSTEM,
    NewParticipant,
    add_participants,
    participant_addresses,
    record_event,
)
from mailbridge.outbound.notices import Mailer, queue_team_notice
from mailbridge.store.db import insert_ignoring
from mailbridge.store.models import (
    MERGED,
    OPEN_STATUSES,
    Case,
    CaseLink,
    CasePlace,
    Message,
    Participant,
)

DUPLICATE, RELATED = "duplicate", "related"
MEMBER_CANDIDATES = 10  # the member's most recent open cases in the window
PLACE_CANDIDATES = 20  # the most recent open cases naming the same places


def flag_possible_duplicates(
    session: Session, mailer: Mailer, case: Case, subject: str, body: str, now: datetime
) -> list[Match]:
    """Store the places a newly opened case names, and link it to the open cases it probably
    duplicates, each with an event on both timelines and one notice to the team."""
    new = enquiry(case.id, case.member, case.received_at, subject, body)
    if new.places:
        session.connection().execute(
            insert_ignoring(session, CasePlace.__table__, "case_id", "place"),
            [{"case_id": case.id, "place": p, "received_at": case.received_at} for p in new.places],
        )
    older = _candidates(session, new)
    matches = possible_duplicates(new, [o.enquiry for o in older.values()])
    for match in matches:
        _flag(session, mailer, case, older[match.case_id], match, now)
    return matches


def link_cases(
    session: Session, case: Case, other: Case, now: datetime, *, by: str, note: str = ""
) -> bool:
    """A supervisor says two cases are related; False if they already were."""
    if case.id == other.id:
        raise ValueError(f"{case.reference} cannot be linked to itself")
    linked = session.exec(
        select(CaseLink.id).where(
            CaseLink.kind == RELATED,
            or_(
                (CaseLink.case_id == case.id) & (CaseLink.other_case_id == other.id),
                (CaseLink.case_id == other.id) & (CaseLink.other_case_id == case.id),
            ),
        )
    ).first()
    if linked is not None:
        return False
    actor = f"cli:{by}"
    session.add(CaseLink(case_id=case.id, other_case_id=other.id, kind=RELATED,
                         reason=note or None, actor=actor, created_at=now))  # fmt: skip
    for one, two in ((case, other), (other, case)):
        record_event(session, one.id, now, "linked", actor=actor,
                     detail={"other": two.reference, "note": note})  # fmt: skip
    return True


def merge_cases(
    session: Session, case: Case, into: Case, now: datetime, *, by: str, note: str = ""
) -> list[str]:
    """A supervisor merges `case` into `into`: one enquiry, carried on as `into`.

    `case` is closed (kind MERGED, so the reports count it once, as `into`) and linked to
    `into`; its member and the people they copied in join `into` as stakeholders, so the answer
    reaches them too; its messages and timeline stay where they were, as its history; mail
    quoting its reference later goes on `into` (service.surviving_case). Returns the addresses
    added to `into`. Raises ValueError, changing nothing, when they cannot be merged.
    """
    problem = _cannot_merge(session, case, into)
    if problem:
        raise ValueError(problem)
    actor = f"cli:{by}"
    added = _copy_people(session, case, into, now)
    case.status, case.kind = "closed", MERGED
    case.closed_at = case.closed_at or now
    case.next_action_at = case.updated_at = now
    session.add(CaseLink(case_id=case.id, other_case_id=into.id, kind=MERGED,
                         reason=note or None, actor=actor, created_at=now))  # fmt: skip
    record_event(session, case.id, now, "merged-into", actor=actor,
                 detail={"into": into.reference, "note": note})  # fmt: skip
    record_event(session, into.id, now, "merged-from", actor=actor,
                 detail={"from": case.reference, "note": note, "people_added": added})  # fmt: skip
    return added


@dataclass(frozen=True)
class _Older:
    enquiry: Enquiry
    reference: str


# Built once, run with parameters for every new enquiry (see store.db.insert_ignoring).
_C, _P, _M = Case.__table__.c, CasePlace.__table__.c, Message.__table__.c
_OPEN_OTHERS = (_C.id != bindparam("case_row"), _C.status.in_(OPEN_STATUSES))
_BY_MEMBER = (
    select(_C.id)
    .where(
        _C.member == bindparam("member"),
        _C.received_at >= bindparam("since"),
        _C.received_at <= bindparam("until"),
        _C.parent_id.is_(None),
        *_OPEN_OTHERS,
    )
    .order_by(_C.received_at.desc())
    .limit(MEMBER_CANDIDATES)
)
_BY_PLACE = (
    select(_P.case_id, _P.place)
    .join(Case.__table__, _C.id == _P.case_id)
    .where(
        _P.place.in_(bindparam("places", expanding=True)),
        _P.received_at >= bindparam("since"),
        _P.received_at <= bindparam("until"),
        *_OPEN_OTHERS,
    )
    .order_by(_P.received_at.desc())
    .limit(PLACE_CANDIDATES)
)
_TEXTS = (
    select(
        _C.id, _C.reference, _C.member, _C.received_at, _C.subject,
        func.substr(_M.body_text, 1, TEXT_CHARS),
    )
    .select_from(Case.__table__.outerjoin(Message.__table__, _M.message_id == _C.thread_message_id))
    .where(_C.id.in_(bindparam("ids", expanding=True)))
)  # fmt: skip


def _candidates(session: Session, new: Enquiry) -> dict[int, _Older]:
    """The open, top-level cases received in the 30 days up to `new`'s that share its member or
    one of its places: two bounded index look-ups, then one read of their subject and text."""
    conn = session.connection()
    window = {"since": new.received_at - WINDOW, "until": new.received_at, "case_row": new.case_id}
    ids: set[int] = set()
    named: dict[int, set[str]] = {}  # the places each candidate shares with `new`
    if new.member:
        ids.update(conn.execute(_BY_MEMBER, {"member": new.member, **window}).scalars())
    if new.places:
        for case_id, place in conn.execute(_BY_PLACE, {"places": sorted(new.places), **window}):
            ids.add(case_id)
            named.setdefault(case_id, set()).add(place)
    if not ids:
        return {}
    return {
        case_id: _Older(
            enquiry(case_id, member, at, subject, body or "", named.get(case_id, ())), reference
        )
        for case_id, reference, member, at, subject, body in conn.execute(
            _TEXTS, {"ids": sorted(ids)}
        )
    }


def _flag(
    session: Session, mailer: Mailer, case: Case, old: _Older, match: Match, now: datetime
) -> None:
    """One possible duplicate: the link, both timelines, and the team told once."""
    inserted = session.connection().execute(
        insert_ignoring(session, CaseLink.__table__, "case_id", "other_case_id", "kind"),
        {"case_id": case.id, "other_case_id": match.case_id, "kind": DUPLICATE,
         "score": match.score, "reason": match.reason, "actor": SYSTEM, "created_at": now},
    ).rowcount  # fmt: skip
    if not inserted:
        return
    for case_id, other in ((case.id, old.reference), (match.case_id, case.reference)):
        detail = {"other": other, "score": match.score, "reason": match.reason}
        record_event(session, case_id, now, "possible-duplicate", rule=DUPLICATE, detail=detail)
    queue_team_notice(
        session,
        mailer,
        case,
        dedupe_key=f"duplicate:{case.reference}:{old.reference}",
        headline=f"Possible duplicate: {case.reference} and {old.reference}",
        lines=[
            f'{old.reference}: "{old.enquiry.subject.strip()}", still open.',
            f"Why: {match.reason} ({match.score:.2f}).",
            "Nothing has been merged. If they are one enquiry:",
            f"  mailbridge case merge {case.reference} {old.reference} --by NAME",
            "If they only belong together:",
            f"  mailbridge case link {case.reference} {old.reference} --by NAME",
        ],
        now=now,
    )


def _cannot_merge(session: Session, case: Case, into: Case) -> str | None:
    if case.id == into.id:
        return f"{case.reference} cannot be merged into itself"
    if case.kind == MERGED:
        return f"{case.reference} is already merged"
    if into.kind == MERGED:
        return f"{into.reference} was merged into another case: merge into that one"
    if case.parent_id is not None:
        return f"{case.reference} is a part of a multi-part enquiry: close it instead"
    if session.exec(select(Case.id).where(Case.parent_id == case.id)).first() is not None:
        return f"{case.reference} has parts: merge its parts' cases one by one, or close them"
    return None


def _copy_people(session: Session, case: Case, into: Case, now: datetime) -> list[str]:
    """`case`'s member and stakeholders, as stakeholders of `into` (not its own member)."""
    have = participant_addresses(session, into.id) | {(into.member_address or "").lower()}
    rows = session.exec(
        select(Participant).where(
            Participant.case_id == case.id, Participant.role.in_(("member", "stakeholder"))
        )
    )
    people = [
        NewParticipant(p.address, "stakeholder", p.name, p.person)
        for p in rows
        if p.address not in have
    ]
    add_participants(session, into.id, people, now)
    return [p.address for p in people]
