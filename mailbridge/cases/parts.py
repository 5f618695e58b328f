"""Multi-part enquiries (DESIGN §2 "part"): the numbered questions in an enquiry, and how
they are shared out among delivery units (pure).

A member who writes `1. … 2. … 3. …` (or `1)`, `(1)`, `Q1`/`Q1.`/`Q1:`, `(a)`, `a)`) in their
own words is asking questions that can be routed one by one. Only a real list counts: markers
at the start of a line, all in one style, numbered 1, 2, 3… or a, b, c… from the first, at
least two of them. A number inside a sentence ("I live at 12. High Street"), a phone number,
a measurement ("1.5 metres"), a lone "1." and anything in the quoted trail are just text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from mailbridge.cases.commands import new_text
from mailbridge.cases.routing import Route, Router

SPLIT_RULE = "numbered-parts"  # the timeline's rule for an enquiry opened as parts

# Each style's marker, matched at the start of a line (after any space) and followed by space:
# (style, pattern whose one group is the ordinal: a number, or a letter counted from "a").
_MARKERS = (
    ("1.", r"([1-9]\d?)\.(?=\s|$)"),
    ("1)", r"([1-9]\d?)\)(?=\s|$)"),
    ("(1)", r"\(([1-9]\d?)\)(?=\s|$)"),
    ("Q1", r"[Qq]([1-9]\d?)[.:)]?(?=\s|$)"),
    ("(a)", r"\(([a-zA-Z])\)(?=\s|$)"),
    ("a)", r"([a-zA-Z])\)(?=\s|$)"),
)
# All the styles in one pattern, for one match a line: group n is the ordinal of style n. No
# line starts with the markers of two styles, so the first style to match is the line's.
_MARKER = re.compile(rf"\s*(?:{'|'.join(pattern for _, pattern in _MARKERS)})")

_LETTER = re.compile(r"[^\W\d_]")  # a question has words after its marker, not just numbers


@dataclass(frozen=True)
class Question:
    label: str  # the marker as written: "1.", "Q2", "(b)"
    text: str  # the question's lines, marker included


@dataclass(frozen=True)
class Questions:
    """An enquiry read as numbered questions: what comes before, the questions, what after."""

    preamble: str
    questions: tuple[Question, ...]
    closing: str

    def text_for(self, chosen: Iterable[Question]) -> str:
        """What one officer reads: the preamble, their own questions and the sign-off."""
        pieces = (self.preamble, *(q.text for q in chosen), self.closing)
        return "\n\n".join(p for p in pieces if p)


@dataclass(frozen=True)
class Share:
    """The questions one delivery unit (or, unrouted, the team) answers as one part case."""

    route: Route
    questions: tuple[Question, ...]


def numbered_questions(body: str) -> Questions | None:
    """The enquiry's own numbered questions, or None when it has no list of two or more."""
    lines = new_text(body).split("\n")
    starts = _list_lines(lines)
    if len(starts) < 2:
        return None
    end = _end_of_last(lines, starts[-1])
    bounds = [*starts, end]
    questions = tuple(
        Question(_marker(lines[a]), "\n".join(lines[a:b]).strip()) for a, b in pairwise(bounds)
    )
    return Questions(
        preamble="\n".join(lines[: starts[0]]).strip(),
        questions=questions,
        closing="\n".join(lines[end:]).strip(),
    )


def share_out(questions: Sequence[Question], route_of: Callable[[str], Route]) -> list[Share]:
    """Group the questions by the unit each one routes to, in order of first appearance.

    Empty unless they reach two or more units: one unit takes the enquiry whole. Questions no
    rule routes go together to a part for the team, so none is lost.
    """
    groups: dict[str | None, tuple[Route, list[Question]]] = {}
    for question in questions:
        route = route_of(question.text)
        groups.setdefault(route.delivery_unit, (route, []))[1].append(question)
    if len([unit for unit in groups if unit is not None]) < 2:
        return []
    return [Share(route, tuple(chosen)) for route, chosen in groups.values()]


def plan_parts(
    router: Router, body: str, today: date, ward: str = ""
) -> tuple[Questions, list[Share]] | None:
    """An enquiry's numbered questions, each routed on its own words, shared out among units;
    None when it has no numbered questions or they all go to one unit (it goes whole)."""
    questions = numbered_questions(body)
    if questions is None:
        return None
    shares = share_out(
        questions.questions, lambda text: router.route_by_text("", text, today, ward=ward)
    )
    return (questions, shares) if shares else None


def part_reference(parent: str, number: int) -> str:
    """ME-2026-00123 and 2: ME-2026-00123-2 (DESIGN §2)."""
    return f"{parent}-{number}"


def next_part_number(parent: str, existing: Iterable[str]) -> int:
    """One more than the highest part of `parent` among `existing` references."""
    prefix = f"{parent}-"
    numbers = [int(r[len(prefix) :]) for r in existing if r.startswith(prefix)]
    return max(numbers, default=0) + 1


def _ordinal(style: str, value: str) -> int:
    return ord(value.lower()) - ord("a") + 1 if style in ("(a)", "a)") else int(value)


def _list_lines(lines: list[str]) -> list[int]:
    """Indexes of the lines that start the first list of two or more numbered items."""
    marks: dict[str, list[tuple[int, int]]] = {}
    for index, line in enumerate(lines):
        if (found := _MARKER.match(line)) and _LETTER.search(line, found.end()):
            groups = zip(_MARKERS, found.groups(), strict=True)
            style, value = next((style, value) for (style, _), value in groups if value)
            marks.setdefault(style, []).append((index, _ordinal(style, value)))
    best: list[int] = []
    for found in marks.values():
        run: list[int] = []
        for index, ordinal in found:
            if ordinal == len(run) + 1:
                run.append(index)
            elif run:  # out of sequence: the list has ended
                break
        if len(run) >= 2 and (not best or run[0] < best[0]):
            best = run
    return best


def _end_of_last(lines: list[str], start: int) -> int:
    """Where the last question ends: its paragraph, and any indented lines that follow it."""
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and (not lines[end - 1].strip()) and not line[:1].isspace():
            break  # a new, unindented paragraph: the sign-off
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def _marker(line: str) -> str:
    return line.split(maxsplit=1)[0]
