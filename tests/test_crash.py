"""SIGKILL at random moments while ingesting from IMAP: nothing lost, nothing recorded twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from sqlmodel import func, select

from mailbridge.store.db import make_engine, session
from mailbridge.store.models import Case, Message
from tests.conftest import MAILBOX, settings_env
from tests.mail import make_email

pytestmark = [pytest.mark.imap, pytest.mark.slow]
MEMBERS = ["asha.patel@council.example", "ben.okafor@council.example", "carol.moss@council.example"]


def _mail(n: int) -> tuple[bytes, str]:
    """Message n: mostly new enquiries, some replies to earlier ones, some re-deliveries."""
    if n % 10 == 7:  # a reply threaded under enquiry n-7
        return make_email(
            MEMBERS[n % 3],
            [MAILBOX],
            f"Re: enquiry {n - 7}",
            message_id=f"<m{n}@test.example>",
            in_reply_to=f"<m{n - 7}@test.example>",
        ), "reply"
    if n % 10 == 9:  # the same message as n-1 delivered again (same Message-ID, other bytes)
        return make_email(
            MEMBERS[n % 3],
            [MAILBOX],
            f"enquiry {n - 1} (copy)",
            message_id=f"<m{n - 1}@test.example>",
        ), "duplicate"
    sender = MEMBERS[n % 3] if n % 5 else "resident@elsewhere.example"
    return make_email(
        sender, [MAILBOX], f"enquiry {n} about bins", message_id=f"<m{n}@test.example>"
    ), "enquiry"


def test_killing_the_ingester_at_random_moments_loses_nothing_and_duplicates_nothing(
    imap_account, db_url
):
    total = 300
    kinds = []
    for n in range(total):
        raw, kind = _mail(n)
        imap_account.append(raw)
        kinds.append(kind)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")}
    env |= settings_env(db_url, imap_account.url)
    command = [sys.executable, "-m", "mailbridge", "ingest", "--once", "--log-level", "ERROR"]
    rng = random.Random(2026)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 1.5))  # start-up (imports, migration) takes about 0.5 s
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert kills >= 3, "the ingester finished before it could be killed often enough"

    engine = make_engine(db_url)
    with session(engine) as s:
        stored = s.exec(select(Message.message_id, Message.status)).all()
        references = s.exec(select(Case.reference)).all()
        case_count = s.exec(select(func.count()).select_from(Case)).one()
    engine.dispose()
    expected_ids = {f"<m{n}@test.example>" for n, k in enumerate(kinds) if k != "duplicate"}
    assert sorted(m for m, _ in stored) == sorted(expected_ids)  # each exactly once
    assert {status for _, status in stored} == {"processed"}
    assert case_count == kinds.count("enquiry") == len(set(references))
    assert imap_account.uids("INBOX") == []
    assert len(imap_account.uids("Processed")) == total  # moved, never deleted
