"""Who hears an officer's answer (DESIGN §3 reply-all rule). Pure: addresses in, addresses out.

The member plus every original To/Cc stakeholder, minus our own mailbox, minus anyone the
officer already wrote to (an officer who replied to all is not duplicated), and minus everyone
but the member where the DU is confidential or the member said #nocopy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.to or self.cc)


def relay_recipients(
    *,
    member: str | None,
    member_addresses: Iterable[str],
    stakeholders: Iterable[str],
    already_sent_to: Iterable[str],
    is_own: Callable[[str], bool],
    member_only: bool,
) -> Recipients:
    """The relay of a reply: the member in To, stakeholders in Cc, each address once."""
    covered = {a.lower() for a in already_sent_to}
    member_covered = bool(covered & {a.lower() for a in member_addresses})
    to = () if member is None or member_covered or is_own(member) else (member.lower(),)
    if member_only:
        return Recipients(to, ())
    seen = set(to) | covered | {a.lower() for a in member_addresses}
    cc = []
    for address in stakeholders:
        address = address.lower()
        if address not in seen and not is_own(address):
            seen.add(address)
            cc.append(address)
    return Recipients(to, tuple(cc))
