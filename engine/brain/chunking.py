"""Split streamed brain text into speakable sentences so speech can start before the brain ends.

Language-aware: Latin sentence ends need following whitespace (so "3.5" and "e.g." mid-token do not
split), CJK full stops (。！？) end a sentence at once, with any closing quote/bracket kept.  For zh/ja,
where a sentence can run long with no space to break at, a clause mark (、，,；) splits the sentence early
once the pending text reaches `clause_chars`, so the first audio of a long opening sentence starts sooner.
"""

from __future__ import annotations

import re

# Sentence ends: Latin punctuation followed by space/end, or CJK full stops (no space needed).
_END = re.compile(r"([.!?]+[\"')\]]*(?=\s)|[。！？!?]+[」』）)\"'”’]*)")
_CLAUSE_MARKS = "、，,；;："
_CJK = ("zh", "ja")
_NOT_SPOKEN = re.compile(r"\[[A-Za-z]+(?::[0-9.]+)?\]|\s+")
DEFAULT_CJK_CLAUSE_CHARS = 12


def _spoken_len(text: str) -> int:
    return len(_NOT_SPOKEN.sub("", text))


class SentenceChunker:
    """Feed text pieces; get back complete sentences (or long CJK clauses) as soon as they end."""

    def __init__(self, max_chars: int = 220, language: str | None = None, clause_chars: int | None = None) -> None:
        """`clause_chars` (default 12 for zh/ja, off otherwise): split at a clause mark once this long."""
        self.max_chars = max_chars
        self.language = language
        if clause_chars is None and language in _CJK:
            clause_chars = DEFAULT_CJK_CLAUSE_CHARS
        self.clause_chars = clause_chars
        self._buf = ""

    def feed(self, piece: str) -> list[str]:
        self._buf += piece
        out: list[str] = []
        while True:
            match = _END.search(self._buf)
            cut = match.end() if match is not None else self._clause_cut(self._buf)
            if cut is None:
                break
            out.append(self._buf[:cut].strip())
            self._buf = self._buf[cut:]
        while len(self._buf) > self.max_chars:  # a run-on: break at the last space or comma
            window = self._buf[: self.max_chars]
            pos = max(window.rfind(" "), window.rfind(","), window.rfind("、"), window.rfind("，"))
            pos = pos if pos > self.max_chars // 3 else self.max_chars
            out.append(self._buf[: pos + 1].strip())
            self._buf = self._buf[pos + 1 :]
        return [s for s in out if s]

    def _clause_cut(self, text: str) -> int | None:
        """End of the first clause in `text` when it is long enough to speak on its own, else None.
        Lengths count spoken characters only: emotion tags and spaces are not heard."""
        if not self.clause_chars or _spoken_len(text) < self.clause_chars:
            return None
        min_len = max(2, self.clause_chars // 3)  # a clause of a word or two sounds choppy alone
        for i, ch in enumerate(text):
            if ch in _CLAUSE_MARKS and _spoken_len(text[: i + 1]) >= min_len:
                return i + 1
        return None

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []


def split_sentences(text: str, language: str | None = None) -> list[str]:
    chunker = SentenceChunker(language=language)
    return chunker.feed(text) + chunker.flush()
