"""Drives a source through the pipeline: batches in, cases out, acknowledgements upstream.

The runner owns the loop and its failure handling, never the rules: it stores each batch's
raw bytes and processes its messages, each applying whole or not at all, in one transaction,
acknowledges upstream only what is committed, and backs off when the server goes away.
`stop` (set by SIGTERM) is checked between messages, so the message in hand is always finished.
Parsing and composing, which are pure, run in worker processes (mailbridge/workers.py) when
there are any.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from functools import partial

from sqlalchemy import Engine
from sqlmodel import Session, select

from mailbridge.cases.references import holding_references
from mailbridge.cases.service import holding_inserts
from mailbridge.clock import Clock
from mailbridge.ingest.parse_ahead import Prepared, parse_ahead
from mailbridge.ingest.pipeline import (
    PipelineContext,
    Stored,
    mark_failed,
    persist_raw,
    process_message,
)
from mailbridge.ingest.sources.base import Fetched, Source, SourceUnavailable
from mailbridge.outbound.compose_ahead import SESSION_KEY as COMPOSE_AHEAD
from mailbridge.outbound.compose_ahead import ComposeAhead, ComposeFailed
from mailbridge.store.db import session
from mailbridge.store.models import MESSAGE_FAILED, MESSAGE_RECEIVED, Message
from mailbridge.workers import WorkerPool

log = logging.getLogger(__name__)

Work = tuple[Stored, Prepared | None]  # a stored message, its bytes and reading if in hand
MAX_ATTEMPTS = 3  # a message that failed this often waits for `mailbridge message replay`
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0
ACK_AT_LEAST = 500  # committed messages acknowledged to one command, in a backlog


@dataclass
class DrainStats:
    fetched: int = 0
    duplicates: int = 0
    processed: int = 0
    failed: int = 0


class Runner:
    def __init__(
        self,
        engine: Engine,
        source: Source,
        ctx: PipelineContext,
        clock: Clock,
        stop: threading.Event | None = None,
        committed: threading.Event | None = None,
        pool: WorkerPool | None = None,
    ):
        self.engine, self.source, self.ctx, self.clock = engine, source, ctx, clock
        self.pool = pool or WorkerPool(0)
        self.stop = stop or threading.Event()
        self.committed = committed  # set after each commit: the outbox sender's doorbell
        self._next_ctx: PipelineContext | None = None  # a reloaded directory, set by SIGHUP
        self._ctx_lock = threading.Lock()

    def use_context(self, ctx: PipelineContext) -> None:
        """Swap in a new context (a reloaded directory), from any thread: the next batch uses
        it, with what the database then knows of officers' absences and bounces."""
        with self._ctx_lock:
            self._next_ctx = ctx

    def close(self) -> None:
        self.source.close()
        self.pool.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def replay_pending(self, stats: DrainStats | None = None) -> DrainStats:
        """Process stored messages a crash left unprocessed, and failures not yet retried enough."""
        stats = stats or DrainStats()
        with session(self.engine) as s:
            ids = s.exec(
                select(Message.id)
                .where(
                    (Message.status == MESSAGE_RECEIVED)
                    | ((Message.status == MESSAGE_FAILED) & (Message.attempts < MAX_ATTEMPTS))
                )
                .order_by(Message.id)
            ).all()
            s.rollback()
        self.process(lambda _s: [(Stored(message_db_id, True), None) for message_db_id in ids],
                     stats)  # fmt: skip
        return stats

    def drain(self, stats: DrainStats | None = None) -> DrainStats:
        """Fetch, store, process and acknowledge until the source has nothing new (or stop).

        The next batch is fetched, and handed to the parse workers, before the last ones are
        acknowledged, so that the workers parse while the server moves. In a backlog,
        committed batches are acknowledged together, ACK_AT_LEAST messages to a command: a
        MOVE costs Dovecot about 10 ms however few it moves. Whatever is committed is
        acknowledged before drain returns; a crash or an error before that leaves messages
        upstream that the next pass fetches again and drops as duplicates.
        """
        stats = stats or DrainStats()
        batches = self.source.fetch_batches()
        committed: list[Fetched] = []  # processed and committed, not yet acknowledged
        ahead = self._fetch_next(batches, stats)
        while ahead is not None:
            batch, prepared = ahead
            done = self.process(partial(self._store, batch, prepared), stats)
            committed += [replace(item, raw=b"") for item in batch[:done]]  # bytes stored
            ahead = None if self.stop.is_set() else self._fetch_next(batches, stats)
            if committed and (ahead is None or len(committed) >= ACK_AT_LEAST):
                self.source.acknowledge(committed)
                committed = []
        return stats

    def _fetch_next(
        self, batches: Iterator[list[Fetched]], stats: DrainStats
    ) -> tuple[list[Fetched], list[Prepared]] | None:
        """The next batch, already on its way through the parse workers (a duplicate's parse
        is wasted), or None when the source has nothing more."""
        batch = next(batches, None)
        if batch is None:
            return None
        stats.fetched += len(batch)
        return batch, parse_ahead(self.pool, [item.raw for item in batch])

    def _store(self, batch: list[Fetched], prepared: list[Prepared], s: Session) -> list[Work]:
        return list(zip(persist_raw(s, batch, self.clock.now()), prepared, strict=True))

    def process(self, load: Callable[[Session], list[Work]], stats: DrainStats) -> int:
        """Process a batch, which `load` stores or reads in the batch's transaction: each
        message with its bytes and parse when in hand. Returns how many were handled.

        A message's case changes apply whole or not at all, and a failure costs only that
        message, which is marked failed and kept for replay. The batch commits once at the
        end — a crash before that leaves the batch to be fetched (or replayed) again,
        changing nothing twice. `stop` is checked between messages, so the one in hand is
        always finished.

        A batch is first processed without savepoints and, when it is worth it, its emails
        composed by the workers (their bytes written just before the commit). If a message
        fails, the batch is rolled back and processed again, each message in a savepoint of
        its own; if an email cannot be composed at all, again composing each email in line.
        """
        compose_inline, savepoints = False, False
        while True:  # at most three attempts: each failure below turns one thing off
            try:
                return self._process(
                    load, stats, compose_inline=compose_inline, savepoints=savepoints
                )
            except _MessageFailed as exc:  # raised only without savepoints
                log.info("message %s failed; processing its batch again, each message on "
                         "its own", exc)  # fmt: skip
                savepoints = True
            except ComposeFailed as exc:  # raised only when composing ahead
                log.warning("an email could not be composed (%s); processing the batch "
                            "again, composing in the daemon", exc)  # fmt: skip
                compose_inline, savepoints = True, True

    def _process(
        self,
        load: Callable[[Session], list[Work]],
        stats: DrainStats,
        *,
        compose_inline: bool,
        savepoints: bool,
    ) -> int:
        """One attempt at a batch. Without `savepoints` a message that fails raises
        _MessageFailed and the whole attempt is rolled back (a savepoint and its release
        cost more than the rest of a reply's SQL, and failures are rare), and the whole
        batch's timeline entries, duplicate links and reference numbers are held back to its
        end; with them, each message's to the end of its savepoint."""
        handled, done, outcomes = 0, DrainStats(), []
        with session(self.engine) as s:
            work = load(s)
            done.duplicates = sum(stored.duplicate for stored, _ in work)
            with self._ctx_lock:
                ctx, self._next_ctx = self._next_ctx or self.ctx, None
            # One query per batch: absences and bounces recorded since (by another daemon,
            # or `mailbridge directory clear`) route new cases round or back to people.
            self.ctx = ctx.refreshed(s)
            ahead = not compose_inline and self.pool.worth_it(
                sum(stored.needs_processing for stored, _ in work)
            )
            composer = ComposeAhead(self.pool, self.ctx.mailer.renderer) if ahead else None
            s.info[COMPOSE_AHEAD] = composer
            with nullcontext() if savepoints else _held_back(s):
                for stored, prepared in work:
                    if self.stop.is_set():
                        break
                    handled += 1
                    if not stored.needs_processing:
                        continue
                    message_db_id = stored.message_db_id
                    mark = composer.mark() if composer else 0
                    try:
                        with _on_its_own(s) if savepoints else nullcontext():
                            outcome = process_message(
                                s, message_db_id, self.ctx, self.clock.now(), prepared,
                                stored.received_at,
                            )  # fmt: skip
                    except Exception as exc:  # one bad message must never stop the daemon
                        if not savepoints:
                            raise _MessageFailed(message_db_id) from exc
                        if composer:
                            composer.forget_since(mark)
                        log.exception("message %s failed; kept for replay", message_db_id)
                        mark_failed(s, message_db_id, f"{type(exc).__name__}: {exc}")
                        done.failed += 1
                        continue
                    done.processed += 1
                    outcomes.append(outcome)
                    if outcome.people_changed:  # route round them from the next message on
                        self.ctx = self.ctx.refreshed(s)
            if composer:
                composer.fill(s)
            s.commit()
        for outcome in outcomes:
            log.info(
                "message %s: %s %s %s",
                outcome.message_db_id,
                outcome.classification,
                outcome.action,
                outcome.reference or "",
            )
        stats.processed += done.processed
        stats.failed += done.failed
        stats.duplicates += done.duplicates
        if self.committed is not None and handled:
            self.committed.set()
        return handled

    def run_forever(self) -> None:
        """The daemon's ingest loop: drain, wait for news, drain again; back off when down."""
        delay = BACKOFF_FIRST
        self.replay_pending()
        while not self.stop.is_set():
            try:
                self.drain()
                delay = BACKOFF_FIRST
                self.source.wait_for_changes(self.stop)
            except SourceUnavailable as exc:
                wait = BACKOFF_MAX if exc.permanent else delay
                level = logging.ERROR if exc.permanent else logging.WARNING
                log.log(level, "mail source unavailable (%s); retrying in %.0f s", exc, wait)
                self.stop.wait(wait)
                delay = min(delay * 2, BACKOFF_MAX)
            except Exception:  # e.g. the database restarting: wait and carry on, never die
                log.exception("ingest loop error; retrying in %.0f s", delay)
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)


@contextmanager
def _held_back(s: Session) -> Iterator[None]:
    """Timeline entries and duplicate links written at the end, one statement each, and
    reference numbers counted in memory, for a batch or for one message in its savepoint."""
    with holding_inserts(s), holding_references(s):
        yield


@contextmanager
def _on_its_own(s: Session) -> Iterator[None]:
    """One message in a savepoint of its own, its writes held back within it."""
    with s.begin_nested(), _held_back(s):
        yield


class _MessageFailed(Exception):
    """A message failed in a batch processed without savepoints: the batch is done again."""
