"""First time right, end to end through Dovecot and the SMTP sink: an officer's #wrong-service
and a supervisor's reroute send the case on with its history and count against the unit it was
first sent to; a supervisor taking a case out of triage does not."""

from __future__ import annotations

import pytest

from mailbridge.cases import supervision
from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.daemon import flush_once
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.reports.routing import routing
from mailbridge.store.db import session
from tests.mail import make_email
from tests.test_outbound_flow import KHAN, MAILBOX, NOW, PATEL, SINGH, WALSH, Council, text_of

pytestmark = pytest.mark.imap


@pytest.fixture
def council(imap_account, smtp_sink, db_url):
    c = Council(imap_account, smtp_sink, db_url)
    yield c
    c.deps.engine.dispose()


def routing_rows(council: Council) -> dict[str, dict]:
    calendar = WorkingCalendar.from_settings(council.deps.settings.clock)
    with council.deps.engine.connect() as conn:
        report = routing(conn, calendar, NOW)
    return {row["delivery_unit"]: row for row in report.rows}


def test_wrong_service_street_scene_reroutes_with_the_history_and_counts_against_highways(
    council,
):
    council.send(make_email(PATEL, [MAILBOX], "Pothole on Mill Lane", "Actually fly-tipping."))
    assert (council.case().delivery_unit, council.case().officer) == ("Highways", "o-walsh")
    council.officer_replies("#wrong-service Street Scene\n\nBags, not a road defect.", sender=WALSH)

    case = council.case()
    assert (case.delivery_unit, case.officer, case.status) == (
        "Street Scene",
        "o-singh",
        "awaiting_response",
    )
    assert (case.first_delivery_unit, case.reroutes) == ("Highways", 1)
    assert case.misroute_flag_seconds is not None
    assert "rerouted" in council.timeline()
    [forward] = council.inbox(SINGH)
    text = text_of(forward)
    assert "Was with:  Highways (Rory Walsh)" in text
    assert "rerouted (named-unit) by officer:o-walsh" in text and "#wrong-service" in text
    assert "Actually fly-tipping." in text and "Bags, not a road defect." in text
    assert any(p.get_content_type() == "message/rfc822" for p in forward.iter_attachments())
    assert not [m for m in council.inbox(PATEL) if "road defect" in text_of(m)]  # not for them

    council.send(make_email(PATEL, [MAILBOX], "Fly-tipping by the park", "More bags."))
    council.send(make_email("jo@res.example", [MAILBOX], "Streetlight out", "Dark."))
    assert council.case("ME-2026-00003").status == "triage"
    ctx = PipelineContext.from_settings(council.deps.settings, council.deps.directory)
    with session(council.deps.engine) as s:
        case = supervision.case_for_update(s, "ME-2026-00003")
        supervision.assign(s, ctx.mailer, ctx.router, case, NOW, by="sam", target="Highways")
        case = supervision.case_for_update(s, "ME-2026-00002")
        supervision.reroute(s, ctx.mailer, ctx.router, case, NOW, by="sam", target="Sara Khan")
        s.commit()
    flush_once(council.deps)
    assert [m for m in council.inbox(WALSH) if "Dark." in text_of(m)]
    assert [m for m in council.inbox(KHAN) if "More bags." in text_of(m)]

    rows = routing_rows(council)
    assert {k: rows["Highways"][k] for k in ("assigned_first", "first_time_right", "rerouted")} == {
        "assigned_first": 2,
        "first_time_right": 1,  # the streetlight, assigned out of triage by a supervisor
        "rerouted": 1,  # the pothole that was fly-tipping
    }
    street_scene = rows["Street Scene"]  # the park's bags, rerouted by a supervisor
    assert (street_scene["assigned_first"], street_scene["first_time_right"]) == (1, 0)
    assert street_scene["rerouted"] == 1
    assert rows["Total"]["median_hours_to_flag_misroute"] is not None
