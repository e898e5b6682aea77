"""Emotion tags in brain output: `[joy]` or `[joy:0.6]` become cues and are removed from speech."""

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
