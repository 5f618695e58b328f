"""The directory of people: members, delivery units and officers, as plain data.

It is read from a TOML file (see config/directory.example.toml) and answers the questions the
pipeline asks of an address: is this a member, an officer, which DU? Addresses compare
case-insensitively. Loading collects every problem with the file and entry that caused it;
`review` adds the warnings that depend on the date (an escalation list not reviewed lately).

What mail teaches about an officer (an out-of-office's return date, a bounce from their
address) is not in the file: it lives in the database and is laid over the file's entries with
`Directory.with_learnt`, so that routing stays a pure function of the directory and the date.
"""

from __future__ import annotations

import re
import tomllib
from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, get_type_hints

from mailbridge.config import ADDRESS_RE, Problem


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    addresses: tuple[str, ...]
    ward: str = ""
    party: str = ""
    digest: bool = False


@dataclass(frozen=True)
class DeliveryUnit:
    name: str
    leads: tuple[str, ...] = ()
    escalation_manager: str = ""
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    confidential: bool = False
    escalation_reviewed: date | None = None
    # A DU that splits by area: ward -> the officer who takes that ward's cases (TOML:
    # wards = { "Riverside" = "o-singh" }); wards not listed go to the leads.
    wards: tuple[tuple[str, str], ...] = ()

    def for_ward(self, ward: str) -> tuple[str, str] | None:
        """(the ward as the file spells it, its officer id) if this DU splits off `ward`."""
        wanted = ward.casefold()
        return next(((w, o) for w, o in self.wards if ward and w.casefold() == wanted), None)


@dataclass(frozen=True)
class Learnt:
    """What mail has taught about an officer; kept in the officer table, never in the file."""

    reported_absent_until: date | None = None  # an out-of-office's last day away
    undeliverable_at: datetime | None = None  # their address bounced
    undeliverable_reason: str = ""


@dataclass(frozen=True)
class Officer:
    id: str
    name: str
    addresses: tuple[str, ...]
    delivery_unit: str = ""
    manager: str = ""
    deputy: str = ""
    active: bool = True
    absent_until: date | None = None
    learnt: Learnt = Learnt()  # not read from the file: see Directory.with_learnt


@dataclass(frozen=True)
class Directory:
    members: tuple[Member, ...] = ()
    delivery_units: tuple[DeliveryUnit, ...] = ()
    officers: tuple[Officer, ...] = ()
    _members_by_address: dict[str, Member] = field(default_factory=dict, repr=False, compare=False)
    _officers_by_address: dict[str, Officer] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for m in self.members:
            for a in m.addresses:
                self._members_by_address.setdefault(a.lower(), m)
        for o in self.officers:
            for a in o.addresses:
                self._officers_by_address.setdefault(a.lower(), o)

    def member_by_address(self, address: str) -> Member | None:
        return self._members_by_address.get(address.lower())

    def officer_by_address(self, address: str) -> Officer | None:
        return self._officers_by_address.get(address.lower())

    def officer(self, officer_id: str) -> Officer | None:
        return next((o for o in self.officers if o.id == officer_id), None)

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    def delivery_unit(self, name: str) -> DeliveryUnit | None:
        wanted = name.casefold()
        return next((d for d in self.delivery_units if d.name.casefold() == wanted), None)

    def with_learnt(self, learnt: Mapping[str, Learnt]) -> Directory:
        """This directory with what mail taught about each officer (the rest: nothing).

        Returns itself when that changes nothing, so a caller can tell cheaply whether the
        rules built over it need rebuilding.
        """
        changed = False
        officers = []
        for officer in self.officers:
            known = learnt.get(officer.id, NOTHING_LEARNT)
            if officer.learnt != known:
                officer, changed = replace(officer, learnt=known), True
            officers.append(officer)
        return Directory(self.members, self.delivery_units, tuple(officers)) if changed else self


NOTHING_LEARNT = Learnt()
EMPTY = Directory()
SECTIONS = {
    "members": (Member, "id"),
    "delivery_units": (DeliveryUnit, "name"),
    "officers": (Officer, "id"),
}
NOT_IN_FILE = frozenset({"learnt"})
REVIEW_MONTHS = 12  # an escalation list older than this is a warning


def load_directory(path: Path | None, today: date | None = None) -> tuple[Directory, list[Problem]]:
    """The directory in `path` (empty if None) and every problem found reading it.

    With `today`, also the warnings that depend on the date (see `review`).
    """
    if path is None:
        return EMPTY, []
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return EMPTY, [Problem(where, "-", "directory file not found")]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return EMPTY, [Problem(where, "-", f"not valid TOML: {exc}")]
    except OSError as exc:  # a directory, no permission: a message, never a traceback
        return EMPTY, [Problem(where, "-", f"cannot read directory file: {exc.strerror or exc}")]
    problems: list[Problem] = []
    for section in sorted(set(data) - set(SECTIONS)):
        problems.append(Problem(where, section, f"unknown section (known: {', '.join(SECTIONS)})"))
    built = {
        section: _entries(data, section, cls, key, where, problems)
        for section, (cls, key) in SECTIONS.items()
    }
    directory = Directory(**{section: tuple(good) for section, (good, _) in built.items()})
    # Cross-check every entry, even one left out for a bad field: its other mistakes are still
    # reported, and a typo in it is not reported again as "unknown officer" wherever it is named.
    everything = Directory(**{section: tuple(every) for section, (_, every) in built.items()})
    problems.extend(_cross_check(everything, where))
    if today is not None:
        problems.extend(review(everything, where, today))
    return directory, problems


def review(directory: Directory, where: str, today: date) -> list[Problem]:
    """Warnings, not errors: things that go stale with time or that look like typos.

    An escalation list (a DU's escalation manager) not confirmed in the last 12 months, or
    never; a ward split naming a ward no member sits for.
    """
    problems = []
    year_ago = _months_before(today, REVIEW_MONTHS)
    wards = {m.ward.casefold() for m in directory.members if m.ward}
    for u in directory.delivery_units:
        label = f"delivery_units[{u.name}]"
        reviewed = u.escalation_reviewed
        if u.escalation_manager and reviewed is None:
            message = "escalation list has never been reviewed (set escalation_reviewed)"
            problems.append(Problem(where, f"{label}.escalation_reviewed", message, "warning"))
        elif reviewed is not None and reviewed < year_ago:
            message = f"escalation list last reviewed {reviewed}, over {REVIEW_MONTHS} months ago"
            problems.append(Problem(where, f"{label}.escalation_reviewed", message, "warning"))
        for ward, _ in u.wards:
            if ward.casefold() not in wards:
                message = f"no member sits for ward {ward!r}"
                problems.append(Problem(where, f"{label}.wards", message, "warning"))
    return problems


def _months_before(day: date, months: int) -> date:
    """The same day `months` earlier, or that month's last day (29 February → 28th)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _entries(
    data: dict[str, Any], section: str, cls: type, key: str, where: str, problems: list[Problem]
) -> tuple[list[Any], list[Any]]:
    """One dataclass per [[section]] entry, reporting bad fields by entry name.

    Returns the good entries, and every entry with an id (bad fields left at their defaults)
    for the cross-check.
    """
    entries = data.get(section, [])
    if not isinstance(entries, list):
        problems.append(Problem(where, section, f"must be an array of tables: [[{section}]]"))
        return [], []
    hints = {n: h for n, h in get_type_hints(cls).items() if n not in NOT_IN_FILE}
    good: list[Any] = []
    everything: list[Any] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        label = f"{section}[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, label, f"must be a table: [[{section}]]"))
            continue
        ident = entry.get(key)
        if not isinstance(ident, str) or not ident.strip():
            hint = f" for {entry['name']!r}" if key != "name" and entry.get("name") else ""
            problems.append(Problem(where, label, f"missing {key!r} (a non-empty string){hint}"))
            continue
        label = f"{section}[{ident}]"
        if ident.casefold() in seen:
            problems.append(Problem(where, label, f"duplicate {key} {ident!r}"))
            continue
        seen.add(ident.casefold())
        before = len(problems)
        kwargs: dict[str, Any] = {}
        for name, value in entry.items():
            if name not in hints or name.startswith("_"):
                known = ", ".join(n for n in hints if not n.startswith("_"))
                problems.append(
                    Problem(where, f"{label}.{name}", f"unknown field (known: {known})")
                )
                continue
            converted, error = _convert(name, value, hints[name])
            if error:
                problems.append(Problem(where, f"{label}.{name}", error))
                continue
            kwargs[name] = converted
        if "addresses" in hints and "addresses" not in entry:
            problems.append(Problem(where, f"{label}.addresses", "at least one address is needed"))
        kwargs.setdefault("name", ident)
        if "addresses" in hints:
            kwargs.setdefault("addresses", ())
        entry_object = cls(**kwargs)
        everything.append(entry_object)
        if len(problems) == before:
            good.append(entry_object)
    return good, everything


def _convert(name: str, value: Any, hint: Any) -> tuple[Any, str | None]:
    """The TOML value as the field's type, or why it cannot be (a string is not a list)."""
    if hint is bool:
        return (value, None) if isinstance(value, bool) else (None, "expected true or false")
    if hint is str:
        return (value, None) if isinstance(value, str) else (None, "expected a string")
    if name == "wards":
        if not isinstance(value, dict) or not all(
            isinstance(v, str) and v.strip() for v in value.values()
        ):
            example = '{ "Riverside" = "o-singh" }'
            return None, f"expected ward = officer id pairs, e.g. {example}, got {value!r}"
        return tuple((ward, officer.strip()) for ward, officer in value.items()), None
    if hint == (date | None):
        # TOML dates arrive as date; a datetime is a date too, but not what was meant.
        if isinstance(value, date) and not isinstance(value, datetime):
            return value, None
        try:
            return date.fromisoformat(value), None
        except (TypeError, ValueError):
            return None, f"expected a date such as 2026-04-30, got {value!r}"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None, f'expected a list of strings, e.g. ["..."], got {value!r}'
    if name == "addresses":
        if not value:
            return None, "at least one address is needed"
        bad = [v for v in value if not ADDRESS_RE.match(v.strip())]
        if bad:
            return None, f"not an email address: {', '.join(map(repr, bad))}"
        return tuple(v.strip().lower() for v in value), None
    if name == "patterns":
        for pattern in value:  # routing searches these; a bad one would fail on live mail
            try:
                re.compile(pattern)
            except re.error as exc:
                return None, f"bad regular expression {pattern!r}: {exc}"
    return tuple(value), None


def _cross_check(d: Directory, where: str) -> list[Problem]:
    """References between entries that point nowhere, and addresses claimed twice."""
    problems = []
    officer_ids = {o.id for o in d.officers}
    du_names = {u.name.casefold() for u in d.delivery_units}
    seen: dict[str, str] = {}
    for kind, people in (("members", d.members), ("officers", d.officers)):
        for p in people:
            label = f"{kind}[{p.id}]"
            for a in p.addresses:
                if a in seen and seen[a] != label:
                    problems.append(
                        Problem(where, f"{label}.addresses", f"{a} is also listed for {seen[a]}")
                    )
                seen.setdefault(a, label)
    for o in d.officers:
        for ref in ("manager", "deputy"):
            target = getattr(o, ref)
            if target and target not in officer_ids:
                problems.append(
                    Problem(where, f"officers[{o.id}].{ref}", f"unknown officer {target!r}")
                )
        if o.delivery_unit and o.delivery_unit.casefold() not in du_names:
            problems.append(
                Problem(
                    where,
                    f"officers[{o.id}].delivery_unit",
                    f"unknown delivery unit {o.delivery_unit!r}",
                )
            )
    active = {o.id for o in d.officers if o.active}
    for u in d.delivery_units:
        for lead in u.leads:
            if lead not in officer_ids:
                problems.append(
                    Problem(where, f"delivery_units[{u.name}].leads", f"unknown officer {lead!r}")
                )
        for ward, officer in u.wards:
            if officer not in officer_ids:
                message = f"unknown officer {officer!r} for ward {ward!r}"
                problems.append(Problem(where, f"delivery_units[{u.name}].wards", message))
        named = [*u.leads, *(officer for _, officer in u.wards)]
        if not any(o in active for o in named):
            # A warning, not an error: a reload that takes a leaver out must not be refused
            # because they were the only lead; their cases go to the team's triage instead.
            message = "no active lead: its new cases will wait in triage"
            problems.append(
                Problem(where, f"delivery_units[{u.name}].leads", message, severity="warning")
            )
        if u.escalation_manager and u.escalation_manager not in officer_ids:
            problems.append(
                Problem(
                    where,
                    f"delivery_units[{u.name}].escalation_manager",
                    f"unknown officer {u.escalation_manager!r}",
                )
            )
    return problems
