"""Case references such as ME-2026-00123: the per-year sequence and the patterns that find them."""

from __future__ import annotations

import re
from functools import cache

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from mailbridge.config import ReferenceFormat
from mailbridge.store.models import ReferenceCounter


def next_reference(session: Session, fmt: ReferenceFormat, year: int) -> str:
    """Take the next number of `year` inside the caller's transaction.

    One upsert statement: on PostgreSQL the row lock it takes serialises two processes opening
    cases at once (the second waits, then sees the first's number), and on SQLite BEGIN
    IMMEDIATE already allows one writer. A rolled-back case gives its number back.
    """
    statement = _next_statement(session.get_bind().dialect.name)
    seq = session.connection().execute(statement, {"prefix": fmt.prefix, "year": year}).scalar_one()
    return fmt.format(year, seq)


@cache
def _next_statement(dialect: str):
    """The upsert, built once per dialect: statement construction costs more than running it."""
    table = ReferenceCounter.__table__
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    return (
        insert(table)
        .values(prefix=bindparam("prefix"), year=bindparam("year"), last=1)
        .on_conflict_do_update(index_elements=["prefix", "year"], set_={"last": table.c.last + 1})
        .returning(table.c.last)
    )


def reference_pattern(fmt: ReferenceFormat) -> re.Pattern[str]:
    """A reference, with an optional part number, anywhere in a string."""
    return re.compile(
        rf"\b{re.escape(fmt.prefix)}-\d{{4}}-\d{{{fmt.width},}}(?:-\d+)?\b", re.IGNORECASE
    )


def subject_tag_pattern(fmt: ReferenceFormat) -> re.Pattern[str]:
    """The `[ME-2026-00123]` (or `[ME-2026-00123-2]`) tag we put in subjects."""
    return re.compile(rf"\[\s*({reference_pattern(fmt).pattern})\s*\]", re.IGNORECASE)
