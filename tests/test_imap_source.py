"""The IMAP source alone, against a real Dovecot: batching, acknowledgement, IDLE and failures."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from mailbridge.config import load_settings
from mailbridge.ingest.sources.base import Fetched, SourceUnavailable
from mailbridge.ingest.sources.imap import ImapSource
from tests.imap_server import Dovecot, ImapAccount, MemoryCursors

pytestmark = pytest.mark.imap


def enquiry(n: int, body_size: int = 300) -> bytes:
    """A member's email with CRLF line ends, so the server stores and returns it byte for byte."""
    msg = EmailMessage()
    msg["From"] = f"Councillor {n} <cllr{n}@members.example>"
    msg["To"] = "enquiries@council.example"
    msg["Subject"] = f"Enquiry {n}: bins not collected"
    msg["Message-ID"] = f"<enquiry-{n}@members.example>"
    msg["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    words = "The bins on Mill Lane were missed again this week, residents are asking why. " * 400
    msg.set_content("\n".join(words[i : i + 70] for i in range(0, body_size, 70)))
    return msg.as_bytes(policy=SMTP)


def uids_of(batch: list[Fetched]) -> list[int]:
    return [m.uid for m in batch if m.uid is not None]


def sent(caplog: pytest.LogCaptureFixture) -> list[str]:
    """IMAP commands sent while caplog recorded, without tags: 'UID FETCH 1,2 (...)'."""
    out = []
    for record in caplog.records:
        if record.name == "imapclient.imaplib":
            match = re.match(r"> b'\S+ (.*?)'?$", record.getMessage())
            if match:
                out.append(match.group(1))
    return out


SourceFactory = Callable[..., ImapSource]


@pytest.fixture
def make_source(imap_account: ImapAccount) -> Iterator[SourceFactory]:
    """Build ImapSources on the test's account (or another URL), closing them afterwards."""
    made: list[ImapSource] = []

    def make(
        url: str | None = None,
        cursors: MemoryCursors | None = None,
        token_provider: Callable[[], str] | None = None,
        **overrides: object,
    ) -> ImapSource:
        settings = load_settings(env={"MAILBRIDGE_SOURCE": url or imap_account.url}).source
        source = ImapSource(
            replace(settings, **overrides), cursors or MemoryCursors(), token_provider
        )
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


@pytest.fixture
def commands(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="imapclient.imaplib")
    return caplog


# ----- fetching -------------------------------------------------------------------------------


def test_imaplib_formats_no_debug_output_unless_its_logger_would_show_it(
    imap_account: ImapAccount, make_source: SourceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Formatting it cost a repr of every message fetched: a twentieth of ingest time."""
    imap_account.append(enquiry(1))
    caplog.set_level(logging.INFO, logger="imapclient.imaplib")
    quiet = make_source()
    assert len(next(quiet.fetch_batches())) == 1
    assert quiet._client._imap.debug == 0
    assert not [record for record in caplog.records if record.name == "imapclient.imaplib"]
    caplog.set_level(logging.DEBUG, logger="imapclient.imaplib")
    shown = make_source()
    assert len(next(shown.fetch_batches())) == 1
    assert shown._client._imap.debug == 5
    assert any("BODY.PEEK[]" in record.getMessage() for record in caplog.records)


def test_new_messages_come_in_uid_order_in_batches_bounded_by_count_and_bytes(
    imap_account: ImapAccount, make_source: SourceFactory, commands: pytest.LogCaptureFixture
) -> None:
    bodies = [1000, 1000, 1000, 12000, 1000, 1000, 1000, 2500, 2500]
    raws = [enquiry(n, size) for n, size in enumerate(bodies, start=1)]
    for raw in raws:
        imap_account.append(raw)
    source = make_source(batch_size=3, batch_bytes=5000)
    commands.clear()

    batches = list(source.fetch_batches())

    # [1,2,3] is full by count; 4 is over batch_bytes alone; 8 and 9 do not fit together.
    assert [uids_of(b) for b in batches] == [[1, 2, 3], [4], [5, 6, 7], [8], [9]]
    assert [m.raw for b in batches for m in b] == raws
    fetches = [c for c in sent(commands) if c.startswith("UID FETCH")]
    assert fetches[0] == "UID FETCH 1,2,3,4,5,6,7,8,9 (RFC822.SIZE)"
    assert len(fetches) == 1 + len(batches)  # one size FETCH, then one FETCH per batch
    first = batches[0][0]
    assert (first.source, first.key, first.folder, first.uid) == ("imap:INBOX", "1", "INBOX", 1)
    assert first.uidvalidity and first.internal_date and first.internal_date.utcoffset() is not None


def test_fetched_bytes_are_exactly_what_the_server_holds(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    # Bare LF line ends and 8-bit bytes: Dovecot serves them as it has them, and so must we.
    raw = (
        b"From: someone@example.org\nSubject: caf\xc3\xa9 opening hours\n\n"
        b"Line one\nLine two with trailing space \n"
    )
    imap_account.append(raw)

    [[fetched]] = list(make_source().fetch_batches())

    with imap_account.client() as c:
        c.select_folder("INBOX", readonly=True)
        server_copy = c.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
    assert fetched.raw == server_copy


def test_fetching_leaves_seen_unset(imap_account: ImapAccount, make_source: SourceFactory) -> None:
    imap_account.append(enquiry(1))
    imap_account.append(enquiry(2))

    assert sum(len(b) for b in make_source().fetch_batches()) == 2

    assert imap_account.flags() == {1: (), 2: ()}


def test_a_message_expunged_by_someone_else_during_a_sync_is_skipped(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    for n in (1, 2, 3):
        imap_account.append(enquiry(n))
    batches = make_source(batch_size=1).fetch_batches()
    assert uids_of(next(batches)) == [1]

    with imap_account.client() as other:  # a person deletes message 2 meanwhile
        other.select_folder("INBOX")
        other.delete_messages([2])
        other.uid_expunge([2])

    assert [uids_of(b) for b in batches] == [[3]]


# ----- acknowledging --------------------------------------------------------------------------


def test_acknowledged_messages_move_to_processed_in_one_command_and_the_cursor_advances(
    imap_account: ImapAccount, make_source: SourceFactory, commands: pytest.LogCaptureFixture
) -> None:
    for n in (1, 2, 3):
        imap_account.append(enquiry(n))
    cursors = MemoryCursors()
    source = make_source(cursors=cursors)
    [batch] = list(source.fetch_batches())
    commands.clear()

    source.acknowledge(batch)

    assert [c for c in sent(commands) if "MOVE" in c] == ['UID MOVE 1,2,3 "Processed"']
    assert imap_account.uids("INBOX") == []
    assert len(imap_account.uids("Processed")) == 3
    [(key, cursor)] = cursors.saved.items()
    assert key == f"{imap_account.user}@127.0.0.1:{imap_account.port}/INBOX"
    assert cursor == (batch[0].uidvalidity, 3)
    assert list(source.fetch_batches()) == []


def test_unacknowledged_messages_are_fetched_again_next_time(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    for n in (1, 2, 3):
        imap_account.append(enquiry(n))
    source = make_source(processed="flag")
    [batch] = list(source.fetch_batches())

    source.acknowledge(batch[:2])  # the runner committed only a prefix

    assert [uids_of(b) for b in source.fetch_batches()] == [[3]]


def test_the_cursor_never_passes_a_batch_that_was_not_acknowledged(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    for n in (1, 2, 3, 4):
        imap_account.append(enquiry(n))
    cursors = MemoryCursors()
    source = make_source(cursors=cursors, processed="flag", batch_size=2)
    _first, second = list(source.fetch_batches())

    source.acknowledge(second)  # the first batch failed and was skipped

    assert [last for _, last in cursors.saved.values()] == [0]
    assert [uids_of(b) for b in source.fetch_batches()] == [[1, 2], [3, 4]]


def test_flag_mode_flags_without_moving_and_the_cursor_stops_refetching(
    imap_account: ImapAccount, make_source: SourceFactory, commands: pytest.LogCaptureFixture
) -> None:
    imap_account.append(enquiry(1))
    imap_account.append(enquiry(2))
    source = make_source(processed="flag", processed_flag="$MailbridgeDone")
    [batch] = list(source.fetch_batches())
    commands.clear()

    source.acknowledge(batch)

    assert [c for c in sent(commands) if "STORE" in c] == [
        "UID STORE 1,2 +FLAGS.SILENT ($MailbridgeDone)"
    ]
    assert imap_account.flags() == {1: (b"$MailbridgeDone",), 2: (b"$MailbridgeDone",)}
    assert imap_account.uids("Processed") == []
    assert list(source.fetch_batches()) == []


def test_a_missing_processed_folder_is_created_once(
    imap_account: ImapAccount, make_source: SourceFactory, commands: pytest.LogCaptureFixture
) -> None:
    for n in (1, 2):
        imap_account.append(enquiry(n))
    source = make_source(processed_folder="Done", batch_size=1)
    commands.clear()

    for batch in source.fetch_batches():
        source.acknowledge(batch)

    assert [c for c in sent(commands) if c.startswith("CREATE")] == ['CREATE "Done"']
    assert imap_account.uids("Done") == [1, 2]


def test_without_move_the_source_copies_then_expunges_only_its_own_uids(
    imap_account: ImapAccount, make_source: SourceFactory, commands: pytest.LogCaptureFixture
) -> None:
    imap_account.append(enquiry(1))
    imap_account.append(enquiry(2))
    source = make_source(url=imap_account.url_at(Dovecot.NO_MOVE_HOST))
    [batch] = list(source.fetch_batches())
    commands.clear()

    source.acknowledge(batch)

    acks = [c for c in sent(commands) if c.startswith("UID")]
    assert acks == [
        'UID COPY 1,2 "Processed"',
        "UID STORE 1,2 +FLAGS.SILENT (\\\\Deleted)",
        "UID EXPUNGE 1,2",
    ]
    assert imap_account.uids("INBOX") == []
    assert imap_account.uids("Processed") == [1, 2]


def test_without_uidplus_nothing_is_expunged_and_a_persons_deleted_mail_survives(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    imap_account.append(enquiry(1))
    with imap_account.client() as person:  # someone marks a message \Deleted, meaning to purge
        person.append("INBOX", enquiry(2), flags=[b"\\Deleted"])
    source = make_source(url=imap_account.url_at(Dovecot.OLD_HOST))
    [batch] = list(source.fetch_batches())

    source.acknowledge(batch)

    assert imap_account.flags() == {1: (b"\\Deleted",), 2: (b"\\Deleted",)}
    assert imap_account.uids("Processed") == [1, 2]
    assert list(source.fetch_batches()) == []  # the cursor keeps ours from coming back


def test_a_recreated_folder_is_read_again_from_uid_one(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    with imap_account.client() as c:
        c.create_folder("Casework")
    imap_account.append(enquiry(1), "Casework")
    imap_account.append(enquiry(2), "Casework")
    cursors = MemoryCursors()
    source = make_source(cursors=cursors, folders=("Casework",), processed="flag")
    [batch] = list(source.fetch_batches())
    source.acknowledge(batch)
    old_uidvalidity = batch[0].uidvalidity

    with imap_account.client() as c:  # someone deletes and recreates the folder
        c.delete_folder("Casework")
        c.create_folder("Casework")
    imap_account.append(enquiry(3), "Casework")

    [[fetched]] = list(source.fetch_batches())
    assert fetched.uid == 1 and fetched.uidvalidity != old_uidvalidity
    assert fetched.raw == enquiry(3)


def test_several_folders_are_fetched_and_acknowledged_separately(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    with imap_account.client() as c:
        c.create_folder("Planning")
    imap_account.append(enquiry(1))
    imap_account.append(enquiry(2), "Planning")
    cursors = MemoryCursors()
    source = make_source(cursors=cursors, folders=("INBOX", "Planning"))

    for batch in source.fetch_batches():
        source.acknowledge(batch)

    assert imap_account.uids("INBOX") == imap_account.uids("Planning") == []
    assert len(imap_account.uids("Processed")) == 2
    assert sorted(k.rsplit("/", 1)[1] for k in cursors.saved) == ["INBOX", "Planning"]


# ----- waiting --------------------------------------------------------------------------------


def _wait_in_thread(source: ImapSource, stop: threading.Event) -> tuple[threading.Thread, dict]:
    result: dict[str, object] = {}

    def run() -> None:
        try:
            source.wait_for_changes(stop)
        except Exception as exc:
            result["error"] = exc
        result["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_idle_returns_soon_after_mail_arrives_from_another_connection(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    source = make_source()
    assert list(source.fetch_batches()) == []
    thread, result = _wait_in_thread(source, threading.Event())
    time.sleep(0.3)  # let it settle into IDLE
    assert thread.is_alive()

    appended = time.monotonic()
    imap_account.append(enquiry(1))
    thread.join(5)

    assert "error" not in result
    assert result["at"] - appended < 2.0  # type: ignore[operator]
    assert [uids_of(b) for b in source.fetch_batches()] == [[1]]


def test_mail_that_arrived_before_idle_started_is_not_missed(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    imap_account.append(enquiry(1))
    source = make_source(idle_renew_seconds=3)  # so a regression fails instead of hanging
    [batch] = list(source.fetch_batches())
    imap_account.append(enquiry(2))
    source.acknowledge(batch)  # its response carries "* 2 EXISTS"; IDLE will not repeat it

    started = time.monotonic()
    source.wait_for_changes(threading.Event())

    assert time.monotonic() - started < 0.5
    assert [uids_of(b) for b in source.fetch_batches()] == [[2]]


@pytest.mark.parametrize("idle", [True, False], ids=["idle", "polling"])
def test_stop_ends_a_wait_promptly(make_source: SourceFactory, idle: bool) -> None:
    source = make_source(idle=idle, poll_seconds=60)
    assert list(source.fetch_batches()) == []
    stop = threading.Event()
    thread, result = _wait_in_thread(source, stop)
    time.sleep(0.3)

    stopped = time.monotonic()
    stop.set()
    thread.join(5)

    assert "error" not in result
    assert result["at"] - stopped < 1.5  # type: ignore[operator]


def test_polling_mode_waits_for_the_poll_interval_then_sees_new_mail(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    source = make_source(idle=False, poll_seconds=1)
    assert list(source.fetch_batches()) == []
    imap_account.append(enquiry(1))  # no push in polling mode: the wait runs its full second

    started = time.monotonic()
    source.wait_for_changes(threading.Event())

    assert 0.9 < time.monotonic() - started < 1.5
    assert [uids_of(b) for b in source.fetch_batches()] == [[1]]


def test_a_server_without_idle_is_polled(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    source = make_source(url=imap_account.url_at(Dovecot.OLD_HOST), poll_seconds=1)
    assert list(source.fetch_batches()) == []

    started = time.monotonic()
    source.wait_for_changes(threading.Event())

    assert 0.9 < time.monotonic() - started < 1.5


def test_idle_is_renewed_by_returning_so_the_runner_resyncs(make_source: SourceFactory) -> None:
    source = make_source(idle_renew_seconds=1)
    assert list(source.fetch_batches()) == []

    started = time.monotonic()
    source.wait_for_changes(threading.Event())

    assert 0.9 < time.monotonic() - started < 2.5
    assert list(source.fetch_batches()) == []  # the connection is still good after DONE


# ----- failures -------------------------------------------------------------------------------


def test_a_kicked_connection_raises_unavailable_and_the_next_fetch_reconnects(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    imap_account.append(enquiry(1))
    source = make_source()
    [batch] = list(source.fetch_batches())
    source.acknowledge(batch)
    imap_account.kick()
    imap_account.append(enquiry(2))

    with pytest.raises(SourceUnavailable) as failure:
        list(source.fetch_batches())
    assert not failure.value.permanent

    [[fetched]] = list(source.fetch_batches())
    assert fetched.uid == 2


@pytest.mark.parametrize("hard", [False, True], ids=["bye", "eof"])
def test_a_connection_dropped_during_idle_raises_unavailable_promptly(
    imap_account: ImapAccount, make_source: SourceFactory, hard: bool
) -> None:
    # "bye": the server says BYE first. "eof": the process dies, idle_check just returns [].
    source = make_source()
    assert list(source.fetch_batches()) == []
    thread, result = _wait_in_thread(source, threading.Event())
    time.sleep(0.3)

    kicked = time.monotonic()
    imap_account.kick(hard=hard)
    thread.join(5)

    assert isinstance(result.get("error"), SourceUnavailable)
    assert result["at"] - kicked < 2.0  # type: ignore[operator]
    imap_account.append(enquiry(1))
    assert [uids_of(b) for b in source.fetch_batches()] == [[1]]


def test_a_bad_password_is_a_permanent_failure(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    url = imap_account.url.replace(f":{imap_account.password}@", ":not-the-password@")
    source = make_source(url=url)

    with pytest.raises(SourceUnavailable) as failure:
        list(source.fetch_batches())

    assert failure.value.permanent
    assert "not-the-password" not in str(failure.value)


def test_a_closed_port_is_a_transient_failure(make_source: SourceFactory) -> None:
    from tests.imap_server import free_port

    source = make_source(url=f"imap://someone:pw@127.0.0.1:{free_port()}/INBOX")

    with pytest.raises(SourceUnavailable) as failure:
        list(source.fetch_batches())

    assert not failure.value.permanent


def test_xoauth2_asks_for_a_fresh_token_on_every_connect(
    imap_account: ImapAccount, make_source: SourceFactory
) -> None:
    # The test server checks an XOAUTH2 bearer token against the account's password.
    tokens = iter(["expired-token", imap_account.password, imap_account.password])
    asked: list[str] = []

    def token_provider() -> str:
        asked.append(token := next(tokens))
        return token

    imap_account.append(enquiry(1))
    source = make_source(auth="xoauth2", token_provider=token_provider)

    with pytest.raises(SourceUnavailable) as failure:
        list(source.fetch_batches())
    assert failure.value.permanent
    assert [uids_of(b) for b in source.fetch_batches()] == [[1]]
    imap_account.kick()
    with pytest.raises(SourceUnavailable):
        list(source.fetch_batches())
    assert [uids_of(b) for b in source.fetch_batches()] == [[1]]
    assert len(asked) == 3


# ----- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def tls_account(dovecot_tls: Dovecot, monkeypatch: pytest.MonkeyPatch) -> ImapAccount:
    """An account on the TLS server, whose self-signed certificate the default context trusts."""
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot_tls.cert))
    return dovecot_tls.new_account()


def test_imap_upgrades_with_starttls_when_the_server_offers_it(
    tls_account: ImapAccount, make_source: SourceFactory, commands: pytest.LogCaptureFixture
) -> None:
    tls_account.append(enquiry(1))
    source = make_source(url=tls_account.url)
    commands.clear()

    assert [uids_of(b) for b in source.fetch_batches()] == [[1]]
    assert sent(commands)[0] == "STARTTLS"


def test_imaps_connects_with_implicit_tls(
    tls_account: ImapAccount, make_source: SourceFactory
) -> None:
    tls_account.append(enquiry(1))

    assert [uids_of(b) for b in make_source(url=tls_account.imaps_url).fetch_batches()] == [[1]]


def test_an_untrusted_certificate_is_refused(
    tls_account: ImapAccount, make_source: SourceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    source = make_source(url=tls_account.url)

    with pytest.raises(SourceUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        list(source.fetch_batches())
