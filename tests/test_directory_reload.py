"""The directory in use by a running daemon. SIGHUP re-reads the file, loads it into the
database and routes the next enquiry by it; a broken file changes nothing; the cases of someone
who left are passed on. What mail teaches (a bounce) counts from the very next message."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from mailbridge.clock import FrozenClock
from mailbridge.config import ConfigError, load_settings
from mailbridge.daemon import build_deps, build_runner, reload_directory
from mailbridge.store.db import session
from mailbridge.store.models import Case, Event, OfficerRecord, Outbox
from tests.conftest import MAILBOX, TEST_DIRECTORY, deliver, settings_env, wait_for
from tests.mail import make_email

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PATEL = "asha.patel@council.example"
COUNCIL = TEST_DIRECTORY.read_text(encoding="utf-8")
# The same council, with litter moved from Street Scene to Highways.
LITTER_TO_HIGHWAYS = COUNCIL.replace('"litter", ', "").replace(
    'keywords = ["pothole"', 'keywords = ["litter", "pothole"'
)
_serial = itertools.count()


class Daemon:
    """The daemon's wiring over a Maildir and a directory file the test can rewrite."""

    def __init__(self, tmp_path: Path, maildir: Path, db_url: str):
        self.file, self.maildir = tmp_path / "directory.toml", maildir
        self.file.write_text(COUNCIL, encoding="utf-8")
        env = settings_env(db_url, f"maildir://{maildir}", MAILBRIDGE_DIRECTORY=str(self.file))
        self.deps = build_deps(load_settings(None, env), FrozenClock(NOW))
        self.runner = build_runner(self.deps)

    def receive(self, subject: str) -> Case:
        self.deliver(make_email(PATEL, [MAILBOX], subject, "Please look."))
        self.runner.drain()
        return self.cases()[-1]

    def deliver(self, raw: bytes) -> None:
        deliver(self.maildir, f"{next(_serial):06d}.test", raw, NOW)

    def cases(self) -> list[Case]:
        with session(self.deps.engine) as s:
            return list(s.exec(select(Case).order_by(Case.id)))

    def reload(self, text: str) -> bool:
        self.file.write_text(text, encoding="utf-8")
        return reload_directory(self.deps, self.runner)


@pytest.fixture
def daemon(tmp_path, maildir, db_url):
    d = Daemon(tmp_path, maildir, db_url)
    yield d
    d.runner.close()
    d.deps.engine.dispose()


def test_the_daemon_refuses_to_start_on_errors_only(tmp_path, maildir, db_url, caplog):
    broken = tmp_path / "broken.toml"
    broken.write_text(COUNCIL.replace('deputy = "o-lee"', 'deputy = "o-gone"'), encoding="utf-8")
    env = settings_env(db_url, f"maildir://{maildir}", MAILBRIDGE_DIRECTORY=str(broken))

    with pytest.raises(ConfigError) as refused:
        build_deps(load_settings(None, env), FrozenClock(NOW))

    assert [p.key for p in refused.value.problems] == ["officers[o-singh].deputy"]
    env["MAILBRIDGE_DIRECTORY"] = str(TEST_DIRECTORY)  # two escalation lists never reviewed
    with caplog.at_level(logging.WARNING, logger="mailbridge.daemon"):
        deps = build_deps(load_settings(None, env), FrozenClock(NOW))
    deps.engine.dispose()
    assert "delivery_units[Highways].escalation_reviewed: warning" in caplog.text


def test_a_reloaded_directory_routes_the_next_enquiry_by_the_new_file(daemon):
    first = daemon.receive("Litter on the green")
    assert (first.delivery_unit, first.officer) == ("Street Scene", "o-singh")

    assert daemon.reload(LITTER_TO_HIGHWAYS) is True
    second = daemon.receive("Litter on the green")

    assert (second.delivery_unit, second.officer) == ("Highways", "o-walsh")
    assert daemon.cases()[0].delivery_unit == "Street Scene"  # an open case stays where it is


def test_a_broken_file_on_reload_keeps_the_directory_in_use_and_logs_every_problem(daemon, caplog):
    broken = LITTER_TO_HIGHWAYS.replace(
        'manager = "o-evans"\ndeputy = "o-lee"', 'manager = "o-nobody"\ndeputy = "o-gone"'
    )

    with caplog.at_level(logging.ERROR, logger="mailbridge.daemon"):
        assert daemon.reload(broken) is False

    logged = caplog.text
    assert "officers[o-singh].manager: error: unknown officer 'o-nobody'" in logged
    assert "officers[o-singh].deputy: error: unknown officer 'o-gone'" in logged
    assert "directory not reloaded" in logged
    assert daemon.receive("Litter on the green").officer == "o-singh"


def test_a_reload_keeps_what_mail_taught_and_routes_round_it(daemon):
    with session(daemon.deps.engine) as s:
        s.get(OfficerRecord, "o-singh").reported_absent_until = NOW.date()
        s.commit()

    assert daemon.reload(COUNCIL.replace('name = "Dev Singh"', 'name = "Dev Singh-Patel"'))
    case = daemon.receive("Litter on the green")

    assert case.officer == "o-lee"
    with session(daemon.deps.engine) as s:
        singh = s.get(OfficerRecord, "o-singh")
        assert (singh.name, singh.reported_absent_until) == ("Dev Singh-Patel", NOW.date())


def test_the_cases_of_someone_who_left_are_passed_on_when_the_file_says_so(daemon):
    held = daemon.receive("Litter on the green")
    assert held.officer == "o-singh"

    left = COUNCIL.replace('deputy = "o-lee"', 'deputy = "o-lee"\nactive = false').replace(
        'leads = ["o-singh"]', 'leads = ["o-lee"]'
    )
    assert daemon.reload(left) is True

    case = daemon.cases()[0]
    assert (case.officer, case.status) == ("o-lee", "awaiting_response")
    with session(daemon.deps.engine) as s:
        rules = s.exec(select(Event.rule).where(Event.kind == "reassigned")).all()
        forwards = s.exec(select(Outbox.to).where(Outbox.kind == "forward")).all()
    assert rules == ["left; deputy-of:o-singh"]
    assert ["mia.lee@council.example"] in forwards
    assert daemon.reload(left) is True  # nothing left to pass on: nothing happens twice
    assert len(daemon.cases()) == 1


def test_a_bounce_counts_from_the_next_message_in_the_same_batch(daemon):
    daemon.receive("Litter on the green")
    with session(daemon.deps.engine) as s:
        forward = s.exec(select(Outbox).where(Outbox.kind == "forward")).one()
    dsn = (
        f"From: MAILER-DAEMON@mx.example\r\nTo: {MAILBOX}\r\nSubject: Undeliverable\r\n"
        "Message-ID: <dsn-2@mx.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; dev.singh@council.example\r\nAction: failed\r\n"
        "Status: 5.1.1\r\n\r\n--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {forward.message_id}\r\n\r\n--R--\r\n"
    ).encode()

    daemon.deliver(dsn)
    daemon.deliver(make_email(PATEL, [MAILBOX], "More litter", "Still there."))
    stats = daemon.runner.drain()

    assert stats.processed == 2
    passed_on, new = daemon.cases()
    assert (passed_on.officer, new.officer) == ("o-lee", "o-lee")


def test_an_enquiry_written_to_an_absent_officer_goes_to_their_deputy_with_the_email(daemon):
    assert daemon.reload(
        COUNCIL.replace('deputy = "o-lee"', 'deputy = "o-lee"\nabsent_until = 2026-12-01')
    )
    daemon.deliver(
        make_email(PATEL, ["dev.singh@council.example"], "Bins missed", "Again.", cc=[MAILBOX])
    )
    daemon.runner.drain()

    [case] = daemon.cases()
    assert (case.origin, case.officer) == ("cc", "o-lee")
    with session(daemon.deps.engine) as s:
        rule = s.exec(select(Event.rule).where(Event.kind == "assigned")).one()
        forwards = s.exec(select(Outbox.to).where(Outbox.kind == "forward")).all()
    assert rule == "cc-officer; deputy-of:o-singh"
    assert forwards == [["mia.lee@council.example"]]  # Dev Singh had it; Mia Lee did not


def test_an_out_of_office_without_a_date_counts_for_one_working_day(daemon):
    held = daemon.receive("Litter on the green")

    daemon.deliver(
        make_email(
            "dev.singh@council.example",
            [MAILBOX],
            f"Out of Office: [{held.reference}] Litter on the green",
            "I am out of the office with limited access to email.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    daemon.runner.drain()

    assert daemon.cases()[0].officer == "o-lee"
    with session(daemon.deps.engine) as s:
        away = s.get(OfficerRecord, "o-singh").reported_absent_until
    assert away == date(2026, 11, 24)  # Monday's auto-reply: away through Tuesday


@pytest.mark.slow
def test_sighup_to_a_running_daemon_reloads_the_directory(tmp_path, db_url):
    """The real thing: `mailbridge run` in a subprocess, the file changed, SIGHUP."""
    inbox = tmp_path / "inbox"
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True)
    directory = tmp_path / "directory.toml"
    directory.write_text(COUNCIL, encoding="utf-8")
    config = tmp_path / "mailbridge.toml"
    config.write_text("[source]\npoll_seconds = 1\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")}
    env |= settings_env(db_url, f"maildir://{inbox}", MAILBRIDGE_DIRECTORY=str(directory))
    env |= {"MAILBRIDGE_CONFIG": str(config), "MAILBRIDGE_OUTBOX": f"file:{tmp_path / 'out'}"}
    log = tmp_path / "daemon.log"

    def case_list() -> list[dict]:
        listed = subprocess.run(
            [sys.executable, "-m", "mailbridge", "case", "list", "--format", "json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(listed.stdout)

    with log.open("w") as err:
        daemon = subprocess.Popen([sys.executable, "-m", "mailbridge", "run"], env=env, stderr=err)
    try:
        wait_for(lambda: "mailbridge started" in log.read_text(), 30, log.read_text)
        (inbox / "new" / "1.eml").write_bytes(make_email(PATEL, [MAILBOX], "Litter", "Here."))
        wait_for(lambda: len(case_list()) == 1, 30, log.read_text)
        directory.write_text(LITTER_TO_HIGHWAYS, encoding="utf-8")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "directory reloaded" in log.read_text(), 30, log.read_text)
        (inbox / "new" / "2.eml").write_bytes(make_email(PATEL, [MAILBOX], "Litter", "Again."))
        wait_for(lambda: len(case_list()) == 2, 30, log.read_text)
        first, second = case_list()
        assert (first["delivery_unit"], second["delivery_unit"]) == ("Street Scene", "Highways")
        assert (first["officer"], second["officer"]) == ("o-singh", "o-walsh")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
