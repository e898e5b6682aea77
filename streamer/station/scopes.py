"""Which shows a station token may see and steer: one show, or all of them.

The scope lives beside the panel's tokens in the same SQLite database (its own table, so the panel's
schema is untouched). A token with no scope row is station-wide: that is what a token made with plain
`stagecast token add` on the station's database is. Scopes never change after a token is made (revoke
and add again), so the panel caches them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from streamer.panel.store import PanelStore, TokenError, TokenInfo

ALL = "*"
SCHEMA = "CREATE TABLE IF NOT EXISTS token_scopes (token_id TEXT PRIMARY KEY, show TEXT NOT NULL)"


def add_scoped_token(store: PanelStore, name: str, role: str, show: str = ALL) -> tuple[TokenInfo, str]:
    """A panel token limited to one show (or `*`, all shows); returns its info and the token text."""
    if show != ALL and not show:
        raise TokenError("a token's show must be a show name or '*' for all")
    store.db.execute(SCHEMA)
    info, token = store.add_token(name, role)
    store.db.execute("INSERT OR REPLACE INTO token_scopes(token_id, show) VALUES (?, ?)", (info.id, show))
    return info, token


def token_scope(db_path: Path, token_id: str) -> str:
    db = sqlite3.connect(db_path, timeout=5.0)
    try:
        db.execute(SCHEMA)
        row = db.execute("SELECT show FROM token_scopes WHERE token_id = ?", (token_id,)).fetchone()
    finally:
        db.close()
    return ALL if row is None else str(row[0])


class Scopes:
    """Token id -> scope, read once per token on a worker thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._cache: dict[str, str] = {}

    async def scope(self, token_id: str) -> str:
        found = self._cache.get(token_id)
        if found is None:
            found = self._cache[token_id] = await asyncio.to_thread(token_scope, self.db_path, token_id)
        return found


def allows(scope: str, show: str) -> bool:
    return scope == ALL or scope == show
