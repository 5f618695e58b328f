"""Helpers for the report, import and export tests: cases straight into the store, in London time.

(Named test_report_* so it sits with the tests it serves; it holds no tests itself.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from mailbridge.cases.calendar import WorkingCalendar
from mailbridge.reports.report import Report
from mailbridge.store.models import Case

LONDON = ZoneInfo("Europe/London")
CAL = WorkingCalendar()
CREATED = datetime(2026, 11, 1, tzinfo=UTC)


def london(*args: int) -> datetime:
    """A London wall-clock time as the aware UTC instant the store keeps."""
    return datetime(*args, tzinfo=LONDON).astimezone(UTC)


def case(reference: str, received: datetime, **fields: Any) -> dict[str, Any]:
    """A case row; due is received + 5 working days unless given, as the daemon sets it."""
    row = {
        "reference": reference,
        "status": "awaiting_response",
        "origin": "direct",
        "kind": "members_enquiry",
        "subject": "",
        "received_at": received,
        "due_at": CAL.due_at(received, 5),
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    row.update(fields)
    return row


def store(engine: Engine, *cases: dict[str, Any]) -> None:
    # Rows may name different columns: insert them one by one (so defaults apply per row).
    with engine.begin() as conn:
        for row in cases:
            conn.execute(Case.__table__.insert(), row)


def run(engine: Engine, report: Callable[..., Report], *args: Any, **kwargs: Any) -> Report:
    with engine.connect() as conn:
        try:
            return report(conn, CAL, *args, **kwargs)
        finally:
            conn.rollback()


def row(report: Report, key: str, column: str | None = None) -> dict[str, Any]:
    """The row whose first column (or `column`) is `key`."""
    column = column or report.columns[0]
    matches = [r for r in report.rows if r.get(column) == key]
    assert len(matches) == 1, f"{key!r}: {len(matches)} rows in {report.name}"
    return matches[0]


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def cli_runner(db_url: str, monkeypatch, tmp_path) -> Callable[..., Any]:
    """A function that runs `mailbridge …` against `db_url` with the test directory."""
    from typer.testing import CliRunner

    from mailbridge.cli import app
    from tests.conftest import settings_env

    for var in ("MAILBRIDGE_CONFIG", "MAILBRIDGE_SOURCE", "MAILBRIDGE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    env = settings_env(db_url, f"maildir://{tmp_path}/inbox", COLUMNS="200")

    def invoke(*args: str, code: int = 0):
        result = CliRunner().invoke(app, [str(a) for a in args], env=env)
        assert result.exit_code == code, result.output
        return result

    return invoke
