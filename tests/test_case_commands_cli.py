"""`mailbridge case assign|reroute|reclassify|reopen|close|note|add-stakeholder` from a shell:
what the supervisor sees, what lands on the timeline, and clean refusals with exit code 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from mailbridge.cli import app
from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from mailbridge.store.db import make_engine, session
from mailbridge.store.models import Case, CaseLink, Outbox
from tests.conftest import MAILBOX, deliver, make_settings, settings_env
from tests.mail import make_email

PATEL = "asha.patel@council.example"
RECEIVED = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.fixture
def cli(maildir, db_url, monkeypatch):
    """A fly-tipping case with Street Scene (ME-2026-00001) and a resident's in triage
    (ME-2026-00002); a function that runs `mailbridge` against them as login "sam"."""
    for var in ("MAILBRIDGE_CONFIG", "MAILBRIDGE_SOURCE", "MAILBRIDGE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    deliver(maildir, "1", make_email(PATEL, [MAILBOX], "Fly-tipping", "Bags."), RECEIVED)
    deliver(maildir, "2", make_email("jo@res.example", [MAILBOX], "Pothole", "Deep."), RECEIVED)
    deps = build_deps(make_settings(db_url, f"maildir://{maildir}"), FrozenClock(RECEIVED))
    build_runner(deps).drain()
    deps.engine.dispose()
    env = settings_env(db_url, f"maildir://{maildir}", COLUMNS="200", LOGNAME="sam")

    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result

    run.db_url = db_url
    return run


def show(cli, reference="ME-2026-00001") -> dict:
    """The case as `case show --format json` gives it, less the outbox's own events."""
    case = json.loads(cli("case", "show", reference, "--format", "json").stdout)
    case["events"] = [e for e in case["events"] if e["kind"] != "email-queued"]
    return case


def queued_for(cli, address: str) -> list[str]:
    engine = make_engine(cli.db_url)
    try:
        with session(engine) as s:
            return [r.dedupe_key for r in s.exec(select(Outbox)) if address in r.to]
    finally:
        engine.dispose()


def test_assign_takes_a_case_out_of_triage_and_queues_the_forward(cli):
    out = cli("case", "assign", "me-2026-00002", "Highways", "--by", "Alex").stdout
    assert "ME-2026-00002 is now with Highways (Rory Walsh), awaiting_response" in out
    case = show(cli, "ME-2026-00002")
    assert case["routing"]["first_delivery_unit"] == "Highways"
    assert case["routing"]["reroutes"] == 0
    assert (case["events"][-1]["kind"], case["events"][-1]["actor"]) == ("assigned", "cli:Alex")
    assert [k for k in queued_for(cli, "rory.walsh@council.example") if k.startswith("reassign:")]


def test_reroute_counts_and_case_show_prints_the_routing_history(cli):
    cli("case", "reroute", "ME-2026-00001", "Highways", "--reason", "a road defect")
    case = show(cli)
    assert case["delivery_unit"] == "Highways" and case["routing"]["reroutes"] == 1
    last = case["events"][-1]
    assert (last["kind"], last["actor"]) == ("rerouted", "cli:sam")  # the login name
    assert last["detail"]["reason"] == "a road defect"
    table = cli("case", "show", "ME-2026-00001").stdout
    assert "routing: first to Street Scene" in table and "rerouted 1 times" in table
    assert "misroute flagged after" in table


def test_case_show_lists_the_cases_links(cli):
    engine = make_engine(cli.db_url)
    with session(engine) as s:
        one, two = s.exec(select(Case).order_by(Case.id)).all()
        s.add(CaseLink(case_id=two.id, other_case_id=one.id, kind="merged", actor="cli:sam",
                       reason="same bags", created_at=RECEIVED))  # fmt: skip
        s.commit()
    engine.dispose()
    assert show(cli)["links"][0] | {"created_at": None} == {
        "kind": "merged from",
        "reference": "ME-2026-00002",
        "score": None,
        "reason": "same bags",
        "actor": "cli:sam",
        "created_at": None,
    }
    assert show(cli, "ME-2026-00002")["links"][0]["kind"] == "merged into"
    assert "Links" in cli("case", "show", "ME-2026-00001").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["case", "reclassify", "ME-2026-00001", "foi"], "Missing option '--approved-by'"),
        (["case", "reopen", "ME-2026-00001"], "Missing option '--approved-by'"),
        (["case", "reopen", "ME-2026-00001", "--approved-by", "Jo"], "nothing to reopen"),
        (["case", "note", "ME-2026-00999", "hello"], "no case ME-2026-00999"),
        (["case", "assign", "ME-2026-00001", "Parks"], "no delivery unit or officer 'Parks'"),
        (["case", "reroute", "ME-2026-00002", "Highways"], "never assigned"),
        (["case", "reclassify", "ME-2026-00001", "x", "--approved-by", "Jo"], "unknown kind"),
        (["case", "add-stakeholder", "ME-2026-00001", MAILBOX], "our own mailbox"),
    ],
)
def test_bad_requests_are_refused_clearly_with_exit_code_2(cli, args, message):
    before = show(cli)
    result = cli(*args, code=2)
    assert message in result.stderr or message in result.stdout
    assert show(cli) == before


def test_reclassify_and_reopen_record_their_approver(cli):
    out = cli("case", "reclassify", "ME-2026-00001", "service_request", "--approved-by", "Jo")
    assert "now service_request (approved by Jo)" in out.stdout
    cli("case", "close", "ME-2026-00001", "--reason", "answered by phone")
    assert show(cli)["status"] == "closed"
    cli("case", "reopen", "ME-2026-00001", "--approved-by", "Jo", "--reason", "not fixed")
    case = show(cli)
    assert (case["status"], case["closed_at"]) == ("awaiting_response", None)
    kinds = [(e["kind"], e["detail"].get("approved_by")) for e in case["events"][-3:]]
    assert kinds == [("reclassified", "Jo"), ("closed", None), ("reopened", "Jo")]


def test_note_and_add_stakeholder(cli):
    cli("case", "note", "ME-2026-00001", "Rang the resident")
    out = cli("case", "add-stakeholder", "ME-2026-00001", "Jo@Res.example", "--name", "Jo")
    assert "jo@res.example added to ME-2026-00001 as a stakeholder" in out.stdout
    case = show(cli)
    assert case["stakeholders"] == ["jo@res.example"]
    assert [e["kind"] for e in case["events"][-2:]] == ["internal-note", "stakeholder-added"]
