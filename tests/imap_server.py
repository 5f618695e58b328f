"""A throwaway Dovecot 2.3 IMAP server on loopback, and the pytest fixtures that start it.

Loaded as a pytest plugin (`pytest_plugins = ["tests.imap_server"]`); the `Dovecot` class works
outside pytest too, for `scripts/bench_ingest.py`. Each test gets its own user, so its own empty
Maildir, on one session-wide server. The config is the one verified in notes/libraries.md §9.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.certs import make_self_signed

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
USER_POOL = 64
INSTALL_HINT = (
    "Dovecot 2.3 is needed for the IMAP tests: run the test command from README.md, "
    "which installs it (apt-get install -y dovecot-imapd)"
)


class MemoryCursors:
    """The CursorStore protocol in a dict, for the IMAP source alone (tests, benchmark)."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[int, int]] = {}

    def load(self, folder: str) -> tuple[int, int] | None:
        return self.saved.get(folder)

    def advance(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        stored = self.saved.get(folder)
        if stored is None or stored[0] != uidvalidity or stored[1] < last_uid:
            self.saved[folder] = (uidvalidity, last_uid)


class DovecotMissing(RuntimeError):
    """No dovecot binary: the tests cannot run and must say how to fix it."""


class DovecotUnsupported(RuntimeError):
    """Dovecot 2.4+ rejects 2.3 configs (renamed settings); the IMAP tests are skipped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (Dovecot's `port = 0` disables, it does not pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def dovecot_version(binary: str = DOVECOT) -> tuple[int, ...]:
    """(2, 3, 19, 1) for "2.3.19.1 (9b53102964)"; raises DovecotMissing if not installed."""
    if not Path(binary).exists():
        raise DovecotMissing(f"{binary} not found. {INSTALL_HINT}")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"\s*(\d+(?:\.\d+)*)", out)
    if not match:
        raise DovecotMissing(f"cannot read the version of {binary}: {out!r}")
    return tuple(int(p) for p in match.group(1).split("."))


@dataclass(frozen=True)
class ImapAccount:
    """One user on the test server, with the shortcuts tests need to look behind the source."""

    server: Dovecot
    user: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.url_at(self.host)

    @property
    def imaps_url(self) -> str:
        """Implicit TLS; only on a server started with tls=True."""
        return f"imaps://{self.user}:{self.password}@{self.host}:{self.server.imaps_port}/INBOX"

    def url_at(self, host: str, folder: str = "INBOX") -> str:
        """The account's URL through another of the server's addresses (see Dovecot.OLD_HOST)."""
        return f"imap://{self.user}:{self.password}@{host}:{self.port}/{folder}"

    def client(self) -> IMAPClient:
        """A logged-in client of our own; the caller closes it (logout)."""
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        c.normalise_times = False
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX", at: datetime | None = None) -> None:
        """APPEND, as delivered at `at` (its INTERNALDATE: when the mailbox received it)."""
        with self.client() as c:
            c.append(folder, raw, msg_time=at)

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            return sorted(c.search(["ALL"]))

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            return dict(c.get_flags(c.search(["ALL"])))

    def kick(self, *, hard: bool = False) -> None:
        """Drop this user's server-side connections: politely (BYE) or, if hard, by SIGKILL."""
        if hard:
            self.server.kill_sessions(self.user)
        else:
            self.server.kick(self.user)


class Dovecot:
    """Dovecot 2.3 in the foreground on a free loopback port, rooted in a fresh /tmp directory.

    Usable as a context manager. As root, mail is stored as `nobody` (imap-login refuses to run
    as root); as any other user, every service runs as that user.
    """

    host = "127.0.0.1"
    # The same server, reached on other loopback addresses, advertises less (a `local` block
    # per address; it still implements everything, but a client goes by what is advertised).
    NO_MOVE_HOST = "127.0.0.2"  # no MOVE: the COPY + STORE + UID EXPUNGE fallback
    OLD_HOST = "127.0.0.3"  # no MOVE, no UIDPLUS, no IDLE: an old or stripped-down server
    listen = f"{host}, {NO_MOVE_HOST}, {OLD_HOST}"

    def __init__(self, binary: str = DOVECOT, extra_config: str = "", *, tls: bool = False) -> None:
        """`tls`: a self-signed certificate for 127.0.0.1 (`cert`), STARTTLS on `port` and
        implicit TLS on `imaps_port`. Clients trust it through `cert` (e.g. SSL_CERT_FILE)."""
        self.binary = binary
        self.extra_config = extra_config
        self.tls = tls
        self.port = 0
        self.imaps_port = 0
        self.root = Path()
        self.proc: subprocess.Popen[bytes] | None = None
        self._pool: list[tuple[str, str]] = []
        self._as_root = os.geteuid() == 0
        if self._as_root:
            nobody = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
        else:
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()

    # ----- life cycle ---------------------------------------------------------------------

    def start(self, ready_timeout: float = 10.0) -> Dovecot:
        version = dovecot_version(self.binary)
        if version >= (2, 4):
            raise DovecotUnsupported(
                f"Dovecot {'.'.join(map(str, version))} found; these fixtures write a 2.3 config "
                "(2.4 renamed mail_location, disable_plaintext_auth, %u ...)"
            )
        # Not pytest's tmp_path: /tmp/pytest-of-root is 0700 and `nobody` could not traverse it.
        self.root = Path(tempfile.mkdtemp(prefix="mailbridge-dovecot-", dir="/tmp"))
        self.root.chmod(0o755)
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", self.mail_uid, self.mail_gid)
        self.passwd.touch()
        self.passwd.chmod(0o644)
        self._pool = []
        self._refill_pool()  # before the first lookup, so these logins never wait
        self.port = free_port(self.host)
        if self.tls:
            self.imaps_port = free_port(self.host)
            self._make_certificate()
        self.conf.write_text(self._config())
        # Output to a file, not a pipe nobody drains: a full pipe would block the server.
        with (self.root / "stderr.log").open("wb") as err:
            self.proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=err
            )
        try:
            self._wait_for_banner(ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM, then kill if it has not gone within 15 s (an IDLE client can hold it ~10 s)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_for_banner(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                err = (self.root / "stderr.log").read_text(errors="replace")
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {err}{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError as exc:
                last_error = exc
            time.sleep(0.02)
        raise RuntimeError(f"dovecot not answering on port {self.port}: {last_error}\n{self.log()}")

    # ----- configuration ------------------------------------------------------------------

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def passwd(self) -> Path:
        return self.root / "passwd"

    @property
    def cert(self) -> Path:
        return self.root / "cert.pem"

    def _make_certificate(self) -> None:
        make_self_signed(self.root, self.host)

    def log(self) -> str:
        """The server's log so far, for failure messages."""
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""

    def _ssl_settings(self) -> str:
        if not self.tls:
            return "ssl = no"
        # The leading "<" makes Dovecot read the file.
        return f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.root / 'key.pem'}"

    def _config(self) -> str:
        root = self.root
        lines = f"""\
protocols = imap
listen = {self.listen}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{self._ssl_settings()}
disable_plaintext_auth = no
# XOAUTH2 here checks the bearer token against the passwd-file password (verified), so the
# source's oauth2_login path runs against a real server with the password as the "token".
auth_mechanisms = plain login xoauth2
imap_idle_notify_interval = 10 secs
# A test that logs in with a bad password must not slow every later login from 127.0.0.1:
# no failure delay, and no anvil auth penalty (auth cannot open a mode-0 socket, so the
# penalty is disabled; verified: otherwise the next good login waited 4 s).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
local {self.NO_MOVE_HOST} {{
  imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UNSELECT NAMESPACE UIDPLUS
}}
local {self.OLD_HOST} {{
  imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE UNSELECT NAMESPACE
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
  }}
}}
"""
        if not self._as_root:
            # Not root: every internal service runs as the invoking user, without chroots.
            me = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            lines += f"""\
default_internal_user = {me}
default_internal_group = {group}
default_login_user = {me}
service imap-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
"""
        return lines + self.extra_config

    # ----- users and mail -----------------------------------------------------------------

    def add_user(self, user: str, password: str, *, wait: bool = True) -> None:
        """Add a login while the server runs.

        Dovecot re-reads the passwd-file when its mtime or size changes, but it stats the file
        at most once per second (verified: a login in the same second as the previous lookup
        failed). So `wait` sleeps into the next wall-clock second, after which a login sees
        the new line.
        """
        self._write_users([(user, password)])
        if wait:
            time.sleep(1.02 - time.time() % 1)

    def new_account(self) -> ImapAccount:
        """A fresh user with an empty mailbox (Dovecot creates the Maildir at first login).

        Users come from a pool written ahead, so most tests never pay add_user's wait.
        """
        if not self._pool:
            self._refill_pool()
        user, password = self._pool.pop()
        return ImapAccount(self, user, password)

    def _refill_pool(self) -> None:
        fresh = [
            (f"user{secrets.token_hex(4)}", secrets.token_urlsafe(12)) for _ in range(USER_POOL)
        ]
        self._write_users(fresh)
        if self.proc is not None:
            time.sleep(1.02 - time.time() % 1)
        self._pool.extend(fresh)

    def _write_users(self, users: list[tuple[str, str]]) -> None:
        for user, password in users:
            if not re.fullmatch(r"[A-Za-z0-9._@-]+", user) or re.search(r"[:\s]", password):
                raise ValueError(f"unsafe user name or password for a passwd-file: {user!r}")
        with self.passwd.open("a", encoding="utf-8") as f:
            f.writelines(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users)

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def seed_maildir(self, user: str, raws: Iterable[bytes]) -> int:
        """Write messages straight into INBOX's `new/`, much faster than APPEND; returns the count.

        Dovecot assigns UIDs in file-name order when it next syncs the folder, so the names
        carry a zero-padded sequence number. Files are written to tmp/ and renamed, as the
        Maildir protocol asks, then handed to the mail uid.
        """
        home = self.maildir(user).parent
        maildir = self.maildir(user)
        for path in (home, maildir, maildir / "tmp", maildir / "new", maildir / "cur"):
            path.mkdir(exist_ok=True)
            os.chown(path, self.mail_uid, self.mail_gid)
        stamp = int(time.time())
        count = 0
        for i, raw in enumerate(raws):
            name = f"{stamp}.M{i:08d}P{os.getpid()}.seed,S={len(raw)}"
            tmp = maildir / "tmp" / name
            tmp.write_bytes(raw)
            os.chown(tmp, self.mail_uid, self.mail_gid)
            tmp.rename(maildir / "new" / name)
            count += 1
        return count

    def kick(self, user: str) -> None:
        """Drop every server-side connection of `user`; the client first gets `* BYE`."""
        self._doveadm("kick", user)

    def kill_sessions(self, user: str) -> None:
        """SIGKILL `user`'s imap processes: the client sees EOF with no BYE, like a dead link."""
        out = self._doveadm("who", "-1", user)
        for line in out.splitlines()[1:]:  # username proto pid ip
            fields = line.split()
            if len(fields) >= 3 and fields[0] == user and fields[2].isdigit():
                with contextlib.suppress(ProcessLookupError):  # it may have just exited
                    os.kill(int(fields[2]), signal.SIGKILL)

    def _doveadm(self, *args: str) -> str:
        done = subprocess.run(
            [DOVEADM, "-c", str(self.conf), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout


# ----- pytest fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One server for the whole session; tests isolate themselves with `imap_account`."""
    server = Dovecot()
    try:
        server.start()
    except DovecotUnsupported as exc:
        pytest.skip(str(exc))
    except DovecotMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dovecot_tls() -> Iterator[Dovecot]:
    """A second server with a self-signed certificate (`.cert`): STARTTLS and imaps."""
    server = Dovecot(tls=True)
    try:
        server.start()
    except DovecotUnsupported as exc:
        pytest.skip(str(exc))
    except DovecotMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_account(dovecot: Dovecot) -> ImapAccount:
    """A new user with an empty INBOX and an empty Processed folder."""
    return dovecot.new_account()
