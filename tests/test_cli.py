"""The command line: cases and messages as the team sees them, and help on every command."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from mailbridge.cli import app
from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from tests.conftest import MAILBOX, REPO, deliver, make_settings, settings_env
from tests.mail import make_email

PATEL = "asha.patel@council.example"
LONG_AGO = datetime(2026, 1, 5, 10, tzinfo=UTC)
FAR_FUTURE = datetime(2099, 1, 5, 10, tzinfo=UTC)  # never overdue while this test is run
CASE_KEYS = {
    "reference",
    "status",
    "origin",
    "kind",
    "member",
    "delivery_unit",
    "officer",
    "received_at",
    "due_at",
    "parent_reference",
    "stakeholders",
}


@pytest.fixture
def cli(maildir, db_url, monkeypatch):
    """Two cases in the store, and a function that runs `mailbridge` against it."""
    for var in ("MAILBRIDGE_CONFIG", "MAILBRIDGE_SOURCE", "MAILBRIDGE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    deliver(
        maildir,
        "1",
        make_email(
            PATEL,
            [MAILBOX],
            "Fly-tipping",
            message_id="<one@m.example>",
            cc=["ben.okafor@council.example"],
        ),
        LONG_AGO,
    )
    deliver(maildir, "2", make_email("jo@resident.example", [MAILBOX], "Noise"), FAR_FUTURE)
    stranger = make_email("eve@elsewhere.example", [MAILBOX], "Re: [ME-2026-00001]", "More bags")
    deliver(maildir, "3", stranger, LONG_AGO + timedelta(hours=1))  # held on ME-2026-00001
    deps = build_deps(make_settings(db_url, f"maildir://{maildir}"), FrozenClock(LONG_AGO))
    build_runner(deps).drain()
    deps.engine.dispose()
    env = settings_env(db_url, f"maildir://{maildir}", COLUMNS="200")

    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result

    return run


def test_case_list_lists_every_case_unless_filtered(cli):
    rows = json.loads(cli("case", "list", "--format", "json").stdout)
    assert [r["reference"] for r in rows] == ["ME-2026-00001", "ME-2099-00001"]
    assert set(rows[0]) >= CASE_KEYS
    assert rows[0]["stakeholders"] == ["ben.okafor@council.example"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "triage"], ["ME-2099-00001"]),
        (["--du", "Street Scene"], ["ME-2026-00001"]),
        (["--member", "cllr-patel"], ["ME-2026-00001"]),
        (["--member", PATEL], ["ME-2026-00001"]),
        (["--origin", "cc"], []),
        (["--overdue"], ["ME-2026-00001"]),  # the one received in January
    ],
)
def test_case_list_filters(cli, args, expected):
    rows = json.loads(cli("case", "list", *args, "--format", "json").stdout)
    assert [r["reference"] for r in rows] == expected


def test_case_list_prints_a_table_for_people(cli):
    out = cli("case", "list").stdout
    assert "ME-2026-00001" in out and "Fly-tipping" in out


def test_case_show_gives_the_timeline_and_every_message_with_its_id(cli):
    case = json.loads(cli("case", "show", "ME-2026-00001", "--format", "json").stdout)
    assert set(case) >= CASE_KEYS
    assert [(m["id"], m["held"]) for m in case["messages"]] == [(1, False), (2, True)]
    assert [e["kind"] for e in case["events"]] == [
        "case-opened",
        "assigned",
        "email-queued",
        "email-queued",  # the ack and the forward
        "message-held",  # the stranger's reply
    ]
    assert "Timeline" in cli("case", "show", "me-2026-00001").stdout


def test_case_show_of_an_unknown_reference_says_so(cli):
    assert "no case ME-2098-00001" in cli("case", "show", "ME-2098-00001", code=2).stderr


def test_message_show_raw_writes_the_exact_original_bytes(cli, maildir):
    original = next(p for p in (maildir / "cur").iterdir() if p.name.startswith("1")).read_bytes()
    assert cli("message", "show", "1", "--raw").stdout_bytes == original


def test_message_list_shows_the_team_mail_by_classification(cli):
    rows = json.loads(
        cli("message", "list", "--classification", "non_member", "--format", "json").stdout
    )
    assert [r["from"] for r in rows] == ["jo@resident.example"]


def _commands(typer_app, prefix=()):
    from typer.main import get_command

    group = get_command(typer_app)
    stack = [(prefix, group)]
    while stack:
        path, cmd = stack.pop()
        subs = getattr(cmd, "commands", None)
        if subs:
            stack.extend(((*path, name), sub) for name, sub in subs.items())
        else:
            yield path, cmd


@pytest.mark.unit
def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for path, cmd in _commands(app):
        assert re.search(r"Example: mailbridge ", cmd.help or ""), (
            f"{' '.join(path)} has no example"
        )
        assert f"mailbridge {' '.join(path)}" in readme, f"{' '.join(path)} missing from README"


def test_message_release_vouches_for_a_held_sender_once(cli):
    [held] = json.loads(cli("message", "list", "--held", "--format", "json").stdout)
    out = cli("message", "release", str(held["id"]), "--by", "Sam").stdout
    assert "released on ME-2026-00001" in out
    assert json.loads(cli("message", "list", "--held", "--format", "json").stdout) == []
    assert "not held" in cli("message", "release", str(held["id"]), "--by", "Sam", code=2).stderr
