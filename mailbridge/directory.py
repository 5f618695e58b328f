"""The directory of people: members, delivery units and officers, as plain data.

It is read from a TOML file (see config/directory.example.toml) and answers the questions the
pipeline asks of an address: is this a member, an officer, which DU? Addresses compare
case-insensitively. Loading collects every problem with the file and entry that caused it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
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


EMPTY = Directory()
SECTIONS = {
    "members": (Member, "id"),
    "delivery_units": (DeliveryUnit, "name"),
    "officers": (Officer, "id"),
}


def load_directory(path: Path | None) -> tuple[Directory, list[Problem]]:
    """The directory in `path` (empty if None) and every problem found reading it."""
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
    return directory, problems


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
    hints = get_type_hints(cls)
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
    for u in d.delivery_units:
        for lead in u.leads:
            if lead not in officer_ids:
                problems.append(
                    Problem(where, f"delivery_units[{u.name}].leads", f"unknown officer {lead!r}")
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
