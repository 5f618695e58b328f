"""Choosing a delivery unit and an officer for a new case (pure, with the date passed in).

This first cut matches each DU's keywords and regular expressions against the subject and
body and picks the DU with most hits (file order breaks ties); its officer is the first lead
who is active and not absent. No DU, or no officer available, means triage. The rule that
fired is returned so the timeline can show a supervisor why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from mailbridge.directory import DeliveryUnit, Directory, Officer


@dataclass(frozen=True)
class Route:
    delivery_unit: str | None
    officer: str | None
    rule: str  # e.g. "cc-officer", "keyword:fly-tipping", "no-route"


NO_ROUTE = Route(None, None, "no-route")


class Router:
    """The directory's routing rules compiled once, and the text scanned once per message.

    All DUs' keywords go into one alternation (longest first), matched as whole words against
    the lower-cased text in a single pass; each DU's own regular expressions run after it.
    """

    def __init__(self, directory: Directory):
        self.directory = directory
        keywords = sorted(
            {k.lower() for u in directory.delivery_units for k in u.keywords}, key=len, reverse=True
        )
        self._keywords = (
            re.compile(rf"(?<!\w)(?:{'|'.join(map(re.escape, keywords))})(?!\w)")
            if keywords
            else None
        )
        self._patterns = {
            u.name: tuple((p, re.compile(p, re.IGNORECASE)) for p in u.patterns)
            for u in directory.delivery_units
        }

    def route_by_text(self, subject: str, body: str, today: date) -> Route:
        text = f"{subject}\n{body}"
        found = set(self._keywords.findall(text.lower())) if self._keywords else set()
        best: tuple[int, DeliveryUnit, str] | None = None
        for unit in self.directory.delivery_units:
            hits = [f"keyword:{k}" for k in unit.keywords if k.lower() in found]
            hits += [f"pattern:{p}" for p, rx in self._patterns[unit.name] if rx.search(text)]
            if hits and (best is None or len(hits) > best[0]):
                best = (len(hits), unit, hits[0])
        if best is None:
            return NO_ROUTE
        _, unit, rule = best
        officer = lead_for(unit, self.directory, today)
        return Route(unit.name, officer.id if officer else None, rule)

    def route_to_unit(self, unit: DeliveryUnit, today: date) -> Route:
        """A case sent to a named unit (#wrong-service Highways) goes to its available lead."""
        officer = lead_for(unit, self.directory, today)
        return Route(unit.name, officer.id if officer else None, "named-unit")

    def route_to_officer(self, officer: Officer) -> Route:
        """A cc'd enquiry addressed to a known officer is theirs: they already have it."""
        unit = (
            self.directory.delivery_unit(officer.delivery_unit) if officer.delivery_unit else None
        )
        return Route(unit.name if unit else officer.delivery_unit or None, officer.id, "cc-officer")


def available(officer: Officer | None, today: date) -> bool:
    return bool(
        officer
        and officer.active
        and (officer.absent_until is None or officer.absent_until < today)
    )


def lead_for(unit: DeliveryUnit, directory: Directory, today: date) -> Officer | None:
    return next((o for o in map(directory.officer, unit.leads) if available(o, today)), None)
