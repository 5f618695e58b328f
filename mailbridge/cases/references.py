"""Case references such as ME-2026-00123: the per-year sequence and the patterns that find them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from mailbridge.config import ReferenceFormat
from mailbridge.store.models import ReferenceCounter


def next_reference(session: Session, fmt: ReferenceFormat, year: int) -> str:
    """Take the next number of `year` inside the caller's transaction.

    One upsert statement: on PostgreSQL the row lock it takes serialises two processes opening
    cases at once (the second waits, then sees the first's number), and on SQLite BEGIN
    IMMEDIATE already allows one writer. A rolled-back case gives its number back. Inside
    holding_references the upsert is run once a year and the numbers after it are counted here.
    """
    held: dict[tuple[str, int], list[int]] | None = session.info.get(_HELD)
    counted = held.get((fmt.prefix, year)) if held is not None else None
    if counted is not None:  # [first, last]: the row is ours until commit
        counted[1] += 1
        return fmt.format(year, counted[1])
    statement = _next_statement(session.get_bind().dialect.name)
    seq = session.connection().execute(statement, {"prefix": fmt.prefix, "year": year}).scalar_one()
    if held is not None:
        held[(fmt.prefix, year)] = [seq, seq]
    return fmt.format(year, seq)


@contextmanager
def holding_references(session: Session) -> Iterator[None]:
    """Inside, each year's counter is taken by one upsert, which holds its row until the
    transaction ends, and counted on in memory; the last number is written at the end (a
    batch of new enquiries saves a statement each). Nothing is written if the block raises:
    the caller's transaction or savepoint is rolled back then, giving the numbers back."""
    session.info[_HELD] = {}
    try:
        yield
        for (prefix, year), (first, last) in session.info[_HELD].items():
            if last != first:
                session.connection().execute(
                    _SET_LAST, {"row_prefix": prefix, "row_year": year, "last": last}
                )
    finally:
        session.info.pop(_HELD, None)


_HELD = "mailbridge.held_references"  # session.info key, set by holding_references
_COUNTER = ReferenceCounter.__table__
_SET_LAST = (
    update(_COUNTER)
    .where(_COUNTER.c.prefix == bindparam("row_prefix"), _COUNTER.c.year == bindparam("row_year"))
    .values(last=bindparam("last"))
)


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
