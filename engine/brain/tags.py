"""Emotion tags in brain output: `[joy]` or `[joy:0.6]` become cues and are removed from speech.

Tags are the brain's own: a viewer's name or words put into a reply must never carry one, so names go
through :func:`spoken_name` (no brackets, capped) and words through :func:`untagged` before any brain
sees them."""

from __future__ import annotations

import re

from engine.events import EmotionCue
from engine.state import EMOTIONS

_TAG = re.compile(r"\[([a-zA-Z]+)(?::([0-9]*\.?[0-9]+))?\]")


def split_emotion_tags(text: str, hold_s: float = 2.5) -> tuple[list[EmotionCue], str]:
    """Return the cues found and the text without any bracketed tag (unknown tags are dropped too)."""
    cues: list[EmotionCue] = []
    for match in _TAG.finditer(text):
        name = match.group(1).lower()
        if name in EMOTIONS:
            intensity = min(1.0, max(0.0, float(match.group(2)))) if match.group(2) else 0.8
            cues.append(EmotionCue(name, intensity, hold_s))
    clean = _TAG.sub("", text)
    return cues, re.sub(r"\s{2,}", " ", clean).strip()


def untagged(text: str) -> str:
    """Viewer words as a brain reads them: tag syntax loses its brackets (`[angry:1]` -> `angry:1`), so a
    model that echoes a viewer cannot turn their words into the character's emotion."""
    return _TAG.sub(lambda m: m.group(0)[1:-1], text)


SPOKEN_NAME_CHARS = 24  # the most of a viewer's name read aloud (Twitch names are at most 25)
SPOKEN_NAME_WORDS = 3
_BRACKETS = re.compile(r"[\[\]{}<>]+")


def spoken_name(name: str, max_chars: int = SPOKEN_NAME_CHARS, max_words: int = SPOKEN_NAME_WORDS) -> str:
    """A viewer's name as the character may say it: no brackets (so no emotion tag, whatever the name),
    at most `max_words` words and `max_chars` characters, cut at a word boundary where there is one."""
    words = _BRACKETS.sub(" ", name).split()[:max_words]
    text = " ".join(words)
    if len(text) > max_chars:
        cut = text[:max_chars]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return text.strip()
