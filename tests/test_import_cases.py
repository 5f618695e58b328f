"""`mailbridge import cases`: all or nothing, every bad row named, history on today's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from mailbridge.cases.references import next_reference
from mailbridge.config import ReferenceFormat
from mailbridge.store.db import session
from mailbridge.store.models import Case, DeliveryUnitRecord, Event, MemberRecord, Outbox
from tests.test_report_support import CAL, cli_runner, csv_text, london

HEADER = [
    "reference",
    "received_at",
    "member",
    "delivery_unit",
    "subject",
    "resolved_at",
    "delay_advised_at",
    "closed_at",
]


@pytest.fixture
def mailbridge(db_url, monkeypatch, tmp_path):
    return cli_runner(db_url, monkeypatch, tmp_path)


def line(
    reference: str,
    received: str,
    member: str = "cllr-patel",
    unit: str = "Highways",
    resolved: str = "",
    delay: str = "",
    closed: str = "",
    *extra: str,
) -> list[str]:
    """One file row in HEADER's order (subject left empty), then any extra columns."""
    return [reference, received, member, unit, "", resolved, delay, closed, *extra]


def history(n: int) -> list[list[str]]:
    """n good rows: one case every two hours from January 2020, resolved two days later."""
    start = datetime(2020, 1, 6, 9, 0)
    rows = []
    for i in range(n):
        received = start + timedelta(hours=2 * i)
        resolved = received + timedelta(days=2)
        rows.append(
            [
                f"ME-{received.year}-{i + 1:05d}",
                received.isoformat(sep=" ", timespec="minutes"),
                "cllr-patel",
                "Highways",
                f"Pothole {i}",
                resolved.isoformat(timespec="minutes"),
                "",
                "",
            ]
        )
    return rows


def write(tmp_path, rows, header=HEADER, name="crm.csv"):
    path = tmp_path / name
    path.write_text(csv_text(header, rows), encoding="utf-8")
    return path


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()


def test_one_bad_row_among_ten_thousand_is_named_and_nothing_is_imported(
    mailbridge, engine, tmp_path
):
    rows = history(10_000)
    rows[6000][5] = "next Tuesday"  # line 6002: the header is line 1
    rows[7000][2] = "Cllr Nobody Knows"  # a member the directory does not know
    path = write(tmp_path, rows)
    result = mailbridge("import", "cases", path, code=1)
    assert result.stderr.splitlines()[0] == (
        f"{path}:6002: resolved_at: not an ISO 8601 time: 'next Tuesday' "
        "(e.g. 2026-03-02T09:30 or 2026-03-02T09:30:00Z)"
    )
    assert "1 errors; nothing imported" in result.stderr
    assert count(engine, Case) == 0
    assert count(engine, MemberRecord) == 0  # not even the historical member

    rows[6000][5] = ""
    result = mailbridge("import", "cases", write(tmp_path, rows))
    assert "imported 10000 cases" in result.stdout
    assert "recorded as historical: 1 member" in result.stdout
    assert count(engine, Case) == 10_000


def test_every_bad_row_is_reported_with_its_line_and_column(mailbridge, engine, tmp_path):
    good = history(1)[0]
    rows = [
        good,
        line("", "2020-01-06 10:00"),
        line("ME-2020-90002", "2020-01-06 10:00", member=""),
        line("ME-2020-90003", "2020-01-06 10:00", resolved="2020-01-05 10:00"),
        line("ME-2020-90004", "2020-13-06 10:00"),
        line(good[0].lower(), "2020-01-06 10:00"),
        line("ME-2020-90006", "2099-01-06 10:00"),
        line("ME-2020-90007", "2020-01-06 10:00", "cllr-patel", "Highways", "", "", "", "extra"),
    ]
    path = write(tmp_path, rows)
    errors = mailbridge("import", "cases", path, code=1).stderr.splitlines()[:-1]
    assert errors == [
        f"{path}:3: reference: is required",
        f"{path}:4: member: is required",
        f"{path}:5: resolved_at: 2020-01-05 10:00 is before received_at 2020-01-06 10:00",
        f"{path}:6: received_at: not an ISO 8601 time: '2020-13-06 10:00' "
        "(e.g. 2026-03-02T09:30 or 2026-03-02T09:30:00Z)",
        f"{path}:7: reference: ME-2020-00001 is also on line 2",
        f"{path}:8: received_at: 2099-01-06 10:00 is in the future",
        f"{path}:9: -: 9 fields, but the header has 8",
    ]
    assert count(engine, Case) == 0


def test_a_reference_already_stored_is_a_bad_row_listed_with_the_others(
    mailbridge, engine, tmp_path
):
    mailbridge("import", "cases", write(tmp_path, history(3)))
    rows = history(5)[2:]
    rows[1][1] = ""
    path = write(tmp_path, rows, name="more.csv")
    errors = mailbridge("import", "cases", path, code=1).stderr.splitlines()
    assert errors[:2] == [
        f"{path}:2: reference: ME-2020-00003 is already stored",
        f"{path}:3: received_at: is required",
    ]
    assert count(engine, Case) == 3


def test_a_file_with_wrong_columns_is_refused_before_any_row(mailbridge, tmp_path):
    header = ["reference", "received", "member", "delivery_unit", "subject", "resolved_at",
              "delay_advised_at", "closed_at"]  # fmt: skip
    path = write(tmp_path, history(2), header=header)
    errors = mailbridge("import", "cases", path, code=1).stderr
    assert f"{path}:1: received_at: missing column" in errors
    assert f"{path}:1: received: unknown column" in errors


def test_more_than_fifty_errors_are_counted_not_all_listed(mailbridge, tmp_path):
    rows = history(80)
    for r in rows:
        r[3] = ""
    stderr = mailbridge("import", "cases", write(tmp_path, rows), code=1).stderr
    assert len([line for line in stderr.splitlines() if ": delivery_unit: " in line]) == 50
    assert "... and 30 more errors" in stderr


def test_a_file_that_is_not_utf8_is_refused_with_the_line(mailbridge, tmp_path):
    path = write(tmp_path, history(3))
    path.write_bytes(path.read_bytes().replace(b"Pothole 1", b"Pothole \xe9"))
    assert f"{path}:3: -: not UTF-8 text" in mailbridge("import", "cases", path, code=1).stderr


def test_a_dry_run_checks_every_row_and_imports_nothing(mailbridge, engine, tmp_path):
    result = mailbridge("import", "cases", write(tmp_path, history(20)), "--dry-run")
    assert "20 cases, all good; nothing imported (--dry-run)" in result.stdout
    assert count(engine, Case) == 0


def test_times_without_an_offset_are_london_time_and_due_follows_the_live_rule(
    mailbridge, engine, tmp_path
):
    rows = [
        line("ME-2025-00001", "2025-07-01 09:30"),
        line("ME-2025-00002", "2025-12-01T09:30"),
        line("ME-2025-00003", "2025-12-01T09:30:00Z"),
        line("ME-2025-00004", "2025-12-19 17:30+00:00"),
    ]
    mailbridge("import", "cases", write(tmp_path, rows))
    with session(engine) as s:
        cases = {c.reference: c for c in s.exec(select(Case)).scalars()}
    assert cases["ME-2025-00001"].received_at == datetime(2025, 7, 1, 8, 30, tzinfo=UTC)
    assert cases["ME-2025-00002"].received_at == datetime(2025, 12, 1, 9, 30, tzinfo=UTC)
    assert cases["ME-2025-00003"].received_at == datetime(2025, 12, 1, 9, 30, tzinfo=UTC)
    # After Friday's cut-off the clock starts on Monday 22nd; then 23, 24, (Christmas Day and
    # Boxing Day on Thursday and Friday, the weekend), 29, 30, 31: due Wednesday 31 December.
    assert cases["ME-2025-00004"].due_at == london(2025, 12, 31, 17)
    for c in cases.values():
        assert c.due_at == CAL.due_at(c.received_at, 5)


def test_imported_cases_are_origin_imported_and_send_nothing(mailbridge, engine, tmp_path):
    header = [*HEADER, "origin", "kind", "feedback", "officer"]
    rows = [
        line(
            "ME-2025-00001",
            "2025-07-01 09:30",
            "cllr-patel",
            "Highways",
            "2025-07-02 10:00",
            "",
            "2025-07-20 10:00",
            *("direct", "service_request", "Not satisfied", "o-walsh"),
        ),
        [*line("ME-2025-00002", "2025-07-01 09:30", delay="2025-07-04 10:00"), "cc", "", "", ""],
    ]
    mailbridge("import", "cases", write(tmp_path, rows, header=header))
    with session(engine) as s:
        first, second = s.exec(select(Case).order_by(Case.reference)).scalars().all()
    assert {first.origin, second.origin} == {"imported"}
    assert (first.status, first.kind) == ("closed", "service_request")
    assert first.feedback == "not_satisfied"
    assert first.first_response_at == london(2025, 7, 2, 10)
    assert (second.status, second.first_response_at) == ("delay_advised", london(2025, 7, 4, 10))
    assert second.chasers_sent is None and second.reroutes is None  # never recorded
    assert count(engine, Outbox) == 0
    assert count(engine, Event) == 0


def test_members_and_dus_the_directory_does_not_know_are_recorded_as_historical(
    mailbridge, engine, tmp_path
):
    rows = [
        line("ME-2019-00001", "2019-05-01 10:00", "Cllr Asha Patel", "street scene"),
        line("ME-2019-00002", "2019-05-01 10:00", "ben.okafor@council.example"),
        line("ME-2019-00003", "2019-05-01 10:00", "Cllr Former", "Leisure Services"),
        line("ME-2019-00004", "2019-05-01 10:00", "cllr former", "LEISURE SERVICES"),
    ]
    mailbridge("import", "cases", write(tmp_path, rows))
    with session(engine) as s:
        cases = s.exec(select(Case.member, Case.delivery_unit).order_by(Case.reference)).all()
        members = s.exec(select(MemberRecord)).scalars().all()
        units = s.exec(select(DeliveryUnitRecord)).scalars().all()
    assert [tuple(c) for c in cases] == [
        ("cllr-patel", "Street Scene"),
        ("cllr-okafor", "Highways"),
        ("Cllr Former", "Leisure Services"),
        ("Cllr Former", "Leisure Services"),
    ]
    assert [(m.id, m.historical) for m in members] == [("Cllr Former", True)]
    assert [(u.name, u.historical) for u in units] == [("Leisure Services", True)]


def test_parts_are_linked_to_their_parent_in_the_file_or_already_stored(
    mailbridge, engine, tmp_path
):
    mailbridge("import", "cases", write(tmp_path, history(1)))
    header = [*HEADER, "parent_reference"]
    rows = [
        [*line("ME-2020-00001-1", "2020-01-06 10:00"), "ME-2020-00001"],
        [*line("ME-2020-00002-1", "2020-01-06 10:00"), "me-2020-00002"],
        [*line("ME-2020-00002", "2020-01-06 09:00"), ""],
    ]
    mailbridge("import", "cases", write(tmp_path, rows, header=header, name="parts.csv"))
    with session(engine) as s:
        refs = {c.id: c.reference for c in s.exec(select(Case)).scalars()}
        parents = {c.reference: refs.get(c.parent_id) for c in s.exec(select(Case)).scalars()}
    assert parents["ME-2020-00001-1"] == "ME-2020-00001"
    assert parents["ME-2020-00002-1"] == "ME-2020-00002"

    orphan = [[*line("ME-2020-00009-1", "2020-01-06 10:00"), "ME-2020-00009"]]
    path = write(tmp_path, orphan, header=header, name="orphan.csv")
    errors = mailbridge("import", "cases", path, code=1).stderr
    assert f"{path}:2: parent_reference: no case ME-2020-00009 in this file or stored" in errors


def test_new_cases_are_numbered_after_the_imported_ones(mailbridge, engine, tmp_path):
    rows = [
        line("ME-2026-00041", "2026-01-06 10:00"),
        line("ME-2026-00007-2", "2026-01-06 10:00"),
        line("CRM/2026/99999", "2026-01-06 10:00"),
    ]
    mailbridge("import", "cases", write(tmp_path, rows))
    with session(engine) as s:
        assert next_reference(s, ReferenceFormat(), 2026) == "ME-2026-00042"
        assert next_reference(s, ReferenceFormat(), 2027) == "ME-2027-00001"


def test_a_database_failure_half_way_leaves_nothing_imported(mailbridge, engine, tmp_path):
    """The rows are all good, but the database refuses row 5,000 (a full disk, say)."""
    rows = history(8000)
    doomed = rows[4999][0]
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.execute(text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.reference = '{doomed}' THEN RAISE EXCEPTION 'disk full'; END IF; "
                "RETURN NEW; END $$"
            ))  # fmt: skip
            conn.execute(text(
                'CREATE TRIGGER refuse BEFORE INSERT ON "case" '
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            ))  # fmt: skip
        else:
            conn.execute(text(
                f"""CREATE TRIGGER refuse BEFORE INSERT ON "case" WHEN NEW.reference = '{doomed}'
                BEGIN SELECT RAISE(ABORT, 'disk full'); END"""
            ))  # fmt: skip
    try:
        stderr = mailbridge("import", "cases", write(tmp_path, rows), code=1).stderr
        assert "nothing imported" in stderr and "disk full" in stderr
        assert count(engine, Case) == 0
        assert count(engine, MemberRecord) == 0
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse" + (' ON "case"' if postgres else "")))
            if postgres:
                conn.execute(text("DROP FUNCTION IF EXISTS refuse()"))
