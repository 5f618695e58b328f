"""Mailbox cursors in the database: how far each IMAP folder has been read and acknowledged."""

from __future__ import annotations

from sqlalchemy import Engine

from mailbridge.clock import Clock
from mailbridge.store.db import insert, session
from mailbridge.store.models import MailboxCursor


class DbCursorStore:
    def __init__(self, engine: Engine, clock: Clock):
        self.engine, self.clock = engine, clock

    def load(self, folder: str) -> tuple[int, int] | None:
        with session(self.engine) as s:
            cursor = s.get(MailboxCursor, folder)
            return (cursor.uidvalidity, cursor.last_uid) if cursor else None

    def advance(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        """One statement, no read first: the row is only written when it moves forward."""
        values = {"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": self.clock.now()}
        cursor = MailboxCursor.__table__.c
        with session(self.engine) as s:
            stmt = insert(s, MailboxCursor.__table__).values(folder=folder, **values)
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["folder"],
                    set_=values,
                    where=(cursor.uidvalidity != stmt.excluded.uidvalidity)
                    | (cursor.last_uid < stmt.excluded.last_uid),
                )
            )
            s.commit()
