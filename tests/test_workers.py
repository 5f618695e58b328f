"""Worker processes parse mail and compose emails exactly as the daemon would, and lose nothing
when a worker, a message or a template fails."""

from __future__ import annotations

import email
import email.policy
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from mailbridge import bundled_templates
from mailbridge.clock import FrozenClock
from mailbridge.config import load_settings
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest import pipeline
from mailbridge.ingest.parse import ParseFailed, parse
from mailbridge.ingest.parse_ahead import parse_ahead
from mailbridge.store.db import session
from mailbridge.store.models import Case, Event, Message, Outbox
from mailbridge.workers import MIN_BATCH, WorkerPool
from tests.conftest import MAILBOX, deliver, settings_env, wait_for
from tests.corpus import corpus_messages
from tests.mail import make_email

pytestmark = pytest.mark.slow  # starts worker processes
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
JUNK = b"\x00\x01 this is not an email at all \xff\xfe"


def corpus_raws(count: int) -> list[bytes]:
    return [item.path.read_bytes() for item in corpus_messages()[:count]]


def outcomes(prepared) -> list[object]:
    """Each message's parse and what the rules read of its text, or its failure."""
    out = []
    for item in prepared:
        try:
            reading = item.reading()
        except ParseFailed as exc:
            out.append(("failed", str(exc)))
            continue
        said = reading.wording
        out.append((reading.parsed, reading.routing_words, said, said.places, said.words))
    return out


def parsed_here(raws: list[bytes]) -> list[object]:
    return outcomes(parse_ahead(WorkerPool(0), raws))


def test_a_worker_parses_each_message_as_the_daemon_would_including_failures() -> None:
    raws = [*corpus_raws(40), JUNK]
    pool = WorkerPool(1)
    try:
        assert outcomes(parse_ahead(pool, raws)) == parsed_here(raws)
        assert pool._pool is not None  # the batch really went to a worker
    finally:
        pool.close()
    assert parsed_here([JUNK]) == [("failed", "no recognisable header")]


def test_a_worker_reads_the_text_for_the_rules_so_the_daemon_finds_it_read() -> None:
    pool = WorkerPool(1)
    try:
        reading = parse_ahead(pool, corpus_raws(MIN_BATCH))[0].reading()
    finally:
        pool.close()
    assert {"routing_words", "wording"} <= vars(reading).keys()
    assert {"places", "subject_words", "words"} <= vars(reading.wording).keys()
    here = parse_ahead(WorkerPool(0), corpus_raws(1))[0].reading()
    assert "routing_words" not in vars(here)  # read when first asked for


def test_a_small_batch_is_parsed_in_the_daemon_without_starting_a_worker() -> None:
    pool = WorkerPool(1)
    prepared = parse_ahead(pool, corpus_raws(MIN_BATCH - 1))
    parsed = [p.reading().parsed for p in prepared]
    assert parsed == [parse(raw) for raw in corpus_raws(MIN_BATCH - 1)]
    assert pool._pool is None


def test_a_killed_worker_costs_nothing_and_the_next_batch_gets_a_new_one() -> None:
    raws = corpus_raws(60)
    pool = WorkerPool(1)
    try:
        parse_ahead(pool, raws[:MIN_BATCH])[0].reading()  # the worker is up
        prepared = parse_ahead(pool, raws)
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGKILL)
        assert outcomes(prepared) == parsed_here(raws)
        assert pool._pool is None  # dropped; parsed here for the rest of the batch
        again = parse_ahead(pool, raws[:MIN_BATCH])
        assert outcomes(again) == parsed_here(raws[:MIN_BATCH])
        assert pool._pool is not None
    finally:
        pool.close()


def enquiries(maildir: Path, count: int, subject: str = "Overflowing bins on Mill Lane") -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        raw = make_email(
            "Cllr Asha Patel <asha.patel@council.example>",
            [MAILBOX],
            subject=f"{subject}, street {i}",
            body=f"Residents at number {i} report the bins were missed again. Café £5.",
            message_id=f"<bins-{i}@members.example>",
        )
        deliver(maildir, f"{i:04d}.test", raw, NOW)
    deliver(maildir, "9999.test", JUNK, NOW)


def ingest(db_url: str, maildir: Path, workers: int, templates: Path | None = None):
    env = settings_env(db_url, f"maildir://{maildir}")
    config = maildir.parent / f"workers-{workers}.toml"
    text = f"[source]\nworkers = {workers}\n"
    if templates:
        text += f'[templates]\ndir = "{templates}"\n'
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config, env)
    assert settings.source.workers == workers
    deps = build_deps(settings, FrozenClock(NOW))
    with build_runner(deps) as runner:
        stats = runner.drain()
    return deps, stats


def what_happened(deps) -> dict[str, object]:
    """Everything the batch left, but for what is random by design (Message-IDs, boundaries)."""
    with session(deps.engine) as s:
        outbox = list(s.exec(select(Outbox)))
        return {
            "cases": sorted(
                (c.reference, c.status, c.member, c.delivery_unit, c.officer, c.subject)
                for c in s.exec(select(Case))
            ),
            "events": sorted((e.kind, e.rule or "") for e in s.exec(select(Event))),
            "messages": sorted(
                (m.classification, m.status, m.parse_ok, m.subject) for m in s.exec(select(Message))
            ),
            "outbox": sorted(
                (o.kind, o.subject, tuple(o.to), *email_content(o.raw)) for o in outbox
            ),
        }


def email_content(raw: bytes) -> tuple[str, ...]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    headers = tuple(f"{k}: {message[k]}" for k in ("From", "To", "Subject", "Date", "Reply-To"))
    parts = tuple(
        part.get_content() if part.get_content_maintype() == "text" else part.get_content_type()
        for part in message.walk()
        if not part.is_multipart()
    )
    return (*headers, *parts)


def test_a_batch_handled_with_workers_leaves_what_the_daemon_alone_would(tmp_path: Path) -> None:
    results = []
    for workers in (0, 1):
        maildir = tmp_path / f"inbox-{workers}"
        enquiries(maildir, 30)
        deps, stats = ingest(f"sqlite:///{tmp_path / f'db-{workers}.sqlite'}", maildir, workers)
        assert (stats.processed, stats.failed) == (31, 0)
        results.append(what_happened(deps))
    assert results[0] == results[1]
    assert len(results[1]["outbox"]) == 60  # an acknowledgement and a forward each


def test_a_message_that_fails_in_a_batch_fails_alone_and_takes_its_emails_with_it(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch is first done without savepoints; the failure makes it be done again, each
    message in its own savepoint, with nothing of the first attempt left behind."""
    caplog.set_level(logging.INFO, logger="mailbridge.ingest.runner")
    real = pipeline.flag_possible_duplicates

    def failing_after_its_emails(session, mailer, case, said, *args):
        if said.subject.endswith("street 7"):
            raise RuntimeError("disk on fire")
        return real(session, mailer, case, said, *args)

    monkeypatch.setattr(pipeline, "flag_possible_duplicates", failing_after_its_emails)
    enquiries(tmp_path / "inbox", 30)
    deps, stats = ingest(db_url, tmp_path / "inbox", 1)
    assert (stats.processed, stats.failed) == (30, 1)
    with session(deps.engine) as s:
        rows = list(s.exec(select(Outbox)))
        failed = s.exec(select(Message).where(Message.status == "failed")).one()
        opened = s.exec(select(Event.case_id).where(Event.kind == "case-opened")).all()
        assert len(opened) == len(set(opened)) == len(s.exec(select(Case)).all()) == 29
    assert failed.dedupe_key == "<bins-7@members.example>"
    assert len(rows) == 58 and not any("street 7 [" in r.subject for r in rows)
    assert all(email_content(r.raw)[2] == f"Subject: {r.subject}" for r in rows)
    assert "processing its batch again, each message on its own" in caplog.text


def test_an_email_no_one_can_compose_fails_only_its_message(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A council template that breaks on one case: the batch is done again composing in the
    daemon, and only that message fails, as it would without workers."""
    templates = tmp_path / "templates"
    templates.mkdir()
    bundled = (bundled_templates() / "mail" / "ack.txt.j2").read_text(encoding="utf-8")
    (templates / "ack.txt.j2").write_text(
        '{% if case.subject.endswith("street 7") %}{{ no_such_value }}{% endif %}' + bundled,
        encoding="utf-8",
    )
    enquiries(tmp_path / "inbox", 30)
    deps, stats = ingest(db_url, tmp_path / "inbox", 1, templates)
    assert (stats.processed, stats.failed) == (30, 1)
    with session(deps.engine) as s:
        rows = list(s.exec(select(Outbox)))
        failed = s.exec(select(Message).where(Message.status == "failed")).one()
    assert failed.dedupe_key == "<bins-7@members.example>" and "no_such_value" in failed.error
    assert "processing the batch again, composing in the daemon" in caplog.text
    assert len(rows) == 58
    assert all(email_content(r.raw)[2] == f"Subject: {r.subject}" for r in rows)


ORPHAN = """
import os, signal, sys, time
from mailbridge.ingest.parse_ahead import parse_ahead
from mailbridge.workers import WorkerPool
if __name__ == "__main__":
    pool = WorkerPool(1)
    raws = [open(p, "rb").read() for p in sys.argv[2:]]
    prepared = parse_ahead(pool, raws)
    if sys.argv[1] == "working":
        prepared[0].reading()
    print(*pool._pool._processes, flush=True)
    if sys.argv[1] == "starting":  # killed before its worker has even started up
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
"""


@pytest.mark.parametrize("moment", ["working", "starting"])
def test_a_worker_whose_daemon_is_killed_outright_exits(tmp_path: Path, moment: str) -> None:
    script = tmp_path / "daemon.py"
    script.write_text(ORPHAN, encoding="utf-8")
    paths = [str(item.path) for item in corpus_messages()[:MIN_BATCH]]
    daemon = subprocess.Popen([sys.executable, str(script), moment, *paths],
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    try:
        workers = [int(pid) for pid in daemon.stdout.readline().split()]
        assert workers
    finally:
        daemon.kill()
        daemon.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), 15)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
