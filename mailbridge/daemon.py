"""The composition root: the one place that builds the adapters from settings and wires them."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from mailbridge.clock import Clock, SystemClock
from mailbridge.config import ConfigError, Settings
from mailbridge.directory import Directory, load_directory
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.ingest.runner import DrainStats, Runner
from mailbridge.ingest.sources.base import Source
from mailbridge.ingest.sources.maildir import MaildirSource
from mailbridge.outbound.senders import Delivery, FileSender, SmtpSender
from mailbridge.outbound.sending import FlushStats, flush_outbox, run_sender
from mailbridge.store.cursors import DbCursorStore
from mailbridge.store.db import make_engine, upgrade

log = logging.getLogger(__name__)


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    clock: Clock
    directory: Directory


def build_deps(settings: Settings, clock: Clock | None = None) -> Deps:
    """Upgrade the schema and load the directory; refuses to start on a broken directory."""
    upgrade(settings.database_url)
    directory, problems = load_directory(settings.directory_file)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError(errors)
    return Deps(settings, make_engine(settings.database_url), clock or SystemClock(), directory)


def build_source(deps: Deps) -> Source:
    src = deps.settings.source
    if src.endpoint.scheme == "maildir":
        return MaildirSource(
            src.endpoint.path,
            batch_size=src.batch_size,
            batch_bytes=src.batch_bytes,
            poll_seconds=src.poll_seconds,
        )
    from mailbridge.ingest.sources.imap import ImapSource  # imapclient only when IMAP is used

    return ImapSource(src, DbCursorStore(deps.engine, deps.clock))


def build_runner(
    deps: Deps, stop: threading.Event | None = None, committed: threading.Event | None = None
) -> Runner:
    ctx = PipelineContext.from_settings(deps.settings, deps.directory)
    return Runner(deps.engine, build_source(deps), ctx, deps.clock, stop, committed)


def build_delivery(deps: Deps) -> Delivery:
    """The file outbox, or SMTP(S) with the [outbox] policy's TLS and time-out."""
    endpoint, policy = deps.settings.outbox, deps.settings.outbox_policy
    if endpoint.scheme == "file":
        return FileSender(endpoint.path)
    return SmtpSender(endpoint, timeout=policy.timeout_seconds, starttls=policy.starttls != "never")


def flush_once(deps: Deps) -> FlushStats:
    """Send everything due in the outbox and return: for cron and tests."""
    stop = _stop_on_signals()
    policy = deps.settings.outbox_policy
    return asyncio.run(
        flush_outbox(deps.engine, build_delivery(deps), deps.clock, policy, stop=stop)
    )


def start_sender(
    deps: Deps, stop: threading.Event, wake: threading.Event | None = None
) -> threading.Thread:
    """The outbox sender beside the ingest loop, in its own thread with its own event loop."""
    policy = deps.settings.outbox_policy
    thread = threading.Thread(
        target=run_sender,
        args=(
            deps.engine,
            build_delivery(deps),
            deps.clock,
            policy,
            stop,
            policy.flush_seconds,
            wake,
        ),
        name="outbox-sender",
    )
    thread.start()
    return thread


def ingest_once(deps: Deps) -> DrainStats:
    """Replay what a crash left, drain the source, and return: for cron and benchmarks."""
    stop = _stop_on_signals()
    runner = build_runner(deps, stop)
    try:
        return runner.drain(runner.replay_pending())
    finally:
        runner.close()


def run(deps: Deps) -> None:
    """The daemon: runs until SIGTERM/SIGINT, finishing the message in hand before it exits."""
    stop = _stop_on_signals()
    doorbell = threading.Event()  # ingest rings it after each commit; the sender flushes at once
    runner = build_runner(deps, stop, doorbell)
    log.info(
        "mailbridge started: source %s, outbox %s, database %s, mailbox %s",
        deps.settings.source.endpoint.redacted(),
        deps.settings.outbox.redacted(),
        deps.engine.url.render_as_string(),
        deps.settings.mailbox_address,
    )
    sender = start_sender(deps, stop, doorbell)
    try:
        runner.run_forever()
    finally:
        stop.set()  # also when ingest died: the sender finishes the email in hand and stops
        sender.join()
        runner.close()
        deps.engine.dispose()
    log.info("mailbridge stopped")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, _frame) -> None:
        log.info("%s received: finishing the message in hand", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _handler)
    return stop
