"""How queued bytes leave: SMTP(S) through aiosmtplib, or .eml files for the file outbox.

The only module that imports aiosmtplib. A sender owns the network and reports in two
exceptions: TransientSendError (4xx, connection trouble: try again later) and
PermanentSendError (5xx, certificate or address errors: the team must look). What to do about
either is the sending loop's policy, not the sender's. Recipients refused while others were
accepted do not raise: they come back from `send` (aiosmtplib's partial-refusal behaviour,
notes/libraries.md §3).
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Protocol

import aiosmtplib

from mailbridge.config import Endpoint

Refused = dict[str, tuple[int, str]]


class SendError(Exception):
    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class TransientSendError(SendError):
    """Try again later: a 4xx reply, a timeout, a refused or dropped connection."""


class PermanentSendError(SendError):
    """Will never work as it is: a 5xx reply, a bad certificate, an unusable address."""


class Delivery(Protocol):
    async def send(self, raw: bytes, envelope_from: str, recipients: list[str]) -> Refused:
        """Deliver `raw` as is; the recipients refused while others were accepted."""
        ...

    async def close(self) -> None:
        """Let go of any connection; the next send opens a new one."""
        ...


def retryable(exc: BaseException) -> bool:
    """notes/libraries.md §3, verified against aiosmtpd: 4xx and connection trouble retry."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= r.code < 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500  # 5xx = permanent
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # a configuration error; before OSError, which it also is
    return isinstance(
        exc,
        (
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPTimeoutError,
            OSError,
        ),
    )


def describe(exc: BaseException) -> str:
    """The server's words where there are some, for last_error and the case timeline."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return exc.recipients[0].code
    return getattr(exc, "code", None) if isinstance(exc, aiosmtplib.SMTPException) else None


class SmtpSender:
    """SMTP with STARTTLS when offered (smtp://) or implicit TLS (smtps://), optional login.

    One connection serves a whole batch; it is checked with NOOP before each message and
    reopened if the server has dropped it. After any error it is dropped, so the next message
    starts on a clean session.
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float = 30, starttls: bool = True):
        """`starttls=False` sends smtp:// in clear even if STARTTLS is offered: only for a
        local relay or tests, and only through the explicit `[outbox] starttls = "never"`."""
        if endpoint.scheme not in ("smtp", "smtps"):
            raise ValueError(f"not an SMTP endpoint: {endpoint.redacted()}")
        self.endpoint = endpoint
        self.timeout = timeout
        self.starttls = starttls
        self._smtp: aiosmtplib.SMTP | None = None

    async def send(self, raw: bytes, envelope_from: str, recipients: list[str]) -> Refused:
        try:
            smtp = await self._connection()
            errors, _ = await smtp.sendmail(envelope_from, recipients, raw)
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            # ValueError: an address aiosmtplib will not put on the wire (permanent).
            # An error after DATA was sent (a read timeout, a dropped connection) is
            # ambiguous: the server may have the message. Retrying resends the same bytes.
            await self.close()
            error = TransientSendError if retryable(exc) else PermanentSendError
            raise error(describe(exc), _code(exc)) from exc
        return {address: (reply.code, reply.message) for address, reply in errors.items()}

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.noop()
                return self._smtp
            except (aiosmtplib.SMTPException, OSError):  # idle time-out, server restart
                await self.close()
        implicit = self.endpoint.scheme == "smtps"
        smtp = aiosmtplib.SMTP(
            hostname=self.endpoint.host,
            port=self.endpoint.port,
            use_tls=implicit,
            # None: STARTTLS whenever the server offers it, with certificate checks.
            start_tls=False if implicit or not self.starttls else None,
            timeout=self.timeout,
            # Log in only with a password: smtp://user@relay names the account, and the
            # password may simply not be needed on a trusted relay.
            username=self.endpoint.username if self.endpoint.password else None,
            password=self.endpoint.password or None,
        )
        await smtp.connect()
        self._smtp = smtp
        return smtp


class FileSender:
    """The file outbox: one .eml per message, named from its Message-ID, written atomically.

    Sending the same row again (after a crash) rewrites the same file, never a second one.
    The bytes are the outbox row's, CRLF line endings and all.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    async def send(self, raw: bytes, envelope_from: str, recipients: list[str]) -> Refused:
        final = self.path / eml_name(raw)
        tmp = self.path / f".{final.name}.{os.getpid()}.tmp"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)  # readers see the whole file or none of it
            _fsync_dir(self.path)
        except OSError as exc:  # a full disk clears; retry
            tmp.unlink(missing_ok=True)
            raise TransientSendError(describe(exc)) from exc
        return {}

    async def close(self) -> None:
        return None


def eml_name(raw: bytes) -> str:
    """`<readable Message-ID>.<hash of it>.eml`: stable per message, safe as a file name.

    The hash keeps two Message-IDs that clean up to the same text from sharing a file.
    """
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    message_id = str(headers.get("Message-ID") or "").strip()
    if not message_id:
        return f"{hashlib.sha256(raw).hexdigest()[:32]}.eml"
    readable = re.sub(r"[^A-Za-z0-9._@+=-]", "_", message_id.strip("<>"))[:120].lstrip(".")
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{readable}.{digest}.eml"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
