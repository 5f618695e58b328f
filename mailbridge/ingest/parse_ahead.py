"""Parsing on the machine's other cores while this process writes cases.

Parsing an email is pure (bytes in, ParsedMessage out) and, with mail-parser, the largest
single cost of ingest. The runner hands a batch's raw bytes to worker processes as soon as the
batch is stored, then takes the results in order: message n+1 is parsed while message n's case
is written. Every rule and every database write stays in this process; a worker only ever sees
bytes and returns the ParsedMessage, or the ParseFailed, that parsing here would have given.

Workers are started with "spawn" (the daemon has threads, and fork would copy their locks),
once, on the first batch big enough to be worth it, and shut down with the runner. A worker
that dies (killed, out of memory) loses nothing: its messages are parsed here instead, and a
new pool is started for the next batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial

from mailbridge.ingest.parse import ParsedMessage, ParseFailed, parse

log = logging.getLogger(__name__)

MIN_BATCH = 8  # below this, feeding a worker costs more than parsing here
CHUNK = 8  # messages per task: a round trip to a worker per chunk, not per message
PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Prepared:
    """A stored message's bytes, in hand, and its parse (perhaps under way elsewhere)."""

    raw: bytes
    parsed: Callable[[], ParsedMessage]  # the parse, or raises ParseFailed


class ParseAhead:
    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self, raws: Sequence[bytes]) -> list[Prepared]:
        """One Prepared per raw, in order; parsed by workers when the batch is worth it."""
        if self.workers < 1 or len(raws) < MIN_BATCH:
            return [Prepared(raw, partial(parse, raw)) for raw in raws]
        pool = self._running_pool()
        prepared = []
        for first in range(0, len(raws), CHUNK):
            chunk = list(raws[first : first + CHUNK])
            future = pool.submit(parse_chunk, chunk)
            prepared += [
                Prepared(raw, partial(self._result, future, i, raw)) for i, raw in enumerate(chunk)
            ]
        return prepared

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _running_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
            )
        return self._pool

    def _result(self, future: Future[list[ParsedMessage | ParseFailed]], index: int,
                raw: bytes) -> ParsedMessage:  # fmt: skip
        try:
            outcome = future.result()[index]
        except BrokenProcessPool as exc:  # a worker died: killed, out of memory
            self._drop_pool(exc)
            return parse(raw)  # here, as if there were no workers: the same result or error
        except Exception:  # the task itself failed: parsing here says which message and why
            return parse(raw)
        if isinstance(outcome, ParseFailed):
            raise outcome
        return outcome

    def _drop_pool(self, exc: Exception) -> None:
        """Parse here for the rest of this batch; the next batch starts a new pool."""
        if self._pool is not None:
            log.warning("parse worker failed (%s: %s); parsing in the daemon until the next "
                        "batch", type(exc).__name__, exc)  # fmt: skip
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def parse_chunk(raws: list[bytes]) -> list[ParsedMessage | ParseFailed]:
    """In a worker: each message's parse, or its ParseFailed as a value (it pickles)."""
    out: list[ParsedMessage | ParseFailed] = []
    for raw in raws:
        try:
            out.append(parse(raw))
        except ParseFailed as exc:
            out.append(exc)
    return out


def _worker_start() -> None:
    """Ctrl-C and the service manager's SIGTERM reach the whole process group; the daemon
    finishes its message and shuts the pool down, so a worker ignores them. A daemon killed
    outright (SIGKILL, OOM) cannot shut it down, and the task queue never reports EOF (the
    worker holds both ends), so the worker watches for its parent going and exits then."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()

    def _watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=_watch, name="parent-watch", daemon=True).start()
