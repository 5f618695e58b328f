"""Worker processes for the pure, costly parts of ingest: parsing mail and composing emails.

Every rule and every database write stays in the daemon; a worker only turns bytes into a
ParsedMessage or a draft into bytes, exactly as the daemon would have. Workers are started
with "spawn" (the daemon has threads, and fork would copy their locks), once, on the first
batch big enough to be worth it, and shut down with the runner. A worker that dies (killed,
out of memory) loses nothing: the caller does that work itself, and the next batch gets a new
pool. A worker whose daemon is killed outright exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

MIN_BATCH = 8  # below this, feeding a worker costs more than doing the work here
CHUNK = 16  # items per task: a round trip to a worker per chunk, not per item
PARENT_CHECK_SECONDS = 1.0
T = TypeVar("T")


class WorkerPool:
    def __init__(self, size: int):
        self.size = size
        self._pool: ProcessPoolExecutor | None = None

    def worth_it(self, count: int) -> bool:
        """Whether `count` items of a batch should go to workers (else: do them here)."""
        return self.size > 0 and count >= MIN_BATCH

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.size,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                initargs=(os.getpid(),),
            )
        return self._pool.submit(fn, *args)

    def result(self, future: Future[T]) -> T | None:
        """The task's result; None when the caller must do the work itself: the worker died
        (the pool is dropped and the next batch starts a new one) or the task raised (doing
        it here raises the same error where the caller can say which item and why)."""
        try:
            return future.result()
        except BrokenProcessPool as exc:
            if self._pool is not None:
                log.warning("worker process failed (%s: %s); working in the daemon until the "
                            "next batch", type(exc).__name__, exc)  # fmt: skip
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            return None
        except Exception:
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _worker_start(daemon: int) -> None:
    """Ctrl-C and the service manager's SIGTERM reach the whole process group; the daemon
    finishes its message and shuts the pool down, so a worker ignores them. A daemon killed
    outright (SIGKILL, OOM) cannot shut it down, and the task queue never reports EOF (the
    worker holds both ends), so the worker watches for its parent going and exits then.
    The daemon's pid comes from the daemon: one killed while this worker was starting has
    already made it someone else's child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def _watch() -> None:
        while os.getppid() == daemon:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=_watch, name="parent-watch", daemon=True).start()
