"""What every source offers the runner: batches of raw messages, and acknowledgement upstream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Fetched:
    """One message as the source holds it: exact bytes plus where it came from."""

    source: str  # e.g. "imap:INBOX" or "maildir:var/inbox"; stored with the message
    key: str  # the handle acknowledge() needs: str(UID) or the Maildir file name
    raw: bytes
    folder: str = ""
    uidvalidity: int | None = None
    uid: int | None = None
    internal_date: datetime | None = None


class SourceUnavailable(Exception):
    """The server cannot be reached right now; the runner backs off and tries again.

    `permanent` means retrying soon will not help (bad credentials): wait long and tell ops.
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Source(Protocol):
    def fetch_batches(self) -> Iterator[list[Fetched]]:
        """Messages not yet acknowledged, oldest first, a bounded batch at a time."""
        ...

    def acknowledge(self, batch: list[Fetched]) -> None:
        """Mark these committed messages done upstream: move or flag, one command per batch.

        Never deletes. Only called after the messages are committed to the store.
        """
        ...

    def wait_for_changes(self, stop: threading.Event) -> None:
        """Block until there may be new mail (IDLE push or poll interval) or `stop` is set."""
        ...

    def close(self) -> None: ...


class CursorStore(Protocol):
    """Where a source keeps (UIDVALIDITY, last UID) per folder: the database, in the daemon."""

    def load(self, folder: str) -> tuple[int, int] | None: ...

    def advance(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        """Move the folder's cursor forward to `last_uid`; never back, unless UIDVALIDITY
        changed (the folder was recreated and its UIDs start again)."""
        ...
