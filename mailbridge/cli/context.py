"""What every command shares: the settings, loaded lazily, and clean exits on bad settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import typer
from sqlalchemy import Engine

from mailbridge.config import ConfigError, Settings, load_settings
from mailbridge.store.db import make_engine


@dataclass
class AppContext:
    config_file: str | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def settings(self) -> Settings:
        try:
            return load_settings(self.config_file)
        except ConfigError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            typer.echo("fix the settings above, or run `mailbridge config check`", err=True)
            raise typer.Exit(code=2) from None

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def reader(self) -> Engine:
        """For commands that only read: they never hold the SQLite write lock."""
        return make_engine(self.settings.database_url, read_only=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)
