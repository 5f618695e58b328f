"""The SLA policy: working days to the chaser, the escalations, reminders and auto-close.

Built from the [clock] settings; a delivery unit may override any figure in its own
[clock.units."Name"] table. Pure data: the plan reads it, nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time

from mailbridge.config import ClockSettings


@dataclass(frozen=True)
class Sla:
    """One unit's figures, in working days (DESIGN §5 defaults)."""

    chaser_day: int = 3  # chase the officer at the cut-off of working day 3
    escalate_day: int = 5  # escalate to their manager at day 5 (the response is due) ...
    escalate_every: int = 2  # ... and every 2 working days after
    delay_reminder_days_before: int = 1  # remind the officer before a delay's new date
    misroute_flag_days: int = 1  # a case left in triage longer than this: tell the team
    auto_close_days: int = 10  # close a resolved case the member has not answered


@dataclass(frozen=True)
class Digest:
    """The weekly digest to members who opted in: which day of the ISO week, what time."""

    weekday: int = 0  # Monday, as date.weekday()
    at: time = time(8, 0)


@dataclass(frozen=True)
class ClockPolicy:
    default: Sla = field(default_factory=Sla)
    units: dict[str, Sla] = field(default_factory=dict, hash=False)  # casefolded names
    digest: Digest | None = field(default_factory=Digest)  # None: no digests are sent

    @classmethod
    def from_settings(cls, clock: ClockSettings) -> ClockPolicy:
        default = Sla(
            chaser_day=clock.chaser_day,
            escalate_day=clock.escalate_day,
            escalate_every=clock.escalate_every,
            delay_reminder_days_before=clock.delay_reminder_days_before,
            misroute_flag_days=clock.misroute_flag_days,
            auto_close_days=clock.auto_close_days,
        )
        units = {name.casefold(): replace(default, **o) for name, o in clock.units.items()}
        digest = Digest(clock.digest_weekday, clock.digest_time) if clock.digest else None
        return cls(default, units, digest)

    def for_unit(self, delivery_unit: str | None) -> Sla:
        """The unit's own figures where it has any, else the council's."""
        if not delivery_unit or not self.units:
            return self.default
        return self.units.get(delivery_unit.casefold(), self.default)
