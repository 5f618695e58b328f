"""`mailbridge message`: stored emails, including the ones no case claimed."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlmodel import select

from mailbridge.cases.conversation import release_held
from mailbridge.cases.queries import message_summary
from mailbridge.cli.context import fail
from mailbridge.cli.output import Format, emit_json, emit_table
from mailbridge.clock import SystemClock
from mailbridge.directory import load_directory
from mailbridge.ingest.pipeline import PipelineContext
from mailbridge.store.db import session
from mailbridge.store.models import MESSAGE_RECEIVED, Message

app = typer.Typer(no_args_is_help=True, help="Stored emails: show, download, list, replay.")


@app.command("show")
def message_show(
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(help="The stored message's id (see case show).")],
    raw: Annotated[bool, typer.Option("--raw", help="Write the exact original bytes.")] = False,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Show a stored message, or with --raw write its exact original bytes to stdout.

    Example: mailbridge message show 42 --raw > original.eml
    """
    with session(ctx.obj.reader) as s:
        message = s.get(Message, message_id)
    if message is None:
        raise fail(f"no message {message_id}")
    if raw:
        sys.stdout.buffer.write(message.raw)
        sys.stdout.buffer.flush()
        return
    summary = message_summary(message) | {"headers": message.headers, "defects": message.defects}
    if fmt is Format.json:
        emit_json(summary)
        return
    for key, value in summary.items():
        if key not in ("headers", "body_text"):
            typer.echo(f"{key}: {value}")
    typer.echo("")
    typer.echo(message.body_text or "")


@app.command("list")
def message_list(
    ctx: typer.Context,
    classification: Annotated[
        str | None,
        typer.Option(
            help="enquiry, cc_enquiry, reply, non_member, bounce, auto_reply, own or unparseable."
        ),
    ] = None,
    status: Annotated[str | None, typer.Option(help="received, processed or failed.")] = None,
    unmatched: Annotated[bool, typer.Option("--unmatched", help="Only those on no case.")] = False,
    held: Annotated[bool, typer.Option("--held", help="Only messages held for the team.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 200,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """List stored messages: failed parses, failures, held and unmatched mail for the team.

    Example: mailbridge message list --classification unparseable
    """
    stmt = select(Message).order_by(Message.id.desc()).limit(limit)
    if classification:
        stmt = stmt.where(Message.classification == classification)
    if status:
        stmt = stmt.where(Message.status == status)
    if unmatched:
        stmt = stmt.where(Message.case_id.is_(None))
    if held:
        stmt = stmt.where(Message.held.is_(True))
    with session(ctx.obj.reader) as s:
        rows = [message_summary(m) for m in s.exec(stmt)]
    if fmt is Format.json:
        emit_json(rows)
    else:
        emit_table(
            rows,
            ["id", "received_at", "from", "subject", "classification", "status", "error"],
            title=f"{len(rows)} messages",
        )


@app.command("replay")
def message_replay(
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(help="A stored message that failed.")],
) -> None:
    """Queue a failed message to be processed again by the daemon (or the next ingest).

    Example: mailbridge message replay 42
    """
    with session(ctx.obj.engine) as s:
        message = s.get(Message, message_id)
        if message is None:
            raise fail(f"no message {message_id}")
        if message.status != "failed":
            raise fail(f"message {message_id} is {message.status}, not failed")
        message.status, message.attempts = MESSAGE_RECEIVED, 0
        s.commit()
    typer.echo(f"message {message_id} queued for processing")


@app.command("release")
def message_release(
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(help="A held message (see message list --held).")],
    by: Annotated[str, typer.Option("--by", help="Who vouches for the sender.")],
) -> None:
    """Release a held message: its sender joins the case and the officer receives it.

    A message that quotes a reference but comes from someone who is not on the case, a member
    or an officer is held. Releasing it records who vouched for the sender.

    Example: mailbridge message release 42 --by "A. Supervisor"
    """
    settings = ctx.obj.settings
    directory, problems = load_directory(settings.directory_file)
    if any(p.severity == "error" for p in problems):
        raise fail("the directory has errors; see `mailbridge config check`")
    mailer = PipelineContext.from_settings(settings, directory).mailer
    with session(ctx.obj.engine) as s:
        message = s.get(Message, message_id)
        if message is None:
            raise fail(f"no message {message_id}")
        try:
            case = release_held(s, mailer, message, by=by, now=SystemClock().now())
        except ValueError as exc:
            raise fail(str(exc)) from None
        s.commit()
    typer.echo(f"message {message_id} released on {case.reference}; the officer will receive it")
