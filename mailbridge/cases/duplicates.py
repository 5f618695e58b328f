"""Possible duplicates (pure): is a new enquiry probably one the team already has?

The rule (ISSUE 4 §7): the two enquiries are connected — the same member sent both, or both
name the same postcode or street address — and they say much the same thing — their subjects
share more than half their words (Jaccard similarity: "Potholes on Mill Lane" and "Litter on
Mill Lane" share only half), or else at least 60% of the words of the shorter text (subject
and opening of the body) are in the other (overlap coefficient, so that "the fly-tipping is
back" matches the fly-tipping question of a longer email) — and the older one was received
within 30 days before the newer. Words are the ones that carry meaning: lower-cased, common
words left out, "bins" and "bin" counted as one. Open cases only: that is for the query that
finds the candidates. A match is flagged for the team with its score and the reason in
words; never merged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

WINDOW = timedelta(days=30)
SUBJECTS_ALIKE = 0.5  # Jaccard similarity of the subjects' words, to be exceeded
TEXTS_ALIKE = 0.6  # share of the shorter text's words found in the other
FEWEST_WORDS = 5  # a text of fewer words says too little to compare
MOST_FLAGGED = 3  # the best matches only: a busy member's month is not all one enquiry
TEXT_CHARS = 1000  # of the body: its opening says what it is about, and keeps scoring cheap
MOST_PLACES = 10

# Both place patterns start at a digit and look back from it for what comes before, so that a
# search skips from digit to digit (one that starts with a letter or \b is tried everywhere).
# A UK postcode: outward code (SW1A, M1, B33) and inward code (1AA), the space optional. The
# outward code is its one or two letters (group 2 or 3) and the rest (1A, 1, 33: group 1).
_POSTCODE = re.compile(
    r"(\d(?:(?<=\b([A-Z]{2})\d)|(?<=\b([A-Z])\d))[A-Z\d]?)\s*(\d[ABD-HJLNP-UW-Z]{2})\b",
    re.IGNORECASE,
)
_STREET_TYPES = {
    "street": "street", "st": "street", "road": "road", "rd": "road", "lane": "lane",
    "ln": "lane", "avenue": "avenue", "ave": "avenue", "close": "close", "drive": "drive",
    "dr": "drive", "way": "way", "court": "court", "crescent": "crescent", "place": "place",
    "terrace": "terrace", "grove": "grove", "gardens": "gardens", "square": "square",
    "walk": "walk", "row": "row", "mews": "mews", "hill": "hill", "green": "green",
    "parade": "parade", "rise": "rise",
}  # fmt: skip
# A house number (12, 4a; "12." and "12," as people write them; no letter or digit before it)
# and up to three name words before a street type: "12 High Street", "Flat 3, 4 Mill Lane"
# (the building: 4 mill lane).
_STREET = re.compile(
    r"(\d(?<!\w\d)\d{0,3}[a-z]?)[.,]?\s+((?:[a-z][a-z'’-]*\s+){1,3}?)("
    + "|".join(_STREET_TYPES)
    + r")\b",
    re.IGNORECASE,
)
_NOT_IN_A_STREET_NAME = {"on", "in", "at", "of", "and", "for", "to", "by", "near", "outside"}
_WORD = re.compile(r"[a-z0-9]++(?:['’][a-z]++)?+")  # possessive: nothing to backtrack for
_TAG = re.compile(r"\[[^\]]*\]")  # our [ME-2026-00123] tags: the same in every reply
_COMMON = (  # words every enquiry has, English and email courtesy alike
    """a about above after again all also am an and any are as at be been before being below
    but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its just me more most my no nor not
    now of off on once only or other our ours out over own same she should so some such than
    that the their theirs them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    re fw fwd dear hi hello thanks thank many kind regards best wishes please cllr councillor
    team sent get got one still know let like look looking someone something see"""
)
_STOPWORDS = frozenset(_COMMON.split())


@dataclass(frozen=True)
class Wording:
    """What an enquiry says, each part read once and kept with it: a case is compared again
    with each new enquiry, and a new one's is read by the worker that parsed it."""

    subject: str  # without our [ME-…] tags, the same in every reply
    text: str  # the subject and the opening of the body

    @cached_property
    def places(self) -> frozenset[str]:
        return places(self.text)

    @cached_property
    def subject_words(self) -> frozenset[str]:
        return words(self.subject)

    @cached_property
    def words(self) -> frozenset[str]:  # only read when the subjects are not alike
        return words(self.text)

    def read_through(self) -> Wording:
        """Every part read now (by a worker, before the result is sent to the daemon)."""
        _ = self.places, self.subject_words, self.words
        return self


@dataclass(frozen=True)
class Enquiry:
    """What the comparison needs of a case: who sent it, when, what it says, where."""

    case_id: int
    member: str | None
    received_at: datetime
    wording: Wording
    places: frozenset[str]  # those it names, or (an older case) those it shares with the new


@dataclass(frozen=True)
class Match:
    case_id: int  # the older case
    score: float  # 0..1, two places
    reason: str  # for the timeline and the team: "same member; subjects alike (0.80)"


def wording(subject: str, body: str) -> Wording:
    """What an enquiry with this subject and body says, as compared."""
    subject = _TAG.sub(" ", subject)
    return Wording(subject, f"{subject}\n{body[:TEXT_CHARS]}")


def enquiry(
    case_id: int,
    member: str | None,
    received_at: datetime,
    said: Wording,
    named: Iterable[str] | None = None,
) -> Enquiry:
    """An enquiry as compared; `named`: the places it is known to name (not looked for again)."""
    found = said.places if named is None else frozenset(named)
    return Enquiry(case_id, member, received_at, said, found)


def words(text: str) -> frozenset[str]:
    """The words that carry meaning, lower-cased, plurals folded ("bins" is "bin")."""
    found = set(_WORD.findall(text.lower())) - _STOPWORDS
    plurals = {w for w in found if len(w) > 3 and w[-1] == "s" and w[-2] != "s"}
    return frozenset((found - plurals) | {w[:-1] for w in plurals})


def places(text: str) -> frozenset[str]:
    """Postcodes and street addresses named in `text`, normalised as case_place stores them:
    "postcode:SW1A1AA", "street:12 high street"."""
    found = {
        f"postcode:{(two + one + rest).upper()}{inward.upper()}"
        for rest, two, one, inward in _POSTCODE.findall(text)
    }
    for number, name, kind in _STREET.findall(text):
        name_words = name.lower().replace("’", "'").split()
        if not set(name_words) & _NOT_IN_A_STREET_NAME:
            street = " ".join([number.lower(), *name_words, _STREET_TYPES[kind.lower()]])
            found.add(f"street:{street}")
    return frozenset(sorted(found)[:MOST_PLACES])


def score(new: Enquiry, old: Enquiry) -> Match | None:
    """`old` as a possible duplicate of `new`, or None."""
    if not (new.received_at - WINDOW <= old.received_at <= new.received_at):
        return None
    same_member = new.member is not None and new.member == old.member
    shared = sorted(new.places & old.places)
    if not same_member and not shared:
        return None
    connection = "same member" if same_member else f"both name {_shown(shared[0])}"
    by_subject = _jaccard(new.wording.subject_words, old.wording.subject_words)
    if by_subject > SUBJECTS_ALIKE:
        return Match(old.case_id, round(by_subject, 2), f"{connection}; subjects alike")
    by_text = _overlap(new.wording.words, old.wording.words)
    if by_text >= TEXTS_ALIKE:
        return Match(old.case_id, round(by_text, 2), f"{connection}; texts alike")
    return None


def possible_duplicates(new: Enquiry, older: Iterable[Enquiry]) -> list[Match]:
    """The best few matches, highest score first (the most recent case first on a tie)."""
    scored = [(m, o.received_at) for o in older if (m := score(new, o)) is not None]
    scored.sort(key=lambda pair: (pair[0].score, pair[1]), reverse=True)
    return [m for m, _ in scored[:MOST_FLAGGED]]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    shorter = min(len(a), len(b))
    return len(a & b) / shorter if shorter >= FEWEST_WORDS else 0.0


def _shown(place: str) -> str:
    kind, _, value = place.partition(":")
    if kind == "postcode":
        return f"postcode {value[:-3]} {value[-3:]}"
    return value
