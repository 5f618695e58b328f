"""Every message of the shared corpus goes through the real pipeline via a Maildir."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from mailbridge.clock import FrozenClock
from mailbridge.config import ADDRESS_RE, load_settings
from mailbridge.daemon import build_deps, build_runner
from mailbridge.ingest.parse import ParseFailed, parse
from mailbridge.store.db import session
from mailbridge.store.models import Event, Message, MessageCopy, Outbox
from tests.conftest import deliver, settings_env
from tests.corpus import AUTOMATIC_KINDS, CorpusMessage, corpus_messages

pytestmark = pytest.mark.slow
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def everyone_a_member(corpus: list[CorpusMessage], path: Path) -> Path:
    """The worst case for mail loops: every sender in the corpus is a councillor."""
    senders = set()
    for item in corpus:
        try:
            parsed = parse(item.path.read_bytes())
        except ParseFailed:
            continue
        if parsed.from_ and ADDRESS_RE.match(parsed.from_.email):
            senders.add(parsed.from_.email)
    entries = [f'[[members]]\nid = "m{n}"\naddresses = [{json.dumps(a)}]\n' for n, a in
               enumerate(sorted(senders))]  # fmt: skip
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


def test_every_corpus_message_is_kept_byte_exact_and_classified_without_a_crash(
    maildir, db_url, tmp_path
):
    corpus = corpus_messages()
    for n, item in enumerate(corpus):
        deliver(maildir, f"{n:05d}.corpus", item.path.read_bytes(), NOW)
    settings = load_settings(
        None,
        settings_env(db_url, f"maildir://{maildir}")
        | {"MAILBRIDGE_DIRECTORY": str(everyone_a_member(corpus, tmp_path / "members.toml"))},
    )
    deps = build_deps(settings, FrozenClock(NOW))
    with build_runner(deps) as runner:
        stats = runner.drain()
    with session(deps.engine) as s:
        messages = list(s.exec(select(Message)))
        copies = list(s.exec(select(MessageCopy)))
        opened_by = dict(s.exec(select(Event.case_id, Event.message_db_id).where(
            Event.kind == "case-opened")).all())  # fmt: skip
        caused_by = {
            row.dedupe_key: cause_of(row.dedupe_key, opened_by.get(row.case_id))
            for row in s.exec(select(Outbox))
        }
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
    not_automatic, answered = [], []
    for item in corpus:
        message = kept.get(item.sha256)
        assert message is not None, f"{item.name} was not stored byte-exact"
        assert message.status == "processed" and message.classification, item.name
        if item.kind in AUTOMATIC_KINDS and message.classification not in ("bounce", "auto_reply"):
            not_automatic.append(f"{item.name}: {message.classification} ({message.rule})")
        if item.kind in AUTOMATIC_KINDS:
            answered += [key for key, cause in caused_by.items() if cause == message.id]
    assert not_automatic == []
    assert answered == []  # no automatic email to any bounce or auto-reply, even from a member
    assert caused_by  # (and the human mail among them was acknowledged: the check has teeth)


def cause_of(dedupe_key: str, case_opener: int | None) -> int | None:
    """The inbound message behind an outbox row: the case's first message for an
    acknowledgement or forward, else the message id that ends the dedupe key."""
    kind, _, rest = dedupe_key.partition(":")
    return case_opener if kind in ("ack", "forward") else int(rest.rpartition(":")[2])
