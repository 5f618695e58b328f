"""Choosing a delivery unit and an officer for a case (pure, with the date passed in).

The unit, most explicit first:

1. a unit the member named in the subject: `[Highways]` anywhere in it, or `Highways:` at its
   start (after any Re:/Fwd:), matched against DU names case-insensitively. The member chose,
   so it beats every keyword ("subject-unit:Highways");
2. each DU's keywords (whole words or phrases, so "bins" is not found in "cabins") and regular
   expressions, on the subject and body; the unit with most hits wins and file order breaks
   ties ("keyword:pothole", "pattern:pot ?holes?").

The officer: where the unit splits by ward, the officer for the member's ward ("ward:Riverside"),
otherwise the unit's first lead. Someone inactive, absent (the file's absent_until, or the date
an out-of-office gave, through that day) or whose address bounces is skipped for their deputy
("deputy-of:o-singh"), then another available lead of the unit ("lead-instead-of:o-singh"),
then nobody: the unit's case waits in triage ("no-officer").

The steps join into the rule the timeline records, so a supervisor sees why:
"keyword:bins; ward:Riverside; deputy-of:o-lee".
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from mailbridge.directory import DeliveryUnit, Directory, Officer

RULE_MAX = 60  # Event.rule is a 60-character column


@dataclass(frozen=True)
class Route:
    delivery_unit: str | None
    officer: str | None
    rule: str  # e.g. "cc-officer", "keyword:fly-tipping; deputy-of:o-singh", "no-route"


NO_ROUTE = Route(None, None, "no-route")

_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw|sv|antw)\s*:)*\s*", re.IGNORECASE)
_LEADING_NAME = re.compile(r"([^:\[\]]{1,120}):")
_BRACKETED = re.compile(r"\[([^\[\]]{1,120})\]")
_WORD_CHAR = re.compile(r"\w")
_ASCII_WORD = (string.ascii_letters + string.digits + "_").encode()
_NOT_ASCII_WORD_AS_SPACE = bytes(b if b in _ASCII_WORD else ord(" ") for b in range(256))


class Router:
    """The directory's routing rules compiled once, and the text scanned once per message.

    All DUs' keywords are matched as whole words against the lower-cased text (see
    `_keywords_in`); each DU's own regular expressions run after them.
    """

    def __init__(self, directory: Directory):
        self.directory = directory
        keywords = {k.lower() for u in directory.delivery_units for k in u.keywords}
        self._keywords = tuple(
            (k, frozenset(_ascii_words(k))) for k in sorted(keywords, key=len, reverse=True)
        )
        self._patterns = {
            u.name: tuple((p, re.compile(p, re.IGNORECASE)) for p in u.patterns)
            for u in directory.delivery_units
        }

    def route_by_text(
        self,
        subject: str,
        body: str,
        today: date,
        ward: str = "",
        words: frozenset[bytes] | None = None,
    ) -> Route:
        """A new enquiry: the unit from its subject and text, the officer from the unit (and
        the member's `ward` where the unit splits by ward). `words`: text_words(subject, body),
        when it was read ahead (by the worker that parsed the email)."""
        unit = subject_unit(subject, self.directory)
        if unit is not None:
            return officer_route(unit, self.directory, today, f"subject-unit:{unit.name}", ward)
        text = _text(subject, body)
        found = self._keywords_in(text.lower(), words)
        best: tuple[int, DeliveryUnit, str] | None = None
        for unit in self.directory.delivery_units:
            hits = [f"keyword:{k}" for k in unit.keywords if k.lower() in found]
            hits += [f"pattern:{p}" for p, rx in self._patterns[unit.name] if rx.search(text)]
            if hits and (best is None or len(hits) > best[0]):
                best = (len(hits), unit, hits[0])
        if best is None:
            return NO_ROUTE
        _, unit, rule = best
        return officer_route(unit, self.directory, today, rule, ward)

    def _keywords_in(self, text: str, words: frozenset[bytes] | None = None) -> set[str]:
        """The keywords found as whole words in `text`, as one alternation of them all (longest
        first) finds them: left to right, a match hiding any keyword that overlaps it.

        Only the keywords whose ASCII words are all among the text's are tried (a set look-up
        each, where a search for each would take a pass over the text), and the alternation's
        "no word character before" is checked here: a pattern that starts with a literal lets
        the regular-expression engine skip to its first letters, where one that starts with a
        look-behind is tried at every character.
        `words`: _ascii_words(text), when already read.
        """
        words = _ascii_words(text) if words is None else words
        present = tuple(k for k, needed in self._keywords if needed <= words)
        found: set[str] = set()
        if not present:
            return found
        alternation = _alternation(present)
        at = 0
        while at <= len(text) and (match := alternation.search(text, at)):
            start, end = match.span()
            if start and _WORD_CHAR.match(text, start - 1):
                at = start + 1  # inside a word: the look-behind would have moved on
                continue
            found.add(match.group())
            at = max(end, start + 1)  # on past an empty keyword's match too
        return found

    def route_to_unit(self, unit: DeliveryUnit, today: date, ward: str = "") -> Route:
        """A case sent to a named unit (#wrong-service Highways) goes to its available lead."""
        return officer_route(unit, self.directory, today, "named-unit", ward)

    def route_to_officer(self, officer: Officer, today: date | None = None) -> Route:
        """A cc'd enquiry addressed to a known officer is theirs: they already have it.

        Given `today`, an officer who is not there is covered as a lead would be.
        """
        unit = (
            self.directory.delivery_unit(officer.delivery_unit) if officer.delivery_unit else None
        )
        unit_name = unit.name if unit else officer.delivery_unit or None
        if today is None or available(officer, today):
            return Route(unit_name, officer.id, "cc-officer")
        chosen, steps = cover_for(officer.id, unit, self.directory, today)
        return Route(unit_name, chosen, _rule(["cc-officer", *steps]))


def text_words(subject: str, body: str) -> frozenset[bytes]:
    """What decides which keywords are worth looking for in an enquiry: the ASCII words of
    its lower-cased text. Pure, and over a long email most of the cost of routing it, so the
    worker that parses an email reads this too."""
    return frozenset(_ascii_words(_text(subject, body).lower()))


def _text(subject: str, body: str) -> str:
    return f"{subject}\n{body}"


def _ascii_words(text: str) -> set[bytes]:
    """The runs of ASCII letters, digits and "_" in `text`. Where a keyword is in a text as a
    whole word, its runs are among the text's: every other character (a non-ASCII letter too,
    which at worst lets a keyword through to the exact match) ends a run in both alike."""
    return set(text.encode("utf-8", "surrogatepass").translate(_NOT_ASCII_WORD_AS_SPACE).split())


@lru_cache(maxsize=256)  # the same few keywords are in message after message
def _alternation(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """`keywords` as one pattern, tried in their order, each ending at the end of a word."""
    return re.compile(rf"(?:{'|'.join(map(re.escape, keywords))})(?!\w)")


def subject_unit(subject: str, directory: Directory) -> DeliveryUnit | None:
    """The DU named in the subject: `[Highways]` anywhere, or `Highways:` at the start."""
    subject = subject or ""
    bare = _REPLY_PREFIX.sub("", subject, count=1)
    leading = _LEADING_NAME.match(bare)
    names = [leading.group(1)] if leading else []
    names += _BRACKETED.findall(subject)
    for name in names:
        unit = directory.delivery_unit(name.strip())
        if unit is not None:
            return unit
    return None


def officer_route(
    unit: DeliveryUnit, directory: Directory, today: date, rule: str, ward: str = ""
) -> Route:
    """`unit`, with its officer for `ward` (or its first lead), covered if not there."""
    steps = [rule]
    split = unit.for_ward(ward)
    if split is not None:
        steps.append(f"ward:{split[0]}")
    first = split[1] if split else unit.leads[0] if unit.leads else None
    if first is None:
        return Route(unit.name, None, _rule([*steps, "no-officer"]))
    chosen, cover = cover_for(first, unit, directory, today)
    return Route(unit.name, chosen, _rule(steps + cover))


def instead_of(
    officer_id: str, unit_name: str | None, directory: Directory, today: date, why: str
) -> Route:
    """Where a case goes when its officer is not there (a bounce, an out-of-office, a leaver):
    their deputy, another lead of the case's unit, or triage within the unit."""
    unit = directory.delivery_unit(unit_name) if unit_name else None
    chosen, steps = cover_for(officer_id, unit, directory, today, skip_first=True)
    return Route(unit.name if unit else unit_name, chosen, _rule([why, *steps]))


def cover_for(
    officer_id: str,
    unit: DeliveryUnit | None,
    directory: Directory,
    today: date,
    *,
    skip_first: bool = False,
) -> tuple[str | None, list[str]]:
    """`officer_id` if they are there; else their deputy, else another available lead of
    `unit`, else nobody. Returns the officer chosen and the steps taken.

    `skip_first`: they are known not to be there, though `directory` may not say so yet (the
    bounce being handled is not laid over it until the message is done).
    """
    officer = directory.officer(officer_id)
    if not skip_first and available(officer, today):
        return officer_id, []
    deputy = directory.officer(officer.deputy) if officer and officer.deputy else None
    if deputy is not None and deputy.id != officer_id and available(deputy, today):
        return deputy.id, [f"deputy-of:{officer_id}"]
    for lead in unit.leads if unit else ():
        if lead != officer_id and available(directory.officer(lead), today):
            return lead, [f"lead-instead-of:{officer_id}"]
    return None, ["no-officer"]


def available(officer: Officer | None, today: date) -> bool:
    """Active, not away (the file's or an out-of-office's date, through that day), and their
    address does not bounce."""
    if officer is None or not officer.active or officer.learnt.undeliverable_at is not None:
        return False
    away = (officer.absent_until, officer.learnt.reported_absent_until)
    return not any(until is not None and until >= today for until in away)


def _rule(steps: list[str]) -> str:
    """The steps as one rule that fits the timeline's column; a long first step (a regular
    expression) is shortened, never the officer steps a supervisor reads for."""
    rule = "; ".join(steps)
    if len(rule) <= RULE_MAX:
        return rule
    tail = "".join(f"; {step}" for step in steps[1:])
    head = steps[0][: max(RULE_MAX - len(tail) - 1, 8)]
    return f"{head}…{tail}"[:RULE_MAX]
