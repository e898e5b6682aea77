"""The panel's SQLite database: moderator tokens (argon2-hashed), the audit log and viewer bans.

`PanelStore` is plain blocking sqlite3 for the CLI. `AsyncPanelStore` runs the same calls on one
dedicated thread (one connection, never touched by the event loop) so the show's loop stays free.
WAL mode lets the CLI add or revoke a token while the show runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES: tuple[str, ...] = ("viewer", "cohost", "mod", "admin")  # in order: each can do what those before it can
ROLE_LEVEL: dict[str, int] = {r: i for i, r in enumerate(ROLES)}
TOKEN_PREFIX = "sc"
_TOKEN_RE = re.compile(r"^sc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[\w.@-]{1,64}$")

_ROLE_LIST = ", ".join(f"'{r}'" for r in ROLES)
TOKENS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {{name}} (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ({_ROLE_LIST})),
  secret_hash TEXT NOT NULL,
  created REAL NOT NULL,
  revoked REAL
)"""
TOKENS_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS tokens_active_name ON tokens(name) WHERE revoked IS NULL"
SCHEMA = TOKENS_TABLE.format(name="tokens") + ";\n" + TOKENS_INDEX + """;
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  params TEXT NOT NULL,
  status INTEGER NOT NULL,
  result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bans (
  user TEXT PRIMARY KEY,
  until REAL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL,
  created REAL NOT NULL
);
"""

T = TypeVar("T")


class TokenError(ValueError):
    """A token command that cannot be done (duplicate name, unknown token); the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: str
    created: float
    revoked: float | None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: float
    actor: str
    role: str
    action: str
    params: dict[str, Any]
    status: int
    result: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "actor": self.actor, "role": self.role, "action": self.action,
                "params": self.params, "status": self.status, "result": self.result}


@dataclass(frozen=True)
class Ban:
    user: str
    until: float | None  # None: permanent
    actor: str
    reason: str


def split_token(token: str) -> tuple[str, str] | None:
    """'sc_<12 hex id>_<43 char secret>' -> (id, secret); None when it is not shaped like a token."""
    match = _TOKEN_RE.match(token)
    return (match.group(1), match.group(2)) if match else None


def hasher() -> PasswordHasher:
    """argon2id, OWASP profile (19 MiB, t=2, p=1): one core, ~30 ms; the secrets are 256-bit random anyway."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class PanelStore:
    """Blocking access; use from one thread (the CLI, or AsyncPanelStore's worker)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not path.exists()
        self.db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        if fresh:
            os.chmod(path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._migrate_roles()
        self._ph = hasher()

    def _tokens_sql(self) -> str:
        row = self.db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tokens'").fetchone()
        return row[0] if row else ""

    def _migrate_roles(self) -> None:
        """A database made before a role existed has a CHECK that refuses it. SQLite cannot alter a CHECK:
        the table is rebuilt under the new schema in one transaction, every token kept as it was."""
        if all(f"'{role}'" in self._tokens_sql() for role in ROLES):
            return
        self.db.execute("BEGIN IMMEDIATE")  # another process (the CLI, the show) may be opening it too
        try:
            if not all(f"'{role}'" in self._tokens_sql() for role in ROLES):
                self.db.execute("DROP TABLE IF EXISTS tokens_new")
                self.db.execute(TOKENS_TABLE.format(name="tokens_new"))
                self.db.execute("INSERT INTO tokens_new(id, name, role, secret_hash, created, revoked) "
                                "SELECT id, name, role, secret_hash, created, revoked FROM tokens")
                self.db.execute("DROP TABLE tokens")
                self.db.execute("ALTER TABLE tokens_new RENAME TO tokens")
                self.db.execute(TOKENS_INDEX)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    # ----- tokens -----------------------------------------------------------------------------
    def add_token(self, name: str, role: str) -> tuple[TokenInfo, str]:
        """Create a token; returns its info and the token text (shown once, stored only hashed)."""
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if not _NAME_RE.match(name):
            raise TokenError("name must be 1-64 letters, digits, '.', '_', '@' or '-'")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        created = time.time()
        try:
            self.db.execute(
                "INSERT INTO tokens(id, name, role, secret_hash, created) VALUES (?, ?, ?, ?, ?)",
                (token_id, name, role, self._ph.hash(secret), created),
            )
        except sqlite3.IntegrityError:
            raise TokenError(f"an active token named {name!r} exists; revoke it first") from None
        return TokenInfo(token_id, name, role, created, None), f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def list_tokens(self, include_revoked: bool = False) -> list[TokenInfo]:
        sql = "SELECT id, name, role, created, revoked FROM tokens"
        if not include_revoked:
            sql += " WHERE revoked IS NULL"
        return [TokenInfo(*row) for row in self.db.execute(sql + " ORDER BY created")]

    def revoke(self, name_or_id: str) -> list[TokenInfo]:
        """Revoke the active token with this name or id; returns what was revoked."""
        rows = self.db.execute(
            "SELECT id, name, role, created, revoked FROM tokens WHERE revoked IS NULL AND (name = ? OR id = ?)",
            (name_or_id, name_or_id),
        ).fetchall()
        if not rows:
            raise TokenError(f"no active token named or with id {name_or_id!r}")
        now = time.time()
        self.db.executemany("UPDATE tokens SET revoked = ? WHERE id = ?", [(now, r[0]) for r in rows])
        return [TokenInfo(*r) for r in rows]

    def token_row(self, token_id: str) -> tuple[TokenInfo, str] | None:
        row = self.db.execute(
            "SELECT id, name, role, created, revoked, secret_hash FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
        return None if row is None else (TokenInfo(*row[:5]), row[5])

    def verify(self, token: str) -> TokenInfo | None:
        """The active token's info when `token` is valid; one indexed lookup + one argon2 verify."""
        parts = split_token(token)
        if parts is None:
            return None
        found = self.token_row(parts[0])
        if found is None:
            return None
        info, secret_hash = found
        try:
            self._ph.verify(secret_hash, parts[1])
        except (VerificationError, InvalidHashError):
            return None
        return info if info.revoked is None else None

    def is_active(self, token_id: str) -> bool:
        row = self.db.execute("SELECT revoked FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return row is not None and row[0] is None

    # ----- audit --------------------------------------------------------------------------------
    def audit(self, actor: str, role: str, action: str, params: dict[str, Any], status: int, result: str) -> int:
        cur = self.db.execute(
            "INSERT INTO audit(ts, actor, role, action, params, status, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), actor, role, action, json.dumps(params, ensure_ascii=False), status, result),
        )
        return int(cur.lastrowid or 0)

    def audit_log(self, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
        sql = "SELECT seq, ts, actor, role, action, params, status, result FROM audit"
        args: list[Any] = []
        if before is not None:
            sql += " WHERE seq < ?"
            args.append(before)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])
                for r in self.db.execute(sql, args)]

    # ----- bans ---------------------------------------------------------------------------------
    def put_ban(self, ban: Ban) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO bans(user, until, actor, reason, created) VALUES (?, ?, ?, ?, ?)",
            (ban.user, ban.until, ban.actor, ban.reason, time.time()),
        )

    def delete_ban(self, user: str) -> bool:
        return self.db.execute("DELETE FROM bans WHERE user = ?", (user,)).rowcount > 0

    def bans(self) -> list[Ban]:
        now = time.time()
        self.db.execute("DELETE FROM bans WHERE until IS NOT NULL AND until <= ?", (now,))
        return [Ban(*r) for r in self.db.execute("SELECT user, until, actor, reason FROM bans")]



class AsyncPanelStore:
    """PanelStore on one worker thread: every call is awaited, none blocks the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panel-db")
        self._store: PanelStore | None = None

    async def open(self) -> None:
        def _open() -> None:
            self._store = PanelStore(self.path)

        await self._call(_open)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _s(self) -> PanelStore:
        if self._store is None:
            raise RuntimeError("panel store is not open")
        return self._store

    async def verify(self, token: str) -> TokenInfo | None:
        return await self._call(lambda: self._s().verify(token))

    async def is_active(self, token_id: str) -> bool:
        return await self._call(lambda: self._s().is_active(token_id))

    async def audit(self, actor: str, role: str, action: str, params: dict[str, Any], status: int,
                    result: str) -> int:
        return await self._call(lambda: self._s().audit(actor, role, action, params, status, result))

    async def audit_log(self, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
        return await self._call(lambda: self._s().audit_log(limit, before))

    async def put_ban(self, ban: Ban) -> None:
        await self._call(lambda: self._s().put_ban(ban))

    async def delete_ban(self, user: str) -> bool:
        return await self._call(lambda: self._s().delete_ban(user))

    async def bans(self) -> list[Ban]:
        return await self._call(lambda: self._s().bans())

    async def close(self) -> None:
        if self._store is not None:
            await self._call(self._store.close)
            self._store = None
        self._executor.shutdown(wait=False)
