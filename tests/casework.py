"""A mailbox with cases in it, and the daemon's wiring for acting on them by hand."""

from __future__ import annotations

import email
import email.policy
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from mailbridge.cases.supervision import case_for_update
from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.store.db import session
from mailbridge.store.models import Case, Event, Outbox, Participant
from tests.conftest import MAILBOX, deliver, make_settings
from tests.mail import make_email

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday morning
PATEL = "asha.patel@council.example"
SINGH, LEE, WALSH = (
    "dev.singh@council.example",
    "mia.lee@council.example",
    "rory.walsh@council.example",
)
_serial = itertools.count()


def fly_tipping(**kw: Any) -> bytes:
    """A member's enquiry that routes to Street Scene (Dev Singh)."""
    return make_email(PATEL, [MAILBOX], "Fly-tipping on Mill Lane", "Bags dumped.", **kw)


def pothole(**kw: Any) -> bytes:
    """A member's enquiry that routes to Highways (Rory Walsh)."""
    return make_email(PATEL, [MAILBOX], "Pothole on the High Street", "A deep one.", **kw)


class Desk:
    def __init__(self, maildir: Path, db_url: str):
        self.maildir = maildir
        self.clock = FrozenClock(NOW)
        self.deps = build_deps(make_settings(db_url, f"maildir://{maildir}"), self.clock)
        self.ctx = PipelineContext.from_settings(self.deps.settings, self.deps.directory)

    def receive(self, raw: bytes, at: datetime | None = None) -> None:
        """An email reaches the mailbox at `at` and the daemon processes it (at the clock)."""
        deliver(self.maildir, f"{next(_serial):06d}.test", raw, at or self.clock.now())
        with build_runner(self.deps) as runner:
            runner.drain()

    def act(self, reference: str, action: Callable[[Session, Case], Any]) -> Any:
        """Run a service on one case in one committed transaction; returns what it returned."""
        with session(self.deps.engine) as s:
            result = action(s, case_for_update(s, reference))
            s.commit()
        return result

    def case(self, reference: str = "ME-2026-00001") -> Case:
        with session(self.deps.engine) as s:
            return s.exec(select(Case).where(Case.reference == reference)).one()

    def events(self, reference: str = "ME-2026-00001") -> list[Event]:
        case = self.case(reference)
        with session(self.deps.engine) as s:
            rows = s.exec(select(Event).where(Event.case_id == case.id).order_by(Event.id))
            return [e for e in rows if e.kind != "email-queued"]

    def people(self, reference: str = "ME-2026-00001") -> dict[str, str]:
        case = self.case(reference)
        with session(self.deps.engine) as s:
            rows = s.exec(select(Participant).where(Participant.case_id == case.id))
            return {p.address: p.role for p in rows}

    def outbox(self, **where: Any) -> list[Outbox]:
        with session(self.deps.engine) as s:
            stmt = select(Outbox).order_by(Outbox.id)
            for column, value in where.items():
                stmt = stmt.where(getattr(Outbox, column) == value)
            return list(s.exec(stmt))

    def mail_to(self, address: str) -> list[str]:
        """The plain text of each queued email addressed to `address`."""
        return [
            email.message_from_bytes(row.raw, policy=email.policy.default)
            .get_body(("plain",))
            .get_content()
            for row in self.outbox()
            if address in row.to or address in row.cc
        ]

    def close(self) -> None:
        self.deps.engine.dispose()
