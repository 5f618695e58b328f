"""`mailbridge report …`: every report in every format, with the Total row last."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.test_report_support import case, cli_runner, london, store

REPORTS = {
    "open": ["--at", "2026-06-30"],
    "monthly": ["--from", "2026-06-01", "--to", "2026-07-31"],
    "quarters": ["--fy", "2026"],
    "status": [],
    "members": [],
    "feedback": ["--from", "2026-06-01", "--to", "2026-06-30"],
    "routing": [],
}


@pytest.fixture
def mailbridge(engine, db_url, monkeypatch, tmp_path):
    received = london(2026, 6, 1, 10)
    store(
        engine,
        case("ME-2026-00001", received, delivery_unit="Highways", member="cllr-patel",
             resolved_at=london(2026, 6, 3, 10), feedback="partly"),
        case("ME-2026-00002", received, delivery_unit="Street Scene", member="cllr-moss"),
    )  # fmt: skip
    return cli_runner(db_url, monkeypatch, tmp_path)


@pytest.mark.parametrize("name", REPORTS)
def test_every_report_gives_csv_and_json_with_the_same_columns_and_a_total_last(mailbridge, name):
    args = ["report", name, *REPORTS[name]]
    table = list(csv.reader(io.StringIO(mailbridge(*args, "--format", "csv").stdout)))
    rows = json.loads(mailbridge(*args, "--format", "json").stdout)
    assert list(rows[0]) == table[0]
    assert all(c == c.lower() and " " not in c for c in table[0])
    assert table[-1][0] == "Total" and rows[-1][table[0][0]] == "Total"
    assert len(rows) == len(table) - 1


def test_percentages_are_numbers_with_one_decimal_place(mailbridge):
    args = ["report", "monthly", "--from", "2026-06-01", "--to", "2026-06-30"]
    total = json.loads(mailbridge(*args, "--format", "json").stdout)[-1]
    assert total["pct_closed_in_5_days"] == 50.0
    assert isinstance(total["items_due"], int)
    csv_total = mailbridge(*args, "--format", "csv").stdout.splitlines()[-1]
    assert csv_total == "Total,2,1,50.0,1,50.0,0,0.0,1,50.0"


def test_the_markdown_and_table_formats_are_for_people(mailbridge):
    args = ["report", "open", "--at", "2026-06-30"]
    markdown = mailbridge(*args, "--format", "markdown").stdout
    assert "| delivery_unit | under_10 |" in markdown
    assert "| **Total** | **0** | **0** | **1** |" in markdown
    assert "Open enquiries at 30 June 2026" in mailbridge(*args).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["open", "--at", "30/06/2026"], "--at '30/06/2026': expected a date"),
        (["monthly", "--from", "2026-07-01", "--to", "2026-06-01"], "is before --from"),
        (["monthly", "--from", "2026-06-01", "--to", "2026-06-30", "--by", "week"], "--by"),
        (["status", "--from", "2026-06-01"], "give both --from and --to"),
        (["members", "--bands", "70,30"], "--bands"),
        (["quarters", "--fy", "2026", "--to", "2026-03-31"], "before the financial year"),
    ],
)
def test_mistakes_in_the_options_are_explained(mailbridge, args, message):
    assert message in mailbridge("report", *args, code=2).stderr
