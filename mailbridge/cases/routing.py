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


def available(officer: Officer | None, today: date) -> bool:
    return bool(
        officer
        and officer.active
        and (officer.absent_until is None or officer.absent_until < today)
    )


def lead_for(unit: DeliveryUnit, directory: Directory, today: date) -> Officer | None:
    return next((o for o in map(directory.officer, unit.leads) if available(o, today)), None)


def route_by_text(subject: str, body: str, directory: Directory, today: date) -> Route:
    text = f"{subject}\n{body}"
    best: tuple[int, DeliveryUnit, str] | None = None
    for unit in directory.delivery_units:
        hits = [
            f"keyword:{k}"
            for k in unit.keywords
            if re.search(rf"(?<!\w){re.escape(k)}(?!\w)", text, re.IGNORECASE)
        ]
        hits += [f"pattern:{p}" for p in unit.patterns if re.search(p, text, re.IGNORECASE)]
        if hits and (best is None or len(hits) > best[0]):
            best = (len(hits), unit, hits[0])
    if best is None:
        return NO_ROUTE
    _, unit, rule = best
    officer = lead_for(unit, directory, today)
    return Route(unit.name, officer.id if officer else None, rule)


def route_to_officer(officer: Officer, directory: Directory) -> Route:
    """A cc'd enquiry addressed to a known officer is theirs: they already have it."""
    unit = directory.delivery_unit(officer.delivery_unit) if officer.delivery_unit else None
    return Route(unit.name if unit else officer.delivery_unit or None, officer.id, "cc-officer")
