"""`mailbridge outbox`: what the team sees of automatic emails, and what it can do about them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from mailbridge.cli import app
from mailbridge.outbound.outbox import enqueue
from mailbridge.store.db import make_engine, session
from mailbridge.store.models import Event, Outbox
from tests.conftest import settings_env
from tests.outgoing import OWN, add_case, outgoing

PATEL = "asha.patel@council.example"
OKAFOR = "ben.okafor@council.example"
JSON_KEYS = {
    "reference",
    "kind",
    "to",
    "cc",
    "subject",
    "status",
    "attempts",
    "message_id",
    "dedupe_key",
    "last_error",
}


@pytest.fixture
def cli(db_url, smtp_sink, tmp_path, monkeypatch):
    """`mailbridge` against a database holding case ME-2026-00001 and its acknowledgement."""
    for var in ("MAILBRIDGE_CONFIG", "MAILBRIDGE_SOURCE", "MAILBRIDGE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    with session(engine) as s:
        case = add_case(s, "ME-2026-00001", now)
        enqueue(
            s,
            kind="ack",
            dedupe_key="ack:ME-2026-00001",
            message=outgoing([PATEL], cc=[OKAFOR], message_id="<ack-1@council.example>"),
            now=now,
            case_id=case.id,
            own_addresses=OWN,
        )
        s.commit()
    engine.dispose()
    (tmp_path / "inbox").mkdir()
    env = settings_env(
        db_url, f"maildir:{tmp_path / 'inbox'}", MAILBRIDGE_OUTBOX=smtp_sink.url, COLUMNS="200"
    )

    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result

    run.db_url = db_url
    return run


def _list(cli, *args: str) -> list[dict]:
    return json.loads(cli("outbox", "list", *args, "--format", "json").stdout)


def _events(db_url: str) -> list[Event]:
    engine = make_engine(db_url)
    with session(engine) as s:
        events = list(s.exec(select(Event).order_by(Event.id)))
    engine.dispose()
    return events


def test_outbox_list_gives_every_column_scripts_need(cli):
    [row] = _list(cli)
    assert set(row) >= JSON_KEYS
    assert (
        row.items()
        >= {
            "reference": "ME-2026-00001",
            "kind": "ack",
            "to": [PATEL],
            "cc": [OKAFOR],
            "status": "pending",
            "attempts": 0,
            "message_id": "<ack-1@council.example>",
            "dedupe_key": "ack:ME-2026-00001",
            "last_error": None,
        }.items()
    )
    assert "ME-2026-00001" in cli("outbox", "list").stdout


def test_outbox_flush_sends_what_is_due_and_says_so(cli, smtp_sink):
    out = cli("outbox", "flush").stdout
    assert out.startswith("sent 1, retrying 0, failed 0")
    assert [m.message_id for m in smtp_sink.messages] == ["<ack-1@council.example>"]
    assert [r["status"] for r in _list(cli, "--status", "sent")] == ["sent"]
    assert "sent 0" in cli("outbox", "flush").stdout  # nothing twice


def test_a_5xx_shows_as_failed_in_the_list_and_on_the_case_timeline(cli, smtp_sink):
    smtp_sink.replies[PATEL] = "550 5.1.1 no such user"
    smtp_sink.replies[OKAFOR] = "550 5.1.1 no such user"

    assert "failed 1" in cli("outbox", "flush", code=1).stdout

    [row] = _list(cli, "--status", "failed")
    assert row["attempts"] == 1
    assert "550 5.1.1 no such user" in row["last_error"]
    case = json.loads(cli("case", "show", "ME-2026-00001", "--format", "json").stdout)
    assert "email-failed" in [e["kind"] for e in case["events"]]


def test_outbox_retry_sends_a_failed_email_again(cli, smtp_sink):
    smtp_sink.replies[PATEL] = smtp_sink.replies[OKAFOR] = "550 5.7.1 relaying denied"
    cli("outbox", "flush", code=1)
    smtp_sink.replies.clear()  # the relay is fixed

    out = cli("outbox", "retry", "ack:ME-2026-00001").stdout
    assert "queued to be sent again" in out
    assert [(r["status"], r["attempts"]) for r in _list(cli)] == [("pending", 0)]
    cli("outbox", "flush")
    assert [r["status"] for r in _list(cli)] == ["sent"]
    assert len(smtp_sink.messages) == 1
    assert [e.kind for e in _events(cli.db_url)][-1] == "email-retry"


def test_outbox_cancel_stops_an_email_for_good_and_the_case_says_who(cli, smtp_sink):
    [row] = _list(cli)

    assert "cancelled" in cli("outbox", "cancel", str(row["id"])).stdout
    cli("outbox", "flush")

    assert smtp_sink.messages == []
    assert [r["status"] for r in _list(cli)] == ["cancelled"]
    last = _events(cli.db_url)[-1]
    assert last.kind == "email-cancelled" and last.actor.startswith("cli:")


def test_a_sent_email_cannot_be_cancelled_and_an_unknown_one_is_named(cli):
    cli("outbox", "flush")
    assert "is sent" in cli("outbox", "cancel", "ack:ME-2026-00001", code=2).stderr
    assert "no outbox email ack:nope" in cli("outbox", "retry", "ack:nope", code=2).stderr
    assert "unknown status" in cli("outbox", "list", "--status", "lost", code=2).stderr


def test_held_emails_are_listed_for_the_team(cli, db_url):
    engine = make_engine(db_url)
    with session(engine) as s:
        now = datetime.now(UTC)
        for n in range(11):
            enqueue(s, kind="chaser", dedupe_key=f"chaser:{n}", message=outgoing([OKAFOR]), now=now)
        s.commit()
    cli("outbox", "flush")
    with session(engine) as s:
        statuses = [r.status for r in s.exec(select(Outbox).order_by(Outbox.id))]
    engine.dispose()

    held = _list(cli, "--status", "held")
    assert statuses.count("sent") == 10  # the ack and 9 chasers reached the 10 for Ben
    assert [r["last_error"] for r in held] == [f"rate limit: 10 per hour to {OKAFOR}"] * 2
