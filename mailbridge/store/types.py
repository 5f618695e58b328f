"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, LargeBinary
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")
RawBytes = LargeBinary().with_variant(BYTEA(), "postgresql")


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out; SQLite would otherwise hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
