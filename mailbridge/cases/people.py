"""Who is on a new case, and in what role (pure): the member, the officer, the stakeholders.

Stakeholders are everyone else on the original To/Cc — ward colleagues, residents, other
officers — except our own mailbox: they are the people an officer's answer is relayed to.
"""

from __future__ import annotations

from mailbridge.cases.service import NewParticipant
from mailbridge.directory import Directory, Member, Officer
from mailbridge.ingest.classify import is_own_address
from mailbridge.ingest.parse import ParsedMessage


def people_of(
    parsed: ParsedMessage,
    member: Member | None,
    officer: Officer | None,
    directory: Directory,
    own_addresses: frozenset[str],
) -> list[NewParticipant]:
    sender = parsed.from_.email if parsed.from_ else ""
    people = []
    if sender:
        name = parsed.from_.name if parsed.from_ else ""
        role = "member" if member else "stakeholder"
        people.append(NewParticipant(sender, role, name, member.id if member else None))
    if officer:
        written_to = {a.email for a in parsed.to}
        address = next((a for a in officer.addresses if a in written_to), officer.addresses[0])
        people.append(NewParticipant(address, "officer", officer.name, officer.id))
    skip = set(member.addresses if member else (sender,)) | set(
        officer.addresses if officer else ()
    )
    for person in (*parsed.to, *parsed.cc):
        if (
            person.email
            and person.email not in skip
            and not is_own_address(person.email, own_addresses)
        ):
            skip.add(person.email)
            known = directory.member_by_address(person.email) or directory.officer_by_address(
                person.email
            )
            people.append(
                NewParticipant(
                    person.email, "stakeholder", person.name, known.id if known else None
                )
            )
    return people
