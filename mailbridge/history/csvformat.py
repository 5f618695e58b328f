"""The case file format shared by `import cases` and `export cases` (DESIGN §6).

Times are ISO 8601. One with an offset or a Z means exactly that instant; one without is
council-local time (Europe/London, or [clock] timezone), so `2026-07-01 09:30` is 08:30 UTC
in summer and `2026-12-01 09:30` is 09:30 UTC in winter. A bare date means local midnight.
In the hour the clocks go back a local time happens twice; the first (summer time) is taken.
Everything is stored in UTC; exports write local time with its offset, so a file that comes
out goes back in unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

COLUMNS = (
    "reference",
    "received_at",
    "member",
    "delivery_unit",
    "subject",
    "resolved_at",
    "delay_advised_at",
    "closed_at",
)
REQUIRED = COLUMNS[:4]  # must have a value on every row
OPTIONAL = ("officer", "parent_reference", "origin", "kind", "feedback")
ALL_COLUMNS = (*COLUMNS, *OPTIONAL)
TIME_COLUMNS = ("received_at", "resolved_at", "delay_advised_at", "closed_at")
FEEDBACK_SPELLINGS = {
    "satisfied": "satisfied",
    "partly": "partly",
    "partly_satisfied": "partly",
    "not_satisfied": "not_satisfied",
    "dissatisfied": "not_satisfied",
    "unsatisfied": "not_satisfied",
}


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 time as aware UTC; raises ValueError with a message people can act on."""
    value = text.strip()
    if value.endswith(("z", "Z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-03-02T09:30 or 2026-03-02T09:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)  # fold=0: the first of a repeated hour
    return moment.astimezone(UTC)


def format_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """Local time with its offset, to the second unless the stored time is finer."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")


def normalise_feedback(text: str) -> str | None:
    """'Not satisfied', 'not-satisfied', 'NOT_SATISFIED' -> 'not_satisfied'; None if unknown."""
    key = "_".join(text.strip().lower().replace("-", " ").split())
    return FEEDBACK_SPELLINGS.get(key)
