"""Composing a batch's emails in worker processes while the daemon goes on with its messages.

Rendering, composing and serialising an acknowledgement and a forward cost a sixth of a new
enquiry's time in the daemon. In a batch worth it, Mailer.queue inserts each outbox row at once
(its dedupe key, recipients, subject and Message-ID are known from the Draft) with its bytes to
come, and hands the Draft to a worker. Before the batch commits, `fill` writes every row's bytes
in one statement, so a committed row always has them and nothing is ever sent without them.

A message whose processing fails takes its drafts with it (`forget_since`: its savepoint rolled
its rows back, and SQLite may give a later row the same id). A draft a worker could not build
is built here; one that cannot be built here either (a broken council template) raises
ComposeFailed, and the runner processes the batch again composing in line, where that message
fails alone and is kept for replay, as it would have without workers.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import bindparam, update
from sqlmodel import Session

from mailbridge.outbound.draft import Draft, build_drafts
from mailbridge.outbound.render import Renderer
from mailbridge.store.models import Outbox
from mailbridge.workers import CHUNK, WorkerPool

SESSION_KEY = "mailbridge.compose_ahead"  # session.info: the batch's ComposeAhead, if any
_FILL = (
    update(Outbox.__table__)
    .where(Outbox.__table__.c.id == bindparam("row_id"))
    .values(raw=bindparam("wire"))
)


class ComposeFailed(Exception):
    """A queued email could not be built, by a worker or here."""


@dataclass(frozen=True)
class _Task:
    first: int  # the serial of its first draft
    count: int
    future: Future[list[bytes]]


class ComposeAhead:
    def __init__(self, pool: WorkerPool, renderer: Renderer):
        self.pool, self.renderer = pool, renderer
        self._queued: list[tuple[int, Draft]] = []  # (outbox row id, draft), by serial
        self._forgotten: set[int] = set()  # serials of drafts whose rows were rolled back
        self._tasks: list[_Task] = []
        self._unsent = 0  # the serial of the first draft not yet handed to a worker

    def add(self, outbox_id: int, draft: Draft) -> None:
        self._queued.append((outbox_id, draft))
        if len(self._queued) - self._unsent >= CHUNK:
            self._send()

    def mark(self) -> int:
        return len(self._queued)

    def forget_since(self, mark: int) -> None:
        """The drafts added since `mark` belong to rows that were rolled back."""
        self._forgotten.update(range(mark, len(self._queued)))

    def fill(self, session: Session) -> None:
        """Write every queued row's bytes (one statement); ComposeFailed if one cannot be built."""
        self._send()
        filled = []
        for task in self._tasks:
            built = self.pool.result(task.future)
            for index in range(task.count):
                serial = task.first + index
                if serial in self._forgotten:
                    continue
                outbox_id, draft = self._queued[serial]
                wire = built[index] if built is not None else self._build_here(draft)
                filled.append({"row_id": outbox_id, "wire": wire})
        if filled:
            written = session.connection().execute(_FILL, filled).rowcount
            if written != len(filled):  # never commit a row without its bytes
                raise ComposeFailed(f"{written} of {len(filled)} composed emails found their row")

    def _send(self) -> None:
        drafts = [draft for _, draft in self._queued[self._unsent :]]
        if drafts:
            template_dir = self.renderer.override_dir
            future = self.pool.submit(build_drafts, template_dir, drafts)
            self._tasks.append(_Task(self._unsent, len(drafts), future))
        self._unsent = len(self._queued)

    def _build_here(self, draft: Draft) -> bytes:
        try:
            return draft.build(self.renderer)
        except Exception as exc:
            raise ComposeFailed(f"{draft.message_id}: {type(exc).__name__}: {exc}") from exc
