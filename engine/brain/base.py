"""The brain interface: a prompt in, streamed reply text out (with inline emotion tags)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from engine.lifecycle import Component


@dataclass(frozen=True)
class Prompt:
    """What the character is answering: a viewer's message, already moderated."""

    text: str
    language: str
    user_name: str = "viewer"
    user_id: str = ""


@dataclass(frozen=True)
class HistoryEntry:
    role: str  # "viewer" or "character"
    name: str
    text: str  # for the character: only what viewers actually heard


class BrainError(RuntimeError):
    """The brain backend failed (HTTP error, malformed stream, unreachable server); says which and why.

    An expected failure: the show logs it as one line, says so in health and goes on."""


class Brain(Component, Protocol):
    def reply(self, prompt: Prompt, history: list[HistoryEntry]) -> AsyncGenerator[str, None]:
        """Stream reply text; `[joy]`-style tags mark emotions and are never spoken."""
        ...
