"""The composition root: the one place that builds the adapters from settings and wires them."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from mailbridge.cases.absence import pass_on_from_leavers
from mailbridge.clock import Clock, SystemClock
from mailbridge.config import ConfigError, Settings
from mailbridge.directory import Directory, load_directory
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.ingest.runner import DrainStats, Runner
from mailbridge.ingest.sources.base import Source
from mailbridge.ingest.sources.maildir import MaildirSource
from mailbridge.outbound.notices import Mailer
from mailbridge.outbound.senders import Delivery, FileSender, SmtpSender
from mailbridge.outbound.sending import FlushStats, flush_outbox, run_sender
from mailbridge.schedule.policy import ClockPolicy
from mailbridge.schedule.scheduler import lead, leader_lock
from mailbridge.schedule.sweep import SweepStats, sweep
from mailbridge.store.cursors import DbCursorStore
from mailbridge.store.db import make_engine, session, upgrade
from mailbridge.store.people import learnt, load_people
from mailbridge.workers import WorkerPool

log = logging.getLogger(__name__)


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    clock: Clock
    directory: Directory


def build_deps(settings: Settings, clock: Clock | None = None) -> Deps:
    """Upgrade the schema and load the directory into the database; refuses to start on a
    directory with errors (warnings are logged)."""
    upgrade(settings.database_url)
    clock = clock or SystemClock()
    directory = _read_directory(settings, clock)
    engine = make_engine(settings.database_url)
    with session(engine) as s:
        directory = _store_directory(s, directory, clock)
        s.commit()
    return Deps(settings, engine, clock, directory)


def _read_directory(settings: Settings, clock: Clock) -> Directory:
    """The directory file, its warnings logged; ConfigError listing every error."""
    today = clock.now().astimezone(ZoneInfo(settings.clock.timezone)).date()
    directory, problems = load_directory(settings.directory_file, today)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError(errors)
    for problem in problems:
        log.warning("%s", problem)
    return directory


def _store_directory(s: Session, directory: Directory, clock: Clock) -> Directory:
    """Load the file's people into the database; returns them with what mail taught."""
    loaded = load_people(s, directory, clock.now())
    log.info(
        "directory: %d members, %d delivery units, %d officers (%d kept as historical)",
        loaded.members, loaded.delivery_units, loaded.officers, loaded.gone,
    )  # fmt: skip
    return directory.with_learnt(learnt(s))


def reload_directory(deps: Deps, runner: Runner) -> bool:
    """SIGHUP: read the directory file again; if it has no errors, load it into the database,
    pass on the cases of anyone who has left, and have the runner use it from its next batch.
    A file with errors changes nothing: every problem is logged and the old directory stays.
    """
    try:
        directory = _read_directory(deps.settings, deps.clock)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        log.error("directory not reloaded: the one in use stays until the file is fixed")
        return False
    with session(deps.engine) as s:
        ctx = runner.ctx.with_directory(_store_directory(s, directory, deps.clock))
        moved = pass_on_from_leavers(s, ctx.mailer, deps.clock.now())
        s.commit()
    deps.directory = ctx.directory
    runner.use_context(ctx)
    log.info("directory reloaded from %s; %d cases of leavers passed on",
             deps.settings.directory_file, moved)  # fmt: skip
    return True


def start_reloader(deps: Deps, runner: Runner, stop: threading.Event) -> threading.Thread:
    """SIGHUP reloads the directory. The handler only rings a bell: the reload (a file read
    and a database transaction) runs in its own thread, never inside whatever the main
    thread was doing when the signal came."""
    bell = threading.Event()
    signal.signal(signal.SIGHUP, lambda _signum, _frame: bell.set())

    def _loop() -> None:
        while not stop.is_set():
            if not bell.wait(1.0):
                continue
            bell.clear()
            try:
                reload_directory(deps, runner)
            except Exception:  # the database away, say: the old directory stays in use
                log.exception("directory reload failed; the one in use stays")

    thread = threading.Thread(target=_loop, name="directory-reloader", daemon=True)
    thread.start()
    return thread


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
    pool = WorkerPool(deps.settings.source.workers)
    return Runner(deps.engine, build_source(deps), ctx, deps.clock, stop, committed, pool)


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
    with build_runner(deps, stop) as runner, _long_lived_heap():
        return runner.drain(runner.replay_pending())


def sweep_once(deps: Deps, now: datetime | None = None, mailer: Mailer | None = None) -> SweepStats:
    """One sweep of the clock as of `now` (default: the daemon's clock): what is due, queued."""
    mailer = mailer or PipelineContext.from_settings(deps.settings, deps.directory).mailer
    policy = ClockPolicy.from_settings(deps.settings.clock)
    return sweep(deps.engine, mailer, policy, now or deps.clock.now())


def run(deps: Deps) -> None:
    """The daemon: runs until SIGTERM/SIGINT, finishing the message in hand before it exits."""
    stop = _stop_on_signals()
    doorbell = threading.Event()  # ingest rings it after each commit; the sender flushes at once
    term = threading.Event()  # ends this daemon's term as leader: SIGTERM, or the lock lost
    runner = build_runner(deps, term, doorbell)
    with session(deps.engine) as s:  # anyone who left while we were down
        pass_on_from_leavers(s, runner.ctx.mailer, deps.clock.now())
        s.commit()
    start_reloader(deps, runner, stop)
    log.info(
        "mailbridge started: source %s, outbox %s, database %s, mailbox %s",
        deps.settings.source.endpoint.redacted(),
        deps.settings.outbox.redacted(),
        deps.engine.url.render_as_string(),
        deps.settings.mailbox_address,
    )
    sender = start_sender(deps, stop, doorbell)

    def clock_sweep() -> None:
        if sweep_once(deps, mailer=runner.ctx.mailer).queued:
            doorbell.set()

    clock = deps.settings.clock
    try:  # every daemon sends; only the leader reads the mailbox and runs the clock
        with _long_lived_heap():
            lead(leader_lock(deps.settings.database_url), stop, term, runner.run_forever,
                 clock_sweep, sweep_seconds=clock.sweep_seconds,
                 timezone=clock.timezone)  # fmt: skip
    finally:
        stop.set()  # also when ingest died: the sender finishes the email in hand and stops
        term.set()
        sender.join()
        runner.close()
        deps.engine.dispose()
    log.info("mailbridge stopped")


@contextmanager
def _long_lived_heap() -> Iterator[None]:
    """What is built before the work starts (modules, the directory, compiled statements and
    templates) lives as long as the process: take it out of the cyclic garbage collector's
    full passes, which otherwise scan all of it again and again (about 5% of ingest time).
    Given back after, for a caller that carries on."""
    gc.collect()  # nothing that is already garbage is kept
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, _frame) -> None:
        log.info("%s received: finishing the message in hand", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _handler)
    return stop
