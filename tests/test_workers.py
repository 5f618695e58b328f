"""Parsing in worker processes gives exactly what parsing in the daemon gives, and loses nothing
when a worker dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from mailbridge.clock import FrozenClock
from mailbridge.config import load_settings
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest.parse import ParseFailed, parse
from mailbridge.ingest.parse_ahead import MIN_BATCH, ParseAhead
from mailbridge.store.db import session
from mailbridge.store.models import Case, Event, Message, Outbox
from tests.conftest import MAILBOX, deliver, settings_env
from tests.corpus import corpus_messages
from tests.mail import make_email

pytestmark = pytest.mark.slow  # starts worker processes
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
JUNK = b"\x00\x01 this is not an email at all \xff\xfe"


def corpus_raws(count: int) -> list[bytes]:
    return [item.path.read_bytes() for item in corpus_messages()[:count]]


def outcomes(prepared) -> list[object]:
    out = []
    for item in prepared:
        try:
            out.append(item.parsed())
        except ParseFailed as exc:
            out.append(("failed", str(exc)))
    return out


def parsed_here(raws: list[bytes]) -> list[object]:
    return outcomes(ParseAhead(0).start(raws))


def test_a_worker_parses_each_message_as_the_daemon_would_including_failures() -> None:
    raws = [*corpus_raws(40), JUNK]
    ahead = ParseAhead(1)
    try:
        assert outcomes(ahead.start(raws)) == parsed_here(raws)
        assert ahead._pool is not None  # the batch really went to a worker
    finally:
        ahead.close()
    assert parsed_here([JUNK]) == [("failed", "no recognisable header")]


def test_a_small_batch_is_parsed_in_the_daemon_without_starting_a_worker() -> None:
    ahead = ParseAhead(1)
    prepared = ahead.start(corpus_raws(MIN_BATCH - 1))
    assert [p.parsed() for p in prepared] == [parse(raw) for raw in corpus_raws(MIN_BATCH - 1)]
    assert ahead._pool is None


def test_a_killed_worker_costs_nothing_and_the_next_batch_gets_a_new_one() -> None:
    raws = corpus_raws(60)
    ahead = ParseAhead(1)
    try:
        ahead.start(raws[:MIN_BATCH])[0].parsed()  # the worker is up
        prepared = ahead.start(raws)
        for pid in list(ahead._pool._processes):
            os.kill(pid, signal.SIGKILL)
        assert outcomes(prepared) == parsed_here(raws)
        assert ahead._pool is None  # dropped; parsed here for the rest of the batch
        again = ahead.start(raws[:MIN_BATCH])
        assert outcomes(again) == parsed_here(raws[:MIN_BATCH])
        assert ahead._pool is not None
    finally:
        ahead.close()


def ingest(db_url: str, maildir: Path, workers: str) -> dict[str, object]:
    env = settings_env(db_url, f"maildir://{maildir}")
    config = maildir.parent / f"workers-{workers}.toml"
    config.write_text(f"[source]\nparse_workers = {workers}\n", encoding="utf-8")
    settings = load_settings(config, env)
    assert settings.source.parse_workers == int(workers)
    deps = build_deps(settings, FrozenClock(NOW))
    with build_runner(deps) as runner:
        stats = runner.drain()
    with session(deps.engine) as s:
        return {
            "stats": stats,
            "cases": sorted(
                (c.reference, c.status, c.member, c.delivery_unit, c.officer, c.subject)
                for c in s.exec(select(Case))
            ),
            "events": sorted((e.kind, e.rule or "") for e in s.exec(select(Event))),
            "outbox": sorted((o.kind, o.subject, tuple(o.to)) for o in s.exec(select(Outbox))),
            "messages": sorted(
                (m.classification, m.parse_ok, m.subject) for m in s.exec(select(Message))
            ),
        }


def test_enquiries_parsed_by_a_worker_become_the_same_cases(tmp_path: Path) -> None:
    results = []
    for workers in ("0", "1"):
        maildir = tmp_path / f"inbox-{workers}"
        for sub in ("new", "cur", "tmp"):
            (maildir / sub).mkdir(parents=True)
        for i in range(30):
            raw = make_email(
                "Cllr Asha Patel <asha.patel@council.example>",
                [MAILBOX],
                subject=f"Overflowing bins on Mill Lane, street {i}",
                body=f"Residents at number {i} report the bins were missed again.",
                message_id=f"<bins-{i}@members.example>",
            )
            deliver(maildir, f"{i:04d}.test", raw, NOW)
        deliver(maildir, "9999.test", JUNK, NOW)
        results.append(ingest(f"sqlite:///{tmp_path / f'db-{workers}.sqlite'}", maildir, workers))
    assert results[0] == results[1]
    assert results[1]["stats"].processed == 31


ORPHAN = """
import sys, time
from mailbridge.ingest.parse_ahead import ParseAhead
if __name__ == "__main__":
    ahead = ParseAhead(1)
    raws = [open(p, "rb").read() for p in sys.argv[1:]]
    ahead.start(raws)[0].parsed()
    print(*ahead._pool._processes, flush=True)
    time.sleep(60)
"""


def test_a_worker_whose_daemon_is_killed_outright_exits(tmp_path: Path) -> None:
    script = tmp_path / "daemon.py"
    script.write_text(ORPHAN, encoding="utf-8")
    paths = [str(item.path) for item in corpus_messages()[:MIN_BATCH]]
    daemon = subprocess.Popen([sys.executable, str(script), *paths], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    try:
        workers = [int(pid) for pid in daemon.stdout.readline().split()]
        assert workers
    finally:
        daemon.kill()
        daemon.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
