"""An automatic email before it is rendered and composed.

What the outbox row needs at once (recipients, subject, Message-ID) is known before a byte is
composed, so the row is queued in the transaction of the change that causes it, and the
rendering, MIME composition and serialisation happen right here (`build`) or, in a busy batch,
in a worker process (outbound/compose_ahead.py), with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mailbridge.outbound.compose import Attachment, Thread, compose, wire_bytes
from mailbridge.outbound.render import Renderer


@dataclass(frozen=True)
class Draft:
    template: str  # templates/mail/<template>.txt.j2 (and .html.j2 where there is one)
    context: dict[str, Any]  # plain values only: it travels to a worker process
    from_name: str
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    message_id: str
    now: datetime
    reference: str | None
    thread: Thread
    reply_to: str | None
    auto_submitted: str
    attachments: tuple[Attachment, ...] = ()
    original: bytes | None = None

    def build(self, renderer: Renderer) -> bytes:
        """The email's wire bytes: rendered, composed and serialised."""
        return wire_bytes(
            compose(
                from_name=self.from_name,
                from_address=self.from_address,
                to=self.to,
                cc=self.cc,
                subject=self.subject,
                body=renderer.render(self.template, **self.context),
                message_id=self.message_id,
                now=self.now,
                reference=self.reference,
                thread=self.thread,
                reply_to=self.reply_to,
                auto_submitted=self.auto_submitted,
                attachments=self.attachments,
                original=self.original,
            )
        )


_RENDERERS: dict[Path | None, Renderer] = {}  # in a worker: one per template directory


def build_drafts(template_dir: Path | None, drafts: list[Draft]) -> list[bytes]:
    """In a worker process (so this module imports no database code): each draft's wire
    bytes; any failure fails them all, and the daemon builds them again itself."""
    renderer = _RENDERERS.get(template_dir)
    if renderer is None:
        renderer = _RENDERERS[template_dir] = Renderer(template_dir)
    return [draft.build(renderer) for draft in drafts]
