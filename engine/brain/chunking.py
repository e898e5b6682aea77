"""Split streamed brain text into speakable sentences so speech can start before the brain ends."""

from __future__ import annotations

import re

# Sentence ends: Latin punctuation followed by space/end, or CJK full stops (no space needed).
_END = re.compile(r"([.!?]+[\"')\]]*(?=\s)|[。！？!?]+)")


class SentenceChunker:
    """Feed text pieces; get back complete sentences as soon as they end."""

    def __init__(self, max_chars: int = 220) -> None:
        self.max_chars = max_chars
        self._buf = ""

    def feed(self, piece: str) -> list[str]:
        self._buf += piece
        out: list[str] = []
        while True:
            match = _END.search(self._buf)
            if match is None:
                break
            cut = match.end()
            out.append(self._buf[:cut].strip())
            self._buf = self._buf[cut:]
        while len(self._buf) > self.max_chars:  # a run-on: break at the last space or comma
            window = self._buf[: self.max_chars]
            pos = max(window.rfind(" "), window.rfind(","), window.rfind("、"), window.rfind("，"))
            pos = pos if pos > self.max_chars // 3 else self.max_chars
            out.append(self._buf[: pos + 1].strip())
            self._buf = self._buf[pos + 1 :]
        return [s for s in out if s]

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []


def split_sentences(text: str) -> list[str]:
    chunker = SentenceChunker()
    return chunker.feed(text) + chunker.flush()
