"""Parsing on the machine's other cores while the daemon writes cases.

Parsing an email is pure (bytes in, ParsedMessage out) and, with mail-parser, the largest
single cost of ingest; reading its text for the rules (ingest/reading.py) is the next. The
runner hands a batch's raw bytes to the worker pool before the batch is stored, then takes
the results in order: message n+1 is read while message n's case is written. A worker
returns the Reading, or the ParseFailed, that reading here would have given; when it cannot
(it died), the message is read here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

from mailbridge.ingest.parse import ParseFailed, parse
from mailbridge.ingest.reading import Reading
from mailbridge.workers import CHUNK, WorkerPool


@dataclass(frozen=True)
class Prepared:
    """A stored message's bytes, in hand, and its reading (perhaps under way elsewhere)."""

    raw: bytes
    reading: Callable[[], Reading]  # the reading, or raises ParseFailed


def read(raw: bytes) -> Reading:
    """Here and now: the parse, its text read as the rules ask."""
    return Reading(parse(raw))


def parse_ahead(pool: WorkerPool, raws: Sequence[bytes]) -> list[Prepared]:
    """One Prepared per raw, in order; read by the pool's workers when the batch is worth it."""
    if not pool.worth_it(len(raws)):
        return [Prepared(raw, partial(read, raw)) for raw in raws]
    prepared = []
    for first in range(0, len(raws), CHUNK):
        chunk = list(raws[first : first + CHUNK])
        future = pool.submit(read_chunk, chunk)
        prepared += [
            Prepared(raw, partial(_read, pool, future, i, raw)) for i, raw in enumerate(chunk)
        ]
    return prepared


def _read(
    pool: WorkerPool, future: Future[list[Reading | ParseFailed]], index: int, raw: bytes
) -> Reading:
    outcomes = pool.result(future)
    if outcomes is None:
        return read(raw)  # here, as if there were no workers: the same result or error
    if isinstance(outcomes[index], ParseFailed):
        raise outcomes[index]
    return outcomes[index]


def read_chunk(raws: list[bytes]) -> list[Reading | ParseFailed]:
    """In a worker: each message's reading, read through, or its ParseFailed as a value (it
    pickles)."""
    out: list[Reading | ParseFailed] = []
    for raw in raws:
        try:
            out.append(read(raw).read_through())
        except ParseFailed as exc:
            out.append(exc)
    return out
