"""Parsing on the machine's other cores while the daemon writes cases.

Parsing an email is pure (bytes in, ParsedMessage out) and, with mail-parser, the largest
single cost of ingest. The runner hands a batch's raw bytes to the worker pool as soon as the
batch is stored, then takes the results in order: message n+1 is parsed while message n's case
is written. A worker returns the ParsedMessage, or the ParseFailed, that parsing here would
have given; when it cannot (it died), the message is parsed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

from mailbridge.ingest.parse import ParsedMessage, ParseFailed, parse
from mailbridge.workers import CHUNK, WorkerPool


@dataclass(frozen=True)
class Prepared:
    """A stored message's bytes, in hand, and its parse (perhaps under way elsewhere)."""

    raw: bytes
    parsed: Callable[[], ParsedMessage]  # the parse, or raises ParseFailed


def parse_ahead(pool: WorkerPool, raws: Sequence[bytes]) -> list[Prepared]:
    """One Prepared per raw, in order; parsed by the pool's workers when the batch is worth it."""
    if not pool.worth_it(len(raws)):
        return [Prepared(raw, partial(parse, raw)) for raw in raws]
    prepared = []
    for first in range(0, len(raws), CHUNK):
        chunk = list(raws[first : first + CHUNK])
        future = pool.submit(parse_chunk, chunk)
        prepared += [
            Prepared(raw, partial(_parsed, pool, future, i, raw)) for i, raw in enumerate(chunk)
        ]
    return prepared


def _parsed(
    pool: WorkerPool, future: Future[list[ParsedMessage | ParseFailed]], index: int, raw: bytes
) -> ParsedMessage:
    outcomes = pool.result(future)
    if outcomes is None:
        return parse(raw)  # here, as if there were no workers: the same result or error
    if isinstance(outcomes[index], ParseFailed):
        raise outcomes[index]
    return outcomes[index]


def parse_chunk(raws: list[bytes]) -> list[ParsedMessage | ParseFailed]:
    """In a worker: each message's parse, or its ParseFailed as a value (it pickles)."""
    out: list[ParsedMessage | ParseFailed] = []
    for raw in raws:
        try:
            out.append(parse(raw))
        except ParseFailed as exc:
            out.append(exc)
    return out
