"""What the rules read from an email's text, read once: by the worker that parsed it, if any.

Routing looks for keywords among every word of an enquiry, and the duplicate check reads the
words and places of its opening. Over a long email that costs more than all the other rules
together, is pure, and needs no database: so a parse worker reads it too, and the daemon
finds it done. Where there is no worker, each part is read when first asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mailbridge.cases.duplicates import Wording, wording
from mailbridge.cases.routing import text_words
from mailbridge.ingest.parse import ParsedMessage


@dataclass(frozen=True)
class Reading:
    parsed: ParsedMessage

    @cached_property
    def routing_words(self) -> frozenset[bytes]:
        """For Router.route_by_text."""
        return text_words(self.parsed.subject, self.parsed.body_text)

    @cached_property
    def wording(self) -> Wording:
        """For flag_possible_duplicates."""
        return wording(self.parsed.subject, self.parsed.body_text)

    def read_through(self) -> Reading:
        """Every part read now: in a worker, before the reading is sent to the daemon."""
        _ = self.routing_words, self.wording.read_through()
        return self
