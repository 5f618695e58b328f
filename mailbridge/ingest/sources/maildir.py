"""A local Maildir as the mail source: the embedded default, and what an MTA can deliver to.

New mail is read from new/ (oldest first) and, once committed, renamed into cur/ with the
Maildir ":2," info suffix, which is how mail clients mark a message as seen by a reader.
The rename is atomic, so a crash leaves each file either in new/ (read again, deduplicated)
or in cur/ (done).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from mailbridge.ingest.sources.base import Fetched

log = logging.getLogger(__name__)


class MaildirSource:
    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 100,
        batch_bytes: int = 25_000_000,
        poll_seconds: float = 5.0,
    ):
        self.root = Path(path)
        self.batch_size, self.batch_bytes, self.poll_seconds = batch_size, batch_bytes, poll_seconds
        for sub in ("new", "cur", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.name = f"maildir:{self.root}"

    def fetch_batches(self) -> Iterator[list[Fetched]]:
        entries = sorted(
            (
                e
                for e in os.scandir(self.root / "new")
                if e.is_file() and not e.name.startswith(".")
            ),
            key=lambda e: (e.stat().st_mtime_ns, e.name),
        )
        batch: list[Fetched] = []
        size = 0
        for entry in entries:
            try:
                raw = Path(entry.path).read_bytes()
                delivered = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
            except FileNotFoundError:  # taken by another reader meanwhile
                continue
            if batch and (len(batch) >= self.batch_size or size + len(raw) > self.batch_bytes):
                yield batch
                batch, size = [], 0
            batch.append(
                Fetched(
                    source=self.name, key=entry.name, raw=raw, folder="new", internal_date=delivered
                )
            )
            size += len(raw)
        if batch:
            yield batch

    def acknowledge(self, batch: list[Fetched]) -> None:
        for item in batch:
            base = item.key.split(":", 1)[0]
            try:
                os.rename(self.root / "new" / item.key, self.root / "cur" / f"{base}:2,")
            except FileNotFoundError:
                log.warning(
                    "maildir message %s vanished before it could be moved to cur/", item.key
                )

    def wait_for_changes(self, stop: threading.Event) -> None:
        stop.wait(self.poll_seconds)

    def close(self) -> None:
        pass
