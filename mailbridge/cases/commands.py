"""Email commands (DESIGN §4): one-line `#word` instructions above the quoted part of a reply.

Pure: finds the new text of a reply, reads the commands in it and checks each one's arguments
and who may give it. What a command then does to a case lives in cases/actions.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

OFFICER_COMMANDS = frozenset(
    {"delay", "scheduled", "resolved", "budget", "wrong-service", "note", "private"}
)
MEMBER_COMMANDS = frozenset({"satisfied", "partly", "not-satisfied", "status", "nocopy"})
FEEDBACK = {"satisfied": "satisfied", "partly": "partly", "not-satisfied": "not_satisfied"}

HELP_LINES = (
    ("officer", "#delay YYYY-MM-DD reason", "a delay is advised; the member is told the new date"),
    ("officer", "#scheduled YYYY-MM-DD what", "work is booked for that date; follow-up diarised"),
    ("officer", "#resolved", "this reply is the full response; on scheduled work: it is done"),
    ("officer", "#budget yes|no", "record (and tell the member) whether it has a budget cost"),
    ("officer", "#wrong-service [unit or officer]", "not ours: on to them, or back to the team"),
    ("officer", "#note text  /  #private", "an internal note; this reply is not passed on"),
    ("member", "#satisfied / #partly / #not-satisfied [comment]", "your view of the answer"),
    ("member", "#status [reference]", "the status of this case, or of all your open cases"),
    ("member", "#nocopy", "stop copying the other people on this case"),
)

# Where the quoted part of a reply starts, for the mail clients councils use: one pattern, so
# that a body is searched in a single pass from line start to line start. Each alternative is
# matched just after a "\n" and stays within its line ([^\S\n] is whitespace but not "\n").
_QUOTE_START = re.compile(
    r"""\n[^\S\n]*(?:
        >
      | On\ .{4,200}wrote:[^\S\n]*$
      | -{2,}[^\S\n]*Original\ Message[^\S\n]*-{2,}
      | _{10,}[^\S\n]*$  # Outlook's rule above the quoted header block
      | -{2,}[^\S\n]*Forwarded\ message[^\S\n]*-{2,}
        # Outlook without a rule: a "From:" line with "Sent:" or "Date:" on one of the next 3
      | \*?From:\*?[^\S\n].(?=.*(?:\n.*){0,2}\n[^\S\n]*\*?(?:Sent|Date):\*?[^\S\n])
    )""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)
_COMMAND = re.compile(r"^#([A-Za-z][A-Za-z-]*)\b[ \t]*(.*)$")
_DATE_FORMS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),  # 2026-12-05
    re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"),  # 05/12/2026, the UK way
)


@dataclass(frozen=True)
class Command:
    name: str  # lower-case, e.g. "delay"
    argument: str  # the rest of the line, stripped
    line: str  # the line as written, for the timeline and the help reply
    on_date: date | None = None  # #delay / #scheduled
    text: str = ""  # reason, what, comment or note
    choice: str = ""  # #budget yes|no; #wrong-service target; #status reference


@dataclass(frozen=True)
class Rejected:
    line: str
    reason: str


@lru_cache(maxsize=8)  # asked 2-3 times of the same body while one message is handled
def new_text(body: str) -> str:
    """The part of a reply above the quoted message (the whole body when nothing is quoted),
    its CRLF and CR line ends made LF."""
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    quote = _QUOTE_START.search(f"\n{body}")  # the "\n" puts the first line after one too
    return body if quote is None else body[: max(quote.start() - 1, 0)]


def read_commands(body: str) -> tuple[list[Command], list[Rejected]]:
    """Commands in the new text of `body`, and the lines that looked like commands but were not."""
    commands: list[Command] = []
    rejected: list[Rejected] = []
    if "#" not in body:  # most email: no need to look for the quote above which they would be
        return commands, rejected
    for line in (raw.strip() for raw in new_text(body).split("\n") if "#" in raw):
        found = _COMMAND.match(line)
        if not found:
            continue
        name, argument = found.group(1).lower(), found.group(2).strip()
        if name not in OFFICER_COMMANDS | MEMBER_COMMANDS:
            rejected.append(Rejected(line, f"unknown command #{name}"))
            continue
        command = _check(name, argument, line)
        if isinstance(command, Rejected):
            rejected.append(command)
        else:
            commands.append(command)
    return commands, rejected


def _check(name: str, argument: str, line: str) -> Command | Rejected:
    if name in ("delay", "scheduled"):
        first, _, rest = argument.partition(" ")
        on_date = parse_date(first)
        if on_date is None:
            return Rejected(line, f"#{name} needs a date first, as YYYY-MM-DD or DD/MM/YYYY")
        if name == "delay" and not rest.strip():
            return Rejected(line, "#delay needs a reason after the date")
        return Command(name, argument, line, on_date=on_date, text=rest.strip())
    if name == "budget":
        choice = argument.lower()
        if choice not in ("yes", "no"):
            return Rejected(line, "#budget takes yes or no")
        return Command(name, argument, line, choice=choice)
    if name in ("wrong-service", "status"):
        return Command(name, argument, line, choice=argument)
    return Command(name, argument, line, text=argument)


def parse_date(text: str) -> date | None:
    for form in _DATE_FORMS:
        found = form.match(text.strip())
        if found:
            parts = [int(g) for g in found.groups()]
            year, month, day = parts if form is _DATE_FORMS[0] else parts[::-1]
            try:
                return date(year, month, day)
            except ValueError:
                return None
    return None


def allowed(command: Command, *, is_case_officer: bool, is_case_member: bool) -> bool:
    """Officer commands count from the case's DU officers or a supervisor; member ones from
    the case's member. Anyone else's are recorded and ignored."""
    if command.name in OFFICER_COMMANDS:
        return is_case_officer
    return is_case_member
