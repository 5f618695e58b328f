"""Numbered questions: which enquiries are read as parts, and how they are shared out (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from mailbridge.cases.parts import (
    next_part_number,
    numbered_questions,
    part_reference,
    plan_parts,
    share_out,
)
from mailbridge.cases.routing import NO_ROUTE, Route, Router
from mailbridge.directory import load_directory
from tests.conftest import TEST_DIRECTORY

pytestmark = pytest.mark.unit
TODAY = date(2026, 11, 23)

THREE_THINGS = """Dear team,

Residents have raised three things with me:

1. Fly-tipping behind the shops on Mill Lane.
2. A pothole on the High Street
   near the bus stop.
3. The litter bins on the green are overflowing.

Many thanks,
Asha
"""


def labels(body: str) -> list[str] | None:
    found = numbered_questions(body)
    return [q.label for q in found.questions] if found else None


def test_a_numbered_list_is_read_as_questions_with_the_opening_and_sign_off_apart():
    found = numbered_questions(THREE_THINGS)
    assert found.preamble == "Dear team,\n\nResidents have raised three things with me:"
    assert [q.text for q in found.questions] == [
        "1. Fly-tipping behind the shops on Mill Lane.",
        "2. A pothole on the High Street\n   near the bus stop.",
        "3. The litter bins on the green are overflowing.",
    ]
    assert found.closing == "Many thanks,\nAsha"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("1) bins\n2) potholes", ["1)", "2)"]),
        ("(1) bins\n(2) potholes", ["(1)", "(2)"]),
        ("Q1 bins\nQ2 potholes", ["Q1", "Q2"]),
        ("Q1. bins\nQ2. potholes", ["Q1.", "Q2."]),
        ("Q1: bins\nQ2: potholes\nQ3: litter", ["Q1:", "Q2:", "Q3:"]),
        ("(a) bins\n(b) potholes", ["(a)", "(b)"]),
        ("a) bins\nb) potholes\nc) litter", ["a)", "b)", "c)"]),
        ("  1. bins\n  2. potholes", ["1.", "2."]),  # indented
        ("\t1. bins\n\xa02.\tpotholes", ["1.", "2."]),
        ("q1) bins\nQ2: potholes", ["q1)", "Q2:"]),  # one style, however punctuated
        ("A) bins\nb) potholes", ["A)", "b)"]),
        ("(A) bins\n(B) potholes", ["(A)", "(B)"]),
        ("1. bins\n2. é", ["1.", "2."]),  # a word in any script
        ("1. bins\n2. potholes\n\n(a) one\n(b) two", ["1.", "2."]),  # the first list
        ("(a) one\n(b) two\n\n1. bins\n2. potholes", ["(a)", "(b)"]),
        ("a) bins\n1. x\nb) potholes", ["a)", "b)"]),
    ],
)
def test_every_numbering_style_people_use_is_recognised(body, expected):
    assert labels(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "I live at 12. High Street and the bins were missed.",
        "Please call me on 01234 567890 about the bins.",
        "The hole is 1.5 metres wide.\nIt opened on 2.11.2026.",
        "1. Only one thing: the bins.",
        "My address is\n12. High Street\n13. is next door",  # not counted from 1
        "Thanks.\n\n> On Monday you wrote:\n> 1. bins\n> 2. potholes",  # quoted
        "See below.\n\nOn Mon, 23 Nov 2026, Dev wrote:\n1. bins\n2. potholes",  # quoted trail
        "1) 01234 567890\n2) 01234 567891",  # numbers, not questions
        "2. potholes\n3. bins",  # does not start at 1
        "1. bins\n2) potholes",  # two styles are not one list
        "1.bins\n2.potholes",  # a marker is followed by space
        "Q) bins\nR) potholes",
        "10. bins\n11. potholes",
        "1. bins\n2.",  # a question has a word after its marker
        "1. bins\n2. _",
    ],
)
def test_text_that_merely_contains_numbers_is_not_split(body):
    assert numbered_questions(body) is None


def test_a_list_out_of_sequence_ends_where_the_sequence_breaks():
    assert labels("1. bins\n2. potholes\n2. potholes again\n3. litter") == ["1.", "2."]


def test_a_nested_list_stays_inside_its_question():
    found = numbered_questions("1. Bins:\n   a) missed\n   b) broken\n2. Potholes")
    assert [q.label for q in found.questions] == ["1.", "2."]
    assert "b) broken" in found.questions[0].text


def test_each_officer_reads_the_opening_their_own_questions_and_the_sign_off():
    found = numbered_questions(THREE_THINGS)
    text = found.text_for([found.questions[1]])
    assert text.startswith("Dear team,") and text.endswith("Asha")
    assert "pothole" in text and "Fly-tipping" not in text and "litter" not in text


def route_by_word(text: str) -> Route:
    for word, unit in (("bins", "Street Scene"), ("fly", "Street Scene"), ("pothole", "Highways")):
        if word in text.lower():
            return Route(unit, "someone", f"keyword:{word}")
    return NO_ROUTE


def test_questions_are_grouped_by_unit_in_order_of_first_appearance():
    found = numbered_questions(THREE_THINGS)
    shares = share_out(found.questions, route_by_word)
    assert [(s.route.delivery_unit, [q.label for q in s.questions]) for s in shares] == [
        ("Street Scene", ["1.", "3."]),
        ("Highways", ["2."]),
    ]


def test_questions_for_one_unit_are_not_shared_out():
    found = numbered_questions("1. Bins missed\n2. Fly-tipping again\n3. A general question")
    assert share_out(found.questions, route_by_word) == []


def test_a_question_no_rule_routes_becomes_a_part_for_the_team():
    found = numbered_questions("1. Bins missed\n2. A pothole\n3. A general question")
    shares = share_out(found.questions, route_by_word)
    assert [s.route.delivery_unit for s in shares] == ["Street Scene", "Highways", None]


def test_the_directorys_rules_route_each_question_on_its_own_words():
    directory, _ = load_directory(TEST_DIRECTORY)
    questions, shares = plan_parts(Router(directory), THREE_THINGS, TODAY)
    assert len(questions.questions) == 3
    assert [(s.route.delivery_unit, s.route.officer) for s in shares] == [
        ("Street Scene", "o-singh"),
        ("Highways", "o-walsh"),
    ]
    assert plan_parts(Router(directory), "1. Bins missed\n2. Litter everywhere", TODAY) is None


def test_a_part_is_named_after_its_originating_case_and_numbered_after_its_siblings():
    assert part_reference("ME-2026-00123", 2) == "ME-2026-00123-2"
    siblings = ["ME-2026-00123-1", "ME-2026-00123-3", "ME-2026-00124-7"]
    assert next_part_number("ME-2026-00123", siblings) == 4
    assert next_part_number("ME-2026-00123", []) == 1
