"""`mailbridge outbox`: automatic emails waiting, sent, held or failed; retry, cancel, flush."""

from __future__ import annotations

import getpass
import logging
from typing import Annotated

import typer

from mailbridge import daemon
from mailbridge.cli.context import fail
from mailbridge.cli.output import Format, emit_json, emit_table
from mailbridge.clock import SystemClock
from mailbridge.config import ConfigError
from mailbridge.outbound import outbox
from mailbridge.store.db import session

app = typer.Typer(
    no_args_is_help=True, help="Automatic emails: list them, retry or cancel one, send now."
)

LIST_COLUMNS = ["id", "reference", "kind", "to", "subject", "status", "attempts", "last_error"]
IdOrKey = Annotated[str, typer.Argument(help="The email's id (see outbox list) or its dedupe key.")]


@app.command("list")
def outbox_list(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="pending, held, sending, sent, failed or cancelled."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 200,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """List automatic emails, newest first: failed and held ones are what the team must see.

    Example: mailbridge outbox list --status failed --format json
    """
    if status and status not in outbox.OUTBOX_STATUSES:
        raise fail(f"unknown status {status!r}; one of {', '.join(outbox.OUTBOX_STATUSES)}")
    with session(ctx.obj.engine) as s:
        rows = outbox.list_outbox(s, status=status, limit=limit)
    if fmt is Format.json:
        emit_json(rows)
    else:
        emit_table(rows, LIST_COLUMNS, title=f"{len(rows)} emails")


@app.command("retry")
def outbox_retry(ctx: typer.Context, id_or_key: IdOrKey) -> None:
    """Send a failed or held email again now (a failed one gets a fresh run of retries).

    Example: mailbridge outbox retry ack:ME-2026-00123
    """
    row = _change(ctx, outbox.retry, id_or_key)
    typer.echo(f"outbox email {row.id} ({row.dedupe_key}) queued to be sent again")


@app.command("cancel")
def outbox_cancel(ctx: typer.Context, id_or_key: IdOrKey) -> None:
    """Never send this email; the cancellation goes on the case timeline.

    Example: mailbridge outbox cancel 42
    """
    row = _change(ctx, outbox.cancel, id_or_key)
    typer.echo(f"outbox email {row.id} ({row.dedupe_key}) cancelled")


@app.command("flush")
def outbox_flush(
    ctx: typer.Context,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "WARNING",
) -> None:
    """Send every email that is due, once, and exit (cron; the daemon does this by itself).

    Exits 1 if any email failed for good in this run.

    Example: mailbridge outbox flush
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        deps = daemon.build_deps(ctx.obj.settings)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail("the directory has errors; see `mailbridge config check`") from None
    try:
        stats = daemon.flush_once(deps)
    finally:
        deps.engine.dispose()
    typer.echo(
        f"sent {stats.sent}, retrying {stats.retrying}, failed {stats.failed}, "
        f"held {stats.held}, recipients refused {stats.refused}, resent after a crash "
        f"{stats.requeued}"
    )
    if stats.failed:
        raise typer.Exit(code=1)


def _change(ctx: typer.Context, action, id_or_key: str):
    with session(ctx.obj.engine) as s:
        try:
            row = action(s, id_or_key, SystemClock().now(), actor=f"cli:{_user()}")
        except (LookupError, ValueError) as exc:
            raise fail(str(exc)) from None
        s.commit()
    return row


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"
