"""Captions for OBS's text source: width-aware wrapping (CJK counts double) and a follower of the
show's caption events that shows the words being heard."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable

from streamer.events import CaptionChanged

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
    """Follows CaptionChanged events and shows the words heard so far of the current speech as
    the OBS caption, through ``set_caption`` (normally ``ObsController.set_caption``).

    Runs on the event loop. The caption clears ``clear_after_s`` after the character stops
    speaking; a new word cancels the clear.
    """

    def __init__(self, set_caption: Callable[[str], None], clear_after_s: float = 2.0, max_chars: int = 160) -> None:
        self.set_caption = set_caption
        self.clear_after_s = clear_after_s
        self.max_chars = max_chars
        self._key: tuple[int, int] | None = None
        self._words: list[str] = []
        self._spaces: list[bool | None] = []  # the line's own spacing, None where not known
        self._speech: int | None = None
        self._clear: asyncio.TimerHandle | None = None
        self._shown = ""

    def __call__(self, event: CaptionChanged) -> None:
        if event.speech_id is not None and event.index is not None:
            self._cancel_clear()
            key = (event.speech_id, event.index)
            if key != self._key:
                self._key = key
                if event.speech_id != self._speech:
                    self._speech, self._words, self._spaces = event.speech_id, [], []
                if event.index < len(event.words):
                    self._words.append(event.words[event.index])
                    spaces = event.spaces
                    self._spaces.append(spaces[event.index] if len(spaces) == len(event.words) else None)
                self._show(self._join(self._words, self._spaces))
        elif not event.speaking and self._clear is None and self._shown:
            self._clear = asyncio.get_running_loop().call_later(self.clear_after_s, self._show, "")

    def _cancel_clear(self) -> None:
        if self._clear is not None:
            self._clear.cancel()
            self._clear = None

    def _show(self, text: str) -> None:
        self._clear = None
        if text != self._shown:
            self._shown = text
            self.set_caption(text)

    def close(self) -> None:
        self._cancel_clear()

    def _join(self, words: list[str], spaces: list[bool | None]) -> str:
        """The heard words with the line's own spacing; without it, a space between non-CJK words."""
        text = ""
        for w, space in zip(words, spaces, strict=True):
            if space is None:
                space = bool(text) and not (_CJK.search(w[:1]) or _CJK.search(text[-1:]))
            text += " " + w if space and text else w
        if len(text) > self.max_chars:  # keep the tail: the newest words matter
            text = "…" + text[-(self.max_chars - 1):]
        return text
