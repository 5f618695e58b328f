"""`mailbridge schedule preview` and `mailbridge sweep`: the week ahead, and one sweep by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from mailbridge.cli import app
from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from mailbridge.store.db import session
from mailbridge.store.models import Outbox
from tests.conftest import MAILBOX, deliver, make_settings, settings_env
from tests.mail import make_email

PATEL, SINGH, EVANS = (
    "asha.patel@council.example",
    "dev.singh@council.example",
    "gwen.evans@council.example",
)
THURSDAY_17_DEC = datetime(2026, 12, 17, 10, 0, tzinfo=UTC)


@pytest.fixture
def cli(maildir, db_url, monkeypatch):
    """An enquiry received on Thursday 17 December 2026, and `mailbridge` against its store."""
    for var in ("MAILBRIDGE_CONFIG", "MAILBRIDGE_SOURCE", "MAILBRIDGE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    deliver(maildir, "1", make_email(PATEL, [MAILBOX], "Fly-tipping"), THURSDAY_17_DEC)
    deps = build_deps(make_settings(db_url, f"maildir://{maildir}"), FrozenClock(THURSDAY_17_DEC))
    build_runner(deps).drain()
    env = settings_env(db_url, f"maildir://{maildir}", COLUMNS="200")

    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result

    run.outbox = lambda: _outbox(deps.engine)
    yield run
    deps.engine.dispose()


def _outbox(engine) -> int:
    with session(engine) as s:
        return s.exec(select(func.count()).select_from(Outbox)).scalar()


def preview(cli, *args: str) -> list[dict]:
    return json.loads(cli("schedule", "preview", *args, "--format", "json").stdout)


def test_the_preview_lists_what_the_clock_will_send_and_when(cli):
    rows = preview(cli, "--from", "2026-12-21", "--days", "15")  # to 5 January, midnight
    assert [(r["at"], r["kind"], r["to"]) for r in rows] == [
        ("2026-12-22T17:00+00:00", "chaser", [SINGH]),
        ("2026-12-24T17:00+00:00", "escalation", [EVANS, SINGH]),
        ("2026-12-30T17:00+00:00", "escalation", [EVANS, SINGH]),
        ("2027-01-04T17:00+00:00", "escalation", [EVANS, SINGH]),
    ]
    assert rows[1]["key"] == "escalation:ME-2026-00001:1"
    assert all(r["reference"] == "ME-2026-00001" for r in rows)


def test_the_preview_only_reads(cli):
    before = cli.outbox()
    table = cli("schedule", "preview", "--from", "2026-12-21T09:00", "--days", "3").stdout
    assert "chaser" in table and "ME-2026-00001" in table and "3 days from" in table
    assert cli.outbox() == before


def test_a_sweep_by_hand_queues_what_is_due_and_the_preview_then_leaves_it_out(cli):
    out = cli("sweep", "--now", "2026-12-22T17:05").stdout
    assert "queued chaser 1" in out and "failed 0" in out
    assert "queued nothing" in cli("sweep", "--now", "2026-12-22T17:05").stdout  # once only
    rows = preview(cli, "--from", "2026-12-22T17:10", "--days", "3")
    assert [r["kind"] for r in rows] == ["escalation"]


def test_an_action_already_due_goes_at_the_next_sweep(cli):
    [first, *_] = preview(cli, "--from", "2026-12-23T09:00+00:00", "--days", "1")
    assert (first["kind"], first["at"], first["due"]) == (
        "chaser",
        "2026-12-23T09:00+00:00",
        "2026-12-22T17:00+00:00",
    )


@pytest.mark.parametrize("command", [["sweep", "--now"], ["schedule", "preview", "--from"]])
def test_a_time_that_is_not_iso_is_refused(cli, command):
    result = cli(*command, "next tuesday", code=2)
    assert "not an ISO date or time" in result.stderr
