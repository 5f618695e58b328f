"""The Alembic revisions build exactly the schema the models describe, and undo cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import mailbridge.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from mailbridge.store.db import alembic_config, upgrade


def _differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def test_migrations_build_the_schema_the_models_describe(db_url: str) -> None:
    assert _differences(db_url) == []


def test_every_revision_downgrades_and_upgrades_again(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    upgrade(url)
    assert _differences(url) == []
