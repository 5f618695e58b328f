"""`export cases`: every case in the import file's columns, streamed, as CSV or JSON.

A file exported here imports again unchanged (times as local ISO 8601 with their offset),
which is what the round-trip test holds it to.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from sqlalchemy.orm import aliased

from mailbridge.history.csvformat import ALL_COLUMNS, TIME_COLUMNS, format_time
from mailbridge.store.models import Case

BATCH = 5000


def case_rows(
    conn: Connection, zone: ZoneInfo, start: datetime | None = None, end: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Cases received in [start, end) (all by default), oldest first, as file rows."""
    parent = aliased(Case)
    stmt = (
        select(
            *(getattr(Case, c) for c in ALL_COLUMNS if hasattr(Case, c)),
            parent.reference.label("parent_reference"),
        )
        .outerjoin(parent, Case.parent_id == parent.id)
        .order_by(Case.received_at, Case.id)
    )
    if start is not None:
        stmt = stmt.where(Case.received_at >= start)
    if end is not None:
        stmt = stmt.where(Case.received_at < end)
    for row in conn.execution_options(yield_per=BATCH).execute(stmt).mappings():
        out = {c: row.get(c) for c in ALL_COLUMNS}
        for column in TIME_COLUMNS:
            out[column] = format_time(out[column], zone) if out[column] else None
        yield out


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=ALL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        n += 1
    return n


def write_json(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """A JSON array written as it goes, one case per line: a million cases never sit in memory."""
    n = 0
    out.write("[")
    for row in rows:
        out.write(",\n " if n else "\n ")
        out.write(
            json.dumps({k: (v if v != "" else None) for k, v in row.items()}, ensure_ascii=False)
        )
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n
