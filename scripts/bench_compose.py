"""Rendering, composing and serialising automatic emails: CPU microseconds per email.

Run by hand:

    python scripts/bench_compose.py [--iterations 2000] [--repeat 5]

Two emails, rendered from the bundled templates by one Renderer (as a worker keeps one),
composed with `compose()` and serialised to the outbox's CRLF wire bytes, `--iterations`
times each:

- ack: the member's acknowledgement, a short text part with its HTML alternative;
- forward: the officer's copy, an 8 KB enquiry in the text and the 12 KB original attached.

Columns: render alone; compose() of the rendered body alone; wire_bytes() of one composed
message, again and again (so a boundary the generator chose the first time is reused); the
total, compose and serialise together, as earlier runs reported it; and all three, what
Draft.build costs a worker per email. Each is the best of `--repeat` runs of the process's CPU
time (the least disturbed by the rest of the machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import Message
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailbridge.cases.commands import HELP_LINES  # noqa: E402
from mailbridge.outbound.compose import (  # noqa: E402
    Thread,
    compose,
    tagged_subject,
    thread_under,
    wire_bytes,
)
from mailbridge.outbound.render import Rendered, Renderer  # noqa: E402
from tests.mail import make_email  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
MAILBOX = "enquiries@council.example"
REFERENCE = "ME-2026-00123"
PARAGRAPH = (
    "The streetlight outside 14 Acacia Avenue has been flickering on and off for three weeks "
    "now, and residents tell me the one at the corner with Beech Road is out altogether. "
    "It's very dark on the footpath to the school – could someone look at both, and let me "
    "know when they'll be fixed? The resident at no. 16 says she reported it online on "
    "2 November (ref. SL-88213) but heard nothing back. Costs of £40 for a temporary lamp "
    "were mentioned.\n\n"
)


def enquiry_body(size: int) -> str:
    """A member's long enquiry, as a mail client sends it: paragraphs, a few non-ASCII marks."""
    return (PARAGRAPH * (size // len(PARAGRAPH) + 1))[:size].rstrip() + "\n"


def case_view(subject: str) -> dict[str, object]:
    return {
        "reference": REFERENCE,
        "subject": subject,
        "origin": "to",
        "status": "awaiting_response",
        "delivery_unit": "Street Lighting",
        "officer_name": "Sam Patel",
        "due": date(2026, 12, 4),
        "target": None,
    }


@dataclass(frozen=True)
class Email:
    """One email, its two steps apart, so that each can be timed alone."""

    render: Callable[[], Rendered]
    compose: Callable[[Rendered], Message]


def ack_email(renderer: Renderer) -> Email:
    subject = "Streetlights out on Acacia Avenue"
    context = dict(
        mailbox=MAILBOX,
        help_lines=HELP_LINES,
        case=case_view(subject),
        member_name="Cllr Jane Smith",
        copied=["resident@example.org", "ward.colleague@council.example"],
        parts=[],
    )
    thread = thread_under("<m1@mail.example>", ["<m0@mail.example>"])
    return Email(
        lambda: renderer.render("ack", **context),
        lambda body: compose_one(
            "ack", body, thread, tagged_subject(subject, REFERENCE), "jane.smith@council.example"
        ),
    )


def forward_email(renderer: Renderer) -> Email:
    subject = "Streetlights out on Acacia Avenue"
    text = enquiry_body(8_000)
    original = make_email(
        "Cllr Jane Smith <jane.smith@council.example>",
        [MAILBOX],
        subject,
        enquiry_body(12_000),
        cc=["resident@example.org"],
    )
    context = dict(
        mailbox=MAILBOX,
        help_lines=HELP_LINES,
        case=case_view(subject),
        officer_name="Sam Patel",
        member_name="Cllr Jane Smith",
        member_address="jane.smith@council.example",
        ward="Riverside",
        followup=False,
        received=NOW,
        subject=subject,
        body=text,
        part_of=None,
        attachments=[],
        copied=["resident@example.org"],
        confidential=False,
        rerouted_from=None,
        history=[],
    )
    return Email(
        lambda: renderer.render("forward", **context),
        lambda body: compose_one(
            "forward",
            body,
            Thread(),
            tagged_subject(subject, REFERENCE, reply=False),
            "sam.patel@council.example",
            original=original,
        ),
    )


def compose_one(
    kind: str,
    body: Rendered,
    thread: Thread,
    subject: str,
    to: str,
    original: bytes | None = None,
) -> Message:
    return compose(
        from_name="Members' Enquiries",
        from_address=MAILBOX,
        to=[to],
        subject=subject,
        body=body,
        message_id=f"<{kind}.{REFERENCE}.1234@council.example>",
        now=NOW,
        reference=REFERENCE,
        thread=thread,
        reply_to=f"enquiries+{REFERENCE}@council.example",
        auto_submitted="auto-generated" if kind == "forward" else "auto-replied",
        original=original,
    )


def best_us(run: Callable[[], object], iterations: int, repeat: int) -> float:
    """CPU microseconds per call, the best of `repeat` runs of `iterations` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(iterations):
            run()
        best = min(best, time.process_time() - start)
    return best / iterations * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    table = Table(title=f"render, compose, serialise: CPU µs per email (best of {args.repeat})")
    columns = ("email", "wire bytes", "render", "compose", "serialise", "total", "with render")
    for column in columns:
        table.add_column(column, justify="left" if column == "email" else "right")
    renderer = Renderer()
    for name, mail in (("ack", ack_email(renderer)), ("forward", forward_email(renderer))):
        body = mail.render()
        message = mail.compose(body)
        timings = [
            best_us(run, args.iterations, args.repeat)
            for run in (
                mail.render,
                lambda m=mail, b=body: m.compose(b),
                lambda m=message: wire_bytes(m),
                lambda m=mail, b=body: wire_bytes(m.compose(b)),
                lambda m=mail: wire_bytes(m.compose(m.render())),
            )
        ]
        size = f"{len(wire_bytes(message)):,}"
        table.add_row(name, size, *(f"{us:.1f}" for us in timings))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
