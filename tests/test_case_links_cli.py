"""A supervisor splits, links and merges cases from the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import itertools
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from mailbridge.cli import app
from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from mailbridge.store.db import session
from mailbridge.store.models import Case, CaseLink, Event, Message, Outbox, Participant
from tests.conftest import MAILBOX, deliver, make_settings, settings_env
from tests.mail import make_email

RECEIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PATEL, OKAFOR, RESIDENT = (
    "asha.patel@council.example",
    "ben.okafor@council.example",
    "jo@resident.example",
)
_serial = itertools.count()


class Desk:
    """The store with the daemon's pipeline feeding it, and `mailbridge` run against it."""

    def __init__(self, maildir, db_url):
        self.maildir, self.db_url = maildir, db_url
        self.env = settings_env(db_url, f"maildir://{maildir}", COLUMNS="200")
        self.deps = build_deps(make_settings(db_url, f"maildir://{maildir}"), FrozenClock(RECEIVED))

    def receive(self, raw: bytes) -> None:
        deliver(self.maildir, f"{next(_serial):06d}.test", raw, RECEIVED)
        build_runner(self.deps).drain()

    def run(self, *args: str, code: int = 0):
        result = CliRunner().invoke(app, list(args), env=self.env)
        assert result.exit_code == code, result.output
        return result

    def case(self, reference: str) -> Case:
        with session(self.deps.engine) as s:
            return s.exec(select(Case).where(Case.reference == reference)).one()

    def cases(self) -> list[str]:
        with session(self.deps.engine) as s:
            return [c.reference for c in s.exec(select(Case).order_by(Case.id))]

    def events(self, reference: str) -> list[tuple[str, str, dict]]:
        case = self.case(reference)
        with session(self.deps.engine) as s:
            rows = s.exec(select(Event).where(Event.case_id == case.id).order_by(Event.id))
            return [(e.kind, e.actor, e.detail) for e in rows if e.kind != "email-queued"]

    def outbox(self, dedupe_key: str) -> email.message.EmailMessage:
        with session(self.deps.engine) as s:
            raw = s.exec(select(Outbox.raw).where(Outbox.dedupe_key == dedupe_key)).one()
        return email.message_from_bytes(raw, policy=email.policy.default)

    def people(self, reference: str) -> dict[str, str]:
        case = self.case(reference)
        with session(self.deps.engine) as s:
            rows = s.exec(select(Participant).where(Participant.case_id == case.id))
            return {p.address: p.role for p in rows}


@pytest.fixture
def desk(maildir, db_url, monkeypatch):
    for var in ("MAILBRIDGE_CONFIG", "MAILBRIDGE_SOURCE", "MAILBRIDGE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    d = Desk(maildir, db_url)
    d.receive(
        make_email(PATEL, [MAILBOX], "Bins and a pothole", "Both on Mill Lane.", cc=[RESIDENT])
    )
    yield d
    d.deps.engine.dispose()


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def test_split_by_hand_makes_a_part_per_unit_forwarded_and_told_to_the_member(desk):
    before = desk.case("ME-2026-00001")
    assert before.officer is not None
    out = desk.run("case", "split", "ME-2026-00001", "--by", "Sam",
                   "--part", "Street Scene: the bins were missed",
                   "--part", "highways: the pothole outside no. 4").stdout  # fmt: skip
    assert "ME-2026-00001-1: Street Scene (Dev Singh)" in out
    assert "ME-2026-00001-2: Highways (Rory Walsh)" in out
    parent, first, second = (desk.case(f"ME-2026-00001{n}") for n in ("", "-1", "-2"))
    assert (parent.kind, parent.delivery_unit, parent.officer) == ("split", None, None)
    assert parent.status == "awaiting_response"
    for part, unit in ((first, "Street Scene"), (second, "Highways")):
        assert (part.parent_id, part.delivery_unit, part.first_delivery_unit) == (
            parent.id,
            unit,
            unit,
        )
        assert (part.due_at, part.kind) == (parent.due_at, "members_enquiry")
        assert desk.people(part.reference)[RESIDENT] == "stakeholder"
    forward = desk.outbox("forward:ME-2026-00001-2")
    assert forward["To"] == "rory.walsh@council.example"
    assert "the pothole outside no. 4" in text_of(forward)
    assert "the bins were missed" not in text_of(forward)
    assert "one part of the member's enquiry ME-2026-00001" in text_of(forward)
    told = text_of(desk.outbox("parts:ME-2026-00001-2"))
    assert "ME-2026-00001-1: Street Scene" in told and "ME-2026-00001-2: Highways" in told
    [split] = [e for e in desk.events("ME-2026-00001") if e[0] == "split"]
    assert split[1] == "cli:Sam"
    assert split[2]["previous"] == {
        "delivery_unit": before.delivery_unit,
        "officer": before.officer,
    }
    assert desk.events("ME-2026-00001-1")[0][:2] == ("case-opened", "cli:Sam")


def test_a_split_case_gains_more_parts_when_split_again(desk):
    desk.run("case", "split", "ME-2026-00001", "--by", "Sam",
             "--part", "Street Scene: bins", "--part", "Highways: pothole")  # fmt: skip
    desk.run("case", "split", "ME-2026-00001", "--by", "Sam", "--part", "Housing: damp")
    assert desk.case("ME-2026-00001-3").delivery_unit == "Housing"
    assert "ME-2026-00001-3" in text_of(desk.outbox("parts:ME-2026-00001-3"))


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        (["Street Scene: bins"], "at least two parts"),
        (["Street Scene: bins", "Parks: the swings"], "'Parks' is not a unit or an officer"),
        (["Street Scene: bins", "Highways"], 'write it as "UNIT: the question"'),
        (["Street Scene: bins", "Highways:   "], 'write it as "UNIT: the question"'),
    ],
)
def test_a_split_that_makes_no_sense_is_refused_and_changes_nothing(desk, parts, error):
    args = [a for p in parts for a in ("--part", p)]
    result = desk.run("case", "split", "ME-2026-00001", "--by", "Sam", *args, code=2)
    assert error in result.stderr
    assert desk.cases() == ["ME-2026-00001"]
    assert desk.case("ME-2026-00001").kind == "members_enquiry"


def test_a_part_cannot_itself_be_split(desk):
    desk.run("case", "split", "ME-2026-00001", "--by", "Sam",
             "--part", "Street Scene: bins", "--part", "Highways: pothole")  # fmt: skip
    parts = ("--part", "Street Scene: bins", "--part", "Housing: damp")
    result = desk.run("case", "split", "ME-2026-00001-1", "--by", "Sam", *parts, code=2)
    assert "is itself a part" in result.stderr


def test_link_names_each_case_on_the_others_timeline_once(desk):
    desk.receive(make_email(OKAFOR, [MAILBOX], "Mill Lane", "The lights are out."))
    out = desk.run("case", "link", "ME-2026-00001", "ME-2026-00002",
                   "--note", "same street", "--by", "Sam").stdout  # fmt: skip
    assert "are linked" in out
    linked = [("linked", "cli:Sam", {"other": "ME-2026-00002", "note": "same street"})]
    assert [e for e in desk.events("ME-2026-00001") if e[0] == "linked"] == linked
    assert [e[2]["other"] for e in desk.events("ME-2026-00002") if e[0] == "linked"] == [
        "ME-2026-00001"
    ]
    again = desk.run("case", "link", "ME-2026-00002", "ME-2026-00001", "--by", "Sam").stdout
    assert "already linked" in again
    with session(desk.deps.engine) as s:
        assert [k.kind for k in s.exec(select(CaseLink))] == ["related"]
    assert "itself" in desk.run("case", "link", "ME-2026-00001", "me-2026-00001", code=2).stderr


def test_merge_closes_the_case_and_later_mail_quoting_it_goes_on_the_survivor(desk):
    desk.receive(make_email(OKAFOR, [MAILBOX], "Bins on Mill Lane", "Missed again."))
    out = desk.run("case", "merge", "ME-2026-00002", "ME-2026-00001", "--by", "Sam").stdout
    assert "ME-2026-00002 is merged into ME-2026-00001" in out and OKAFOR in out
    merged, survivor = desk.case("ME-2026-00002"), desk.case("ME-2026-00001")
    assert (merged.status, merged.kind) == ("closed", "merged")
    assert (survivor.status, survivor.kind) == ("awaiting_response", "members_enquiry")
    assert desk.people("ME-2026-00001")[OKAFOR] == "stakeholder"  # hears the answer too
    assert [e[:2] for e in desk.events("ME-2026-00002") if e[0] == "merged-into"] == [
        ("merged-into", "cli:Sam")
    ]
    assert [e[2]["from"] for e in desk.events("ME-2026-00001") if e[0] == "merged-from"] == [
        "ME-2026-00002"
    ]
    desk.receive(make_email(OKAFOR, [MAILBOX], "Re: Bins [ME-2026-00002]", "Any news?"))
    with session(desk.deps.engine) as s:
        reply = s.exec(select(Message).order_by(Message.id.desc())).first()
    assert reply.case_id == survivor.id
    assert (
        "already merged"
        in desk.run("case", "merge", "ME-2026-00002", "ME-2026-00001", "--by", "Sam", code=2).stderr
    )
    assert (
        "merge into that one"
        in desk.run("case", "merge", "ME-2026-00001", "ME-2026-00002", "--by", "Sam", code=2).stderr
    )


def test_a_case_with_parts_cannot_be_merged_away(desk):
    desk.receive(make_email(OKAFOR, [MAILBOX], "Bins on Mill Lane", "Missed again."))
    desk.run("case", "split", "ME-2026-00001", "--by", "Sam",
             "--part", "Street Scene: bins", "--part", "Highways: pothole")  # fmt: skip
    result = desk.run("case", "merge", "ME-2026-00001", "ME-2026-00002", "--by", "Sam", code=2)
    assert "has parts" in result.stderr
    assert desk.case("ME-2026-00001").status == "awaiting_response"
