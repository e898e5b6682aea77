"""A chat prompt that stays cache-friendly over a long show.

LLM servers keep the key/value state of the last prompt and re-read only what follows the longest
common prefix (llama.cpp: "N prefix-match hit, remaining M prompt tokens").  A window that slides by one
turn every turn changes the prompt near its start, so every turn re-reads everything.  Here the prompt is

    [stable system text + pinned summary of older turns] [recent turns ...] [note + viewer's message]

The system text never changes during a show (the viewer's language and memory notes travel with the
viewer's message instead).  Recent turns only grow, within a token budget; when they overflow, the
oldest half moves into the pinned summary in one step, so the prefix changes once every many turns
instead of every turn.

Some servers drop system messages (llama-cpp-python's ``gemma`` chat format, GGUFs without a chat
template): with ``system_mode="fold"`` the system text opens the first user message instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from engine.brain.base import HistoryEntry, Prompt
from engine.brain.persona import Persona, viewer_line
from engine.brain.tags import spoken_name, untagged

SystemMode = Literal["system", "fold"]
MESSAGE_OVERHEAD_TOKENS = 6  # role markers and separators a chat template adds per message
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]")
_SUMMARY_LINE_CHARS = 120


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, ~3.5 characters per token otherwise."""
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 3.5)


class TokenCounter:
    """Counts tokens with the server's tokenizer when it has one (cached per text), else estimates.

    `remote(text)` returns the count or None (no tokenizer, or it failed); after a failure the counter
    estimates for the rest of the show rather than paying a failing round trip every turn."""

    def __init__(self, remote: Callable[[str], Awaitable[int | None]] | None = None, cache_size: int = 4096) -> None:
        self.remote = remote
        self.cache_size = cache_size
        self._cache: dict[str, int] = {}
        self.remote_calls = 0

    @property
    def exact(self) -> bool:
        return self.remote is not None

    async def count(self, text: str) -> int:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        n: int | None = None
        if self.remote is not None:
            self.remote_calls += 1
            n = await self.remote(text)
            if n is None:
                self.remote = None
        if n is None:
            n = estimate_tokens(text)
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[text] = n
        return n


@dataclass(frozen=True)
class BuiltPrompt:
    messages: list[dict[str, str]]
    tokens: int  # the whole prompt, counted or estimated
    prefix_tokens: int  # the stable part (system text + pinned summary)
    compacted: bool  # this turn moved turns into the summary (the prefix changed)
    new_tokens: int  # tokens after the part shared with the previous prompt: what the server must read


class PromptBuilder:
    """Builds each turn's messages; keeps the pinned summary and where it ends between turns."""

    def __init__(self, persona: Persona, counter: TokenCounter | None = None, *, history_tokens: int = 900,
                 summary_tokens: int = 200, system_mode: SystemMode = "system") -> None:
        """`history_tokens`: budget for recent turns; `summary_tokens`: for the pinned summary."""
        if history_tokens < 50 or summary_tokens < 0:
            raise ValueError("history_tokens must be >= 50 and summary_tokens >= 0")
        self.persona = persona
        self.counter = counter or TokenCounter()
        self.history_tokens = history_tokens
        self.summary_tokens = summary_tokens
        self.system_mode = system_mode
        self.summary_lines: list[str] = []
        self._boundary: HistoryEntry | None = None  # the newest entry already in the summary
        self.compactions = 0
        self._previous: list[dict[str, str]] = []  # the last prompt's messages

    def _recent(self, history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
        """Entries after the summary's boundary (by identity: the director hands the same objects)."""
        if self._boundary is None:
            return list(history)
        for i in range(len(history) - 1, -1, -1):
            if history[i] is self._boundary:
                return list(history[i + 1 :])
        # the boundary left the history (a new show, a reset): start the summary again
        self.summary_lines, self._boundary = [], None
        return list(history)

    async def _entry_tokens(self, entry: HistoryEntry) -> int:
        return await self.counter.count(_entry_text(entry)) + MESSAGE_OVERHEAD_TOKENS

    async def _compact(self, recent: list[HistoryEntry]) -> list[HistoryEntry]:
        """Move the oldest turns into the summary until recent turns fit a quarter of the budget (a step that
        changes the prefix re-reads what is kept, so keep little and step rarely)."""
        sizes = [await self._entry_tokens(e) for e in recent]
        if sum(sizes) <= self.history_tokens:
            return recent
        keep_from, total = 0, sum(sizes)
        while keep_from < len(recent) - 1 and total > self.history_tokens // 4:
            total -= sizes[keep_from]
            keep_from += 1
        # never start the recent turns with the character's words: keep them with their question
        while keep_from > 0 and recent[keep_from].role == "character":
            keep_from -= 1
        if keep_from == 0:
            return recent
        moved = recent[:keep_from]
        self.summary_lines += [_summary_line(e) for e in moved]
        while self.summary_lines and await self.counter.count("\n".join(self.summary_lines)) > self.summary_tokens:
            self.summary_lines.pop(0)
        self._boundary = moved[-1]
        self.compactions += 1
        return recent[keep_from:]

    def system_text(self) -> str:
        """The stable prefix: persona instructions and the pinned summary."""
        text = self.persona.stable_system_prompt()
        if self.summary_lines:
            text += "\n\nEarlier in this stream (summary):\n" + "\n".join(self.summary_lines)
        return text

    async def build(self, prompt: Prompt, history: Sequence[HistoryEntry], context: str = "") -> BuiltPrompt:
        before = self.compactions
        recent = await self._compact(self._recent(history))
        system = self.system_text()
        turns: list[dict[str, str]] = []
        for entry in recent:
            role = "assistant" if entry.role == "character" else "user"
            turns.append({"role": role, "content": _entry_text(entry)})
        note = self.persona.turn_note(prompt.language, context)
        said = viewer_line(prompt.user_name, prompt.text)
        turns.append({"role": "user", "content": f"{note}\n{said}" if note else said})
        messages = _with_system(system, turns, self.system_mode)
        prefix = await self.counter.count(system) + MESSAGE_OVERHEAD_TOKENS
        sizes = [await self.counter.count(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages]
        shared = 0  # whole messages equal to the previous prompt's (the server's cache covers at least those)
        while shared < min(len(messages), len(self._previous)) and messages[shared] == self._previous[shared]:
            shared += 1
        self._previous = messages
        return BuiltPrompt(messages, sum(sizes), prefix, self.compactions != before, sum(sizes[shared:]))


def _entry_text(entry: HistoryEntry) -> str:
    return entry.text if entry.role == "character" else viewer_line(entry.name, entry.text)


def _summary_line(entry: HistoryEntry) -> str:
    text = " ".join(untagged(entry.text).split())
    if len(text) > _SUMMARY_LINE_CHARS:
        text = text[: _SUMMARY_LINE_CHARS - 1] + "…"
    name = entry.name if entry.role == "character" else spoken_name(entry.name) or "viewer"
    return f"- {name}: {text}"


def _with_system(system: str, turns: list[dict[str, str]], mode: SystemMode) -> list[dict[str, str]]:
    """The system text as a system message, or folded into the opening user message."""
    if mode == "system":
        return [{"role": "system", "content": system}, *turns]
    if turns and turns[0]["role"] == "user":
        first = {"role": "user", "content": f"{system}\n\n{turns[0]['content']}"}
        return [first, *turns[1:]]
    # the history opens with the character: a user message of its own keeps the roles alternating
    return [{"role": "user", "content": system}, *turns]
