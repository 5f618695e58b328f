"""A multi-part enquiry end to end through Dovecot and the SMTP sink: one email, two units."""

from __future__ import annotations

import pytest

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports.caseload import status_summary
from tests.conftest import MAILBOX
from tests.mail import make_email
from tests.test_outbound_flow import (
    NOW,
    OKAFOR,
    ORIGINAL,
    PATEL,
    RESIDENT,
    SINGH,
    WALSH,
    Council,
    text_of,
)

pytestmark = pytest.mark.imap
THREE_THINGS = """Dear team,

Residents have raised three things with me:

1. Fly-tipping behind the shops on Mill Lane.
2. A pothole on the High Street, near the bus stop.
3. The litter bins on the green are overflowing.

Many thanks,
Asha
"""


@pytest.fixture
def council(imap_account, smtp_sink, db_url):
    c = Council(imap_account, smtp_sink, db_url)
    cc = [OKAFOR, RESIDENT]
    c.send(make_email(PATEL, [MAILBOX], "Three things", THREE_THINGS, cc=cc, message_id=ORIGINAL))
    yield c
    c.deps.engine.dispose()


def test_each_unit_gets_its_part_and_the_member_one_acknowledgement_listing_both(council):
    parent = council.case()
    first, second = council.case("ME-2026-00001-1"), council.case("ME-2026-00001-2")
    assert (parent.kind, parent.delivery_unit, parent.officer) == ("split", None, None)
    assert (first.delivery_unit, first.officer, first.parent_id) == (
        "Street Scene",
        "o-singh",
        parent.id,
    )
    assert (second.delivery_unit, second.officer, second.parent_id) == (
        "Highways",
        "o-walsh",
        parent.id,
    )
    assert first.due_at == second.due_at == parent.due_at
    [street_scene] = council.inbox(SINGH)
    [highways] = council.inbox(WALSH)
    assert "[ME-2026-00001-1]" in street_scene["Subject"]
    assert "[ME-2026-00001-2]" in highways["Subject"]
    assert "Fly-tipping" in text_of(street_scene) and "litter bins" in text_of(street_scene)
    assert "pothole" not in text_of(street_scene)
    assert "pothole" in text_of(highways) and "Fly-tipping" not in text_of(highways)
    [ack] = council.inbox(PATEL)
    assert "[ME-2026-00001]" in ack["Subject"] and ack["In-Reply-To"] == ORIGINAL
    assert "ME-2026-00001-1: Street Scene (Dev Singh)" in text_of(ack)
    assert "ME-2026-00001-2: Highways (Rory Walsh)" in text_of(ack)
    assert council.timeline() == ["case-opened", "split"]


def test_an_officers_reply_on_a_part_is_relayed_naming_the_originating_case(council):
    council.officer_replies("The pothole is filled.", sender=WALSH)
    for person in (PATEL, OKAFOR, RESIDENT):
        [relay] = [m for m in council.inbox(person) if "pothole is filled" in text_of(m)]
        assert "one part of your enquiry ME-2026-00001" in text_of(relay)
        assert "[ME-2026-00001-2]" in relay["Subject"] and relay["In-Reply-To"] == ORIGINAL


def test_the_enquiry_resolves_when_its_last_part_does(council):
    council.officer_replies("Filled.\n#resolved", sender=WALSH)
    assert council.case("ME-2026-00001-2").status == "resolved"
    assert council.case().status == "awaiting_response"
    council.officer_replies("Cleared, and new bins ordered.\n#resolved", sender=SINGH)
    parent = council.case()
    assert parent.status == "resolved"
    assert parent.resolved_at == council.case("ME-2026-00001-1").resolved_at
    assert council.timeline()[-1] == "resolved"


def test_the_reports_count_the_parts_not_the_enquiry_they_came_from(council):
    calendar = WorkingCalendar.from_settings(council.deps.settings.clock)
    with council.deps.engine.connect() as conn:
        report = status_summary(conn, calendar, NOW)
    by_unit = {row["delivery_unit"]: row["total"] for row in report.rows}
    assert by_unit == {"Highways": 1, "Street Scene": 1, "Total": 2}
