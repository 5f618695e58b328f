"""When a new enquiry is split into parts and when it goes whole, through the pipeline."""

from __future__ import annotations

import pytest

from tests.conftest import MAILBOX
from tests.mail import make_email
from tests.test_pipeline import PATEL, SINGH, Mailbox


@pytest.fixture
def mailbox(maildir, db_url):
    box = Mailbox(maildir, db_url)
    yield box
    box.deps.engine.dispose()


def units(box: Mailbox) -> list[tuple[str, str | None, str]]:
    return [(c.reference, c.delivery_unit, c.status) for c in box.cases()]


def test_questions_that_all_go_to_one_unit_keep_the_enquiry_whole(mailbox):
    mailbox.receive(make_email(PATEL, [MAILBOX], "Two things", "1. Bins missed\n2. Litter"))
    assert units(mailbox) == [("ME-2026-00001", "Street Scene", "awaiting_response")]
    assert [kind for kind, *_ in mailbox.queued()] == ["ack", "forward"]


def test_a_unit_the_member_named_in_the_subject_takes_the_enquiry_whole(mailbox):
    body = "1. The pothole by the school\n2. Bins left on the pavement"
    mailbox.receive(make_email(PATEL, [MAILBOX], "[Highways] Two things", body))
    assert units(mailbox) == [("ME-2026-00001", "Highways", "awaiting_response")]


def test_an_enquiry_written_to_an_officer_is_not_split(mailbox):
    body = "1. The pothole by the school\n2. Bins left on the pavement"
    mailbox.receive(make_email(PATEL, [SINGH], "Two things", body, cc=[MAILBOX]))
    assert units(mailbox) == [("ME-2026-00001", "Street Scene", "awaiting_response")]


def test_a_question_no_rule_routes_becomes_a_part_for_the_team(mailbox):
    body = "1. The pothole by the school\n2. Bins left out\n3. When is the next surgery?"
    mailbox.receive(make_email(PATEL, [MAILBOX], "Three things", body))
    assert units(mailbox) == [
        ("ME-2026-00001", None, "awaiting_response"),
        ("ME-2026-00001-1", "Highways", "awaiting_response"),
        ("ME-2026-00001-2", "Street Scene", "awaiting_response"),
        ("ME-2026-00001-3", None, "triage"),
    ]
    assert mailbox.events(mailbox.case("ME-2026-00001-3")) == ["case-opened", "triage"]
    assert [kind for kind, *_ in mailbox.queued()] == ["forward", "forward", "ack"]


def test_a_follow_up_is_checked_against_the_enquiry_not_its_parts(mailbox):
    body = "1. The pothole by the school on Mill Lane\n2. Bins left out on Mill Lane"
    mailbox.receive(make_email(PATEL, [MAILBOX], "Two things on Mill Lane", body))
    mailbox.receive(make_email(PATEL, [MAILBOX], "Re: Two things on Mill Lane", "Any news?"))
    events = {c.reference: mailbox.events(c) for c in mailbox.cases()}
    assert events["ME-2026-00002"][-1] == "possible-duplicate"
    assert events["ME-2026-00001"][-1] == "possible-duplicate"
    assert "possible-duplicate" not in events["ME-2026-00001-1"] + events["ME-2026-00001-2"]
