"""The character's memory: a bounded SQLite store of recent conversation, viewers and summaries.

An always-on stream runs for months, so every table is capped and pruned oldest-first; conversation
that falls out of the rolling window is not lost outright but folded into a short extractive summary
(deterministic: the same turns give the same summary, no model needed).  Per-viewer notes let the
character greet a returning regular; :meth:`Memory.context_for` renders what is known about a viewer
for the brain's system prompt.

SQLite calls are fast (well under a millisecond here) but blocking: the director should call them
from a worker thread (``asyncio.to_thread``).  One connection guarded by a lock serves all threads.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.brain.base import HistoryEntry
from engine.lifecycle import Lifecycle

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    language TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_user ON turns(user_id, id);
CREATE TABLE IF NOT EXISTS viewers (
    user_id TEXT PRIMARY KEY, name TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    message_count INTEGER NOT NULL, language TEXT NOT NULL, note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS viewers_seen ON viewers(last_seen);
CREATE TABLE IF NOT EXISTS summaries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, first_turn INTEGER NOT NULL,
    last_turn INTEGER NOT NULL, text TEXT NOT NULL
);
"""

# Things viewers say about themselves are what a host should remember.
_SELF = re.compile(
    r"\b(i am|i'm|im|my name is|call me|i like|i love|i hate|i live|i work|i study|my favou?rite|i have|i just)\b"
    r"|我(是|叫|喜欢|爱|住|在|有)|私は|僕は|俺は|好き|住んで",
    re.IGNORECASE,
)
_WORDS = re.compile(r"[a-z0-9']+|[\u3040-\u30ff\u3400-\u9fff]", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]*")
_STOP = frozenset(
    "the a an and or but to of in on at is are was were be it this that i you he she we they my your me "
    "so do does did not no yes for with what how why who hi hello hey lol ok oh just".split()
)


@dataclass(frozen=True)
class ViewerNote:
    user_id: str
    name: str
    first_seen: float
    last_seen: float
    message_count: int
    language: str
    note: str


@dataclass(frozen=True)
class MemoryLimits:
    """Caps that keep the store bounded on an always-on stream."""

    window_turns: int = 200  # recent turns kept verbatim
    fold_batch: int = 50  # turns folded into one summary when the window overflows
    max_summaries: int = 200
    max_viewers: int = 5000
    note_chars: int = 160
    summary_chars: int = 400
    max_bytes: int = 8 * 1024 * 1024  # database file size the pruning aims to stay under


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 129600:
        return f"{round(seconds / 3600)} hours ago"
    return f"{round(seconds / 86400)} days ago"


def extractive_summary(lines: list[str], max_chars: int = 400) -> str:
    """The most content-bearing sentences of `lines`, in their original order, within `max_chars`.

    Sentences are scored by the frequency of their content words across the batch (a classic
    frequency summarizer): deterministic, language-agnostic enough for en/zh/ja, no model needed.
    """
    sentences: list[str] = []
    for line in lines:
        sentences += [s.strip() for s in _SENTENCE.findall(line) if len(s.strip()) > 3]
    if not sentences:
        return ""
    freq = Counter(w.lower() for s in sentences for w in _WORDS.findall(s) if w.lower() not in _STOP)
    scored = []
    for i, s in enumerate(sentences):
        words = [w.lower() for w in _WORDS.findall(s) if w.lower() not in _STOP]
        score = sum(freq[w] for w in set(words)) / (1 + len(words)) ** 0.5
        scored.append((-score, i, s))
    picked: list[tuple[int, str]] = []
    used = 0
    for _, i, s in sorted(scored):
        if used + len(s) + 1 > max_chars:
            continue
        picked.append((i, s))
        used += len(s) + 1
    return " ".join(s for _, s in sorted(picked))


class Memory(Lifecycle):
    """SQLite-backed memory; `path=":memory:"` for tests that need no file."""

    def __init__(
        self, path: str | Path = ":memory:", limits: MemoryLimits | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = str(path)
        self.limits = limits or MemoryLimits()
        self._clock = clock
        self._lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file: freed pages shrink it
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA journal_size_limit=1048576")
        self._db.executescript(_SCHEMA)
        self._since_prune = 0

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction under the lock; prunes (and shrinks the file) when due."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
                pruned = self._maybe_prune_locked()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if pruned:
                self._db.execute("PRAGMA incremental_vacuum")

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    # ----- writing ---------------------------------------------------------------------------------
    def add_viewer_message(self, user_id: str, name: str, text: str, language: str = "en") -> ViewerNote:
        """Record a viewer's message and update their note; returns the note *before* this message
        (``message_count == 0`` means a new viewer), which is what a greeting should use."""
        now = self._clock()
        with self._tx():
            before = self._viewer_locked(user_id)
            self._insert_turn(now, user_id, name, "viewer", language, text)
            note = self._updated_note(before.note if before else "", text)
            if before is None:
                self._db.execute(
                    "INSERT INTO viewers VALUES (?, ?, ?, ?, 1, ?, ?)", (user_id, name, now, now, language, note)
                )
            else:
                self._db.execute(
                    "UPDATE viewers SET name=?, last_seen=?, message_count=message_count+1, language=?, note=? "
                    "WHERE user_id=?",
                    (name, now, language, note, user_id),
                )
        return before or ViewerNote(user_id, name, now, now, 0, language, "")

    def add_character_reply(self, text: str, name: str, language: str = "en", to_user_id: str = "") -> None:
        """Record what the character said (only what viewers heard)."""
        if not text.strip():
            return
        with self._tx():
            self._insert_turn(self._clock(), to_user_id, name, "character", language, text)

    def _insert_turn(self, ts: float, user_id: str, name: str, role: str, language: str, text: str) -> None:
        self._db.execute(
            "INSERT INTO turns(ts, user_id, name, role, language, text) VALUES (?, ?, ?, ?, ?, ?)",
            (ts, user_id, name, role, language, text[:2000]),
        )
        self._since_prune += 1

    def _updated_note(self, old: str, text: str) -> str:
        """Keep what viewers say about themselves, newest first, within note_chars."""
        if not _SELF.search(text):
            return old
        fact = re.sub(r"\s+", " ", text.strip())[: self.limits.note_chars]
        parts = [fact] + [p for p in old.split(" | ") if p and p != fact]
        out = ""
        for p in parts:
            candidate = f"{out} | {p}" if out else p
            if len(candidate) > self.limits.note_chars:
                break
            out = candidate
        return out

    # ----- bounding --------------------------------------------------------------------------------
    def _maybe_prune_locked(self) -> bool:
        if self._since_prune < max(1, self.limits.fold_batch // 2):
            return False
        self._since_prune = 0
        self._fold_window_locked()
        self._db.execute(
            "DELETE FROM summaries WHERE id NOT IN (SELECT id FROM summaries ORDER BY id DESC LIMIT ?)",
            (self.limits.max_summaries,),
        )
        self._db.execute(
            "DELETE FROM viewers WHERE user_id NOT IN (SELECT user_id FROM viewers ORDER BY last_seen DESC LIMIT ?)",
            (self.limits.max_viewers,),
        )
        self._enforce_bytes_locked()
        return True

    def _fold_window_locked(self) -> None:
        lim = self.limits
        count = self._db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
        while count > lim.window_turns:
            n = min(lim.fold_batch, count - lim.window_turns)
            rows = self._db.execute("SELECT id, name, text FROM turns ORDER BY id LIMIT ?", (n,)).fetchall()
            summary = extractive_summary([f"{name}: {text}" for _, name, text in rows], lim.summary_chars)
            if summary:
                self._db.execute(
                    "INSERT INTO summaries(ts, first_turn, last_turn, text) VALUES (?, ?, ?, ?)",
                    (self._clock(), rows[0][0], rows[-1][0], summary),
                )
            self._db.execute("DELETE FROM turns WHERE id <= ?", (rows[-1][0],))
            count -= len(rows)

    def _enforce_bytes_locked(self) -> None:
        """Drop the oldest summaries, then the least recent viewers, until the data fits max_bytes."""
        for table, order in (("summaries", "id"), ("viewers", "last_seen")):
            while self._used_bytes_locked() > self.limits.max_bytes * 0.8:
                rows = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                if rows == 0:
                    break
                drop = max(1, rows // 10)
                key = "id" if table == "summaries" else "user_id"
                self._db.execute(
                    f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} ORDER BY {order} LIMIT ?)",
                    (drop,),
                )

    def _used_bytes_locked(self) -> int:
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * page_size

    def size_bytes(self) -> int:
        """Bytes of live data pages (the file shrinks to this on incremental vacuum)."""
        with self._lock:
            return self._used_bytes_locked()

    def counts(self) -> dict[str, int]:
        with self._lock:
            tables = ("turns", "viewers", "summaries")
            return {t: self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}

    # ----- reading ---------------------------------------------------------------------------------
    def _viewer_locked(self, user_id: str) -> ViewerNote | None:
        row = self._db.execute(
            "SELECT user_id, name, first_seen, last_seen, message_count, language, note FROM viewers WHERE user_id=?",
            (user_id,),
        ).fetchone()
        return ViewerNote(*row) if row else None

    def viewer(self, user_id: str) -> ViewerNote | None:
        with self._lock:
            return self._viewer_locked(user_id)

    def recent(self, limit: int = 20) -> list[HistoryEntry]:
        """The newest turns, oldest first (to seed the director's history after a restart)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT role, name, text FROM turns ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [HistoryEntry(role, name, text) for role, name, text in reversed(rows)]

    def summaries(self, limit: int = 3) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT text FROM summaries ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [r[0] for r in reversed(rows)]

    def context_for(self, user_id: str, summaries: int = 2) -> str:
        """What the brain should know before answering this viewer: who they are, and the gist of
        earlier conversation. Empty for an unknown viewer and an empty memory."""
        lines: list[str] = []
        with self._lock:
            viewer = self._viewer_locked(user_id) if user_id else None
            said = []
            if viewer is not None:
                said = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT text FROM turns WHERE user_id=? AND role='viewer' ORDER BY id DESC LIMIT 3", (user_id,)
                    ).fetchall()
                ]
        if viewer is not None and viewer.message_count > 0:
            now = self._clock()
            returning = "a returning viewer" if viewer.message_count > 1 else "a new viewer"
            lines.append(
                f"{viewer.name} is {returning}: first seen {_ago(now - viewer.first_seen)}, "
                f"last seen {_ago(now - viewer.last_seen)}, {viewer.message_count} messages."
            )
            if viewer.note:
                lines.append(f"Notes about {viewer.name}: {viewer.note}")
            if said[1:]:
                lines.append(f"{viewer.name} recently said: " + " / ".join(reversed(said[1:])))
        gist = self.summaries(summaries)
        if gist:
            lines.append("Earlier on stream: " + " ".join(gist))
        return "\n".join(lines)
