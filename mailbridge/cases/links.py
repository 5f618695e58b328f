"""Cases that belong together: possible duplicates flagged at open, and a supervisor's links
and merges (ISSUE 4 §3, §7).

A service over case_link and case_place: it writes links, the timeline of both cases and the
team's notices in the caller's transaction, with `now` passed in, and never commits. Nothing
is merged automatically: a possible duplicate is a link and a notice; merging is a person's
decision (`mailbridge case merge`).

Finding possible duplicates is cheap enough to do for every new enquiry: the places a case
names are stored in case_place, and the candidates are two bounded index look-ups — the same
member's open cases received in the last 30 days (case.member, received_at) and the open cases
naming one of the same places in that window (case_place.place, received_at), in one statement
— whose subjects and opening text are then scored in memory (cases/duplicates.py). A case's
subject and opening text never change, so they are kept in memory for the next enquiries
("remembered candidates" below): only a case not seen since the daemon started is read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, bindparam, event, func, null, or_, union_all
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, select

from mailbridge.cases.duplicates import (
    TEXT_CHARS,
    WINDOW,
    Enquiry,
    Match,
    Wording,
    enquiry,
    possible_duplicates,
    wording,
)
from mailbridge.cases.service import (
    SYSTEM,
    NewParticipant,
    add_participants,
    insert_or_hold,
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
    session: Session, mailer: Mailer, case: Case, said: Wording, now: datetime
) -> list[Match]:
    """Store the places a newly opened case names, and link it to the open cases it probably
    duplicates, each with an event on both timelines and one notice to the team.

    `said`: the wording of the case's subject and its thread message's body text as stored,
    with which the case is remembered as a candidate for the enquiries after it."""
    new = enquiry(case.id, case.member, case.received_at, said)
    if new.places:
        session.connection().execute(
            insert_ignoring(session, CasePlace.__table__, "case_id", "place"),
            [{"case_id": case.id, "place": p, "received_at": case.received_at} for p in new.places],
        )
    older = _candidates(session, new)
    matches = possible_duplicates(new, [o.enquiry for o in older.values()])
    if matches:  # a case just opened has no links yet: nothing to check before adding them
        links = [
            {"case_id": case.id, "other_case_id": m.case_id, "kind": DUPLICATE, "score": m.score,
             "reason": m.reason, "actor": SYSTEM, "created_at": now}
            for m in matches
        ]  # fmt: skip
        insert_or_hold(session, _INSERT_LINK, links)
    for match in matches:
        _flag(session, mailer, case, older[match.case_id], match, now)
    _remember_opened(session, case, new)
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
# The open statuses as a parameter each: an IN list of values is rendered again at every run.
_OPEN = [bindparam(f"open_{n}", status) for n, status in enumerate(OPEN_STATUSES)]
_OPEN_OTHERS = (_C.id != bindparam("case_row"), _C.status.in_(_OPEN))
_BY_MEMBER = (
    select(_C.id, null().label("place"))
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
# Both look-ups in one statement, each with its own order and limit (in a subquery, as SQLite
# allows no ORDER BY or LIMIT on a part of a UNION).
_BY_MEMBER_OR_PLACE = union_all(
    *(select(*part.c) for part in (_BY_MEMBER.subquery(), _BY_PLACE.subquery()))
)
_TEXTS = (
    select(
        _C.id, _C.reference, _C.member, _C.received_at, _C.subject,
        func.substr(_M.body_text, 1, TEXT_CHARS),
    )
    .select_from(Case.__table__.outerjoin(Message.__table__, _M.message_id == _C.thread_message_id))
    .where(_C.id.in_(bindparam("ids", expanding=True)))
)  # fmt: skip
_INSERT_LINK = CaseLink.__table__.insert()


def _candidates(session: Session, new: Enquiry) -> dict[int, _Older]:
    """The open, top-level cases received in the 30 days up to `new`'s that share its member or
    one of its places, by id: one bounded look-up, then a read of the subject and text of
    those not remembered."""
    conn = session.connection()
    if new.member:
        query = _BY_MEMBER_OR_PLACE if new.places else _BY_MEMBER
    elif new.places:
        query = _BY_PLACE
    else:
        return {}
    params = {
        "member": new.member,
        "places": sorted(new.places),
        "since": new.received_at - WINDOW,
        "until": new.received_at,
        "case_row": new.case_id,
    }
    named: dict[int, set[str]] = {}  # the places each candidate shares with `new`
    for case_id, place in conn.execute(query, params):
        shared = named.setdefault(case_id, set())
        if place is not None:
            shared.add(place)
    if not named:
        return {}
    remembered, uncommitted = _remembered(conn.engine), _uncommitted(session)
    missing = [i for i in named if i not in uncommitted and i not in remembered]
    if missing:
        for case_id, reference, member, at, subject, body in conn.execute(
            _TEXTS, {"ids": sorted(missing)}
        ):
            uncommitted[case_id] = _Older(
                enquiry(case_id, member, at, wording(subject, body or ""), ()), reference
            )
    older = {}
    for case_id in sorted(named):  # in id order, as SQLite read them all: equal matches keep it
        old = uncommitted.get(case_id) or remembered[case_id]
        if named[case_id]:
            old = replace(old, enquiry=replace(old.enquiry, places=frozenset(named[case_id])))
        older[case_id] = old
    return older


def _flag(
    session: Session, mailer: Mailer, case: Case, old: _Older, match: Match, now: datetime
) -> None:
    """One possible duplicate, linked: both timelines, and the team told once."""
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
            f'{old.reference}: "{old.enquiry.wording.subject.strip()}", still open.',
            f"Why: {match.reason} ({match.score:.2f}).",
            "Nothing has been merged. If they are one enquiry:",
            f"  mailbridge case merge {case.reference} {old.reference} --by NAME",
            "If they only belong together:",
            f"  mailbridge case link {case.reference} {old.reference} --by NAME",
        ],
        now=now,
    )


# ----- remembered candidates ---------------------------------------------------------------------
# What _TEXTS gives of a case (its places aside, which depend on the enquiry it is compared
# with) never changes, and a member's recent cases are candidates again with each new enquiry:
# so it is kept, per database (engine), for the most recent CACHED_CASES cases read or opened.
# An entry is only kept once its transaction commits: SQLite gives a rolled-back case's id to
# the next case. Until then it is in the session's `_UNCOMMITTED`, dropped by any rollback.

CACHED_CASES = 2048  # more than a council's members' recent open cases; about 6 KiB each
_REMEMBERED: WeakKeyDictionary[Engine, OrderedDict[int, _Older]] = WeakKeyDictionary()
_UNCOMMITTED = "mailbridge.duplicate_candidates"  # session.info key


def _remembered(engine: Engine) -> OrderedDict[int, _Older]:
    remembered = _REMEMBERED.get(engine)
    if remembered is None:
        remembered = _REMEMBERED[engine] = OrderedDict()
    return remembered


def _uncommitted(session: OrmSession) -> dict[int, _Older]:
    return session.info.setdefault(_UNCOMMITTED, {})


def _remember_opened(session: Session, case: Case, new: Enquiry) -> None:
    """The new case as _TEXTS will read it back: its subject and opening text (no text
    without a Message-ID, on which _TEXTS joins its message), without the places it names."""
    said = new.wording if case.thread_message_id else wording(new.wording.subject, "")
    _uncommitted(session)[case.id] = _Older(
        enquiry(case.id, case.member, case.received_at, said, ()), case.reference
    )


@event.listens_for(OrmSession, "after_commit")
def _keep_committed(session: OrmSession) -> None:
    if session.in_nested_transaction():  # a savepoint released: its transaction may roll back
        return
    committed = session.info.pop(_UNCOMMITTED, None)
    if committed:
        remembered = _remembered(session.get_bind().engine)
        remembered.update(committed)
        while len(remembered) > CACHED_CASES:
            remembered.popitem(last=False)


@event.listens_for(OrmSession, "after_rollback")  # a savepoint's too: one message failed
def _forget_rolled_back(session: OrmSession) -> None:
    session.info.pop(_UNCOMMITTED, None)


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_uncommitted(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # closed without a commit
        session.info.pop(_UNCOMMITTED, None)


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
