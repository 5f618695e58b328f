"""The detached rows the pipeline composes from (a new case, the message in hand) are the
objects SQLModel's constructor would build: every column, set or defaulted, reads the same."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlmodel import SQLModel

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.cases.service import detached_row, open_case
from mailbridge.config import ReferenceFormat
from mailbridge.ingest.parse import parse
from mailbridge.ingest.pipeline import Inbound, parsed_columns
from mailbridge.store.db import session
from mailbridge.store.models import Case, Message
from tests.casework import NOW, fly_tipping
from tests.conftest import REPO

# What open_case writes for a member's new enquiry (its values, as the pipeline passes them).
NEW_CASE = {
    "id": 42,
    "reference": "ME-2026-00042",
    "received_at": NOW,
    "due_at": NOW + timedelta(days=14),
    "created_at": NOW,
    "updated_at": NOW,
    "next_action_at": NOW,
    "status": "awaiting_response",
    "origin": "direct",
    "kind": "members_enquiry",
    "member": "m-patel",
    "member_address": "asha.patel@council.example",
    "delivery_unit": "Street Scene",
    "officer": "o-singh",
    "subject": "Fly-tipping on Mill Lane",
    "thread_message_id": "<1@mail.example>",
    "first_delivery_unit": "Street Scene",
    "first_assigned_at": NOW,
}


def assert_same_row(fast: SQLModel, built: SQLModel) -> None:
    """Each column reads the same, and so does everything pydantic shows of the object."""
    table = type(built).__table__
    assert {c.name: getattr(fast, c.name) for c in table.columns} == {
        c.name: getattr(built, c.name) for c in table.columns
    }
    fields = [k for k in vars(built) if not k.startswith("_sa_")]
    assert [k for k in vars(fast) if not k.startswith("_sa_")] == fields  # repr's order
    assert [vars(fast)[k] for k in fields] == [vars(built)[k] for k in fields]
    assert fast.model_fields_set == built.model_fields_set
    assert repr(fast) == repr(built)
    assert fast == built
    assert fast.model_dump() == built.model_dump()
    assert fast.model_dump(exclude_unset=True) == built.model_dump(exclude_unset=True)


@pytest.mark.unit
def test_a_new_case_reads_like_the_constructed_one_defaults_included():
    fast = detached_row(Case, **NEW_CASE)
    assert_same_row(fast, Case(**NEW_CASE))
    # The columns open_case leaves to the model read its defaults.
    assert (fast.parent_id, fast.nocopy, fast.feedback) == (None, False, None)
    assert (fast.chasers_sent, fast.escalations, fast.reroutes) == (0, 0, 0)


@pytest.mark.unit
def test_a_case_with_only_its_required_columns_takes_every_default():
    required = {k: NEW_CASE[k] for k in ("reference", "received_at", "created_at", "updated_at")}
    assert_same_row(detached_row(Case, **required), Case(**required))


@pytest.mark.unit
def test_the_message_in_hand_reads_like_the_constructed_one():
    raw = fly_tipping()
    inbound = Inbound(7, raw, NOW, parsed_columns(parse(raw)) | {"classification": "enquiry"})
    fast = inbound.as_message()
    built = Message(id=7, raw=raw, received_at=NOW, **inbound.changes)
    assert_same_row(fast, built)
    # Columns this run never knows (stored with the raw bytes) read None on both.
    assert (fast.sha256, fast.size, fast.dedupe_key, fast.fetched_at) == (None, None, None, None)


@pytest.mark.unit
def test_a_message_before_its_parse_gets_lists_of_its_own():
    fast = Inbound(7, b"x", NOW).as_message()
    assert_same_row(fast, Message(id=7, raw=b"x", received_at=NOW))
    other = Inbound(8, b"y", NOW).as_message()
    fast.to.append(["", "a@example.org"])
    assert (other.to, other.headers) == ([], {})
    assert fast.headers is not other.headers


def test_the_case_open_case_returns_reads_like_its_stored_row(engine):
    with session(engine) as s:
        case = open_case(s, fmt=ReferenceFormat(), calendar=WorkingCalendar(), response_days=10,
                         received_at=NOW, now=NOW, status="triage", subject="Bins")  # fmt: skip
        s.commit()
        stored = s.get(Case, case.id)
    for column in Case.__table__.columns:
        assert getattr(case, column.name) == getattr(stored, column.name), column.name


def test_a_case_made_before_any_query_or_constructor_reads_its_columns():
    """The daemon's first new case comes before any ORM object exists (its SQL is Core), so
    its mappers are not yet configured: a fresh interpreter shows it."""
    code = (
        "from datetime import UTC, datetime\n"
        "from mailbridge.cases.service import detached_row\n"
        "from mailbridge.store.models import Case\n"
        "case = detached_row(Case, reference='ME-2026-00001', received_at=datetime.now(UTC))\n"
        "print(case.reference, case.status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "ME-2026-00001 awaiting_response\n"), done.stderr
