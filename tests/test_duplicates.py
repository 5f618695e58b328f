"""Possible duplicates: the scoring rule (pure), and flagging at open on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from mailbridge.cases import links
from mailbridge.cases.duplicates import (
    TEXT_CHARS,
    enquiry,
    places,
    possible_duplicates,
    score,
    wording,
    words,
)
from mailbridge.clock import FrozenClock
from mailbridge.config import load_settings
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest import pipeline
from mailbridge.store.db import session
from mailbridge.store.models import Case, CaseLink, CasePlace, Event, Outbox
from tests.conftest import MAILBOX, deliver, settings_env
from tests.mail import make_email
from tests.outgoing import add_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PATEL, OKAFOR = "asha.patel@council.example", "ben.okafor@council.example"
RESIDENT = "jo@resident.example"
SUPERVISOR = "lead@council.example"


# ----- the rule ---------------------------------------------------------------------------------


def an_enquiry(case_id=1, member="cllr-patel", subject="", body="", at=NOW):
    return enquiry(case_id, member, at, wording(subject, body))


@pytest.mark.unit
def test_words_leave_out_common_words_tags_and_plurals():
    assert words("Re: The bins are missed AGAIN, on Mill Lane") == {"bin", "missed", "mill", "lane"}
    assert an_enquiry(subject="Re: Bins [ME-2026-00001]").wording.subject_words == {"bin"}
    apostrophes = {"don't", "rock'n", "roll", "4th", "bin", "glass"}
    assert words("Don't rock'n'roll: 4th bins, glass") == apostrophes


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Outside SW1A 1AA, please", {"postcode:SW1A1AA"}),
        ("outside sw1a1aa", {"postcode:SW1A1AA"}),
        ("(SW1A 1AA)", {"postcode:SW1A1AA"}),
        ("W1A\t0AX.", {"postcode:W1A0AX"}),
        ("SW1A\n1AA", {"postcode:SW1A1AA"}),
        ("XSW1A 1AA", set()),  # inside a word
        ("1SW1A 1AA or _W1A 1AA", set()),
        ("SW1A 1AAB", set()),
        ("SW1A 1CI", set()),  # C and I are never in an inward code
        ("at M1 1AE and B33 8TH", {"postcode:M11AE", "postcode:B338TH"}),
        ("I live at 12 High Street", {"street:12 high street"}),
        ("I live at 12. High St.", {"street:12 high street"}),
        ("Flat 3, 4 Mill Lane", {"street:4 mill lane"}),
        ("10 Downing St", {"street:10 downing street"}),
        ("1234 High Street", {"street:1234 high street"}),
        ("4A, Mill Lane", {"street:4a mill lane"}),
        ("12 St John’s Road", {"street:12 st john's road"}),
        ("x12 High Street, _12 High Street or 12345 High Street", set()),  # inside a word
        ("Flat 3, 4 Mill Lane, SW1A 1AA", {"street:4 mill lane", "postcode:SW1A1AA"}),
        ("3 bins on the green were missed", set()),
        ("call 01234 567890 about 1.5 metres", set()),
    ],
)
def test_postcodes_and_street_addresses_are_found_and_normalised(text, expected):
    assert places(text) == expected


@pytest.mark.unit
def test_the_same_members_enquiry_with_a_similar_subject_is_a_possible_duplicate():
    old = an_enquiry(1, subject="Fly-tipping on Mill Lane", at=NOW - timedelta(days=3))
    new = an_enquiry(2, subject="Re: fly tipping Mill Lane")
    match = score(new, old)
    assert (match.case_id, match.score) == (1, 1.0)
    assert match.reason == "same member; subjects alike"


@pytest.mark.unit
def test_the_same_members_enquiry_about_something_else_is_not():
    old = an_enquiry(1, subject="Bins", body="Please can someone look at this.")
    new = an_enquiry(2, subject="Litter", body="Please can someone look at this.")
    assert score(new, old) is None
    same_street = an_enquiry(1, subject="Potholes on Mill Lane")
    assert score(an_enquiry(2, subject="Litter on Mill Lane"), same_street) is None


@pytest.mark.unit
def test_another_members_similar_enquiry_is_not_unless_it_names_the_same_place():
    text = "Bags of rubbish dumped behind the shops, the fly-tipping is getting worse"
    old = an_enquiry(1, "cllr-patel", "Fly-tipping", f"{text} at SW1A 1AA")
    assert score(an_enquiry(2, "cllr-okafor", "Fly-tipping", text), old) is None
    match = score(an_enquiry(2, "cllr-okafor", "Rubbish", f"{text}, sw1a1aa"), old)
    assert match.reason == "both name postcode SW1A 1AA; texts alike"


@pytest.mark.unit
def test_a_short_follow_up_matches_one_question_of_a_longer_enquiry():
    old = an_enquiry(
        1,
        subject="Three things in Riverside",
        body="1. Fly-tipping behind the shops at 4 Mill Lane.\n2. A pothole on the High Street"
        "\n3. The litter bins on the green are overflowing.",
    )
    new = an_enquiry(2, subject="Mill Lane", body="Fly-tipping behind the shops again, 4 Mill Lane")
    match = score(new, old)
    assert match.reason == "same member; texts alike"


@pytest.mark.unit
def test_only_an_enquiry_received_in_the_30_days_before_counts():
    new = an_enquiry(2, subject="Bins missed")
    in_window = an_enquiry(1, subject="Bins missed", at=NOW - timedelta(days=30))
    too_old = an_enquiry(1, subject="Bins missed", at=NOW - timedelta(days=30, seconds=1))
    later = an_enquiry(1, subject="Bins missed", at=NOW + timedelta(minutes=1))
    assert score(new, in_window) is not None
    assert score(new, too_old) is None and score(new, later) is None


@pytest.mark.unit
def test_the_best_few_matches_are_flagged_highest_first():
    new = an_enquiry(9, subject="Bins missed on Mill Lane")
    older = [
        an_enquiry(n, subject=s, at=NOW - timedelta(days=n))
        for n, s in enumerate(
            [
                "Bins",
                "Bins missed Mill Lane",
                "Bins Mill Lane",
                "Mill Lane bins",
                "Missed Mill Lane",
            ],
            start=1,
        )
    ]
    # 2 (1.0), then 3, 4 and 5 (0.75 each) most recent first, three at most; 1 is not alike
    assert [m.case_id for m in possible_duplicates(new, older)] == [2, 3, 4]


# ----- flagging at open, on both databases ------------------------------------------------------

_serial = itertools.count()


class Mailbox:
    """The shared mailbox (a Maildir) with a supervisor on the team, read by the pipeline."""

    def __init__(self, maildir, db_url, config):
        self.maildir = maildir
        env = settings_env(db_url, f"maildir://{maildir}")
        self.deps = build_deps(load_settings(str(config), env), FrozenClock(NOW))

    def receive(self, sender, subject, body, at=NOW):
        raw = make_email(sender, [MAILBOX], subject, body)
        deliver(self.maildir, f"{next(_serial):06d}.test", raw, at)
        build_runner(self.deps).drain()

    def case(self, reference):
        with session(self.deps.engine) as s:
            return s.exec(select(Case).where(Case.reference == reference)).one()

    def links(self):
        with session(self.deps.engine) as s:
            refs = {c.id: c.reference for c in s.exec(select(Case))}
            return [
                (refs[k.case_id], refs[k.other_case_id], k.kind, k.score, k.reason)
                for k in s.exec(select(CaseLink).order_by(CaseLink.id))
            ]

    def events(self, reference, kind):
        case = self.case(reference)
        with session(self.deps.engine) as s:
            rows = s.exec(select(Event).where(Event.case_id == case.id, Event.kind == kind))
            return [e.detail for e in rows]

    def team_notices(self):
        with session(self.deps.engine) as s:
            rows = s.exec(select(Outbox).where(Outbox.kind == "team").order_by(Outbox.id))
            return [(o.dedupe_key, o.to) for o in rows]


@pytest.fixture
def mailbox(maildir, db_url, tmp_path):
    config = tmp_path / "mailbridge.toml"
    config.write_text(f'[team]\nsupervisors = ["{SUPERVISOR}"]\n')
    box = Mailbox(maildir, db_url, config)
    yield box
    box.deps.engine.dispose()


DUMPED = "Bags of rubbish dumped behind 4 Mill Lane again; the fly-tipping is getting worse."


def test_another_members_enquiry_about_the_same_address_is_flagged_never_merged(mailbox):
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED, at=NOW - timedelta(days=2))
    mailbox.receive(OKAFOR, "Rubbish at 4 Mill Lane", f"Residents tell me: {DUMPED}")
    [(new, old, kind, score_, reason)] = mailbox.links()
    assert (new, old, kind) == ("ME-2026-00002", "ME-2026-00001", "duplicate")
    assert score_ >= 0.6 and reason == "both name 4 mill lane; texts alike"
    assert mailbox.events("ME-2026-00001", "possible-duplicate")[0]["other"] == "ME-2026-00002"
    assert mailbox.events("ME-2026-00002", "possible-duplicate")[0]["other"] == "ME-2026-00001"
    assert mailbox.team_notices() == [("duplicate:ME-2026-00002:ME-2026-00001", [SUPERVISOR])]
    for reference in ("ME-2026-00001", "ME-2026-00002"):  # both carry on as they were
        assert mailbox.case(reference).status == "awaiting_response"
        assert mailbox.case(reference).kind == "members_enquiry"


def test_the_places_an_enquiry_names_are_stored_for_later_look_ups(mailbox):
    mailbox.receive(RESIDENT, "Fly-tipping", "Outside Flat 3, 4 Mill Lane, SW1A 1AA")
    with session(mailbox.deps.engine) as s:
        stored = {p.place for p in s.exec(select(CasePlace))}
    assert stored == {"postcode:SW1A1AA", "street:4 mill lane"}


def test_a_case_received_more_than_30_days_earlier_is_not_flagged(mailbox):
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED, at=NOW - timedelta(days=31))
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED)
    assert mailbox.links() == []


def test_a_closed_case_is_not_flagged(mailbox):
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED, at=NOW - timedelta(days=2))
    with session(mailbox.deps.engine) as s:
        case = s.exec(select(Case)).one()
        case.status, case.closed_at = "closed", NOW - timedelta(days=1)
        s.commit()
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED)
    assert mailbox.links() == []


def test_the_same_members_enquiries_about_different_things_are_not_flagged(mailbox):
    mailbox.receive(PATEL, "Bins missed", "Please can someone look at this.")
    mailbox.receive(PATEL, "Pothole", "Please can someone look at this.")
    assert mailbox.links() == []
    assert mailbox.team_notices() == []


# ----- the candidates: one look-up, and the texts of cases seen before remembered ---------------


def candidates_afresh(mailbox, new):
    """What _candidates gives for `new` from what the daemon remembers, and read afresh."""
    engine = mailbox.deps.engine
    with session(engine) as s:
        remembered = links._candidates(s, new)
        assert remembered and not s.info[links._UNCOMMITTED]  # none read
        links._REMEMBERED.pop(engine)
        read = links._candidates(s, new)
        assert s.info[links._UNCOMMITTED].keys() == read.keys()
    return remembered, read


def test_remembered_candidates_are_what_the_database_gives(mailbox):
    long = "Überall Müll 🗑️ behind 4 Mill Lane. " * 40  # longer than TEXT_CHARS, not ASCII
    raw = make_email(PATEL, [MAILBOX], "[External] Fly-tipping", DUMPED)
    no_message_id = b"\n".join(line for line in raw.split(b"\n") if b"Message-ID" not in line)
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED, at=NOW - timedelta(days=4))
    deliver(mailbox.maildir, "no-message-id.test", no_message_id, NOW - timedelta(days=3))
    build_runner(mailbox.deps).drain()
    mailbox.receive(OKAFOR, "Rubbish at 4 Mill Lane", long, at=NOW - timedelta(days=2))
    mailbox.receive(PATEL, "Re: Mill Lane", f"Thanks. {DUMPED}", at=NOW - timedelta(days=1))
    latest = mailbox.case("ME-2026-00004")
    new = enquiry(latest.id + 1, latest.member, NOW, wording("Mill Lane again", DUMPED))
    remembered, read = candidates_afresh(mailbox, new)
    assert remembered == read
    assert [o.reference for o in read.values()] == [f"ME-2026-0000{n}" for n in (1, 2, 3, 4)]
    by_reference = {o.reference: o.enquiry for o in read.values()}
    assert by_reference["ME-2026-00002"].wording.text == "  Fly-tipping\n"  # no Message-ID: no body
    assert by_reference["ME-2026-00003"].places == {"street:4 mill lane"}  # named by both
    opening = by_reference["ME-2026-00003"].wording.text
    assert len(opening) == len("Rubbish at 4 Mill Lane\n") + TEXT_CHARS


def test_a_case_rolled_back_is_not_remembered_for_the_next_given_its_id(mailbox, monkeypatch):
    """SQLite gives a rolled-back case's id to the next case: what was read or opened in a
    transaction is only remembered once it commits."""
    real = pipeline.flag_possible_duplicates

    def failing_after_it(*args):
        real(*args)
        raise RuntimeError("disk on fire")

    mailbox.receive(PATEL, "Street lights out", "Please can someone look at this.")
    monkeypatch.setattr(pipeline, "flag_possible_duplicates", failing_after_it)
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED, at=NOW - timedelta(days=2))
    monkeypatch.undo()
    with session(mailbox.deps.engine) as s:  # a case opened without being flagged: imported
        member = s.exec(select(Case.member)).one()
        case = add_case(s, "ME-2026-00099", NOW - timedelta(days=1))
        case.member, case.subject = member, "Pothole on the green"
        s.commit()
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED)  # ME-2026-00002 again
    assert mailbox.links() == []
    for end in (Session.rollback, Session.close):  # after its savepoint was released
        s = session(mailbox.deps.engine)
        with s.begin_nested():
            case = add_case(s, "ME-2026-00100", NOW)
            case.member = member
            said = wording("Graffiti", "Please look at this.")
            links.flag_possible_duplicates(s, None, case, said, NOW)
        end(s)
        s.connection()  # the session used again
        s.commit()
    remembered = links._remembered(mailbox.deps.engine).values()
    assert {o.reference for o in remembered} == {"ME-2026-00001", "ME-2026-00099", "ME-2026-00002"}


def test_an_enquiry_like_several_open_cases_is_flagged_with_each_best_first(mailbox):
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED, at=NOW - timedelta(days=3))
    mailbox.receive(PATEL, "Mill Lane fly-tipping", DUMPED, at=NOW - timedelta(days=2))
    mailbox.receive(PATEL, "Fly-tipping on Mill Lane", DUMPED)
    flagged = [(new, old) for new, old, *_ in mailbox.links()]
    assert flagged == [("ME-2026-00002", "ME-2026-00001"), ("ME-2026-00003", "ME-2026-00002"),
                       ("ME-2026-00003", "ME-2026-00001")]  # fmt: skip
    assert [key for key, _ in mailbox.team_notices()] == [f"duplicate:{n}:{o}" for n, o in flagged]
    events = mailbox.events("ME-2026-00003", "possible-duplicate")
    assert [e["other"] for e in events] == ["ME-2026-00002", "ME-2026-00001"]


def test_the_member_and_place_look_ups_in_one_statement_find_what_each_does(engine):
    """Each with its own order and limit: the 10 latest of the member's 11 open, top-level
    cases, and the 20 latest of the 38 open cases naming the place."""
    params = {"member": "cllr-patel", "places": ["street:4 mill lane"], "case_row": 0,
              "since": NOW - timedelta(days=30), "until": NOW}  # fmt: skip
    with session(engine) as s:
        for n in range(40):
            case = add_case(s, f"ME-2026-{n:05d}", NOW - timedelta(days=n % 20, hours=n))
            case.member = "cllr-patel" if n < 13 else "cllr-okafor"
            case.status = "closed" if n == 5 else case.status
            case.received_at -= timedelta(days=31 if n == 20 else 0)
            case.parent_id = 1 if n == 7 else None  # a part
            s.add(
                CasePlace(case_id=case.id, place=params["places"][0], received_at=case.received_at)
            )
            s.flush()
        conn = s.connection()
        one = Counter(conn.execute(links._BY_MEMBER_OR_PLACE, params))
        each = Counter(
            [*conn.execute(links._BY_MEMBER, params), *conn.execute(links._BY_PLACE, params)]
        )
    assert one == each
    assert sum(n for (_, place), n in one.items() if place is None) == links.MEMBER_CANDIDATES
    assert one.total() == links.MEMBER_CANDIDATES + links.PLACE_CANDIDATES
