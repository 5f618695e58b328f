"""Reading an out-of-office: the last day the officer is away (pure, UK dates, today passed in)."""

from __future__ import annotations

from datetime import date

import pytest

from mailbridge.cases.out_of_office import absent_until, reads_as_absence

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 23)  # a Monday


@pytest.mark.parametrize(
    ("text", "last_day_away"),
    [
        # back on a day: away until the day before
        ("I will be back on Monday 7 December.", date(2026, 12, 6)),
        ("Returning 07/12/2026", date(2026, 12, 6)),
        ("returning on 7/12/26", date(2026, 12, 6)),
        ("I return to the office on Tuesday 8th December 2026", date(2026, 12, 7)),
        ("Back in the office on 2026-12-07", date(2026, 12, 6)),
        ("I'll be back on December 7th.", date(2026, 12, 6)),
        ("I won't be back until Monday 7 December.", date(2026, 12, 6)),
        ("I am back on Monday.", date(2026, 11, 29)),  # next Monday, not today
        ("Back tomorrow.", date(2026, 11, 23)),
        # until a day: away through it
        ("I am out of the office until 7th December 2026.", date(2026, 12, 7)),
        ("On annual leave until the 4th of Dec", date(2026, 12, 4)),
        ("Out until 07.12.2026", date(2026, 12, 7)),
        ("Away up to and including 4 December", date(2026, 12, 4)),
        ("On leave from 30 November to 4 December inclusive.", date(2026, 12, 4)),
        ("Off 30/11 - 4/12", date(2026, 12, 4)),
        # a back-date wins over an until-date
        ("On leave until Friday 4th Dec, returning Mon 7th Dec.", date(2026, 12, 6)),
        # the nearest year: January is next year
        ("Out of office until 5 January", date(2027, 1, 5)),
    ],
)
def test_the_date_an_out_of_office_states(text, last_day_away):
    assert absent_until(text, TODAY) == last_day_away


@pytest.mark.parametrize(
    "text",
    [
        "I am out of the office.",  # no date: the caller assumes one working day
        "Out of office until 20 November",  # an old auto-reply still switched on
        "Back on 7 December 2029",  # more than a year away: a typo
        "Call 01234 567890 or 07700 900123 for urgent matters",
        "The meeting on 7 December is cancelled.",  # a date, but not tied to the absence
        "Back at 10.12",  # a time, not a date
        "Back on 31/02/2027",  # no such day
        "I am away.\n\n> Back on 7 December (quoted from the enquiry)",  # quoted text
    ],
)
def test_no_date_unless_the_text_ties_a_real_coming_date_to_the_absence(text):
    assert absent_until(text, TODAY) is None


@pytest.mark.parametrize(
    ("text", "away"),
    [
        ("I am out of the office until Monday.", True),
        ("Automatic reply: on annual leave", True),
        ("I'm currently away with limited access to email.", True),
        ("I will be back on 7 December", True),
        ("Thank you for your email. We aim to reply within 10 working days.", False),
        ("Your message has been received by the Street Scene team.", False),
    ],
)
def test_an_absence_is_told_from_an_acknowledgement(text, away):
    assert reads_as_absence(text) is away
