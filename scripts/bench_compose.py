"""Composing and serialising automatic emails: microseconds per email, in real time.

Run by hand:

    python scripts/bench_compose.py [--iterations 2000] [--repeat 5]

Two emails, rendered once from the bundled templates, then composed with `compose()` and
serialised to the outbox's CRLF wire bytes `--iterations` times each:

- ack: the member's acknowledgement, a short text part with its HTML alternative;
- forward: the officer's copy, an 8 KB enquiry in the text and the 12 KB original attached.

Columns: compose() alone; wire_bytes() of one composed message, again and again (so a boundary
the generator chose the first time is reused); and the two together, the figure that counts.
Each is the best of `--repeat` runs (the least disturbed by the rest of the machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
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


def ack_email() -> Callable[[], Message]:
    subject = "Streetlights out on Acacia Avenue"
    body = Renderer().render(
        "ack",
        mailbox=MAILBOX,
        help_lines=HELP_LINES,
        case=case_view(subject),
        member_name="Cllr Jane Smith",
        copied=["resident@example.org", "ward.colleague@council.example"],
        parts=[],
    )
    thread = thread_under("<m1@mail.example>", ["<m0@mail.example>"])
    return lambda: compose_one(
        "ack", body, thread, tagged_subject(subject, REFERENCE), "jane.smith@council.example"
    )


def forward_email() -> Callable[[], Message]:
    subject = "Streetlights out on Acacia Avenue"
    text = enquiry_body(8_000)
    original = make_email(
        "Cllr Jane Smith <jane.smith@council.example>",
        [MAILBOX],
        subject,
        enquiry_body(12_000),
        cc=["resident@example.org"],
    )
    body = Renderer().render(
        "forward",
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
    return lambda: compose_one(
        "forward",
        body,
        Thread(),
        tagged_subject(subject, REFERENCE, reply=False),
        "sam.patel@council.example",
        original=original,
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
    """Microseconds per call, the best of `repeat` runs of `iterations` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(iterations):
            run()
        best = min(best, time.perf_counter() - start)
    return best / iterations * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    table = Table(title=f"compose + serialise, µs per email (best of {args.repeat})")
    for column in ("email", "wire bytes", "compose", "serialise", "total"):
        table.add_column(column, justify="left" if column == "email" else "right")
    for name, make in (("ack", ack_email()), ("forward", forward_email())):
        message = make()
        composed = best_us(make, args.iterations, args.repeat)
        serialised = best_us(lambda m=message: wire_bytes(m), args.iterations, args.repeat)
        total = best_us(lambda m=make: wire_bytes(m()), args.iterations, args.repeat)
        size = len(wire_bytes(message))
        table.add_row(name, f"{size:,}", f"{composed:.1f}", f"{serialised:.1f}", f"{total:.1f}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
