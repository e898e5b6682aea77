"""Banned words: each configured word compiled into a pattern over `match_form` text.

A word matches as a whole word, with common endings ("badwords", "badwording", "f*cking"), with each
letter repeated ("fuuuck"), a mask standing for one letter ("f*ck"), leetspeak ("b4d") and separators
of any kind between its letters ("b....a....d", "b😀a😀d"). A `*` at either end of a configured word
(`*badword*`) also matches it inside longer words on that side ("superbadword", "badwordsmith"); that
is the per-word substring option. Words in scripts written without spaces (Chinese, Japanese, Thai)
always match inside longer text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from streamer.moderation.text import CJK, LEET_FOR, clean, match_form, skeleton

_SUFFIXES = ("s", "es", "ed", "d", "er", "ers", "ing", "ings", "in", "y", "ies", "z")
_LEET_SYMBOLS = frozenset(LEET_FOR.values())
_GAP = "[.*" + "".join(sorted(_LEET_SYMBOLS)) + "]{0,3}"  # between letters: separators, masks, leet symbols
_SPACELESS_GAP = "[ " + _GAP[1:]  # Chinese/Japanese letters: spaces too ("坏 蛋")
_NO_SPACES = re.compile(f"[{CJK}]")


@dataclass(frozen=True)
class BannedWord:
    word: str  # as configured, e.g. "*badword*"
    parts: tuple[str, ...]  # its words' letters in match form (a phrase has several)
    prefix_ok: bool  # may be preceded by other letters (a leading '*', or a script without spaces)
    suffix_ok: bool  # may be followed by other letters
    spaceless: bool  # a script written without spaces: separators between letters may be spaces too

    @classmethod
    def parse(cls, configured: str) -> BannedWord | None:
        word = configured.strip()
        lead, trail = word.startswith("*"), word.endswith("*") and len(word) > 1
        core = clean(word.strip("*"))
        parts = tuple(p for p in ("".join(c for c in skeleton(piece) if c.isalpha()) for piece in core.split()) if p)
        if not parts:
            return None
        spaceless = bool(_NO_SPACES.search(core))
        return cls(word, parts, lead or spaceless, trail or spaceless, spaceless)

    @property
    def length(self) -> int:
        return sum(len(p) for p in self.parts)

    def pattern(self) -> str:
        gap = _SPACELESS_GAP if self.spaceless else _GAP
        words = []
        for part in self.parts:
            runs = [m.group(0) for m in re.finditer(r"(.)\1*", part)]
            words.append(gap.join(_unit(run[0], len(run), stretch=not self.spaceless) for run in runs))
        body = r"[ .]{1,3}".join(words)  # a phrase's words: any separator between them
        if not self.prefix_ok:
            body = r"(?<![^\W\d_])" + body
        if not self.suffix_ok:
            ends = "|".join(_GAP.join(_unit(c, 1, stretch=False) for c in s)
                            for s in sorted(_SUFFIXES, key=len, reverse=True))
            body += rf"(?:{_GAP}(?:{ends}))?(?![^\W\d_])"
        return body


def _unit(letter: str, count: int, stretch: bool) -> str:
    """One letter (repeated `count` times in the word): that letter, its leet symbol or a mask, `count`
    times with separators allowed between ("a s s"), or more when `stretch` ("fuuuck"; not in Chinese,
    where 妈妈 is a word of its own)."""
    one = "[" + re.escape(letter) + re.escape(LEET_FOR.get(letter, "")) + r"\*]"
    more = f"{{{count - 1},{count + 3}}}" if stretch else f"{{{count - 1}}}"
    return one if count == 1 and not stretch else f"{one}(?:{_GAP}{one}){more}"


class BannedWords:
    """All configured words, each a regex, plus the check that a match has enough real letters. A word
    is searched for only when every one of its letters (or that letter's leet symbol, or a mask) occurs
    in the text at all: most chat skips most words without running a regex."""

    def __init__(self, words: list[str]) -> None:
        self.words = [w for w in (BannedWord.parse(x) for x in words) if w is not None]
        self._compiled = [(w, re.compile(w.pattern()), _needs(w)) for w in self.words]

    def find(self, text: str) -> str | None:
        """The first banned word in `text` (cleaned) as it was matched, or None."""
        if not self._compiled:
            return None
        form = match_form(text)
        present = set(form)
        for word, pattern, needs in self._compiled:
            if not all(present & options for options in needs):
                continue
            pos = 0
            while (hit := pattern.search(form, pos)) is not None:
                if _real_enough(hit.group(0), word.length):
                    return hit.group(0)
                pos = hit.start() + 1  # all masks ("***" as "ass"): a real word may start inside it
        return None


def _needs(word: BannedWord) -> list[frozenset[str]]:
    """For each distinct letter of `word`: the characters that can stand for it in a match form."""
    return [frozenset({letter, LEET_FOR.get(letter, letter), "*"}) for letter in set("".join(word.parts))]


def _real_enough(matched: str, length: int) -> bool:
    """A match needs at least one real letter, and letters or leet symbols for at least half the
    word: '***' or '455' is not a banned word, 'f*ck' and '8@d' are."""
    letters = sum(ch.isalpha() for ch in matched)
    leet = sum(ch in _LEET_SYMBOLS for ch in matched)
    return letters >= 1 and letters + leet >= math.ceil(length / 2)
