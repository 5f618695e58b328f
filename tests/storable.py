"""Can a parsed message go into a database text column? (valid UTF-8, no NUL, anywhere in it)"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from mailbridge.ingest.parse import ParsedMessage


def strings(value: object) -> Iterator[str]:
    """Every str inside a ParsedMessage (keys, values, nested tuples and dataclasses)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name))


def storable(msg: ParsedMessage) -> bool:
    """What SQLite and PostgreSQL text columns accept: no lone surrogates, no NUL."""
    for text in strings(msg):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        if "\x00" in text:
            return False
    return True
