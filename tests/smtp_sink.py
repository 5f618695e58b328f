"""An aiosmtpd SMTP sink on loopback that records what it accepts, and the fixture that starts it.

Loaded as a pytest plugin (`pytest_plugins = ["tests.smtp_sink"]`); `SmtpSink` works outside
pytest too (benchmarks). Faults are injected here, at the edge, never by mocking the client:
`stop()`/`start()` take the server away and bring it back on the same port; `replies` gives a
recipient a canned RCPT reply ("550 5.1.1 no such user", "451 4.3.0 try later"); `delay`
slows every DATA; `drop_after_data` accepts a message and then hangs up before saying so,
the crash window in which a client cannot know that its mail went through.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.certs import make_self_signed


def free_port(host: str = "127.0.0.1") -> int:
    # Controller(port=0) does not pick a port: it then connects to port 0 to "trigger" itself.
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Received:
    """One message the sink accepted: its envelope, exact bytes and threading headers."""

    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    headers: dict[str, str]


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        reply = self.sink.replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        self.sink._record(envelope)
        with self.sink._lock:
            drop = self.sink.drop_after_data > 0
            if drop:
                self.sink.drop_after_data -= 1
        if drop and server.transport is not None:
            server.transport.abort()  # stored, but the client never hears "250"
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts, thread-safely.

    `tls`: None, "starttls" (offered on the plain port) or "implicit" (smtps); the certificate
    is self-signed for 127.0.0.1 and trusted through `cert` (e.g. SSL_CERT_FILE). `users`:
    {name: password} turns on AUTH (PLAIN/LOGIN) and requires it before MAIL.
    """

    host = "127.0.0.1"

    def __init__(self, *, tls: str | None = None, users: dict[str, str] | None = None):
        self.tls = tls
        self.users = users or {}
        self.port = free_port(self.host)
        self.replies: dict[str, str] = {}
        self.delay = 0.0
        self.drop_after_data = 0
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._controller: Controller | None = None
        self._servers: list[SMTP] = []
        self._dir = Path(tempfile.mkdtemp(prefix="mailbridge-smtp-sink-"))
        self.cert = self._dir / "cert.pem"
        if tls:
            self._make_certificate()

    # ----- life cycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpSink:
        """Listen (again) on the same port."""
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = {}
        if self.tls:
            import ssl

            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cert, self._dir / "key.pem")
            kwargs["ssl_context" if self.tls == "implicit" else "tls_context"] = ctx
        if self.users:
            kwargs |= {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        sink = self

        class _Controller(Controller):
            def factory(self) -> SMTP:
                with warnings.catch_warnings():  # AUTH without TLS: on loopback, on purpose
                    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
                    server = super().factory()
                with sink._lock:
                    sink._servers.append(server)
                return server

        controller = _Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (clients see the server go away)."""
        controller, self._controller = self._controller, None
        if controller is None:
            return

        def _drop_all() -> None:
            with self._lock:
                servers, self._servers = self._servers, []
            for server in servers:
                if server.transport is not None:
                    server.transport.abort()

        controller.loop.call_soon_threadsafe(_drop_all)
        controller.stop()

    def close(self) -> None:
        self.stop()
        for path in self._dir.iterdir():
            path.unlink()
        self._dir.rmdir()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- what arrived ---------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def _record(self, envelope: Envelope) -> None:
        raw = envelope.original_content or b""
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)

        def header(name: str) -> str | None:
            value = headers.get(name)
            return " ".join(str(value).split()) if value is not None else None

        received = Received(
            envelope_from=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            raw=raw,
            message_id=header("Message-ID"),
            in_reply_to=header("In-Reply-To"),
            references=header("References"),
            headers={k: " ".join(str(v).split()) for k, v in headers.items()},
        )
        with self._lock:
            self._received.append(received)

    # ----- set-up helpers -------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.users.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(success=ok, handled=False)

    def _make_certificate(self) -> None:
        make_self_signed(self._dir)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A fresh, running sink for one test."""
    with SmtpSink() as sink:
        yield sink
