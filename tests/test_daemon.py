"""The daemon as ops run it: embedded defaults on a fresh machine, clean exit on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MAILBOX, wait_for
from tests.mail import make_email

pytestmark = pytest.mark.slow


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")}
    return env | extra


def test_with_no_settings_the_daemon_runs_on_sqlite_and_a_maildir_in_var_and_stops_on_sigterm(
    tmp_path: Path,
):
    env = _clean_env(MAILBRIDGE_ADDRESS=MAILBOX)
    new = tmp_path / "var" / "inbox" / "new"
    new.mkdir(parents=True)
    (new / "1.eml").write_bytes(make_email("someone@resident.example", [MAILBOX], "Bins"))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "mailbridge", "run"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any((tmp_path / "var" / "inbox" / "cur").glob("1.eml*")))
        listed = subprocess.run(
            [sys.executable, "-m", "mailbridge", "case", "list", "--format", "json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        [case] = json.loads(listed.stdout)
        assert (case["status"], case["origin"]) == ("triage", "direct")
        assert (tmp_path / "var" / "mailbridge.db").exists()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    log = daemon.stderr.read()
    assert "SIGTERM received" in log and "mailbridge stopped" in log
