"""Every table mailbridge keeps. Schema changes go through Alembic (mailbridge/migrations).

Natural keys carry the idempotency: a message's dedupe key, an outbox row's dedupe key, a
case's reference and a cursor's folder are unique, so doing the same thing twice is refused
by the database rather than remembered by the code.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from mailbridge.store.types import JSONType, RawBytes, UTCDateTime

# Case.status values. "In action" in the reports is everything before "resolved".
CASE_STATUSES = (
    "triage",  # the team must look: non-member sender, no route found
    "awaiting_response",  # with the service
    "escalated",
    "delay_advised",
    "work_scheduled",
    "clarification",  # the member was asked for more information
    "resolved",  # actioned by services
    "closed",  # closed by the member, or auto-closed
)
OPEN_STATUSES = CASE_STATUSES[:6]
ORIGINS = ("direct", "cc", "forwarded", "imported")
KINDS = ("members_enquiry", "service_request", "foi", "not_me")
# Two more Case.kind values, set by mailbridge and never chosen by hand: an enquiry the reports
# count through other cases, so that nothing is counted twice. SPLIT: the originating case of
# a multi-part enquiry, whose parts are the work (DESIGN §2); MERGED: a case merged into
# another (`case merge`), which carries on as that one.
SPLIT, MERGED = "split", "merged"
FEEDBACK = ("satisfied", "partly", "not_satisfied")  # the member's #satisfied / #partly / …
# CaseLink.kind: "related" (a supervisor's link), "duplicate" (a possible duplicate, flagged for
# the team, never merged automatically), "merged" (case_id was merged into other_case_id).
LINK_KINDS = ("related", "duplicate", "merged")

# Message.status: where an inbound message is in the pipeline.
MESSAGE_RECEIVED = "received"  # raw bytes committed, not yet processed (replayed on start)
MESSAGE_PROCESSED = "processed"
MESSAGE_FAILED = "failed"  # processing raised; kept for the team to replay


class Case(SQLModel, table=True):
    __tablename__ = "case"
    __table_args__ = (
        Index("ix_case_open_due", "status", "due_at"),
        # Covering indexes for the supervisor reports (mailbridge/reports): a report reads one
        # of them instead of the wide rows, and a leading DU saves SQLite's GROUP BY a sort.
        # _due: monthly and quarters (a range of due dates); _open: the open position
        # (PostgreSQL; SQLite prefers scanning _status); _status: status, feedback and the
        # per-DU routing figures over all cases; _received: the same for a period received
        # (the pack's year), a range instead of a whole scan; _member and _routing: theirs.
        # `kind` is last in each, so that skipping `not_me` cases needs no row.
        Index(
            "ix_case_report_due",
            "due_at",
            "resolved_at",
            "delay_advised_at",
            "delivery_unit",
            "kind",
        ),
        Index("ix_case_report_open", "resolved_at", "received_at", "delivery_unit", "kind"),
        Index(
            "ix_case_report_status",
            "delivery_unit",
            "status",
            "received_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "feedback",
            "chasers_sent",
            "escalations",
            "kind",
        ),
        Index(
            "ix_case_report_received",
            "received_at",
            "delivery_unit",
            "status",
            "first_delivery_unit",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "feedback",
            "chasers_sent",
            "escalations",
            "reroutes",
            "misroute_flag_seconds",
            "kind",
        ),
        Index("ix_case_report_member", "member", "received_at", "kind"),
        Index(
            "ix_case_report_routing",
            "first_delivery_unit",
            "reroutes",
            "misroute_flag_seconds",
            "received_at",
            "kind",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True, max_length=40)
    parent_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    status: str = Field(default="awaiting_response", max_length=20, index=True)
    origin: str = Field(default="direct", max_length=12)
    kind: str = Field(default="members_enquiry", max_length=20)
    member: str | None = Field(default=None, max_length=120, index=True)  # directory member id
    member_address: str | None = Field(default=None, max_length=320)
    delivery_unit: str | None = Field(default=None, max_length=120, index=True)
    officer: str | None = Field(default=None, max_length=120, index=True)  # directory officer id
    subject: str = Field(default="")
    thread_message_id: str | None = Field(default=None, max_length=998)  # the member's original
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delay_advised_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # What the reports measure beyond the timestamps. A count is NULL where it was never
    # recorded (history imported from a CRM that did not count chasers or reroutes), so the
    # averages leave those cases out instead of counting them as zero.
    feedback: str | None = Field(default=None, max_length=16)  # see FEEDBACK
    feedback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    chasers_sent: int | None = Field(default=0, sa_column_kwargs={"server_default": "0"})
    escalations: int | None = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Routing: where the case was first sent, when, how often it was sent on again, and the
    # working time (WorkingCalendar.working_seconds_between) from that first assignment to
    # the first officer's #wrong-service.
    first_delivery_unit: str | None = Field(default=None, max_length=120)
    first_assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reroutes: int | None = Field(default=0, sa_column_kwargs={"server_default": "0"})
    misroute_flag_seconds: int | None = None
    # The conversation (DESIGN §4 commands): what the officer and the member said by email.
    nocopy: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    budget: str | None = Field(default=None, max_length=3)  # "yes" | "no" (#budget)
    target_date: date | None = None  # the new date of the latest #delay
    scheduled_for: date | None = None  # #scheduled
    scheduled_what: str | None = None
    # The clock (mailbridge/schedule): the earliest time a sweep has something to do for this
    # case, kept by the sweep itself; any change to the case sets it to "now" so the next sweep
    # looks again. NULL: nothing will ever be due (closed). Swept by an index range, not a scan.
    next_action_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    member_replied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # last word


class CaseLink(SQLModel, table=True):
    """Two cases that belong together: related by hand, a possible duplicate, a merge."""

    __tablename__ = "case_link"
    __table_args__ = (UniqueConstraint("case_id", "other_case_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    other_case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=20)  # see LINK_KINDS
    score: float | None = None  # possible duplicates: how alike (0..1)
    reason: str | None = None
    actor: str = Field(default="mailbridge", max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)


class CasePlace(SQLModel, table=True):
    """A place an enquiry names (a postcode, a street address), normalised, for finding
    possible duplicates with an index look-up instead of reading every recent case's text."""

    __tablename__ = "case_place"
    __table_args__ = (
        UniqueConstraint("case_id", "place"),
        Index("ix_case_place_place", "place", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    place: str = Field(max_length=200)  # "postcode:SW1A1AA", "street:12 high street"
    received_at: datetime = Field(sa_type=UTCDateTime)  # the case's, for the 30-day window


class Message(SQLModel, table=True):
    """One email, inbound or recorded outbound; `raw` is the exact bytes, never rewritten."""

    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    direction: str = Field(default="in", max_length=3)
    dedupe_key: str = Field(unique=True, max_length=998)  # Message-ID, else sha256:<hex>
    message_id: str | None = Field(default=None, max_length=998, index=True)
    sha256: str = Field(max_length=64)
    size: int
    raw: bytes = Field(sa_column=Column(RawBytes, nullable=False))
    source: str = Field(default="", max_length=200)  # "imap:INBOX", "maildir:var/inbox", "cli"
    source_key: str = Field(default="", max_length=400)  # UID or Maildir file name
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)  # IMAP: up to 2**32 - 1
    uid: int | None = Field(default=None, sa_type=BigInteger)
    fetched_at: datetime = Field(sa_type=UTCDateTime)
    # When it reached the mailbox (IMAP INTERNALDATE, Maildir delivery time): the clock's start.
    received_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=MESSAGE_RECEIVED, max_length=12, index=True)
    attempts: int = 0
    error: str | None = None
    parse_ok: bool | None = None  # None until parsed; False: stored and flagged for the team
    classification: str | None = Field(default=None, max_length=20, index=True)
    rule: str | None = Field(default=None, max_length=60)  # why: the rule that classified it
    held: bool = False  # matched a case but from a stranger: never relayed or obeyed
    from_address: str | None = Field(default=None, max_length=320, index=True)
    from_name: str | None = None
    subject: str | None = None
    to: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    cc: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: str | None = None
    date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    headers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    body_text: str | None = None
    attachments: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    defects: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MessageCopy(SQLModel, table=True):
    """Another copy of a stored message (same Message-ID, different bytes), kept, not processed.

    A re-delivery or the same mail in a second folder is recorded once as a Message; where its
    bytes differ (other Received: headers, a list footer) they are kept here, so nothing is lost.
    """

    __tablename__ = "message_copy"
    __table_args__ = (UniqueConstraint("message_db_id", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    message_db_id: int = Field(foreign_key="message.id", index=True)
    sha256: str = Field(max_length=64)
    size: int
    raw: bytes = Field(sa_column=Column(RawBytes, nullable=False))
    source: str = Field(default="", max_length=200)
    source_key: str = Field(default="", max_length=400)
    fetched_at: datetime = Field(sa_type=UTCDateTime)


class Participant(SQLModel, table=True):
    """Someone on a case: the member, a stakeholder (anyone else on To/Cc), or the officer."""

    __tablename__ = "participant"
    __table_args__ = (UniqueConstraint("case_id", "address", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    address: str = Field(max_length=320)
    name: str = ""
    role: str = Field(max_length=20)  # member | stakeholder | officer
    person: str | None = Field(default=None, max_length=120)  # directory id, when known
    added_at: datetime = Field(sa_type=UTCDateTime)
    message_db_id: int | None = Field(default=None, foreign_key="message.id")


class Event(SQLModel, table=True):
    """The case timeline: every change, who or what caused it, and when."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_case_at", "case_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=200)  # "mailbridge", "member:cllr-jones", "cli:alice", …
    kind: str = Field(max_length=40)
    rule: str | None = Field(default=None, max_length=60)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    message_db_id: int | None = Field(default=None, foreign_key="message.id")


class MailboxCursor(SQLModel, table=True):
    """How far a folder has been read: UIDs up to last_uid are stored, processed and moved."""

    __tablename__ = "mailbox_cursor"

    folder: str = Field(primary_key=True, max_length=400)  # "<user>@<host>/<folder>"
    uidvalidity: int = Field(sa_type=BigInteger)  # IMAP numbers are unsigned 32-bit
    last_uid: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ReferenceCounter(SQLModel, table=True):
    """The per-year sequence behind case references; incremented atomically by upsert."""

    __tablename__ = "reference_counter"

    prefix: str = Field(primary_key=True, max_length=10)
    year: int = Field(primary_key=True)
    last: int = 0


class Outbox(SQLModel, table=True):
    """Automatic emails waiting to go, written in the transaction of the change that caused them."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    kind: str = Field(max_length=40)
    dedupe_key: str = Field(unique=True, max_length=400)
    message_id: str = Field(unique=True, max_length=998)
    to: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    cc: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    subject: str = ""
    raw: bytes = Field(sa_column=Column(RawBytes, nullable=False))
    status: str = Field(default="pending", max_length=12)  # pending|sending|sent|failed|cancelled
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# ----- the directory of people, as loaded into the database -------------------------------------
# The directory file (config/directory.toml) is the source of members, delivery units and
# officers; it is loaded into these tables on start and on SIGHUP, so that reports, the CLI and
# a second daemon see the same people. `historical` rows are ones only imported history names
# (former councillors, DUs since merged). What mail tells us about an officer — a bounce, an
# out-of-office — is kept in the officer row's own columns, which a reload leaves alone.


class MemberRecord(SQLModel, table=True):
    __tablename__ = "member"

    id: str = Field(primary_key=True, max_length=120)  # the directory id, or the CRM's name
    name: str = ""
    ward: str = ""
    party: str = ""
    historical: bool = False  # known only from imported history, not from the directory
    addresses: list[Any] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False, server_default="[]")
    )
    digest: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryUnitRecord(SQLModel, table=True):
    __tablename__ = "delivery_unit"

    name: str = Field(primary_key=True, max_length=120)
    confidential: bool = False
    historical: bool = False
    leads: list[Any] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False, server_default="[]")
    )
    escalation_manager: str | None = Field(default=None, max_length=120)
    escalation_reviewed: date | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OfficerRecord(SQLModel, table=True):
    __tablename__ = "officer"

    id: str = Field(primary_key=True, max_length=120)
    name: str = ""
    addresses: list[Any] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False, server_default="[]")
    )
    delivery_unit: str | None = Field(default=None, max_length=120)
    manager: str | None = Field(default=None, max_length=120)
    deputy: str | None = Field(default=None, max_length=120)
    active: bool = True
    absent_until: date | None = None  # from the directory file
    historical: bool = False
    # Learnt from mail, kept across directory reloads: an out-of-office reply's return date,
    # and a bounce from their address (cleared by `mailbridge directory clear OFFICER`).
    reported_absent_until: date | None = None
    undeliverable_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    undeliverable_reason: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
