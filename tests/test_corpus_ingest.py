"""Every message of the shared corpus goes through the real pipeline via a Maildir."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from mailbridge.clock import FrozenClock
from mailbridge.daemon import build_deps, build_runner
from mailbridge.store.db import session
from mailbridge.store.models import Message, MessageCopy
from tests.conftest import deliver, make_settings
from tests.corpus import AUTOMATIC_KINDS, corpus_messages

pytestmark = pytest.mark.slow
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_every_corpus_message_is_kept_byte_exact_and_classified_without_a_crash(maildir, db_url):
    corpus = corpus_messages()
    for n, item in enumerate(corpus):
        deliver(maildir, f"{n:05d}.corpus", item.path.read_bytes(), NOW)
    deps = build_deps(make_settings(db_url, f"maildir://{maildir}"), FrozenClock(NOW))
    stats = build_runner(deps).drain()
    with session(deps.engine) as s:
        messages = list(s.exec(select(Message)))
        copies = list(s.exec(select(MessageCopy)))
    deps.engine.dispose()

    assert (stats.fetched, stats.failed) == (len(corpus), 0)
    assert list((maildir / "new").iterdir()) == []
    # Files that share a Message-ID with an earlier one are one message; their bytes are kept
    # as copies. Either way every file's exact bytes are in the store.
    kept = {hashlib.sha256(m.raw).hexdigest(): m for m in messages}
    kept |= {
        hashlib.sha256(c.raw).hexdigest(): next(m for m in messages if m.id == c.message_db_id)
        for c in copies
    }
    assert len(messages) + len(copies) == len(corpus)
    not_automatic = []
    for item in corpus:
        message = kept.get(item.sha256)
        assert message is not None, f"{item.name} was not stored byte-exact"
        assert message.status == "processed" and message.classification, item.name
        if item.kind in AUTOMATIC_KINDS and message.classification not in ("bounce", "auto_reply"):
            not_automatic.append(f"{item.name}: {message.classification} ({message.rule})")
    assert not_automatic == []
