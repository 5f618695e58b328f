"""The clock's sweeps against a real database: chasers, escalations, delays, follow-ups and
closes go out on the right working days, once, however often or late the sweep runs."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.clock import FrozenClock
from mailbridge.config import load_settings
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.schedule.plan import CaseClock, upcoming
from mailbridge.schedule.policy import ClockPolicy
from mailbridge.schedule.scheduler import AdvisoryLock, lead
from mailbridge.schedule.sweep import sweep
from mailbridge.store.db import make_engine, session
from mailbridge.store.models import Case, Event, Outbox
from tests.conftest import MAILBOX, TEST_DIRECTORY, deliver, settings_env, wait_for
from tests.mail import make_email

PATEL, SINGH, EVANS = (
    "asha.patel@council.example",
    "dev.singh@council.example",
    "gwen.evans@council.example",
)
TEAM = "me.team@council.example"
REF = "ME-2026-00001"
THURSDAY_17_DEC = datetime(2026, 12, 17, 10, 0, tzinfo=UTC)
_serial = itertools.count()


def at(day: int, month: int = 12, year: int = 2026, hour: int = 17, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def steps(start: datetime, end: datetime, every: timedelta):
    while start <= end:
        yield start
        start += every


class Council:
    """The mailbox, the pipeline and the clock, with the time in the test's hands."""

    def __init__(
        self, maildir: Path, db_url: str, tmp_path: Path, *, digest=False, template_dir=None
    ):
        self.maildir = maildir
        directory = tmp_path / "directory.toml"
        people = TEST_DIRECTORY.read_text()
        if digest:  # Cllr Patel asks for the weekly digest
            people = people.replace('party = "Labour"', 'party = "Labour"\ndigest = true')
        directory.write_text(people)
        config = tmp_path / "mailbridge.toml"
        config.write_text(
            f'[team]\nsupervisors = ["{TEAM}"]\n'
            + (f'[templates]\ndir = "{template_dir}"\n' if template_dir else "")
        )
        env = settings_env(db_url, f"maildir://{maildir}", MAILBRIDGE_DIRECTORY=str(directory))
        self.deps = build_deps(load_settings(config, env), FrozenClock(THURSDAY_17_DEC))
        self._context: PipelineContext | None = None

    def receive(self, raw: bytes, when: datetime) -> None:
        self.deps.clock.current = when
        deliver(self.maildir, f"{next(_serial):06d}.test", raw, when)
        build_runner(self.deps).drain()

    def enquiry(self, when: datetime = THURSDAY_17_DEC, sender: str = PATEL) -> None:
        self.receive(make_email(sender, [MAILBOX], "Fly-tipping on Mill Lane", "Bags."), when)

    def officer_says(self, body: str, when: datetime, reference: str = REF) -> None:
        self.receive(make_email(SINGH, [MAILBOX], f"Re: Fly-tipping [{reference}]", body), when)

    def sweep(self, when: datetime):
        """One sweep as the daemon runs it: its mailer built once, the time handed in."""
        if self._context is None:
            self._context = PipelineContext.from_settings(self.deps.settings, self.deps.directory)
        policy = ClockPolicy.from_settings(self.deps.settings.clock)
        return sweep(self.deps.engine, self._context.mailer, policy, when)

    def sweep_through(self, moments) -> Counter:
        queued: Counter = Counter()
        for moment in moments:
            queued.update(self.sweep(moment).queued)
        return queued

    def sent(self, *kinds: str) -> list[tuple[str, list[str], list[str], datetime]]:
        """(dedupe key, to, cc, queued at) of the clock's case emails (or these kinds), in order."""
        with session(self.deps.engine) as s:
            rows = s.exec(select(Outbox).order_by(Outbox.id)).scalars()
            wanted = kinds or (
                "chaser",
                "escalation",
                "delay_reminder",
                "delay_passed",
                "completion_check",
                "completion_confirmed",
                "auto_closed",
                "team",
            )
            return [(o.dedupe_key, o.to, o.cc, o.created_at) for o in rows if o.kind in wanted]

    def body(self, key: str) -> str:
        with session(self.deps.engine) as s:
            raw = s.exec(select(Outbox.raw).where(Outbox.dedupe_key == key)).scalar_one()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        return " ".join(message.get_body(("plain",)).get_content().split())

    def case(self, reference: str = REF) -> Case:
        with session(self.deps.engine) as s:
            return s.exec(select(Case).where(Case.reference == reference)).scalar_one()

    def timeline(self, reference: str = REF) -> list[str]:
        case = self.case(reference)
        with session(self.deps.engine) as s:
            rows = s.exec(select(Event.kind).where(Event.case_id == case.id).order_by(Event.id))
            return [kind for kind in rows.scalars() if kind != "email-queued"]


@pytest.fixture
def council(maildir, db_url, tmp_path):
    c = Council(maildir, db_url, tmp_path)
    yield c
    c.deps.engine.dispose()


def test_an_enquiry_of_thursday_17_december_is_chased_and_escalated_over_christmas(council):
    council.enquiry()
    end = at(8, 1, 2027, hour=18)
    queued = council.sweep_through(steps(THURSDAY_17_DEC, end, timedelta(minutes=53)))
    assert (queued["chaser"], queued["escalation"]) == (1, 5)
    sent = council.sent()
    assert [(key, to, cc) for key, to, cc, _ in sent] == [
        (f"chaser:{REF}:1", [SINGH], []),
        (f"escalation:{REF}:1", [EVANS], [SINGH]),  # the manager; the officer (the lead) copied
        (f"escalation:{REF}:2", [EVANS], [SINGH]),
        (f"escalation:{REF}:3", [EVANS], [SINGH]),
        (f"escalation:{REF}:4", [EVANS], [SINGH]),
        (f"escalation:{REF}:5", [EVANS], [SINGH]),
    ]
    # each went at the first sweep after its working day's cut-off (17:00, GMT in winter)
    slots = [at(22), at(24), at(30), at(4, 1, 2027), at(6, 1, 2027), at(8, 1, 2027)]
    for (_, _, _, queued_at), slot in zip(sent, slots, strict=True):
        assert slot <= queued_at < slot + timedelta(minutes=53)
    case = council.case()
    assert (case.status, case.chasers_sent, case.escalations) == ("escalated", 1, 5)
    assert case.next_action_at == at(12, 1, 2027)
    assert council.timeline().count("escalated") == 5
    assert "Thursday 24 December" in council.body(f"chaser:{REF}:1")


def test_a_sweep_every_minute_sends_each_thing_once(council):
    council.enquiry()
    for day in (22, 24):  # a sweep a minute either side of the chaser's and an escalation's slot
        council.sweep_through(steps(at(day, hour=16), at(day, hour=19), timedelta(minutes=1)))
    assert [key for key, *_ in council.sent()] == [f"chaser:{REF}:1", f"escalation:{REF}:1"]
    assert (council.case().chasers_sent, council.case().escalations) == (1, 1)


def test_running_a_sweep_twice_or_late_sends_nothing_twice(council):
    council.enquiry()
    assert council.sweep(at(22)).queued == {"chaser": 1}
    assert council.sweep(at(22)).queued == {}
    assert council.sweep(at(23, hour=9)).queued == {}
    with session(council.deps.engine) as s:  # someone touched the case: the clock looks again
        s.execute(update(Case).values(next_action_at=at(23, hour=10)))
        s.commit()
    assert council.sweep(at(23, hour=10)).queued == {}
    assert council.case().chasers_sent == 1


def test_after_downtime_only_the_latest_escalation_goes_numbered_as_it_would_have_been(council):
    council.enquiry()
    council.sweep(at(17, hour=11))
    stats = council.sweep(at(5, 1, 2027, hour=9))  # down from the 17th to 5 January
    assert stats.queued == {"escalation": 1}
    assert [key for key, *_ in council.sent()] == [f"escalation:{REF}:3"]
    case = council.case()
    assert (case.chasers_sent, case.escalations, case.status) == (0, 1, "escalated")


def test_a_delay_advised_moves_the_chasers_and_escalations_to_the_new_date(council):
    council.enquiry()
    council.officer_says("#delay 2027-01-08 waiting for the contractor", at(21, hour=10))
    council.sweep_through(steps(at(21, hour=10), at(13, 1, 2027), timedelta(minutes=67)))
    sent = council.sent("delay_reminder", "delay_passed", "chaser", "escalation")
    assert [(key, to) for key, to, _, _ in sent] == [
        (f"delay-reminder:{REF}:2027-01-08", [SINGH]),  # the working day before the new date
        (f"delay-passed:{REF}:2027-01-08", [PATEL]),  # the member: the date has passed
        (f"escalation:{REF}:2027-01-08:1", [EVANS]),  # and escalation starts from it
        (f"escalation:{REF}:2027-01-08:2", [EVANS]),
    ]
    assert at(7, 1, 2027) <= sent[0][3] < at(7, 1, 2027, hour=18)
    assert "Friday 8 January" in council.body(f"delay-passed:{REF}:2027-01-08")
    assert council.case().status == "delay_advised"  # still: the delay is what is late


def test_scheduled_work_is_followed_up_and_the_member_told_when_it_is_done(council):
    council.enquiry()
    council.officer_says("#scheduled 2027-01-06 clearing the bags", at(18, hour=10))
    council.sweep_through(steps(at(18, hour=10), at(7, 1, 2027, hour=9), timedelta(hours=1)))
    assert [
        (key, to) for key, to, *_ in council.sent("chaser", "escalation", "completion_check")
    ] == [
        (f"completion-check:{REF}:2027-01-06", [SINGH]),  # no chaser: the work is the answer
    ]
    assert "#resolved" in council.body(f"completion-check:{REF}:2027-01-06")
    council.officer_says("#resolved", at(7, 1, 2027, hour=10))
    [(key, to, _, _)] = council.sent("completion_confirmed")
    assert to == [PATEL] and "is complete" in council.body(key)
    assert "work-scheduled" in council.timeline() and council.case().status == "resolved"
    # ten working days of silence later, the case closes and the member is told
    council.sweep_through(steps(at(7, 1, 2027, hour=11), at(22, 1, 2027), timedelta(hours=3)))
    case = council.case()
    assert (case.status, case.next_action_at) == ("closed", None)
    assert case.closed_at == at(21, 1, 2027, hour=17)  # the first sweep after 17:00 on day 10
    [(key, to, _, _)] = council.sent("auto_closed")
    assert (key, to) == (f"auto-close:{REF}", [PATEL])
    assert council.timeline()[-1] == "auto-closed"


def test_an_officers_words_confirming_scheduled_work_reach_the_member_as_complete(council):
    council.enquiry()
    council.officer_says("#scheduled 2027-01-06 clearing the bags", at(18, hour=10))
    council.officer_says("All cleared this morning.\n#resolved", at(6, 1, 2027, hour=12))
    [(key, to, _, _)] = council.sent("relay")
    assert to == [PATEL]
    body = council.body(key)
    assert "All cleared this morning." in body
    assert "The work scheduled for Wednesday 6 January is complete." in body
    assert council.sweep(at(6, 1, 2027)).queued == {}  # no "is it done?" once it is


def test_a_member_who_replies_after_the_answer_keeps_the_case_open(council):
    council.enquiry()
    council.officer_says("Cleared today.\n#resolved", at(18, hour=10))
    reply = make_email(PATEL, [MAILBOX], f"Re: Fly-tipping [{REF}]", "They are back already.")
    council.receive(reply, at(21, hour=9))
    council.sweep_through(steps(at(21, hour=9), at(29, 1, 2027), timedelta(hours=5)))
    case = council.case()
    assert case.member_replied_at == at(21, hour=9)
    assert (case.status, case.next_action_at) == ("resolved", None)
    assert council.sent("auto_closed") == []


def test_a_case_left_in_triage_is_put_to_the_team_once(council):
    council.enquiry(sender="resident@example.org")
    council.sweep_through(steps(THURSDAY_17_DEC, at(31), timedelta(hours=2)))
    [(key, to, _, queued_at)] = council.sent()
    assert (key, to) == (f"triage-overdue:{REF}", [TEAM])
    assert at(18) <= queued_at < at(18, hour=19)
    assert council.case().next_action_at is None


def test_imported_and_closed_cases_are_never_swept(council):
    council.enquiry()
    council.enquiry(at(17, hour=11), sender="ben.okafor@council.example")
    with session(council.deps.engine) as s:
        s.execute(update(Case).where(Case.reference == REF).values(origin="imported"))
        s.execute(update(Case).where(Case.reference != REF).values(status="closed"))
        s.commit()
    stats = council.sweep(at(8, 1, 2027))
    assert (stats.cases, stats.queued) == (2, {})
    assert council.sent() == []
    with session(council.deps.engine) as s:
        assert s.exec(select(func.count()).where(Case.next_action_at.is_not(None))).scalar() == 0


def test_the_weekly_digest_goes_on_monday_at_eight_once_a_week(maildir, db_url, tmp_path):
    council = Council(maildir, db_url, tmp_path, digest=True)
    try:
        council.enquiry()  # Thursday of week 51, after its digest: none that week
        council.enquiry(at(18, hour=9))
        council.sweep_through(steps(at(17, hour=11), at(29, hour=12), timedelta(hours=1)))
        digests = council.sent("digest")
        assert [(key, to) for key, to, *_ in digests] == [
            ("digest:cllr-patel:2026-W52", [PATEL]),
            ("digest:cllr-patel:2026-W53", [PATEL]),
        ]
        assert digests[0][3] == at(21, hour=8)
        body = council.body("digest:cllr-patel:2026-W52")
        assert "ME-2026-00001" in body and "ME-2026-00002" in body
        council.sweep(at(4, 1, 2027, hour=7, minute=59))  # then down from Monday 08:00 ...
        council.sweep(at(5, 1, 2027, hour=7))  # ... to Tuesday morning: sent late, once
        council.sweep(at(5, 1, 2027, hour=9))
        council.sweep(at(12, 1, 2027, hour=9))  # a day or more late: that week goes without
        assert [key for key, *_ in council.sent("digest")][2:] == ["digest:cllr-patel:2027-W01"]
    finally:
        council.deps.engine.dispose()


def test_one_case_that_cannot_be_sent_does_not_stop_the_clock_for_the_others(
    maildir, db_url, tmp_path
):
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "escalation.txt.j2").write_text("{{ no_such_thing.at_all }}\n")
    council = Council(maildir, db_url, tmp_path, template_dir=broken)  # fault at the edge
    try:
        council.enquiry()  # escalated on the 24th: its template fails
        council.enquiry(at(21, hour=9))  # chased on the 24th
        stats = council.sweep(at(24))
        assert (stats.failed, stats.queued) == (1, {"chaser": 1})
        assert council.case().next_action_at == at(24, hour=17, minute=30)  # looked at again
        assert council.case("ME-2026-00002").chasers_sent == 1
    finally:
        council.deps.engine.dispose()


# ----- two sweepers on one PostgreSQL database -------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("leader_lock", [True, False], ids=["leader-lock", "skip-locked-only"])
def test_two_sweepers_through_a_fortnight_send_every_dedupe_key_once(council, db_url, leader_lock):
    engine = council.deps.engine
    start = at(14, hour=8)
    cases = _seed(engine, start, 200)
    stop = start + timedelta(days=14)
    moments = list(steps(start, stop, timedelta(minutes=90)))  # on each day's 17:00 too
    errors: list[BaseException] = []
    swept: Counter = Counter()
    settings = council.deps.settings
    policy = ClockPolicy.from_settings(settings.clock)
    barrier = threading.Barrier(2)
    locks = [AdvisoryLock(db_url), AdvisoryLock(db_url)]

    def sweeper(lock: AdvisoryLock) -> None:
        mailer = PipelineContext.from_settings(settings, council.deps.directory).mailer
        try:
            for moment in moments:
                barrier.wait()  # both sweep the same moment at the same time
                if not leader_lock or lock.acquire():
                    stats = sweep(engine, mailer, policy, moment)
                    assert stats.failed == 0
                    swept[id(lock)] += 1
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=sweeper, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for lock in locks:
        lock.release()
    assert errors == []
    assert len(swept) == (1 if leader_lock else 2)  # with the lock, one sweeper did it all
    calendar = WorkingCalendar.from_settings(settings.clock)
    expected = Counter(
        action.key
        for c in cases
        for action in upcoming(c, calendar, policy.for_unit(c.delivery_unit), start, stop)
    )
    with session(engine) as s:
        keys = Counter(s.exec(select(Outbox.dedupe_key).where(Outbox.kind != "digest")).scalars())
        counts = s.exec(select(func.sum(Case.chasers_sent), func.sum(Case.escalations))).one()
    assert keys == expected and max(keys.values()) == 1
    kinds = Counter(key.split(":")[0] for key in keys)
    assert tuple(counts) == (kinds["chaser"], kinds["escalation"])
    assert kinds["chaser"] == 200 and kinds["escalation"] > 200


def _seed(engine, start: datetime, n: int) -> list[CaseClock]:
    """`n` Street Scene cases received over the first three working days, Core-inserted."""
    rows = [
        {
            "reference": f"ME-2025-{i + 1:05d}",  # last year's: no clash with new cases
            "status": "awaiting_response",
            "origin": "direct",
            "kind": "members_enquiry",
            "member": "cllr-okafor",
            "member_address": "ben.okafor@council.example",
            "delivery_unit": "Street Scene",
            "officer": "o-singh",
            "subject": f"Enquiry {i}",
            "received_at": start + timedelta(hours=(i * 7) % 72),
            "due_at": start + timedelta(days=7),  # shown in the emails; the plan has its own
            "created_at": start,
            "updated_at": start,
            "next_action_at": start,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(Case.__table__.insert(), rows)
    return [CaseClock(r["reference"], r["status"], r["received_at"],
                      delivery_unit=r["delivery_unit"]) for r in rows]  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_leader_whose_database_connection_dies_stops_leading_and_leads_again(db_url):
    lock, stop, term = AdvisoryLock(db_url), threading.Event(), threading.Event()
    terms: list[str] = []

    def work() -> None:  # the mailbox ingest: runs until its term ends
        terms.append("leading")
        term.wait()

    leader = threading.Thread(target=lead, args=(lock, stop, term, work, lambda: None),
                              kwargs={"sweep_seconds": 1})  # fmt: skip
    leader.start()
    try:
        wait_for(lambda: terms == ["leading"], 30)
        engine = make_engine(db_url)
        with engine.begin() as conn:  # the fault, at the edge: the server drops the connection
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ))  # fmt: skip
        engine.dispose()
        wait_for(lambda: len(terms) == 2, 30)  # noticed, stopped, took the lock again
    finally:
        stop.set()
        leader.join(15)
    assert not leader.is_alive()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_daemons_on_one_database_and_mailbox_send_nothing_twice(
    maildir, db_url, smtp_sink, tmp_path
):
    """Two `mailbridge run` processes: one leads (mailbox and clock), both send; when the
    leader is killed the other takes over; every email reaches the SMTP server once."""
    config = tmp_path / "mailbridge.toml"
    config.write_text(  # sweep and flush every second; no flood limit for the test
        "[clock]\nsweep_seconds = 1\n[source]\npoll_seconds = 1\n"
        "[outbox]\nflush_seconds = 1\nper_recipient_per_hour = 999\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")}
    env |= settings_env(db_url, f"maildir://{maildir}", MAILBRIDGE_OUTBOX=smtp_sink.url)
    engine = make_engine(db_url)
    _seed(engine, datetime.now(UTC) - timedelta(days=21), 40)  # all overdue: one email each
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    daemons = []

    def start(log: Path) -> subprocess.Popen:
        command = [sys.executable, "-m", "mailbridge", "--config", str(config), "run"]
        daemons.append(subprocess.Popen(command, env=env, stderr=log.open("w")))
        return daemons[-1]

    def sent() -> Counter:
        return Counter(m.message_id for m in smtp_sink.messages)

    def outbox_sent() -> int:
        with session(engine) as s:
            return s.exec(select(func.count()).where(Outbox.status == "sent")).scalar()

    def leading() -> list[int]:
        return [i for i, log in enumerate(logs) if "leading" in log.read_text()]

    try:
        for log in logs:
            start(log)
        wait_for(lambda: len(leading()) == 1, 30)
        [first] = leading()
        leader, follower = daemons[first], logs[1 - first]
        wait_for(lambda: "another mailbridge daemon leads" in follower.read_text(), 30)
        wait_for(lambda: outbox_sent() == 40, 30)  # the leader's first sweep
        deliver(maildir, "1.eml", make_email(PATEL, [MAILBOX], "Fly-tipping"), datetime.now(UTC))
        wait_for(lambda: outbox_sent() == 42, 30)  # ack and forward
        leader.kill()  # SIGKILL: no goodbye; its connection, and the lock, die with it
        leader.wait(10)
        wait_for(lambda: "leading" in follower.read_text(), 30)
        with session(engine) as s:  # every case touched: the new leader's clock looks again
            s.execute(update(Case).values(next_action_at=datetime.now(UTC)))
            s.commit()
        deliver(maildir, "2.eml", make_email(PATEL, [MAILBOX], "Graffiti"), datetime.now(UTC))
        wait_for(lambda: outbox_sent() == 44, 30)
        time.sleep(2)  # two more sweeps and flushes: nothing more may go
        assert outbox_sent() == 44
        assert len(sent()) == 44 and max(sent().values()) == 1
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(15)
        engine.dispose()
    assert "mailbridge stopped" in follower.read_text()
    assert len(leading()) == 2  # each led in turn
