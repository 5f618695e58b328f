"""Which case does an inbound message belong to? The candidates, most specific first (pure).

DESIGN §3: a plus-address on our mailbox, then a subject tag (a part's tag before its
parent's), then In-Reply-To / References naming a message we stored or sent. Bounces and
auto-replies also name the message they are about inside their own body; those come last.
The store resolves candidates in order and the first one that names a case wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbridge.cases.references import reference_pattern, subject_tag_pattern
from mailbridge.config import ReferenceFormat
from mailbridge.ingest.parse import ParsedMessage


@dataclass(frozen=True)
class Candidate:
    # plus-address | subject-tag | in-reply-to | references | embedded-message | embedded-subject
    rule: str
    reference: str | None = None  # upper-cased case reference
    message_id: str | None = None  # "<id>"


def plus_address_references(addresses: list[str], mailbox: str, fmt: ReferenceFormat) -> list[str]:
    """References carried as met+ME-2026-00123@council… on our own mailbox address."""
    local, _, domain = mailbox.lower().partition("@")
    pattern = reference_pattern(fmt)
    found = []
    for address in addresses:
        a_local, _, a_domain = address.lower().partition("@")
        base, plus, tag = a_local.partition("+")
        if plus and base == local and a_domain == domain and pattern.fullmatch(tag):
            found.append(tag.upper())
    return found


def subject_references(subject: str, fmt: ReferenceFormat) -> list[str]:
    """Tagged references in a subject, parts before parents, otherwise in order of appearance."""
    tags = [m.group(1).upper() for m in subject_tag_pattern(fmt).finditer(subject or "")]
    parts = [t for t in tags if t.count("-") > 2]
    return _unique(parts + [t for t in tags if t not in parts])


def match_candidates(msg: ParsedMessage, *, mailbox: str, fmt: ReferenceFormat) -> list[Candidate]:
    recipients = [a.email for a in (*msg.to, *msg.cc)] + list(msg.delivered_to)
    out = [
        Candidate("plus-address", reference=r)
        for r in plus_address_references(recipients, mailbox, fmt)
    ]
    out += [Candidate("subject-tag", reference=r) for r in subject_references(msg.subject, fmt)]
    out += [Candidate("in-reply-to", message_id=m) for m in msg.in_reply_to]
    out += [Candidate("references", message_id=m) for m in reversed(msg.references)]
    out += [Candidate("embedded-message", message_id=m) for m in msg.embedded_message_ids]
    for subject in msg.embedded_subjects:
        out += [
            Candidate("embedded-subject", reference=r) for r in subject_references(subject, fmt)
        ]
    return _unique(out)


def _unique(items: list) -> list:
    seen = set()
    return [x for x in items if not (x in seen or seen.add(x))]
