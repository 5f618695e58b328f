"""The IMAP source: raw messages in batches from a shared mailbox; move or flag them after commit.

This is the only module that imports imapclient. Every protocol quirk it works around is
verified in notes/libraries.md §1. The source holds at most one connection, opened on first use
and dropped on any error; it never retries or sleeps on its own — the runner owns back-off.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError

from mailbridge.config import SourceSettings
from mailbridge.ingest.sources.base import CursorStore, Fetched, SourceUnavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0  # also covers the greeting and CAPABILITY exchange
READ_TIMEOUT = 120.0  # a read that hangs longer (idle_done on Office 365, #403) means dead
IDLE_SLICE = 1.0  # idle_check granularity: how soon a set `stop` is noticed
SIZE_CHUNK = 500  # UIDs per RFC822.SIZE FETCH: Outlook fails above ~1,900 ids per command
# Linux keepalive probing, so a NAT that silently dropped an IDLE connection is noticed in
# minutes rather than the kernel default of two hours.
KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 15, "TCP_KEEPCNT": 4}
NEW_MAIL = (b"EXISTS", b"RECENT", b"FETCH")


class _ConnectionLost(ConnectionError):
    """The server went away while we were idling (BYE, or EOF that idle_check swallowed)."""


class ImapSource:
    """A `Source` over one IMAP account: fetch by UID, acknowledge by MOVE (or flag) per batch."""

    def __init__(
        self,
        settings: SourceSettings,
        cursors: CursorStore,
        token_provider: Callable[[], str] | None = None,
    ) -> None:
        self._settings = settings
        self._cursors = cursors
        self._token_provider = token_provider
        self._client: IMAPClient | None = None
        self._selected: tuple[str, int] | None = None  # (folder, UIDVALIDITY) on this connection
        self._processed_ready = False  # processed folder known to exist, on this connection
        # Per folder: UIDVALIDITY and the highest UID the last search saw, so a wait can tell
        # whether mail arrived between that search and the start of IDLE.
        self._seen: dict[str, tuple[int, int]] = {}
        # Per folder: UIDs yielded in the current pass and not yet acknowledged. The cursor
        # never moves past one of them, so a skipped batch is fetched again next pass.
        self._unacked: dict[str, set[int]] = {}

    # ----- the Source protocol ------------------------------------------------------------

    def fetch_batches(self) -> Iterator[list[Fetched]]:
        """New messages per folder, in UID order, in batches bounded by count and bytes.

        Never one round trip per message: one SEARCH per folder, one RFC822.SIZE FETCH per
        SIZE_CHUNK UIDs, one body FETCH per batch.
        """
        for folder in self._settings.folders:
            yield from self._fetch_folder(folder)

    def acknowledge(self, batch: list[Fetched]) -> None:
        """Move (or flag) committed messages, one command per batch, then advance the cursor."""
        groups: dict[tuple[str, int], list[int]] = {}
        for message in batch:
            if message.uid is None or message.uidvalidity is None:
                raise ValueError(f"not an IMAP message: {message.source} {message.key}")
            groups.setdefault((message.folder, message.uidvalidity), []).append(message.uid)
        for (folder, uidvalidity), uids in groups.items():
            with self._failures(f"acknowledging {len(uids)} message(s) in {folder}"):
                client = self._connection()
                current = self._ensure_selected(client, folder)
                if current != uidvalidity:
                    # The folder was recreated since the fetch: these UIDs now name other
                    # messages (or none). Leave everything alone; the next pass re-reads the
                    # folder from UID 1 and the pipeline drops what it already has.
                    log.warning(
                        "%s: UIDVALIDITY of %s changed (%s -> %s) before acknowledgement; "
                        "not moving %d message(s)",
                        self._where,
                        folder,
                        uidvalidity,
                        current,
                        len(uids),
                    )
                    continue
                if self._settings.processed == "flag":
                    client.add_flags(uids, [self._settings.processed_flag], silent=True)
                else:
                    self._move(client, folder, uids)
            # Crash window: the server already moved or flagged these and the cursor is not
            # saved yet. Harmless: moved messages are gone from the folder, flagged ones are
            # fetched again and dropped by the pipeline's Message-ID dedupe.
            self._advance_cursor(folder, uidvalidity, uids)

    def wait_for_changes(self, stop: threading.Event) -> None:
        """Return when there may be new mail, `stop` is set, or it is time to re-sync anyway.

        IDLE is a hint, not a record: the runner re-syncs by UID after every return, and a
        renewal is simply a return (a missed push costs at most idle_renew_seconds).
        """
        if stop.is_set():
            return
        if not self._settings.idle:
            stop.wait(self._settings.poll_seconds)
            return
        folder = self._settings.folders[0]
        with self._failures(f"waiting for mail in {folder}"):
            client = self._connection()
            can_idle = client.has_capability("IDLE")
            if can_idle and not self._arrived_since_last_search(client, folder):
                self._idle(client, stop)
        if not can_idle:
            stop.wait(self._settings.poll_seconds)

    def close(self) -> None:
        """Log out politely; a connection that is already broken is just closed."""
        client, self._client = self._client, None
        self._selected = None
        self._processed_ready = False
        if client is None:
            return
        try:
            client.logout()
        except (IMAPClientError, OSError):
            _shutdown_quietly(client)

    # ----- fetching -----------------------------------------------------------------------

    def _fetch_folder(self, folder: str) -> Iterator[list[Fetched]]:
        key = self._cursor_key(folder)
        stored = self._cursors.load(key)
        with self._failures(f"searching {folder}"):
            client = self._connection()
            uidvalidity = self._select(client, folder)
            last = 0
            if stored is not None and stored[0] == uidvalidity:
                last = stored[1]
            elif stored is not None:
                log.warning(
                    "%s: UIDVALIDITY of %s changed from %s to %s: reading it again from "
                    "UID 1 (the pipeline drops messages it already has)",
                    self._where,
                    folder,
                    stored[0],
                    uidvalidity,
                )
            # `UID n:*` always matches the highest UID, even when it is below n: filter.
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
        self._seen[folder] = (uidvalidity, max(uids, default=last))
        self._unacked[folder] = set()
        for batch_uids in self._plan_batches(folder, uidvalidity, uids):
            batch = self._fetch_bodies(folder, uidvalidity, batch_uids)
            if batch:
                self._unacked[folder].update(m.uid for m in batch if m.uid is not None)
                yield batch

    def _plan_batches(self, folder: str, uidvalidity: int, uids: list[int]) -> Iterator[list[int]]:
        """Group UIDs into batches of at most batch_size messages and batch_bytes bytes.

        Sizes are read a chunk at a time, lazily, so a large backlog starts flowing at once.
        A single message larger than batch_bytes is a batch of its own.
        """
        limit_count, limit_bytes = self._settings.batch_size, self._settings.batch_bytes
        batch: list[int] = []
        batch_bytes = 0
        for start in range(0, len(uids), SIZE_CHUNK):
            chunk = uids[start : start + SIZE_CHUNK]
            with self._failures(f"reading message sizes in {folder}"):
                client = self._selected_client(folder, uidvalidity)
                sizes = client.fetch(chunk, ["RFC822.SIZE"])
            for uid in chunk:
                if uid not in sizes:
                    continue  # expunged by someone else since the search
                size = int(sizes[uid].get(b"RFC822.SIZE", 0))
                if batch and (len(batch) >= limit_count or batch_bytes + size > limit_bytes):
                    yield batch
                    batch, batch_bytes = [], 0
                batch.append(uid)
                batch_bytes += size
        if batch:
            yield batch

    def _fetch_bodies(self, folder: str, uidvalidity: int, uids: list[int]) -> list[Fetched]:
        """One FETCH for the batch. BODY.PEEK[], never RFC822: that would set \\Seen."""
        with self._failures(f"fetching {len(uids)} message(s) from {folder}"):
            client = self._selected_client(folder, uidvalidity)
            items = ["BODY.PEEK[]", "INTERNALDATE"]
            try:
                data = client.fetch(uids, items)
            except IMAPClientError as exc:
                # Another session expunged one of these and ours has not been told yet:
                # Dovecot answers the whole command with NO [EXPUNGEISSUED]. A NOOP
                # delivers the expunges; the retry then simply omits the missing UIDs.
                if "EXPUNGEISSUED" not in str(exc) and "no longer exist" not in str(exc):
                    raise
                client.noop()
                data = client.fetch(uids, items)
        out = []
        for uid in uids:
            raw = data.get(uid, {}).get(b"BODY[]")
            if raw is None:
                log.info(
                    "%s: %s UID %d vanished before it could be fetched", self._where, folder, uid
                )
                continue
            internal = data[uid].get(b"INTERNALDATE")
            out.append(
                Fetched(
                    source=f"imap:{folder}",
                    key=str(uid),
                    raw=bytes(raw),
                    folder=folder,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    internal_date=internal if isinstance(internal, datetime) else None,
                )
            )
        return out

    # ----- acknowledging ------------------------------------------------------------------

    def _move(self, client: IMAPClient, folder: str, uids: list[int]) -> None:
        target = self._settings.processed_folder
        if not self._processed_ready:
            if not client.folder_exists(target):
                try:
                    client.create_folder(target)
                except IMAPClientError:
                    if not client.folder_exists(target):  # lost a race with another client?
                        raise
                log.info("%s: created folder %s", self._where, target)
            self._processed_ready = True
        # imapclient's move() does not check the capability; it would send UID MOVE anyway.
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        # Crash window: after COPY and before the expunge the messages are in both folders and
        # the cursor is unsaved, so they are fetched again, deduplicated, and copied twice.
        client.copy(uids, target)
        client.delete_messages(uids, silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            # A plain EXPUNGE would also purge whatever a person in this shared mailbox has
            # marked \Deleted. Leave ours marked; the cursor keeps them from being re-read.
            log.warning(
                "%s: server lacks UIDPLUS: %d message(s) copied to %s and left marked "
                "\\Deleted in %s, not expunged",
                self._where,
                len(uids),
                target,
                folder,
            )

    def _advance_cursor(self, folder: str, uidvalidity: int, uids: list[int]) -> None:
        key = self._cursor_key(folder)
        pending = self._unacked.get(folder, set())
        pending.difference_update(uids)
        new_last = max(uids)
        earlier = [u for u in pending if u < new_last]
        if earlier:
            # A batch before this one was never acknowledged: stop just short of it.
            log.warning(
                "%s: %s UID %d and earlier were not acknowledged; cursor held back",
                self._where,
                folder,
                min(earlier),
            )
            new_last = min(earlier) - 1
        self._cursors.advance(key, uidvalidity, new_last)

    # ----- waiting ------------------------------------------------------------------------

    def _arrived_since_last_search(self, client: IMAPClient, folder: str) -> bool:
        """Whether mail arrived since the last search, i.e. before IDLE could report it.

        An EXISTS that arrives during another command (a MOVE's response, say) is consumed by
        imaplib and never repeated in IDLE, so without this check it would wait a full renewal.
        """
        uidvalidity = self._ensure_selected(client, folder)
        seen = self._seen.get(folder)
        if seen is None or seen[0] != uidvalidity:
            return True
        return any(u > seen[1] for u in client.search(["UID", f"{seen[1] + 1}:*"]))

    def _idle(self, client: IMAPClient, stop: threading.Event) -> None:
        renew = self._settings.idle_renew_seconds
        client.idle()
        started = time.monotonic()
        lost = False  # no DONE on a dead connection: it would only wait for the read timeout
        try:
            while not stop.is_set() and time.monotonic() - started < renew:
                slice_started = time.monotonic()
                responses = client.idle_check(timeout=IDLE_SLICE)
                if any(r and r[0] == b"BYE" for r in responses):
                    lost = True
                    raise _ConnectionLost("server said BYE during IDLE")
                # idle_check swallows EOF and returns [] at once, every time (imapclient#565):
                # an empty answer well before the slice ran out means the server is gone.
                if not responses and time.monotonic() - slice_started < IDLE_SLICE / 2:
                    lost = True
                    raise _ConnectionLost("connection closed during IDLE")
                if any(len(r) > 1 and r[1] in NEW_MAIL for r in responses):
                    return
        except (IMAPClientError, OSError):
            lost = True
            raise
        finally:
            if not lost:
                try:
                    client.idle_done()
                except (IMAPClientError, OSError):
                    self._drop()  # the next call reconnects

    # ----- the connection -----------------------------------------------------------------

    @property
    def _where(self) -> str:
        return self._settings.endpoint.redacted()

    def _cursor_key(self, folder: str) -> str:
        ep = self._settings.endpoint
        return f"{ep.username}@{ep.host}:{ep.port}/{folder}"

    @contextmanager
    def _failures(self, doing: str) -> Iterator[None]:
        """Turn any network or protocol failure into SourceUnavailable, dropping the connection."""
        try:
            yield
        except LoginError as exc:  # an IMAPClientError too: must come first
            self._drop()
            raise SourceUnavailable(f"{self._where}: login refused: {exc}", permanent=True) from exc
        except (IMAPClientError, OSError) as exc:  # OSError covers TimeoutError and ssl errors
            self._drop()
            raise SourceUnavailable(f"{self._where}: {doing}: {exc!r}") from exc

    def _connection(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _select(self, client: IMAPClient, folder: str) -> int:
        """Select `folder` (read-write: we move and flag) and return its UIDVALIDITY."""
        response = client.select_folder(folder)
        uidvalidity = int(response[b"UIDVALIDITY"])
        self._selected = (folder, uidvalidity)
        return uidvalidity

    def _ensure_selected(self, client: IMAPClient, folder: str) -> int:
        """UIDVALIDITY of `folder`, selecting it only if another folder (or none) is selected.

        Trusting the current selection is safe: a server must not change UIDVALIDITY under a
        session that has the folder selected (Dovecot disconnects it instead).
        """
        if self._selected is not None and self._selected[0] == folder:
            return self._selected[1]
        return self._select(client, folder)

    def _selected_client(self, folder: str, uidvalidity: int) -> IMAPClient:
        """The connection with `folder` selected, as of the UIDs we hold for it.

        An acknowledge or a reconnect between batches may have changed the selection.
        """
        client = self._connection()
        if self._ensure_selected(client, folder) != uidvalidity:
            raise SourceUnavailable(f"{self._where}: UIDVALIDITY of {folder} changed mid-sync")
        return client

    def _connect(self) -> IMAPClient:
        ep = self._settings.endpoint
        client = IMAPClient(
            ep.host,
            port=ep.port,
            ssl=ep.scheme == "imaps",
            timeout=SocketTimeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        )
        try:
            client.normalise_times = False  # aware INTERNALDATE, not naive local time
            _quiet_unless_debugging(client)
            _keepalive(client.socket())
            if ep.scheme == "imap":
                if client.has_capability("STARTTLS"):
                    client.starttls(ssl.create_default_context())
                else:
                    log.warning(
                        "%s offers no STARTTLS: the password crosses the network in clear "
                        "text; use imaps:// unless this is loopback",
                        self._where,
                    )
            if self._settings.auth == "xoauth2":
                client.oauth2_login(ep.username, self._token())
            else:
                client.login(ep.username, ep.password)
        except BaseException:
            _shutdown_quietly(client)
            raise
        log.info("%s: connected", self._where)
        return client

    def _token(self) -> str:
        """A fresh OAuth2 access token on every connect; a session is never re-authenticated."""
        if self._token_provider is None:
            raise SourceUnavailable(
                f"{self._where}: auth = xoauth2 but no token provider", permanent=True
            )
        try:
            return self._token_provider()
        except Exception as exc:  # the identity provider's own errors: retry later
            raise SourceUnavailable(f"{self._where}: no OAuth2 token: {exc}") from exc

    def _drop(self) -> None:
        """Forget the connection without a goodbye: it is presumed broken."""
        client, self._client = self._client, None
        self._selected = None
        self._processed_ready = False
        if client is not None:
            _shutdown_quietly(client)


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in KEEPALIVE.items():
        if hasattr(socket, name):  # Linux; other platforms keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _quiet_unless_debugging(client: IMAPClient) -> None:
    """imapclient sets imaplib's debug level to 5 and hands its output to the
    "imapclient.imaplib" logger, which drops it below DEBUG, but only after imaplib has
    formatted it: the repr of every message fetched, and of each batch's whole FETCH response,
    about a twentieth of the daemon's ingest time. Off, unless that logger would show it."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def _shutdown_quietly(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception as exc:  # already closed, or closing a broken TLS stream
        log.debug("closing a broken IMAP connection: %r", exc)
