"""The `cohost` role in the token database: databases made before the role existed are migrated
when first opened, without losing tokens, revocations, the audit log or bans."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from streamer.cli.tokens import register
from streamer.panel.store import PanelStore, hasher

pytestmark = pytest.mark.integration  # real SQLite files
OLD_SCHEMA = """
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'mod', 'admin')),
  secret_hash TEXT NOT NULL,
  created REAL NOT NULL,
  revoked REAL
);
CREATE UNIQUE INDEX tokens_active_name ON tokens(name) WHERE revoked IS NULL;
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
  action TEXT NOT NULL, params TEXT NOT NULL, status INTEGER NOT NULL, result TEXT NOT NULL
);
CREATE TABLE bans (user TEXT PRIMARY KEY, until REAL, actor TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL);
"""


def _old_database(path: Path) -> dict[str, str]:
    """A panel database as the panel made it before the cohost role, with a live and a revoked token."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    ph = hasher()
    made = {}
    for token_id, name, role, revoked in (("0123456789ab", "oldmod", "mod", None),
                                          ("ba9876543210", "gone", "viewer", 1.0)):
        secret = "s" * 43
        db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                   (token_id, name, role, ph.hash(secret), 1.0, revoked))
        made[name] = f"sc_{token_id}_{secret}"
    db.execute("INSERT INTO audit(ts, actor, role, action, params, status, result) VALUES (1, 'oldmod', 'mod', "
               "'pause', '{}', 200, 'ok')")
    db.execute("INSERT INTO bans VALUES ('test:troll', NULL, 'oldmod', 'spam', 1)")
    db.commit()
    with pytest.raises(sqlite3.IntegrityError):  # what the old CHECK does to the new role
        db.execute("INSERT INTO tokens VALUES ('x', 'x', 'cohost', 'h', 1, NULL)")
    db.close()
    return made


@pytest.mark.unit
def test_an_old_panel_database_is_migrated_without_losing_tokens(tmp_path: Path):
    path = tmp_path / "old.db"
    old = _old_database(path)
    store = PanelStore(path)
    try:
        schema = store.db.execute("SELECT sql FROM sqlite_master WHERE name = 'tokens'").fetchone()[0]
        assert "'cohost'" in schema
        info = store.verify(old["oldmod"])
        assert info is not None and (info.name, info.role, info.created) == ("oldmod", "mod", 1.0)
        assert store.verify(old["gone"]) is None  # still revoked
        assert [t.name for t in store.list_tokens(include_revoked=True)] == ["oldmod", "gone"]
        assert [(e.actor, e.action) for e in store.audit_log()] == [("oldmod", "pause")]
        assert [b.user for b in store.bans()] == ["test:troll"]
        cohost, token = store.add_token("singer", "cohost")
        assert store.verify(token) == cohost and cohost.role == "cohost"
        with pytest.raises(ValueError, match="active token named 'oldmod'"):  # the unique index is back
            store.add_token("oldmod", "viewer")
    finally:
        store.close()
    again = PanelStore(path)  # opening a migrated database changes nothing
    try:
        assert {t.name: t.role for t in again.list_tokens()} == {"oldmod": "mod", "singer": "cohost"}
    finally:
        again.close()


@pytest.mark.unit
def test_token_add_with_the_cohost_role_on_an_old_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "old.db"
    _old_database(path)
    parser = argparse.ArgumentParser(prog="stagecast")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["token", "add", "guest", "--role", "cohost", "--db", str(path)])
    assert args.func(args) == 0
    token = capsys.readouterr().out.strip()
    store = PanelStore(path)
    try:
        assert store.verify(token).role == "cohost"
        assert store.verify(token).name == "guest"
    finally:
        store.close()


