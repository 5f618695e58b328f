"""`mailbridge export cases`: the import's columns back out, so a file goes round unchanged."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import create_engine, text

from mailbridge.history.csvformat import ALL_COLUMNS
from mailbridge.store.db import upgrade
from tests.conftest import TABLES
from tests.test_report_support import cli_runner, csv_text

ROWS = [
    # Summer and winter local times, a Z time, a part, feedback, an unknown member and DU.
    ["ME-2024-00001", "2024-07-01T09:30:00+01:00", "cllr-patel", "Highways", "Pothole, large",
     "2024-07-03T16:00:00+01:00", "", "2024-07-20T10:00:00+01:00", "o-walsh", "", "imported",
     "members_enquiry", "satisfied"],
    ["ME-2024-00001-1", "2024-07-01T09:45:00+01:00", "cllr-patel", "Street Scene",
     'The "other" half', "", "2024-07-05T12:00:00+01:00", "", "", "ME-2024-00001", "imported",
     "service_request", ""],
    ["ME-2024-00002", "2024-12-02T09:30:00+00:00", "Cllr Gone", "Old Parks", "", "", "", "",
     "", "", "imported", "members_enquiry", "partly"],
    ["ME-2024-00003", "2024-12-02T09:30:00.250000+00:00", "cllr-moss", "Housing", "Mould",
     "2024-12-04T11:00:00+00:00", "", "", "", "", "imported", "foi", "not_satisfied"],
]  # fmt: skip


@pytest.fixture
def mailbridge(db_url, monkeypatch, tmp_path):
    return cli_runner(db_url, monkeypatch, tmp_path)


def test_an_exported_file_imports_again_unchanged(mailbridge, db_url, tmp_path, monkeypatch):
    original = tmp_path / "crm.csv"
    original.write_text(csv_text(ALL_COLUMNS, ROWS), encoding="utf-8")
    mailbridge("import", "cases", original)
    exported = mailbridge("export", "cases", "--format", "csv").stdout
    assert exported == original.read_text(encoding="utf-8")

    # Into an empty database and out again: the same bytes.
    again = tmp_path / "again.csv"
    again.write_text(exported, encoding="utf-8")
    second = _empty_database(db_url, tmp_path)
    other = cli_runner(second, monkeypatch, tmp_path)
    other("import", "cases", again)
    assert other("export", "cases").stdout == exported


def _empty_database(db_url: str, tmp_path) -> str:
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'second.db'}"
    else:
        url = db_url  # the same PostgreSQL test database, emptied
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
    upgrade(url)
    return url


def test_json_export_has_the_same_columns_with_nulls_for_empty_times(mailbridge, tmp_path):
    original = tmp_path / "crm.csv"
    original.write_text(csv_text(ALL_COLUMNS, ROWS), encoding="utf-8")
    mailbridge("import", "cases", original)
    cases = json.loads(mailbridge("export", "cases", "--format", "json").stdout)
    assert [list(c) for c in cases] == [list(ALL_COLUMNS)] * len(ROWS)
    part = cases[1]
    assert part["parent_reference"] == "ME-2024-00001"
    assert part["resolved_at"] is None
    assert part["delay_advised_at"] == "2024-07-05T12:00:00+01:00"


def test_export_can_be_limited_to_cases_received_in_a_period_and_written_to_a_file(
    mailbridge, tmp_path
):
    original = tmp_path / "crm.csv"
    original.write_text(csv_text(ALL_COLUMNS, ROWS), encoding="utf-8")
    mailbridge("import", "cases", original)
    out = tmp_path / "december.csv"
    result = mailbridge("export", "cases", "--from", "2024-12-01", "--to", "2024-12-31", "-o", out)
    assert "wrote 2 cases" in result.stderr
    refs = [r["reference"] for r in csv.DictReader(io.StringIO(out.read_text()))]
    assert refs == ["ME-2024-00002", "ME-2024-00003"]
