"""Captions for OBS's text source: width-aware wrapping (CJK counts double) and a frame hook that
follows the words being heard."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from engine.timeline import FrameInputs

_CJK_CHARS = "\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef"
_CJK = re.compile(f"[{_CJK_CHARS}]")
_TOKEN = re.compile(f"(\\s*)([{_CJK_CHARS}]|[^\\s{_CJK_CHARS}]+)")


def _width(token: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in token)


def wrap_caption(text: str, line_chars: int, max_lines: int) -> str:
    """Break ``text`` into lines of at most ``line_chars`` columns (CJK counts 2, may break between
    any two CJK characters) and keep the newest ``max_lines``. Text that fits is returned unchanged."""
    text = " ".join(text.split("\n"))
    if _width(text) <= line_chars:
        return text
    lines: list[str] = []
    line, used = "", 0
    for space, token in _TOKEN.findall(text):
        sep = " " if space and line else ""
        w = _width(token)
        if line and used + len(sep) + w > line_chars:
            lines.append(line)
            line, used, sep = "", 0, ""
        line += sep + token
        used += len(sep) + w
    if line:
        lines.append(line)
    return "\n".join(lines[-max_lines:])


class CaptionFollower:
    """A frame hook that shows the words heard so far of the current speech as the OBS caption.

    Runs on the frame-loop thread (``FrameLoop.hooks``); it only compares the current word with
    the previous one and hands changes to ``set_caption`` (normally ``ObsController.set_caption``)
    on ``loop``. The caption clears ``clear_after_s`` after the character stops speaking.
    """

    def __init__(self, set_caption: Callable[[str], None], loop: asyncio.AbstractEventLoop, fps: int,
                 clear_after_s: float = 2.0, max_chars: int = 160) -> None:
        self.set_caption, self.loop = set_caption, loop
        self.clear_after = max(1, round(clear_after_s * fps))
        self.max_chars = max_chars
        self._key: tuple[int, int] | None = None
        self._words: list[str] = []
        self._speech: int | None = None
        self._silent_since: int | None = None
        self._shown = ""

    def __call__(self, n: int, inputs: FrameInputs, state: torch.Tensor) -> None:
        word = inputs.word
        text = self._shown
        if word is not None:
            self._silent_since = None
            key = (word.speech_id, word.index)
            if key != self._key:
                self._key = key
                if word.speech_id != self._speech:
                    self._speech, self._words = word.speech_id, []
                self._words.append(word.text)
                text = self._join(self._words)
        elif not inputs.speaking:
            if self._silent_since is None:
                self._silent_since = n
            elif n - self._silent_since >= self.clear_after:
                text = ""
        if text != self._shown:
            self._shown = text
            try:
                self.loop.call_soon_threadsafe(self.set_caption, text)
            except RuntimeError:  # the loop closed: the show is ending
                pass

    def _join(self, words: list[str]) -> str:
        text = ""
        for w in words:
            text += w if (not text or _CJK.search(w[:1]) or _CJK.search(text[-1:])) else " " + w
        if len(text) > self.max_chars:  # keep the tail: the newest words matter
            text = "…" + text[-(self.max_chars - 1):]
        return text
