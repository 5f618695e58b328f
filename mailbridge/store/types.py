"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime, LargeBinary
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")
RawBytes = LargeBinary().with_variant(BYTEA(), "postgresql")


def dump_json(value: Any) -> str:
    """JSON text for a JSON column (make_engine's json_serializer): orjson, as compact as
    json.dumps with its separators tightened and five times faster. Every timeline entry,
    recipient list and header set is one; a new enquiry writes about twenty."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


load_json = orjson.loads


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out; SQLite would otherwise hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect):
        """On SQLite, process_bind_param's naive UTC value straight to the text SQLite's
        DATETIME stores (always with microseconds), as SQLAlchemy's own processor writes it:
        1.7 us where the two steps took 2.5. A case and its timeline bind a dozen times each."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            naive = self.process_bind_param(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
