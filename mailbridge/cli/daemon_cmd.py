"""`mailbridge run` and `mailbridge ingest`: the daemon, and one drain of the mailbox."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mailbridge import daemon
from mailbridge.cli.context import fail
from mailbridge.config import ConfigError

LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("ingest")(ingest)


def _deps(ctx: typer.Context, log_level: str) -> daemon.Deps:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return daemon.build_deps(ctx.obj.settings)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail("the directory has errors; see `mailbridge config check`") from None


def run(ctx: typer.Context, log_level: LogLevel = "INFO") -> None:
    """Run the daemon: watch the mailbox and turn mail into cases until SIGTERM.

    With no settings at all it uses SQLite in ./var, the Maildir ./var/inbox and the file
    outbox ./var/outbox. SIGTERM finishes the message in hand and exits cleanly.

    Example: mailbridge --config /etc/mailbridge/mailbridge.toml run
    """
    daemon.run(_deps(ctx, log_level))


def ingest(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Drain the mailbox and exit.")] = False,
    log_level: LogLevel = "WARNING",
) -> None:
    """Read every new message from the mailbox into cases, then exit (cron-style use).

    Example: mailbridge ingest --once
    """
    if not once:
        raise fail("only `ingest --once` is supported; use `mailbridge run` for the daemon")
    stats = daemon.ingest_once(_deps(ctx, log_level))
    typer.echo(
        f"fetched {stats.fetched}, processed {stats.processed}, "
        f"duplicates {stats.duplicates}, failed {stats.failed}"
    )
    if stats.failed:
        raise typer.Exit(code=1)
